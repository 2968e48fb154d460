"""The asyncio driver: binds the sans-I/O core to the network, the application and
the loop's clock. It is the only part of consensus that does I/O.

* Messages from peers are decoded here (the edge) and fed to the core; a message
  the core refuses as forged gets its peer dropped and banned.
* A proposal goes out compact — its transactions by hash (:class:`CompactProposal`),
  since gossip already brought them to every mempool — and comes in rebuilt from the
  mempool; what a validator lacks it fetches from the peer that sent the proposal
  (``consensus/txs``), so a block's transactions cross each link about once.
* The core's actions are carried out in order: broadcasts go to every peer, timers
  become ``loop.call_at``, a Commit is written by the application before
  ``core.committed()`` lets the next height start, a Sync starts block sync.
* Block sync asks peers, one height at a time, for the committed block and its
  certificate (``consensus/block``), and hands each to the core, which verifies the
  certificate against the validator set and re-executes the block (checking its state
  root) before committing it. Peers that say in HELLO that they are ahead start a
  sync too, so a node that was down catches up before it votes.
"""

from __future__ import annotations

import asyncio
import logging
import random
from collections import OrderedDict
from collections.abc import Callable
from typing import Protocol

from chain.block import MAX_BLOCK_TXS, Block, CommitCertificate, tx_root
from chain.codec import pack, unpack
from chain.errors import DecodeError
from chain.tx import Transaction
from p2p.errors import RequestFailed
from p2p.peers import Peer, PeerManager

from .core import (
    Action,
    Broadcast,
    Commit,
    ConsensusApp,
    Core,
    Evidence,
    Reply,
    SetTimer,
    Sync,
    Timer,
)
from .errors import InvalidMessage
from .messages import (
    CompactProposal,
    Decision,
    Proposal,
    WireMessage,
    decode_message,
    encode_message,
    message_height,
)

log = logging.getLogger("agora.consensus")

BLOCK_REQUEST = "consensus/block"
TXS_REQUEST = "consensus/txs"
_SYNC_TIMEOUT = 5.0
#: Seconds before looking again for a peer ahead of us after a sync ended.
_SYNC_RETRY = 1.0
#: Messages of the height in progress kept to send again to a peer that reconnects.
_MAX_RESENT = 32
#: Own or received proposals kept to answer peers missing some of their transactions.
_RECENT_BLOCKS = 8


class Application(ConsensusApp, Protocol):
    def commit(self, block: Block, certificate: CommitCertificate) -> None:
        """Write the block in one atomic batch (and re-check the mempool)."""


class TxSource(Protocol):
    """Transactions this node holds, by hash (the mempool)."""

    def get(self, tx_hash: bytes) -> Transaction | None: ...


class BlockSource(Protocol):
    """Committed blocks, to serve peers that sync."""

    def block(self, height: int) -> Block | None: ...

    def commit(self, height: int) -> CommitCertificate | None: ...


