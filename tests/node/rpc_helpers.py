"""Helpers of the commerce RPC and index tests.

* The actors of a small market: the localnet demo's merchant (two listings published
  in genesis, one with a group deal) and arbiter, three buyers and a referrer, all
  funded in genesis; the first buyer also holds reward tokens.
* :func:`commerce_genesis` — that genesis (the real ``genesis_document``).
* :class:`Calls` — signed Call transactions to the commerce contracts, nonces counted.
* :func:`commerce_node` — a single-validator node on that genesis (in-process, real
  LevelDB, consensus, p2p and RPC on free ports), with fast blocks.
* :func:`order_data` — the ``data`` of ``token.transfer_and_call`` that pays an order
  in tokens.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from chain.keys import PrivateKey
from chain.system import COMMERCE_CONTRACTS
from chain.tx import Call, Transaction
from node.config import (
    Config,
    ConsensusSection,
    ExplorerSection,
    NodeSection,
    P2PSection,
    RPCSection,
)
from node.daemon import Node
from node.events import BlockCommitted
from node.genesis import GenesisValidator, genesis_document, now_ms
from node.home import Home, init_home
from node.localnet import free_base_port
from node.rpc.client import RPCClient
from vm.contracts import Demo, encode_call

COIN = 10**18
NOBODY = bytes(20)
MERCHANT = PrivateKey.from_seed_text("commerce-test-merchant")
ARBITER = PrivateKey.from_seed_text("commerce-test-arbiter")
BUYER_1 = PrivateKey.from_seed_text("commerce-test-buyer-1")
BUYER_2 = PrivateKey.from_seed_text("commerce-test-buyer-2")
BUYER_3 = PrivateKey.from_seed_text("commerce-test-buyer-3")
REFERRER = PrivateKey.from_seed_text("commerce-test-referrer")
ACTORS = (MERCHANT, ARBITER, BUYER_1, BUYER_2, BUYER_3, REFERRER)
FUNDS = 10**6 * COIN
GENESIS_TOKENS = 100 * COIN  # BUYER_1's
#: The demo's listings (vm.contracts.publish_demo): 1 the mug (needs the arbiter, also
#: sold for tokens), 2 the tea (final sale, group deal of 3 at 30 coin).
MUG, TEA = 1, 2
MUG_VERSION, TEA_VERSION = 2, 3
MUG_PRICE, TEA_GROUP_PRICE = 25 * COIN, 30 * COIN
GAS = 1_000_000
WAIT = 10.0  # seconds any wait below may take on a loaded machine


def commerce_genesis(chain_id: str, validator: PrivateKey, time_ms: int) -> dict[str, Any]:
    """The actors funded, BUYER_1 holding tokens, and the demo's arbiter and listings."""
    return genesis_document(
        chain_id, [GenesisValidator(validator.public_key, 10, "validator-0")],
        time_ms=time_ms, balances={k.address: FUNDS for k in ACTORS}, commerce=True,
        token_balances={BUYER_1.address: GENESIS_TOKENS},
        demo=Demo(merchant=MERCHANT.address, arbiter=ARBITER.address))


class Calls:
    """Signed calls to the commerce contracts, each sender's nonces counted here."""

    def __init__(self, chain_id: str) -> None:
        self.chain_id = chain_id
        self.nonces: dict[bytes, int] = {}

    def __call__(self, key: PrivateKey, contract: str, method: str, *args: object,
                 value: int = 0) -> Transaction:
        nonce = self.nonces.get(key.address, 0)
        self.nonces[key.address] = nonce + 1
        action = Call(COMMERCE_CONTRACTS[contract], method,
                      encode_call(contract, method, *args), value)
        return Transaction.create(key, self.chain_id, nonce, action, gas_limit=GAS,
                                  gas_price=1)


def order_data(listing: int, version: int, quantity: int, arbiter: bytes,
               referrer: bytes) -> bytes:
    """What ``escrow.on_token_received`` reads: listing, version, quantity (32 bytes
    each), arbiter, referrer (20 each)."""
    return (listing.to_bytes(32, "big") + version.to_bytes(32, "big")
            + quantity.to_bytes(32, "big") + arbiter + referrer)


@dataclass
class CommerceNode:
    node: Node
    url: str
    client: RPCClient

    async def commit(self, tx: Transaction) -> dict[str, Any]:
        """Submit ``tx``, wait for its commit; the answer of broadcast_tx_commit, which
        must say it succeeded."""
        answer = await self.client.broadcast_tx_commit(tx)
        receipt = answer["receipt"]
        assert receipt["status"] == "ok", f"{tx.action.method}: {receipt['reason']}"
        return answer

    async def commit_all(self, txs: list[Transaction]) -> list[dict[str, Any]]:
        """Submit several at once (they may share blocks); each one's commit answer."""
        return list(await asyncio.gather(*(self.commit(tx) for tx in txs)))

    async def wait_for_height(self, height: int) -> None:
        """Wait (bounded) until the node has committed ``height``, on its commit hook."""
        reached = asyncio.Event()

        def committed(event: BlockCommitted) -> None:
            if event.block.height >= height:
                reached.set()

        stop = self.node.events.listen(BlockCommitted, committed)
        try:
            if self.node.executor.height < height:
                async with asyncio.timeout(WAIT):
                    await reached.wait()
        finally:
            stop()


@asynccontextmanager
async def commerce_node(home_path: Path, chain_id: str,
                        rpc: dict[str, Any] | None = None,
                        explorer: bool = True) -> AsyncIterator[CommerceNode]:
    """A single-validator node on :func:`commerce_genesis`, fast blocks, free ports; a
    home that holds a node already is started again (new ports, same chain)."""
    home = Home(home_path)
    fresh = not home.exists()
    if fresh:
        init_home(home_path, chain_id=chain_id, validator=True)
    port = free_base_port(2)
    listen = f"127.0.0.1:{port + 1}"
    home.write_config(Config(
        node=NodeSection(mode="validator", moniker="commerce-test"),
        p2p=P2PSection(listen=f"127.0.0.1:{port}", pex=False),
        rpc=RPCSection(listen=listen, **(rpc or {})),
        consensus=ConsensusSection(block_interval_ms=10, idle_interval_ms=200,
                                   view_timeout_ms=1_000),
        explorer=ExplorerSection(enabled=explorer)))
    if fresh:
        home.write_genesis(commerce_genesis(chain_id, home.validator_key(), now_ms()))
    node = Node(home)
    await node.start()
    try:
        async with RPCClient(f"http://{listen}/", timeout=WAIT) as client:
            yield CommerceNode(node, f"http://{listen}/", client)
    finally:
        await node.stop()
