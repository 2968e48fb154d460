"""Benchmark: escrow calls through execute_block + commit.

Each round is four blocks of ``--orders`` calls from distinct buyers and merchants:
place_order (native coin), ship, confirm (waiving the return window, so the order
completes and mints the buyer's reward), post_review (minting the review reward), on
the genesis commerce contracts, on LevelDB. Signatures are excluded (verified before
the clock starts, as the mempool does). Reports calls/s over the mix and gas per call.

    python -m bench.escrow
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import sys
import tempfile

from bench.chain import BenchChain, validator_entries
from chain.address import address_to_text
from chain.genesis import Genesis
from chain.keys import PrivateKey
from chain.system import ESCROW_ADDRESS, REVIEWS_ADDRESS
from chain.tx import Call, Transaction
from storage.kv import LevelDBKV
from vm.compiler.abi import encode_value
from vm.contracts import genesis_contracts
from vm.executor import encode_args

CHAIN = "agora-bench-escrow"
HOUR = 3_600_000
NOBODY = bytes(20)


def u(n: int) -> bytes:
    return encode_value("uint", n)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--orders", type=int, default=250, help="orders per round (calls/block)")
    ap.add_argument("--rounds", type=int, default=3)
    args = ap.parse_args(argv)
    buyers = [PrivateKey.from_seed_text(f"bench-buyer-{i}") for i in range(args.orders)]
    merchants = [PrivateKey.from_seed_text(f"bench-merchant-{i}") for i in range(args.orders)]
    genesis = Genesis.from_dict({
        "chain_id": CHAIN,
        "genesis_time": "2026-01-01T00:00:00Z",
        "validators": validator_entries(),
        "balances": [{"address": address_to_text(k.address), "amount": str(10**24)}
                     for k in buyers + merchants],
        "contracts": genesis_contracts(),
    })
    path = tempfile.mkdtemp(prefix="agora-bench-escrow-")
    kv = LevelDBKV(path)
    nonces: dict[bytes, int] = {}

    def call(key: PrivateKey, method: str, call_args: list[bytes], value: int = 0,
             contract: bytes = ESCROW_ADDRESS) -> Transaction:
        n = nonces.get(key.address, 0)
        nonces[key.address] = n + 1
        return Transaction.create(key, CHAIN, n, Call(contract, method, encode_args(call_args),
                                                      value), gas_limit=350_000, gas_price=1)

    try:
        chain = BenchChain(kv, genesis)
        times: dict[str, list[float]] = {"place_order": [], "ship": [], "confirm": [],
                                         "post_review": []}
        gas: dict[str, list[int]] = {k: [] for k in times}
        print(f"{args.rounds} rounds of {args.orders} orders ...", flush=True)
        for _ in range(args.rounds):
            places = [call(b, "place_order", [m.address, NOBODY, u(0), NOBODY, u(HOUR),
                                              u(HOUR), u(HOUR), u(HOUR)], value=10**18)
                      for b, m in zip(buyers, merchants, strict=True)]
            elapsed, receipts = chain.run(places)
            assert all(r.status == 0 for r in receipts), receipts[0].reason
            ids = [int.from_bytes(r.return_data, "big") for r in receipts]
            times["place_order"].append(elapsed)
            gas["place_order"] += [r.gas_used for r in receipts]
            for method, sender_keys, extra in (
                ("ship", merchants, []),
                ("confirm", buyers, [encode_value("bool", True)]),
                ("post_review", buyers, [u(5), b"as described, quick delivery"]),
            ):
                contract = REVIEWS_ADDRESS if method == "post_review" else ESCROW_ADDRESS
                txs = [call(k, method, [u(i), *extra], contract=contract)
                       for k, i in zip(sender_keys, ids, strict=True)]
                elapsed, receipts = chain.run(txs)
                assert all(r.status == 0 for r in receipts), receipts[0].reason
                times[method].append(elapsed)
                gas[method] += [r.gas_used for r in receipts]
        total_calls = 4 * args.orders * args.rounds
        total_time = sum(sum(v) for v in times.values())
        print(f"escrow mix: {total_calls / total_time:,.0f} calls/s through execute_block + "
              f"commit ({total_calls:,} calls in {total_time:.2f} s; {args.orders} calls/block; "
              f"signatures excluded)")
        for method in times:
            per = statistics.median(times[method]) / args.orders
            print(f"  {method:12} {1 / per:>8,.0f} calls/s  {per * 1e6:>7,.0f} us/call  "
                  f"gas {statistics.median(gas[method]):>9,.0f}/call")
    finally:
        kv.close()
        shutil.rmtree(path, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
