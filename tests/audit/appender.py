"""A process that appends audit events through ``AuditLog`` as fast as a busy gateway would, until it is
killed (SIGKILL: the durability test) or stopped (SIGTERM: a graceful stop must lose nothing).

Usage: python -m tests.audit.appender CONFIG DATA_DIR NAME   (prints "appended N" as it goes)
"""

from __future__ import annotations

import asyncio
import signal
import sys
from pathlib import Path

from passerelle.audit import open_audit
from passerelle.config import load_config
from tests.audit.conftest import event


async def main(config_path: str, data_dir: str, name: str) -> None:
    log = await open_audit(load_config(config_path), Path(data_dir))
    await log.start()
    stop = asyncio.Event()
    asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, stop.set)
    appended = 0
    while not stop.is_set():
        for _ in range(50):  # a burst of requests, then a short pause: ~5,000 events a second
            appended += 1
            log.append(event(appended, request_id=f"{name}-{appended:07d}", tenant_id=name))
        print(f"appended {appended}", flush=True)
        await asyncio.sleep(0.01)
    await log.aclose()
    print(f"closed {appended} dropped {log.dropped}", flush=True)


if __name__ == "__main__":
    asyncio.run(main(*sys.argv[1:4]))
