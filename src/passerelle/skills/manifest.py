"""The canonical manifest of a skill version and its content digest.

Encoding (version 1), UTF-8, one line per file, sorted by the path's UTF-8 bytes, every line ending
with ``\\n``::

    passerelle-skill-manifest/1
    <sha256 hex of the file> <size in bytes> <relative POSIX path>

The digest is the SHA-256 of those bytes, written ``sha256:<hex>``.  Paths never hold a control
character (archive.py refuses them), so a line cannot be forged by a file name.  Any change to any
byte, name or the set of files changes the digest.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

HEADER = "passerelle-skill-manifest/1"


@dataclass(frozen=True, slots=True)
class ManifestEntry:
    path: str
    size: int
    sha256: str


def entries(files: dict[str, bytes]) -> list[ManifestEntry]:
    return [ManifestEntry(path, len(files[path]), hashlib.sha256(files[path]).hexdigest())
            for path in sorted(files, key=lambda p: p.encode("utf-8"))]


def manifest_bytes(files: dict[str, bytes]) -> bytes:
    lines = [HEADER, *(f"{e.sha256} {e.size} {e.path}" for e in entries(files))]
    return ("\n".join(lines) + "\n").encode("utf-8")


def digest(files: dict[str, bytes]) -> str:
    return "sha256:" + hashlib.sha256(manifest_bytes(files)).hexdigest()
