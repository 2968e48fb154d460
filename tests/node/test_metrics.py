"""``/metrics`` of a real node: one validator in-process (LevelDB, consensus, p2p, the
RPC server and the metrics listener on 127.0.0.1), scraped over HTTP and read back
with prometheus-client's own text parser.

Waits are on the node's event bus or commit futures, bounded in time; never sleeps.
"""

from __future__ import annotations

import asyncio
import dataclasses
import json
import socket
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import aiohttp
import pytest
from consensus_sim import CHAIN as SIM_CHAIN
from consensus_sim import TIMEOUTS, FakeApp, keys
from prometheus_client.parser import text_string_to_metric_families

from chain.address import address_to_text
from chain.keys import PrivateKey
from chain.validators import Validator, ValidatorSet
from consensus.core import Core, SetTimer
from consensus.signlog import MemoryStorage, SignLog
from node.config import (
    Config,
    ConsensusSection,
    MetricsSection,
    NodeSection,
    P2PSection,
    RPCSection,
)
from node.daemon import Node
from node.events import BlockCommitted
from node.home import Home, init_home
from node.localnet import free_base_port
from node.rpc.client import RPCClient, RPCFailed, transfer

CHAIN = "agora-metrics-test"
ALICE = PrivateKey.from_seed_text("metrics-test-alice")
BOB = PrivateKey.from_seed_text("metrics-test-bob")
WAIT = 10.0  # seconds any condition below may take on a loaded machine

FAMILIES = {
    "agora_height": "gauge",
    "agora_committed_txs": "counter",
    "agora_block_interval_seconds": "histogram",
    "agora_block_finality_seconds": "histogram",
    "agora_block_txs": "histogram",
    "agora_mempool_txs": "gauge",
    "agora_mempool_bytes": "gauge",
    "agora_peers": "gauge",
    "agora_consensus_view": "gauge",
    "agora_consensus_view_changes": "counter",
    "agora_syncing": "gauge",
    "agora_rpc_requests": "counter",
    "agora_ws_clients": "gauge",
    "agora_ws_subscriptions": "gauge",
    "agora_ws_dropped_slow": "counter",
    "process_resident_memory_bytes": "gauge",
    "process_open_fds": "gauge",
}


@dataclasses.dataclass
class Scrape:
    types: dict[str, str]
    #: (sample name, sorted labels) -> value
    samples: dict[tuple[str, tuple[tuple[str, str], ...]], float]

    def value(self, name: str, **labels: str) -> float:
        return self.samples.get((name, tuple(sorted(labels.items()))), 0.0)


@dataclasses.dataclass
class Running:
    node: Node
    metrics_url: str
    client: RPCClient

    async def scrape(self) -> Scrape:
        async with aiohttp.ClientSession() as session, \
                session.get(self.metrics_url, timeout=aiohttp.ClientTimeout(WAIT)) as r:
            assert r.status == 200
            assert r.headers["Content-Type"].startswith("text/plain")
            text = await r.text()
        types: dict[str, str] = {}
        samples = {}
        for family in text_string_to_metric_families(text):
            types[family.name] = family.type
            for s in family.samples:
                samples[(s.name, tuple(sorted(s.labels.items())))] = s.value
        return Scrape(types, samples)

    async def next_block(self, after: int) -> None:
        """Wait (bounded) until the node has committed a block above ``after``."""
        reached = asyncio.Event()

        def committed(event: BlockCommitted) -> None:
            if event.block.height > after:
                reached.set()

        stop = self.node.events.listen(BlockCommitted, committed)
        try:
            if self.node.executor.height <= after:
                async with asyncio.timeout(WAIT):
                    await reached.wait()
        finally:
            stop()


