"""The peer manager over real sockets on 127.0.0.1: good links, refused links, and
adversarial peers that complete a genuine Noise handshake and then send exactly the
bytes a test wants.

No test sleeps on a guess. Every wait is on an event (a peer registered or dropped, a
reason recorded, a socket closed), bounded by ``WAIT``; the short timeouts in
``SETTINGS`` only decide how soon the node itself gives up on a peer.
"""

from __future__ import annotations

import asyncio
import dataclasses
import itertools
import math
import random
import socket
from collections import deque
from collections.abc import Awaitable, Callable

import pytest

from chain.keys import PrivateKey
from p2p.connection import Connection
from p2p.errors import LocalError, RequestFailed
from p2p.messages import (
    PROTOCOL_VERSION,
    ConsensusMessage,
    Goodbye,
    Hello,
    Message,
    PexAddresses,
    Ping,
    decode_message,
    encode_message,
)
from p2p.peers import P2PSettings, Peer, PeerManager
from p2p.policy import PeerAddress
from p2p.secure import DEFAULT_MAX_FRAME, ChannelState, SecureChannel

CHAIN = "agora-test"
#: Upper bound on any single wait: far above what a healthy run needs.
WAIT = 5.0
SETTINGS = P2PSettings(
    listen_host="127.0.0.1",
    listen_port=0,
    handshake_timeout=0.5,
    ping_interval=0.05,
    peer_timeout=0.4,
    backoff_base=0.02,
    backoff_max=0.2,
    ban_seconds=60.0,
    request_timeout=2.0,
)
Inbox = asyncio.Queue[tuple[bytes, bytes]]


def key(name: str) -> PrivateKey:
    return PrivateKey.from_seed_text(name)


def free_port() -> int:
    """A port free right now, for nodes that must know each other's address before
    either starts (the OS could hand it out again, but not within one test's time)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class _NotifyingLog(deque):
    """``PeerManager.disconnects`` that wakes the test's waiters on every new entry."""

    def __init__(self, log: deque, notify: Callable[[], None]) -> None:
        super().__init__(log, maxlen=log.maxlen)
        self._notify = notify

    def append(self, item: tuple[bytes | None, str]) -> None:
        super().append(item)
        self._notify()


class Net:
    """The managers and raw peers of one test; every change to any manager (a peer
    registered or dropped, a reason recorded) re-checks the conditions tests wait on."""

    def __init__(self) -> None:
        self.managers: list[PeerManager] = []
        self.raw_peers: list[RawPeer] = []
        self._waiters: list[tuple[Callable[[], bool], asyncio.Future[None]]] = []

    def make(self, name: str, *, chain: str = CHAIN, height: int = 0, validator: bytes = b"",
             **settings: object) -> PeerManager:
        manager = PeerManager(key(name), chain, dataclasses.replace(SETTINGS, **settings),
                              height=lambda: height, validator=validator,
                              rng=random.Random(1))
        manager.on_peer_connected.append(lambda peer: self._notify())
        manager.on_peer_disconnected.append(lambda node_id, reason: self._notify())
        manager.disconnects = _NotifyingLog(manager.disconnects, self._notify)
        self.managers.append(manager)
        return manager

    async def start(self, name: str, **kwargs: object) -> PeerManager:
        manager = self.make(name, **kwargs)
        await manager.start()
        return manager

    def _notify(self) -> None:
        for condition, future in self._waiters:
            if not future.done() and condition():
                future.set_result(None)

    async def until(self, condition: Callable[[], bool], what: str | Callable[[], str]) -> None:
        if condition():
            return
        future = asyncio.get_running_loop().create_future()
        entry = (condition, future)
        self._waiters.append(entry)
        try:
            async with asyncio.timeout(WAIT):
                await future
        except TimeoutError:
            pytest.fail(f"timed out waiting until {what() if callable(what) else what}")
        finally:
            self._waiters.remove(entry)

    async def reason(self, manager: PeerManager, text: str) -> tuple[bytes | None, str]:
        """The first recorded link ending whose reason contains ``text``."""
        def found() -> tuple[bytes | None, str] | None:
            return next((entry for entry in manager.disconnects if text in entry[1]), None)
        await self.until(lambda: found() is not None,
                         lambda: f"a reason has {text!r} (have {list(manager.disconnects)})")
        entry = found()
        assert entry is not None
        return entry

    async def registered(self, manager: PeerManager, node_id: bytes) -> Peer:
        await self.until(lambda: node_id in manager.peers, f"{node_id.hex()[:8]} is registered")
        return manager.peers[node_id]

    async def dropped(self, manager: PeerManager, node_id: bytes) -> str:
        """Wait until ``manager`` no longer has ``node_id`` registered; the reason."""
        await self.until(lambda: node_id not in manager.peers,
                         f"{node_id.hex()[:8]} is dropped")
        return next(r for n, r in reversed(manager.disconnects) if n == node_id)

    async def connect(self, dialler: PeerManager, listener: PeerManager) -> tuple[Peer, Peer]:
        """Dial and wait until both ends have registered the link."""
        async with asyncio.timeout(WAIT):
            outbound = await dialler.dial(listener.address)
        assert outbound is not None, list(dialler.disconnects)
        return outbound, await self.registered(listener, dialler.node_id)

    async def raw(self, manager: PeerManager, name: str, **kwargs: object) -> RawPeer:
        raw = await RawPeer.connect(manager, key(name), **kwargs)
        self.raw_peers.append(raw)
        return raw

    async def close(self) -> None:
        for raw in self.raw_peers:
            raw.writer.transport.abort()
        async with asyncio.timeout(WAIT):
            await asyncio.gather(*(m.stop() for m in self.managers))


