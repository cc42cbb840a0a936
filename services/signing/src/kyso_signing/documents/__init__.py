"""PDF documents: layout (contract, acceptance record), PAdES preparation/completion/sealing, and the
content-addressed file store. It imports only ``pki``."""
