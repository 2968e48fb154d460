"""The canonical codec: every record round-trips, and decoding is strict.

Strictness is shown three ways: hand-made bytes for each rule (non-minimal ints, wrong
types, floats, maps, ext types, bad UTF-8, sizes ...), an exhaustive sweep of single-byte
mutations over real encodings, and hypothesis-driven mutations of every record type.
The rule for a mutation is: DecodeError, or a value that re-encodes to exactly the
mutated bytes (so its hash differs). Any other exception fails the test.
"""

from __future__ import annotations

import dataclasses

import msgpack
import pytest
from chain_helpers import (
    ALICE,
    BOB,
    CHAIN,
    MAX_AMOUNT,
    RECORD_STRATEGIES,
    check_mutant,
    commit_votes,
    mutations,
    transactions_with,
    validator_keys,
)
from hypothesis import given, settings
from hypothesis import strategies as st

from chain.block import Block, CommitCertificate, Header, Vote
from chain.codec import (
    MAX_DECODE_SIZE,
    BigUInt,
    Bool,
    Bytes,
    ListOf,
    Nested,
    OneOf,
    Optional,
    Record,
    Str,
    UInt,
    pack,
    packb_plain,
    record,
    unpack,
)
from chain.errors import DecodeError, EncodeError, LocalError, RemoteError
from chain.hashing import sha256
from chain.merkle import InclusionProof
from chain.tx import Call, Deploy, Transaction, Transfer
from chain.validators import Validator

# --- a record with one field of every kind, for hand-made encodings ------------------


@record(
    ("n", UInt(64)),
    ("flag", Bool()),
    ("name", Str(8)),
    ("blob", Bytes(max_len=8)),
    ("big", BigUInt(256)),
    ("opt", Optional(UInt(8))),
    ("items", ListOf(UInt(8), 3)),
    ("fixed", Bytes(2)),
)
class Sample(Record):
    n: int
    flag: bool
    name: str
    blob: bytes
    big: int
    opt: int | None
    items: tuple[int, ...]
    fixed: bytes


SAMPLE = Sample(5, True, "ab", b"xy", 7, None, (1, 2), b"\x00\x01")
# The canonical encoding, written out by hand, one segment per field.
HEADER = bytes([0x98])  # fixarray of 8
FIELDS = [
    bytes([0x05]),  # n: positive fixint
    bytes([0xC3]),  # flag: true
    bytes([0xA2]) + b"ab",  # name: fixstr
    bytes([0xC4, 0x02]) + b"xy",  # blob: bin8
    bytes([0xC4, 0x01, 0x07]),  # big: minimal big-endian bytes
    bytes([0xC0]),  # opt: nil
    bytes([0x92, 0x01, 0x02]),  # items: fixarray
    bytes([0xC4, 0x02, 0x00, 0x01]),  # fixed: bin8 of 2
]
CANONICAL = HEADER + b"".join(FIELDS)
FIELD_INDEX = {name: i for i, (name, _) in enumerate(Sample.SCHEMA)}


def with_field(name: str, raw: bytes) -> bytes:
    """The canonical Sample encoding with field ``name`` replaced by ``raw``."""
    fields = list(FIELDS)
    fields[FIELD_INDEX[name]] = raw
    return HEADER + b"".join(fields)


def test_hand_made_encoding_is_the_canonical_one() -> None:
    assert SAMPLE.encode() == CANONICAL
    assert Sample.decode(CANONICAL) == SAMPLE
    assert Sample.decode(with_field("opt", b"\x07")).opt == 7
    assert Sample.decode(with_field("big", b"\xc4\x00")).big == 0
    assert Sample.decode(with_field("big", b"\xc4\x20" + b"\xff" * 32)).big == MAX_AMOUNT