class RawPeer:
    """A dialler driven by hand: a genuine handshake, then exactly the bytes a test
    chooses (tampered, replayed, oversize, or nothing at all)."""

    def __init__(self, node_key: PrivateKey, reader: asyncio.StreamReader,
                 writer: asyncio.StreamWriter, channel: SecureChannel) -> None:
        self.key = node_key
        self.node_id = node_key.address
        self.reader = reader
        self.writer = writer
        self.channel = channel
        self.inbox: deque[bytes] = deque()

    @classmethod
    async def open_tcp(cls, manager: PeerManager, *, rcvbuf: int | None = None,
                       source_host: str | None = None,
                       ) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
        sock = socket.socket()
        if source_host is not None:
            sock.bind((source_host, 0))
        if rcvbuf is not None:  # before connect, so the TCP window starts small
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)
        sock.setblocking(False)
        async with asyncio.timeout(WAIT):
            await asyncio.get_running_loop().sock_connect(sock, ("127.0.0.1",
                                                                 manager.listen_port))
        return await asyncio.open_connection(sock=sock)

    @classmethod
    async def connect(cls, manager: PeerManager, node_key: PrivateKey, *,
                      max_frame: int = DEFAULT_MAX_FRAME, rcvbuf: int | None = None,
                      source_host: str | None = None) -> RawPeer:
        reader, writer = await cls.open_tcp(manager, rcvbuf=rcvbuf, source_host=source_host)
        channel = SecureChannel(node_key, True, expected_peer=manager.node_id,
                                max_frame=max_frame)
        raw = cls(node_key, reader, writer, channel)
        writer.write(channel.initiate())
        async with asyncio.timeout(WAIT):
            while channel.state is ChannelState.HANDSHAKE:
                data = await reader.read(65536)
                assert data, "the node closed the link during the handshake"
                reply, frames = channel.receive_data(data)
                raw.inbox.extend(frames)
                writer.write(reply)
        return raw

    def hello(self, **fields: object) -> Hello:
        good = Hello(CHAIN, PROTOCOL_VERSION, self.node_id, "", 0, b"")
        return dataclasses.replace(good, **fields)

    def sealed(self, message: Message) -> bytes:
        return self.channel.seal(encode_message(message))

    def send(self, message: Message) -> None:
        self.writer.write(self.sealed(message))

    async def receive(self) -> Message:
        async with asyncio.timeout(WAIT):
            while not self.inbox:
                data = await self.reader.read(65536)
                assert data, "the node closed the link"
                self.inbox.extend(self.channel.receive_data(data)[1])
        return decode_message(self.inbox.popleft())

    async def until_closed(self) -> list[Message]:
        """Read until the node closes the link; returns the messages it sent meanwhile."""
        messages: list[Message] = []
        async with asyncio.timeout(WAIT):
            while True:
                messages.extend(decode_message(f) for f in self.inbox)
                self.inbox.clear()
                try:
                    data = await self.reader.read(65536)
                except ConnectionResetError:
                    return messages
                if not data:
                    return messages
                if self.channel.state is ChannelState.OPEN:
                    self.inbox.extend(self.channel.receive_data(data)[1])


def consensus_inbox(manager: PeerManager) -> Inbox:
    queue: asyncio.Queue[tuple[bytes, bytes]] = asyncio.Queue()
    manager.on_consensus = lambda sender, body: queue.put_nowait((sender, body))
    return queue


async def next_item(queue: Inbox) -> tuple[bytes, bytes]:
    async with asyncio.timeout(WAIT):
        return await queue.get()


async def exchange(a: PeerManager, b: PeerManager) -> None:
    """A consensus message each way: the link between ``a`` and ``b`` still works."""
    for sender, receiver in ((a, b), (b, a)):
        inbox = consensus_inbox(receiver)
        assert sender.send(receiver.node_id, b"still here")
        assert await next_item(inbox) == (sender.node_id, b"still here")


async def refused_as_banned(net: Net, node: PeerManager, name: str) -> None:
    """A fresh connection with ``name``'s key: the node says goodbye, naming the ban."""
    again = await net.raw(node, name)
    messages = await again.until_closed()
    assert [type(m) for m in messages] == [Goodbye]
    assert "banned" in messages[0].reason
    assert again.node_id not in node.peers


@pytest.fixture
async def net():
    network = Net()
    try:
        yield network
    finally:
        await network.close()


# --------------------------------------------------------------------- good links


