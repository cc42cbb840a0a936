"""Remote signing: the signing-request machine, relying parties (clients), webhooks, the evidence log
and the CSC service. It reaches credentials, documents and pki, never flows or api."""
