"""The consensus core in a deterministic simulated network: random delays and
reordering, crashes, Byzantine validators, partitions and restarts from the sign log.

Every scenario runs over 50 fixed seeds by default and 100 under ``pytest -m slow``,
which also runs 1,000 more of the main one. Time is virtual, so a run of 200 heights takes a fraction of a second.
"""

from __future__ import annotations

import logging

import pytest
from consensus_sim import CHAIN, Behaviour, Simulation, install_verify_cache, run_to

from chain.block import VoteKind
from consensus.messages import Proposal, VoteMessage
from consensus.signlog import PREPARE

# Seeds 0-49 in the default suite (it must fit CI's ten minutes); 50-99 join under -m slow.
SEEDS = [seed if seed < 50 else pytest.param(seed, marks=pytest.mark.slow) for seed in range(100)]


@pytest.fixture(autouse=True)
def fast_and_quiet(monkeypatch, caplog):
    install_verify_cache(monkeypatch)
    caplog.set_level(logging.ERROR, logger="agora.consensus")


@pytest.mark.parametrize("n", [4, 7])
@pytest.mark.parametrize("seed", SEEDS)
def test_honest_validators_agree_on_200_heights(n: int, seed: int) -> None:
    sim = Simulation(n, seed)
    sim.start()
    run_to(sim, 200, max_time=2_000)
    sim.assert_agreement()
    assert not sim.evidence and not any(node.rejected for node in sim.nodes)


@pytest.mark.slow
@pytest.mark.parametrize("seed", range(100, 1_100))
def test_honest_validators_agree_many_seeds(seed: int) -> None:
    sim = Simulation(4 + seed % 4, seed)
    sim.start()
    run_to(sim, 100, max_time=2_000)
    sim.assert_agreement()


@pytest.mark.parametrize("seed", SEEDS)
def test_a_crashed_proposer_is_replaced_by_view_change(seed: int) -> None:
    sim = Simulation(4, seed)
    sim.start()
    run_to(sim, 3 + seed % 4, max_time=100)
    next_height = max(sim.heights()) + 1
    sim.crash(next_height % 4)  # the proposer of the next height, view 0
    alive = [n for n in sim.nodes if n.alive]
    before = min(sim.heights(alive))
    run_to(sim, before + 12, max_time=2_000, nodes=alive)
    sim.assert_agreement()
    # The dead validator's turns were taken over in a later view.
    views = [c.view for c in alive[0].app.certificates[before:]]
    assert any(v > 0 for v in views), views


@pytest.mark.parametrize("seed", SEEDS)
def test_an_equivocating_proposer_cannot_split_the_honest(seed: int) -> None:
    sim = Simulation(4, seed, behaviours={seed % 4: Behaviour(equivocate_proposals=True)})
    sim.start()
    run_to(sim, 20, max_time=2_000)
    sim.assert_agreement()


@pytest.mark.parametrize("seed", SEEDS)
def test_a_double_voter_is_caught_and_cannot_split_the_honest(seed: int) -> None:
    byzantine = seed % 4
    sim = Simulation(4, seed, behaviours={byzantine: Behaviour(double_vote=True,
                                                               equivocate_proposals=True)})
    sim.start()
    run_to(sim, 20, max_time=2_000)
    sim.assert_agreement()
    culprit = sim.keys[byzantine].address
    assert sim.evidence, "the double votes were not noticed"
    for evidence in sim.evidence:
        assert evidence.validator == culprit
        first, second = evidence.first, evidence.second
        assert first.block_hash != second.block_hash  # type: ignore[union-attr]
        assert (first.kind, first.height, first.view) == (  # type: ignore[union-attr]
            second.kind, second.height, second.view)  # type: ignore[union-attr]
        public_key = sim.keys[byzantine].public_key
        assert first.verify(CHAIN, public_key) and second.verify(CHAIN, public_key)  # type: ignore[union-attr]
    for node in sim.honest:
        assert all(e.validator == culprit for e in node.core.evidence)


@pytest.mark.parametrize("seed", SEEDS)
def test_a_two_two_partition_commits_nothing_then_heals(seed: int) -> None:
    sim = Simulation(4, seed)
    sim.start()
    run_to(sim, 5, max_time=100)
    sim.partition = [{0, 1}, {2, 3}]
    split_at = sim.heights()
    sim.run(lambda: False, max_time=sim.now + 30)
    # A block may still finish if its COMMITs were in flight before the split, but
    # nothing new can be decided: each side holds half the power.
    assert max(sim.heights()) <= max(split_at) + 1
    stalled = sim.heights()
    sim.run(lambda: False, max_time=sim.now + 30)
    assert sim.heights() == stalled
    sim.partition = None
    run_to(sim, max(stalled) + 5, max_time=sim.now + 2_000)
    sim.assert_agreement()


