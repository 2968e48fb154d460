"""Blocks, headers and commit certificates: ``block``, ``block_by_hash``, ``header``,
``commit``, ``block_results``."""

from __future__ import annotations

from typing import Any

from pydantic import Field

from chain.block import Block

from ..context import RPCContext
from ..protocol import Params, rpc_method
from ..views import BlockView, CommitView, HeaderView, Hex, View, block_json
from .common import BlockHeight, Hash, answering


class HeightParams(Params):
    height: BlockHeight | None = None


class HashParams(Params):
    hash: Hash


@rpc_method("block", HeightParams, BlockView)
async def block(ctx: RPCContext, p: HeightParams) -> dict[str, Any]:
    """A committed block by height (the latest when omitted), its transactions decoded."""
    with answering():
        return _block_view(ctx, ctx.chain.block(p.height))


@rpc_method("block_by_hash", HashParams, BlockView)
async def block_by_hash(ctx: RPCContext, p: HashParams) -> dict[str, Any]:
    """A committed block by its hash."""
    with answering():
        return _block_view(ctx, ctx.chain.block_by_hash(p.hash))  # type: ignore[arg-type]


def _block_view(ctx: RPCContext, found: Block) -> dict[str, Any]:
    # A block of thousands of transactions takes a while to render: once per block.
    return ctx.chain.rendered("block", found.hash,
                              lambda: block_json(found, ctx.chain))


@rpc_method("header", HeightParams, HeaderView)
async def header(ctx: RPCContext, p: HeightParams) -> HeaderView:
    """A committed block's header by height (the latest when omitted)."""
    with answering():
        return HeaderView.of(ctx.chain.header(p.height))


@rpc_method("commit", HeightParams, CommitView)
async def commit(ctx: RPCContext, p: HeightParams) -> CommitView:
    """The commit certificate of a height: the validators' signatures that made the
    block final (what a light node checks)."""
    with answering():
        return CommitView.of(ctx.chain.commit(p.height))


class BlockResultsView(View):
    height: int
    hash: Hex
    txs: list[Hex] = Field(description="The block's transactions, canonical bytes, in order.")
    receipts: list[Hex] = Field(description="Their receipts, canonical bytes, in order.")


@rpc_method("block_results", HeightParams, BlockResultsView)
async def block_results(ctx: RPCContext, p: HeightParams) -> BlockResultsView:
    """A committed block's transactions and receipts as canonical bytes (the latest
    when no height is given): what a light node checks against the header's
    ``tx_root`` and ``receipts_root`` before it tells its subscribers of them."""
    with answering():
        found = ctx.chain.block(p.height)
        receipts = ctx.chain.receipts(found.height)
    return BlockResultsView(height=found.height, hash=found.hash.hex(),
                            txs=[t.encode().hex() for t in found.txs],
                            receipts=[r.encode().hex() for r in receipts])
