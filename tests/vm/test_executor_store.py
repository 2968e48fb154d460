"""The executor and its database: a store belongs to one genesis."""

from __future__ import annotations

from pathlib import Path

import pytest
from vm_helpers import ALICE, BOB, TestChain, make_genesis

from storage.kv import LevelDBKV
from vm.errors import WrongStore
from vm.executor import Executor


def test_a_store_refuses_another_genesis(tmp_path: Path) -> None:
    """Opening a data directory with the wrong genesis file must stop the node with a
    clear message, not run a second chain on top of the first one's state."""
    kv = LevelDBKV(tmp_path / "db")
    chain = TestChain(kv)
    chain.run([chain.transfer(ALICE, BOB.address, 7)])
    root = chain.executor.state_root()
    other = make_genesis({ALICE.address: 1})
    with pytest.raises(WrongStore, match="genesis"):
        Executor(kv, other)
    again = Executor(kv, chain.genesis)  # the right genesis still opens it
    assert (again.height, again.state_root()) == (1, root)
    kv.close()


def test_a_block_over_the_genesis_byte_limit_is_invalid() -> None:
    """max_block_bytes is a consensus rule: a proposer cannot make bigger blocks."""
    from vm.errors import InvalidBlock

    chain = TestChain(genesis=make_genesis(max_block_bytes=2_000))
    txs = [chain.transfer(ALICE, BOB.address, 1) for _ in range(20)]  # ~3 KB of txs
    block = chain.build(txs)
    assert len(block.encode()) > 2_000
    with pytest.raises(InvalidBlock, match="limit is 2000"):
        chain.executor.execute_block(block)
    assert chain.executor.height == 0
    small = chain.build(txs[:5])
    chain.commit(small)
    assert chain.executor.height == 1
