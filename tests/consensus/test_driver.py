"""The asyncio driver (consensus/driver.py) between a real core and a fake network.

Each test builds drivers over ``FakeApp`` (consensus_sim) and a :class:`FakeNetwork`
that records what the driver broadcasts, asks and punishes; two drivers are wired
together by answering one's requests with the other's request handlers. Nothing
waits on a guess: the loop is driven by awaiting the driver's own tasks (the
transaction fetches in ``_assembling``, the sync task), each bounded by a timeout.

The four validators are consensus_sim's; the proposer of height 1, view 0 is
validator 1. Timeouts are long, so no timer fires unless a test makes it.
"""

from __future__ import annotations

import asyncio
import dataclasses
import random
from collections.abc import Awaitable, Callable
from types import SimpleNamespace

import pytest
from consensus_sim import CHAIN, FakeApp, keys

from chain.block import MAX_BLOCK_TXS, Block, CommitCertificate, Vote, VoteKind, tx_root
from chain.codec import pack, unpack
from chain.hashing import Domain, sha256
from chain.keys import PrivateKey
from chain.tx import Transaction, Transfer
from chain.validators import Validator, ValidatorSet
from consensus.core import Core, SetTimer, Timeouts, Timer, TimerKind
from consensus.driver import BLOCK_REQUEST, TXS_REQUEST, ConsensusDriver
from consensus.errors import InvalidProposal
from consensus.messages import (
    CompactProposal,
    Decision,
    Proposal,
    ViewChangeMessage,
    VoteMessage,
    decode_message,
    encode_message,
)
from consensus.signlog import SignLog
from p2p.errors import RequestFailed

KEYS = keys(4)
VSET = ValidatorSet(Validator(k.public_key, 1) for k in KEYS)
PROPOSER = 1  # of height 1, view 0
#: Node ids: one per validator, then peers that are not validators.
NODE = [bytes([0xA0 + i]) * 32 for i in range(6)]
MALLORY = NODE[5]
SLOW = Timeouts(block_interval=30.0, idle_interval=60.0, view_timeout=60.0,
                max_view_timeout=600.0)
SENDER = PrivateKey.from_seed_text("driver-test-sender")
TXS = [Transaction.create(SENDER, CHAIN, n, Transfer(bytes(20), 1), gas_limit=21_000,
                          gas_price=1) for n in range(6)]
WAIT = 5.0  # upper bound on any await of the driver's tasks

Answer = Callable[[str, bytes], Awaitable[bytes]]


# ---------------------------------------------------------------------- fakes


class FakeNetwork:
    """Exactly what the driver uses of ``p2p.peers.PeerManager``."""

    def __init__(self, node_id: bytes) -> None:
        self.node_id = node_id
        self.on_consensus: Callable[[bytes, bytes], None] | None = None
        self.request_handlers: dict[str, Callable[[bytes, bytes], Awaitable[bytes]]] = {}
        self.on_peer_connected: list[Callable[[object], None]] = []
        self.peers: dict[bytes, SimpleNamespace] = {}
        self.answers: dict[bytes, Answer] = {}
        self.sent: list[bytes] = []
        #: What was sent to one peer only (network.send): (node id, body).
        self.sent_to: list[tuple[bytes, bytes]] = []
        self.requests: list[tuple[bytes, str, bytes]] = []
        self.punished: list[tuple[bytes, str]] = []

    def connect(self, node_id: bytes, *, height: int = 0, answer: Answer | None = None) -> None:
        """A peer completes its HELLO at ``height``; ``answer`` answers our requests."""
        peer = SimpleNamespace(node_id=node_id, hello=SimpleNamespace(height=height))
        self.peers[node_id] = peer
        if answer is not None:
            self.answers[node_id] = answer
        for callback in self.on_peer_connected:
            callback(peer)

    def deliver(self, node_id: bytes, body: bytes) -> None:
        assert self.on_consensus is not None
        self.on_consensus(node_id, body)

    def broadcast(self, body: bytes, *, validators_only: bool = False) -> int:
        self.sent.append(body)
        return len(self.peers)

    def send(self, node_id: bytes, body: bytes) -> bool:
        self.sent_to.append((node_id, body))
        return node_id in self.peers

    async def request(self, node_id: bytes, method: str, body: bytes,
                      timeout: float | None = None) -> bytes:
        self.requests.append((node_id, method, body))
        answer = self.answers.get(node_id)
        if node_id not in self.peers or answer is None:
            raise RequestFailed("not connected")
        return await answer(method, body)

    def punish(self, node_id: bytes, reason: str) -> None:
        self.punished.append((node_id, reason))
        self.peers.pop(node_id, None)  # like the real one: dropped and banned

    def sent_messages(self) -> list:
        return [decode_message(body) for body in self.sent]

    def prepares(self) -> list[bytes]:
        """Block hashes of the PREPAREs broadcast."""
        return [m.vote.block_hash for m in self.sent_messages()
                if type(m) is VoteMessage and m.vote.kind == VoteKind.PREPARE]


