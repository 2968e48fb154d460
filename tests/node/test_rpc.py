"""The JSON-RPC API of a real node: one validator in-process (LevelDB, consensus, p2p
and the aiohttp server on 127.0.0.1), driven through RPCClient and raw HTTP.

Waits are on the node's own events (its commit hook, its commit futures, a loop
timer), bounded in time; never sleeps.
"""

from __future__ import annotations

import asyncio
import dataclasses
import json
import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from chain.address import address_to_text
from chain.keys import PrivateKey
from chain.tx import Transaction
from node.config import Config, ConsensusSection, NodeSection, P2PSection, RPCSection
from node.daemon import Node
from node.events import BlockCommitted
from node.home import Home, init_home
from node.localnet import free_base_port
from node.rpc.client import NodeUnreachable, RPCClient, RPCFailed, transfer
from node.rpc.protocol import Codes

CHAIN = "agora-rpc-test"
ALICE = PrivateKey.from_seed_text("rpc-test-alice")
BOB = PrivateKey.from_seed_text("rpc-test-bob")  # not funded
FUNDS = 10**21
MAX_BODY = 16 * 1024
WAIT = 10.0  # seconds any condition below may take on a loaded machine


@dataclasses.dataclass
class Running:
    node: Node
    url: str
    client: RPCClient

    async def post(self, body: bytes) -> tuple[int, str]:
        """POST raw bytes; the HTTP status and the body."""
        async with aiohttp.ClientSession() as session, \
                session.post(self.url, data=body,
                             headers={"Content-Type": "application/json"}) as response:
            return response.status, await response.text()

    async def height(self) -> int:
        return (await self.client.status())["height"]

    async def wait_for_height(self, height: int) -> int:
        """Wait (bounded) until the node has committed ``height``: on its commit hook."""
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
        return await self.height()

    async def committed_tx(self, tx: Transaction) -> dict[str, Any]:
        """The ``tx`` RPC answer once ``tx`` is committed: waits on the node's own
        commit future (registered before looking, so a fast commit is not missed)."""
        waiter = self.node.waiters.wait(tx.hash)
        try:
            if self.node.executor.blocks.tx(tx.hash) is None:
                async with asyncio.timeout(WAIT):
                    await waiter
        finally:
            self.node.waiters.forget(tx.hash, waiter)
        return await self.client.tx(tx.hash)


@asynccontextmanager
async def running_node(home_path: Path, rpc: dict[str, Any] | None = None,
                       consensus: dict[str, Any] | None = None) -> AsyncIterator[Running]:
    """A single-validator node with ALICE funded, fast blocks (unless ``consensus``
    says otherwise) and free ports."""
    init_home(home_path, chain_id=CHAIN, validator=True)
    home = Home(home_path)
    p2p_port = free_base_port(2)
    rpc_port = p2p_port + 1
    rpc_listen = f"127.0.0.1:{rpc_port}"
    home.write_config(Config(
        node=NodeSection(mode="validator", moniker="rpc-test"),
        p2p=P2PSection(listen=f"127.0.0.1:{p2p_port}", pex=False),
        rpc=RPCSection(listen=rpc_listen, max_body_bytes=MAX_BODY, **(rpc or {})),
        consensus=ConsensusSection(**({"block_interval_ms": 10, "idle_interval_ms": 100,
                                       "view_timeout_ms": 1_000} | (consensus or {}))),
    ))
    genesis = json.loads(home.genesis_path.read_text())
    genesis["balances"] = [{"address": address_to_text(ALICE.address), "amount": str(FUNDS)}]
    home.write_genesis(genesis)
    node = Node(home)
    await node.start()
    try:
        async with RPCClient(f"http://{rpc_listen}/", timeout=WAIT) as client:
            yield Running(node, f"http://{rpc_listen}/", client)
    finally:
        await node.stop()


@pytest.fixture
async def net(tmp_path: Path) -> AsyncIterator[Running]:
    async with running_node(tmp_path) as running:
        yield running


async def rpc_error(call: Awaitable[Any]) -> RPCFailed:
    with pytest.raises(RPCFailed) as info:
        await call
    return info.value


def pay(nonce: int, amount: int = 1_000, *, key: PrivateKey = ALICE,
        chain_id: str = CHAIN) -> Transaction:
    return transfer(key, chain_id, nonce, BOB.address, amount)