async def test_good_link_registers_both_ends_and_routes_consensus(net: Net) -> None:
    validator = bytes(range(1, 21))
    a = await net.start("a", height=7)
    b = await net.start("b", height=3, validator=validator)
    c = await net.start("c", height=5)
    a_to_b, b_from_a = await net.connect(a, b)
    a_to_c, _ = await net.connect(a, c)

    assert (a_to_b.node_id, b_from_a.node_id) == (b.node_id, a.node_id)
    assert (a_to_b.outbound, b_from_a.outbound) == (True, False)
    assert (a_to_b.hello.height, b_from_a.hello.height) == (3, 7)
    assert a_to_b.hello.listen_address == f"127.0.0.1:{b.listen_port}"
    assert b_from_a.hello.listen_address == f"127.0.0.1:{a.listen_port}"
    assert a_to_b.address == b.address  # the address dialled
    assert b_from_a.address == a.address  # learned from HELLO and the TCP peer host
    assert (a_to_b.is_validator, a_to_c.is_validator, b_from_a.is_validator) == \
        (True, False, False)
    assert sorted(a.peers) == sorted([b.node_id, c.node_id])

    at_a, at_b, at_c = consensus_inbox(a), consensus_inbox(b), consensus_inbox(c)
    assert a.send(b.node_id, b"a->b")
    assert await next_item(at_b) == (a.node_id, b"a->b")
    assert b.send(a.node_id, b"b->a")
    assert await next_item(at_a) == (b.node_id, b"b->a")
    assert not a.send(key("stranger").address, b"nobody")
    assert b.broadcast(b"from b") == 1
    assert await next_item(at_a) == (b.node_id, b"from b")

    assert a.broadcast(b"validators", validators_only=True) == 1
    assert a.broadcast(b"everyone") == 2
    assert await next_item(at_b) == (a.node_id, b"validators")
    assert await next_item(at_b) == (a.node_id, b"everyone")
    # Frames on a link arrive in order, so C got nothing before "everyone".
    assert await next_item(at_c) == (a.node_id, b"everyone")
    assert at_b.empty() and at_c.empty()


async def test_request_response(net: Net) -> None:
    a, b = await net.start("a"), await net.start("b")
    await net.connect(a, b)
    entered = asyncio.Event()

    async def echo(sender: bytes, body: bytes) -> bytes:
        return sender + body

    async def refuse(sender: bytes, body: bytes) -> bytes:
        raise RequestFailed("no such block")

    async def hang(sender: bytes, body: bytes) -> bytes:
        entered.set()
        await asyncio.Event().wait()
        raise AssertionError("unreachable")

    b.request_handlers.update(echo=echo, refuse=refuse, hang=hang)

    assert await a.request(b.node_id, "echo", b"ping") == a.node_id + b"ping"
    with pytest.raises(RequestFailed, match="unknown method 'nope'"):
        await a.request(b.node_id, "nope", b"")
    with pytest.raises(RequestFailed, match="peer answered: no such block"):
        await a.request(b.node_id, "refuse", b"")
    with pytest.raises(RequestFailed, match="no answer to 'hang' within 0.1 s"):
        await a.request(b.node_id, "hang", b"", timeout=0.1)
    with pytest.raises(RequestFailed, match="not connected"):
        await a.request(key("stranger").address, "echo", b"")

    entered.clear()
    pending = asyncio.ensure_future(a.request(b.node_id, "hang", b""))
    async with asyncio.timeout(WAIT):
        await entered.wait()
    await b.stop()
    with pytest.raises(RequestFailed, match="peer disconnected"):
        async with asyncio.timeout(WAIT):
            await pending
    assert b.node_id not in a.peers


async def test_ping_pong_keeps_an_idle_link_alive(net: Net) -> None:
    a, b = await net.start("a"), await net.start("b")
    peer, _ = await net.connect(a, b)
    # Enough pings to span several peer timeouts of an otherwise idle link.
    wanted = math.ceil(3 * SETTINGS.peer_timeout / SETTINGS.ping_interval) + 2
    pings = 0
    enough = asyncio.Event()
    send = peer.conn.send

    def counting_send(message: Message) -> bool:
        nonlocal pings
        if isinstance(message, Ping):
            pings += 1
            if pings >= wanted:
                enough.set()
        return send(message)

    peer.conn.send = counting_send  # type: ignore[method-assign]
    loop = asyncio.get_running_loop()
    async with asyncio.timeout(WAIT):
        await enough.wait()
    assert loop.time() - peer.connected_at > 3 * SETTINGS.peer_timeout
    assert a.peers.get(b.node_id) is peer and not peer.gone.is_set()
    assert loop.time() - peer.last_received <= SETTINGS.peer_timeout  # the pongs count
    assert list(a.disconnects) == [] and list(b.disconnects) == []


# --------------------------------------------------------------------- refused links


async def test_wrong_chain_is_refused_on_both_sides(net: Net) -> None:
    a = await net.start("a", chain="agora-one")
    b = await net.start("b", chain="agora-two")
    assert await a.dial(b.address) is None
    _, at_a = await net.reason(a, "chain")
    _, at_b = await net.reason(b, "chain")
    assert "'agora-two'" in at_a and "'agora-one'" in at_a
    assert "'agora-one'" in at_b and "'agora-two'" in at_b
    assert a.peers == {} and b.peers == {}
    assert len(a.bans) == 0 and len(b.bans) == 0  # another chain is no offence


@pytest.mark.parametrize("version", sorted({0, PROTOCOL_VERSION - 1, PROTOCOL_VERSION + 1}))
async def test_other_protocol_version_is_refused(net: Net, version: int) -> None:
    node = await net.start("node")
    raw = await net.raw(node, "old")
    raw.send(raw.hello(version=version))
    messages = await raw.until_closed()
    assert [type(m) for m in messages] == [Hello, Goodbye]
    _, reason = await net.reason(node, f"version {version}")
    assert messages[1].reason == reason
    assert node.peers == {}


async def test_dialling_a_node_id_reaches_only_that_node(net: Net) -> None:
    a, b = await net.start("a"), await net.start("b")
    expected = key("someone else").address
    assert await a.dial(PeerAddress(expected, "127.0.0.1", b.listen_port)) is None
    _, reason = await net.reason(a, "but reached")
    assert f"dialled node {expected.hex()} but reached {b.node_id.hex()}" in reason
    assert a.peers == {} and b.peers == {}
    await net.connect(a, b)  # the right id still works: nothing was banned


