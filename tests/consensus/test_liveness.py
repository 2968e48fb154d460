"""Liveness with a validator down, and the double-sign guard, in the deterministic
simulation (consensus_sim.py): virtual time, fixed seeds.

* Leader reputation: a validator absent from the last committed blocks' certificates
  drops out of the proposer rotation, so its turns stop costing a view-change timeout
  each; it is back in the rotation once it signs again. Every honest node computes
  the same proposer (else the chain would stall or fork: agreement is checked).
* The double-sign guard: a validator that lost its sign log (restarted with none, as
  after an operator wiped it) signs nothing until a height has committed live, so it
  never signs a second vote for a (height, view, phase) it signed before the loss.
"""

from __future__ import annotations

import logging

import pytest
from consensus_sim import Simulation, install_verify_cache, run_to

from chain.block import VoteKind
from consensus.core import REPUTATION_WINDOW, block_activity
from consensus.messages import VoteMessage

SEEDS = [seed if seed < 30 else pytest.param(seed, marks=pytest.mark.slow)
         for seed in range(100)]


@pytest.fixture(autouse=True)
def fast_and_quiet(monkeypatch, caplog):
    install_verify_cache(monkeypatch)
    caplog.set_level(logging.ERROR, logger="agora.consensus")


def view_changes(sim: Simulation, nodes) -> int:
    return sum(n.core.view_changes for n in nodes)


@pytest.mark.parametrize("seed", SEEDS)
def test_a_stopped_validator_leaves_the_rotation_and_returns_when_it_signs(seed: int) -> None:
    sim = Simulation(4, seed)
    sim.start()
    run_to(sim, 3, max_time=100)
    dead = seed % 4
    sim.crash(dead)
    live = [n for n in sim.nodes if n.index != dead]
    # Within a window (plus the one-block lag) it is out of every live node's rotation.
    start = max(sim.heights(live))
    run_to(sim, start + REPUTATION_WINDOW + 3, max_time=sim.now + 400, nodes=live)
    dead_address = sim.keys[dead].address
    for node in live:
        assert dead_address not in node.core.rotation(node.core.height)
    # From then on, no height needs a view change: 30 heights, none.
    before = view_changes(sim, live)
    target = max(sim.heights(live)) + 30
    run_to(sim, target, max_time=sim.now + 60, nodes=live)
    assert view_changes(sim, live) == before, "a dead proposer still costs view changes"
    # Every block of the stretch was proposed by a live validator, in turn.
    blocks = live[0].app.blocks[target - 30:target]
    assert all(b.header.proposer != dead_address for b in blocks)
    # It comes back (from its sign log and chain), syncs, signs, and is a proposer again.
    sim.restart(dead)
    back_at = max(sim.heights(live))
    run_to(sim, back_at + 3 * REPUTATION_WINDOW, max_time=sim.now + 2_000)
    later = sim.nodes[(dead + 1) % 4].app.blocks[back_at + REPUTATION_WINDOW:]
    assert any(dead_address in block_activity(b) for b in later), "it never signed again"
    assert any(b.header.proposer == dead_address for b in later), "never proposed again"
    sim.assert_agreement()


@pytest.mark.parametrize("seed", SEEDS)
def test_a_validator_that_lost_its_sign_log_never_double_signs(seed: int) -> None:
    """It crashed right after a PREPARE, came back with no sign log, and its
    proposer equivocates at that height: the guard keeps it from signing anything at
    that height, however the messages fall."""
    sim = Simulation(4, seed)
    sim.start()
    run_to(sim, 2 + seed % 5, max_time=200)
    victim = 1 + seed % 3
    signed: dict[tuple[int, int, int], set[bytes]] = {}
    crashed: list[int] = []

    def watch(node, message) -> None:
        if node.index == victim and type(message) is VoteMessage:
            vote = message.vote
            signed.setdefault((vote.height, vote.view, vote.kind), set()).add(vote.block_hash)
            if vote.kind == VoteKind.PREPARE and not crashed:
                crashed.append(vote.height)
                sim.crash(victim)

    sim.after_broadcast = watch
    assert sim.run(lambda: bool(crashed), max_time=sim.now + 500), "the victim never prepared"
    node = sim.restart(victim, lose_signlog=True)
    assert node.core.guarded
    run_to(sim, crashed[0] + 6, max_time=sim.now + 2_000)
    assert not node.core.guarded, "the guard never lifted"
    # One block hash per (height, view, kind) it ever signed: no double vote.
    assert all(len(hashes) == 1 for hashes in signed.values()), signed
    assert not [e for e in sim.evidence if e.validator == sim.keys[victim].address]
    # It signs again after the guard (a later vote of its own was broadcast).
    assert any(h > crashed[0] for (h, _, _) in signed)
    sim.assert_agreement()


def test_the_guard_holds_while_the_others_are_not_committing() -> None:
    """Guarded and the chain stalled (two of four down): it must not sign to help."""
    sim = Simulation(4, 3)
    sim.start()
    run_to(sim, 4, max_time=100)
    sim.crash(0)
    sim.crash(1)
    node = sim.restart(2, lose_signlog=True)
    height = node.core.height
    sim.run(lambda: False, max_time=sim.now + 120)
    assert node.core.guarded and node.core.height == height
    assert not node.core.signlog.signed, "a guarded validator signed something"
