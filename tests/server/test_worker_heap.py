"""Worker processes freeze their start-up heap; the app built for tests and embedding does not."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

DRIVER = textwrap.dedent("""
    import asyncio, gc, os, sys
    from passerelle.server.app import create_app, create_worker_app

    async def start(app):
        inbox = asyncio.Queue()
        outbox = asyncio.Queue()
        await inbox.put({"type": "lifespan.startup"})
        task = asyncio.create_task(app({"type": "lifespan", "asgi": {"version": "3.0"}}, inbox.get, outbox.put))
        started = await outbox.get()
        assert started["type"] == "lifespan.startup.complete", started
        frozen = gc.get_freeze_count()
        await inbox.put({"type": "lifespan.shutdown"})
        await outbox.get()
        await task
        return frozen

    app = create_worker_app() if sys.argv[1] == "worker" else create_app()
    print(asyncio.run(start(app)))
""")


def _frozen_after_start(kind: str, home: Path) -> int:
    env = {"PATH": "", "PASSERELLE_HOME": str(home),
           "PYTHONPATH": str(Path(__file__).resolve().parents[2] / "src")}
    done = subprocess.run([sys.executable, "-c", DRIVER, kind], env=env, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr[-2000:]
    return int(done.stdout.strip().splitlines()[-1])


def test_a_worker_freezes_what_start_up_built(tmp_path: Path) -> None:
    # Tens of thousands of objects at the least (config, detectors, routing table): all of them frozen.
    assert _frozen_after_start("worker", tmp_path) > 10_000


def test_an_app_built_by_a_caller_leaves_the_collector_alone(tmp_path: Path) -> None:
    assert _frozen_after_start("embedded", tmp_path) == 0