BAD_FIELDS = [
    # Non-minimal integers: 5 fits a positive fixint, so every wider form is refused.
    ("n", b"\xcc\x05", "canonical"),
    ("n", b"\xcd\x00\x05", "canonical"),
    ("n", b"\xce\x00\x00\x00\x05", "canonical"),
    ("n", b"\xcf\x00\x00\x00\x00\x00\x00\x00\x05", "canonical"),
    ("n", b"\xd0\x05", "canonical"),  # signed int8
    # Floats where an int is expected (float32 and float64 of 5.0).
    ("n", b"\xca\x40\xa0\x00\x00", "canonical"),
    ("n", b"\xcb\x40\x14\x00\x00\x00\x00\x00\x00", r"Sample\.n: expected an integer, got float"),
    # Booleans are not integers, and negative integers are not unsigned.
    ("n", b"\xc3", r"Sample\.n: expected an integer, got bool"),
    ("n", b"\xff", r"Sample\.n: integer out of range for u64"),
    ("n", b"\xd0\xdf", r"Sample\.n: integer out of range for u64"),  # -33, int8
    ("n", b"\xd0\xe0", "canonical"),  # -32 fits a negative fixint
    ("n", b"\xd3" + (-(2**63)).to_bytes(8, "big", signed=True), "out of range"),
    ("n", b"\xc0", r"Sample\.n: expected an integer, got NoneType"),
    # Maps and extensions are refused while unpacking (before any dict exists), so
    # the message names the rule rather than the field.
    ("n", b"\x80", "maps are not allowed"),
    ("n", b"\x81\xa1a\x02", "maps are not allowed"),
    ("n", b"\x81\x01\x02", "malformed"),  # an int map key
    # Extension types (an application ext and the msgpack timestamp ext -1).
    ("n", b"\xd4\x01\x00", "extension types are not allowed"),
    # (msgpack decodes the timestamp extension itself: the field kind refuses it.)
    ("n", b"\xd6\xff\x00\x00\x00\x00", r"Sample\.n: expected an integer"),
    # 0/1 are not booleans.
    ("flag", b"\x01", r"Sample\.flag: expected a boolean, got int"),
    ("flag", b"\x00", r"Sample\.flag: expected a boolean, got int"),
    ("flag", b"\xc0", r"Sample\.flag: expected a boolean"),
    # str vs bytes, in both directions.
    ("name", b"\xc4\x02ab", r"Sample\.name: expected text, got bytes"),
    ("blob", b"\xa2xy", r"Sample\.blob: expected at most 8 bytes, got str"),
    ("fixed", b"\xa2\x00\x01", r"Sample\.fixed: expected 2 bytes, got str"),
    # Non-minimal string and bin headers.
    ("name", b"\xd9\x02ab", "canonical"),
    ("name", b"\xda\x00\x02ab", "canonical"),
    ("blob", b"\xc5\x00\x02xy", "canonical"),
    ("blob", b"\xc6\x00\x00\x00\x02xy", "canonical"),
    # Invalid UTF-8 (a lone continuation byte, an overlong NUL, an encoded surrogate).
    ("name", b"\xa2\xff\xfe", "malformed"),
    ("name", b"\xa2\xc0\x80", "malformed"),
    ("name", b"\xa3\xed\xa0\x80", "malformed"),
    # Length limits.
    ("name", b"\xa9abcdefghi", r"Sample\.name: text longer than 8 bytes"),
    ("name", b"\xa9" + "\u00e9".encode() * 4 + b"a", r"Sample\.name: text longer than 8 bytes"),
    ("blob", b"\xc4\x09" + bytes(9), r"Sample\.blob: expected at most 8 bytes, got 9 bytes"),
    ("fixed", b"\xc4\x01\x00", r"Sample\.fixed: expected 2 bytes, got 1 bytes"),
    ("fixed", b"\xc4\x03\x00\x01\x02", r"Sample\.fixed: expected 2 bytes, got 3 bytes"),
    ("items", b"\x94\x01\x02\x03\x04", r"Sample\.items: list longer than 3"),
    ("items", b"\x91\xcc\x05", "canonical"),
    ("items", b"\x91\xcd\x01\x00", r"Sample\.items\[0\]: integer out of range for u8"),
    ("items", b"\x91\xd4\x01\x00", "extension types are not allowed"),
    ("items", b"\xdc\x00\x02\x01\x02", "canonical"),
    ("items", b"\x80", "maps are not allowed"),
    # BigUInt: a leading zero byte, 33 bytes, an int instead of bytes.
    ("big", b"\xc4\x02\x00\x07", r"Sample\.big: non-minimal integer \(leading zero byte\)"),
    ("big", b"\xc4\x01\x00", r"Sample\.big: non-minimal integer"),
    ("big", b"\xc4\x21\x01" + bytes(32), r"Sample\.big: u256 longer than 32 bytes"),
    ("big", b"\x07", r"Sample\.big: expected bytes for a u256, got int"),
    ("big", b"\xa1\x07", r"Sample\.big: expected bytes for a u256, got str"),
    # Optional does not make the inner kind lax.
    ("opt", b"\xc2", r"Sample\.opt: expected an integer, got bool"),
    ("opt", b"\xcd\x01\x00", r"Sample\.opt: integer out of range for u8"),
]


