"""The 20-line script docs/audit.md gives auditors verifies a real export, and catches an edit."""

from __future__ import annotations

import asyncio
import json
import re
import subprocess
import sys
from pathlib import Path

from passerelle.audit.base import RecordFilter
from passerelle.audit.chain import ChainPoint
from passerelle.audit.export import export
from passerelle.audit.records import unsealed
from passerelle.audit.sqlite import SQLiteAuditStore
from tests.audit.conftest import event

DOC = Path(__file__).resolve().parents[2] / "docs" / "audit.md"


async def exported(path: Path) -> ChainPoint:
    store = SQLiteAuditStore(path.parent / "audit.db")
    try:
        await store.append([unsealed(event(i, model="modèle-ω", content="[NAME] a écrit"), store_content=True)
                            for i in range(1, 6)])
        with path.open("w", encoding="utf-8") as out:
            await export(store, RecordFilter(), out)
        return await store.head()
    finally:
        await store.aclose()


def test_documented_script(tmp_path: Path) -> None:
    script = tmp_path / "verify.py"
    script.write_text(re.findall(r"```python\n(.*?)```", DOC.read_text(), re.S)[0])
    path = tmp_path / "audit.jsonl"
    head = asyncio.run(exported(path))
    done = subprocess.run([sys.executable, str(script), str(path)], capture_output=True, text=True)
    assert done.returncode == 0 and done.stdout.strip() == f"intact; head {head.seq}:{head.hash}", done
    lines = path.read_text(encoding="utf-8").splitlines()
    record = json.loads(lines[2])
    record["decision"] = "blocked"
    path.write_text("\n".join([lines[0], lines[1], json.dumps(record), *lines[3:]]) + "\n", encoding="utf-8")
    done = subprocess.run([sys.executable, str(script), str(path)], capture_output=True, text=True)
    assert done.returncode == 1 and "record 2 was edited" in done.stderr