# ---------------------------------------------------------------------- status and blocks


async def test_status_describes_the_node(net: Running) -> None:
    home = net.node.home
    await net.wait_for_height(1)
    status = await net.client.status()
    assert status["chain_id"] == CHAIN
    assert status["node_id"] == home.node_key().address.hex()
    assert status["validator"] == address_to_text(home.validator_key().address)
    assert status["syncing"] is False
    assert status["peers"] == 0
    assert status["mempool"]["count"] == 0
    block = await net.client.block(status["height"])  # a snapshot of one moment
    assert status["latest_block_hash"] == block["hash"]
    assert status["latest_block_time_ms"] == block["header"]["time_ms"]
    assert status["state_root"] == block["header"]["state_root"]


async def test_blocks_keep_coming_when_idle(net: Running) -> None:
    start = await net.wait_for_height(1)
    await net.wait_for_height(start + 2)
    latest = await net.client.block()
    assert latest["header"]["height"] >= start + 2
    previous = await net.client.block(latest["header"]["height"] - 1)
    assert latest["header"]["prev_hash"] == previous["hash"]
    assert latest["header"]["tx_count"] == 0 and latest["txs"] == []
    assert latest["last_commit"]["block_hash"] == previous["hash"]
    assert latest["header"]["proposer"] == (await net.client.status())["validator"]


# ---------------------------------------------------------------------- transactions


async def test_broadcast_tx_commit_then_tx_block_and_account_agree(net: Running) -> None:
    tx = pay(0, amount=12_345)
    committed = await net.client.broadcast_tx_commit(tx)
    assert committed["hash"] == tx.hash.hex()
    assert committed["index"] == 0
    receipt = committed["receipt"]
    assert receipt["status"] == "ok" and receipt["reason"] == ""
    height = committed["height"]

    found = await net.client.tx(tx.hash)
    assert (found["height"], found["index"], found["receipt"]) == (height, 0, receipt)
    assert found["tx"]["hash"] == tx.hash.hex()
    assert found["tx"]["raw"] == tx.encode().hex()
    assert found["tx"]["sender"] == address_to_text(ALICE.address)
    assert found["tx"]["action"] == {"type": "transfer", "to": address_to_text(BOB.address),
                                     "amount": "12345"}

    block = await net.client.block(height)
    assert block["header"]["height"] == height
    assert block["header"]["tx_count"] == 1
    assert [t["raw"] for t in block["txs"]] == [tx.encode().hex()]

    alice = await net.client.account(ALICE.address)
    assert alice["nonce"] == 1 and alice["pending_nonce"] == 1
    assert int(alice["balance"]) == FUNDS - 12_345 - receipt["gas_used"] * tx.gas_price
    bob = await net.client.call("account", address=address_to_text(BOB.address))
    assert bob == {"address": address_to_text(BOB.address), "balance": "12345", "nonce": 0,
                   "pending_nonce": 0, "height": bob["height"], "is_contract": False}
    assert bob["height"] >= height

    replay = await rpc_error(net.client.broadcast_tx_commit(tx))
    assert replay.code == Codes.TX_REJECTED
    assert replay.data["code"] == "nonce_too_low"
    assert "nonce 0" in replay.data["reason"]


async def test_broadcast_tx_sync_returns_the_hash_and_the_tx_commits(net: Running) -> None:
    txs = [pay(0), pay(1)]
    for tx in txs:
        assert await net.client.broadcast_tx_sync(tx) == {"hash": tx.hash.hex()}
    again = await rpc_error(net.client.broadcast_tx_sync(txs[0]))
    assert again.code == Codes.TX_REJECTED
    assert again.data["code"] in ("already_known", "nonce_too_low")  # pooled or committed
    found = [await net.committed_tx(tx) for tx in txs]
    assert all(f["receipt"]["status"] == "ok" for f in found)
    assert (found[0]["height"], found[0]["index"]) < (found[1]["height"], found[1]["index"])
    alice = await net.client.account(ALICE.address)
    assert alice["nonce"] == 2
    assert alice["balance"] == str(FUNDS - 2_000 - sum(f["receipt"]["gas_used"] for f in found))


