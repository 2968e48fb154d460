"""Benchmark: a 4-validator localnet on this machine (`agora bench`).

1. Finality: ``--finality-txs`` single transfers on an idle chain, one at a time with
   a random pause between them (so they land anywhere in the block cycle), each timed
   from submit to ``broadcast_tx_commit`` returning: p50 and p99.
2. Throughput: ``--txs`` transfers from ``--senders`` funded accounts, signed before
   the clock starts and sent round-robin to all nodes with ``broadcast_tx_sync``;
   committed transfers/s from the first submit to the last commit, and the
   submit-to-commit latency (p50, p99) read from the block that holds each.
3. This machine's ed25519 verification rate, which bounds throughput (each node
   verifies every transaction once).

``--profile`` runs the nodes under cProfile and prints the profile of the busiest.

    python -m bench.localnet            # or: agora bench
"""

from __future__ import annotations

import argparse
import asyncio
import os
import pstats
import random
import statistics
import sys
import tempfile
import time
from pathlib import Path

import aiohttp
import nacl.signing

from chain.keys import PrivateKey
from node import localnet
from node.config import ConsensusSection
from node.rpc.client import NodeUnreachable, RPCClient, RPCFailed, transfer


def verify_rate(seconds: float = 1.0) -> float:
    key = nacl.signing.SigningKey.generate()
    message = b"x" * 150
    signature = key.sign(message).signature
    verify = key.verify_key.verify
    n = 0
    start = time.perf_counter()
    while time.perf_counter() - start < seconds:
        for _ in range(200):
            verify(message, signature)
        n += 200
    return n / (time.perf_counter() - start)


def pct(values: list[float], q: float) -> float:
    values = sorted(values)
    return values[min(len(values) - 1, int(q * len(values)))]


async def finality(clients: list[RPCClient], key: PrivateKey, to: bytes, chain_id: str,
                   n: int, rng: random.Random) -> list[float]:
    nonce = (await clients[0].account(key.address))["nonce"]
    latencies = []
    for i in range(n):
        await asyncio.sleep(rng.uniform(0, 0.4))  # land anywhere in the block cycle
        tx = transfer(key, chain_id, nonce + i, to, 1)
        start = time.perf_counter()
        await clients[i % len(clients)].broadcast_tx_commit(tx)
        latencies.append(time.perf_counter() - start)
    return latencies


async def throughput(clients: list[RPCClient], senders: list[PrivateKey], chain_id: str,
                     total: int, concurrency: int) -> tuple[float, list[float], int]:
    per_sender = total // len(senders)
    txs = [transfer(k, chain_id, n, bytes(20), 1) for n in range(per_sender) for k in senders]
    print(f"  signed {len(txs):,} transfers from {len(senders):,} senders", flush=True)
    start_height = (await clients[0].status())["height"]
    sent_at: dict[str, float] = {}
    queue: asyncio.Queue = asyncio.Queue()
    for tx in txs:
        queue.put_nowait(tx)
    rejected = 0

    async def worker(w: int) -> None:
        nonlocal rejected
        client = clients[w % len(clients)]
        while not queue.empty():
            tx = queue.get_nowait()
            sent_at[tx.hash.hex()] = time.perf_counter()
            try:
                await client.broadcast_tx_sync(tx)
            except RPCFailed:  # a refusal under load (a full pool): counted, not fatal
                rejected += 1

    t0 = time.perf_counter()
    await asyncio.gather(*(worker(w) for w in range(concurrency)))
    print(f"  submitted in {time.perf_counter() - t0:.2f} s "
          f"({len(txs) / (time.perf_counter() - t0):,.0f}/s through RPC)", flush=True)
    # Follow the chain until every accepted transaction is in a block.
    committed_at: dict[str, float] = {}
    height = start_height
    want = len(txs) - rejected
    async with asyncio.timeout(300):
        while len(committed_at) < want:
            status = await clients[0].status()
            while height < status["height"]:
                height += 1
                block = await clients[0].block(height)
                now = time.perf_counter()
                for tx in block["txs"]:
                    committed_at[tx["hash"]] = now
            await asyncio.sleep(0.02)
    elapsed = max(committed_at.values()) - t0
    latencies = [committed_at[h] - sent_at[h] for h in committed_at if h in sent_at]
    return len(committed_at) / elapsed, latencies, rejected


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--validators", type=int, default=4)
    ap.add_argument("--txs", type=int, default=5_000, help="transfers for the throughput run")
    ap.add_argument("--senders", type=int, default=200)
    ap.add_argument("--concurrency", type=int, default=32, help="RPC requests in flight")
    ap.add_argument("--finality-txs", type=int, default=100)
    ap.add_argument("--profile", action="store_true",
                    help="run the nodes under cProfile and print the busiest node's profile")
    ap.add_argument("--keep", action="store_true", help="keep the localnet directory")
    args = ap.parse_args(argv)
    return asyncio.run(run(args))


