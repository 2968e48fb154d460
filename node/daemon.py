"""The node daemon: wires storage, executor, mempool, p2p, consensus and RPC, owns the
event loop, and shuts down in reverse order of start (like aiohttp's AppRunner).

Start order: database -> executor -> mempool -> p2p -> consensus -> RPC. Stop order is
the reverse, so nothing is written after the database closes and no client is told
"committed" by a node that is going away mid-write. Every block is one atomic, synced
LevelDB batch, so a ``kill -9`` at any instant loses nothing that was committed.
"""

from __future__ import annotations

import asyncio
import logging
import os
import signal
from pathlib import Path

from chain.block import Block
from chain.tx import Transaction
from consensus.core import Core, Timeouts
from consensus.driver import ConsensusDriver
from consensus.signlog import SignLog
from p2p.peers import P2PSettings, PeerManager
from storage.kv import LevelDBKV
from vm.errors import InvalidTx
from vm.executor import Executor

from .app import ChainApp
from .config import Config
from .home import Home, HomeError
from .mempool import Mempool
from .txrelay import TxRelay

log = logging.getLogger("agora.node")


class NodeStopping(Exception):
    """The node is shutting down; the operation cannot finish."""


def p2p_settings(config: Config) -> P2PSettings:
    p = config.p2p
    host, _, port = p.listen.rpartition(":")
    return P2PSettings(
        listen_host=host.strip("[]"), listen_port=int(port),
        external_address=p.external_address, persistent_peers=tuple(p.persistent_peers),
        max_inbound=p.max_inbound, max_outbound=p.max_outbound, pex=p.pex,
        handshake_timeout=p.handshake_timeout_ms / 1000, ping_interval=p.ping_interval_ms / 1000,
        peer_timeout=p.peer_timeout_ms / 1000, ban_seconds=p.ban_seconds,
        send_queue_bytes=p.send_queue_bytes,
    )


def timeouts(config: Config) -> Timeouts:
    c = config.consensus
    return Timeouts(block_interval=c.block_interval_ms / 1000,
                    idle_interval=c.idle_interval_ms / 1000,
                    view_timeout=c.view_timeout_ms / 1000,
                    max_view_timeout=c.max_view_timeout_ms / 1000)