async def test_hello_with_another_node_id_is_dropped_and_banned(net: Net) -> None:
    node = await net.start("node")
    raw = await net.raw(node, "liar")
    raw.send(raw.hello(node_id=key("victim").address))
    messages = await raw.until_closed()
    assert [type(m) for m in messages] == [Hello, Goodbye]
    assert "HELLO claims node" in messages[1].reason and "banned" in messages[1].reason
    assert node.bans.is_banned(raw.node_id, asyncio.get_running_loop().time())
    await refused_as_banned(net, node, "liar")


async def test_inbound_limit(net: Net) -> None:
    b = await net.start("b", max_inbound=1)
    a, c = await net.start("a"), await net.start("c")
    await net.connect(a, b)
    assert await c.dial(b.address) is None
    await net.reason(b, "inbound connection refused: inbound limit reached")
    assert list(b.peers) == [a.node_id]
    await exchange(a, b)


async def test_punish_drops_bans_and_tells_the_peer_why(net: Net) -> None:
    a, b = await net.start("a"), await net.start("b")
    at_a, _ = await net.connect(a, b)
    a.punish(b.node_id, "forged vote signature")
    assert at_a.gone.is_set() and b.node_id not in a.peers
    assert a.bans.is_banned(b.node_id, asyncio.get_running_loop().time())
    assert a.disconnects[-1] == (b.node_id, "forged vote signature (banned for 60 s)")
    # The punished peer is told why in a GOODBYE, as for every other ending.
    told = await net.dropped(b, a.node_id)
    assert told == "peer said goodbye: forged vote signature (banned for 60 s)"
    assert await b.dial(a.address) is None
    await net.reason(a, f"node {b.node_id.hex()[:12]} is banned")


async def test_a_refused_dialler_learns_why_and_bans_nobody(net: Net) -> None:
    """A node that refuses us after the handshake says why in a GOODBYE instead of a
    HELLO: a polite refusal, not a protocol violation to ban that node for."""
    a, b = await net.start("a"), await net.start("b")
    a.bans.ban(b.node_id, asyncio.get_running_loop().time(), 60.0)
    assert await b.dial(a.address) is None
    node_id, reason = b.disconnects[-1]  # recorded before dial() returns
    assert node_id == a.node_id
    assert f"node {b.node_id.hex()[:12]} is banned" in reason, reason
    assert not b.bans.is_banned(a.node_id, asyncio.get_running_loop().time())


# --------------------------------------------------------------------- adversarial peers


BODY = b"x" * 100


async def _flip_a_byte(raw: RawPeer, inbox: Inbox) -> None:
    wire = bytearray(raw.sealed(ConsensusMessage(BODY)))
    wire[10] ^= 0x01  # inside the ciphertext, past the 2-byte length prefix
    raw.writer.write(bytes(wire))


async def _replay(raw: RawPeer, inbox: Inbox) -> None:
    wire = raw.sealed(ConsensusMessage(BODY))
    raw.writer.write(wire)
    assert await next_item(inbox) == (raw.node_id, BODY)  # the original is accepted
    raw.writer.write(wire)


async def _reorder(raw: RawPeer, inbox: Inbox) -> None:
    first = raw.sealed(ConsensusMessage(b"first"))
    second = raw.sealed(ConsensusMessage(b"second"))
    raw.writer.write(second + first)


@pytest.mark.parametrize("attack", [_flip_a_byte, _replay, _reorder],
                         ids=["flipped-byte", "replayed-frame", "reordered-frames"])
async def test_tampered_transport_frames_end_the_link_and_ban(
        net: Net, attack: Callable[[RawPeer, Inbox], Awaitable[None]]) -> None:
    node, good = await net.start("node"), await net.start("good")
    await net.connect(good, node)
    inbox = consensus_inbox(node)
    raw = await net.raw(node, "tamperer")
    raw.send(raw.hello())
    await net.registered(node, raw.node_id)

    await attack(raw, inbox)
    await raw.until_closed()
    node_id, reason = await net.reason(node, "does not authenticate")
    assert node_id == raw.node_id and "banned" in reason
    assert inbox.empty()  # nothing forged, replayed or reordered was delivered
    assert raw.node_id not in node.peers
    await exchange(node, good)
    await refused_as_banned(net, node, "tamperer")


async def test_random_bytes_instead_of_a_handshake(net: Net) -> None:
    node = await net.start("node")
    rng = random.Random(6)
    # Unframed noise mostly announces a message longer than what follows, so the node
    # waits for the rest until the handshake deadline; noise framed with its true length
    # is parsed at once as a (bad) first handshake message.
    unframed = [rng.randbytes(n) for n in (1, 31, 4096)]
    framed = [len(b).to_bytes(2, "big") + b
              for b in (rng.randbytes(n) for n in (0, 16, 32, 100, 4000))]
    blobs = unframed + framed
    streams: list[tuple[asyncio.StreamReader, asyncio.StreamWriter]] = []

    async def closed_by_node(reader: asyncio.StreamReader) -> None:
        try:
            while await reader.read(65536):
                pass
        except ConnectionResetError:
            pass

    try:
        for blob in blobs:
            streams.append(await RawPeer.open_tcp(node))
            streams[-1][1].write(blob)
        async with asyncio.timeout(WAIT):
            await asyncio.gather(*(closed_by_node(reader) for reader, _ in streams))
    finally:
        for _, writer in streams:
            writer.transport.abort()
    reasons = " | ".join(r for n, r in node.disconnects if n is None)
    for failure in ("handshake message too short for an ephemeral key",
                    "unexpected payload in the first handshake message",
                    "handshake not finished within 0.5 s"):
        assert f"inbound handshake failed: {failure}" in reasons, reasons
    assert node.peers == {}
    good = await net.start("good")
    await net.connect(good, node)
    await exchange(good, node)