@pytest.mark.parametrize(("make_tx", "code"), [
    (lambda: dataclasses.replace(pay(0), memo="changed after signing"), "invalid"),
    (lambda: dataclasses.replace(pay(0), signature=bytes(64)), "invalid"),
    (lambda: pay(0, chain_id="agora-other-chain"), "invalid"),
    (lambda: pay(0, key=BOB), "insufficient_balance"),
    (lambda: pay(0, amount=FUNDS), "insufficient_balance"),
    (lambda: pay(17), "nonce_gap"),
], ids=["forged-memo", "zero-signature", "other-chain", "unfunded-sender", "overdraft",
        "nonce-gap"])
async def test_a_rejected_tx_gets_its_reason(net: Running, make_tx: Callable[[], Transaction],
                                             code: str) -> None:
    tx = make_tx()
    reasons = set()
    for broadcast in (net.client.broadcast_tx_sync, net.client.broadcast_tx_commit):
        error = await rpc_error(broadcast(tx))
        assert error.code == Codes.TX_REJECTED
        assert error.data["code"] == code and error.data["reason"]
        reasons.add(error.data["reason"])
    # broadcast_txs leaves the signature to the mempool (after its cheap refusals): the
    # same refusal, item by item.
    [item] = await net.client.call("broadcast_txs", txs=[tx.encode().hex()])
    assert item["error"]["code"] == Codes.TX_REJECTED
    assert item["error"]["data"]["code"] == code and item["error"]["data"]["reason"] in reasons
    assert (await net.client.status())["mempool"]["count"] == 0


@pytest.mark.parametrize("raw", ["deadbeef", "", "00" * 100], ids=["short", "empty", "zeros"])
async def test_hex_that_is_not_a_transaction_is_rejected_as_invalid(net: Running,
                                                                    raw: str) -> None:
    error = await rpc_error(net.client.call("broadcast_tx_sync", tx=raw))
    assert error.code == Codes.TX_REJECTED
    assert error.data["code"] == "invalid"
    assert "malformed transaction" in error.data["reason"]
    [item] = await net.client.call("broadcast_txs", txs=[raw])
    assert item["error"]["data"] == error.data


# ---------------------------------------------------------------------- errors


async def test_queries_for_what_does_not_exist(net: Running) -> None:
    tip = await net.height()
    beyond = await rpc_error(net.client.block(tip + 1_000))
    assert beyond.code == Codes.NOT_FOUND
    assert f"height {tip + 1_000}" in beyond.data
    unknown = await rpc_error(net.client.tx(bytes(32)))
    assert unknown.code == Codes.NOT_FOUND


@pytest.mark.parametrize(("method", "params", "named"), [
    ("block", {"height": 0}, "height"),
    ("block", {"height": -1}, "height"),
    ("block", {"height": "1"}, "height"),
    ("block", {"height": 1.5}, "height"),
    ("block", {"hight": 1}, "hight: unknown parameter"),
    ("tx", {"hash": "zz"}, "hash"),
    ("tx", {"hash": "00" * 31}, "hash"),
    ("tx", {}, "hash: Field required"),
    ("account", {"address": "agora1nonsense"}, "address"),
    ("account", {"address": "00" * 19}, "address"),
    ("account", {"address": 5}, "address"),
    ("broadcast_tx_sync", {"tx": "xyz"}, "tx"),
    ("broadcast_tx_commit", {"tx": 1}, "tx"),
    ("status", {"verbose": True}, "verbose: unknown parameter"),
])
async def test_bad_params_are_refused_naming_the_parameter(net: Running, method: str,
                                                           params: dict[str, Any],
                                                           named: str) -> None:
    error = await rpc_error(net.client.call(method, **params))
    assert error.code == Codes.INVALID_PARAMS
    assert error.data.startswith(named)


async def test_an_unknown_method(net: Running) -> None:
    error = await rpc_error(net.client.call("no_such_method"))
    assert error.code == Codes.METHOD_NOT_FOUND


async def test_accounts_by_text_and_by_hex_agree(net: Running) -> None:
    by_hex = await net.client.account(ALICE.address)
    by_text = await net.client.call("account", address=address_to_text(ALICE.address))
    by_0x = await net.client.call("account", address="0x" + ALICE.address.hex())
    assert by_hex == by_text == by_0x
    assert by_hex["balance"] == str(FUNDS)


# ---------------------------------------------------------------------- HTTP


