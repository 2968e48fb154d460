"""Benchmark: the node's JSON-RPC API (issue 13's targets).

1. ``status`` and ``account`` over HTTP keep-alive against one validator node (a
   process of its own: one core). The load comes from another process with a lean
   HTTP/1.1 client (asyncio streams, ``--connections`` keep-alive connections, one
   request in flight on each), so the generator is not the bottleneck: its own CPU use
   is printed beside the node's, and its ceiling is measured in the same run against
   a bare aiohttp server that answers a constant body (the framework's own limit on
   this machine).
2. ``broadcast_txs`` of 1,000 signed transfers (100 senders x 10 nonces) in one
   request: the request's time beside the time this machine takes to verify 1,000
   signatures (each is verified once at admission).
3. (``--ws``) 200 WebSocket subscribers on a 4-validator localnet under a steady
   transfer load: committed tx/s without and with them.

    python -m bench.rpc                 # 1 and 2
    python -m bench.rpc --ws            # 3 as well
"""

from __future__ import annotations

import argparse
import asyncio
import json
import multiprocessing as mp
import os
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import aiohttp

from chain.address import address_to_text
from chain.keys import PrivateKey
from node import localnet
from node.config import ConsensusSection
from node.rpc.client import NodeUnreachable, RPCClient, RPCFailed, transfer
from p2p.policy import split_host_port

from .localnet import verify_rate

# ---------------------------------------------------------------- the load generator


async def _connection(host: str, port: int, request: bytes, deadline: float,
                      counts: list[int]) -> None:
    reader, writer = await asyncio.open_connection(host, port)
    try:
        first = True
        while time.perf_counter() < deadline:
            writer.write(request)
            head = await reader.readuntil(b"\r\n\r\n")
            length = 0
            for line in head.split(b"\r\n"):
                if line[:15].lower() == b"content-length:":
                    length = int(line[15:])
            body = await reader.readexactly(length)
            if first:
                if not head.startswith(b"HTTP/1.1 200") or b'"result"' not in body:
                    raise RuntimeError(f"unexpected answer: {head[:40]!r} {body[:200]!r}")
                first = False
            counts[0] += 1
    finally:
        writer.close()


def _generate(url: str, body: bytes, seconds: float, connections: int,
              out: mp.Queue) -> None:
    """Runs in its own process: requests/s and this process's CPU use."""
    host, port = split_host_port(urlsplit(url).netloc)
    request = (f"POST / HTTP/1.1\r\nHost: {host}\r\nContent-Type: application/json\r\n"
               f"Content-Length: {len(body)}\r\n\r\n").encode() + body

    async def go() -> int:
        counts = [0]
        deadline = time.perf_counter() + seconds
        await asyncio.gather(*(_connection(host, port, request, deadline, counts)
                               for _ in range(connections)))
        return counts[0]

    cpu0 = time.process_time()
    t0 = time.perf_counter()
    n = asyncio.run(go())
    wall = time.perf_counter() - t0
    out.put((n / wall, (time.process_time() - cpu0) / wall))


def load(url: str, method: str, params: dict[str, Any], seconds: float,
         connections: int, node_pid: int | None) -> tuple[float, float, float | None]:
    """(requests/s, generator CPU share, node CPU share)."""
    body = json.dumps({"jsonrpc": "2.0", "id": 1, "method": method,
                       "params": params}).encode()
    out: mp.Queue = mp.get_context("spawn").Queue()
    proc = mp.get_context("spawn").Process(target=_generate,
                                           args=(url, body, seconds, connections, out))
    node_cpu0 = _cpu_seconds(node_pid)
    t0 = time.perf_counter()
    proc.start()
    rate, gen_cpu = out.get(timeout=seconds + 60)
    proc.join()
    wall = time.perf_counter() - t0
    node_cpu = None
    if node_pid is not None:
        node_cpu = (_cpu_seconds(node_pid) - node_cpu0) / wall  # type: ignore[operator]
    return rate, gen_cpu, node_cpu


def _cpu_seconds(pid: int | None) -> float | None:
    if pid is None:
        return None
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _bare_server(port: int, ready: Any) -> None:
    from aiohttp import web

    answer = json.dumps({"jsonrpc": "2.0", "id": 1, "result": {"height": 1}})

    async def handle(request: web.Request) -> web.Response:
        await request.read()
        return web.Response(text=answer, content_type="application/json")

    app = web.Application()
    app.router.add_post("/", handle)
    ready.set()
    web.run_app(app, host="127.0.0.1", port=port, print=None, access_log=None)


# ---------------------------------------------------------------- the runs


