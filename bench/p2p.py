"""Benchmark: transaction gossip over one encrypted loopback link.

Two peer managers, each in its own process (as two nodes would be), connect over
127.0.0.1 with the full Noise handshake. The sender gossips ``--txs`` distinct signed
transfers the way a node relays what its mempool admitted: ``--chunk`` at a time per
event-loop turn, batched into TxBatch frames by the gossip layer. The receiver counts
the transactions that reach its ``on_txs`` handler (decrypted, decoded, hashed and
checked against the seen-set). Reports txs/s from the first send to the last arrival,
and the frames it took. Mempool admission is not included: see ``bench.mempool``.

    python -m bench.p2p
"""

from __future__ import annotations

import argparse
import asyncio
import multiprocessing as mp
import statistics
import sys
import time

from chain.hashing import sha256
from chain.keys import PrivateKey
from chain.tx import Transaction, Transfer
from p2p.peers import P2PSettings, PeerManager
from p2p.policy import PeerAddress

CHAIN = "agora-bench-p2p"
SENDER = PrivateKey.from_seed_text("bench-p2p-sender")
RECEIVER = PrivateKey.from_seed_text("bench-p2p-receiver")
#: Both ends: any free port, no peer exchange (the two know each other).
SETTINGS = P2PSettings(listen_port=0, pex=False)


def make_txs(n: int) -> list[bytes]:
    keys = [PrivateKey.from_seed_text(f"bench-p2p-account-{i}") for i in range(100)]
    out = []
    for i in range(n):
        key = keys[i % len(keys)]
        tx = Transaction.create(key, CHAIN, i // len(keys), Transfer(bytes(20), 1 + i),
                                gas_limit=21_000, gas_price=1)
        out.append(tx.encode())
    return out


def receiver(port_out: mp.Queue, expected: int, rounds: int, done: mp.Queue) -> None:
    async def run() -> None:
        manager = PeerManager(RECEIVER, CHAIN, SETTINGS)
        state = {"count": 0, "frames": 0, "first": 0.0}
        finished = asyncio.Event()

        def on_txs(peer: bytes, txs: list[tuple[bytes, bytes]]) -> None:
            if state["count"] == 0:
                state["first"] = time.perf_counter()
            state["count"] += len(txs)
            state["frames"] += 1
            if state["count"] >= expected:
                finished.set()

        manager.on_txs = on_txs
        await manager.start()
        port_out.put(manager.listen_port)
        for _ in range(rounds):
            await finished.wait()
            done.put((time.perf_counter(), state["frames"]))
            finished.clear()
            state["count"] = state["frames"] = 0
        await manager.stop()

    asyncio.run(run())


async def send_all(rounds: list[list[tuple[bytes, bytes]]], port: int, chunk: int,
                   done: mp.Queue) -> list[tuple[float, int]]:
    manager = PeerManager(SENDER, CHAIN, SETTINGS)
    await manager.start()
    results = []
    try:
        peer = await manager.dial(PeerAddress(RECEIVER.address, "127.0.0.1", port))
        if peer is None:
            raise SystemExit(f"could not connect: {manager.disconnects[-1][1]}")
        for txs in rounds:  # fresh transactions each round: nothing is deduplicated away
            start = time.perf_counter()
            for i in range(0, len(txs), chunk):
                manager.gossip_txs(txs[i:i + chunk])
                await asyncio.sleep(0)  # one event-loop turn per chunk, as a relay would
            end, frames = await asyncio.get_running_loop().run_in_executor(None, done.get)
            results.append((end - start, frames))
    finally:
        await manager.stop()
    return results


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--txs", type=int, default=100_000, help="distinct transactions per round")
    ap.add_argument("--chunk", type=int, default=1_000,
                    help="transactions handed to gossip per event-loop turn")
    ap.add_argument("--rounds", type=int, default=3)
    args = ap.parse_args(argv)
    print(f"signing {args.txs * args.rounds:,} transfers ...", flush=True)
    raw = make_txs(args.txs * args.rounds)
    size = sum(len(r) for r in raw) / len(raw)
    pairs = [(sha256(r), r) for r in raw]
    rounds = [pairs[i:i + args.txs] for i in range(0, len(pairs), args.txs)]
    ctx = mp.get_context("spawn")
    port_q: mp.Queue = ctx.Queue()
    done_q: mp.Queue = ctx.Queue()
    proc = ctx.Process(target=receiver, args=(port_q, args.txs, args.rounds, done_q))
    proc.start()
    try:
        port = port_q.get(timeout=30)
        results = asyncio.run(send_all(rounds, port, args.chunk, done_q))
    finally:
        proc.join(timeout=30)
        if proc.is_alive():
            proc.kill()
    rates = [args.txs / elapsed for elapsed, _ in results]
    frames = results[-1][1]
    print(f"gossip link: {statistics.median(rates):,.0f} txs/s (median of {len(rates)} rounds "
          f"of {args.txs:,} txs, {size:.0f} bytes each; best {max(rates):,.0f}; "
          f"{args.txs / frames:,.0f} txs per TxBatch frame; rounds took "
          f"{', '.join(f'{e:.3f}' for e, _ in results)} s; sender and receiver in "
          f"separate processes, Noise-encrypted loopback TCP)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
