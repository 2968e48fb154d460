"""Stored records: one state key per record (vm/world.py), reached a field at a time by
SLOADR / SSTORER.

The contract language reads and writes a stored record field by field, and pays per
field as before; what changes is that all of a record's fields live in one state key,
so a block rewrites one key of the state tree per record it touches instead of one per
field. These tests hold the layout to what the world's docstring promises: canonical
bytes, empty fields and empty records absent, undone exactly by a revert, bounded, and
kept apart from plain storage keys.
"""

from __future__ import annotations

import msgpack
import pytest
from test_opcodes import CONTRACT, GAS, assert_error, assert_ok, new_world, run

from chain.address import address_to_text
from storage.errors import Corruption
from storage.kv import MemoryKV
from storage.state import StateTree
from vm.asm import assemble
from vm.opcodes import (
    GAS_RECORD_BYTE,
    GAS_RECORD_WORD,
    GAS_STORE_BYTE,
    MAX_RECORD_BYTES,
    MAX_RECORD_FIELDS,
    OPS,
    Op,
)
from vm.world import MAX_STORAGE_KEY, RECORD, STORAGE, WorldState

KEY = STORAGE + CONTRACT + RECORD + b"rec"


def test_a_field_written_is_read_back_and_costs_a_plain_store_plus_the_records_size() -> None:
    world = new_world()
    out = run('PUSHB "v1"\nPUSHB "rec"\nPUSHB "f"\nSSTORER\nPUSHB "rec"\nPUSHB "f"\nSLOADR\n'
              'RETURN', world=world)
    assert_ok(out, b"v1")
    pushes = 5 * OPS[Op.PUSHB].gas
    stored = OPS[Op.SSTORER].gas + GAS_STORE_BYTE * len(b"rec" + b"f" + b"v1")  # empty before
    read = OPS[Op.SLOADR].gas + GAS_RECORD_WORD * 1  # the record holds 3 bytes: one word
    assert out.gas_left == 1_000_000 - pushes - stored - read
    assert world.sload_field(CONTRACT, b"rec", b"f") == b"v1"
    assert world.sload_field(CONTRACT, b"rec", b"g") == b""  # an unset field reads empty


def test_a_transaction_pays_for_a_records_size_the_first_time_it_reads_and_writes_it() -> None:
    world = new_world()
    assert_ok(run(f'PUSHB 0x{"ab" * 95}\nPUSHB "rec"\nPUSHB "f"\nSSTORER', world=world))
    world.forget_journal()  # the next transaction
    size = len(b"f") + 95  # what the record holds
    write = 'PUSHB "w"\nPUSHB "rec"\nPUSHB "g"\nSSTORER\n'
    read = 'PUSHB "rec"\nPUSHB "f"\nSLOADR\nPOP\n'
    base = GAS - 3 * OPS[Op.PUSHB].gas
    store = OPS[Op.SSTORER].gas + GAS_STORE_BYTE * len(b"rec" + b"g" + b"w")
    first = run(write, world=world)
    assert first.gas_left == base - store - GAS_RECORD_BYTE * size
    again = run(write.replace('"w"', '"x"') + write, world=world)  # same transaction
    assert again.gas_left == 2 * base - GAS - 2 * store
    world.forget_journal()
    loads = run(read + read, world=world)
    words = (size + 1 + len(b"g") + 31) // 32
    assert loads.gas_left == GAS - 2 * (2 * OPS[Op.PUSHB].gas + OPS[Op.SLOADR].gas
                                        + OPS[Op.POP].gas) - GAS_RECORD_WORD * words


def test_a_record_is_one_state_key_with_its_fields_sorted_whatever_the_order_written() -> None:
    a, b = new_world(), new_world()
    for world, order in ((a, [b"b", b"a", b"c"]), (b, [b"c", b"a", b"b"])):
        for field in order:
            world.sstore_field(CONTRACT, b"rec", field, b"value of " + field)
    assert a.changes() == b.changes() == {KEY: msgpack.packb(
        [b"a", b"value of a", b"b", b"value of b", b"c", b"value of c"], use_bin_type=True)}


