"""Which worker process holds a budget reservation, and whether it still lives.

A request reserves its largest possible cost before the upstream call and settles after it.  A worker
killed in between (out of memory, ``kill -9``) never settles: without an owner its reservation would stay
counted until the budget's period ends (forever for a ``total`` budget), refusing requests the budget
still covers.  The shared-memory (and SQLite) counters therefore keep, per budget counter, what each
process has reserved, and any process gives back what a dead one held.

A process is named by its pid, its start time (clock ticks after boot, from ``/proc/<pid>/stat``: a pid
reused by a later process does not look alive) and its pid namespace (a pid read in another container
means nothing here: such an owner is never judged dead).
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass

from passerelle.observability.logging import log

PID_BITS = 22  # Linux's pid_max is at most 2**22


@dataclass(frozen=True, slots=True)
class ProcessId:
    pid: int
    start: int  # clock ticks after boot; 0 where /proc is missing
    namespace: int  # the pid namespace's inode; 0 where /proc is missing

    def packed(self) -> int:
        """pid and start time in one signed 64-bit integer (41 bits of ticks: centuries at 100 Hz)."""
        return self.pid | ((self.start & ((1 << 41) - 1)) << PID_BITS)

    @staticmethod
    def unpack(packed: int, namespace: int) -> ProcessId:
        return ProcessId(packed & ((1 << PID_BITS) - 1), packed >> PID_BITS, namespace)


def _start_ticks(pid: int) -> int | None:
    """The process's start time, or None when it has exited (a zombie not yet reaped included)."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            stat = f.read()
    except (FileNotFoundError, ProcessLookupError):
        return None
    # Fields 3 (state) and 22; the command name (field 2) may hold spaces and parentheses: count from its end.
    fields = stat[stat.rindex(b")") + 2:].split()
    return None if fields[0] in (b"Z", b"X") else int(fields[19])


def _namespace(pid: int | str) -> int:
    try:
        link = os.readlink(f"/proc/{pid}/ns/pid")  # "pid:[4026531836]"
    except OSError:
        return 0
    return int(link[link.index("[") + 1:-1])


_current: ProcessId | None = None


def current() -> ProcessId:
    """This process (computed again in a forked child)."""
    global _current
    pid = os.getpid()
    if _current is None or _current.pid != pid:
        _current = ProcessId(pid, _start_ticks(pid) or 0, _namespace("self"))
    return _current


def alive(owner: ProcessId) -> bool | None:
    """Whether the process still runs; None when this process cannot tell (another pid namespace)."""
    me = current()
    if owner.namespace != me.namespace:
        return None
    if owner.pid == me.pid and owner.start == me.start:
        return True
    if me.start:  # /proc is there
        return _start_ticks(owner.pid) == owner.start
    try:
        os.kill(owner.pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def report(given_pico: int) -> int:
    """Logs what a sweep gave back (operators watch for killed workers); returns it."""
    if given_pico:
        log("counters_reservations_reclaimed", logging.WARNING, usd=f"{given_pico / 10**12:.6f}")
    return given_pico
