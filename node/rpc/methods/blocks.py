"""Blocks, headers and commit certificates: ``block``, ``block_by_hash``, ``header``,
``commit``."""

from __future__ import annotations

from typing import Any

from chain.block import Block

from ..context import RPCContext
from ..protocol import Params, rpc_method
from ..views import BlockView, CommitView, HeaderView, block_json
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
