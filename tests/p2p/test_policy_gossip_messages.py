"""The pure parts of p2p: wire messages, peer policy (injected clock and seed) and
gossip bookkeeping."""

from __future__ import annotations

import random

import msgpack
import pytest
from hypothesis import given
from hypothesis import strategies as st

from chain.hashing import sha256
from p2p.errors import LocalError, MalformedMessage
from p2p.gossip import BoundedSet, TxGossip
from p2p.messages import (
    MAX_TX_BATCH,
    ConsensusMessage,
    Goodbye,
    Hello,
    PexAddresses,
    PexRequest,
    Ping,
    Pong,
    Request,
    Response,
    TxBatch,
    decode_message,
    encode_message,
)
from p2p.policy import AddressBook, Backoff, BanList, PeerAddress, keeps_new_connection

NODE = bytes(range(20))

EXAMPLES = [
    Hello("agora-1", 1, NODE, "127.0.0.1:26656", 42, b""),
    Hello("agora-1", 1, NODE, "", 0, bytes(20)),
    Goodbye("bye"),
    Ping(1),
    Pong(2**64 - 1),
    TxBatch((b"a", b"bc")),
    TxBatch(()),
    PexRequest(),
    PexAddresses((f"{NODE.hex()}@h:1",)),
    Request(1, "blocks", b"\x00"),
    Response(1, "", b"body"),
    Response(2, "no such block", b""),
    ConsensusMessage(b"vote"),
]


@pytest.mark.parametrize("message", EXAMPLES, ids=lambda m: type(m).__name__)
def test_messages_round_trip(message) -> None:
    assert decode_message(encode_message(message)) == message


@pytest.mark.parametrize("frame, why", [
    (b"", "empty"),
    (msgpack.packb([99]), "unknown tag"),
    (msgpack.packb([2]), "expected 1 fields"),
    (msgpack.packb([2, -1]), "out of range"),
    (msgpack.packb([2, 1]) + b"\x00", "trailing"),
    (msgpack.packb([2, 1.5]), "got float"),
    (msgpack.packb({"t": 2}), "maps are not allowed"),
    (msgpack.packb([4, [b"x"] * (MAX_TX_BATCH + 1)], use_bin_type=True), "longer than 4096"),
    (msgpack.packb([4, [[]] * 3]), "nested arrays"),
    (b"\xcd\x00\x01", "not in canonical"),  # uint16 holding 1
])
def test_malformed_messages_are_refused(frame: bytes, why: str) -> None:
    with pytest.raises(MalformedMessage, match=why):
        decode_message(frame)


def test_array_amplification_is_stopped_while_unpacking() -> None:
    # One byte per empty array on the wire: a million of them would be ~60 MB of lists.
    frame = b"\x92\x04\xdd" + (1_000_000).to_bytes(4, "big") + b"\x90" * 1_000_000
    with pytest.raises(MalformedMessage):
        decode_message(frame)


def test_map_amplification_is_stopped_while_unpacking() -> None:
    # An empty map is one byte on the wire and a 64-byte dict in memory.
    frame = b"\x92\x04\xdd" + (1_000_000).to_bytes(4, "big") + b"\x80" * 1_000_000
    with pytest.raises(MalformedMessage, match="maps are not allowed"):
        decode_message(frame)


@given(st.binary(max_size=512))
def test_random_frames_decode_or_are_refused(data: bytes) -> None:
    try:
        message = decode_message(data)
    except MalformedMessage:
        return
    assert encode_message(message) == data


# ---------------------------------------------------------------------- policy


def test_peer_addresses_parse_and_print() -> None:
    text = f"{NODE.hex()}@127.0.0.1:26656"
    address = PeerAddress.parse(text)
    assert (address.node_id, address.host, address.port) == (NODE, "127.0.0.1", 26656)
    assert str(address) == text
    v6 = PeerAddress.parse(f"{NODE.hex()}@[::1]:9")
    assert v6.host == "::1" and str(v6) == f"{NODE.hex()}@[::1]:9"


