"""HTTP for compliance officers: the audit trail, GDPR subject requests, retention."""