@asynccontextmanager
async def running_node(home_path: Path, *, on_rpc: bool = False) -> AsyncIterator[Running]:
    """A single-validator node with ALICE funded, fast blocks, metrics on their own
    listener (or, ``on_rpc``, on the RPC listener) and free ports."""
    init_home(home_path, chain_id=CHAIN, validator=True)
    home = Home(home_path)
    base = free_base_port(3)
    rpc_listen, metrics_listen = f"127.0.0.1:{base + 1}", f"127.0.0.1:{base + 2}"
    home.write_config(Config(
        node=NodeSection(mode="validator", moniker="metrics-test"),
        p2p=P2PSection(listen=f"127.0.0.1:{base}", pex=False),
        rpc=RPCSection(listen=rpc_listen),
        consensus=ConsensusSection(block_interval_ms=10, idle_interval_ms=100,
                                   view_timeout_ms=1_000),
        metrics=MetricsSection(enabled=True, listen="" if on_rpc else metrics_listen),
    ))
    genesis = json.loads(home.genesis_path.read_text())
    genesis["balances"] = [{"address": address_to_text(ALICE.address), "amount": str(10**21)}]
    home.write_genesis(genesis)
    node = Node(home)
    await node.start()
    try:
        async with RPCClient(f"http://{rpc_listen}/", timeout=WAIT) as client:
            url = f"http://{rpc_listen if on_rpc else metrics_listen}/metrics"
            yield Running(node, url, client)
    finally:
        await node.stop()


def connectable(host_port: str) -> bool:
    host, _, port = host_port.rpartition(":")
    with socket.socket() as s:
        return s.connect_ex((host, int(port))) == 0


# ---------------------------------------------------------------------- tests


@pytest.mark.parametrize("on_rpc", [False, True], ids=["own-listener", "on-rpc-listener"])
async def test_metrics_parse_and_move_when_blocks_commit(tmp_path: Path, on_rpc: bool) -> None:
    async with running_node(tmp_path, on_rpc=on_rpc) as net:
        first = await net.scrape()
        for name, kind in FAMILIES.items():
            assert first.types.get(name) == kind, name
        assert first.value("agora_peers", direction="inbound") == 0
        assert first.value("agora_peers", direction="outbound") == 0
        assert first.value("agora_syncing") == 0
        assert first.value("process_resident_memory_bytes") > 1 << 20
        assert first.value("process_open_fds") > 0

        height = int(first.value("agora_height"))
        await net.next_block(height)
        second = await net.scrape()
        assert second.value("agora_height") > height
        assert second.value("agora_block_txs_count") > first.value("agora_block_txs_count")
        assert second.value("agora_block_finality_seconds_count") >= 1

        tx = transfer(ALICE, CHAIN, 0, BOB.address, 1_000)
        answer = await net.client.broadcast_tx_commit(tx)
        third = await net.scrape()
        assert third.value("agora_height") >= answer["height"]
        assert third.value("agora_committed_txs_total") == 1
        assert third.value("agora_block_txs_bucket", le="1.0") >= 1
        assert third.value("agora_block_interval_seconds_count") >= 1
        # Every block's interval is at least the 1 ms the chain demands.
        assert third.value("agora_block_interval_seconds_sum") > 0


async def test_mempool_metrics_read_the_mempool(tmp_path: Path) -> None:
    async with running_node(tmp_path) as net:
        # A tx behind a nonce gap waits in the mempool, never in a block.
        gapped = transfer(ALICE, CHAIN, 5, BOB.address, 1_000)
        await net.client.broadcast_tx_sync(gapped)
        scrape = await net.scrape()
        assert scrape.value("agora_mempool_txs") == 1
        assert scrape.value("agora_mempool_bytes") == len(gapped.encode())