def test_empty_fields_are_left_out_and_an_empty_record_is_absent() -> None:
    tree = StateTree(MemoryKV())
    world = WorldState(tree, lambda _a, code: None)
    world.sstore_field(CONTRACT, b"rec", b"a", b"1")
    world.sstore_field(CONTRACT, b"rec", b"b", b"2")
    world.sstore_field(CONTRACT, b"rec", b"a", b"")
    assert world.changes() == {KEY: msgpack.packb([b"b", b"2"], use_bin_type=True)}
    tree.commit(world.changes(), 0)
    later = WorldState(tree, lambda _a, code: None)
    assert later.sload_field(CONTRACT, b"rec", b"b") == b"2"
    later.sstore_field(CONTRACT, b"rec", b"b", b"")
    assert later.changes() == {KEY: None}  # the key is deleted
    again = WorldState(tree, lambda _a, code: None)
    again.sstore_field(CONTRACT, b"rec", b"b", b"3")
    again.sstore_field(CONTRACT, b"rec", b"b", b"2")
    assert again.changes() == {}  # changed and changed back: nothing for the tree to do


def test_a_revert_restores_every_field_and_the_records_size() -> None:
    world = new_world()
    world.sstore_field(CONTRACT, b"rec", b"a", b"kept")
    checkpoint = world.checkpoint()
    world.sstore_field(CONTRACT, b"rec", b"a", b"changed")
    world.sstore_field(CONTRACT, b"rec", b"b", b"added")
    world.sstore_field(CONTRACT, b"other", b"x", b"y")
    world.revert(checkpoint)
    assert world.sload_field(CONTRACT, b"rec", b"a") == b"kept"
    assert world.sload_field(CONTRACT, b"rec", b"b") == b""
    assert world.changes() == {KEY: msgpack.packb([b"a", b"kept"], use_bin_type=True)}
    world.sstore_field(CONTRACT, b"rec", b"b", b"added")
    world.revert(checkpoint)  # the size came back with the fields
    assert world._records[KEY][1] == len(b"a" + b"kept")


def test_a_failed_call_undoes_its_record_writes_and_the_callers_stand() -> None:
    world = new_world()
    out = run('PUSHB "mine"\nPUSHB "rec"\nPUSHB "f"\nSSTORER\n'
              'PUSHB "theirs"\nPUSHB "rec"\nPUSHB "g"\nSSTORER\nPUSHB "no"\nREVERT', world=world)
    assert out.reason == "no"
    assert world.changes() == {}
    assert_ok(run('PUSHB "mine"\nPUSHB "rec"\nPUSHB "f"\nSSTORER', world=world))
    assert world.sload_field(CONTRACT, b"rec", b"f") == b"mine"


def _put(field: str, size: int) -> str:
    value = f"0x{'ab' * size}" if size else '""'
    return f'PUSHB {value}\nPUSHB "rec"\nPUSHB "{field}"\nSSTORER\n'


def test_a_record_past_its_bounds_when_the_call_ends_fails_and_changes_nothing() -> None:
    world = new_world()
    half = MAX_RECORD_BYTES // 2 - 1  # with its one-byte field name
    assert_ok(run(_put("a", half), world=world))
    assert_error(run(_put("b", half + 1), world=world), "at most")
    assert world.sload_field(CONTRACT, b"rec", b"b") == b""
    assert world.sload_field(CONTRACT, b"rec", b"a") == b"\xab" * half
    assert_ok(run(_put("b", half), world=world))  # exactly at the bound
    fields = "".join(_put(f"f{i:02}", 1) for i in range(MAX_RECORD_FIELDS + 1))
    assert_error(run(fields, world=new_world()), f"at most {MAX_RECORD_FIELDS} fields")


def test_a_record_may_pass_through_a_larger_size_while_its_fields_are_assigned() -> None:
    """The bound is checked when the call ends, so assigning a whole record does not
    depend on the order its fields are written in."""
    world = new_world()
    big = MAX_RECORD_BYTES - 10
    assert_ok(run(_put("a", big), world=world))
    assert_ok(run(_put("b", big) + _put("a", 0), world=world))  # 2x the bound, in between
    assert world.sload_field(CONTRACT, b"rec", b"b") == b"\xab" * big


def test_a_whole_record_assignment_that_fits_succeeds_whatever_its_field_order() -> None:
    from vm.testing import Env

    doc = Env().loads("""
class Doc(Record):
    a: bytes
    b: bytes

doc: Doc

@public
def put(x: bytes, y: bytes):
    self.doc = Doc(x, y)

@view
def sizes() -> uint:
    return len(self.doc.a) * 10000 + len(self.doc.b)
""")
    big = b"\x01" * 3_000
    doc.put(big, b"")
    doc.put(b"", big)  # written b first: 6,000 bytes for a moment
    assert doc.sizes() == 3_000