async def test_http_transport(net: Running) -> None:
    status, text = await net.post(b'{"jsonrpc": "2.0", "method": "status", "id"')
    assert status == 200
    answer = json.loads(text)
    assert answer["error"]["code"] == Codes.PARSE_ERROR and answer["id"] is None

    status, text = await net.post(b'{"jsonrpc": "2.0", "method": "status"}')
    assert (status, text) == (204, "")  # a notification gets no body

    batch = [{"jsonrpc": "2.0", "method": "status", "id": 1},
             {"jsonrpc": "2.0", "method": "block", "params": [10**9], "id": 2}]
    status, text = await net.post(json.dumps(batch).encode())
    assert status == 200
    by_id = {a["id"]: a for a in json.loads(text)}
    assert by_id[1]["result"]["chain_id"] == CHAIN
    assert by_id[2]["error"]["code"] == Codes.NOT_FOUND


async def test_an_oversize_body_is_refused_with_413(net: Running) -> None:
    body = json.dumps({"jsonrpc": "2.0", "method": "broadcast_tx_sync",
                       "params": {"tx": "00" * MAX_BODY}, "id": 1}).encode()
    status, _ = await net.post(body)
    assert status == 413
    assert (await net.client.status())["chain_id"] == CHAIN  # still serving


# No block for a minute: a transaction admitted now stays in the mempool.
STALLED = {"block_interval_ms": 60_000, "idle_interval_ms": 60_000, "view_timeout_ms": 120_000}


async def test_broadcast_tx_commit_gives_up_after_the_commit_timeout(tmp_path: Path) -> None:
    async with running_node(tmp_path, rpc={"commit_timeout_ms": 200},
                            consensus=STALLED) as net:
        tx = pay(0)
        error = await rpc_error(net.client.broadcast_tx_commit(tx))
        assert error.code == Codes.TIMEOUT
        assert error.data == {"hash": tx.hash.hex(), "timeout_ms": 200}
        assert len(net.node.waiters) == 0  # the waiter was forgotten
        assert (await net.client.account(ALICE.address))["pending_nonce"] == 1


async def test_stop_does_not_wait_for_a_pending_broadcast_tx_commit(tmp_path: Path) -> None:
    # Stopping the node must not sit out commit_timeout_ms for a client waiting on a
    # transaction that can no longer commit (the node is going away).
    loop = asyncio.get_running_loop()
    async with running_node(tmp_path, rpc={"commit_timeout_ms": 6_000},
                            consensus=STALLED) as net:
        registered = asyncio.Event()
        wait_for_commit = net.node.waiters.wait

        def recording(tx_hash: bytes) -> asyncio.Future:
            future = wait_for_commit(tx_hash)
            registered.set()
            return future

        net.node.waiters.wait = recording  # type: ignore[method-assign]
        waiting = asyncio.ensure_future(net.client.broadcast_tx_commit(pay(0)))
        async with asyncio.timeout(WAIT):  # the RPC handler is waiting for the commit
            await registered.wait()
        stopping = loop.time()
    stop_took = loop.time() - stopping
    with pytest.raises((RPCFailed, NodeUnreachable)):
        await waiting
    assert stop_took < 2.0


