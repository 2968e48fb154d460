"""The node daemon: wires storage, executor, mempool, p2p, consensus, the event bus,
the index, RPC and metrics, owns the event loop, and owns their lifecycle.

Start order: database -> executor -> mempool -> sign log -> index -> p2p -> consensus
-> metrics -> RPC. Every service is entered into one ``AsyncExitStack`` as it starts
(a service with a start/stop pair has its stop entered first, so one that fails
half-way is stopped too), so a failure at any step closes exactly what was already
opened, in reverse (LevelDB included, its lock released), and ``stop()`` never
touches a service that never started (tests/node/test_daemon_lifecycle.py fails each
step in turn). Stop is the same unwinding: nothing is written after the database closes and
no client is told "committed" by a node that is going away mid-write. Every block is
one atomic, synced LevelDB batch, so a ``kill -9`` at any instant loses nothing that
was committed.

The daemon only wires: RPC methods reach the node through :class:`NodeServices` (the
``RPCContext`` surface), never through this class.

One node to a home: the node holds ``data/node.lock`` (:meth:`Home.lock`) while it runs.
A node started with ``AGORA_EXIT_WITH_PARENT=<pid>`` in its environment (``agora
localnet``'s nodes) stops, cleanly, once the process with that pid is no longer its
parent — however the parent died.

``agora start`` (:func:`run_node`) ends with one line on stderr and exit code 1 for an
operator's mistake — a home that is missing something or is in use, a data directory
of another genesis, a port taken — never a traceback.
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import gc
import logging
import os
import re
import signal
import zlib
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from chain.tx import Transaction
from consensus.core import REPUTATION_WINDOW, Core, Timeouts
from consensus.driver import ConsensusDriver
from consensus.signlog import FileStorage, SignLog
from p2p.peers import P2PSettings, PeerManager
from storage.blockstore import BlockStore
from storage.errors import StorageError
from storage.kv import LevelDBKV
from vm.errors import InvalidTx, WrongStore
from vm.executor import Executor

from .app import ChainApp
from .chainview import ChainView
from .config import Config
from .events import BlockCommitted, CommitWaiters, EventBus, NodeStopping
from .evidence import EvidenceReporter
from .home import Home, HomeError
from .index import ChainIndex
from .mempool import Mempool
from .rpc.context import NodeInfo, PeerInfo, RPCLimits
from .txrelay import TxRelay

if TYPE_CHECKING:
    from .explorer.pages import Explorer
    from .metrics import NodeMetrics
    from .rpc.server import RPCServer

log = logging.getLogger("agora.node")

__all__ = ["EXIT_WITH_PARENT", "Node", "NodeServices", "NodeStopping", "run_node"]

#: The environment variable naming the pid a node must not outlive (its parent's).
EXIT_WITH_PARENT = "AGORA_EXIT_WITH_PARENT"
#: How often such a node checks its parent is still there (seconds).
PARENT_CHECK_INTERVAL = 0.5


def p2p_settings(config: Config) -> P2PSettings:
    return config.p2p.settings()


def timeouts(config: Config) -> Timeouts:
    c = config.consensus
    return Timeouts(block_interval=c.block_interval_ms / 1000,
                    idle_interval=c.idle_interval_ms / 1000,
                    view_timeout=c.view_timeout_ms / 1000,
                    max_view_timeout=c.max_view_timeout_ms / 1000)


@dataclass
class NodeServices:
    """What the RPC methods (and the explorer) may use of a running node."""

    chain: ChainView
    events: EventBus
    waiters: CommitWaiters
    limits: RPCLimits
    index: object
    _node: Node

    def node_info(self) -> NodeInfo:
        node = self._node
        return NodeInfo(node_id=node.network.node_id, moniker=node.config.node.moniker,
                        mode=node.config.node.mode, listen=node.network.listen_address,
                        validator=node.validator_address, syncing=node.driver.syncing)

    def peers(self) -> list[PeerInfo]:
        now = asyncio.get_running_loop().time()
        return [PeerInfo(node_id=p.node_id, outbound=p.outbound,
                         address=str(p.address) if p.address is not None else None,
                         validator=p.hello.validator or None,
                         connected_ms=int((now - p.connected_at) * 1000))
                for p in self._node.network.peers.values()]

    def mempool_status(self) -> dict[str, int]:
        pool = self._node.mempool
        return {**pool.status(), "max_txs": pool.max_txs, "max_bytes": pool.max_bytes}

    def pending_nonce(self, address: bytes) -> int:
        return self._node.mempool.pending_nonce(address)

    def submit(self, tx: Transaction) -> None:
        self._node.relay.submit(tx)

    def submit_many(self, txs: list[Transaction]) -> list[Exception | None]:
        return list(self._node.relay.submit_many(txs))


class Node:
    """One running node. ``await node.start()``, then ``await node.stop()``."""

    def __init__(self, home: Home) -> None:
        self.home = home
        self.config = home.config()
        self.genesis = home.genesis()
        self.node_key = home.node_key()
        self.validator_key = (home.validator_key() if self.config.node.mode == "validator"
                              else None)
        self.events = EventBus()
        self._txs_pending = False
        self._stack: contextlib.AsyncExitStack | None = None
        self._stopped = asyncio.Event()
        #: Set to stop the node (a signal, a lost parent, a fatal error).
        self._stop_requested = asyncio.Event()
        #: Why the node stopped itself, if it did (``agora start`` exits non-zero).
        self.fatal_error: str | None = None
        self.rpc: RPCServer | None = None
        self.metrics: NodeMetrics | None = None
        self.explorer: Explorer | None = None

    # ------------------------------------------------------------------ lifecycle

    async def start(self) -> None:
        """Start every service; if one fails, close those already started and raise."""
        stack = contextlib.AsyncExitStack()
        try:
            await self._start(stack)
        except BaseException:
            await stack.aclose()
            raise
        self._stack = stack

    async def _start(self, stack: contextlib.AsyncExitStack) -> None:
        config = self.config
        self.home.data_dir.mkdir(parents=True, exist_ok=True)
        stack.callback(self.home.lock())  # first: one node to a home (HomeInUse)
        self.kv = LevelDBKV(str(self.home.data_dir / "chain"))
        stack.callback(self.kv.close)
        try:
            self.executor = Executor(self.kv, self.genesis, history=config.storage.history)
        except WrongStore as exc:
            raise WrongStore(self._wrong_store(exc)) from None
        self.chain = ChainView(self.executor)
        m = config.mempool
        self.mempool = Mempool(self.executor, invalid_tx=InvalidTx, max_txs=m.max_txs,
                               max_bytes=m.max_bytes, max_per_sender=m.max_per_sender,
                               max_nonce_ahead=m.max_nonce_ahead)
        validator_address = (self.validator_key.address if self.validator_key is not None
                             else b"")
        if validator_address and self.executor.validator_set(
                self.executor.height + 1).get(validator_address) is None:
            log.warning("the validator key %s is not in the current validator set: this node "
                        "follows the chain as a full node and starts signing at the height "
                        "governance votes it in", validator_address.hex())
        self.network = PeerManager(self.node_key, self.genesis.chain_id, p2p_settings(config),
                                   height=lambda: self.executor.height,
                                   validator=validator_address)
        self.relay = TxRelay(self.mempool, self.network, chain_id=self.genesis.chain_id,
                             max_tx_bytes=self.executor.params.max_tx_bytes)
        # A proposal leaves out what arrived in the last three gossip rounds (unless
        # nothing older waits): the other validators would have to fetch it first.
        self.app = ChainApp(self.executor, self.mempool, events=self.events,
                            settle_s=3 * config.p2p.gossip_delay_ms / 1000,
                            max_txs=config.consensus.proposal_max_txs)
        height = self.executor.height
        blocks = self.executor.blocks
        head_mark = HeadMark(self.home.data_dir / "head")
        stack.callback(head_mark.close)
        head_mark.check(height)
        stack.callback(self.events.listen(BlockCommitted,
                                          lambda e: head_mark.write(e.block.header.height)))
        lost_signlog = self._signlog_lost(validator_address)
        # The file is on the stack before the log is read: a damaged log (the node
        # refuses to start) must not leave its file open.
        signlog_file = FileStorage(self.home.signlog_path)
        stack.callback(signlog_file.close)
        self.signlog = SignLog(signlog_file)
        if self.signlog.dropped_tail:
            log.warning("the sign log %s ended in a damaged record (%d bytes, cut off): "
                        "a crash while it was being written; nothing in it was signed",
                        self.home.signlog_path, self.signlog.dropped_tail)
        signed_to = self.signlog.highest_height()
        if validator_address and signed_to > height + 1:
            log.warning("the store is behind what this validator signed: the sign log "
                        "holds signatures up to height %d, the store only height %d (was "
                        "data/ wiped or damaged?). Syncing; the sign log still keeps it "
                        "from signing anything that conflicts", signed_to, height)
        recent = [b for h in range(max(1, height - REPUTATION_WINDOW), height + 1)
                  if (b := blocks.block(h)) is not None]
        self.core = Core(self.genesis.chain_id, self.app.known_validator_set, self.app,
                         self.signlog, key=self.validator_key,
                         height=height, last_commit=blocks.commit(height) if height else None,
                         last_block=blocks.block(height) if height else None,
                         timeouts=timeouts(config), recent_blocks=recent,
                         double_sign_guard=lost_signlog)
        self.driver = ConsensusDriver(self.core, self.network, self.app, blocks, self.mempool)
        self.driver.on_fatal = self._fatal
        # A validator voted in announced its node address: keep a link to it from
        # the block that passes it (two heights before it signs).
        self._announced_from = 0
        self._dial_announced()
        stack.callback(self.events.listen(BlockCommitted, lambda e: self._dial_announced()))
        self.evidence: EvidenceReporter | None = None
        if self.validator_key is not None:
            self.evidence = EvidenceReporter(self.validator_key, self.executor,
                                             self.mempool.pending_nonce, self.relay.submit)
            self.driver.on_evidence = self.evidence.report
        self.relay.on_admitted.append(self._txs_admitted)
        self.waiters = CommitWaiters(self.events)
        # Clients waiting for a commit are told first on the way down, so the RPC
        # server need not wait for them to time out.
        stack.callback(self.waiters.close)
        self.index = self._start_index(stack)

        # Each service's stop goes on the stack before its start, so one that fails
        # half-way (a listener bound, timers set) is still stopped; each stop is a
        # no-op for what never started.
        stack.push_async_callback(self.network.stop)
        await self.network.start()
        stack.push_async_callback(self.driver.stop)
        await self.driver.start()
        await self._start_rpc(stack)
        await self._start_metrics(stack)
        log.info("node %s started: chain %s, height %d, %s, p2p %s, rpc %s",
                 self.network.node_id.hex(), self.genesis.chain_id, height,
                 f"validator {validator_address.hex()}" if validator_address else "full node",
                 self.network.listen_address,
                 config.rpc.listen if config.rpc.enabled else "off")

    def _dial_announced(self) -> None:
        """Dial the node addresses the newest validator set announced (once per set)."""
        newest = self.executor.latest_validator_record()
        if newest.height <= self._announced_from:
            return
        self._announced_from = newest.height
        own = self.validator_key.address if self.validator_key is not None else None
        for address, text in newest.p2p.items():
            if address != own:
                self.network.add_persistent(text)

    def _signlog_lost(self, validator_address: bytes) -> bool:
        """Find the sign log (moving one from data/, where older homes kept it); True
        if this validator has none — it was deleted, or data/ of an older home was
        wiped — so the double-sign guard must hold it back (consensus/core.py)."""
        home = self.home
        if home.adopt_legacy_signlog():
            log.info("moved the sign log from %s to %s, beside the validator key, so that "
                     "wiping data/ can never wipe it", home.legacy_signlog_path,
                     home.signlog_path)
        if not validator_address or home.signlog_path.exists():
            return False
        log.warning("this validator's sign log %s is missing: it may have signed votes "
                    "this node no longer remembers. It will sync and will not sign until "
                    "the network has committed a height without it (the double-sign "
                    "guard)", home.signlog_path)
        return True

    def _wrong_store(self, exc: WrongStore) -> str:
        """What to do about a data directory that is not this genesis's: the chain it
        was made by is read from its first block (whose parent is its genesis)."""
        data = self.home.data_dir
        blocks = BlockStore(self.kv)
        first = blocks.header(1)
        if first is None or first.prev_hash == self.genesis.hash:
            return f"{data}: {exc}"
        theirs = (f"chain {first.chain_id!r}" if first.chain_id != self.genesis.chain_id
                  else f"another genesis of chain {first.chain_id!r}")
        return (f"the data directory {data} was made by {theirs} (genesis "
                f"{first.prev_hash.hex()[:16]}..., at height {blocks.height}), not by this "
                f"genesis.json (chain {self.genesis.chain_id!r}, genesis "
                f"{self.genesis.hash.hex()[:16]}...): point the node at its own genesis, "
                f"or move {data} away to start over")

    def _start_index(self, stack: contextlib.AsyncExitStack) -> ChainIndex:
        index = ChainIndex(self.kv, self.chain)
        index.catch_up()
        stack.callback(index.close)
        index.attach(self.events)
        return index

    async def _start_rpc(self, stack: contextlib.AsyncExitStack) -> None:
        config = self.config.rpc
        if not config.enabled:
            return
        from .rpc.methods import method_table
        from .rpc.protocol import Dispatcher
        from .rpc.server import RPCServer, ServerSettings
        from .rpc.subscriptions import Hub

        self.services = NodeServices(
            chain=self.chain, events=self.events, waiters=self.waiters,
            limits=RPCLimits(commit_timeout_ms=config.commit_timeout_ms,
                             max_page=config.max_page, max_event_range=config.max_event_range,
                             max_broadcast_txs=config.max_broadcast_txs),
            index=self.index, _node=self)
        hub = Hub(self.events, self.chain, max_per_connection=config.ws_max_subscriptions,
                  max_total=config.ws_max_total_subscriptions)
        stack.callback(hub.close)
        self.dispatcher = Dispatcher(method_table(), max_batch=config.max_batch,
                                     max_response_bytes=config.max_response_bytes)
        self.rpc = RPCServer(self.services, self.dispatcher, hub, ServerSettings(
            listen=config.listen, max_body_bytes=config.max_body_bytes,
            max_batch=config.max_batch, cors_origins=tuple(config.cors_origins),
            ws_max_clients=config.ws_max_clients,
            ws_max_subscriptions=config.ws_max_subscriptions, ws_queue=config.ws_queue,
            ws_ping_interval_ms=config.ws_ping_interval_ms,
            ws_max_clients_per_ip=config.ws_max_clients_per_ip,
            ws_idle_timeout_ms=config.ws_idle_timeout_ms,
            max_connections=config.max_connections,
            max_connections_per_ip=config.max_connections_per_ip,
            idle_timeout_ms=config.idle_timeout_ms, write_timeout_ms=config.write_timeout_ms,
            max_unsent_bytes=config.max_unsent_bytes))
        if self.config.explorer.enabled:
            from .explorer.server import mount_on_node

            dispatcher, services = self.dispatcher, self.services
            self.explorer = mount_on_node(
                self.rpc.mount, lambda text: dispatcher.handle_text(text, services),
                home=self.home.path, label=self.config.node.moniker)

    async def _start_metrics(self, stack: contextlib.AsyncExitStack) -> None:
        # Metrics mount on the RPC listener before it starts, or take their own.
        if self.config.metrics.enabled:
            from .metrics import start_metrics
            self.metrics = await start_metrics(self, stack)
        if self.rpc is not None:
            stack.push_async_callback(self.rpc.stop)
            await self.rpc.start()

    def _fatal(self, reason: str) -> None:
        """Stop the node: it cannot go on (a block it decided could not be written).
        The RPC server goes down with it, so no client reads a frozen height."""
        if self.fatal_error is None:
            self.fatal_error = reason
        self._stop_requested.set()

    async def stop(self) -> None:
        """Stop everything that started, in reverse order. Safe to call more than once."""
        stack, self._stack = self._stack, None
        if stack is None:
            return
        log.info("stopping")
        await stack.aclose()
        self._stopped.set()
        log.info("stopped at height %d", self.executor.height)

    async def run(self) -> None:
        """Start, then run until SIGINT or SIGTERM (or, told to outlive no parent, until
        the parent is gone), then stop cleanly. A signal while starting cancels the
        start, which closes what it opened."""
        parent = parent_to_outlive()
        if parent is not None and os.getppid() != parent:
            log.warning("the process that started this node (pid %d) is gone: not starting",
                        parent)
            return
        stop = self._stop_requested
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, stop.set)
        watcher = (asyncio.create_task(watch_parent(parent, stop), name="parent-watch")
                   if parent is not None else None)
        try:
            if await self._start_unless(stop):
                await stop.wait()
        finally:
            for sig in (signal.SIGINT, signal.SIGTERM):
                loop.remove_signal_handler(sig)
            if watcher is not None:
                watcher.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await watcher
            await self.stop()

    async def _start_unless(self, stop: asyncio.Event) -> bool:
        """Start, unless ``stop`` is set first; whether the node started."""
        starting = asyncio.create_task(self.start(), name="node-start")
        stopping = asyncio.create_task(stop.wait(), name="node-start-stop")
        try:
            await asyncio.wait({starting, stopping}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            stopping.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await stopping
            if not starting.done():
                starting.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await starting
                log.info("stopped while starting")
        if starting.cancelled():
            return False
        await starting  # raises what the start failed with
        return True

    # ------------------------------------------------------------------ services

    def _txs_admitted(self, _tx: Transaction) -> None:
        # Consensus hears of new transactions once per loop turn, after the request
        # or peer batch that brought them is done: a proposer then builds its block
        # from all of them, and the client's answer does not wait for that block.
        if not self._txs_pending:
            self._txs_pending = True
            asyncio.get_running_loop().call_soon(self._tell_consensus)

    def _tell_consensus(self) -> None:
        self._txs_pending = False
        self.driver.txs_available()

    @property
    def validator_address(self) -> bytes | None:
        return self.core.address

    def submit(self, tx: Transaction) -> None:
        """Admit a client's transaction and gossip it (raises TxRejected)."""
        self.relay.submit(tx)


