"""Telling a live worker process from a dead one, by pid, start time and pid namespace."""

from __future__ import annotations

import subprocess
import sys
import time

from passerelle.stores import owners


def test_this_process_lives_and_its_packed_id_comes_back_whole() -> None:
    me = owners.current()
    assert me.start > 0 and me.namespace > 0  # /proc is there on the machines the gateway runs on
    assert owners.alive(me) is True
    assert owners.ProcessId.unpack(me.packed(), me.namespace) == me
    assert me.packed() < 2**63  # fits the shared-memory record's signed 64-bit field


def test_a_child_lives_until_it_exits_even_before_it_is_reaped() -> None:
    child = subprocess.Popen([sys.executable, "-c", "import sys; sys.stdin.read()"], stdin=subprocess.PIPE)
    try:
        start = owners._start_ticks(child.pid)
        assert start is not None
        them = owners.ProcessId(child.pid, start, owners.current().namespace)
        assert owners.alive(them) is True
        assert child.stdin is not None
        child.stdin.close()  # it exits; not reaped yet: a zombie is dead too
        for _ in range(500):
            if owners._start_ticks(child.pid) is None:
                break
            time.sleep(0.01)
        assert owners.alive(them) is False
    finally:
        child.wait()
    assert owners.alive(them) is False


def test_a_reused_pid_is_not_the_process_that_held_it() -> None:
    me = owners.current()  # this pid, as if an earlier process had held it
    assert owners.alive(owners.ProcessId(me.pid, me.start + 1, me.namespace)) is False


def test_a_process_of_another_pid_namespace_is_never_judged() -> None:
    me = owners.current()
    assert owners.alive(owners.ProcessId(2**21, 5, me.namespace + 1)) is None