async def test_frame_over_the_maximum_is_refused_before_its_body(net: Net) -> None:
    node = await net.start("node", max_frame=100_000)
    raw = await net.raw(node, "big", max_frame=1 << 20)
    raw.send(raw.hello())
    await net.registered(node, raw.node_id)
    wire = raw.channel.seal(bytes(200_000))
    first = wire[:2 + int.from_bytes(wire[:2], "big")]
    assert len(first) < len(wire) // 3  # the body is in the messages never sent
    raw.writer.write(first)
    await raw.until_closed()
    node_id, reason = await net.reason(node, "over the maximum")
    assert node_id == raw.node_id
    assert "frame of 200000 bytes announced, over the maximum of 100000" in reason
    # Not banned: an honest peer with a larger max_frame in its config does this.
    assert "banned" not in reason
    assert not node.bans.is_banned(raw.node_id, asyncio.get_running_loop().time())


async def test_silent_tcp_connection_is_closed_after_the_handshake_timeout(net: Net) -> None:
    node, good = await net.start("node"), await net.start("good")
    link, _ = await net.connect(good, node)
    reader, writer = await RawPeer.open_tcp(node)
    try:
        async with asyncio.timeout(WAIT):
            assert await reader.read(1) == b""
    finally:
        writer.transport.abort()
    await net.reason(node, "inbound handshake failed: handshake not finished within 0.5 s")
    assert good.peers.get(node.node_id) is link
    await exchange(good, node)


async def test_peer_silent_before_hello_is_dropped(net: Net) -> None:
    node = await net.start("node")
    raw = await net.raw(node, "mute")
    messages = await raw.until_closed()
    assert [type(m) for m in messages] == [Hello, Goodbye]
    node_id, reason = await net.reason(node, "no HELLO within 0.5 s")
    assert node_id == raw.node_id and messages[1].reason == reason


async def test_peer_silent_after_hello_is_dropped(net: Net) -> None:
    node, good = await net.start("node"), await net.start("good")
    link, _ = await net.connect(good, node)
    raw = await net.raw(node, "half-open")
    raw.send(raw.hello())
    await net.registered(node, raw.node_id)
    node_id, reason = await net.reason(node, "silent")
    assert node_id == raw.node_id and "dead or half-open" in reason
    await raw.until_closed()
    assert good.peers.get(node.node_id) is link
    await exchange(good, node)


async def test_peer_that_stops_reading_is_dropped_with_bounded_buffers(net: Net) -> None:
    limit = 256 * 1024
    # A long peer_timeout: the raw peer is dropped for not reading, not for silence.
    node = await net.start("node", send_queue_bytes=limit, peer_timeout=WAIT)
    raw = await net.raw(node, "sloth", rcvbuf=16 * 1024)
    raw.send(raw.hello())
    assert isinstance(await raw.receive(), Hello)
    raw.writer.transport.pause_reading()
    peer = await net.registered(node, raw.node_id)
    conn: Connection = peer.conn
    transport = conn._writer.transport
    body = bytes(60 * 1024)
    most_buffered = sent = 0
    async with asyncio.timeout(WAIT):
        # At most ~120 MB: far more than the socket buffers of both ends can take.
        while not peer.gone.is_set() and sent < 2000:
            node.broadcast(body)
            sent += 1
            most_buffered = max(most_buffered, transport.get_write_buffer_size())
            await asyncio.sleep(0)  # let the writer task run
    assert peer.gone.is_set(), f"still connected after {sent} broadcasts"
    assert sent * len(body) > 2 * limit  # the kernel took some, the queue the rest
    assert conn.max_queued_bytes <= limit
    assert most_buffered <= limit + 1024 * 1024
    node_id, reason = await net.reason(node, "not reading")
    assert node_id == raw.node_id and f"send queue over {limit} bytes" in reason


# --------------------------------------------------------------------- finding peers


async def test_persistent_peer_is_redialled_after_a_restart(net: Net) -> None:
    b = await net.start("b")
    a = await net.start("a", persistent_peers=(str(b.address),))
    first = await net.registered(a, b.node_id)
    assert first.outbound
    await b.stop()
    async with asyncio.timeout(WAIT):
        await first.gone.wait()
    b_again = await net.start("b", listen_port=b.listen_port)
    second = await net.registered(a, b.node_id)
    assert second is not first and second.outbound
    await net.registered(b_again, a.node_id)
    await exchange(a, b_again)


async def test_simultaneous_dial_keeps_one_and_the_same_connection(net: Net) -> None:
    ports = {"a": free_port(), "b": free_port()}
    addresses = {name: f"{key(name).address.hex()}@127.0.0.1:{port}"
                 for name, port in ports.items()}
    a = net.make("a", listen_port=ports["a"], persistent_peers=(addresses["b"],))
    b = net.make("b", listen_port=ports["b"], persistent_peers=(addresses["a"],))
    await asyncio.gather(a.start(), b.start())

    def same_link() -> bool:
        at_a, at_b = a.peers.get(b.node_id), b.peers.get(a.node_id)
        return at_a is not None and at_b is not None and \
            at_a.conn._writer.get_extra_info("sockname") == \
            at_b.conn._writer.get_extra_info("peername")

    await net.until(same_link, "both ends keep the same TCP connection")
    assert list(a.peers) == [b.node_id] and list(b.peers) == [a.node_id]
    # Both keep the link dialled by the node with the smaller id.
    a_dialled = a.node_id < b.node_id
    assert (a.peers[b.node_id].outbound, b.peers[a.node_id].outbound) == \
        (a_dialled, not a_dialled)
    await exchange(a, b)


