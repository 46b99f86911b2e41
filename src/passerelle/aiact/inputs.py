"""The AI Act registers' inputs, as the admin API and the CLI accept them (unknown fields refused)."""

from __future__ import annotations

import msgspec

from passerelle.aiact.records import Purpose


class PurposeBody(msgspec.Struct, forbid_unknown_fields=True):
    id: str
    name: str
    description: str
    instructions: str
    overseer: str
    owner: str
    risk_class: str
    annex_category: str | None = None
    models: list[str] = []
    routes: list[str] = []
    retention_days: int = 365
    status: str = "draft"
    tags: list[str] = []
    general_purpose: bool = False
    kind: str = "other"
    disclosure: str | None = None
    public_interest: bool = False
    label: str = "[AI-generated text]"


class StatusBody(msgspec.Struct, forbid_unknown_fields=True):
    status: str


class ReasonBody(msgspec.Struct, forbid_unknown_fields=True):
    reason: str = ""


class BindingBody(msgspec.Struct, forbid_unknown_fields=True):
    key_id: str
    purpose_id: str
    annex_use: str | None = None


class SupplierBody(msgspec.Struct, forbid_unknown_fields=True):
    provider: str
    model: str
    documentation_url: str | None = None
    training_summary_url: str | None = None
    code_of_practice: str = "unknown"
    region: str | None = None
    data_retention: str | None = None
    contract_ref: str | None = None
    provider_name: str | None = None
    lei: str | None = None


class RiskBody(msgspec.Struct, forbid_unknown_fields=True):
    purpose_id: str
    title: str
    likelihood: int
    severity: int
    measures: str
    residual: str
    review_due: str
    description: str = ""


class SignOffBody(msgspec.Struct, forbid_unknown_fields=True):
    reviewer: str


class IncidentBody(msgspec.Struct, forbid_unknown_fields=True):
    purpose_id: str
    title: str
    severity: str
    occurred_at: float
    aware_at: float | None = None
    description: str = ""


class ReportedBody(msgspec.Struct, forbid_unknown_fields=True):
    at: float | None = None


def purpose_from(body: PurposeBody) -> Purpose:
    fields = msgspec.to_builtins(body)
    for name in ("models", "routes", "tags"):
        fields[name] = tuple(fields[name])
    return Purpose(**fields)
