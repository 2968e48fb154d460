"""The light client against simulated chains (no node): verification sequential, by
skipping and by bisection across validator-set changes; the store and restart; the
trusting period; liars caught (forged headers, short certificates, the wrong set,
conflicting witnesses, a stale primary), each dropped and never believed."""

from __future__ import annotations

import dataclasses

import pytest

from chain.block import CommitCertificate
from chain.evidence import COMMIT
from node.light.client import LightClient, Options
from node.light.errors import InvalidLightBlock, NoHonestNode, NotEnoughTrust, TrustExpired
from node.light.simchain import SimProvider, build, keys, sign, vset
from node.light.store import LightStore
from node.light.verifier import DAY_MS, LightBlock, Trusted, verify
from storage.kv import MemoryKV

START = 1_700_000_000_000
V = keys("sim", 4)
NEW = keys("new", 8)


def now_after(chain, extra_ms: int = 1_000) -> int:
    return chain.block(chain.height).header.time_ms + extra_ms


def client(chain, primary=None, witnesses=(), *, store=None, clock=None, **opts):
    primary = primary or SimProvider(chain)
    return LightClient(chain.genesis, store if store is not None else LightStore(MemoryKV()), primary,
                       list(witnesses), options=Options(**opts),
                       clock=clock or (lambda: now_after(chain)))


# ---------------------------------------------------------------- verifier


def test_adjacent_and_skipping_verify_and_lies_do_not():
    chain = build(20, start_ms=START, validators=V)
    root = Trusted(0, chain.genesis.hash, START, chain.genesis.validators,
                   chain.genesis.validators.hash)
    now = now_after(chain)
    verify(root, chain.block(1), chain_id=chain.genesis.chain_id, now_ms=now)
    verify(Trusted.of(chain.block(1)), chain.block(20), chain_id="light-sim", now_ms=now)
    b5 = chain.block(5)
    # a forged header: another state root, the same certificate
    forged = LightBlock(dataclasses.replace(b5.header, state_root=bytes(32)), b5.commit,
                        b5.validators)
    with pytest.raises(InvalidLightBlock):
        verify(Trusted.of(chain.block(4)), forged, chain_id="light-sim", now_ms=now)
    with pytest.raises(InvalidLightBlock):
        verify(Trusted.of(chain.block(1)), forged, chain_id="light-sim", now_ms=now)
    # a certificate short of quorum (2 of 4)
    short = LightBlock(b5.header, sign(b5.header, V[:2]), b5.validators)
    with pytest.raises(InvalidLightBlock, match="more than 2/3"):
        verify(Trusted.of(chain.block(4)), short, chain_id="light-sim", now_ms=now)
    # a certificate signed by another set, with that set given
    other = keys("evil", 4)
    wrong = LightBlock(b5.header, sign(b5.header, other), vset(other))
    with pytest.raises(InvalidLightBlock, match="not the one its header commits to"):
        verify(Trusted.of(chain.block(4)), wrong, chain_id="light-sim", now_ms=now)
    with pytest.raises(InvalidLightBlock):
        verify(Trusted.of(chain.block(1)), wrong, chain_id="light-sim", now_ms=now)


def test_skipping_needs_a_third_of_the_trusted_set():
    # The whole set is replaced at 10: from 5, nothing of the trusted set signed 15.
    chain = build(20, start_ms=START, validators=V, changes={10: NEW[:4]})
    with pytest.raises(NotEnoughTrust):
        verify(Trusted.of(chain.block(5)), chain.block(15), chain_id="light-sim",
               now_ms=now_after(chain))


def test_trust_expires():
    chain = build(3, start_ms=START, validators=V)
    with pytest.raises(TrustExpired, match="trusting period"):
        verify(Trusted.of(chain.block(1)), chain.block(3), chain_id="light-sim",
               now_ms=START + 8 * DAY_MS)


# ---------------------------------------------------------------- client


async def test_follows_across_set_changes_by_bisection():
    # Two full replacements: skipping from genesis must bisect down to the changes.
    chain = build(200, start_ms=START, validators=V, changes={50: NEW[:4], 120: NEW[4:8]})
    primary = SimProvider(chain)
    c = client(chain, primary)
    await c.start()
    head = await c.sync()
    assert head is not None and head.height == 200 and head.hash == chain.block(200).hash
    kept = c.store.heights()
    assert 200 in kept and len(kept) < 30, kept  # bisection, not every height
    # verified below the head on demand, from the nearest kept header
    b77 = await c.verify_height(77)
    assert b77.hash == chain.block(77).hash


async def test_sequential_mode_verifies_every_height():
    chain = build(120, start_ms=START, validators=V, changes={60: NEW[:4]})
    c = client(chain, sequential=True)
    await c.start()
    await c.sync()
    assert c.store.heights() == list(range(1, 121))


async def test_restart_resumes_from_the_store():
    chain = build(50, start_ms=START, validators=V)
    kv = MemoryKV()
    c = client(chain, store=LightStore(kv))
    await c.start()
    await c.sync()
    # more blocks; a new client on the same store starts at 50, asks nothing below
    build_more = chain
    from node.light.simchain import extend
    extend(build_more, 10)
    primary = SimProvider(chain)
    again = client(chain, primary, store=LightStore(kv))
    await again.start()
    assert again.height == 50
    await again.sync()
    assert again.height == 60


async def test_resume_refused_after_the_trusting_period():
    chain = build(5, start_ms=START, validators=V)
    kv = MemoryKV()
    c = client(chain, store=LightStore(kv))
    await c.start()
    await c.sync()
    late = client(chain, store=LightStore(kv), clock=lambda: START + 30 * DAY_MS)
    with pytest.raises(TrustExpired, match="--trust-height"):
        await late.start()


