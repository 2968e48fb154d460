"""Helpers of the governance RPC and ``agora validator`` tests: a chain of five
validators whose keys the test holds, served over real JSON-RPC.

:class:`GovNet` is the node's RPC stack for real -- the executor on a store, the chain
view, the index fed by the event bus, the commit waiters, the dispatcher with the whole
method table and the HTTP server -- with consensus replaced by a stand-in: a submitted
transaction is checked as the mempool checks it and committed in the next block on the
next turn of the loop, certified by every validator of that height (the test holds all
their keys). A change governance passes is in force two heights later, so the set of
each block is the executor's, as a node's is. Five validators (power 10 each) take part
in votes, which one node alone cannot (its own yes would be more than two thirds).

It runs in a thread with its own event loop, so the synchronous wallet (``SyncClient``,
``agora ...`` through click's runner) talks to it as to any node.

Keys: ``NODES[i]`` is validator ``node{i}``, ``STANDBY`` (``node5``) a funded validator
key outside the set, ``OUTSIDER`` a funded account that is not a validator. They are
written as plaintext keys to ``HOME/keys`` (``nodeI``, ``outsider``), with a
``localnet.json`` that names the nodes as ``agora localnet`` does, so the wallet finds
node addresses with ``--home HOME``.
"""

from __future__ import annotations

import asyncio
import json
import threading
from collections.abc import Coroutine
from pathlib import Path
from typing import Any

from chain.address import address_to_text
from chain.block import Block, CommitCertificate, Vote, VoteKind
from chain.genesis import Genesis
from chain.keys import PrivateKey
from chain.tx import Transaction
from node.chainview import ChainView
from node.events import CommitWaiters, EventBus
from node.genesis import GenesisValidator, genesis_document, now_ms
from node.home import write_key
from node.index import ChainIndex
from node.localnet import free_base_port
from node.mempool import Code, TxRejected
from node.rpc.context import NodeInfo, PeerInfo, RPCLimits
from node.rpc.methods import method_table
from node.rpc.protocol import Dispatcher
from node.rpc.server import RPCServer, ServerSettings
from node.rpc.subscriptions import Hub
from storage.kv import MemoryKV
from vm.errors import InvalidTx
from vm.executor import Executor

CHAIN = "agora-governance-test"
COIN = 10**18
FUNDS = 10**6 * COIN
POWER = 10
NODES = [PrivateKey.from_seed_text(f"governance-test-node{i}") for i in range(5)]
STANDBY = PrivateKey.from_seed_text("governance-test-node5")
OUTSIDER = PrivateKey.from_seed_text("governance-test-outsider")
#: The standby's node (its node id and p2p address, as localnet.json lists them).
STANDBY_NODE_ID = "ab" * 20
STANDBY_P2P = "127.0.0.1:39999"
WAIT = 20.0


def genesis(*, governance: bool = True, ttl: int = 1_000) -> Genesis:
    document = genesis_document(
        CHAIN, [GenesisValidator(k.public_key, POWER, f"node{i}") for i, k in enumerate(NODES)],
        time_ms=now_ms(), balances={k.address: FUNDS for k in [*NODES, STANDBY, OUTSIDER]},
        governance=governance, proposal_ttl=ttl)
    return Genesis.from_dict(document)


class _Services:
    """The RPCContext of the stand-in node."""

    def __init__(self, net: GovNet, waiters: CommitWaiters) -> None:
        self._net = net
        self.chain = net.view
        self.events = net.bus
        self.waiters = waiters
        self.limits = RPCLimits(commit_timeout_ms=int(WAIT * 1000))
        self.index = net.index

    def node_info(self) -> NodeInfo:
        return NodeInfo(node_id=bytes(20), moniker="governance-test", mode="validator",
                        listen="127.0.0.1:0", validator=NODES[0].address, syncing=False)

    def peers(self) -> list[PeerInfo]:
        return []

    def mempool_status(self) -> dict[str, int]:
        n = len(self._net.pending)
        return {"count": n, "bytes": 0, "ready": n, "queued": 0, "senders": n,
                "max_txs": 10_000, "max_bytes": 1 << 26}

    def pending_nonce(self, address: bytes) -> int:
        nonce = self._net.executor.account(address)[0]
        return nonce + sum(tx.sender_address == address for tx in self._net.pending)

    def submit(self, tx: Transaction) -> None:
        self._net.admit(tx)

    def submit_many(self, txs: list[Transaction]) -> list[Exception | None]:
        out: list[Exception | None] = []
        for tx in txs:
            try:
                self._net.admit(tx)
                out.append(None)
            except TxRejected as exc:
                out.append(exc)
        return out


