"""Fixtures of the fault-injection suite: a started 4-validator net (through the chaos
proxy or not), always torn down — every process group killed — however the test ends."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from pathlib import Path

import pytest
from faultnet import FaultNet


@pytest.fixture
async def make_net(tmp_path: Path) -> AsyncIterator[Callable[..., FaultNet]]:
    """``make_net(proxy=True, seed=...)``: a 4-validator net, not started yet."""
    nets: list[FaultNet] = []

    def make(**options) -> FaultNet:
        net = FaultNet.create(tmp_path / f"net{len(nets)}", **options)
        nets.append(net)
        return net

    try:
        yield make
    finally:
        for net in nets:
            await net.close()