async def run(args: argparse.Namespace) -> int:
    rng = random.Random(7)
    rate = verify_rate()
    print(f"ed25519 verification on this machine: {rate:,.0f}/s per core")
    workdir = Path(tempfile.mkdtemp(prefix="agora-bench-"))
    senders = [PrivateKey.from_seed_text(f"bench-sender-{i}") for i in range(args.senders)]
    base_port = localnet.free_base_port(2 * args.validators)
    infos = localnet.init(workdir, args.validators, base_port,
                          consensus=ConsensusSection(),
                          extra_balances={k.address: 10**24 for k in senders})
    procs = {}
    env_profile = {}
    try:
        for info in infos:
            if args.profile:
                env_profile[info.index] = info.home / "profile.out"
                os.environ["AGORA_PROFILE"] = str(env_profile[info.index])
            procs[info.index] = localnet.start_node(info.home, info.home / "node.log")
        os.environ.pop("AGORA_PROFILE", None)
        async with aiohttp.ClientSession() as session:
            clients = [RPCClient(i.rpc, session) for i in infos]
            async with asyncio.timeout(60):
                while True:
                    try:
                        if min([(await c.status())["height"] for c in clients]) >= 2:
                            break
                    except (NodeUnreachable, aiohttp.ClientError, OSError):
                        pass
                    await asyncio.sleep(0.2)
            chain_id = (await clients[0].status())["chain_id"]
            buyer = localnet.account_key(workdir, "buyer")
            merchant = localnet.account_key(workdir, "merchant")
            print(f"finality: {args.finality_txs} single transfers on an idle "
                  f"{args.validators}-validator localnet ...", flush=True)
            lat = await finality(clients, buyer, merchant.address, chain_id,
                                 args.finality_txs, rng)
            print(f"  finality p50 {statistics.median(lat) * 1000:.0f} ms, "
                  f"p99 {pct(lat, 0.99) * 1000:.0f} ms, max {max(lat) * 1000:.0f} ms")
            print(f"throughput: {args.txs:,} transfers, {args.concurrency} requests in "
                  "flight ...", flush=True)
            tps, lat, rejected = await throughput(clients, senders, chain_id, args.txs,
                                                  args.concurrency)
            print(f"  committed {tps:,.0f} transfers/s; submit-to-commit p50 "
                  f"{statistics.median(lat) * 1000:.0f} ms, p99 {pct(lat, 0.99) * 1000:.0f} ms; "
                  f"{rejected} refused at submit")
            print(f"  = {tps / rate:.2f} of one core's ed25519 verification rate")
    finally:
        localnet.stop_processes(procs)
    if args.profile:
        busiest = max(env_profile.values(),
                      key=lambda p: pstats.Stats(str(p)).get_stats_profile().total_tt
                      if p.exists() else 0)
        print(f"profile of the busiest node ({busiest.parent.name}), by own time:")
        pstats.Stats(str(busiest)).sort_stats("tottime").print_stats(25)
    if args.keep:
        print(f"kept {workdir}")
    else:
        import shutil

        shutil.rmtree(workdir, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())