async def wait_ready(clients: list[RPCClient], height: int = 1) -> None:
    async with asyncio.timeout(90):
        while True:
            try:
                if min([(await c.status())["height"] for c in clients]) >= height:
                    return
            except (NodeUnreachable, RPCFailed, OSError):
                pass
            await asyncio.sleep(0.2)


def http_runs(args: argparse.Namespace, workdir: Path) -> None:
    ctx = mp.get_context("spawn")
    port = localnet.free_base_port(1)
    ready = ctx.Event()
    bare = ctx.Process(target=_bare_server, args=(port, ready), daemon=True)
    bare.start()
    ready.wait(30)
    try:
        url = f"http://127.0.0.1:{port}/"
        for _ in range(100):  # until it listens
            try:
                rate, gen, srv = load(url, "status", {}, 1.0, 4, bare.pid)
                break
            except (ConnectionError, OSError):
                time.sleep(0.1)
        rate, gen, srv = load(url, "status", {}, args.seconds, args.connections, bare.pid)
        print(f"  bare aiohttp server, constant answer: {rate:,.0f} requests/s "
              f"(server CPU {srv:.0%}, generator CPU {gen:.0%}): this machine's ceiling "
              "for any aiohttp JSON endpoint on one core")
    finally:
        bare.terminate()
        bare.join()

    senders = [PrivateKey.from_seed_text(f"bench-rpc-{i}") for i in range(100)]
    infos = localnet.init(workdir / "one", 1, localnet.free_base_port(2),
                          consensus=ConsensusSection(),
                          extra_balances={k.address: 10**24 for k in senders})
    info = infos[0]
    proc = localnet.start_node(info.home, info.home / "node.log")
    try:
        asyncio.run(_http_node_runs(args, info.rpc, proc.pid, senders))
    finally:
        localnet.stop_processes({0: proc})


async def _http_node_runs(args: argparse.Namespace, url: str, pid: int,
                          senders: list[PrivateKey]) -> None:
    async with RPCClient(url) as client:
        await wait_ready([client])
        chain_id = (await client.status())["chain_id"]
    for method, params in (("status", {}),
                           ("account", {"address": address_to_text(senders[0].address)})):
        rate, gen, node = await asyncio.to_thread(load, url, method, params, args.seconds,
                                                  args.connections, pid)
        print(f"  {method}: {rate:,.0f} requests/s over {args.connections} keep-alive "
              f"connections (node CPU {node:.0%} of one core, generator CPU {gen:.0%}); "
              "target >= 3,000")

    txs = [transfer(k, chain_id, n, bytes(20), 1) for n in range(10) for k in senders]
    verify_1000 = 1000 / verify_rate(0.5)
    async with RPCClient(url, timeout=120) as client:
        times = []
        for round_ in range(args.rounds):
            batch = [transfer(k, chain_id, 10 * round_ + n, bytes(20), 1)
                     for n in range(10) for k in senders] if round_ else txs
            # Wait for the previous round to commit, so the pool has room and nonces fit.
            t0 = time.perf_counter()
            answers = await client.broadcast_txs(batch)
            times.append(time.perf_counter() - t0)
            refused = [a for a in answers if a.get("error")]
            if refused:
                print(f"  round {round_}: {len(refused)} refused, e.g. {refused[0]}")
            async with asyncio.timeout(60):
                while (await client.mempool_status())["count"]:
                    await asyncio.sleep(0.05)
    best = min(times)
    print(f"  broadcast_txs of 1,000 transfers: {best * 1000:.0f} ms (median "
          f"{statistics.median(times) * 1000:.0f} ms of {len(times)}), of which verifying "
          f"1,000 signatures takes {verify_1000 * 1000:.0f} ms on this machine: "
          f"{(best - verify_1000) * 1000:.0f} ms beyond the signatures (target < 150)")


# ---------------------------------------------------------------- WebSocket subscribers


async def _subscriber(url: str, received: list[int], stop: asyncio.Event,
                      kinds: list[dict[str, Any]]) -> None:
    async with aiohttp.ClientSession() as session, \
            session.ws_connect(url.rstrip("/") + "/websocket") as ws:
        for i, params in enumerate(kinds):
            await ws.send_json({"jsonrpc": "2.0", "id": i, "method": "subscribe",
                                "params": params})
        while not stop.is_set():
            try:
                message = await asyncio.wait_for(ws.receive(), 0.5)
            except TimeoutError:
                continue
            if message.type != aiohttp.WSMsgType.TEXT:
                raise RuntimeError(f"subscriber dropped: {message.type} {message.extra}")
            received[0] += 1


