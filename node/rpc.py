"""The node's JSON-RPC 2.0 API over HTTP POST at ``/`` (aiohttp).

Binary values are lowercase hex; addresses are shown in their checksummed text form
(``agora1...``) and accepted as text or hex; amounts are decimal strings, since a
256-bit balance does not fit a JSON number that every client reads exactly.
"""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING, Annotated, Any

from aiohttp import web
from pydantic import Field, StrictInt, StrictStr, field_validator

from chain.address import address_from_text, address_to_text
from chain.block import Block, CommitCertificate, Header, Receipt, ReceiptStatus
from chain.errors import InvalidAddress, InvalidTransaction
from chain.tx import Call, Deploy, Transaction, Transfer

from .daemon import NodeStopping
from .jsonrpc import Codes, Dispatcher, Params, RPCError
from .mempool import TxRejected

if TYPE_CHECKING:
    from .daemon import Node


# ---------------------------------------------------------------------- JSON views


def header_json(h: Header) -> dict[str, Any]:
    return {
        "chain_id": h.chain_id, "height": h.height, "time_ms": h.time_ms,
        "prev_hash": h.prev_hash.hex(), "tx_root": h.tx_root.hex(),
        "receipts_root": h.receipts_root.hex(), "state_root": h.state_root.hex(),
        "validators_hash": h.validators_hash.hex(),
        "next_validators_hash": h.next_validators_hash.hex(),
        "proposer": address_to_text(h.proposer), "tx_count": h.tx_count,
        "last_commit_hash": h.last_commit_hash.hex(),
    }


def commit_json(c: CommitCertificate) -> dict[str, Any]:
    return {"height": c.height, "view": c.view, "block_hash": c.block_hash.hex(),
            "signatures": [{"validator": address_to_text(s.validator),
                            "signature": s.signature.hex()} for s in c.signatures]}


def tx_json(tx: Transaction) -> dict[str, Any]:
    action = tx.action
    if type(action) is Transfer:
        act: dict[str, Any] = {"type": "transfer", "to": address_to_text(action.to),
                               "amount": str(action.amount)}
    elif type(action) is Call:
        act = {"type": "call", "contract": address_to_text(action.contract),
               "method": action.method, "args": action.args.hex(), "value": str(action.value)}
    else:
        assert type(action) is Deploy
        act = {"type": "deploy", "code_bytes": len(action.code), "value": str(action.value)}
    return {"hash": tx.hash.hex(), "chain_id": tx.chain_id,
            "sender": address_to_text(tx.sender_address), "nonce": tx.nonce,
            "gas_limit": tx.gas_limit, "gas_price": tx.gas_price, "action": act,
            "memo": tx.memo, "raw": tx.encode().hex()}


def receipt_json(r: Receipt) -> dict[str, Any]:
    return {"status": ReceiptStatus.NAMES.get(r.status, str(r.status)), "gas_used": r.gas_used,
            "return_data": r.return_data.hex(), "reason": r.reason,
            "events": [{"contract": address_to_text(e.contract), "name": e.name,
                        "data": e.data.hex()} for e in r.events]}


def block_json(block: Block) -> dict[str, Any]:
    return {"hash": block.hash.hex(), "header": header_json(block.header),
            "txs": [tx.encode().hex() for tx in block.txs],
            "last_commit": commit_json(block.last_commit) if block.last_commit else None}


# ---------------------------------------------------------------------- parameters


def _hex(value: str, what: str) -> bytes:
    text = value[2:] if value.startswith("0x") else value
    try:
        return bytes.fromhex(text)
    except ValueError:
        raise ValueError(f"{what} must be hex") from None


class HeightParams(Params):
    height: Annotated[StrictInt, Field(ge=1, lt=1 << 63)] | None = None


class TxHashParams(Params):
    hash: StrictStr

    @field_validator("hash")
    @classmethod
    def _hash(cls, v: str) -> str:
        if len(_hex(v, "hash")) != 32:
            raise ValueError("a transaction hash is 32 bytes of hex")
        return v


class AccountParams(Params):
    address: StrictStr

    @field_validator("address")
    @classmethod
    def _address(cls, v: str) -> str:
        parse_address(v)
        return v


class TxParams(Params):
    tx: StrictStr

    @field_validator("tx")
    @classmethod
    def _tx(cls, v: str) -> str:
        _hex(v, "tx")
        return v


def parse_address(text: str) -> bytes:
    if text.startswith("agora1"):
        try:
            return address_from_text(text)
        except InvalidAddress as exc:
            raise ValueError(str(exc)) from None
    raw = _hex(text, "address")
    if len(raw) != 20:
        raise ValueError("an address is agora1... text or 20 bytes of hex")
    return raw


# ---------------------------------------------------------------------- server