@pytest.mark.parametrize("text", [
    f"{NODE.hex()}@h:\u00b2",  # a digit to str.isdigit(), not to int()
    "127.0.0.1:26656", f"{NODE.hex()}@127.0.0.1", f"{NODE.hex()}@:80",
    f"{NODE.hex()}@h:0", f"{NODE.hex()}@h:65536", f"{NODE.hex()}@h:x",
    f"{NODE.hex()[:-2]}@h:1", f"zz{NODE.hex()[2:]}@h:1",
])
def test_bad_peer_addresses_are_refused(text: str) -> None:
    with pytest.raises(LocalError):
        PeerAddress.parse(text)


def test_backoff_grows_with_jitter_up_to_the_cap_and_resets() -> None:
    backoff = Backoff(0.5, 8.0, random.Random(3))
    delays = [backoff.next_delay() for _ in range(8)]
    ceilings = [0.5, 1, 2, 4, 8, 8, 8, 8]
    for delay, ceiling in zip(delays, ceilings, strict=True):
        assert ceiling / 2 <= delay <= ceiling
    assert len(set(delays)) == len(delays)  # jittered, not a fixed schedule
    backoff.reset()
    assert backoff.next_delay() <= 0.5
    again = Backoff(0.5, 8.0, random.Random(3))
    assert [again.next_delay() for _ in range(8)] == delays  # seeded: reproducible
    with pytest.raises(LocalError):
        Backoff(1.0, 0.5, random.Random())


def test_backoff_does_not_overflow_after_many_attempts() -> None:
    backoff = Backoff(0.5, 60.0, random.Random(1))
    for _ in range(10_000):
        assert backoff.next_delay() <= 60.0


def test_bans_are_pruned_and_bounded() -> None:
    bans = BanList(capacity=3)
    for i in range(5):
        bans.ban(bytes([i]) * 20, now=0.0, seconds=10.0 + i)
    assert len(bans) == 3 and not bans.is_banned(b"\x00" * 20, 1.0)
    bans.prune(now=12.5)  # the ban of node 2 ended at 12.0
    assert len(bans) == 2 and bans.is_banned(b"\x04" * 20, 12.5)


def test_bans_expire_by_the_clock_passed_in() -> None:
    bans = BanList()
    bans.ban(NODE, now=100.0, seconds=10.0)
    assert bans.is_banned(NODE, 109.9)
    bans.ban(NODE, now=101.0, seconds=1.0)  # a shorter ban never shortens a longer one
    assert bans.is_banned(NODE, 109.9)
    assert not bans.is_banned(NODE, 110.0)
    assert len(bans) == 0
    assert not bans.is_banned(bytes(20), 0.0)


def test_address_book_is_bounded_and_forgets_the_oldest() -> None:
    book = AddressBook(capacity=3)
    addresses = [PeerAddress(bytes([i]) * 20, "h", 1000 + i) for i in range(5)]
    for address in addresses:
        book.add(address)
    assert len(book) == 3
    assert book.get(addresses[0].node_id) is None and book.get(addresses[4].node_id)
    book.add(addresses[2])  # refreshed: now the newest
    book.add(PeerAddress(b"\x09" * 20, "h", 9))
    assert book.get(addresses[2].node_id) and book.get(addresses[3].node_id) is None
    rng = random.Random(0)
    picked = book.candidates({addresses[2].node_id}, 5, rng)
    assert addresses[2] not in picked and len(picked) == 2
    book.remove(addresses[4].node_id)
    assert book.get(addresses[4].node_id) is None


@given(st.binary(min_size=20, max_size=20), st.binary(min_size=20, max_size=20),
       st.booleans())
def test_both_ends_keep_the_same_connection_when_they_dial_at_once(a: bytes, b: bytes,
                                                                 a_first: bool) -> None:
    if a == b:
        return
    # Connection X was dialled by a, Y by b. Each end registers one first, then
    # meets the other; both must end up keeping the same one.
    def kept(local: bytes, remote: bytes, first_is_x: bool) -> str:
        x_outbound = local == a
        first, second = ("X", "Y") if first_is_x else ("Y", "X")
        first_out = x_outbound if first == "X" else not x_outbound
        second_out = not first_out
        return second if keeps_new_connection(local, remote, first_out, second_out) else first

    assert kept(a, b, a_first) == kept(b, a, not a_first) == ("X" if a < b else "Y")


