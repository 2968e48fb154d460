"""Blocks, headers and commit certificates: ``block``, ``block_by_hash``, ``header``,
``commit``."""

from __future__ import annotations

from ..context import RPCContext
from ..protocol import Params, rpc_method
from ..views import BlockView, CommitView, HeaderView
from .common import BlockHeight, Hash, answering


class HeightParams(Params):
    height: BlockHeight | None = None


class HashParams(Params):
    hash: Hash


@rpc_method("block", HeightParams, BlockView)
async def block(ctx: RPCContext, p: HeightParams) -> BlockView:
    """A committed block by height (the latest when omitted), its transactions decoded."""
    with answering():
        return BlockView.of(ctx.chain.block(p.height), ctx.chain)


@rpc_method("block_by_hash", HashParams, BlockView)
async def block_by_hash(ctx: RPCContext, p: HashParams) -> BlockView:
    """A committed block by its hash."""
    with answering():
        return BlockView.of(ctx.chain.block_by_hash(p.hash), ctx.chain)  # type: ignore[arg-type]


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
