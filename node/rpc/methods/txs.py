"""Transactions: ``tx`` and the four ways to submit one (``broadcast_tx_async``,
``broadcast_tx_sync``, ``broadcast_tx_commit``, ``broadcast_txs``)."""

from __future__ import annotations

import asyncio
from typing import Annotated

from pydantic import Field, StrictBool, StrictStr

from chain.errors import DecodeError, InvalidTransaction
from chain.tx import Transaction

from ...chainview import parse_hex
from ...events import NodeStopping
from ...mempool import TxRejected
from ..context import RPCContext
from ..protocol import Codes, Params, RPCError, rpc_method
from ..views import (
    BroadcastCommitView,
    BroadcastItemView,
    BroadcastView,
    HeaderView,
    InclusionProofView,
    ReceiptView,
    TxResultView,
    TxView,
)
from .common import Hash, HexBytes, answering


class TxHashParams(Params):
    hash: Hash
    #: Include the inclusion proof under the block's tx_root, and the header.
    prove: StrictBool = False


class TxParams(Params):
    tx: HexBytes = Field(description="The signed transaction's canonical encoding, hex.")


class TxsParams(Params):
    txs: Annotated[list[StrictStr], Field(min_length=1, max_length=100_000)] = Field(
        description="Signed transactions, hex; each is answered on its own (at most the "
                    "node's rpc.max_broadcast_txs).")


@rpc_method("tx", TxHashParams, TxResultView)
async def tx(ctx: RPCContext, p: TxHashParams) -> TxResultView:
    """A committed transaction by hash: where it is, its receipt (events decoded), and
    on request its inclusion proof."""
    chain = ctx.chain
    with answering():
        record = chain.tx(p.hash)  # type: ignore[arg-type]
        proof = header = None
        if p.prove:
            head, inclusion = chain.tx_proof(record)
            proof, header = InclusionProofView.of(inclusion), HeaderView.of(head)
    return TxResultView(hash=record.tx.hash.hex(), height=record.height, index=record.index,
                        tx=TxView.of(record.tx, chain),
                        receipt=ReceiptView.of(record.receipt, chain, record.tx),
                        proof=proof, header=header)


def _decode(ctx: RPCContext, raw: bytes) -> Transaction:
    try:
        return Transaction.decode_and_validate(raw, ctx.chain.genesis.chain_id,
                                               ctx.chain.max_tx_bytes)
    except InvalidTransaction as exc:
        raise RPCError(Codes.TX_REJECTED, "Transaction rejected",
                       {"code": "invalid", "reason": str(exc)}) from None


def _decode_only(ctx: RPCContext, raw: bytes) -> Transaction:
    """Decode, leaving the stateless checks (signature included) to the mempool, which
    makes them after its cheap refusals: a batch sent to a full pool is refused without
    an ed25519 check per transaction. The refusal has the same shape either way."""
    try:
        return Transaction.decode(raw, ctx.chain.max_tx_bytes)
    except DecodeError as exc:
        raise RPCError(Codes.TX_REJECTED, "Transaction rejected",
                       {"code": "invalid", "reason": f"malformed transaction: {exc}"}) from None


def _admit(ctx: RPCContext, tx: Transaction) -> None:
    try:
        ctx.submit(tx)
    except TxRejected as exc:
        raise RPCError(Codes.TX_REJECTED, "Transaction rejected",
                       {"code": str(exc.code), "reason": exc.reason}) from None


@rpc_method("broadcast_tx_async", TxParams, BroadcastView)
async def broadcast_tx_async(ctx: RPCContext, p: TxParams) -> BroadcastView:
    """Hand a transaction to the node and answer at once with its hash.

    Only the encoding is checked before answering; admission happens after, and a
    refused transaction is only logged. Use broadcast_tx_sync to learn of a refusal.
    """
    tx = _decode(ctx, p.tx)  # type: ignore[arg-type]

    def admit_later() -> None:
        try:
            ctx.submit(tx)
        except TxRejected:
            pass
        except NodeStopping:
            pass
    asyncio.get_running_loop().call_soon(admit_later)
    return BroadcastView(hash=tx.hash.hex())


@rpc_method("broadcast_tx_sync", TxParams, BroadcastView)
async def broadcast_tx_sync(ctx: RPCContext, p: TxParams) -> BroadcastView:
    """Admit a transaction to the mempool and gossip it; its hash, or why it was refused."""
    tx = _decode(ctx, p.tx)  # type: ignore[arg-type]
    _admit(ctx, tx)
    return BroadcastView(hash=tx.hash.hex())


@rpc_method("broadcast_txs", TxsParams, list[BroadcastItemView])
async def broadcast_txs(ctx: RPCContext, p: TxsParams) -> list[BroadcastItemView]:
    """Admit many signed transactions in one request, each answered in order with its
    hash or its own rejection ``{code, message, data}`` (a load generator's or a busy
    shop's way to submit)."""
    if len(p.txs) > ctx.limits.max_broadcast_txs:
        raise RPCError(Codes.INVALID_PARAMS, "Invalid params",
                       f"txs: at most {ctx.limits.max_broadcast_txs} transactions in one "
                       f"request, got {len(p.txs)}")
    out: list[BroadcastItemView | None] = []
    decoded: list[tuple[int, Transaction]] = []
    for text in p.txs:
        try:
            try:
                raw = parse_hex(text, "tx")
            except ValueError as exc:
                raise RPCError(Codes.INVALID_PARAMS, "Invalid params", str(exc)) from None
            decoded.append((len(out), _decode_only(ctx, raw)))
            out.append(None)
        except RPCError as exc:
            out.append(BroadcastItemView(error=exc.to_json()))
    outcomes = ctx.submit_many([tx for _, tx in decoded])
    for (i, tx), outcome in zip(decoded, outcomes, strict=True):
        if isinstance(outcome, TxRejected):
            error = RPCError(Codes.TX_REJECTED, "Transaction rejected",
                             {"code": str(outcome.code), "reason": outcome.reason})
            out[i] = BroadcastItemView(error=error.to_json())
        else:
            out[i] = BroadcastItemView(hash=tx.hash.hex())
    return [item for item in out if item is not None]


@rpc_method("broadcast_tx_commit", TxParams, BroadcastCommitView, unthrottled=True)
async def broadcast_tx_commit(ctx: RPCContext, p: TxParams) -> BroadcastCommitView:
    """Submit, then answer once the transaction is committed (final), with its receipt.

    Gives up after the node's ``rpc.commit_timeout_ms`` (-32002); the transaction may
    still commit after that.
    """
    tx = _decode(ctx, p.tx)  # type: ignore[arg-type]
    waiter = ctx.waiters.wait(tx.hash)
    try:
        _admit(ctx, tx)
        timeout_ms = ctx.limits.commit_timeout_ms
        try:
            async with asyncio.timeout(timeout_ms / 1000):
                height, index = await waiter
        except TimeoutError:
            raise RPCError(Codes.TIMEOUT, "Timed out waiting for the commit",
                           {"hash": tx.hash.hex(), "timeout_ms": timeout_ms}) from None
        except NodeStopping:
            raise RPCError(Codes.UNAVAILABLE, "The node is stopping",
                           {"hash": tx.hash.hex()}) from None
    finally:
        ctx.waiters.forget(tx.hash, waiter)
    with answering():
        record = ctx.chain.tx(tx.hash)
    return BroadcastCommitView(hash=tx.hash.hex(), height=height, index=index,
                               receipt=ReceiptView.of(record.receipt, ctx.chain, record.tx))
