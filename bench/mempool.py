"""Benchmark: mempool admission, signature checks included, then reap and update.

``--txs`` signed transfers from ``--senders`` funded accounts (a few nonces each) are
generated once. Each run starts cold, as a node sees gossip: a fresh executor from
genesis on LevelDB (so its verified-signature cache is empty) and fresh transactions
decoded from their bytes (so no hash, sender address or signature result is cached on
them). Decoding is timed apart: it happens at the p2p or RPC edge, before the mempool.
Then, on the full pool: reaping a block's worth for a proposal, and committing that
block and updating the pool with it (the re-check of every sender).

Reported: admissions per second (median of ``--runs``), next to this machine's bare
ed25519 verification rate, which bounds it.

    python -m bench.mempool
"""

from __future__ import annotations

import argparse
import cProfile
import pstats
import shutil
import statistics
import sys
import tempfile
import time

from bench.chain import GENESIS_VALIDATORS, BenchChain
from chain.genesis import Genesis
from chain.hashing import Domain, sha256
from chain.keys import PrivateKey, signing_bytes, verify
from chain.tx import Transaction, Transfer
from node.genesis import genesis_document
from node.mempool import Mempool
from storage.kv import LevelDBKV
from vm.errors import InvalidTx
from vm.gas import TX_BYTE_GAS, TX_GAS

CHAIN = "agora-bench-mempool"


def verify_rate(txs: list[Transaction]) -> float:
    """Bare ed25519 verifications per second over ``txs`` (messages prepared first)."""
    work = [(tx.sender, signing_bytes(Domain.TX, CHAIN, tx.signing_body()), tx.signature)
            for tx in txs]
    t = time.perf_counter()
    for public_key, message, signature in work:
        assert verify(public_key, message, signature)
    return len(work) / (time.perf_counter() - t)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--txs", type=int, default=20_000, help="transactions to admit per run")
    ap.add_argument("--senders", type=int, default=2_000)
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--block", type=int, default=5_000, help="transactions per reaped block")
    ap.add_argument("--profile", action="store_true",
                    help="then profile the admissions of one more run")
    args = ap.parse_args(argv)
    senders = [PrivateKey.from_seed_text(f"bench-mempool-{i}") for i in range(args.senders)]
    genesis = Genesis.from_dict(genesis_document(
        CHAIN, GENESIS_VALIDATORS,
        balances={k.address: 10**24 for k in senders}))
    print(f"signing {args.txs:,} transfers from {args.senders:,} senders ...", flush=True)
    gas = TX_GAS + TX_BYTE_GAS * 200
    raw = []
    for i in range(args.txs):  # nonce 0 of every sender, then nonce 1, ...
        nonce, k = divmod(i, args.senders)
        to = sha256(b"recipient" + i.to_bytes(8, "big"))[:20]
        raw.append(Transaction.create(senders[k], CHAIN, nonce, Transfer(to, 1_000),
                                      gas_limit=gas, gas_price=1 + i % 7).encode())
    per_sender = -(-args.txs // args.senders)
    bare = verify_rate([Transaction.decode(r) for r in raw[:5_000]])
    print(f"ed25519 verification alone: {bare:,.0f}/s", flush=True)

    def one_run(profile: cProfile.Profile | None = None) -> tuple[float, float, float, float]:
        """Admit every transaction into a cold pool, then reap, commit and update:
        (admissions/s, decode us/tx, reap ms, update ms)."""
        path = tempfile.mkdtemp(prefix="agora-bench-mempool-")
        kv = LevelDBKV(path)
        try:
            chain = BenchChain(kv, genesis)
            pool = Mempool(chain.ex, invalid_tx=InvalidTx, max_txs=args.txs,
                           max_per_sender=per_sender)
            t = time.perf_counter()
            txs = [Transaction.decode(r) for r in raw]
            decode = (time.perf_counter() - t) / len(txs) * 1e6
            if profile is not None:
                profile.enable()
            t = time.perf_counter()
            for tx in txs:
                pool.add(tx)
            rate = len(txs) / (time.perf_counter() - t)
            if profile is not None:
                profile.disable()
            assert len(pool) == len(txs)
            t = time.perf_counter()
            block = pool.reap(max_bytes=genesis.consensus.max_block_bytes,
                              max_gas=genesis.consensus.max_block_gas, max_txs=args.block)
            reap = (time.perf_counter() - t) * 1000
            assert len(block) == min(args.block, len(txs))
            _, receipts = chain.run(block)
            assert all(r.status == 0 for r in receipts)
            t = time.perf_counter()
            dropped = pool.update(block)
            update = (time.perf_counter() - t) * 1000
            assert not dropped and len(pool) == len(txs) - len(block)
            return rate, decode, reap, update
        finally:
            kv.close()
            shutil.rmtree(path, ignore_errors=True)

    results = [one_run() for _ in range(args.runs)]
    rates, decode_us, reap_ms, update_ms = ([r[i] for r in results] for i in range(4))
    rate = statistics.median(rates)
    print(f"admission: {rate:,.0f} tx/s ({1e6 / rate:.1f} us/tx; median of {args.runs} runs, "
          f"best {max(rates):,.0f}, worst {min(rates):,.0f}; {args.txs:,} transfers, "
          f"signatures verified, cold caches)")
    print(f"decode at the edge (not in the above): {statistics.median(decode_us):.1f} us/tx")
    print(f"reap: {statistics.median(reap_ms):.1f} ms for {min(args.block, args.txs):,} of "
          f"{args.txs:,} txs "
          f"from {args.senders:,} senders")
    print(f"update after committing them: {statistics.median(update_ms):.1f} ms "
          f"(re-checks {args.senders:,} senders)")
    if args.profile:
        profile = cProfile.Profile()
        one_run(profile)
        print("profile of the admissions of one more run, by own time:")
        pstats.Stats(profile).sort_stats("tottime").print_stats(15)
    return 0


if __name__ == "__main__":
    sys.exit(main())