@pytest.mark.parametrize(("field", "raw", "match"), BAD_FIELDS)
def test_bad_field_encodings_are_refused(field: str, raw: bytes, match: str) -> None:
    data = with_field(field, raw)
    with pytest.raises(DecodeError, match=match):
        Sample.decode(data)


BAD_WHOLE = [
    (b"", "empty input"),
    (CANONICAL + b"\x00", "trailing bytes"),
    (CANONICAL + b"\xc0", "trailing bytes"),
    (CANONICAL + CANONICAL, "trailing bytes"),
    (b"\x80", "maps are not allowed"),
    (b"\x88" + b"".join(bytes([0xA1, 0x61 + i]) + f for i, f in enumerate(FIELDS)),
     "maps are not allowed"),
    (b"\x97" + b"".join(FIELDS[:7]), r"Sample: expected 8 fields, got 7"),
    (b"\x99" + b"".join(FIELDS) + b"\xc0", r"Sample: expected 8 fields, got 9"),
    (b"\x90", r"expected 8 fields, got 0"),
    (b"\xdc\x00\x08" + b"".join(FIELDS), "canonical"),
    (b"\xdd\x00\x00\x00\x08" + b"".join(FIELDS), "canonical"),
    (b"\x05", "expected a list"),
    (b"\xc1", "malformed"),  # the one byte msgpack never uses
    (b"\xd4\x01\x00", "extension types are not allowed"),
]


@pytest.mark.parametrize(("data", "match"), BAD_WHOLE)
def test_bad_whole_encodings_are_refused(data: bytes, match: str) -> None:
    with pytest.raises(DecodeError, match=match):
        Sample.decode(data)


def test_every_truncation_is_refused() -> None:
    for n in range(len(CANONICAL)):
        with pytest.raises(DecodeError):
            Sample.decode(CANONICAL[:n])


@pytest.mark.parametrize("data", ["\x98", None, 5, [1, 2], CANONICAL.hex()])
def test_non_bytes_input_is_refused(data: object) -> None:
    with pytest.raises(DecodeError, match="expected bytes"):
        Sample.decode(data)  # type: ignore[arg-type]


def test_bytearray_and_memoryview_are_read_as_bytes() -> None:
    assert Sample.decode(bytearray(CANONICAL)) == SAMPLE
    assert Sample.decode(memoryview(CANONICAL)) == SAMPLE
    assert Sample.decode(bytearray(CANONICAL)).encode() == CANONICAL


def test_max_size_argument_is_enforced_before_parsing() -> None:
    assert Sample.decode(CANONICAL, max_size=len(CANONICAL)) == SAMPLE
    with pytest.raises(DecodeError, match=f"{len(CANONICAL)} bytes exceeds the limit of"):
        Sample.decode(CANONICAL, max_size=len(CANONICAL) - 1)


def test_type_max_size_is_enforced_before_parsing() -> None:
    # Junk of exactly the limit is parsed (and refused as junk) ...
    with pytest.raises(DecodeError) as at_limit:
        Header.decode(b"\x00" * Header.MAX_SIZE)
    assert "exceeds the limit" not in str(at_limit.value)
    # ... one byte more is refused for its size alone.
    with pytest.raises(DecodeError, match=r"1025 bytes exceeds the limit of 1024"):
        Header.decode(b"\x00" * (Header.MAX_SIZE + 1))
    with pytest.raises(DecodeError, match="exceeds the limit of 256"):
        Vote.decode(b"\x91" * 257)
    big = Transaction.MAX_SIZE + 1
    with pytest.raises(DecodeError, match=f"{big} bytes exceeds the limit of {big - 1}"):
        Transaction.decode(bytes(big))


