"""Subscribers' certificates: the certificate state machine, contract and consent, issuance,
lifecycle (revoke/suspend/resume), key custody and the PIN, and the subscriber's views. It imports
``documents`` and ``pki``."""