def served_by(other: FakeNetwork, me: bytes) -> Answer:
    """Answer requests with ``other``'s handlers (another driver), as peer ``me``."""
    async def answer(method: str, body: bytes) -> bytes:
        handler = other.request_handlers.get(method)
        if handler is None:
            raise RequestFailed(f"unknown method {method!r}")
        return await handler(me, body)
    return answer


def answering(body: bytes | None) -> Answer:
    """A peer that answers every request with ``body`` (None: the request fails)."""
    async def answer(method: str, request: bytes) -> bytes:
        if body is None:
            raise RequestFailed("peer answered: busy")
        return body
    return answer


class TxApp(FakeApp):
    """FakeApp whose blocks carry ``block_txs`` (with the right tx_root and count)."""

    def __init__(self, validators: ValidatorSet, block_txs=()) -> None:
        super().__init__(validators)
        self.block_txs = tuple(block_txs)

    def propose(self, height, view, last_commit, proposer=b"", salt=0) -> Block:
        block = super().propose(height, view, last_commit, proposer, salt)
        header = dataclasses.replace(block.header, tx_root=tx_root(self.block_txs),
                                     tx_count=len(self.block_txs))
        return Block(header, self.block_txs, last_commit)


class ChainSource:
    """A BlockSource over a FakeApp's committed chain, up to ``limit`` if set."""

    def __init__(self, app: FakeApp, limit: int | None = None) -> None:
        self.app = app
        self.limit = limit

    def _has(self, height: int) -> bool:
        top = len(self.app.blocks) if self.limit is None else self.limit
        return 1 <= height <= top

    def block(self, height: int) -> Block | None:
        return self.app.blocks[height - 1] if self._has(height) else None

    def commit(self, height: int) -> CommitCertificate | None:
        return self.app.certificates[height - 1] if self._has(height) else None


class ForgedCertificates(ChainSource):
    """Serves the right blocks with certificates cut below a quorum."""

    def commit(self, height: int) -> CommitCertificate | None:
        cert = super().commit(height)
        return None if cert is None else dataclasses.replace(cert,
                                                             signatures=cert.signatures[:1])


class NoShuffle(random.Random):
    """Keeps peers in connection order, so which peer sync asks first is known."""

    def shuffle(self, x, *args) -> None:
        pass


def build_chain(n: int) -> FakeApp:
    """A FakeApp with ``n`` committed blocks, each with a quorum certificate."""
    app = FakeApp(VSET)
    cert = None
    for height in range(1, n + 1):
        block = app.propose(height, 0, cert)
        cert = CommitCertificate.from_votes(
            Vote.create(k, CHAIN, VoteKind.COMMIT, height, 0, block.hash) for k in KEYS[:3])
        app.commit(block, cert)
    return app


# ---------------------------------------------------------------------- helpers


@pytest.fixture
async def drivers():
    made: list[ConsensusDriver] = []
    yield made
    async with asyncio.timeout(WAIT):
        for driver in made:
            await driver.stop()


async def start(drivers: list, index: int, *, app: FakeApp | None = None, mempool=(),
                blocks=None, rng: random.Random | None = None,
                run: bool = True) -> tuple[ConsensusDriver, FakeNetwork]:
    """Validator ``index``'s driver over a fresh FakeNetwork, started."""
    app = app if app is not None else TxApp(VSET)
    height = len(app.blocks)
    core = Core(CHAIN, VSET, app, SignLog.in_memory(), key=KEYS[index], height=height,
                last_commit=app.certificates[-1] if height else None,
                last_block=app.blocks[-1] if height else None, timeouts=SLOW)
    net = FakeNetwork(NODE[index])
    driver = ConsensusDriver(core, net, app, blocks or ChainSource(app),
                             {tx.hash: tx for tx in mempool}, rng=rng or random.Random(7))
    drivers.append(driver)
    if run:
        await driver.start()
    return driver, net


