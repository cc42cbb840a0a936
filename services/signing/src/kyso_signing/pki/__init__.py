"""The certification authority's own room: keys, certificate profiles, the CA hierarchy, signatures,
CRLs, OCSP and time-stamps. It imports no other room."""
