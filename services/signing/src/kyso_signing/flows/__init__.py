"""Flows that span rooms: activation with its acceptance record, and relying parties' PDFs signed
through remote signing."""
