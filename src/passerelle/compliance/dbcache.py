"""Compiled Hyperscan databases cached on disk: compiling the detectors takes 1-3 s per process.

The key is a SHA-256 of everything the compiled bytes depend on (expressions, ids, flags, mode, the
hyperscan binding's version and the machine type).  A file is a magic line, the SHA-256 of the
serialized database and the database itself; it is written to a temporary file and renamed, so
readers never see half a file, and one that does not verify (truncated, corrupt, another
platform) is recompiled and replaced.  The cache is an optimisation only: an unwritable directory
costs the compile time, never a failure.

Directory: ``$PASSERELLE_CACHE_DIR`` if set, else ``$XDG_CACHE_HOME/passerelle``, else
``~/.cache/passerelle``.
"""

from __future__ import annotations

import contextlib
import hashlib
import logging
import os
import platform
import tempfile
from collections.abc import Sequence
from pathlib import Path

import hyperscan

log = logging.getLogger(__name__)

_MAGIC = b"passerelle-hyperscan-db 1\n"
_DIGEST = 32  # bytes of a SHA-256


def cache_dir() -> Path:
    explicit = os.environ.get("PASSERELLE_CACHE_DIR")
    if explicit:
        return Path(explicit)
    xdg = os.environ.get("XDG_CACHE_HOME")
    return (Path(xdg) if xdg else Path.home() / ".cache") / "passerelle"


def cache_key(expressions: Sequence[bytes], ids: Sequence[int], flags: Sequence[int], mode: int,
              literal: bool = False) -> str:
    digest = hashlib.sha256()
    version = getattr(hyperscan, "__version__", "?")
    digest.update(f"{version}|{platform.machine()}|{mode}|{literal}|{len(expressions)}\n".encode())
    for expression, pid, flag in zip(expressions, ids, flags, strict=True):
        digest.update(f"{pid}|{flag}|{len(expression)}|".encode())
        digest.update(expression)
    return digest.hexdigest()


def _read(path: Path, mode: int) -> hyperscan.Database | None:
    try:
        data = path.read_bytes()
    except OSError:
        return None
    body = data[len(_MAGIC) + _DIGEST:]
    if not data.startswith(_MAGIC) or hashlib.sha256(body).digest() != data[len(_MAGIC):len(_MAGIC) + _DIGEST]:
        log.warning("compliance: ignoring a corrupt compiled-pattern cache file %s", path.name)
        return None
    try:
        database: hyperscan.Database = hyperscan.loadb(body, mode)
    except hyperscan.error:
        log.warning("compliance: compiled-pattern cache file %s does not load here; recompiling", path.name)
        return None
    return database


def _write(path: Path, database: hyperscan.Database) -> None:
    body = hyperscan.dumpb(database)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=path.name + ".", suffix=".tmp", dir=path.parent)
        try:
            with os.fdopen(fd, "wb") as out:
                out.write(_MAGIC + hashlib.sha256(body).digest() + body)
            os.replace(tmp, path)
        except BaseException:
            with contextlib.suppress(OSError):
                os.unlink(tmp)
            raise
    except OSError as exc:
        log.info("compliance: compiled-pattern cache not written (%s)", exc.strerror or type(exc).__name__)


def compile_cached(expressions: Sequence[bytes], ids: Sequence[int], flags: Sequence[int],
                   mode: int = hyperscan.HS_MODE_BLOCK, literal: bool = False,
                   directory: Path | None = None, use_cache: bool = True) -> hyperscan.Database:
    """The compiled database, from the cache when a verified copy is there; compile errors propagate.

    ``use_cache=False`` for pattern sets that must not reach the disk (they spell a tenant's codewords).
    """
    path = (directory or cache_dir()) / f"hs-{cache_key(expressions, ids, flags, mode, literal)}.db"
    database = _read(path, mode) if use_cache else None
    if database is not None:
        return database
    database = hyperscan.Database(mode=mode)
    database.compile(expressions=list(expressions), ids=list(ids), elements=len(expressions), flags=list(flags),
                     literal=literal)
    if use_cache:
        _write(path, database)
    return database