def test_unknown_oneof_tag_is_refused() -> None:
    tx = Transaction.create(ALICE, CHAIN, 0, Transfer(BOB.address, 1), gas_limit=1, gas_price=1)
    raw = tx.to_raw()
    assert raw[5][0] == Transfer.TAG
    for action, match in [
        ([3, BOB.address, b"\x01"], r"Transaction\.action: unknown tag 3"),
        ([255, BOB.address, b"\x01"], "unknown tag 255"),
        ([True, BOB.address, b"\x01"], r"expected \[tag, fields\.\.\.\]"),
        ([], r"expected \[tag, fields\.\.\.\]"),
        (b"\x00", r"expected \[tag, fields\.\.\.\]"),
        ([Call.TAG, BOB.address, b"\x01"], r"action<Call>: expected 4 fields, got 2"),
        ([Transfer.TAG, BOB.address, b"\x00\x01"], r"action<Transfer>\.amount: non-minimal"),
    ]:
        data = pack([*raw[:5], action, *raw[6:]])
        with pytest.raises(DecodeError, match=match):
            Transaction.decode(data)


# --- encoding values that do not fit ------------------------------------------------

PK = bytes(range(32))


@pytest.mark.parametrize(
    ("make", "match"),
    [
        (lambda: Validator(PK, 2**64), r"Validator\.power: 18446744073709551616 is not a u64"),
        (lambda: Validator(PK, -1), "is not a u64"),
        (lambda: Validator(PK, True), "is not a u64"),
        (lambda: Validator(PK, 1.0), "is not a u64"),
        (lambda: Validator(PK[:31], 1), r"Validator\.public_key: expected 32 bytes"),
        (lambda: Validator(PK + b"\x00", 1), "expected 32 bytes"),
        (lambda: Validator(bytearray(PK), 1), "expected 32 bytes"),
        (lambda: Validator(PK.hex(), 1), "expected 32 bytes"),
        (lambda: Transfer(bytes(20), 2**256), r"Transfer\.amount: .* is not a u256"),
        (lambda: Transfer(bytes(20), -1), "is not a u256"),
        (lambda: Call(bytes(20), "m" * 65, b"", 0), r"Call\.method: expected text of at most 64"),
        (lambda: Call(bytes(20), b"m", b"", 0), r"Call\.method: expected text"),
        (lambda: Deploy(bytes(64 * 1024 + 1), b"", 0), r"Deploy\.code: expected at most 65536"),
        (lambda: Sample(5, 1, "", b"", 0, None, (), b"\x00\x00"), r"Sample\.flag: expected a boolean"),
        (lambda: Sample(5, True, "", b"", 0, 256, (), b"\x00\x00"), r"Sample\.opt: 256 is not a u8"),
        (lambda: Sample(5, True, "", b"", 0, None, (1, 2, 3, 4), b"\x00\x00"), r"Sample\.items: expected a sequence"),
        (lambda: Sample(5, True, "", b"", 0, None, (1, -1), b"\x00\x00"), r"Sample\.items\[1\]: -1 is not a u8"),
        (lambda: Sample(5, True, "", b"", 0, None, "ab", b"\x00\x00"), r"Sample\.items: expected a sequence"),
        (lambda: Sample(5, True, "\u00e9" * 5, b"", 0, None, (), b"\x00\x00"), r"Sample\.name"),
        (
            lambda: dataclasses.replace(
                Transaction.create(ALICE, CHAIN, 0, Transfer(BOB.address, 1), gas_limit=1, gas_price=1),
                action=Validator(PK, 1),
            ),
            r"Transaction\.action: Validator is not a member of this union",
        ),
        (
            lambda: Block(Validator(PK, 1), (), None),  # type: ignore[arg-type]
            r"Block\.header: expected Header",
        ),
    ],
)
def test_encoding_a_value_that_does_not_fit_raises_encode_error(make, match: str) -> None:
    value = make()
    with pytest.raises(EncodeError, match=match) as info:
        value.encode()
    # Our own bug, never the peer's fault.
    assert isinstance(info.value, LocalError)
    assert not isinstance(info.value, RemoteError)


def test_pack_refuses_floats_and_unknown_objects() -> None:
    with pytest.raises(EncodeError):
        pack([1, 1.5])
    with pytest.raises(EncodeError):
        pack(object())
    with pytest.raises(EncodeError):
        pack(2**64)


def test_kind_declarations_are_checked() -> None:
    with pytest.raises(ValueError):
        UInt(65)
    with pytest.raises(ValueError):
        UInt(0)
    with pytest.raises(ValueError):
        Bytes()
    with pytest.raises(ValueError):
        Bytes(2, max_len=3)
    with pytest.raises(ValueError):
        OneOf(Transfer, Transfer)
    with pytest.raises(ValueError):
        OneOf(Validator)  # no TAG
    with pytest.raises(TypeError, match="does not match fields"):

        @record(("b", UInt(8)), ("a", UInt(8)))
        class Swapped(Record):
            a: int
            b: int