class Node:
    """One running node. ``await node.start()``, then ``await node.stop()``."""

    def __init__(self, home: Home) -> None:
        self.home = home
        self.config = home.config()
        self.genesis = home.genesis()
        self.node_key = home.node_key()
        self.validator_key = (home.validator_key() if self.config.node.mode == "validator"
                              else None)
        if self.validator_key is not None and \
                self.genesis.validators.get(self.validator_key.address) is None:
            log.warning("the validator key %s is not in the genesis validator set: running "
                        "as a full node", self.validator_key.address.hex())
        self._commit_waiters: dict[bytes, list[asyncio.Future[tuple[int, int]]]] = {}
        self._stopped = asyncio.Event()

    # ------------------------------------------------------------------ lifecycle

    async def start(self) -> None:
        config = self.config
        self.home.data_dir.mkdir(parents=True, exist_ok=True)
        self.kv = LevelDBKV(str(self.home.data_dir / "chain"))
        try:
            self.executor = Executor(self.kv, self.genesis, history=config.storage.history)
        except Exception:
            self.kv.close()
            raise
        m = config.mempool
        self.mempool = Mempool(self.executor, invalid_tx=InvalidTx, max_txs=m.max_txs,
                               max_bytes=m.max_bytes, max_per_sender=m.max_per_sender,
                               max_nonce_ahead=m.max_nonce_ahead)
        vset = self.genesis.validators
        validator_address = (self.validator_key.address
                             if self.validator_key is not None
                             and vset.get(self.validator_key.address) is not None else b"")
        self.network = PeerManager(self.node_key, self.genesis.chain_id, p2p_settings(config),
                                   height=lambda: self.executor.height,
                                   validator=validator_address)
        self.relay = TxRelay(self.mempool, self.network, chain_id=self.genesis.chain_id,
                             max_tx_bytes=self.executor.params.max_tx_bytes)
        self.app = ChainApp(self.executor, self.mempool, vset)
        self.app.on_commit.append(self._committed)
        self.signlog = SignLog.open(self.home.signlog_path)
        height = self.executor.height
        blocks = self.executor.blocks
        self.core = Core(self.genesis.chain_id, vset, self.app, self.signlog,
                         key=self.validator_key if validator_address else None,
                         height=height, last_commit=blocks.commit(height) if height else None,
                         last_block=blocks.block(height) if height else None,
                         timeouts=timeouts(config))
        self.driver = ConsensusDriver(self.core, self.network, self.app, blocks, self.mempool)
        self.relay.on_admitted.append(lambda _tx: self.driver.txs_available())
        await self.network.start()
        await self.driver.start()
        self.rpc = None
        if config.rpc.enabled:
            from .rpc import RPCServer
            self.rpc = RPCServer(self)
            await self.rpc.start()
        log.info("node %s started: chain %s, height %d, %s, p2p %s, rpc %s",
                 self.network.node_id.hex(), self.genesis.chain_id, height,
                 f"validator {validator_address.hex()}" if validator_address else "full node",
                 self.network.listen_address,
                 config.rpc.listen if config.rpc.enabled else "off")

    async def stop(self) -> None:
        """Stop in reverse order of start. Safe to call once start() has run."""
        log.info("stopping")
        # Clients waiting for a commit are told now, so the RPC server need not wait
        # for them to time out.
        for waiters in self._commit_waiters.values():
            for future in waiters:
                if not future.done():
                    future.set_exception(NodeStopping("the node is stopping"))
        self._commit_waiters.clear()
        if self.rpc is not None:
            await self.rpc.stop()
        await self.driver.stop()
        await self.network.stop()
        self.kv.close()
        self._stopped.set()
        log.info("stopped at height %d", self.executor.height)

    async def run(self) -> None:
        """Start, then run until SIGINT or SIGTERM, then stop cleanly."""
        await self.start()
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, stop.set)
        try:
            await stop.wait()
        finally:
            for sig in (signal.SIGINT, signal.SIGTERM):
                loop.remove_signal_handler(sig)
            await self.stop()

    # ------------------------------------------------------------------ services

    @property
    def validator_address(self) -> bytes | None:
        return self.core.address

    def submit(self, tx: Transaction) -> None:
        """Admit a client's transaction and gossip it (raises TxRejected)."""
        self.relay.submit(tx)

    def wait_for_commit(self, tx_hash: bytes) -> asyncio.Future[tuple[int, int]]:
        """A future resolved with (height, index) when ``tx_hash`` commits. Register
        it before submitting, so a fast commit cannot be missed."""
        future: asyncio.Future[tuple[int, int]] = asyncio.get_running_loop().create_future()
        self._commit_waiters.setdefault(tx_hash, []).append(future)
        return future

    def forget_waiter(self, tx_hash: bytes, future: asyncio.Future) -> None:
        waiters = self._commit_waiters.get(tx_hash)
        if waiters and future in waiters:
            waiters.remove(future)
            if not waiters:
                del self._commit_waiters[tx_hash]

    def _committed(self, block: Block) -> None:
        if not self._commit_waiters:
            return
        for index, tx in enumerate(block.txs):
            for future in self._commit_waiters.pop(tx.hash, ()):
                if not future.done():
                    future.set_result((block.height, index))


def run_node(home_path: Path | str) -> None:
    """``agora start``: run the node in ``home_path`` until a signal stops it."""
    home = Home(home_path)
    try:
        node = Node(home)
    except HomeError as exc:
        raise SystemExit(f"error: {exc}") from None
    logging.basicConfig(
        level=node.config.log.level.upper(),
        format="%(asctime)s %(levelname)-7s %(name)s: %(message)s",
    )
    profile_path = os.environ.get("AGORA_PROFILE")  # set by `agora bench --profile`
    if not profile_path:
        asyncio.run(node.run())
        return
    import cProfile

    profile = cProfile.Profile()
    profile.enable()
    try:
        asyncio.run(node.run())
    finally:
        profile.disable()
        profile.dump_stats(profile_path)