def parent_to_outlive() -> int | None:
    """The pid in ``AGORA_EXIT_WITH_PARENT``, if set: the node stops once its parent is
    no longer that process."""
    text = os.environ.get(EXIT_WITH_PARENT, "")
    if not text:
        return None
    if not text.isdigit():
        log.warning("%s=%r is not a pid: ignored", EXIT_WITH_PARENT, text)
        return None
    return int(text)


async def watch_parent(parent: int, stop: asyncio.Event) -> None:
    """Set ``stop`` once ``parent`` is no longer this process's parent. A dead
    parent's children are handed to init or a subreaper, so ``getppid()`` changing is
    the portable sign (Linux's PR_SET_PDEATHSIG, which ``agora localnet`` also sets,
    is only faster), and asking about one's own parent cannot be fooled by a reused
    pid."""
    while os.getppid() == parent:
        await asyncio.sleep(PARENT_CHECK_INTERVAL)
    log.warning("the process that started this node (pid %d) is gone: stopping", parent)
    stop.set()


class HeadMark:
    """``data/head``: the highest height this node has committed (8 bytes and their
    CRC-32), written after each block (not synced: it only has to be right after a
    clean stop or a process crash, which keep the page cache). If LevelDB comes back lower — its log truncated or
    damaged, a table lost — the node says loudly what was lost, instead of starting
    over from an older height without a word."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)

    def read(self) -> int | None:
        data = os.pread(self._fd, 12, 0)
        if len(data) != 12 or zlib.crc32(data[:8]) != int.from_bytes(data[8:], "big"):
            return None
        return int.from_bytes(data[:8], "big")

    def check(self, height: int) -> None:
        marked = self.read()
        if marked is not None and marked > height:
            log.error("the store lost blocks: this node had committed height %d, but "
                      "its LevelDB at %s now ends at height %d (its log truncated or a "
                      "table damaged?). Heights %d..%d are gone from this node and are "
                      "synced again from peers; if this repeats, check the disk",
                      marked, self.path.parent / "chain", height, height + 1, marked)
            return  # kept until the chain is synced past it: said again if not
        self.write(height)

    def write(self, height: int) -> None:
        raw = height.to_bytes(8, "big")
        os.pwrite(self._fd, raw + zlib.crc32(raw).to_bytes(4, "big"), 0)

    def close(self) -> None:
        os.close(self._fd)


class RateLimitedLog(logging.Filter):
    """Lets through at most ``burst`` records of one kind (logger and message template)
    per ``window`` seconds, then one line saying how many were held back: a stranger
    who can make a library log (malformed HTTP, an accept loop out of descriptors)
    cannot fill the disk."""

    def __init__(self, burst: int = 5, window: float = 60.0) -> None:
        super().__init__()
        self.burst = burst
        self.window = window
        self._seen: dict[tuple[str, str], list[float]] = {}

    def filter(self, record: logging.LogRecord) -> bool:
        key = (record.name, str(record.msg)[:200])
        now = record.created
        entry = self._seen.get(key)
        if entry is None or now - entry[0] > self.window:
            held = int(entry[2]) if entry is not None else 0
            if len(self._seen) > 1_000:
                self._seen.clear()
            self._seen[key] = [now, 1.0, 0.0]
            if held:
                record.msg = f"{record.msg} (and {held} more like it held back)"
            return True
        if entry[1] < self.burst:
            entry[1] += 1
            return True
        entry[2] += 1
        return False


#: Loggers a stranger can make write (a connection flood, malformed requests, junk
#: transactions): each kind of line is rate-limited there.
NOISY_LOGGERS = ("asyncio", "aiohttp.server", "aiohttp.web", "aiohttp.websocket",
                 "agora.p2p", "agora.rpc", "agora.rpc.ws", "agora.mempool")


def limit_noisy_logs() -> RateLimitedLog:
    """Put one :class:`RateLimitedLog` on every logger in :data:`NOISY_LOGGERS`."""
    limiter = RateLimitedLog()
    for name in NOISY_LOGGERS:
        logger = logging.getLogger(name)
        for old in [f for f in logger.filters if isinstance(f, RateLimitedLog)]:
            logger.removeFilter(old)
        logger.addFilter(limiter)
    return limiter


def raise_open_file_limit() -> None:
    """Raise this process's soft limit on open files to its hard limit (at most
    65,536): RPC clients, peers and LevelDB all take descriptors, and a low default
    (often 1,024) lets a crowd of idle clients starve the peers."""
    try:
        import resource
        soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
        want = 65_536 if hard == resource.RLIM_INFINITY else min(hard, 65_536)
        if soft != resource.RLIM_INFINITY and soft < want:
            resource.setrlimit(resource.RLIMIT_NOFILE, (want, hard))
    except (ImportError, ValueError, OSError) as exc:
        log.warning("could not raise the open-file limit: %s", exc)


def run_node(home_path: Path | str) -> None:
    """``agora start``: run the node in ``home_path`` until a signal stops it. An
    operator's mistake ends it with ``error: ...`` (one line saying what to do) on
    stderr and exit code 1."""
    home = Home(home_path)
    try:
        if home.exists() and home.config().node.mode == "light":
            from .light.service import run_light
            run_light(home.path)
            return
        _run_node(home)
    except (HomeError, WrongStore) as exc:
        raise SystemExit(f"error: {exc}") from None
    except StorageError as exc:
        if re.search(r"\block\b", str(exc), re.IGNORECASE):  # not by an Agora node
            raise SystemExit(f"error: another process holds the LevelDB lock on "
                             f"{home.data_dir} (another node on this home?): stop it "
                             f"first ({exc})") from None
        raise SystemExit(f"error: {exc}") from None
    except OSError as exc:
        if exc.errno != errno.EADDRINUSE:
            raise
        raise SystemExit(f"error: {exc.strerror or exc}: another program (another "
                         f"node?) listens there; stop it or change the port in "
                         f"{home.config_path}") from None


def tune_gc() -> None:
    """Set the cyclic garbage collector for a long-running node: what exists now
    (modules, the genesis, the node's objects) is moved out of its sight for good, and
    it runs far less often. With the defaults, a loaded node's transactions (pooled
    for seconds, so they outlive two young collections) drove a full collection of the
    whole heap about once a second, 100-500 ms each: a fifth of the node's time and
    its longest heights. Nearly everything here is freed by reference counting; the
    collector is for the rare cycle, and still runs."""
    gc.collect()
    gc.freeze()
    gc.set_threshold(50_000, 20, 100)


def _run_node(home: Home) -> None:
    node = Node(home)
    tune_gc()
    logging.basicConfig(
        level=node.config.log.level.upper(),
        format="%(asctime)s %(levelname)-7s %(name)s: %(message)s",
    )
    limit_noisy_logs()
    raise_open_file_limit()
    profile_path = os.environ.get("AGORA_PROFILE")  # set by `agora bench --profile`
    if not profile_path:
        asyncio.run(node.run())
    else:
        _run_profiled(node, profile_path)
    if node.fatal_error is not None:
        raise SystemExit(f"error: the node stopped: {node.fatal_error}")


def _run_profiled(node: Node, profile_path: str) -> None:
    import cProfile

    profile = cProfile.Profile()
    profile.enable()
    try:
        asyncio.run(node.run())
    finally:
        profile.disable()
        profile.dump_stats(profile_path)