def test_a_redial_in_the_same_direction_replaces_the_stale_link() -> None:
    assert keeps_new_connection(NODE, bytes(20), True, True)
    assert keeps_new_connection(NODE, bytes(20), False, False)


# ---------------------------------------------------------------------- gossip


def test_bounded_set() -> None:
    s = BoundedSet(2)
    assert s.add(b"a") and not s.add(b"a") and s.add(b"b") and s.add(b"c")
    assert b"a" not in s and b"b" in s and len(s) == 2


def _tx(i: int) -> tuple[bytes, bytes]:
    raw = f"tx-{i}".encode()
    return sha256(raw), raw


def test_gossip_sends_each_tx_once_per_link_and_never_echoes() -> None:
    g = TxGossip()
    for peer in (b"p1", b"p2", b"p3"):
        g.add_peer(peer)
    fresh = g.received(b"p1", [_tx(1)[1], _tx(2)[1]])
    assert fresh == [_tx(1), _tx(2)]
    g.received(b"p2", [_tx(1)[1]])  # p2 has tx 1 too
    g.publish(fresh, origin=b"p1")  # the mempool admitted both
    assert g.received(b"p3", [_tx(1)[1]]) == []  # seen: not handed to the mempool again
    assert g.take(b"p1") == []  # not echoed to its origin
    assert g.take(b"p2") == [_tx(2)[1]]  # p2 sent us tx 1, so it has it
    # Queued for p3 before its own copy arrived: an overlap in flight, not an echo.
    assert g.take(b"p3") == [_tx(1)[1], _tx(2)[1]]
    g.publish([_tx(1), _tx(2)])  # published again: nobody needs it
    assert g.pending_peers() == []
    g.publish([_tx(3)])  # a local submission goes to everyone
    assert sorted(g.pending_peers()) == [b"p1", b"p2", b"p3"]


def test_a_tx_is_seen_only_once_its_fate_is_settled() -> None:
    g = TxGossip()
    g.add_peer(b"p1")
    g.add_peer(b"p2")
    # Refused for now (say the pool was full): another copy gets another chance.
    assert g.received(b"p1", [_tx(1)[1]]) == [_tx(1)]
    assert g.received(b"p2", [_tx(1)[1]]) == [_tx(1)]
    g.mark_seen(_tx(1)[0])  # refused for good
    assert g.received(b"p2", [_tx(1)[1]]) == []
    # Either way the peers that sent it are known to have it.
    g.publish([_tx(1)])
    assert g.pending_peers() == []


def test_a_new_link_catches_up_without_duplicates() -> None:
    g = TxGossip()
    g.add_peer(b"p1")
    g.received(b"p1", [_tx(1)[1]])
    g.publish_to(b"p1", [_tx(1), _tx(2)])
    assert g.take(b"p1") == [_tx(2)[1]]
    g.publish_to(b"gone", [_tx(3)])  # not a peer: nothing happens
    assert g.pending_peers() == []


def test_gossip_forgets_removed_peers_and_locally_published_txs_are_seen() -> None:
    g = TxGossip(seen_capacity=10, known_capacity=10)
    g.add_peer(b"p1")
    g.publish([_tx(1)])
    assert g.received(b"p1", [_tx(1)[1]]) == []
    g.remove_peer(b"p1")
    assert g.take(b"p1") == [] and g.pending_peers() == []
    g.publish([_tx(2)])  # no peers: nothing queued, nothing raised


def test_bounded_set_stays_within_its_capacity_and_keeps_the_newest_half() -> None:
    s = BoundedSet(1_000)
    items = [i.to_bytes(4, "big") for i in range(10_000)]
    for k, item in enumerate(items):
        assert s.add(item)
        assert len(s) <= 1_000
        if k % 97 == 0:
            assert all(x in s for x in items[max(0, k - 499):k + 1])  # the newest 500
    assert items[0] not in s and not s.add(items[-1])
