"""Benchmark: the canonical codec on a transfer transaction.

Reports per second, on one core: encoding a fresh transfer (no cached bytes), strict
decoding (canonical re-encode check included), hashing, and decode + full stateless
validation (which includes one ed25519 signature verification — the per-transaction
cost every validator pays once).

    python -m bench.codec [--seconds 1.0]
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Callable

from chain.hashing import Domain
from chain.keys import PrivateKey, signing_bytes, verify
from chain.tx import Transaction, Transfer

CHAIN_ID = "agora-bench"


def rate(fn: Callable[[], object], seconds: float) -> float:
    """Calls of ``fn`` per second, measured for about ``seconds``."""
    n = 0
    batch = 256
    start = time.perf_counter()
    while True:
        for _ in range(batch):
            fn()
        n += batch
        elapsed = time.perf_counter() - start
        if elapsed >= seconds:
            return n / elapsed


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seconds", type=float, default=1.0, help="time per measurement")
    args = ap.parse_args(argv)

    key = PrivateKey.from_seed_text("bench-sender")
    to = PrivateKey.from_seed_text("bench-receiver").address
    tx = Transaction.create(key, CHAIN_ID, 7, Transfer(to, 10**18), gas_limit=21_000,
                            gas_price=1, memo="")
    data = tx.encode()
    fields = [getattr(tx, name) for name, _ in Transaction.SCHEMA]

    def encode() -> bytes:
        return Transaction(*fields).encode()

    def decode() -> Transaction:
        return Transaction.decode(data)

    def decode_hash() -> bytes:
        return Transaction.decode(data).hash

    def decode_validate() -> Transaction:
        return Transaction.decode_and_validate(data, CHAIN_ID)

    message = signing_bytes(Domain.TX, CHAIN_ID, tx.signing_body())

    def ed25519_verify() -> bool:
        return verify(tx.sender, message, tx.signature)

    print(f"transfer tx: {len(data)} bytes")
    for name, fn in [
        ("encode", encode),
        ("decode (strict)", decode),
        ("decode + hash", decode_hash),
        ("ed25519 verify", ed25519_verify),
        ("decode + validate", decode_validate),
    ]:
        r = rate(fn, args.seconds)
        print(f"{name:>18}: {r:>10,.0f} /s  ({1e6 / r:6.2f} us)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
