"""Benchmark: the authenticated state tree on LevelDB.

Fills a state of ``--keys`` keys, then commits ``--blocks`` blocks of ``--block``
random updates to existing keys (each block one synced atomic batch, as a node commits
a block) and reports updates/s — by the wall clock, and per CPU-second of the
committing thread (the "one core" figure: it leaves out LevelDB's background
compaction thread and time stolen by other tenants of a shared machine) — then proof
size and verification time at that size.

    python -m bench.state_tree                  # 1,000,000 keys, blocks of 10,000
    python -m bench.state_tree --keys 100000    # quicker
"""

from __future__ import annotations

import argparse
import random
import resource
import shutil
import statistics
import sys
import tempfile
import time

from chain.keys import PrivateKey, verify
from storage.kv import LevelDBKV
from storage.proof import verify_state_proof
from storage.state import StateTree


def ed25519_rate(seconds: float = 1.0) -> float:
    """ed25519 signature verifications per second on one core, right now."""
    key = PrivateKey.from_seed_text("yardstick")
    message = b"agora yardstick message of a transaction's size".ljust(150, b".")
    signature = key.sign_raw(message)
    n = 0
    start = time.perf_counter()
    while time.perf_counter() - start < seconds:
        for _ in range(200):
            verify(key.public_key, message, signature)
        n += 200
    return n / (time.perf_counter() - start)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--keys", type=int, default=1_000_000)
    ap.add_argument("--block", type=int, default=10_000, help="updates per block")
    ap.add_argument("--blocks", type=int, default=10, help="measured blocks")
    ap.add_argument("--value-size", type=int, default=32)
    ap.add_argument("--cache-nodes", type=int, default=400_000)
    ap.add_argument("--proofs", type=int, default=2_000)
    ap.add_argument("--seed", type=int, default=7)
    ap.add_argument("--dir", help="database directory (default: a temporary one)")
    ap.add_argument("--write-buffer-mb", type=int, default=None, help="LevelDB memtable size")
    ap.add_argument("--max-file-mb", type=int, default=None, help="LevelDB table file size")
    ap.add_argument("--compression", choices=["none", "snappy"], default=None)
    args = ap.parse_args(argv)

    rng = random.Random(args.seed)
    path = args.dir or tempfile.mkdtemp(prefix="agora-bench-state-")
    options = {}
    if args.write_buffer_mb is not None:
        options["write_buffer_mb"] = args.write_buffer_mb
    if args.max_file_mb is not None:
        options["max_file_mb"] = args.max_file_mb
    if args.compression is not None:
        options["compression"] = None if args.compression == "none" else args.compression
    kv = LevelDBKV(path, **options)
    tree = StateTree(kv, history=10, cache_nodes=args.cache_nodes)
    keys = [b"k" + i.to_bytes(8, "big") for i in range(args.keys)]
    try:
        print(f"filling {args.keys:,} keys in blocks of {args.block:,} ({path})", flush=True)
        t0 = time.perf_counter()
        for start in range(0, args.keys, args.block):
            chunk = keys[start : start + args.block]
            tree.commit({k: rng.randbytes(args.value_size) for k in chunk}, sync=False)
            done = start + len(chunk)
            if done % (args.keys // 10 or 1) < args.block:
                rate = done / (time.perf_counter() - t0)
                print(f"  {done:>10,} keys  {rate:>9,.0f} inserts/s", flush=True)
        fill = time.perf_counter() - t0
        print(f"fill: {args.keys / fill:,.0f} inserts/s ({fill:.1f} s)")

        times = []
        cpu_times = []
        for _ in range(args.blocks):
            changes = {k: rng.randbytes(args.value_size)
                       for k in rng.sample(keys, args.block)}
            t = time.perf_counter()
            c = time.thread_time()
            update = tree.prepare(changes)
            with kv.batch(sync=True) as batch:
                tree.write(update, batch)
            tree.committed(update)
            cpu_times.append(time.thread_time() - c)
            times.append(time.perf_counter() - t)
        per_block = statistics.median(times)
        cpu_block = statistics.median(cpu_times)
        print(f"update: {args.block / per_block:,.0f} updates/s wall "
              f"(median block {per_block * 1000:.0f} ms, best {min(times) * 1000:.0f} ms, "
              f"worst {max(times) * 1000:.0f} ms), {args.block / cpu_block:,.0f} updates per "
              f"CPU-second of the committing thread (median {cpu_block * 1000:.0f} ms/block); "
              f"{args.block:,} updates/block, {args.keys:,} keys, synced batch per block")
        # Over the whole run, stalls included: LevelDB stops writes while its background
        # compaction catches up, so a sustained rate above what compaction can absorb
        # shows here, not in the median.
        print(f"sustained: {args.block * len(times) / sum(times):,.0f} updates/s over "
              f"{len(times)} blocks ({sum(times):.1f} s)")

        root = tree.root_hash()
        sample = rng.sample(keys, args.proofs)
        proofs = [(k, *tree.prove(k)) for k in sample]
        absent = [b"absent" + i.to_bytes(8, "big") for i in range(args.proofs)]
        nproofs = [(k, *tree.prove(k)) for k in absent]
        sizes = [len(p.encode()) for _, _, p in proofs]
        nsizes = [len(p.encode()) for _, _, p in nproofs]
        t = time.perf_counter()
        ok = all(verify_state_proof(root, k, v, p) for k, v, p in proofs)
        verify_us = (time.perf_counter() - t) / len(proofs) * 1e6
        ok = ok and all(verify_state_proof(root, k, None, p) for k, _, p in nproofs)
        print(f"proof: membership {statistics.mean(sizes):,.0f} B mean / {max(sizes):,} B max, "
              f"non-membership {statistics.mean(nsizes):,.0f} B mean; "
              f"verify {verify_us:.1f} us/proof; all verified: {ok}")
        # The machine's own speed, measured now: shared machines vary by tens of percent
        # from one hour to the next, so compare runs through this yardstick.
        verifies = ed25519_rate()
        print(f"yardstick: {verifies:,.0f} ed25519 verifications/s on this machine now "
              f"({args.block / per_block / verifies:.2f} state updates per verification)")
        rss_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
        print(f"memory: peak RSS {rss_mb:,.0f} MiB (node cache {tree.cached_nodes:,} of "
              f"{args.cache_nodes:,} nodes; the benchmark's own key list included)")
        return 0 if ok else 1
    finally:
        kv.close()
        if not args.dir:
            shutil.rmtree(path, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