async def propose(drivers: list, txs) -> tuple[ConsensusDriver, FakeNetwork, Block]:
    """The proposer of height 1 proposes a block of ``txs`` (its propose timer fires)."""
    p, pnet = await start(drivers, PROPOSER, app=TxApp(VSET, txs), mempool=txs)
    p._fire(Timer(TimerKind.PROPOSE, 1, 0), None)
    proposal = p.core.state.proposal
    assert proposal is not None and proposal.block.txs == tuple(txs)
    return p, pnet, proposal.block


async def settle(driver: ConsensusDriver) -> None:
    """Wait for the driver's transaction fetches in flight."""
    async with asyncio.timeout(WAIT):
        await asyncio.gather(*driver._assembling)
    assert not driver._assembling


async def synced(driver: ConsensusDriver) -> None:
    assert driver._sync_task is not None
    async with asyncio.timeout(WAIT):
        await driver._sync_task
    assert not driver.syncing


# ---------------------------------------------------------------------- compact proposals


async def test_a_proposal_with_txs_is_broadcast_compact(drivers) -> None:
    p, pnet, block = await propose(drivers, TXS[:3])
    first, second = pnet.sent_messages()
    assert type(first) is CompactProposal
    assert first.tx_hashes == tuple(tx.hash for tx in TXS[:3])
    assert (first.view, first.header, first.last_commit) == (0, block.header, None)
    assert first.verify(CHAIN, KEYS[PROPOSER].public_key)
    assert first.assemble(tuple(TXS[:3])) == p.core.state.proposal
    assert len(pnet.sent[0]) < len(encode_message(p.core.state.proposal))
    # Then its own PREPARE; and it keeps the block to serve the transactions.
    assert pnet.prepares() == [block.hash] and type(second) is VoteMessage
    assert list(p._recent) == [block.hash]


async def test_a_proposal_without_txs_is_broadcast_whole(drivers) -> None:
    p, pnet, block = await propose(drivers, ())
    first = pnet.sent_messages()[0]
    assert type(first) is Proposal and first == p.core.state.proposal
    assert first.block == block and block.txs == ()
    assert not p._recent


async def test_a_receiver_holding_every_tx_prepares_without_asking(drivers) -> None:
    _, pnet, block = await propose(drivers, TXS[:3])
    r, rnet = await start(drivers, 2, mempool=TXS[:4])
    rnet.connect(NODE[PROPOSER], answer=answering(None))
    rnet.deliver(NODE[PROPOSER], pnet.sent[0])
    assert not r._assembling and rnet.requests == []
    assert rnet.prepares() == [block.hash]
    vote = rnet.sent_messages()[0].vote
    assert (vote.height, vote.view, vote.validator) == (1, 0, KEYS[2].address)
    assert r.core.state.proposal.block == block and not rnet.punished


async def test_missing_txs_are_fetched_from_the_proposers_recent_proposals(drivers) -> None:
    p, pnet, block = await propose(drivers, TXS[:3])
    p.txs.clear()  # its mempool no longer has them: served from the proposal it keeps
    r, rnet = await start(drivers, 2, mempool=[TXS[1]])
    rnet.connect(NODE[PROPOSER], answer=served_by(pnet, NODE[2]))
    rnet.deliver(NODE[PROPOSER], pnet.sent[0])
    assert rnet.prepares() == []  # not before the transactions came
    await settle(r)
    assert rnet.requests == [(NODE[PROPOSER], TXS_REQUEST, pack([TXS[0].hash, TXS[2].hash]))]
    assert rnet.prepares() == [block.hash]
    assert r.core.state.proposal.block == block
    assert not rnet.punished and not pnet.punished
    # The receiver can now serve them in turn.
    answer = await r._serve_txs(NODE[3], pack([TXS[2].hash]))
    assert unpack(answer, len(answer)) == [TXS[2].encode()]


def _resigned(compact: CompactProposal, key: PrivateKey, view: int = 0) -> CompactProposal:
    signature = key.sign(Domain.PROPOSAL, CHAIN,
                         Proposal.signing_body(compact.height, view, compact.header.hash))
    return dataclasses.replace(compact, view=view, signature=signature)