async def test_rpc_requests_are_counted_by_method_and_outcome(tmp_path: Path) -> None:
    async with running_node(tmp_path, on_rpc=True) as net:
        await net.client.status()
        await net.client.status()
        with pytest.raises(RPCFailed):
            await net.client.call("no_such_method")
        with pytest.raises(RPCFailed):
            await net.client.call("block", height=-1)
        async with aiohttp.ClientSession() as session:
            async with session.post(net.client.url, data=b'{"jsonrpc": "2.0"}') as r:
                assert (await r.json())["error"]["code"] == -32600
            async with session.post(net.client.url, data=b"not json") as r:
                assert (await r.json())["error"]["code"] == -32700
        scrape = await net.scrape()
        count = scrape.value
        assert count("agora_rpc_requests_total", method="status", outcome="ok") == 2
        assert count("agora_rpc_requests_total", method="block", outcome="error") == 1
        # An unknown method shares one catch-all label; a request that is not a
        # request, and a body that is not JSON, have theirs.
        assert count("agora_rpc_requests_total", method="(unknown)", outcome="error") == 1
        assert count("agora_rpc_requests_total", method="(invalid)", outcome="error") == 1
        assert count("agora_rpc_requests_total", method="(parse error)", outcome="error") == 1
        # Only names the node dispatches (and the three catch-alls) become labels.
        methods = {dict(labels)["method"] for name, labels in scrape.samples
                   if name == "agora_rpc_requests_total"}
        assert methods == {"status", "block", "(unknown)", "(invalid)", "(parse error)"}


async def test_websocket_clients_are_counted(tmp_path: Path) -> None:
    async with running_node(tmp_path) as net, aiohttp.ClientSession() as session:
        ws_url = net.client.url + "websocket"
        async with session.ws_connect(ws_url) as ws:
            await ws.send_json({"jsonrpc": "2.0", "id": 1, "method": "subscribe",
                                "params": {"kind": "blocks"}})
            async with asyncio.timeout(WAIT):
                while "result" not in (answer := await ws.receive_json()):
                    pass
            assert answer["id"] == 1
            scrape = await net.scrape()
            assert scrape.value("agora_ws_clients") == 1
            assert scrape.value("agora_ws_subscriptions") == 1
            assert scrape.value("agora_rpc_requests_total", method="subscribe",
                                outcome="ok") == 1
        # Closed by the client: the server forgets it once its handler ends.
        async with asyncio.timeout(WAIT):
            while net.node.rpc.connections:
                await asyncio.sleep(0.01)  # polled: the handler's end has no event
        scrape = await net.scrape()
        assert scrape.value("agora_ws_clients") == 0
        assert scrape.value("agora_ws_subscriptions") == 0
        assert scrape.value("agora_ws_dropped_slow_total") == 0


async def test_the_listener_closes_on_stop_and_a_taken_port_fails_the_start(
        tmp_path: Path) -> None:
    async with running_node(tmp_path / "a") as net:
        listen = net.metrics_url.removeprefix("http://").removesuffix("/metrics")
        assert connectable(listen)
        node = net.node
    assert not connectable(listen)

    # A config that enables metrics always gets them: a port that is taken fails the
    # start, and everything opened before is closed (the LevelDB lock too).
    with socket.socket() as squatter:
        squatter.bind(("127.0.0.1", int(listen.rpartition(":")[2])))
        squatter.listen()
        again = Node(node.home)
        with pytest.raises(OSError):
            await again.start()
        rpc = again.config.rpc.listen
        assert not connectable(rpc)
    # LevelDB is free again: the same home starts.
    third = Node(node.home)
    await third.start()
    await third.stop()


def test_the_core_counts_its_view_changes() -> None:
    validators = keys(4)
    vset = ValidatorSet(Validator(k.public_key, 1) for k in validators)
    core = Core(SIM_CHAIN, vset, FakeApp(vset), SignLog(MemoryStorage()),
                key=validators[0], height=0, last_commit=None, timeouts=TIMEOUTS)
    assert core.view_changes == 0
    [view_timer] = [a for a in core.start(0.0) if isinstance(a, SetTimer)
                    and a.timer.view == 0 and a.at == TIMEOUTS.view(0)]
    core.on_timer(view_timer.timer, view_timer.at)
    assert (core.view, core.view_changes) == (1, 1)
