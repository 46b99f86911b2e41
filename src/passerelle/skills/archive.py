"""A skill's files, read from a folder, a zip archive or an upload, into memory, with safety checks.

Every source ends up as a ``FileSet``: the skill folder's name and its files keyed by relative POSIX
path.  Refused, each with its own rule: absolute paths, ``..`` components, backslashes and control
characters in names, symlinks, device files, FIFOs and sockets, encrypted zip entries, and zip bombs
(limits on the number of files, each file's size, the total size, and each entry's compression ratio;
sizes are enforced on the bytes actually inflated, never on the archive's own claims).  A source must
hold one top-level folder with ``SKILL.md`` at its root (a folder on disk is that folder).
Version-control and OS litter (``.git/``, ``__pycache__/``, ``.DS_Store``, ``__MACOSX/``) is skipped.
"""

from __future__ import annotations

import io
import os
import stat
import zipfile
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath

from passerelle.skills.spec import SKILL_FILES

_SKIPPED_DIRS = frozenset({".git", "__pycache__", "__MACOSX", ".svn", ".hg"})
_SKIPPED_FILES = frozenset({".DS_Store", "Thumbs.db"})


@dataclass(frozen=True, slots=True)
class Limits:
    max_files: int = 500
    max_file_bytes: int = 5 * 1024 * 1024
    max_total_bytes: int = 25 * 1024 * 1024
    max_ratio: int = 100  # inflated / compressed, per zip entry
    max_path_chars: int = 255


class ArchiveError(ValueError):
    """A refused source; ``rule`` names the check, ``path`` the entry (never file contents)."""

    def __init__(self, rule: str, message: str, path: str | None = None) -> None:
        super().__init__(f"{path}: {message}" if path else message)
        self.rule = rule
        self.path = path


@dataclass(slots=True)
class FileSet:
    root: str  # the skill folder's name
    files: dict[str, bytes] = field(default_factory=dict)  # relative POSIX path -> content

    @property
    def total_bytes(self) -> int:
        return sum(len(b) for b in self.files.values())


def check_path(name: str, limits: Limits) -> PurePosixPath:
    """A safe relative path, or ArchiveError."""
    if not name or len(name) > limits.max_path_chars:
        raise ArchiveError("path-length", f"path must be 1-{limits.max_path_chars} characters", name[:80])
    if any(ord(c) < 32 or ord(c) == 127 for c in name):
        raise ArchiveError("path-control-character", "control character in path", repr(name)[:80])
    if "\\" in name:
        raise ArchiveError("path-backslash", "backslash in path", name)
    if name.startswith("/") or (len(name) > 1 and name[1] == ":"):
        raise ArchiveError("path-absolute", "absolute path", name)
    parts = name.rstrip("/").split("/")
    if any(part in ("..", ".") for part in parts):
        raise ArchiveError("path-traversal", "path goes outside the skill ('.' or '..')", name)
    if any(part == "" for part in parts):
        raise ArchiveError("path-empty-component", "empty path component ('//')", name)
    return PurePosixPath(*parts)


class _Budget:
    def __init__(self, limits: Limits) -> None:
        self.limits = limits
        self.files = 0
        self.total = 0

    def take(self, path: str, size: int) -> None:
        self.files += 1
        self.total += size
        if self.files > self.limits.max_files:
            raise ArchiveError("too-many-files", f"more than {self.limits.max_files} files")
        if size > self.limits.max_file_bytes:
            raise ArchiveError("file-too-large", f"larger than {self.limits.max_file_bytes} bytes", path)
        if self.total > self.limits.max_total_bytes:
            raise ArchiveError("total-too-large", f"files total more than {self.limits.max_total_bytes} bytes")


def _skipped(parts: Iterable[str]) -> bool:
    parts = list(parts)
    return any(p in _SKIPPED_DIRS for p in parts[:-1]) or (bool(parts) and parts[-1] in _SKIPPED_FILES)


def _require_skill_md(fileset: FileSet) -> FileSet:
    if not any(name in fileset.files for name in SKILL_FILES):
        raise ArchiveError("skill-md-missing", f"no SKILL.md at the root of {fileset.root!r}")
    return fileset


def read_folder(path: Path, limits: Limits = Limits()) -> FileSet:
    """The folder ``path`` is the skill: its files, refusing symlinks and special files anywhere inside."""
    top = os.lstat(path)
    if stat.S_ISLNK(top.st_mode) or not stat.S_ISDIR(top.st_mode):
        raise ArchiveError("not-a-folder", "not a folder (or a symlink to one)", str(path))
    fileset = FileSet(path.resolve().name)
    budget = _Budget(limits)
    for dirpath, dirnames, filenames in os.walk(path, followlinks=False):
        rel_dir = Path(dirpath).relative_to(path)
        for name in [*dirnames, *filenames]:
            rel = (rel_dir / name).as_posix()
            if _skipped(rel.split("/")):
                continue
            mode = os.lstat(Path(dirpath) / name).st_mode
            if stat.S_ISLNK(mode):
                raise ArchiveError("symlink", "symbolic links are not allowed", rel)
            if not stat.S_ISDIR(mode) and not stat.S_ISREG(mode):
                raise ArchiveError("special-file", "device files, FIFOs and sockets are not allowed", rel)
        dirnames[:] = [d for d in dirnames if d not in _SKIPPED_DIRS]
        for name in sorted(filenames):
            rel = (rel_dir / name).as_posix()
            if _skipped(rel.split("/")):
                continue
            check_path(rel, limits)
            # O_NOFOLLOW: a file swapped for a symlink after the check above is refused, not followed.
            fd = os.open(Path(dirpath) / name, os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0))
            with os.fdopen(fd, "rb") as fh:
                data = fh.read(limits.max_file_bytes + 1)  # the bytes read count, not what lstat said
            budget.take(rel, len(data))
            fileset.files[rel] = data
    return _require_skill_md(fileset)