@pytest.mark.parametrize("forge", [
    lambda c: dataclasses.replace(c, signature=bytes([c.signature[0] ^ 1]) + c.signature[1:]),
    lambda c: _resigned(c, KEYS[2]),  # a validator that is not the proposer
    lambda c: dataclasses.replace(c, view=1),  # signed for view 0
    lambda c: _resigned(c, PrivateKey.from_seed_text("outsider")),
], ids=["flipped", "other-validator", "other-view", "outsider"])
async def test_a_compact_proposal_with_a_bad_signature_is_punished_unfetched(
        drivers, forge) -> None:
    _, pnet, _ = await propose(drivers, TXS[:3])
    r, rnet = await start(drivers, 2)  # holds none of the transactions
    rnet.connect(MALLORY, answer=answering(pack([tx.encode() for tx in TXS[:3]])))
    rnet.deliver(MALLORY, encode_message(forge(decode_message(pnet.sent[0]))))
    assert [who for who, _ in rnet.punished] == [MALLORY]
    assert "signature" in rnet.punished[0][1]
    assert rnet.requests == [] and not r._assembling and rnet.sent == []


@pytest.mark.parametrize(("answer", "punished"), [
    (pack([TXS[0].encode(), TXS[5].encode()]), True),  # a wrong transaction
    (pack([TXS[2].encode(), TXS[0].encode()]), False),  # the right ones, any order
    (b"\xc1garbage", True),
    (pack([TXS[0].encode()]), True),  # too few
    (pack([tx.encode() for tx in TXS[:3]]), True),  # too many
    (pack([1, 2]), True),  # not transactions
    (pack([TXS[0].encode(), b"\x00" * 40]), True),
    (pack(7), True),
    (None, False),  # the request failed: the view will time out, nobody is to blame
], ids=["wrong-tx", "reordered", "garbage", "too-few", "too-many", "ints", "junk-entry",
        "not-a-list", "request-failed"])
async def test_a_peer_answering_the_txs_request_badly_is_punished(
        drivers, answer, punished) -> None:
    _, pnet, block = await propose(drivers, TXS[:3])
    r, rnet = await start(drivers, 2, mempool=[TXS[1]])
    rnet.connect(NODE[PROPOSER], answer=answering(answer))
    rnet.deliver(NODE[PROPOSER], pnet.sent[0])
    await settle(r)
    assert rnet.requests == [(NODE[PROPOSER], TXS_REQUEST, pack([TXS[0].hash, TXS[2].hash]))]
    if punished:
        assert [who for who, _ in rnet.punished] == [NODE[PROPOSER]]
        assert rnet.prepares() == [] and r.core.state.proposal is None
    else:
        assert rnet.punished == []
        assert rnet.prepares() == ([block.hash] if answer is not None else [])


async def test_a_forged_rebuild_does_not_replace_the_proposal_the_proposer_serves(
        drivers) -> None:
    """The header hash is the block hash, so any peer can resend the proposer's own
    compact proposal with other transaction hashes and the same (valid) signature. The
    driver rebuilds it and remembers it (keyed by the block hash) before anything
    checks the transactions against the header's tx_root — here, with the core
    already past the proposal, nothing ever does. The forgery then replaces the
    proposer's own block in ``_recent``, and the proposer can no longer serve the
    transactions of its proposal to the validators that lack them."""
    p, pnet, block = await propose(drivers, TXS[:2])
    p.txs.clear()
    p.txs.update({tx.hash: tx for tx in TXS[2:4]})  # other pending transactions
    pnet.connect(MALLORY)
    forged = dataclasses.replace(decode_message(pnet.sent[0]),
                                 tx_hashes=(TXS[2].hash, TXS[3].hash))
    pnet.deliver(MALLORY, encode_message(forged))
    await settle(p)
    answer = await p._serve_txs(NODE[2], pack([TXS[0].hash, TXS[1].hash]))
    assert unpack(answer, len(answer)) == [TXS[0].encode(), TXS[1].encode()]
    assert p._recent[block.hash] == block
    # Hashes that do not match the signed header's tx_root prove the sender forged them.
    assert [who for who, _ in pnet.punished] == [MALLORY]


# ---------------------------------------------------------------------- serving