def test_nested_record_type_is_checked_on_decode() -> None:
    sig_raw = [b"\x01" * 20, b"\x02" * 64]
    cert = pack([1, 0, b"\x03" * 32, [sig_raw, [b"\x01" * 20]]])
    with pytest.raises(DecodeError, match=r"CommitCertificate\.signatures\[1\]: expected 2 fields, got 1"):
        CommitCertificate.decode(cert)
    assert Nested(Validator).dump(Validator(PK, 1)) == [PK, 1]


# --- plain unpack -------------------------------------------------------------------


def test_unpack_accepts_plain_canonical_values() -> None:
    value = [1, 2**64 - 1, -5, b"x", "s", None, True, False, [], [[b""]]]
    assert unpack(msgpack.packb(value, use_bin_type=True)) == value


@pytest.mark.parametrize(
    ("value", "match"),
    [
        (3.0, "floats are not allowed"),
        ([1, [2, [3.0]]], "floats are not allowed"),
        ([[[[[]]]], 0.5], "floats are not allowed"),
        ({}, "maps are not allowed"),
        ([1, [{}]], "maps are not allowed"),
        ([1, [2, {"a": 1}]], "maps are not allowed"),
        (msgpack.ExtType(1, b"x"), "extension types are not allowed"),
        ([1, [msgpack.ExtType(5, b"")]], "extension types are not allowed"),
        ([[msgpack.Timestamp(1, 0)]], "not allowed"),
    ],
)
def test_plain_unpack_refuses_floats_maps_and_ext_anywhere(value: object, match: str) -> None:
    data = msgpack.packb(value, use_bin_type=True)
    with pytest.raises(DecodeError, match=match):
        unpack(data)


def test_plain_unpack_is_strict_about_form_and_size() -> None:
    with pytest.raises(DecodeError, match="not in canonical encoding"):
        unpack(b"\xcc\x05")
    with pytest.raises(DecodeError, match="not in canonical encoding"):
        unpack(b"\xd9\x01a")
    with pytest.raises(DecodeError, match="trailing bytes"):
        unpack(b"\x01\x02")
    with pytest.raises(DecodeError, match="empty input"):
        unpack(b"")
    with pytest.raises(DecodeError, match="exceeds the limit of 3"):
        unpack(b"\x94\x01\x02\x03", max_size=3)
    with pytest.raises(DecodeError, match="expected bytes"):
        unpack("\x01")  # type: ignore[arg-type]
    with pytest.raises(DecodeError, match="exceeds the limit"):
        unpack(bytes(MAX_DECODE_SIZE + 1))
    # msgpack stores non-string map keys only with strict_map_key off: refused.
    with pytest.raises(DecodeError):
        unpack(b"\x81\x01\x02")


@pytest.mark.parametrize("depth", [511, 513, 1023, 1025, 5000])
def test_deep_nesting_is_refused_or_canonical_never_a_crash(depth: int) -> None:
    data = b"\x91" * depth + b"\xc0"
    try:
        value = unpack(data)
    except DecodeError:
        return
    assert msgpack.packb(value, use_bin_type=True) == data
    with pytest.raises(DecodeError):
        Transaction.decode(data)


# --- every record round-trips -------------------------------------------------------


@pytest.mark.parametrize("cls", list(RECORD_STRATEGIES), ids=lambda c: c.__name__)
@settings(max_examples=100)
@given(data=st.data())
def test_every_record_round_trips(cls: type, data: st.DataObject) -> None:
    value = data.draw(RECORD_STRATEGIES[cls])
    encoded = value.encode()
    decoded = cls.decode(encoded)
    assert decoded == value
    assert type(decoded) is cls
    assert decoded.encode() == encoded
    # Stable: a fresh, uncached copy encodes to the same bytes, also via plain pack.
    assert dataclasses.replace(value).encode() == encoded
    assert pack(value.to_raw()) == encoded
    assert unpack(encoded) == value.to_raw()


@pytest.mark.parametrize("action_cls", [Transfer, Call, Deploy], ids=lambda c: c.__name__)
@settings(max_examples=100)
@given(data=st.data())
def test_every_action_round_trips_inside_a_transaction(action_cls: type, data: st.DataObject) -> None:
    tx = data.draw(transactions_with(RECORD_STRATEGIES[action_cls]))
    decoded = Transaction.decode(tx.encode())
    assert decoded == tx
    assert type(decoded.action) is action_cls
    assert decoded.action == tx.action
    assert decoded.hash == tx.hash == sha256(tx.encode())


