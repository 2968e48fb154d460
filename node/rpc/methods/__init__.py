"""The API's methods, one module per topic. Each is a module-level
``async def name(ctx, params) -> result`` marked with ``@rpc_method``; a new method goes
in its topic's module and is found here by :func:`method_table`, which both the server
(dispatch) and ``rpc.discover`` (the OpenRPC document) use.

=============  =====================================================================
module         methods
=============  =====================================================================
info           status, health, net_info, genesis, validators, mempool_status
blocks         block, block_by_hash, header, commit, block_results
txs            tx, broadcast_tx_async, broadcast_tx_sync, broadcast_tx_commit,
               broadcast_txs
state          account, account_history, token_balance, call, contracts
commerce       listing, listings, order, orders, group, merchant, arbiter, reviews,
               events
governance     proposals, evidence
proofs         proof
subscriptions  subscribe, unsubscribe, unsubscribe_all (WebSocket only)
openrpc        rpc.discover
=============  =====================================================================
"""

from __future__ import annotations

from functools import cache

from ..protocol import MethodSpec, collect


@cache
def method_table() -> dict[str, MethodSpec]:
    from .. import openrpc, subscriptions
    from . import blocks, commerce, governance, info, proofs, state, txs

    return collect(info, blocks, txs, state, commerce, governance, proofs, subscriptions,
                   openrpc)