@pytest.mark.parametrize("body", [
    b"",
    b"\xc1",
    pack(5),
    pack(b"\x00" * 32),
    pack([1]),
    pack(["not bytes"]),
    pack([[b"\x00" * 32]]),  # nested lists
    pack([TXS[0].hash] * (MAX_BLOCK_TXS + 1)),  # known, but too many
    pack([sha256(b"nobody has this")]),
    pack([TXS[0].hash, sha256(b"nobody has this")]),
], ids=["empty", "garbage", "int", "bytes", "ints", "strs", "nested", "too-many", "unknown",
        "one-unknown"])
async def test_serve_txs_refuses_malformed_and_unknown_requests(drivers, body) -> None:
    p, _, _ = await propose(drivers, TXS[:2])
    with pytest.raises(RequestFailed):
        await p._serve_txs(NODE[2], body)


async def test_serve_txs_answers_from_the_mempool_and_recent_proposals_in_order(
        drivers) -> None:
    p, _, _ = await propose(drivers, TXS[:2])
    p.txs.clear()
    p.txs[TXS[4].hash] = TXS[4]
    answer = await p._serve_txs(NODE[2], pack([TXS[1].hash, TXS[4].hash, TXS[0].hash]))
    assert unpack(answer, len(answer)) == [TXS[1].encode(), TXS[4].encode(), TXS[0].encode()]
    assert unpack(await p._serve_txs(NODE[2], pack([])), 1) == []


@pytest.mark.parametrize("body", [b"", (1).to_bytes(4, "big"), (1).to_bytes(9, "big"),
                                  (0).to_bytes(8, "big"), (4).to_bytes(8, "big")],
                         ids=["empty", "short", "long", "height-0", "not-yet"])
async def test_serve_block_refuses_bad_heights(drivers, body) -> None:
    server, _ = await start(drivers, 0, app=build_chain(3), run=False)
    with pytest.raises(RequestFailed):
        await server._serve_block(NODE[1], body)


async def test_serve_block_answers_a_decision(drivers) -> None:
    chain = build_chain(3)
    server, _ = await start(drivers, 0, app=chain, run=False)
    decision = decode_message(await server._serve_block(NODE[1], (2).to_bytes(8, "big")))
    assert decision == Decision(chain.blocks[1], chain.certificates[1])


# ---------------------------------------------------------------------- sync


async def test_a_peer_ahead_in_hello_starts_a_sync_past_a_forging_peer(drivers) -> None:
    n = 4
    chain = build_chain(n)
    good, good_net = await start(drivers, 0, app=chain, run=False)
    bad, bad_net = await start(drivers, 1, app=chain, blocks=ForgedCertificates(chain),
                               run=False)
    b, bnet = await start(drivers, 3, rng=NoShuffle())
    seen_syncing = []

    def watched(answer: Answer) -> Answer:
        async def wrapper(method: str, body: bytes) -> bytes:
            seen_syncing.append(b.syncing)
            return await answer(method, body)
        return wrapper

    bnet.connect(NODE[1], height=n, answer=watched(served_by(bad_net, NODE[3])))
    assert b.syncing
    bnet.connect(NODE[0], height=n, answer=watched(served_by(good_net, NODE[3])))
    await synced(b)
    one = (1).to_bytes(8, "big")
    assert bnet.requests == [(NODE[1], BLOCK_REQUEST, one)] + [
        (NODE[0], BLOCK_REQUEST, h.to_bytes(8, "big")) for h in range(1, n + 1)]
    assert [who for who, _ in bnet.punished] == [NODE[1]]
    assert "sync" in bnet.punished[0][1]
    assert b.app.blocks == chain.blocks and b.app.certificates == chain.certificates
    assert b.core.height == n + 1 and seen_syncing == [True] * (n + 1)
    assert b.core._sync_target == 0 and b._sync_target == 0


async def test_a_peer_not_ahead_starts_no_sync(drivers) -> None:
    b, bnet = await start(drivers, 3)
    bnet.connect(NODE[0], height=0, answer=answering(None))
    assert not b.syncing and b._sync_task is None and bnet.requests == []


