"""Hostile sources are refused, each by its own rule; clean ones load completely."""

from __future__ import annotations

import io
import os
import stat
import zipfile
from pathlib import Path

import pytest

from passerelle.skills.archive import ArchiveError, Limits, from_entries, read_folder, read_source, read_zip

SKILL = b"---\nname: demo\ndescription: A demo skill.\n---\nBody\n"


def zip_of(entries: list[tuple[str | zipfile.ZipInfo, bytes]], method: int = zipfile.ZIP_DEFLATED) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", method) as zf:
        for name, data in entries:
            zf.writestr(name, data)
    return buf.getvalue()


def unix_entry(name: str, mode: int) -> zipfile.ZipInfo:
    info = zipfile.ZipInfo(name)
    info.create_system = 3
    info.external_attr = mode << 16
    return info


def make_folder(tmp_path: Path) -> Path:
    skill = tmp_path / "demo"
    (skill / "scripts").mkdir(parents=True)
    (skill / "SKILL.md").write_bytes(SKILL)
    (skill / "scripts" / "run.py").write_text("print('hi')\n")
    (skill / ".git").mkdir()
    (skill / ".git" / "HEAD").write_text("ref: x\n")
    return skill


def test_a_folder_loads_with_relative_paths_and_skips_vcs(tmp_path: Path) -> None:
    files = read_folder(make_folder(tmp_path))
    assert files.root == "demo"
    assert sorted(files.files) == ["SKILL.md", "scripts/run.py"]
    assert files.files["SKILL.md"] == SKILL


def test_a_zip_loads_from_its_top_folder(tmp_path: Path) -> None:
    data = zip_of([("demo/", b""), ("demo/SKILL.md", SKILL), ("demo/assets/a.txt", b"a")])
    files = read_zip(data)
    assert (files.root, sorted(files.files)) == ("demo", ["SKILL.md", "assets/a.txt"])
    (tmp_path / "demo.zip").write_bytes(data)
    assert read_source(tmp_path / "demo.zip").files == files.files


def test_folder_symlinks_are_refused(tmp_path: Path) -> None:
    skill = make_folder(tmp_path)
    (skill / "creds").symlink_to(Path.home() / ".ssh")
    with pytest.raises(ArchiveError) as caught:
        read_folder(skill)
    assert caught.value.rule == "symlink"


def test_folder_fifos_are_refused(tmp_path: Path) -> None:
    skill = make_folder(tmp_path)
    os.mkfifo(skill / "pipe")
    with pytest.raises(ArchiveError) as caught:
        read_folder(skill)
    assert caught.value.rule == "special-file"


@pytest.mark.parametrize(("name", "rule"), [
    ("demo/../../etc/passwd", "path-traversal"),
    ("/etc/passwd", "path-absolute"),
    ("C:/Windows/x", "path-absolute"),
    ("demo\\..\\x", "path-backslash"),
    ("demo/a\nb", "path-control-character"),
    ("demo//x", "path-empty-component"),
])
def test_bad_zip_paths_are_refused(name: str, rule: str) -> None:
    with pytest.raises(ArchiveError) as caught:
        read_zip(zip_of([("demo/SKILL.md", SKILL), (name, b"x")]))
    assert caught.value.rule == rule


@pytest.mark.parametrize(("mode", "rule"), [(stat.S_IFLNK | 0o777, "symlink"), (stat.S_IFCHR | 0o666, "special-file"),
                                            (stat.S_IFIFO | 0o644, "special-file")])
def test_zip_links_and_devices_are_refused(mode: int, rule: str) -> None:
    with pytest.raises(ArchiveError) as caught:
        read_zip(zip_of([("demo/SKILL.md", SKILL), (unix_entry("demo/x", mode), b"/etc/passwd")]))
    assert caught.value.rule == rule


def test_zip_bomb_ratio_is_refused_while_inflating() -> None:
    bomb = zip_of([("demo/SKILL.md", SKILL), ("demo/zeros.bin", b"\0" * (4 * 1024 * 1024))])
    with pytest.raises(ArchiveError) as caught:
        read_zip(bomb)
    assert caught.value.rule == "zip-ratio"


def test_lying_sizes_do_not_get_past_the_limits() -> None:
    # The central directory claims a tiny file: the inflated bytes are what count.
    data = bytearray(zip_of([("demo/SKILL.md", SKILL), ("demo/big.txt", os.urandom(4096))],
                            zipfile.ZIP_STORED))
    limits = Limits(max_file_bytes=1000)
    with pytest.raises(ArchiveError) as caught:
        read_zip(bytes(data), limits)
    assert caught.value.rule == "file-too-large"


def test_file_count_and_total_limits() -> None:
    many = [("demo/SKILL.md", SKILL)] + [(f"demo/f{i}", b"x") for i in range(20)]
    with pytest.raises(ArchiveError) as caught:
        read_zip(zip_of(many), Limits(max_files=10))
    assert caught.value.rule == "too-many-files"
    with pytest.raises(ArchiveError) as caught:
        from_entries([("demo/SKILL.md", SKILL), ("demo/a", b"x" * 600)], Limits(max_total_bytes=500))
    assert caught.value.rule == "total-too-large"


@pytest.mark.parametrize(("entries", "rule"), [
    ([("SKILL.md", SKILL)], "no-top-folder"),
    ([("a/SKILL.md", SKILL), ("b/SKILL.md", SKILL)], "no-top-folder"),
    ([("demo/sub/SKILL.md", SKILL)], "skill-md-missing"),
])
def test_one_top_folder_with_skill_md_at_its_root(entries: list[tuple[str, bytes]], rule: str) -> None:
    with pytest.raises(ArchiveError) as caught:
        read_zip(zip_of(list(entries)))
    assert caught.value.rule == rule


def test_garbage_is_not_a_zip() -> None:
    with pytest.raises(ArchiveError) as caught:
        read_zip(b"PK\x03\x04 definitely not")
    assert caught.value.rule == "zip-invalid"


def test_encrypted_entries_are_refused() -> None:
    data = bytearray(zip_of([("demo/SKILL.md", SKILL)], zipfile.ZIP_STORED))
    data[6] |= 0x1  # local header flag
    cd = data.rfind(b"PK\x01\x02")
    data[cd + 8] |= 0x1  # central directory flag
    with pytest.raises(ArchiveError) as caught:
        read_zip(bytes(data))
    assert caught.value.rule == "zip-encrypted"
