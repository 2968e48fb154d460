"""Prometheus metrics at ``/metrics`` (the text format, via prometheus-client).

Each node has its own :class:`~prometheus_client.CollectorRegistry` — never the
process-wide default — so several nodes in one process (tests, the bench) keep apart.

What is there, and where each value comes from:

* read when scraped, by :class:`NodeCollector` (nothing on the commit path):
  ``agora_height``, ``agora_consensus_view``, ``agora_consensus_view_changes_total``
  (the core's counter), ``agora_syncing``, ``agora_mempool_txs`` and
  ``agora_mempool_bytes``, ``agora_peers{direction}``, ``agora_ws_clients``,
  ``agora_ws_subscriptions`` and ``agora_ws_dropped_slow_total`` (the RPC server's);
* counted per block, from :class:`~node.events.BlockCommitted` on the event bus:
  ``agora_committed_txs_total``, ``agora_block_interval_seconds`` (header time since
  the parent's), ``agora_block_finality_seconds`` (header time to the commit on this
  node; blocks fetched by sync are left out, their age is not finality) and
  ``agora_block_txs`` — a few additions per block;
* counted per request, through the dispatcher's observer:
  ``agora_rpc_requests_total{method,outcome}`` (the dispatcher bounds the method
  names, outcomes are ok | error | internal);
* the process (prometheus-client's ``ProcessCollector``): ``process_resident_memory_bytes``,
  ``process_open_fds`` and the rest.

Served on its own aiohttp listener at ``[metrics] listen``, or, when that is empty, on
the RPC listener (mounted before it starts). Everything opened here is closed by the
daemon's exit stack.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Iterator
from typing import TYPE_CHECKING

from aiohttp import web
from prometheus_client import CollectorRegistry, Counter, Histogram, ProcessCollector
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.exposition import CONTENT_TYPE_LATEST, generate_latest

from p2p.policy import split_host_port

from .events import BlockCommitted

if TYPE_CHECKING:
    from .daemon import Node

__all__ = ["NodeMetrics", "NodeCollector", "start_metrics"]

#: Seconds: blocks come every few hundred milliseconds, a stalled chain in tens of seconds.
_TIME_BUCKETS = (0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0)
_TXS_BUCKETS = (0, 1, 10, 50, 100, 250, 500, 1_000, 2_500, 5_000, 10_000)


class NodeCollector:
    """The node's gauges and counters that are read, not counted: each scrape asks
    the services for their current values."""

    def __init__(self, node: Node) -> None:
        self.node = node

    def describe(self) -> Iterator[Metric]:
        return iter(())  # names are checked against nothing; no scrape at register

    def collect(self) -> Iterator[Metric]:
        node = self.node
        yield GaugeMetricFamily("agora_height", "Height of the last committed block.",
                                value=node.executor.height)
        core = node.core
        yield GaugeMetricFamily("agora_consensus_view",
                                "View of the height being decided (0 unless views failed).",
                                value=core.view)
        yield CounterMetricFamily("agora_consensus_view_changes",
                                  "Times this node moved to a later view of a height.",
                                  value=core.view_changes)
        yield GaugeMetricFamily("agora_syncing", "1 while catching up by block sync, else 0.",
                                value=1 if node.driver.syncing else 0)
        pool = node.mempool.status()
        yield GaugeMetricFamily("agora_mempool_txs", "Transactions in the mempool.",
                                value=pool["count"])
        yield GaugeMetricFamily("agora_mempool_bytes", "Bytes of transactions in the mempool.",
                                value=pool["bytes"])
        outbound = sum(1 for p in node.network.peers.values() if p.outbound)
        peers = GaugeMetricFamily("agora_peers", "Connected peers by who dialled.",
                                  labels=["direction"])
        peers.add_metric(["inbound"], len(node.network.peers) - outbound)
        peers.add_metric(["outbound"], outbound)
        yield peers
        rpc = node.rpc
        yield GaugeMetricFamily("agora_ws_clients", "Connected WebSocket clients.",
                                value=len(rpc.connections) if rpc is not None else 0)
        yield GaugeMetricFamily("agora_ws_subscriptions", "Live WebSocket subscriptions.",
                                value=len(rpc.hub) if rpc is not None else 0)
        yield CounterMetricFamily("agora_ws_dropped_slow",
                                  "WebSocket clients dropped for falling behind.",
                                  value=rpc.dropped_slow if rpc is not None else 0)


class NodeMetrics:
    """One node's registry and the per-block and per-request counters."""

    def __init__(self, node: Node) -> None:
        self.node = node
        self.registry = CollectorRegistry()
        r = self.registry
        self.committed_txs = Counter("agora_committed_txs", "Transactions committed since "
                                     "this node started.", registry=r)
        self.block_interval = Histogram(
            "agora_block_interval_seconds", "Time between a block's header time and its "
            "parent's.", buckets=_TIME_BUCKETS, registry=r)
        self.finality = Histogram(
            "agora_block_finality_seconds", "From a block's header time to its commit on "
            "this node (blocks fetched by sync left out).", buckets=_TIME_BUCKETS, registry=r)
        self.block_txs = Histogram("agora_block_txs", "Transactions per committed block.",
                                   buckets=_TXS_BUCKETS, registry=r)
        self.rpc_requests = Counter("agora_rpc_requests", "JSON-RPC requests by method and "
                                    "outcome (ok, error: refused or the client's mistake, "
                                    "internal: our bug).", ["method", "outcome"], registry=r)
        r.register(NodeCollector(node))
        ProcessCollector(registry=r)
        height = node.executor.height
        parent = node.executor.blocks.header(height) if height else None
        self._parent_time_ms: int | None = parent.time_ms if parent is not None else None
        #: Where /metrics is served ("host:port"), or "" when on the RPC listener.
        self.listen = ""

    def block_committed(self, event: BlockCommitted) -> None:
        header = event.block.header
        self.committed_txs.inc(len(event.block.txs))
        self.block_txs.observe(len(event.block.txs))
        if self._parent_time_ms is not None and header.height > 1:
            self.block_interval.observe((header.time_ms - self._parent_time_ms) / 1000)
        self._parent_time_ms = header.time_ms
        if not self.node.driver.syncing:
            self.finality.observe(max(0, time.time_ns() // 1_000_000 - header.time_ms) / 1000)

    def rpc_request(self, method: str, outcome: str) -> None:
        self.rpc_requests.labels(method, outcome).inc()

    def exposition(self) -> bytes:
        return generate_latest(self.registry)

    async def handle(self, request: web.Request) -> web.Response:
        return web.Response(body=self.exposition(),
                            headers={"Content-Type": CONTENT_TYPE_LATEST})


async def start_metrics(node: Node, stack: contextlib.AsyncExitStack) -> NodeMetrics:
    """Build the node's metrics and serve them; everything opened goes on ``stack``.

    Called before the RPC server starts, so ``listen = ""`` can mount on it."""
    metrics = NodeMetrics(node)
    stack.callback(node.events.listen(BlockCommitted, metrics.block_committed))
    dispatcher = getattr(node, "dispatcher", None) if node.rpc is not None else None
    if dispatcher is not None:
        dispatcher.observer = metrics.rpc_request

        def unobserve() -> None:
            if dispatcher.observer == metrics.rpc_request:
                dispatcher.observer = None
        stack.callback(unobserve)
    listen = node.config.metrics.listen
    if not listen:
        if node.rpc is None:  # config.py refuses this; never serve nothing silently
            raise RuntimeError("metrics.listen is empty but RPC is not enabled")
        node.rpc.mount("GET", "/metrics", metrics.handle)
        return metrics
    app = web.Application()
    app.router.add_get("/metrics", metrics.handle)
    runner = web.AppRunner(app, access_log=None, handle_signals=False, shutdown_timeout=1.0)
    await runner.setup()
    stack.push_async_callback(runner.cleanup)
    host, port = split_host_port(listen)
    await web.TCPSite(runner, host, port).start()
    metrics.listen = listen
    return metrics