async def test_a_sync_that_fails_lets_a_later_sync_start(drivers) -> None:
    """A Decision from ahead makes the core ask for a Sync; the first sync gets only
    block 1 (the peer has no more yet) and gives up. The core is told (on_sync_done),
    so the next Decision for the same height starts a new sync, which completes."""
    chain = build_chain(3)
    source = ChainSource(chain, limit=1)
    _, server_net = await start(drivers, 0, app=chain, blocks=source, run=False)
    b, bnet = await start(drivers, 3)
    bnet.connect(NODE[0], height=0, answer=served_by(server_net, NODE[3]))
    assert not b.syncing
    decision = encode_message(Decision(chain.blocks[2], chain.certificates[2]))
    bnet.deliver(NODE[0], decision)
    assert b.syncing
    await synced(b)
    assert len(b.app.blocks) == 1 and b.core.height == 2 and not bnet.punished
    assert b.core._sync_target == 0
    source.limit = None
    bnet.deliver(NODE[0], decision)
    assert b.syncing
    await synced(b)
    assert b.app.blocks == chain.blocks and b.core.height == 4 and not bnet.punished


# ---------------------------------------------------------------------- timers


async def test_set_timer_schedules_call_at_and_the_same_timer_twice_fires_twice(
        drivers, monkeypatch) -> None:
    d, net = await start(drivers, 3)
    assert len(d._timers) == 1  # the view timer of height 1, view 0
    (start_handle,) = d._timers.values()
    loop = asyncio.get_running_loop()
    assert start_handle.when() == pytest.approx(loop.time() + SLOW.view(0), abs=1.0)
    timer = Timer(TimerKind.VIEW, 1, 0)
    fired: list[Timer] = []
    both = asyncio.Event()
    on_timer = d.core.on_timer

    def spy(t: Timer, now: float):
        fired.append(t)
        if len(fired) == 2:
            both.set()
        return on_timer(t, now)

    monkeypatch.setattr(d.core, "on_timer", spy)
    at = loop.time()
    d._act([SetTimer(timer, at), SetTimer(timer, at)])  # equal TimerHandles
    new = [h for h in d._timers.values() if h is not start_handle]
    assert len(new) == 2 and all(h.when() == at for h in new)
    async with asyncio.timeout(WAIT):
        await both.wait()
    assert fired == [timer, timer]
    # The first started the view change; the second was stale for the core.
    assert [type(m) for m in net.sent_messages()] == [ViewChangeMessage]
    assert d.core.view == 1
    assert all(h not in d._timers.values() for h in new)


async def test_stop_cancels_timers_and_tasks(drivers) -> None:
    _, pnet, _ = await propose(drivers, TXS[:2])
    d, net = await start(drivers, 2)
    entered = asyncio.Event()

    async def hang(method: str, body: bytes) -> bytes:
        if len(net.requests) == 2:
            entered.set()
        await asyncio.get_running_loop().create_future()  # never answered
        raise AssertionError("unreachable")

    at = asyncio.get_running_loop().time() + 1000
    d._act([SetTimer(Timer(TimerKind.VIEW, 1, 5), at), SetTimer(Timer(TimerKind.VIEW, 1, 5), at)])
    handles = list(d._timers.values())
    assert len(handles) == 3
    net.connect(NODE[PROPOSER], height=0, answer=hang)
    net.deliver(NODE[PROPOSER], pnet.sent[0])  # a fetch of both transactions
    net.connect(NODE[0], height=9, answer=hang)  # a sync
    fetches, sync = list(d._assembling), d._sync_task
    assert len(fetches) == 1 and d.syncing
    async with asyncio.timeout(WAIT):
        await entered.wait()
        await d.stop()
    assert all(h.cancelled() for h in handles) and not d._timers
    assert all(t.cancelled() for t in fetches) and sync.cancelled()
    assert not d._assembling and not d.syncing
    # Stopped: messages are ignored, a peer ahead starts nothing.
    net.deliver(NODE[PROPOSER], pnet.sent[0])
    net.connect(NODE[4], height=9, answer=hang)
    assert not d._assembling and not d.syncing and net.sent == [] and not net.punished


# ---------------------------------------------------------------------- regressions from the second review


def block_request(height: int) -> bytes:
    return height.to_bytes(8, "big")


