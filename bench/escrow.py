"""Benchmark: the commerce contracts through execute_block + commit.

Each round is five blocks of ``--orders`` calls from distinct merchants and buyers, on
the genesis commerce contracts (catalog, escrow, token, reviews) over LevelDB:

    create_listing (with commissions)  ->  place_order  ->  ship  ->
    confirm (waiving the return: the order completes, the merchant is paid, referral
    and cashback are minted as tokens against its proceeds, the bounty is held)  ->
    post_review (the bounty paid)

then a group deal: ``--group`` buyers join one group, the last join filling it. Each
block is built the way a proposer builds it, then executed again and committed the way
a validator does, and only that is timed (signatures are verified before the clock
starts, as the mempool does). Reports calls/s over the five-call mix, per call its
rate, time and gas, and the gas of a group join and of the join that fills the group.
``--profile`` adds where a block's time goes.

    python -m bench.escrow [--orders 150] [--rounds 3] [--group 500] [--profile]
"""

from __future__ import annotations

import argparse
import cProfile
import hashlib
import pstats
import shutil
import statistics
import sys
import tempfile

from bench.chain import GENESIS_VALIDATORS, BenchChain
from chain.genesis import Genesis
from chain.keys import PrivateKey
from chain.system import CATALOG_ADDRESS, ESCROW_ADDRESS, REVIEWS_ADDRESS
from chain.tx import Call, Transaction
from node.genesis import genesis_document
from storage.kv import LevelDBKV
from vm.contracts import decode_result, encode_call

CHAIN = "agora-bench-escrow"
DAY = 86_400_000
NOBODY = bytes(20)
PRICE = 10**18
MIX = ("create_listing", "place_order", "ship", "confirm", "post_review")
CONTRACT = {"create_listing": ("catalog", CATALOG_ADDRESS),
            "set_commissions": ("catalog", CATALOG_ADDRESS),
            "set_group_deal": ("catalog", CATALOG_ADDRESS),
            "register_arbiter": ("catalog", CATALOG_ADDRESS),
            "post_review": ("reviews", REVIEWS_ADDRESS)}
GAS_LIMIT = 300_000