class ConsensusDriver:
    def __init__(self, core: Core, network: PeerManager, app: Application,
                 blocks: BlockSource, txs: TxSource, *,
                 rng: random.Random | None = None) -> None:
        self.core = core
        self.network = network
        self.app = app
        self.blocks = blocks
        self.txs = txs
        self._recent: OrderedDict[bytes, Block] = OrderedDict()
        #: Peers whose last block request failed: asked last.
        self._unhelpful: set[bytes] = set()
        self._assembling: set[asyncio.Task] = set()
        self.rng = rng or random.Random()
        self.evidence: list[Evidence] = []
        self._timers: dict[object, asyncio.TimerHandle] = {}
        self._sync_task: asyncio.Task | None = None
        self._sync_target = 0
        self._retry_handle: asyncio.TimerHandle | None = None
        #: What we broadcast (encoded) at height ``_sent_height``.
        self._sent: list[bytes] = []
        self._sent_height = 0
        self._running = False
        #: Told why, when a block could not be written (the node stops on it).
        self.on_fatal: Callable[[str], None] = lambda reason: None
        #: Told of each piece of evidence the core finds (the node puts it on chain).
        self.on_evidence: Callable[[Evidence], None] = lambda evidence: None
        network.on_consensus = self._received
        network.request_handlers[BLOCK_REQUEST] = self._serve_block
        network.request_handlers[TXS_REQUEST] = self._serve_txs
        network.on_peer_connected.append(self._peer_connected)

    @property
    def syncing(self) -> bool:
        return self._sync_task is not None and not self._sync_task.done()

    def _now(self) -> float:
        return asyncio.get_running_loop().time()

    async def start(self) -> None:
        self._running = True
        self._act(self.core.start(self._now()))

    async def stop(self) -> None:
        self._halt()
        tasks = list(self._assembling)
        if self._sync_task is not None:
            tasks.append(self._sync_task)
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)

    # ------------------------------------------------------------------ input

    def _received(self, peer: bytes, body: bytes) -> None:
        if not self._running:
            return
        try:
            message = decode_message(body)
            if isinstance(message, CompactProposal):
                self._assemble(peer, message)
                return
            actions = self.core.on_message(message, self._now(), peer)
        except InvalidMessage as exc:
            self._refused(peer, exc)
            return
        self._act(actions, peer)

    def _refused(self, peer: bytes, exc: InvalidMessage) -> None:
        if exc.blameless:
            log.info("not voting for a message from %s: %s", peer.hex()[:12], exc)
        else:
            self.network.punish(peer, f"invalid consensus message: {exc}")

    def _assemble(self, peer: bytes, compact: CompactProposal) -> None:
        """Rebuild a proposal from the mempool (or recent proposals); fetch what is
        missing from ``peer``."""
        core = self.core
        if compact.height < core.height:
            return
        recent: dict[bytes, Transaction] | None = None
        found: list[Transaction | None] = []
        for tx_hash in compact.tx_hashes:
            tx = self.txs.get(tx_hash)
            if tx is None:
                if recent is None:
                    recent = self._recent_txs()
                tx = recent.get(tx_hash)
            found.append(tx)
        missing = [h for h, tx in zip(compact.tx_hashes, found, strict=True) if tx is None]
        if not missing:
            self._feed(peer, self._rebuild(compact, found))  # type: ignore[arg-type]
            return
        # About to ask the peer: check the signature first, so nobody can make us fetch
        # for nothing. (Otherwise the core checks it, once.)
        if compact.height > core.height + 1:
            # Too far ahead to know its proposer (the rotation follows the chain we
            # lack): fetch only for a proposal its named proposer signed; else leave
            # it, without blame — sync brings the chain.
            vset = core.set_at(compact.height) or core.validators_at(core.height + 1)
            named = vset.get(compact.header.proposer)
            if named is None or not compact.verify(core.chain_id, named.public_key):
                return
        else:
            proposer = core.validators_at(compact.height).get(
                core.proposer(compact.height, compact.view))
            if proposer is None or not compact.verify(core.chain_id, proposer.public_key):
                raise InvalidMessage("compact proposal signature does not verify")
        task = asyncio.get_running_loop().create_task(self._fetch_txs(peer, compact, found,
                                                                      missing))
        self._assembling.add(task)
        task.add_done_callback(self._assembling.discard)

    async def _fetch_txs(self, peer: bytes, compact: CompactProposal,
                         found: list[Transaction | None], missing: list[bytes]) -> None:
        try:
            body = await self.network.request(peer, TXS_REQUEST, pack(missing), _SYNC_TIMEOUT)
            raws = unpack(body, len(body), "transactions", max_arrays=1)
            if type(raws) is not list or len(raws) != len(missing):
                raise InvalidMessage("the transactions answer does not match the request")
            fetched = {}
            for raw in raws:
                tx = Transaction.decode(raw)
                fetched[tx.hash] = tx
        except RequestFailed as exc:
            log.info("could not fetch %d transactions of block %d from %s: %s", len(missing),
                     compact.height, peer.hex()[:12], exc)
            return  # the view times out if nobody can supply them
        except (InvalidMessage, DecodeError) as exc:
            self.network.punish(peer, f"bad transactions for its proposal: {exc}")
            return
        txs = [tx if tx is not None else fetched.get(h)
               for h, tx in zip(compact.tx_hashes, found, strict=True)]
        if any(tx is None for tx in txs):
            self.network.punish(peer, "did not supply the transactions of its proposal")
            return
        if self._running:
            try:
                proposal = self._rebuild(compact, txs)  # type: ignore[arg-type]
            except InvalidMessage as exc:
                self.network.punish(peer, str(exc))
                return
            self._feed(peer, proposal)

    @staticmethod
    def _rebuild(compact: CompactProposal, txs: list[Transaction]) -> Proposal:
        header = compact.header
        if len(txs) != header.tx_count or tx_root(txs) != header.tx_root:
            raise InvalidMessage("the proposal's transactions do not match its tx_root")
        return compact.assemble(tuple(txs))

    def _feed(self, peer: bytes, proposal: Proposal) -> None:
        try:
            actions = self.core.on_message(proposal, self._now(), peer)
        except InvalidMessage as exc:
            self._refused(peer, exc)
            return
        # Kept to serve peers only once the core took it: a refused proposal must not
        # push real ones out of the few remembered.
        self._remember(proposal.block)
        self._act(actions, peer)

    def _remember(self, block: Block) -> None:
        if block.txs:
            self._recent[block.hash] = block
            while len(self._recent) > _RECENT_BLOCKS:
                self._recent.popitem(last=False)

    def _recent_txs(self) -> dict[bytes, Transaction]:
        return {tx.hash: tx for block in self._recent.values() for tx in block.txs}

    async def _serve_txs(self, peer: bytes, body: bytes) -> bytes:
        try:
            hashes = unpack(body, len(body), "transaction hashes", max_arrays=1)
        except DecodeError as exc:
            raise RequestFailed(f"malformed request: {exc}") from None
        if type(hashes) is not list or len(hashes) > MAX_BLOCK_TXS or \
                any(type(h) is not bytes for h in hashes):
            raise RequestFailed("a transactions request is a list of hashes")
        index = self._recent_txs()
        out = []
        for tx_hash in hashes:
            tx = index.get(tx_hash) or self.txs.get(tx_hash)
            if tx is None:
                raise RequestFailed(f"transaction {tx_hash.hex()} is not here")
            out.append(tx.encode())
        return pack(out)

    def txs_available(self) -> None:
        """The mempool admitted transactions (a proposer may propose early)."""
        if self._running:
            self._act(self.core.on_txs_available(self._now()))

    def _write(self, action: Commit) -> bool:
        """Write a decided block. A write that fails (a full disk, a damaged LevelDB
        table) stops consensus here — nothing after it may run on a state that was not
        written — and goes to ``on_fatal``, which stops the node."""
        block = action.block
        try:
            self.app.commit(block, action.certificate)
        except Exception as exc:  # noqa: BLE001 - whatever it is, the block is not written
            self._halt()
            reason = (f"writing block {block.height} failed, so this node stops rather "
                      f"than go on with a state it could not write: {exc}")
            log.critical("%s", reason)
            self.on_fatal(reason)
            return False
        log.info("committed block %d (%s) in view %d with %d txs", block.height,
                 block.hash.hex()[:12], action.certificate.view, len(block.txs))
        return True

    def _halt(self) -> None:
        self._running = False
        if self._retry_handle is not None:
            self._retry_handle.cancel()
            self._retry_handle = None
        for handle in self._timers.values():
            handle.cancel()
        self._timers.clear()

    def _fire(self, timer: Timer, token: object) -> None:
        self._timers.pop(token, None)
        if self._running:
            self._act(self.core.on_timer(timer, self._now()))

    # ------------------------------------------------------------------ output

    def _act(self, actions: list[Action], peer: bytes | None = None) -> None:
        """Carry out the core's actions; ``peer`` sent the message they answer."""
        for action in actions:
            if type(action) is Reply:
                if peer is not None:
                    self.network.send(peer, encode_message(action.message))
            elif type(action) is Broadcast:
                message: WireMessage = action.message
                if type(message) is Proposal and message.block.txs:
                    self._remember(message.block)
                    message = CompactProposal.of(message)
                body = encode_message(message)
                self.network.broadcast(body)
                self._keep_sent(message_height(action.message), body)
            elif type(action) is SetTimer:
                # Keyed by a fresh token: TimerHandles compare by their arguments.
                token = object()
                self._timers[token] = asyncio.get_running_loop().call_at(
                    action.at, self._fire, action.timer, token)
            elif type(action) is Commit:
                if not self._write(action):
                    return
                self._act(self.core.committed(self._now()))
            elif type(action) is Sync:
                self._sync_to(action.height)
            elif type(action) is Evidence:
                self.evidence.append(action)
                del self.evidence[:-64]  # the chain keeps it; this is the latest few
                log.warning("evidence against validator %s found", action.validator.hex())
                self.on_evidence(action)

    # ------------------------------------------------------------------ sync

    def _keep_sent(self, height: int, body: bytes) -> None:
        """Remember what we broadcast for the height in progress: a link that was
        down when it went out gets it when it comes back (else only a view timeout
        would repeat it, and a lost VIEW-CHANGE costs a whole timeout)."""
        if height != self.core.height:
            return
        if height != self._sent_height:
            self._sent_height = height
            self._sent.clear()
        if len(self._sent) < _MAX_RESENT:
            self._sent.append(body)

    def _peer_connected(self, peer: Peer) -> None:
        if self._sent_height == self.core.height:
            for body in self._sent:
                self.network.send(peer.node_id, body)
        committed = self.core.height - 1
        if peer.hello.height > committed:
            log.info("peer %s is at height %d, we are at %d: syncing",
                     peer.node_id.hex()[:12], peer.hello.height, committed)
            self._sync_to(peer.hello.height)

    def _sync_to(self, height: int) -> None:
        self._sync_target = max(self._sync_target, height)
        if not self.syncing and self._running:
            self._sync_task = asyncio.get_running_loop().create_task(self._sync())

    async def _sync(self) -> None:
        try:
            while self._running and self.core.height <= self._sync_target:
                height = self.core.height
                if not await self._fetch(height):
                    log.warning("sync: no peer gave a valid block %d; retrying when a peer "
                                "or a message says we are behind", height)
                    break
        finally:
            self._sync_target = 0
            self.core.on_sync_done()
            if self._running and self._retry_handle is None:
                # A peer that said it is ahead may have dropped (a link replaced
                # mid-request): look again shortly, while any connected peer says so.
                self._retry_handle = asyncio.get_running_loop().call_later(
                    _SYNC_RETRY, self._retry_sync)

    def _retry_sync(self) -> None:
        self._retry_handle = None
        if not self._running or self.syncing:
            return
        committed = self.core.height - 1
        ahead = max((p.hello.height for p in self.network.peers.values()), default=0)
        if ahead > committed:
            self._sync_to(ahead)

    async def _fetch(self, height: int) -> bool:
        """Ask peers for block ``height``; True once it committed. Peers that failed
        us lately come last, then those whose HELLO said they were behind: a peer
        that claims a great height and never answers costs one timeout per sync, not
        one per block."""
        peers = list(self.network.peers.values())
        self.rng.shuffle(peers)
        peers.sort(key=lambda p: (p.node_id in self._unhelpful, p.hello.height < height))
        for peer in peers:
            try:
                body = await self.network.request(peer.node_id, BLOCK_REQUEST,
                                                  height.to_bytes(8, "big"), _SYNC_TIMEOUT)
                decision = decode_message(body)
                if type(decision) is not Decision:
                    raise InvalidMessage("a block request answered with another message")
                if decision.block.height != height:
                    raise InvalidMessage(f"asked for block {height}, got block "
                                         f"{decision.block.height}")
                if self.core.height != height:
                    return True  # consensus decided it meanwhile
                actions = self.core.on_certified_block(decision.block, decision.certificate,
                                                       self._now())
            except RequestFailed as exc:
                log.info("sync: peer %s: %s", peer.node_id.hex()[:12], exc)
                self._unhelpful.add(peer.node_id)
                continue
            except InvalidMessage as exc:
                self.network.punish(peer.node_id, f"sync: {exc}")
                continue
            self._unhelpful.discard(peer.node_id)
            self._act(actions)
            if self.core.height > height:
                return True
        return self.core.height > height

    async def _serve_block(self, peer: bytes, body: bytes) -> bytes:
        if len(body) != 8:
            raise RequestFailed("a block request is an 8-byte height")
        height = int.from_bytes(body, "big")
        block = self.blocks.block(height)
        certificate = self.blocks.commit(height)
        if block is None or certificate is None:
            raise RequestFailed(f"no committed block at height {height}")
        return encode_message(Decision(block, certificate))
