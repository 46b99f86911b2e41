"""The supplier register as the DORA register of information (Art 28(3) DORA, ITS 2024/2956): one CSV
row per model and provider the gateway routes to, in the spirit of templates B_05.01 (ICT third-party
providers) and B_02.02 (contractual arrangements), with the AI Act's GPAI columns next to them."""

from __future__ import annotations

import csv
import io
import time
from collections.abc import Iterable

from passerelle.aiact.records import Supplier

COLUMNS = ("provider_lei", "provider_legal_name", "provider_type", "ict_service", "model", "contract_reference",
           "data_location", "data_retention", "documentation_url", "training_data_summary_url",
           "gpai_code_of_practice", "documents_complete", "last_updated")


def _cell(value: object) -> str:
    text = "" if value is None else str(value)
    # A cell starting with = + - @ would run as a formula in a spreadsheet.
    return "'" + text if text[:1] in ("=", "+", "-", "@") else text


def register_csv(suppliers: Iterable[Supplier]) -> str:
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(COLUMNS)
    for s in suppliers:
        writer.writerow([_cell(v) for v in (
            s.lei, s.provider_name, s.provider, "general-purpose AI model inference (API)", s.model, s.contract_ref,
            s.region, s.data_retention, s.documentation_url, s.training_summary_url, s.code_of_practice,
            "yes" if s.documented else "no",
            time.strftime("%Y-%m-%d", time.gmtime(s.updated_at)) if s.updated_at else "")])
    return out.getvalue()