def test_plain_storage_keys_may_not_start_with_the_records_zero_byte() -> None:
    assert_error(run('PUSHB 0x00aa\nPUSHB "v"\nSSTORE'), "hold records")
    assert_error(run("PUSHB 0x00aa\nSLOAD"), "hold records")
    assert_ok(run('PUSHB 0x01aa\nPUSHB "v"\nSSTORE'))


@pytest.mark.parametrize("src,fragment", [
    ('PUSHI 1\nPUSHB "f"\nSLOADR', "must be bytes"),
    ('PUSHB "rec"\nPUSHI 1\nSLOADR', "must be bytes"),
    ('PUSHI 1\nPUSHB "rec"\nPUSHB "f"\nSSTORER', "must be bytes"),
    ('PUSHB "v"\nPUSHB "rec"\nPUSHI 1\nSSTORER', "must be bytes"),
    ('PUSHB "rec"\nPUSHB "f"\nSSTORER', "stack underflow at SSTORER"),
    ("PUSHB 0x" + "ab" * MAX_STORAGE_KEY + '\nPUSHB "f"\nPUSHB "v"\nSWAP 2\nSWAP 1\nSSTORER',
     "storage key"),
])
def test_bad_record_operands_are_errors(src: str, fragment: str) -> None:
    assert_error(run(src), fragment)


def test_a_record_key_past_the_limit_reads_empty() -> None:
    assert_ok(run("PUSHB 0x" + "ab" * MAX_STORAGE_KEY + '\nPUSHB "f"\nSLOADR\nRETURN'), b"")


def test_a_read_only_call_may_not_write_a_record() -> None:
    from test_opcodes import CALLER, GAS, ORIGIN, BlockEnv, Machine, assemble, load_program

    machine = Machine(new_world(), BlockEnv(1, 1), ORIGIN)
    code = assemble('PUSHB "v"\nPUSHB "rec"\nPUSHB "f"\nSSTORER')
    out = machine.call(CALLER, CONTRACT, b"run", [], 0, GAS, program=load_program(code),
                       static=True)
    assert_error(out, "read-only")


@pytest.mark.parametrize("value", [
    "ff", "93010203", msgpack.packb([b"b", b"1", b"a", b"2"]).hex(),
    msgpack.packb([b"a", b""]).hex(), msgpack.packb([b"a", b"1", b"a", b"2"]).hex(),
    msgpack.packb([b"a", b"\x01" * (MAX_RECORD_BYTES + 1)]).hex(),
])
def test_a_genesis_record_that_is_not_a_valid_record_is_refused(value: str) -> None:
    from vm_helpers import make_genesis

    from chain.errors import InvalidGenesis
    from vm.executor import Executor

    genesis = make_genesis(contracts=[{
        "address": address_to_text(bytes([0xAB]) * 20), "code": assemble("STOP").hex(), "balance": "0",
        "storage": {"00" + b"rec".hex(): value}}])
    with pytest.raises(InvalidGenesis, match="storage key 00"):
        Executor(MemoryKV(), genesis)


def test_a_valid_genesis_record_is_read_by_its_contract() -> None:
    from vm_helpers import ALICE, TestChain, make_genesis

    code = assemble('PUSHB "rec"\nPUSHB "f"\nSLOADR\nRETURN')
    address = bytes([0xAB]) * 20
    genesis = make_genesis(contracts=[{
        "address": address_to_text(address), "code": code.hex(), "balance": "0",
        "storage": {"00" + b"rec".hex(): msgpack.packb([b"f", b"hello"]).hex()}}])
    chain = TestChain(genesis=genesis)
    receipt = chain.run_one(chain.call(ALICE, address, "go"))
    assert (receipt.status, receipt.return_data) == (0, b"hello")


def test_a_damaged_stored_record_stops_the_node_instead_of_reading_as_anything() -> None:
    tree = StateTree(MemoryKV())
    tree.commit({KEY: b"\x93\x01\x02\x03"}, 0)  # msgpack, but not [field, value, ...]
    world = WorldState(tree, lambda _a, code: None)
    with pytest.raises(Corruption):
        world.sload_field(CONTRACT, b"rec", b"f")
