"""The node and its network: ``status``, ``health``, ``net_info``, ``genesis``,
``validators``, ``mempool_status``."""

from __future__ import annotations

import time
from typing import Any

from chain.address import address_to_text

from ..context import RPCContext
from ..protocol import NoParams, Params, rpc_method
from ..views import (
    HealthView,
    MempoolView,
    NetInfoView,
    PeerView,
    StatusView,
    ValidatorsView,
    ValidatorView,
)
from .common import BlockHeight, answering

#: A node whose last block is older than this is not healthy (nothing commits).
STALE_MS = 60_000


@rpc_method("status", NoParams, StatusView)
async def status(ctx: RPCContext, _: NoParams) -> StatusView:
    """The node's chain, height, latest block, peers and role."""
    chain = ctx.chain
    info = ctx.node_info()
    return StatusView(
        chain_id=chain.genesis.chain_id, node_id=info.node_id.hex(), moniker=info.moniker,
        mode=info.mode, height=chain.height, latest_block_hash=chain.latest_hash().hex(),
        latest_block_time_ms=chain.latest_time_ms(), state_root=chain.state_root().hex(),
        syncing=info.syncing, peers=len(ctx.peers()),
        validator=address_to_text(info.validator) if info.validator else None,
        mempool=ctx.mempool_status(), genesis_hash=chain.genesis_hash.hex())


@rpc_method("health", NoParams, HealthView)
async def health(ctx: RPCContext, _: NoParams) -> HealthView:
    """Whether the node is keeping up: peers, a recent block, not syncing.

    ``healthy`` is false with the reasons in ``problems``; a load balancer or a
    monitor can look at this one method.
    """
    chain = ctx.chain
    info = ctx.node_info()
    peers = len(ctx.peers())
    age = max(0, time.time_ns() // 1_000_000 - chain.latest_time_ms())
    problems = []
    if info.syncing:
        problems.append("catching up with its peers")
    if peers == 0 and len(chain.genesis.validators) > 1:
        problems.append("no peers")
    if age > STALE_MS:
        problems.append(f"the last block is {age // 1000} s old")
    return HealthView(healthy=not problems, height=chain.height, syncing=info.syncing,
                      peers=peers, last_block_age_ms=age, problems=problems)


@rpc_method("net_info", NoParams, NetInfoView)
async def net_info(ctx: RPCContext, _: NoParams) -> NetInfoView:
    """The node's peers: direction, address, validator, how long connected."""
    info = ctx.node_info()
    peers = [PeerView(node_id=p.node_id.hex(), direction="outbound" if p.outbound else "inbound",
                      address=p.address,
                      validator=address_to_text(p.validator) if p.validator else None,
                      connected_ms=p.connected_ms)
             for p in ctx.peers()]
    return NetInfoView(node_id=info.node_id.hex(), listen=info.listen, peers=peers,
                       inbound=sum(p.direction == "inbound" for p in peers),
                       outbound=sum(p.direction == "outbound" for p in peers))


@rpc_method("genesis", NoParams, dict[str, Any])
async def genesis(ctx: RPCContext, _: NoParams) -> dict[str, Any]:
    """The genesis document this node runs (as in genesis.json), with its hash."""
    g = ctx.chain.genesis
    return {"hash": ctx.chain.genesis_hash.hex(), "genesis": g.to_dict()}


class ValidatorsParams(Params):
    height: BlockHeight | None = None


@rpc_method("validators", ValidatorsParams, ValidatorsView)
async def validators(ctx: RPCContext, p: ValidatorsParams) -> ValidatorsView:
    """The validator set of a height (the latest block's when omitted). The sets of
    the next two heights are known too: block h decides the set of h + 2."""
    chain = ctx.chain
    with answering():
        record = chain.validator_record(p.height)
    vset = record.validators
    return ValidatorsView(
        height=chain.height if p.height is None else p.height, hash=vset.hash.hex(),
        total_power=vset.total_power, since=record.height,
        validators=[ValidatorView(address=address_to_text(v.address),
                                  public_key=v.public_key.hex(), power=v.power,
                                  name=record.names.get(v.address, ""),
                                  p2p=record.p2p.get(v.address, ""))
                    for v in vset])


@rpc_method("mempool_status", NoParams, MempoolView)
async def mempool_status(ctx: RPCContext, _: NoParams) -> MempoolView:
    """How many transactions wait, how many bytes, and the pool's limits."""
    return MempoolView(**ctx.mempool_status())
