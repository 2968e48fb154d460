"""Benchmark: the executor and the VM.

1. Native transfers through ``execute_block`` + ``commit`` (state root update and the
   one synced batch included), in blocks of ``--block`` transactions from distinct
   senders to distinct recipients, on LevelDB. Signatures are excluded: they are
   verified before the clock starts, as the mempool does (the executor remembers
   verified transaction hashes).
2. VM dispatch: a counting loop of simple instructions (LOAD, PUSHI, ADD, STORE, LT,
   JUMPI, JUMPDEST), instructions per second.
3. With ``--profile``, where a block's time goes (cProfile, top functions).

    python -m bench.vm
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
from chain.hashing import sha256
from chain.keys import PrivateKey
from chain.tx import Transaction, Transfer
from node.genesis import genesis_document
from storage.kv import LevelDBKV, MemoryKV
from storage.state import StateTree
from vm.asm import assemble
from vm.gas import TX_BYTE_GAS, TX_GAS
from vm.interpreter import BlockEnv, Machine, Status
from vm.program import load_program
from vm.world import WorldState

CHAIN = "agora-bench"
LOOP = """
    PUSHI 0
    STORE 0
loop:
    LOAD 0
    PUSHI 1
    ADD
    STORE 0
    LOAD 0
    PUSHI {n}
    LT
    JUMPI loop
    STOP
"""


def transfers(args: argparse.Namespace) -> None:
    n_senders = args.block
    senders = [PrivateKey.from_seed_text(f"bench-sender-{i}") for i in range(n_senders)]
    genesis = Genesis.from_dict(genesis_document(
        CHAIN, GENESIS_VALIDATORS,
        balances={k.address: 10**24 for k in senders}))
    path = tempfile.mkdtemp(prefix="agora-bench-vm-")
    kv = LevelDBKV(path)
    try:
        chain = BenchChain(kv, genesis)
        print(f"signing {args.blocks * args.block:,} transfers ...", flush=True)
        gas = TX_GAS + TX_BYTE_GAS * 200
        blocks_txs = []
        for b in range(args.blocks):
            txs = []
            for i, k in enumerate(senders):
                to = sha256(b"recipient" + (b * n_senders + i).to_bytes(8, "big"))[:20]
                txs.append(Transaction.create(k, CHAIN, b, Transfer(to, 1_000 + i),
                                              gas_limit=gas, gas_price=1))
            blocks_txs.append(txs)
        times = []
        profile = cProfile.Profile() if args.profile else None
        for b, txs in enumerate(blocks_txs):
            last = b == len(blocks_txs) - 1
            if profile is not None and last:
                profile.enable()
            elapsed, receipts = chain.run(txs)
            if profile is not None and last:
                profile.disable()
            assert all(r.status == 0 for r in receipts)
            times.append(elapsed)
        per_block = statistics.median(times)
        print(f"transfers: {args.block / per_block:,.0f} tx/s through execute_block + commit "
              f"(median block {per_block * 1000:.0f} ms, best {min(times) * 1000:.0f} ms, "
              f"worst {max(times) * 1000:.0f} ms; {args.block:,} txs/block, "
              f"{len(times)} blocks, synced batch, signatures excluded)")
        if profile is not None:
            print("profile of the last block (proposal, execute_block and commit), by own "
                  "time:")
            pstats.Stats(profile).sort_stats("tottime").print_stats(18)
    finally:
        kv.close()
        shutil.rmtree(path, ignore_errors=True)


def dispatch(args: argparse.Namespace) -> None:
    n = args.loop
    program = load_program(assemble(LOOP.format(n=n)))
    instructions = 2 + 8 * n + 1  # setup, 8 per iteration, STOP
    world = WorldState(StateTree(MemoryKV()), lambda a, c: None)
    machine = Machine(world, BlockEnv(1, 0), bytes(20))
    rates = []
    for _ in range(3):
        t = time.perf_counter()
        out = machine.call(bytes(20), bytes(20), b"run", [], 0, 10**9, program=program)
        rates.append(instructions / (time.perf_counter() - t))
        assert out.status == Status.OK, out
    print(f"VM dispatch: {max(rates):,.0f} instructions/s (best of 3 runs of a {n:,}-iteration "
          f"loop of LOAD/PUSHI/ADD/STORE/LT/JUMPI/JUMPDEST)")


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--block", type=int, default=1_000, help="transactions per block")
    ap.add_argument("--blocks", type=int, default=10)
    ap.add_argument("--loop", type=int, default=250_000, help="iterations of the VM loop")
    ap.add_argument("--profile", action="store_true", help="profile the last block")
    args = ap.parse_args(argv)
    dispatch(args)
    transfers(args)
    return 0


if __name__ == "__main__":
    sys.exit(main())