def test_extreme_values_round_trip() -> None:
    tx = Transaction(
        "\U0001f600" * 16, b"\xff" * 32, 2**64 - 1, 2**64 - 1, 2**64 - 1,
        Call(b"\xff" * 20, "m" * 64, b"\xff" * (64 * 1024), MAX_AMOUNT), "\u00e9" * 128, b"\xff" * 64,
    )
    assert Transaction.decode(tx.encode()) == tx
    zero = Transaction("", bytes(32), 0, 0, 0, Transfer(bytes(20), 0), "", bytes(64))
    assert Transaction.decode(zero.encode()) == zero
    # Zero is the empty byte string, 2**256 - 1 is 32 bytes of 0xff.
    assert Transfer(bytes(20), 0).to_raw()[1] == b""
    assert Transfer(bytes(20), MAX_AMOUNT).to_raw()[1] == b"\xff" * 32
    assert Transfer(bytes(20), 256).to_raw()[1] == b"\x01\x00"


# --- mutations ------------------------------------------------------------------------


def _sweep(cls: type, original: bytes, xors: tuple[int, ...] | None = None) -> tuple[int, int]:
    accepted = rejected = 0
    for mutated in mutations(original, xors):
        if check_mutant(cls, original, mutated):
            accepted += 1
        else:
            rejected += 1
    return accepted, rejected


def test_every_single_byte_mutation_of_a_transaction_is_rejected_or_rehashes() -> None:
    tx = Transaction.create(
        ALICE, CHAIN, 7, Call(BOB.address, "buy", b"\x01\x02", 10**20),
        gas_limit=50_000, gas_price=3, memo="order #1 \u00e9",
    )
    accepted, rejected = _sweep(Transaction, tx.encode())
    # Both outcomes occur: the sweep really exercised decode (e.g. a changed nonce
    # byte decodes; a broken header byte does not).
    assert accepted > 100
    assert rejected > 1000


def test_every_single_byte_mutation_of_a_header_is_rejected_or_rehashes() -> None:
    header = Header(CHAIN, 12, 1_767_225_600_000, b"\x01" * 32, b"\x02" * 32, b"\x03" * 32,
                    b"\x04" * 32, b"\x05" * 32, b"\x06" * 32, ALICE.address, 3, b"\x07" * 32)
    accepted, rejected = _sweep(Header, header.encode())
    assert accepted > 1000  # most bytes are hash bytes: any value decodes, with a new hash
    assert rejected > 1000


def test_mutations_of_a_block_with_transactions_and_certificate() -> None:
    keys = validator_keys(3)
    parent = b"\x09" * 32
    cert = CommitCertificate.from_votes(commit_votes(keys, 4, 1, parent))
    txs = (
        Transaction.create(ALICE, CHAIN, 0, Transfer(BOB.address, 5), gas_limit=1, gas_price=1),
        Transaction.create(BOB, CHAIN, 3, Deploy(b"\x00code", b"", 0), gas_limit=9, gas_price=1),
    )
    header = Header(CHAIN, 5, 1, parent, b"\x02" * 32, b"\x03" * 32, b"\x04" * 32,
                    b"\x05" * 32, b"\x06" * 32, keys[0].address, len(txs), sha256(cert.encode()))
    block = Block(header, txs, cert)
    accepted, rejected = _sweep(Block, block.encode(), xors=(0x01, 0x10, 0x80, 0xFF))
    assert accepted > 0
    assert rejected > 0