@pytest.mark.parametrize("seed", SEEDS)
def test_a_validator_restarted_after_prepare_never_signs_a_conflicting_vote(seed: int) -> None:
    sim = Simulation(4, seed)
    sim.start()
    run_to(sim, 2 + seed % 5, max_time=200)
    victim = 1 + seed % 3
    crashed: list[tuple[int, int, bytes]] = []

    def crash_after_prepare(node, message) -> None:
        if (node.index == victim and not crashed and type(message) is VoteMessage
                and message.vote.kind == VoteKind.PREPARE):
            vote = message.vote
            crashed.append((vote.height, vote.view, vote.block_hash))
            sim.crash(victim)

    sim.after_broadcast = crash_after_prepare
    assert sim.run(lambda: bool(crashed), max_time=sim.now + 500), "the victim never prepared"
    height, view, prepared_hash = crashed[0]
    sim.after_broadcast = None

    node = sim.restart(victim)
    assert node.core.height == height and node.core.view == view
    assert node.core.signlog.signed[(height, view, PREPARE)] == prepared_hash
    # Its proposer now equivocates: a different block for the same (height, view).
    proposer_index = next(i for i, k in enumerate(sim.keys)
                          if k.address == node.core.proposer(height, view))
    if view == 0 and proposer_index != victim:
        other = node.app.propose(height, view, node.core.last_commit,
                                 proposer=sim.keys[proposer_index].address, salt=7)
        assert other.hash != prepared_hash
        conflicting = Proposal.create(sim.keys[proposer_index], CHAIN, view, other)
        actions = node.core.on_message(conflicting, sim.now)
        signed = [a.message.vote for a in actions
                  if type(getattr(a, "message", None)) is VoteMessage]
        assert all(v.block_hash == prepared_hash for v in signed
                   if (v.height, v.view) == (height, view)), signed
    assert node.core.signlog.signed[(height, view, PREPARE)] == prepared_hash
    # And the chain carries on with it.
    run_to(sim, height + 3, max_time=sim.now + 2_000)
    sim.assert_agreement()


# ---------------------------------------------------------------------- regressions from the second review


@pytest.mark.parametrize("seed", SEEDS)
def test_commits_resume_after_a_validator_was_alone_for_a_while(seed: int) -> None:
    """Review 2 (stall_lone_leader): n=4 and one validator dead for good; two more
    crash, so the fourth is alone for a minute, then they come back. Three honest and
    connected validators must commit again. The lone one used to climb a view per
    timeout and, with timeouts capped, the others could never catch up with it: the
    chain halted for good."""
    sim = Simulation(4, seed)
    sim.start()
    run_to(sim, 5, max_time=100)
    dead, a, b, alone = ((seed + k) % 4 for k in range(4))
    for i in (dead, a, b):
        sim.crash(i)
    view_before = sim.nodes[alone].core.view
    sim.run(lambda: False, max_time=sim.now + 60)  # 7+ view timeouts, capped at 8 s
    # Alone, it repeats its view change rather than climbing.
    assert sim.nodes[alone].core.view <= view_before + 1
    sim.restart(a)
    sim.restart(b)
    live = [sim.nodes[i] for i in (a, b, alone)]
    run_to(sim, max(sim.heights(live)) + 5, max_time=sim.now + 120, nodes=live)
    sim.assert_agreement()


@pytest.mark.parametrize("seed", SEEDS)
def test_commits_resume_after_a_validator_was_cut_off_for_a_while(seed: int) -> None:
    """Review 2 (stall_partition): as above, but the lone validator is cut off from
    the other two for a minute instead of them being down, and nobody restarts.

    STILL FAILS for a few seeds at 8dff90a. Once the network heals, the lone validator
    receives the others' repeated VIEW-CHANGEs for view 1: with its own, a quorum, so
    at its next timeout it moves on to view 2. Its own VIEW-CHANGE for view 1 was lost
    in the partition and is never sent again; the other two stay in view 1 with 2 of 4
    (view 1's proposer is the dead one), it stays in view 2 alone (1 < f+1), and each
    side ignores the other's repeats for good."""
    sim = Simulation(4, seed)
    sim.start()
    run_to(sim, 5, max_time=100)
    # The dead one is the proposer of view 1 at the next height (the worst case).
    dead = (max(sim.heights()) + 2) % 4
    a, b, alone = sorted({0, 1, 2, 3} - {dead}, key=lambda i: (i - seed) % 4)
    sim.crash(dead)
    sim.partition = [{a, b}, {alone}]
    sim.run(lambda: False, max_time=sim.now + 60)
    sim.partition = None
    live = [sim.nodes[i] for i in (a, b, alone)]
    run_to(sim, max(sim.heights(live)) + 5, max_time=sim.now + 120, nodes=live)
    sim.assert_agreement()


@pytest.mark.parametrize("seed", range(5))
def test_an_endless_double_voter_does_not_use_up_evidence_detection(seed: int,
                                                                      monkeypatch) -> None:
    """The evidence budget was one for the node's life: an equivocator signing
    conflicts at every height filled it, and from then on nobody's conflicts were
    noticed (until a restart). It is per height now; a small budget shows it."""
    import consensus.core

    monkeypatch.setattr(consensus.core, "_MAX_EVIDENCE", 8)
    byzantine = seed % 4
    sim = Simulation(4, seed, behaviours={byzantine: Behaviour(double_vote=True)})
    sim.start()
    run_to(sim, 40, max_time=2_000)
    sim.assert_agreement()
    late = [e for e in sim.evidence if e.first.height > 30]  # type: ignore[union-attr]
    assert late, "conflicts after the budget filled went unnoticed"
    for node in sim.honest:
        assert len(node.core.evidence) <= 8


def test_a_late_proposal_for_the_height_just_decided_blames_nobody() -> None:
    """A proposal that arrives after its height was decided was checked against the
    plain rotation of that height (its reputation window had moved on): an honest,
    late proposer was refused and punished."""
    sim = Simulation(5, 4, delay=(0.001, 0.3))
    sim.start()
    run_to(sim, 3, max_time=200)
    sim.crash(4)
    alive = [n for n in sim.nodes if n.alive]
    run_to(sim, 40, max_time=4_000, nodes=alive)
    sim.assert_agreement()
    assert not [r for n in alive for r in n.rejected if "names proposer" in r
                or "signature does not verify" in r]