class GovNet:
    """The stand-in node (see the module's docstring). ``with GovNet(home) as net:``."""

    def __init__(self, home: Path, *, governance: bool = True, ttl: int = 1_000) -> None:
        self.home = home
        self.genesis = genesis(governance=governance, ttl=ttl)
        self.executor = Executor(MemoryKV(), self.genesis)
        self.view = ChainView(self.executor)
        self.bus = EventBus()
        self.index = ChainIndex(MemoryKV(), self.view)
        self.index.catch_up()
        self.index.attach(self.bus)
        self.waiters: CommitWaiters | None = None
        self.pending: list[Transaction] = []
        self.keys = {k.address: k for k in [*NODES, STANDBY]}
        self.last_commit: CommitCertificate | None = None
        self.last_time_ms = self.genesis.time_ms
        self.port = free_base_port(1)
        self.url = f"http://127.0.0.1:{self.port}/"
        self.loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self.server: RPCServer | None = None
        self._write_home()

    # -- lifecycle ------------------------------------------------------------------

    def __enter__(self) -> GovNet:
        self._thread.start()
        self.run(self._start())
        return self

    def __exit__(self, *exc: object) -> None:
        try:
            self.run(self._stop())
        finally:
            self.loop.call_soon_threadsafe(self.loop.stop)
            self._thread.join(WAIT)
            self.loop.close()

    def run(self, coro: Coroutine[Any, Any, Any]) -> Any:
        """Run ``coro`` on the node's loop and wait for it."""
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(WAIT)

    async def _start(self) -> None:
        self.waiters = CommitWaiters(self.bus)
        services = _Services(self, self.waiters)
        self.server = RPCServer(services, Dispatcher(method_table()), Hub(self.bus, self.view),
                                ServerSettings(listen=f"127.0.0.1:{self.port}"))
        await self.server.start()

    async def _stop(self) -> None:
        if self.server is not None:
            await self.server.stop()
        if self.waiters is not None:
            self.waiters.close()
        self.index.close()

    def _write_home(self) -> None:
        """HOME/keys (plaintext, like a localnet's) and HOME/localnet.json."""
        keys = self.home / "keys"
        keys.mkdir(parents=True, exist_ok=True)
        for i, key in enumerate([*NODES, STANDBY]):
            write_key(keys / f"node{i}.json", key)
        write_key(keys / "outsider.json", OUTSIDER)
        nodes = [{"index": i, "home": str(self.home / f"node{i}"),
                  "p2p": STANDBY_P2P if i == 5 else f"127.0.0.1:{30000 + 2 * i}",
                  "rpc": self.url, "address": address_to_text(k.address),
                  "node_id": STANDBY_NODE_ID if i == 5 else f"{i:02x}" * 20,
                  "standby": i == 5, "pid": None}
                 for i, k in enumerate([*NODES, STANDBY])]
        (self.home / "localnet.json").write_text(json.dumps(
            {"chain_id": CHAIN, "nodes": nodes, "contracts": {}, "accounts": []}, indent=2))

    # -- the stand-in for consensus -------------------------------------------------

    def admit(self, tx: Transaction) -> None:
        """As the mempool admits it (on the node's loop); committed on the next turn."""
        try:
            self.executor.check_tx(tx)
        except InvalidTx as exc:
            raise TxRejected(str(exc), Code.INVALID) from None
        if any(t.hash == tx.hash for t in self.pending):
            raise TxRejected("already in the pool", Code.ALREADY_KNOWN)
        self.pending.append(tx)
        if len(self.pending) == 1:
            self.loop.call_soon(self._commit_pending)

    def _commit_pending(self) -> None:
        txs, self.pending = self.pending, []
        self.commit_block(txs)

    def commit_block(self, txs: list[Transaction]) -> Block:
        """Build, certify and commit the next block of ``txs`` and publish it (on the
        node's loop, or from the test thread while the node is not serving)."""
        ex = self.executor
        height = ex.height + 1
        vset = ex.validator_set(height)
        self.last_time_ms = max(now_ms(), self.last_time_ms + 1)
        block = ex.build_block(
            sorted(txs, key=lambda t: (t.sender_address, t.nonce)), time_ms=self.last_time_ms,
            proposer=vset.validators[0].address, validators_hash=vset.hash,
            next_validators_hash=ex.validator_set(height + 1).hash,
            last_commit=self.last_commit)
        ex.execute_block(block)
        cert = CommitCertificate.from_votes([
            Vote.create(self.keys[v.address], CHAIN, VoteKind.COMMIT, height, 0, block.hash)
            for v in vset])
        receipts = ex.commit(block, cert)
        self.last_commit = cert
        self.bus.block_committed(block, receipts)
        return block

    def blocks(self, n: int = 1) -> None:
        """Commit ``n`` empty blocks (from the test thread)."""
        async def go() -> None:
            for _ in range(n):
                self.commit_block([])
        self.run(go())

    @property
    def height(self) -> int:
        return self.executor.height