async def _steady_load(clients: list[RPCClient], senders: list[PrivateKey], chain_id: str,
                       rate: int, seconds: float, start_nonce: int) -> int:
    """Submit ``rate`` transfers/s for ``seconds`` in broadcast_txs batches of 1/10 s."""
    per_tick = rate // 10
    nonce = start_nonce
    sent = 0
    t0 = time.perf_counter()
    tick = 0
    i = 0
    while time.perf_counter() - t0 < seconds:
        batch = []
        for _ in range(per_tick):
            key = senders[i % len(senders)]
            batch.append(transfer(key, chain_id, nonce, bytes(20), 1))
            i += 1
            if i % len(senders) == 0:
                nonce += 1
        await clients[tick % len(clients)].broadcast_txs(batch)
        sent += len(batch)
        tick += 1
        delay = t0 + tick / 10 - time.perf_counter()
        if delay > 0:
            await asyncio.sleep(delay)
    return nonce


async def _committed_rate(client: RPCClient, seconds: float) -> float:
    h0 = (await client.status())["height"]
    t0 = time.perf_counter()
    await asyncio.sleep(seconds)
    h1 = (await client.status())["height"]
    t1 = time.perf_counter()
    txs = 0
    for h in range(h0 + 1, h1 + 1):
        txs += (await client.header(h))["tx_count"]
    return txs / (t1 - t0)


def ws_run(args: argparse.Namespace, workdir: Path) -> None:
    senders = [PrivateKey.from_seed_text(f"bench-ws-{i}") for i in range(400)]
    infos = localnet.init(workdir / "four", 4, localnet.free_base_port(8),
                          consensus=ConsensusSection(),
                          extra_balances={k.address: 10**24 for k in senders})
    procs = {i.index: localnet.start_node(i.home, i.home / "node.log") for i in infos}
    try:
        asyncio.run(_ws(args, [i.rpc for i in infos], senders))
    finally:
        localnet.stop_processes(procs)


async def _ws(args: argparse.Namespace, urls: list[str], senders: list[PrivateKey]) -> None:
    clients = [RPCClient(u, timeout=120) for u in urls]
    try:
        await wait_ready(clients, 2)
        chain_id = (await clients[0].status())["chain_id"]
        window = args.seconds * 3
        nonce = 0
        results = {}
        for label, subscribers in (("without subscribers", 0),
                                   (f"with {args.subscribers} subscribers", args.subscribers),
                                   ("without subscribers again", 0)):
            stop = asyncio.Event()
            received = [0]
            subs = [asyncio.create_task(_subscriber(
                urls[i % len(urls)], received, stop,
                [{"kind": "blocks"},
                 {"kind": "txs", "account": address_to_text(senders[i % len(senders)].address)},
                 {"kind": "events", "contract": "escrow", "event": "OrderPlaced"}]))
                for i in range(subscribers)]
            load = asyncio.create_task(_steady_load(clients, senders, chain_id, args.rate,
                                                    window + 4, nonce))
            await asyncio.sleep(2)  # the load reaches its steady state
            rate = await _committed_rate(clients[0], window)
            nonce = await load
            stop.set()
            for task in subs:
                await task  # raises if a subscriber was dropped
            async with asyncio.timeout(120):
                while any([(await c.mempool_status())["count"] for c in clients]):
                    await asyncio.sleep(0.1)
            results[label] = rate
            print(f"  {label}: {rate:,.0f} committed tx/s at an offered {args.rate:,}/s"
                  + (f"; subscribers received {received[0]:,} notifications"
                     if subscribers else ""), flush=True)
        base = (results["without subscribers"] + results["without subscribers again"]) / 2
        loaded = results[f"with {args.subscribers} subscribers"]
        print(f"  change with subscribers: {(loaded - base) / base:+.1%} (target within 5%)")
    finally:
        for c in clients:
            await c.close()


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seconds", type=float, default=5.0, help="each HTTP load run")
    ap.add_argument("--connections", type=int, default=64)
    ap.add_argument("--rounds", type=int, default=5, help="broadcast_txs rounds")
    ap.add_argument("--ws", action="store_true", help="also run the WebSocket bench")
    ap.add_argument("--subscribers", type=int, default=200)
    ap.add_argument("--rate", type=int, default=1000, help="offered tx/s in the WS bench")
    args = ap.parse_args(argv)
    rate = verify_rate()
    print(f"ed25519 verification on this machine: {rate:,.0f}/s per core; "
          f"{os.cpu_count()} cores")
    workdir = Path(tempfile.mkdtemp(prefix="agora-bench-rpc-"))
    try:
        print("HTTP keep-alive, one node:", flush=True)
        http_runs(args, workdir)
        if args.ws:
            print(f"WebSocket: {args.subscribers} subscribers on a 4-validator localnet "
                  f"under {args.rate:,} tx/s offered:", flush=True)
            ws_run(args, workdir)
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
