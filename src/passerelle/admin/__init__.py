"""Administration of tenants, teams, keys, budgets, rate limits and usage reports (HTTP API and CLI)."""

from passerelle.admin.service import AdminError, AdminService, CreatedKey

__all__ = ["AdminError", "AdminService", "CreatedKey"]