def new_id(contract: str, method: str, data: bytes) -> int:
    """The id a create_listing or place_order call returned."""
    value = decode_result(contract, method, data)
    assert type(value) is int, value
    return value


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--orders", type=int, default=150, help="calls per block (orders/round)")
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--group", type=int, default=500,
                    help="members of the group deal (at least 3; 0: none)")
    ap.add_argument("--profile", action="store_true",
                    help="profile the blocks of the last round: where the time goes")
    args = ap.parse_args(argv)
    n = args.orders
    if n * GAS_LIMIT > 100_000_000:
        ap.error(f"--orders {n} x {GAS_LIMIT:,} gas exceeds the block gas limit")
    merchants = [PrivateKey.from_seed_text(f"bench-merchant-{i}") for i in range(n)]
    buyers = [PrivateKey.from_seed_text(f"bench-buyer-{i}") for i in range(n)]
    referrer = PrivateKey.from_seed_text("bench-referrer")
    arbiter = PrivateKey.from_seed_text("bench-arbiter")
    members = [PrivateKey.from_seed_text(f"bench-member-{i}") for i in range(args.group)]
    funded = [*merchants, *buyers, arbiter, *members]
    genesis = Genesis.from_dict(genesis_document(
        CHAIN, GENESIS_VALIDATORS,
        balances={k.address: 10**24 for k in funded}, commerce=True))
    path = tempfile.mkdtemp(prefix="agora-bench-escrow-")
    kv = LevelDBKV(path)
    nonces: dict[bytes, int] = {}

    def call(key: PrivateKey, method: str, *call_args: object, value: int = 0) -> Transaction:
        name, address = CONTRACT.get(method, ("escrow", ESCROW_ADDRESS))
        nonce = nonces.get(key.address, 0)
        nonces[key.address] = nonce + 1
        action = Call(address, method, encode_call(name, method, *call_args), value)
        return Transaction.create(key, CHAIN, nonce, action, gas_limit=GAS_LIMIT, gas_price=1)

    try:
        chain = BenchChain(kv, genesis)
        chain.run([call(arbiter, "register_arbiter", "bench arbiter", 200, 3 * DAY)])
        times: dict[str, list[float]] = {m: [] for m in MIX}
        gas: dict[str, list[int]] = {m: [] for m in MIX}
        profile = cProfile.Profile() if args.profile else None
        print(f"{args.rounds} rounds of {n} orders (a block of {n} calls per step) ...",
              flush=True)
        for r in range(args.rounds):
            last = r == args.rounds - 1
            description = hashlib.sha256(f"round {r}".encode()).digest()

            def step(method: str, k: int, x: int, r: int = r,
                     description: bytes = description) -> Transaction:
                """Call k of a block of ``method``; x: its listing or order id."""
                if method == "create_listing":
                    return call(merchants[k], method, f"item {r}-{k}", description, PRICE, 0,
                                10, 3 * DAY, 14 * DAY, 7 * DAY, 2 * DAY, arbiter.address,
                                NOBODY, NOBODY, False, 5_000)
                if method == "place_order":  # version 2: after set_commissions
                    return call(buyers[k], method, x, 2, 1, arbiter.address,
                                referrer.address, value=PRICE)
                if method == "ship":
                    return call(merchants[k], method, x, f"TRK-{x}")
                if method == "confirm":
                    return call(buyers[k], method, x, True)
                return call(buyers[k], method, x, 5, "as described, quick delivery")

            ids = [0] * n
            for method in MIX:
                txs = [step(method, k, ids[k]) for k in range(n)]
                if profile is not None and last:
                    profile.enable()
                elapsed, receipts = chain.run(txs)
                if profile is not None and last:
                    profile.disable()
                bad = [rc for rc in receipts if rc.status != 0]
                assert not bad, f"{method}: {bad[0].reason}"
                if method == "create_listing":
                    ids = [new_id("catalog", method, rc.return_data) for rc in receipts]
                    # commissions (a referral, a cashback and a review bounty to pay; the
                    # listing's version becomes 2): a block of its own, outside the mix
                    _, done = chain.run([call(merchants[k], "set_commissions", ids[k], 200, 100,
                                              100) for k in range(n)])
                    assert all(rc.status == 0 for rc in done), done[0].reason
                elif method == "place_order":
                    ids = [new_id("escrow", method, rc.return_data) for rc in receipts]
                times[method].append(elapsed)
                gas[method] += [rc.gas_used for rc in receipts]
        calls = len(MIX) * n * args.rounds
        total = sum(sum(v) for v in times.values())
        print(f"commerce mix: {calls / total:,.0f} calls/s through execute_block + commit "
              f"({calls:,} calls in {total:.2f} s; {n} calls/block; one core; signatures "
              "excluded)")
        for method in MIX:
            per = statistics.median(times[method]) / n
            print(f"  {method:15} {1 / per:>8,.0f} calls/s  {per * 1e6:>7,.0f} us/call  "
                  f"gas {statistics.median(gas[method]):>9,.0f}/call")
        group_joins(chain, call, merchants[0], members, arbiter)
        if profile is not None:
            print("\nwhere the time goes (the last round's five blocks, by own time):")
            pstats.Stats(profile).sort_stats("tottime").print_stats(16)
    finally:
        kv.close()
        shutil.rmtree(path, ignore_errors=True)
    return 0


def group_joins(chain: BenchChain, call, merchant: PrivateKey, members: list[PrivateKey],
                arbiter: PrivateKey) -> None:
    """A group deal of len(members): the first starts it, the rest join in blocks; the
    join that fills it does the same work as any other (no loop over the members)."""
    size = len(members)
    if size < 3:
        return
    description = hashlib.sha256(b"group").digest()
    _, (listed,) = chain.run([call(merchant, "create_listing", "group item", description,
                                   PRICE, 0, size, 3 * DAY, 14 * DAY, 7 * DAY, 2 * DAY,
                                   arbiter.address, NOBODY, NOBODY, False, 5_000)])
    lid = decode_result("catalog", "create_listing", listed.return_data)
    chain.run([call(merchant, "set_group_deal", lid, PRICE // 2, size, 2 * DAY)])
    version = 2
    _, (started,) = chain.run([call(members[0], "start_group", lid, version, 1,
                                    arbiter.address, NOBODY, value=PRICE // 2)])
    assert started.status == 0, started.reason
    joins: list[int] = []
    elapsed_total = 0.0
    rest = members[1:]
    for i in range(0, len(rest), 150):
        elapsed, receipts = chain.run([call(k, "join_group", 1, version, 1, arbiter.address,
                                            NOBODY, value=PRICE // 2)
                                       for k in rest[i:i + 150]])
        assert all(rc.status == 0 for rc in receipts), receipts[0].reason
        joins += [rc.gas_used for rc in receipts]
        elapsed_total += elapsed
    print(f"group deal of {size:,}: {len(joins) / elapsed_total:,.0f} joins/s; gas per join "
          f"{statistics.median(joins[:-1]):,.0f} (median), the join that fills it "
          f"{joins[-1]:,} (block gas limit 100,000,000)")


if __name__ == "__main__":
    sys.exit(main())
