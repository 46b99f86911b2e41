"""The instruction-count harness's parsing and table (the measurement itself needs valgrind and minutes)."""

from __future__ import annotations

import pytest

from bench.instructions import counted, render

HEADER = b"# callgrind format\nversion: 1\ncreator: callgrind-3.19.0\npid: 17685\npart: 1\n\n"


def test_only_the_requested_dump_is_counted() -> None:
    dump = HEADER + b"desc: Timerange: Basic block 0 - 89659980\ndesc: Trigger: dump\n\npositions: line\n" \
        b"events: Ir\nsummary: 406865904\n\nob=(1) /lib/ld.so\n"
    at_exit = HEADER + b"desc: Trigger: Program termination\n\nevents: Ir\nsummary: 18446744073296637258\n"
    assert counted(dump) == 406_865_904
    assert counted(at_exit) == 0  # the shutdown (and a counter wrapped by --zero) is not the requests' work


def test_a_dump_without_a_summary_is_an_error() -> None:
    with pytest.raises(ValueError, match="summary"):
        counted(HEADER + b"desc: Trigger: dump\n")


def test_the_table_pairs_each_gateway_with_its_pure_python_run() -> None:
    rows = [{"name": "passerelle", "variant": "compiled", "per_request": 1_356_000.0},
            {"name": "passerelle", "variant": "python", "per_request": 1_404_000.0},
            {"name": "passerelle-full", "variant": "compiled", "per_request": 1_740_000.0}]
    text = render({"command": "python -m bench.instructions", "generated_at": "now", "python": "3.11.7",
                   "machine": "2 CPUs", "warmup": 200, "requests": 300, "gateways": rows})
    assert "| passerelle | 1.356 | 1.404 | 0.966 |" in text
    assert "| passerelle-full | 1.740 |  |  |" in text


def test_the_table_names_the_scenario_counted() -> None:
    base = {"command": "python -m bench.instructions", "generated_at": "now", "python": "3.11.7",
            "machine": "2 CPUs", "warmup": 200, "requests": 300, "gateways": []}
    assert "(`small` scenario: ~1 KB prompt, 16 output tokens, non-streaming)" in render(base)
    streamed = render({**base, "scenario": "stream"})
    assert "(`stream` scenario: ~1 KB prompt, 16 output tokens streamed one per chunk" in streamed
