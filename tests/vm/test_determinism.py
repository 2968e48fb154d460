"""Every validator must compute the same state root and receipts from the same block.

The same fixed blocks are run in fresh interpreters with different PYTHONHASHSEED
values (so set and dict-of-str iteration orders differ between them), and once in this
process: the state roots, receipt encodings and block hashes must be byte-identical.
A difference means some part of the state transition depends on hashing order, object
identity or other process-local state, and the validators would fork.
"""

from __future__ import annotations

import contextlib
import io
import os
import subprocess
import sys
from pathlib import Path

from chain.block import ReceiptStatus

HELPERS = Path(__file__).resolve().parent
REPO = HELPERS.parents[1]

# Run with `python -c` from the repository root, and with exec() here. It prints one
# line per block ("block", height, state root, block hash) followed by one line per
# receipt ("receipt", status, encoding), all hex; set DETERMINISM_KV to a directory
# to run on LevelDB instead of memory.
SCRIPT = """
import os
import sys

sys.path.insert(0, HELPERS)
from vm_helpers import ALICE, BOB, CAROL, TestChain, key

from storage.kv import LevelDBKV, MemoryKV

REGISTRY = '''
    METHOD
    PUSHB "__init__"
    EQ
    JUMPI init
    METHOD
    PUSHB "put"
    EQ
    JUMPI put
    METHOD
    PUSHB "boom"
    EQ
    JUMPI boom
    PUSHB "unknown method"
    REVERT
init:                       ; a few entries, and an event, from the constructor
    PUSHB "owner"
    CALLER
    SSTORE
    PUSHB "a"
    PUSHB "1"
    SSTORE
    PUSHB "b"
    PUSHB "2"
    SSTORE
    PUSHB "Created"
    CALLER
    CALLVALUE
    EMIT 2
    STOP
put:                        ; put(k, v): stores v under sha256(k) and under the caller
    PUSHI 0
    ARG
    SHA256
    PUSHI 1
    ARG
    SSTORE
    CALLER
    PUSHI 1
    ARG
    SSTORE
    PUSHB "Put"
    CALLER
    PUSHI 0
    ARG
    HEIGHT
    EMIT 3
    PUSHI 0
    ARG
    SHA256
    RETURN
boom:                       ; writes, then divides by zero
    PUSHB "a"
    PUSHB "lost"
    SSTORE
    PUSHI 1
    PUSHI 0
    DIV
    RETURN
'''

DAVE = key("dave")
path = os.environ.get("DETERMINISM_KV")
chain = TestChain(LevelDBKV(path) if path else MemoryKV())
missing = bytes(range(20))
first = [
    chain.transfer(ALICE, BOB.address, 10**18),
    chain.transfer(BOB, DAVE.address, 5 * 10**17),
]
deploy, registry = chain.deploy(ALICE, REGISTRY, value=1234)  # Alice's nonce 1
blocks = [
    [
        *first,
        deploy,
        chain.call(BOB, registry, "put", [b"apple", b"red"]),
        chain.call(CAROL, registry, "put", [b"banana", b"yellow"], value=7),
        chain.call(CAROL, registry, "boom", gas_price=3),
        chain.call(BOB, missing, "put", [b"x", b"y"]),
        chain.transfer(CAROL, ALICE.address, 1, gas_price=2),
    ],
    [
        chain.call(DAVE, registry, "put", [b"cherry", b"dark red"]),
        chain.call(ALICE, registry, "nothing"),
        chain.transfer(DAVE, CAROL.address, 12345),
    ],
]
for txs in blocks:
    block = chain.build(txs)
    receipts = chain.commit(block)
    root = chain.executor.state_root()
    print("block", block.height, root.hex(), block.hash.hex())
    for r in receipts:
        print("receipt", r.status, r.encode().hex())
chain.kv.close()
"""


def run_fresh(hash_seed: str, kv_path: Path | None = None) -> str:
    """The script's output from a new interpreter with this PYTHONHASHSEED."""
    env = {**os.environ, "PYTHONHASHSEED": hash_seed}
    env.pop("DETERMINISM_KV", None)
    if kv_path is not None:
        env["DETERMINISM_KV"] = str(kv_path)
    done = subprocess.run(
        [sys.executable, "-c", f"HELPERS = {str(HELPERS)!r}\n{SCRIPT}"],
        cwd=REPO, env=env, capture_output=True, text=True, timeout=60, check=False,
    )
    assert done.returncode == 0, done.stderr
    return done.stdout


def run_here() -> str:
    """The script's output computed in this process."""
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        exec(SCRIPT, {"__name__": "determinism", "HELPERS": str(HELPERS)})
    return out.getvalue()


def parse(output: str) -> tuple[list[list[str]], list[list[str]]]:
    """(block lines, receipt lines) of an output, each split into fields."""
    lines = [line.split() for line in output.splitlines()]
    return [x for x in lines if x[0] == "block"], [x for x in lines if x[0] == "receipt"]


def test_the_script_exercises_what_it_claims() -> None:
    """Guard for the comparisons below: two committed blocks with distinct roots and
    one receipt per transaction, successes and failures of each kind among them."""
    blocks, receipts = parse(run_here())
    assert [b[1] for b in blocks] == ["1", "2"]
    assert blocks[0][2] != blocks[1][2]
    assert all(len(bytes.fromhex(b[2])) == 32 for b in blocks)
    assert len(receipts) == 8 + 3
    statuses = [int(r[1]) for r in receipts]
    assert statuses == [
        ReceiptStatus.OK, ReceiptStatus.OK, ReceiptStatus.OK, ReceiptStatus.OK,
        ReceiptStatus.OK, ReceiptStatus.REVERTED, ReceiptStatus.ERROR, ReceiptStatus.OK,
        ReceiptStatus.OK, ReceiptStatus.REVERTED, ReceiptStatus.OK,
    ]


def test_two_processes_with_different_hash_seeds_agree_with_this_one() -> None:
    """Byte-identical roots, block hashes and receipts from two fresh interpreters
    with different hash seeds and from the running test process."""
    first = run_fresh("0")
    second = run_fresh("4242")
    here = run_here()
    assert parse(first)[0], "the script printed no blocks"
    assert first == second
    assert first == here


def test_the_storage_backend_does_not_change_the_result(tmp_path: Path) -> None:
    """The same blocks over LevelDB (in a third seed's process) give the same bytes as
    over memory: the root depends on the state's contents alone."""
    assert run_fresh("1", tmp_path / "db") == run_here()
