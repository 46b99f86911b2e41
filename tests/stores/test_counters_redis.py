"""What only the Redis counters do: a settlement retried after a reply that never came applies once."""

from __future__ import annotations

import pytest

from passerelle.stores.base import Bucket, Charge, Slot
from tests.stores.counters_fixtures import Backend, backend_fixture  # noqa: F401  (the fixture "backend")

BUDGET = "budget:bud_1:2026-12-08"


@pytest.mark.parametrize("backend", ["redis"], indirect=True)
async def test_a_settlement_sent_twice_applies_once(backend: Backend) -> None:
    hard, bucket, slot = Charge(BUDGET, limit_pico=1000), Bucket("rl:tok", 100, 0.001, 40), Slot("rl:conc", 5)
    await backend.a.seed(BUDGET, 0, None)
    assert (await backend.a.admit("r1", [hard], 100, [bucket], [slot])).ok
    for _ in range(2):  # the first reply was lost (a timeout): the gateway settles again
        await backend.a.settle("r1", [hard], 100, 30, [bucket], [10], [slot])
    assert await backend.b.committed([BUDGET]) == [30]
    probe = await backend.b.admit("probe", [], 0, [Bucket("rl:tok", 100, 0.001, 1)], [])
    assert probe.levels["rl:tok"].remaining == 89  # 100 - 10 used - 1 probe: the 30 not used came back once
