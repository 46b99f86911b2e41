"""LiteLLM proxy as a peer: installed by the benchmark into its own virtual environment.

The install is `pip install 'litellm[proxy]'` in ``bench/.venv-litellm``; when it fails the
gateway is skipped and the results quote the last lines pip printed.
"""

from __future__ import annotations

import os
import secrets
import subprocess
import sys
import venv
from dataclasses import dataclass
from pathlib import Path

VENV = Path(__file__).resolve().parent / ".venv-litellm"
INSTALL_TIMEOUT_S = 600.0
# peers.md uses "sk-1234"; LiteLLM 1.108+ refuses to start with that publicly known key, so the run
# uses a random one in the same place (the only change to the peers.md config).
MASTER_KEY = "sk-bench-" + secrets.token_hex(16)
MODEL = "bench-model"


@dataclass(frozen=True, slots=True)
class LiteLLMInstall:
    ok: bool
    version: str | None
    message: str  # why it is missing, with pip's last lines; empty when ok

    @property
    def executable(self) -> Path:
        return VENV / "bin" / "litellm"


def _python() -> Path:
    return VENV / "bin" / "python"


def installed_version() -> str | None:
    if not _python().exists() or not (VENV / "bin" / "litellm").exists():
        return None
    probe = subprocess.run([str(_python()), "-c", "import importlib.metadata as m; print(m.version('litellm'))"],
                           capture_output=True, text=True, timeout=60, check=False)
    return probe.stdout.strip() or None if probe.returncode == 0 else None


def ensure_litellm(log: Path, *, timeout_s: float = INSTALL_TIMEOUT_S) -> LiteLLMInstall:
    """Install litellm[proxy] into bench/.venv-litellm unless it is already there."""
    version = installed_version()
    if version:
        return LiteLLMInstall(True, version, "")
    print(f"[bench] installing litellm[proxy] into {VENV} (up to {timeout_s / 60:.0f} min, log: {log})", flush=True)
    try:
        if not _python().exists():
            venv.EnvBuilder(with_pip=True, clear=True).create(VENV)
        with log.open("w") as out:
            subprocess.run([str(_python()), "-m", "pip", "install", "--disable-pip-version-check",
                            "litellm[proxy]"], stdout=out, stderr=subprocess.STDOUT, timeout=timeout_s, check=True)
    except subprocess.TimeoutExpired:
        return LiteLLMInstall(False, None, f"pip install 'litellm[proxy]' did not finish within {timeout_s:.0f} s"
                              + _tail(log))
    except subprocess.CalledProcessError as exc:
        return LiteLLMInstall(False, None, f"pip install 'litellm[proxy]' failed (exit {exc.returncode})" + _tail(log))
    except OSError as exc:
        return LiteLLMInstall(False, None, f"cannot create {VENV}: {exc}")
    version = installed_version()
    if not version:
        return LiteLLMInstall(False, None, "litellm installed but `import litellm` or its `litellm` command is missing"
                              + _tail(log))
    return LiteLLMInstall(True, version, "")


def _tail(log: Path, lines: int = 12) -> str:
    try:
        text = log.read_text(errors="replace").strip().splitlines()
    except OSError:
        return ""
    return ":\n" + "\n".join(text[-lines:]) if text else ""


def config_yaml(upstream_port: int) -> str:
    """The peer's configuration as in shared/reference/peers.md (but for the master key, see MASTER_KEY)."""
    return (
        "model_list:\n"
        f"  - model_name: {MODEL}\n"
        f"    litellm_params: {{model: openai/{MODEL}, api_base: \"http://127.0.0.1:{upstream_port}/v1\", "
        "api_key: \"x\"}\n"
        "litellm_settings: {callbacks: [], num_retries: 0, request_timeout: 30}\n"
        f"general_settings: {{master_key: \"{MASTER_KEY}\"}}\n"
    )


def command(config: Path, port: int, workers: int) -> list[str]:
    return [str(VENV / "bin" / "litellm"), "--config", str(config), "--port", str(port), "--host", "127.0.0.1",
            "--num_workers", str(workers)]


def environment() -> dict[str, str]:
    """No network: use the bundled model cost map, no telemetry."""
    env = dict(os.environ)
    env.update({"LITELLM_LOCAL_MODEL_COST_MAP": "True", "LITELLM_TELEMETRY": "False", "LITELLM_LOG": "ERROR",
                "PYTHONUNBUFFERED": "1"})
    env.pop("VIRTUAL_ENV", None)
    return env


if __name__ == "__main__":  # pragma: no cover - manual use: python -m bench.peer_litellm
    result = ensure_litellm(VENV.parent / ".work" / "litellm-install.log")
    print(result)
    sys.exit(0 if result.ok else 1)