async def test_a_tx_behind_a_nonce_gap_is_queued_while_the_proposer_idles(
        tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    # The proposer of an idle height re-arms its propose timer for the idle deadline
    # once block_interval has passed. A transaction that is admitted but not ready
    # (nonce 1 before nonce 0) then asks for the very same timer again; the consensus
    # driver must take that in its stride, and the client must get the hash.
    loop = asyncio.get_running_loop()
    async with running_node(tmp_path, consensus={"block_interval_ms": 1,
                                                 "idle_interval_ms": 10_000,
                                                 "view_timeout_ms": 30_000}) as net:
        core = net.node.core
        due = asyncio.Event()  # the first propose timer has fired (it was set first)
        loop.call_at(core.state.started + core.timeouts.block_interval, due.set)
        async with asyncio.timeout(WAIT):
            await due.wait()
        gap = pay(1)
        assert await net.client.broadcast_tx_sync(gap) == {"hash": gap.hash.hex()}
        await net.client.broadcast_tx_commit(pay(0))
        found = await net.committed_tx(gap)
        assert found["receipt"]["status"] == "ok"
    assert [r.getMessage() for r in caplog.records if r.levelno >= logging.ERROR] == []


# ---------------------------------------------------------------------- regressions from the second review


async def test_huge_numbers_are_refused_not_crashed_on(net: Running) -> None:
    """Review 2: a block height past 64 bits reached the block store and failed there
    (-32603), and a JSON integer of more than 4,300 digits made json.loads raise out
    of the dispatcher (HTTP 500)."""
    for height in (2**63, 2**64, 10**30):
        error = await rpc_error(net.client.call("block", height=height))
        assert error.code == Codes.INVALID_PARAMS, height
        assert error.data.startswith("height")
    largest = await rpc_error(net.client.call("block", height=2**63 - 1))
    assert largest.code == Codes.NOT_FOUND
    status, text = await net.post(b'{"jsonrpc": "2.0", "method": "status", "id": '
                                  + b"9" * 5_000 + b"}")
    assert status == 200
    answer = json.loads(text)
    assert answer["error"]["code"] == Codes.PARSE_ERROR and answer["id"] is None
    assert (await net.client.status())["chain_id"] == CHAIN  # still serving


# ---------------------------------------------------------------------- proofs


async def test_proofs_verify_against_the_header_a_certificate_signed(net: Running) -> None:
    """What a light node does with `proof`: check the header against the commit
    certificate, then each proof against the header — and a lie fails."""
    from chain.block import CommitCertificate, Header, Receipt
    from chain.merkle import InclusionProof
    from storage.proof import StateProof, verify_state_proof
    from vm.world import account_key, encode_account

    tx = pay(0, amount=777)
    committed = await net.client.broadcast_tx_commit(tx)
    height = committed["height"]
    keys = [account_key(BOB.address), account_key(ALICE.address), account_key(bytes(20))]
    answer = await net.client.proof(keys=keys, tx=tx.hash, height=height)
    header = Header.decode(bytes.fromhex(answer["header"]["raw"]))
    certificate = CommitCertificate.decode(bytes.fromhex(
        (await net.client.commit(height))["raw"]))
    assert header.height == height and certificate.block_hash == header.hash
    certificate.verify(CHAIN, net.node.genesis.validators, height=height,
                       block_hash=header.hash)  # raises if it does not
    bob, alice, nobody = answer["state"]
    assert bob["value"] == encode_account(0, 777).hex()  # type: ignore[union-attr]
    assert nobody["value"] is None  # a proof of absence
    for item in answer["state"]:
        assert item["state_root"] == header.state_root.hex() and item["height"] == height
        value = bytes.fromhex(item["value"]) if item["value"] is not None else None
        proof = StateProof.decode(bytes.fromhex(item["proof"]))
        assert verify_state_proof(header.state_root, bytes.fromhex(item["key"]), value, proof)
        # The same proof does not vouch for another value.
        assert not verify_state_proof(header.state_root, bytes.fromhex(item["key"]),
                                      b"\x00" * 9 + b"\x01", proof)
    proven = answer["tx"]
    tx_header = Header.decode(bytes.fromhex(proven["header"]["raw"]))
    assert tx_header.hash == header.hash
    tx_proof = proven["tx_proof"]
    inclusion = InclusionProof(tx_proof["index"], tx_proof["size"],
                               tuple(bytes.fromhex(p) for p in tx_proof["path"]))
    assert inclusion.size == tx_header.tx_count
    assert inclusion.verify(bytes.fromhex(proven["tx"]), tx_header.tx_root)
    assert not inclusion.verify(pay(1).encode(), tx_header.tx_root)
    receipt_proof = proven["receipt_proof"]
    receipt_inclusion = InclusionProof(receipt_proof["index"], receipt_proof["size"],
                                       tuple(bytes.fromhex(p) for p in receipt_proof["path"]))
    assert receipt_inclusion.verify(bytes.fromhex(proven["receipt"]), tx_header.receipts_root)
    assert Receipt.decode(bytes.fromhex(proven["receipt"])).status == 0
    # Asking for nothing, or for a height no longer kept, is refused with a sentence.
    error = await rpc_error(net.client.proof())
    assert error.code == Codes.NOT_ANSWERABLE and "keys, a tx" in error.data
    error = await rpc_error(net.client.proof(keys=keys, height=10**12))
    assert error.code == Codes.NOT_FOUND and "beyond the chain" in error.data