async def test_sync_asks_a_peer_that_failed_a_block_request_last(drivers) -> None:
    """Review 2 (sync_liar): a peer that claims a huge height in HELLO and never
    answers was asked first for every block, one request timeout per block."""
    n = 3
    chain = build_chain(n)
    _, good_net = await start(drivers, 0, app=chain, run=False)
    b, bnet = await start(drivers, 3, rng=NoShuffle())
    bnet.connect(MALLORY, height=10**12, answer=answering(None))  # starts a sync
    bnet.connect(NODE[0], height=n, answer=served_by(good_net, NODE[3]))
    await synced(b)
    assert b.app.blocks == chain.blocks
    # Mallory failed block 1, so it came last after that. Block n + 1 (Mallory's
    # claimed height is the target) nobody has: both are asked, and the sync gives up.
    assert [(who, body) for who, method, body in bnet.requests if method == BLOCK_REQUEST] == [
        (MALLORY, block_request(1)), (NODE[0], block_request(1)),
        (NODE[0], block_request(2)), (NODE[0], block_request(3)),
        (NODE[0], block_request(n + 1)), (MALLORY, block_request(n + 1))]
    assert bnet.punished == []  # a failed request blames nobody


class ClockApp(TxApp):
    """Refuses, as node.app.ChainApp does, a proposal more than ten seconds ahead of
    its clock (``clock``, in seconds) without blaming its sender; a certified block is
    not checked against the clock."""

    def validate(self, block: Block, *, certified: bool = False) -> None:
        if not certified and block.header.time_ms > self.clock * 1000 + 10_000:
            raise InvalidProposal("the block's time is ahead of our clock", blameless=True)
        super().validate(block, certified=certified)


def refused_proposal(txs, why: str) -> Proposal:
    """The proposer's proposal for height 1, which ClockApp refuses for ``why``."""
    app = TxApp(VSET, txs)
    if why == "ahead-of-our-clock":
        app.clock = 3_600.0  # the proposer's clock is an hour ahead of ours
    block = app.propose(1, 0, None)
    if why == "wrong-state-root":
        block = dataclasses.replace(block, header=dataclasses.replace(block.header,
                                                                      state_root=bytes(32)))
    return Proposal.create(KEYS[PROPOSER], CHAIN, 0, block)


@pytest.mark.parametrize("txs", [(), tuple(TXS[:2])], ids=["whole", "compact"])
@pytest.mark.parametrize(("why", "blamed"), [("ahead-of-our-clock", False),
                                             ("wrong-state-root", True)])
async def test_only_a_blameworthy_refusal_punishes_the_sender(drivers, txs, why: str,
                                                               blamed: bool) -> None:
    """Review 2: a proposal refused because its time is ahead of our clock got its
    (honest, if its clock is right and ours is wrong) sender banned."""
    r, rnet = await start(drivers, 2, app=ClockApp(VSET), mempool=txs)
    rnet.connect(NODE[PROPOSER], answer=answering(None))
    p = refused_proposal(txs, why)
    rnet.deliver(NODE[PROPOSER], encode_message(CompactProposal.of(p) if txs else p))
    assert not r._assembling  # every transaction was at hand
    assert rnet.prepares() == [] and r.core.state.proposal is None
    assert [who for who, _ in rnet.punished] == ([NODE[PROPOSER]] if blamed else [])
    assert (NODE[PROPOSER] in rnet.peers) is not blamed


async def test_a_reply_goes_only_to_the_peer_whose_message_caused_it(drivers) -> None:
    """Review 2 (decision_amplify): a stale vote made the node broadcast its last
    block to every peer. The core's Reply goes to the sender alone, by network.send."""
    chain = build_chain(2)
    d, net = await start(drivers, 3, app=chain)  # deciding height 3
    for node_id in NODE[:3]:
        net.connect(node_id, height=2)
    assert not d.syncing
    late = encode_message(VoteMessage(Vote.create(KEYS[1], CHAIN, VoteKind.PREPARE, 2, 0,
                                                  chain.blocks[1].hash)))
    net.deliver(NODE[1], late)
    cert = chain.certificates[1]
    answer = [(NODE[1], encode_message(VoteMessage(Vote(
        VoteKind.COMMIT, cert.height, cert.view, cert.block_hash, s.validator, s.signature))))
        for s in cert.signatures]  # it voted for the block: the COMMITs finish it
    assert net.sent_to == answer
    assert net.sent == [] and net.punished == []
    net.deliver(NODE[1], late)  # within block_interval: not answered again
    assert net.sent_to == answer and net.sent == []
    # Another peer has its own turn (one replaying peer cannot use up everyone's).
    net.deliver(NODE[0], late)
    assert net.sent_to == answer + [(NODE[0], body) for _, body in answer]
    assert net.sent == [] and net.punished == []