def _entry_kind(info: zipfile.ZipInfo) -> int:
    return (info.external_attr >> 16) & 0o170000 if info.create_system == 3 else 0  # Unix mode bits only


def read_zip(data: bytes, limits: Limits = Limits()) -> FileSet:
    """A zip archive holding one top-level folder with SKILL.md at its root."""
    try:
        archive = zipfile.ZipFile(io.BytesIO(data))
        infos = archive.infolist()
    except (zipfile.BadZipFile, zipfile.LargeZipFile, OSError, ValueError, EOFError) as exc:
        raise ArchiveError("zip-invalid", f"not a readable zip archive ({exc})") from None
    if len(infos) > limits.max_files * 2:  # directories count too, but not without bound
        raise ArchiveError("too-many-files", f"more than {limits.max_files} files")
    entries: list[tuple[str, bytes]] = []
    budget = _Budget(limits)
    for info in infos:
        name = info.filename
        kind = _entry_kind(info)
        if kind == stat.S_IFLNK:
            raise ArchiveError("symlink", "symbolic links are not allowed", name)
        if kind not in (0, stat.S_IFREG, stat.S_IFDIR):
            raise ArchiveError("special-file", "device files, FIFOs and sockets are not allowed", name)
        if info.flag_bits & 0x1:
            raise ArchiveError("zip-encrypted", "encrypted entries are not allowed", name)
        check_path(name, limits)
        if info.is_dir() or _skipped(name.split("/")):
            continue
        entries.append((name, _inflate(archive, info, limits, budget)))
    return from_entries(entries, limits)


def _inflate(archive: zipfile.ZipFile, info: zipfile.ZipInfo, limits: Limits, budget: _Budget) -> bytes:
    name = info.filename
    cap = limits.max_file_bytes
    if info.file_size > cap:
        raise ArchiveError("file-too-large", f"larger than {cap} bytes", name)
    out = bytearray()
    try:
        with archive.open(info) as fh:
            while chunk := fh.read(64 * 1024):
                out += chunk
                if len(out) > cap:
                    raise ArchiveError("file-too-large", f"larger than {cap} bytes", name)
                if len(out) > 1024 * 1024 and len(out) > limits.max_ratio * max(info.compress_size, 1):
                    raise ArchiveError("zip-ratio", f"compression ratio above {limits.max_ratio}:1", name)
    except ArchiveError:
        raise
    except (zipfile.BadZipFile, OSError, EOFError, NotImplementedError, RuntimeError) as exc:
        raise ArchiveError("zip-invalid", f"unreadable entry ({exc})", name) from None
    budget.take(name, len(out))
    return bytes(out)


def from_entries(entries: list[tuple[str, bytes]], limits: Limits = Limits()) -> FileSet:
    """Files named ``<folder>/<path>`` (an archive's or an upload's): one folder, SKILL.md at its root."""
    paths = [(check_path(name, limits), name, content) for name, content in entries]
    for path, name, _ in paths:
        if len(path.parts) < 2:
            raise ArchiveError("no-top-folder", "files must be inside one top-level folder", name)
    tops = {path.parts[0] for path, _, _ in paths}
    if len(tops) != 1:
        raise ArchiveError("no-top-folder", f"expected one top-level folder, found {len(tops)}")
    budget = _Budget(limits)
    fileset = FileSet(tops.pop())
    for path, name, content in paths:
        rel = PurePosixPath(*path.parts[1:]).as_posix()
        if rel in fileset.files:
            raise ArchiveError("duplicate-path", "the same path appears twice", name)
        budget.take(name, len(content))
        fileset.files[rel] = content
    return _require_skill_md(fileset)


def read_source(path: Path, limits: Limits = Limits()) -> FileSet:
    """A folder, or a ``.zip``/``.skill`` archive file."""
    if path.is_dir() and not path.is_symlink():
        return read_folder(path, limits)
    try:
        size = path.stat().st_size
        if size > limits.max_total_bytes:
            raise ArchiveError("total-too-large", f"archive larger than {limits.max_total_bytes} bytes", str(path))
        data = path.read_bytes()
    except OSError as exc:
        raise ArchiveError("unreadable", f"cannot read ({exc.strerror})", str(path)) from None
    return read_zip(data, limits)
