"""The tamper-evident audit log: one hash-chained record per request (docs/audit.md)."""

from passerelle.audit.records import AuditEvent, AuditRecord
from passerelle.audit.writer import AuditLog, open_audit, open_audit_store

__all__ = ["AuditEvent", "AuditLog", "AuditRecord", "open_audit", "open_audit_store"]