async def test_peer_exchange_finds_a_third_node(net: Net) -> None:
    a, b, c = await net.start("a"), await net.start("b"), await net.start("c")
    await net.connect(c, b)
    await net.connect(a, b)
    found = await net.registered(a, c.node_id)
    assert found.outbound and found.address == c.address
    await net.registered(c, a.node_id)
    await exchange(a, c)



# --------------------------------------------------------------------- regressions from the review


def p2p_tasks() -> list[asyncio.Task]:
    """Unfinished tasks running the peer manager's or a connection's code."""
    return [t for t in asyncio.all_tasks()
            if not t.done()
            and t.get_coro().__qualname__.startswith(("PeerManager.", "Connection."))]


async def no_p2p_task_left() -> None:
    """Right after stop(): every p2p task has ended or is being cancelled (a cancelled
    writer task ends on its next step), and the cancelled ones do end."""
    left = p2p_tasks()
    assert all(t.cancelling() for t in left), left
    if left:
        await asyncio.wait(left, timeout=WAIT)
    assert p2p_tasks() == []


async def until_tcp_closed(reader: asyncio.StreamReader) -> None:
    """Read (and discard) until the node closes the TCP connection."""
    async with asyncio.timeout(WAIT):
        try:
            while await reader.read(65536):
                pass
        except ConnectionError:  # reset, or a write of ours hit the closed socket
            pass


async def raw_from_host(manager: PeerManager, name: str, host: str) -> RawPeer:
    """A raw peer whose TCP connection comes from ``host`` (another loopback address)."""
    return await RawPeer.connect(manager, key(name), source_host=host)


class _RecordingRandom(random.Random):
    """Remembers the range of every ``uniform`` draw: the backoff's delay ceilings."""

    def __init__(self, seed: int) -> None:
        super().__init__(seed)
        self.ceilings: list[float] = []

    def uniform(self, a: float, b: float) -> float:
        self.ceilings.append(b)
        return super().uniform(a, b)


async def test_links_waiting_for_hello_count_against_the_inbound_limit(net: Net) -> None:
    """Review r2: a link was counted nowhere between the end of its Noise handshake and
    its HELLO, so any number of such links could get past ``max_inbound``."""
    # Long deadlines: the raw peers wait for HELLO, and then sit silent, as long as needed.
    node = await net.start("node", max_inbound=2, handshake_timeout=WAIT, peer_timeout=WAIT)
    first, second = await net.raw(node, "early-1"), await net.raw(node, "early-2")
    assert node.peers == {}  # handshaken, no HELLO yet
    late = await net.start("late")
    assert await late.dial(node.address) is None
    await net.reason(node, "inbound connection refused: inbound limit reached")
    # A raw dialler is refused too, before any handshake.
    reader, writer = await RawPeer.open_tcp(node)
    try:
        await until_tcp_closed(reader)
    finally:
        writer.transport.abort()
    for raw in (first, second):
        raw.send(raw.hello())
        await net.registered(node, raw.node_id)
    assert sorted(node.peers) == sorted([first.node_id, second.node_id])
    assert all(n is None for n, _ in node.disconnects)  # only the refusals so far
    # A slot frees up when a link ends; then the late node gets in.
    first.writer.transport.abort()
    await net.dropped(node, first.node_id)
    await net.connect(late, node)
    await exchange(late, node)
    assert sorted(node.peers) == sorted([second.node_id, late.node_id])


async def test_one_host_cannot_hold_more_than_8_unfinished_handshakes(net: Net) -> None:
    """Review r2 (slowloris): idle TCP sockets from one address could take every
    inbound slot. A host may hold at most 8 links that have not finished HELLO."""
    node = await net.start("node", max_inbound=20, handshake_timeout=1.0)
    streams = [await RawPeer.open_tcp(node) for _ in range(9)]
    try:
        # Whichever of the nine the node took last is refused at once, well before the
        # handshake deadline of the other eight.
        _, refusal = await net.reason(node, "unfinished handshakes")
        assert refusal == "inbound connection refused: 8 unfinished handshakes from 127.0.0.1"
        # Another host is not locked out meanwhile.
        other = await raw_from_host(node, "other-host", "127.0.0.2")
        net.raw_peers.append(other)
        other.send(other.hello())
        await net.registered(node, other.node_id)
        # The idle eight end on the handshake deadline, then 127.0.0.1 may connect again.
        async with asyncio.timeout(WAIT):
            await asyncio.gather(*(until_tcp_closed(reader) for reader, _ in streams))
    finally:
        for _, writer in streams:
            writer.transport.abort()
    endings = [r for n, r in node.disconnects if n is None]
    assert endings.index(refusal) < next(i for i, r in enumerate(endings)
                                         if "handshake not finished" in r)
    assert endings.count(refusal) == 1
    assert endings.count("inbound handshake failed: handshake not finished within 1 s") == 8
    good = await net.start("good")
    await net.connect(good, node)
    await exchange(good, node)
    assert len(node.bans) == 0