async def test_trusted_hash_start_and_a_wrong_hash():
    chain = build(30, start_ms=START, validators=V)
    c = client(chain)
    await c.start(10, chain.block(10).hash)
    await c.sync()
    assert c.height == 30
    bad = client(chain)
    with pytest.raises(Exception, match="not the trusted"):
        await bad.start(10, bytes(32))


def forge(block: LightBlock) -> LightBlock:
    return LightBlock(dataclasses.replace(block.header, state_root=b"\x66" * 32),
                      block.commit, block.validators)


async def test_a_forging_primary_is_caught_and_replaced_by_a_witness():
    chain = build(40, start_ms=START, validators=V)
    liar = SimProvider(chain, "sim://liar", tamper=lambda b: forge(b) if b.height == 40 else b)
    honest = SimProvider(chain, "sim://honest")
    c = client(chain, liar, [honest])
    await c.start()
    head = await c.sync()
    assert head is not None and head.hash == chain.block(40).hash
    assert c.primary is honest
    assert [r.node for r in c.reports] == ["sim://liar"]
    assert c.reports[0].what == "invalid header"


async def test_a_conflicting_witness_that_does_not_verify_is_dropped():
    chain = build(40, start_ms=START, validators=V)
    primary = SimProvider(chain)
    liar = SimProvider(chain, "sim://witness-liar", tamper=forge)
    c = client(chain, primary, [liar])
    await c.start()
    head = await c.sync()
    assert head is not None and head.hash == chain.block(40).hash
    assert c.witnesses == [] and c.reports[0].what == "conflicting header"
    assert c.reports[0].node == "sim://witness-liar"


async def test_a_fork_signed_by_the_validators_yields_double_sign_evidence():
    chain = build(40, start_ms=START, validators=V)

    def fork(b: LightBlock) -> LightBlock:
        if b.height != 40:
            return b
        header = dataclasses.replace(b.header, state_root=b"\x01" * 32)
        return LightBlock(header, sign(header, V), b.validators)

    lying_primary = SimProvider(chain, "sim://forked", tamper=fork)
    w1, w2 = SimProvider(chain, "sim://w1"), SimProvider(chain, "sim://w2")
    reported = []

    async def report(evidence, to):
        reported.append((evidence, to.url))

    c = client(chain, lying_primary, [w1, w2])
    c.report_evidence = report
    await c.start()
    assert await c.sync() is None  # the primary's head lost to both witnesses
    assert c.reports[0].node == "sim://forked" and len(c.reports[0].evidence) == 4
    assert {e.kind for e in c.reports[0].evidence} == {COMMIT}
    assert reported and reported[0][1] == "sim://w1"
    assert c.primary is w1
    head = await c.sync()
    assert head is not None and head.hash == chain.block(40).hash


async def test_a_stale_primary_is_dropped():
    chain = build(30, start_ms=START, validators=V)
    t = [now_after(chain)]
    stale = SimProvider(chain, "sim://stale", head=20)
    witness = SimProvider(chain, "sim://w")
    c = client(chain, stale, [witness], clock=lambda: t[0], stale_after_ms=5_000)
    await c.start()
    await c.sync()
    assert c.height == 20 and c.primary is stale
    assert await c.sync() is None  # behind a verified witness: the clock starts
    assert not c.reports
    t[0] += 6_000
    await c.sync()
    assert c.reports and c.reports[0].what == "stale" and c.primary is witness
    await c.sync()
    assert c.height == 30


async def test_every_node_caught_means_no_answer():
    chain = build(10, start_ms=START, validators=V)
    liar = SimProvider(chain, "sim://liar", tamper=forge)
    c = client(chain, liar)
    await c.start()
    with pytest.raises(NoHonestNode):
        await c.sync()
    assert c.height == 0


async def test_a_certificate_for_another_height_is_refused():
    chain = build(10, start_ms=START, validators=V)

    def other_cert(b: LightBlock) -> LightBlock:
        c9 = chain.block(9).commit
        return LightBlock(b.header, CommitCertificate(c9.height, c9.view, c9.block_hash,
                                                      c9.signatures), b.validators)

    c = client(chain, SimProvider(chain, tamper=other_cert))
    await c.start()
    with pytest.raises(NoHonestNode):
        await c.sync()
    assert "height" in c.reports[0].detail


async def test_a_fork_one_against_one_halts_instead_of_guessing():
    chain = build(40, start_ms=START, validators=V)

    def fork(b: LightBlock) -> LightBlock:
        if b.height != 40:
            return b
        header = dataclasses.replace(b.header, state_root=b"\x02" * 32)
        return LightBlock(header, sign(header, V), b.validators)

    primary, witness = SimProvider(chain, "sim://p"), SimProvider(chain, "sim://w", tamper=fork)
    reported = []

    async def report(evidence, to):
        reported.append(to.url)

    c = client(chain, primary, [witness])
    c.report_evidence = report
    await c.start()
    assert await c.sync() is None and c.height == 0
    assert "stops following" in c.halted and c.reports[0].what == "fork"
    assert sorted(reported) == ["sim://p", "sim://w"]  # both told: one is honest
    with pytest.raises(Exception, match="two chains"):
        await c.sync()


def test_watch_takes_an_address_or_a_localnet_name(tmp_path):
    import json

    from chain.address import address_to_text
    from node.light.service import _watched
    address = bytes.fromhex("ab" * 20)
    (tmp_path / "localnet.json").write_text(json.dumps(
        {"accounts": [{"name": "merchant", "address": address_to_text(address)}]}))
    genesis = str(tmp_path / "genesis.json")
    assert _watched(address_to_text(address), None) == address
    assert _watched("merchant", genesis) == address
    with pytest.raises(ValueError, match="agora1"):
        _watched("nobody", genesis)
