"""Compiled twins of the compliance scan: Cython turns the unchanged sources into C extensions.

The compliance scan runs validators and the name detector in Python on every candidate; compiled, the
same code takes about a fifth fewer instructions (bench/results/scan_instructions.md).  The
``.py`` files stay the reference: tests, mypy and the pure-Python fallback read them, and
``passerelle.twins`` uses a twin only while its source is the one it was built from.  Without a C
compiler, or with ``PASSERELLE_PURE_PYTHON=1``, the package installs as pure Python.
"""

from __future__ import annotations

import hashlib
import json
import os
import sys
from pathlib import Path
from typing import Any

from setuptools import setup
from setuptools.command.build_ext import build_ext

# The compliance scan: the modules whose Python runs on every candidate of every scanned text.  The request
# path was compiled too, and measured (bench/results/compiled_rss.md): 6-9% fewer instructions
# per request, for 22-24 MB more RSS with 1,000 open streams (shared pages of the compiled modules, counted
# in each worker), which took the scale-out configuration over its 200 MB target.  It stays Python.
_HOT = {
    "compliance": "engine findings context actions pseudonyms policy",
    "compliance.detectors": "codewords common contact defense finance health identity person phones secrets wallets",
}
TWINS = tuple(f"passerelle.{folder}.{name}" for folder, names in _HOT.items() for name in names.split())
# Where Cython may read annotations as types (a ``str`` parameter then takes a ``str``, not a subclass): the
# detection engine, whose inputs are plain strings and ints (a pass over the benchmark corpus: 991 M
# instructions as Python, 794 M compiled; bench/results/scan_instructions.md).
TYPED = tuple(m for m in TWINS if not m.endswith((".actions", ".pseudonyms", ".policy")))
MANIFEST = "passerelle/twins.json"  # module -> SHA-256 of the source its twin was built from
SRC = Path(__file__).parent / "src"


def _source(module: str) -> Path:
    return SRC / (module.replace(".", "/") + ".py")


class BuildTwins(build_ext):
    """Builds the twins in parallel, writes the manifest beside them, and falls back to pure Python (with a
    warning) when a twin cannot be compiled."""

    def finalize_options(self) -> None:
        super().finalize_options()
        if self.parallel is None:
            self.parallel = os.cpu_count() or 1

    def run(self) -> None:
        try:
            super().run()
        except Exception as exc:  # any compiler failure: the sources still work
            print(f"warning: Passerelle runs as pure Python ({type(exc).__name__}: {exc})",
                  file=sys.stderr)
            return
        digests = {m: hashlib.sha256(_source(m).read_bytes()).hexdigest() for m in TWINS}
        target = (SRC if self.inplace else Path(self.build_lib)) / MANIFEST
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(json.dumps({"builder": "cython", "modules": digests}, indent=1, sort_keys=True) + "\n")

    def get_outputs(self) -> list[str]:
        manifest = Path(self.build_lib) / MANIFEST
        return [*super().get_outputs(), *([str(manifest)] if manifest.is_file() else [])]


def _extensions() -> list[Any]:
    if os.environ.get("PASSERELLE_PURE_PYTHON") == "1":
        return []
    try:
        import Cython
        from Cython.Build import cythonize
    except ImportError:
        print("warning: Cython is missing; Passerelle runs as pure Python", file=sys.stderr)
        return []
    from setuptools import Extension

    # binding=True: compiled functions keep Python's introspection (signatures, __module__, pickling by name).
    # annotation_typing=False outside TYPED: annotations stay hints, as in Python (Cython would otherwise refuse
    # a defaultdict where ``dict`` is annotated).
    extensions = []
    for typed in (False, True):
        directives = {"language_level": 3, "binding": True, "annotation_typing": typed}
        # Cython regenerates C only for sources newer than it: C generated under other directives (or another
        # Cython) lives in its own folder instead of being reused.
        flavour = hashlib.sha256(json.dumps([directives, Cython.__version__], sort_keys=True).encode()).hexdigest()
        modules = [Extension(m, [str(_source(m).relative_to(Path(__file__).parent))])
                   for m in TWINS if (m in TYPED) == typed]
        extensions += cythonize(modules, build_dir=f"build/cython/{flavour[:12]}", quiet=True,
                                compiler_directives=directives)
    return extensions


setup(ext_modules=_extensions(), cmdclass={"build_ext": BuildTwins})