async def _junk_responder(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    """Answers Noise message 1 with a well-framed but bogus message 2, then waits for
    the dialler to hang up."""
    try:
        if await reader.read(65536):
            writer.write((200).to_bytes(2, "big") + random.Random(3).randbytes(200))
            while await reader.read(65536):
                pass
    except ConnectionResetError:
        pass
    finally:
        writer.transport.abort()


async def test_a_failed_dial_never_bans_the_node_id_expected(net: Net) -> None:
    """Review r6: a dial whose handshake failed banned the id we *expected* there, so a
    peer could get an honest node banned by pointing its id at a junk address."""
    victim, honest = await net.start("victim"), await net.start("honest")
    evil = await asyncio.start_server(_junk_responder, "127.0.0.1", 0)
    try:
        evil_port = evil.sockets[0].getsockname()[1]
        assert await victim.dial(PeerAddress(honest.node_id, "127.0.0.1", evil_port)) is None
        node_id, reason = victim.disconnects[-1]  # recorded before dial() returns
        assert node_id == honest.node_id
        assert reason.startswith(f"dial {honest.node_id.hex()}@127.0.0.1:{evil_port} failed")
        assert "banned" not in reason
        assert not victim.bans.is_banned(honest.node_id, asyncio.get_running_loop().time())
        assert len(victim.bans) == 0
    finally:
        evil.close()
        await evil.wait_closed()
    # The honest node gets in, whichever side dials.
    await net.connect(honest, victim)
    await exchange(honest, victim)


async def test_peer_exchange_cannot_redirect_a_known_node(net: Net) -> None:
    """Review r6: PEX overwrote the book address of any node id, so a peer could point
    a connected, persistent or known node at an address of its choosing."""
    evil = await asyncio.start_server(_junk_responder, "127.0.0.1", 0)
    evil_port = evil.sockets[0].getsockname()[1]
    dead_port = free_port()
    persistent_id = key("persistent").address
    known = PeerAddress(key("known").address, "127.0.0.1", dead_port)
    try:
        victim = await net.start(
            "victim", persistent_peers=(f"{persistent_id.hex()}@127.0.0.1:{dead_port}",))
        victim.book.add(known)
        connected = await net.start("connected")
        await net.connect(connected, victim)
        assert victim.book.get(connected.node_id) == connected.address  # from its HELLO
        newcomer = key("newcomer").address
        redirect = PexAddresses(tuple(
            f"{node_id.hex()}@127.0.0.1:{evil_port}"
            for node_id in (connected.node_id, persistent_id, known.node_id, victim.node_id,
                            newcomer)))
        attacker = await net.start("attacker")
        attacker._answer_pex = lambda peer: peer.conn.send(redirect)  # type: ignore[method-assign]
        await net.connect(victim, attacker)  # the victim asks the node it dials for peers
        # Only the new id is learned; the victim dials it there, fails, and bans nobody.
        await net.reason(victim, f"dial {newcomer.hex()}@127.0.0.1:{evil_port} failed")
    finally:
        evil.close()
        await evil.wait_closed()
    assert victim.book.get(connected.node_id) == connected.address
    assert victim.book.get(persistent_id) is None
    assert victim.book.get(known.node_id) == known
    assert victim.book.get(victim.node_id) is None
    assert victim.book.get(newcomer) == PeerAddress(newcomer, "127.0.0.1", evil_port)
    assert len(victim.bans) == 0
    assert victim.peers.get(connected.node_id) is not None
    await exchange(connected, victim)


async def test_stop_cancels_links_waiting_for_hello_and_leaves_no_task(net: Net) -> None:
    """Review r4: stop() did not own the server's accept tasks: a link that finished
    its handshake before stop() and sent HELLO after it was registered on the stopped
    node."""
    node = await net.start("node", handshake_timeout=WAIT, peer_timeout=WAIT)
    delivered = consensus_inbox(node)
    early = await net.raw(node, "early")
    early.send(early.hello())
    await net.registered(node, early.node_id)
    late = await net.raw(node, "late")
    assert isinstance(await late.receive(), Hello)  # the node now waits for late's HELLO
    await node.stop()
    assert node.peers == {}
    await no_p2p_task_left()
    # Its wait for HELLO was cancelled and the socket closed: a HELLO now is too late.
    late.send(late.hello())
    late.send(ConsensusMessage(b"after stop"))
    await until_tcp_closed(late.reader)
    told = await early.until_closed()  # pings and the like, then why
    assert told[-1] == Goodbye("node shutting down")
    assert node.peers == {} and delivered.empty()
    assert (late.node_id, "node shutting down") in node.disconnects


async def test_stop_closes_a_link_punished_mid_goodbye(net: Net) -> None:
    """Review r5: punish() spawns conn.close(), which waits for the GOODBYE to flush;
    stop() cancelled it inside that wait and nothing closed the socket."""
    node = await net.start("node", peer_timeout=WAIT)  # dropped for nothing but the ban
    raw = await net.raw(node, "slow", rcvbuf=16 * 1024)
    raw.send(raw.hello())
    peer = await net.registered(node, raw.node_id)
    raw.writer.transport.pause_reading()  # from now on nothing is read
    conn = peer.conn
    for _ in range(16):  # far more than the socket buffers of both ends take
        assert node.send(raw.node_id, bytes(1_000_000))
    node.punish(raw.node_id, "forged vote")
    async with asyncio.timeout(WAIT):
        while conn.close_reason is None:  # until close() waits for the GOODBYE to flush
            await asyncio.sleep(0)
    assert not conn.closed.is_set() and conn.queued_bytes > 0
    await node.stop()
    assert conn.closed.is_set() and conn._writer.transport.is_closing()
    assert node.peers == {}
    await no_p2p_task_left()


async def test_a_persistent_peer_that_keeps_dropping_is_redialled_without_backing_off(
        net: Net) -> None:
    """Review r7: a link we dialled never reset the backoff, so each working session
    counted as a failed attempt and redials slowed down to ``backoff_max``."""
    base, cap = 0.05, 5.0
    b = await net.start("b", max_outbound=0)  # so only a redials: b knows a from its HELLO
    a = net.make("a", persistent_peers=(str(b.address),), backoff_base=base, backoff_max=cap)
    a.rng = recording = _RecordingRandom(1)  # the backoff draws its delays from it
    await a.start()
    loop = asyncio.get_running_loop()
    current = await net.registered(a, b.node_id)
    for drop in range(1, 8):
        await net.registered(b, a.node_id)
        dropped_at = loop.time()
        b.peers[a.node_id].conn.abort("link drop")

        def reconnected(old: Peer = current) -> bool:
            return a.peers.get(b.node_id) not in (None, old) and a.node_id in b.peers

        await net.until(reconnected, f"a redials b after drop {drop}")
        took = loop.time() - dropped_at
        assert took < cap / 10, f"drop {drop}: redialled after {took:.2f} s"
        current = a.peers[b.node_id]
        assert current.outbound
    # Every redial waited the first, shortest delay: the backoff was reset each time.
    assert recording.ceilings == [base] * 7
    await exchange(a, b)


async def test_a_port_that_is_a_unicode_digit_crashes_nothing(net: Net) -> None:
    """Review r8: ports like '²' passed ``str.isdigit()`` and then failed ``int()``;
    the ValueError escaped PEX (killing the persistent-peer loop) and HELLO handling."""
    bad = "\u00b2"
    b = await net.start("b", max_outbound=0)  # so only a's persistent-peer loop redials
    elsewhere = PeerAddress(key("elsewhere").address, "127.0.0.1", free_port())

    answers = itertools.count()

    def answer_pex(peer: Peer) -> None:
        peer.conn.send(PexAddresses((f"{'aa' * 20}@10.0.0.1:{bad}", str(elsewhere))))
        if next(answers) == 0:
            peer.conn.send(ConsensusMessage(b"pex answered"))

    b._answer_pex = answer_pex  # type: ignore[method-assign]
    a = await net.start("a", persistent_peers=(str(b.address),))
    at_a = consensus_inbox(a)
    first = await net.registered(a, b.node_id)
    assert await next_item(at_a) == (b.node_id, b"pex answered")  # after the PEX answer
    assert a.peers.get(b.node_id) is first and not first.gone.is_set()
    assert a.book.get(bytes.fromhex("aa" * 20)) is None
    assert a.book.get(elsewhere.node_id) == elsewhere  # the bad entry spoils nothing
    # The persistent-peer loop is alive: it redials b after a drop.
    assert sum(1 for t in a._tasks
               if t.get_coro().__qualname__ == "PeerManager._keep_dialling") == 1
    await net.registered(b, a.node_id)
    b.peers[a.node_id].conn.abort("link drop")
    await net.until(lambda: a.peers.get(b.node_id) not in (None, first),
                    "a redials its persistent peer b")
    assert a.peers[b.node_id].outbound
    await exchange(a, b)

    # A HELLO announcing such a port: the peer is admitted, with no address to dial.
    node = await net.start("node", peer_timeout=WAIT)
    inbox = consensus_inbox(node)
    raw = await net.raw(node, "odd-port")
    raw.send(raw.hello(listen_address=f"127.0.0.1:{bad}"))
    peer = await net.registered(node, raw.node_id)
    assert peer.address is None and node.book.get(raw.node_id) is None
    raw.send(ConsensusMessage(b"hello from port two"))
    assert await next_item(inbox) == (raw.node_id, b"hello from port two")
    assert node.peers.get(raw.node_id) is peer and list(node.disconnects) == []


async def test_an_oversize_send_is_refused_at_the_call_site_and_the_link_stays_up(
        net: Net) -> None:
    """A send over the frame limit used to fail in the writer task, ending the link and
    dropping everything queued behind it."""
    a, b = await net.start("a"), await net.start("b")
    at_a, _ = await net.connect(a, b)
    limit = SETTINGS.max_frame
    with pytest.raises(LocalError, match=f"over the frame limit of {limit}"):
        at_a.conn.send_encoded(bytes(limit + 1))
    with pytest.raises(LocalError, match="over the frame limit"):
        a.send(b.node_id, bytes(limit))  # the encoded message is larger still
    with pytest.raises(LocalError, match="over the frame limit"):
        a.broadcast(bytes(limit))
    assert a.peers.get(b.node_id) is at_a and at_a.conn.close_reason is None
    await exchange(a, b)
    assert list(a.disconnects) == [] and list(b.disconnects) == []


async def test_an_announced_validator_node_is_kept_linked_and_junk_is_refused(
        net: Net, caplog) -> None:
    """The node address a validator voted in announced (on chain) is dialled and kept
    like a persistent peer; an address no resolver could take, or any malformed one,
    is refused without a dial and without a failed task."""
    a = await net.start("a")
    b = await net.start("b")
    bad_host = f"{key('x').address.hex()}@{'a' * 64}.example:9"
    for junk in ("nonsense", f"{key('x').address.hex()}@{'h' * 300}:9", bad_host,
                 str(a.address)):
        assert not a.add_persistent(junk)
    assert a.add_persistent(str(b.address))
    assert not a.add_persistent(str(b.address))  # kept already
    first = await net.registered(a, b.node_id)
    assert first.outbound
    await exchange(a, b)
    assert "task failed" not in caplog.text