class RPCServer:
    def __init__(self, node: Node) -> None:
        self.node = node
        self.dispatcher = Dispatcher()
        self._runner: web.AppRunner | None = None
        self._register()

    async def start(self) -> None:
        config = self.node.config.rpc
        app = web.Application(client_max_size=config.max_body_bytes)
        app.router.add_post("/", self._http)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        host, _, port = config.listen.rpartition(":")
        site = web.TCPSite(self._runner, host.strip("[]"), int(port))
        await site.start()

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()

    async def _http(self, request: web.Request) -> web.Response:
        body = await request.read()  # over max_body_bytes: aiohttp answers 413
        answer = await self.dispatcher.handle_text(body)
        if answer is None:
            return web.Response(status=204)
        return web.Response(text=answer, content_type="application/json")

    def _register(self) -> None:
        node = self.node
        rpc = self.dispatcher

        @rpc.method("status")
        async def status(_: Params) -> dict[str, Any]:
            """The node's chain, height, latest block, peers and role."""
            ex = node.executor
            height = ex.height
            header = ex.blocks.header(height) if height else None
            validator = node.validator_address
            return {
                "chain_id": node.genesis.chain_id,
                "node_id": node.network.node_id.hex(),
                "height": height,
                "latest_block_hash": header.hash.hex() if header else node.genesis.hash.hex(),
                "latest_block_time_ms": header.time_ms if header else node.genesis.time_ms,
                "state_root": ex.state_root().hex(),
                "syncing": node.driver.syncing,
                "peers": len(node.network.peers),
                "validator": address_to_text(validator) if validator else None,
                "mempool": node.mempool.status(),
            }

        @rpc.method("block", HeightParams)
        async def block(p: HeightParams) -> dict[str, Any]:
            """A committed block by height (the latest when omitted)."""
            height = p.height or node.executor.height
            found = node.executor.blocks.block(height) if height else None
            if found is None:
                raise RPCError(Codes.NOT_FOUND, "No such block",
                               f"height {height}; the chain is at {node.executor.height}")
            return block_json(found)

        @rpc.method("tx", TxHashParams)
        async def tx(p: TxHashParams) -> dict[str, Any]:
            """A committed transaction by hash: where it is and its receipt."""
            record = node.executor.blocks.tx(_hex(p.hash, "hash"))
            if record is None:
                raise RPCError(Codes.NOT_FOUND, "No such transaction", p.hash)
            return {"tx": tx_json(record.tx), "height": record.height, "index": record.index,
                    "receipt": receipt_json(record.receipt)}

        @rpc.method("account", AccountParams)
        async def account(p: AccountParams) -> dict[str, Any]:
            """Balance and nonce in the committed state; ``pending_nonce`` counts the
            sender's transactions waiting in the mempool."""
            address = parse_address(p.address)
            nonce, balance = node.executor.account(address)
            return {"address": address_to_text(address), "balance": str(balance),
                    "nonce": nonce, "pending_nonce": node.mempool.pending_nonce(address)}

        @rpc.method("broadcast_tx_sync", TxParams)
        async def broadcast_tx_sync(p: TxParams) -> dict[str, Any]:
            """Admit a transaction to the mempool and gossip it; returns its hash."""
            tx = self._submit(p.tx)
            return {"hash": tx.hash.hex()}

        @rpc.method("broadcast_tx_commit", TxParams)
        async def broadcast_tx_commit(p: TxParams) -> dict[str, Any]:
            """Submit, then answer once the transaction is committed (final)."""
            tx = self._decode(p.tx)
            waiter = node.wait_for_commit(tx.hash)
            try:
                self._admit(tx)
                timeout = node.config.rpc.commit_timeout_ms / 1000
                try:
                    async with asyncio.timeout(timeout):
                        height, index = await waiter
                except TimeoutError:
                    raise RPCError(Codes.TIMEOUT, "Timed out waiting for the commit",
                                   {"hash": tx.hash.hex(), "timeout_ms":
                                    node.config.rpc.commit_timeout_ms}) from None
                except NodeStopping:
                    raise RPCError(Codes.UNAVAILABLE, "The node is stopping",
                                   {"hash": tx.hash.hex()}) from None
            finally:
                node.forget_waiter(tx.hash, waiter)
            record = node.executor.blocks.tx(tx.hash)
            assert record is not None
            return {"hash": tx.hash.hex(), "height": height, "index": index,
                    "receipt": receipt_json(record.receipt)}

    def _decode(self, text: str) -> Transaction:
        node = self.node
        try:
            return Transaction.decode_and_validate(_hex(text, "tx"), node.genesis.chain_id,
                                                   node.executor.params.max_tx_bytes)
        except InvalidTransaction as exc:
            raise RPCError(Codes.TX_REJECTED, "Transaction rejected",
                           {"code": "invalid", "reason": str(exc)}) from None

    def _admit(self, tx: Transaction) -> None:
        try:
            self.node.submit(tx)
        except TxRejected as exc:
            raise RPCError(Codes.TX_REJECTED, "Transaction rejected",
                           {"code": str(exc.code), "reason": exc.reason}) from None

    def _submit(self, text: str) -> Transaction:
        tx = self._decode(text)
        self._admit(tx)
        return tx