def test_encoding_by_concatenation_is_the_packed_encoding() -> None:
    """Record.encode joins its fields' bytes, nested records giving their cached
    encodings: it must be exactly what packing the whole object tree gives, for array
    headers of every width, transactions that arrived as bytes, and messages."""
    from chain.codec import _array_header
    from consensus.messages import _UNION as CONSENSUS
    from consensus.messages import Decision
    for n in (0, 1, 15, 16, 17, 65_535, 65_536):
        assert _array_header(n) == msgpack.packb([0] * n)[:len(_array_header(n))]
    keys = validator_keys(3)
    parent = b"\x09" * 32
    cert = CommitCertificate.from_votes(commit_votes(keys, 4, 1, parent))
    made = [Transaction.create(ALICE, CHAIN, n, Transfer(BOB.address, n), gas_limit=21_000,
                               gas_price=1, memo="m" * (n % 3)) for n in range(40)]
    for txs in (made[:0], made[:15], made[:16], made,
                [Transaction.decode(tx.encode()) for tx in made]):  # as if from the wire
        header = Header(CHAIN, 5, 1, parent, b"\x02" * 32, b"\x03" * 32, b"\x04" * 32,
                        b"\x05" * 32, b"\x06" * 32, keys[0].address, len(txs),
                        sha256(cert.encode()))
        for block in (Block(header, tuple(txs), cert), Block(header, tuple(txs), None)):
            assert block.encode() == pack(block.to_raw())
            decoded = Block.decode(block.encode())
            assert decoded == block
            # A decoded block's records keep their slices of its bytes as encodings.
            kept = [decoded.header, *decoded.txs] + ([decoded.last_commit]
                                                     if decoded.last_commit else [])
            for record_ in kept:
                assert record_.__dict__["_encoded"] == pack(record_.to_raw())
            decision = Decision(block, cert)
            assert CONSENSUS.encode(decision) == pack(CONSENSUS.dump(decision))
    with pytest.raises(EncodeError, match=r"Block\.txs\[1\]"):
        Block(header, (made[0], "not a transaction"), None).encode()  # type: ignore[arg-type]


_MUTATION = st.tuples(
    st.sampled_from(["replace", "insert", "delete", "truncate", "append"]),
    st.integers(min_value=0),
    st.binary(min_size=1, max_size=3),
)


def _apply(original: bytes, op: tuple[str, int, bytes]) -> bytes:
    kind, pos, payload = op
    n = len(original)
    if kind == "replace":
        i = pos % n
        new = payload[0] if payload[0] != original[i] else (original[i] ^ 0x01)
        return original[:i] + bytes([new]) + original[i + 1 :]
    if kind == "insert":
        i = pos % (n + 1)
        return original[:i] + payload + original[i:]
    if kind == "delete":
        i = pos % n
        return original[:i] + original[i + 1 :]
    if kind == "truncate":
        return original[: pos % n]
    return original + payload


@pytest.mark.parametrize("cls", list(RECORD_STRATEGIES), ids=lambda c: c.__name__)
@settings(max_examples=60)
@given(data=st.data())
def test_random_mutations_of_every_record_are_rejected_or_rehash(cls: type, data: st.DataObject) -> None:
    original = data.draw(RECORD_STRATEGIES[cls]).encode()
    ops = data.draw(st.lists(_MUTATION, min_size=1, max_size=40))
    for op in ops:
        check_mutant(cls, original, _apply(original, op))
    # And a cheap sweep of every position with bit flips, deletions and truncations.
    if len(original) <= 400:
        _sweep(cls, original, xors=(0x01, 0x80))


@pytest.mark.parametrize(
    "value",
    [
        Vote.create(ALICE, CHAIN, 2, 10, 3, b"\x07" * 32),
        Validator(ALICE.public_key, 10),
        InclusionProof(3, 8, (b"\x01" * 32, b"\x02" * 32, b"\x03" * 32)),
    ],
    ids=lambda v: type(v).__name__,
)
def test_every_single_byte_mutation_of_small_records(value: Record) -> None:
    accepted, rejected = _sweep(type(value), value.encode())
    assert accepted > 0
    assert rejected > 0


_PLAIN = st.recursive(
    st.none() | st.booleans() | st.integers(-(2**63), 2**64 - 1) | st.binary(max_size=40)
    | st.text(max_size=40),
    lambda inner: st.lists(inner, max_size=5), max_leaves=20)


@given(_PLAIN)
def test_the_shared_packer_gives_packbs_bytes(value: object) -> None:
    assert packb_plain(value) == msgpack.packb(value, use_bin_type=True)
    assert pack(value) == msgpack.packb(value, use_bin_type=True, strict_types=True)


def test_a_failed_pack_leaves_nothing_behind_in_the_shared_packer() -> None:
    """The packer is shared by every caller: a value it cannot pack, failing half-way
    through a list, must not leave bytes that the next value's encoding would carry."""
    with pytest.raises(TypeError):
        packb_plain([b"x" * 100, 1, object()])
    with pytest.raises(EncodeError):
        pack([b"y" * 100, (1, 2)])  # a tuple is not canonical in a strict record
    assert packb_plain([1]) == b"\x91\x01"
    assert pack([2]) == b"\x91\x02"
