"""The peer manager: listens, dials, says HELLO, keeps links alive, and offers the rest
of the node four ways to talk — broadcast (to all or to validators), send to one peer,
request/response, and transaction gossip.

Life of a link (each step can end it, with a logged reason and, where the link still
works, a GOODBYE to the peer):

    TCP accepted/dialled -> Noise XX handshake (node ids proved)
      -> banned? limits full? -> HELLO both ways (chain id, version, node id)
      -> duplicate of a link we have? keep one (policy.keeps_new_connection)
      -> registered: messages dispatched until either side closes,
         the peer goes quiet past ``peer_timeout``, or it sends something bad
         (then banned for ``ban_seconds`` if the offence is one no honest peer commits)

Persistent peers from the config are redialled forever with exponential backoff and
jitter; peers learned by peer exchange fill the outbound slots. Everything the manager
decides from time (bans, deadlines) uses the loop's clock passed in as ``now``; the
pure rules live in :mod:`p2p.policy` and :mod:`p2p.gossip`.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import logging
import random
from collections import deque
from collections.abc import Awaitable, Callable, Coroutine
from dataclasses import dataclass, field

from chain.keys import PrivateKey

from .connection import Connection, open_channel
from .errors import (
    LocalError,
    P2PError,
    PeerGone,
    PeerRefused,
    PeerTimeout,
    ProtocolViolation,
    RemoteError,
    RequestFailed,
)
from .gossip import TxGossip
from .messages import (
    MAX_PEX_ADDRESSES,
    MAX_TX_BATCH,
    PROTOCOL_VERSION,
    ConsensusMessage,
    Goodbye,
    Hello,
    Message,
    PexAddresses,
    PexRequest,
    Ping,
    Pong,
    Request,
    Response,
    TxBatch,
    encode_message,
)
from .policy import (
    AddressBook,
    Backoff,
    BanList,
    PeerAddress,
    keeps_new_connection,
    split_host_port,
)
from .secure import DEFAULT_MAX_FRAME

log = logging.getLogger("agora.p2p")

#: Inbound links from one host that may be between TCP accept and HELLO at once.
_MAX_PENDING_PER_HOST = 8

TxHandler = Callable[[bytes, list[tuple[bytes, bytes]]], None]
ConsensusHandler = Callable[[bytes, bytes], None]
RequestHandler = Callable[[bytes, bytes], Awaitable[bytes]]


@dataclass(frozen=True)
class P2PSettings:
    """Network settings (the ``[p2p]`` config section maps onto these)."""

    listen_host: str = "127.0.0.1"
    #: 0 picks a free port (tests); read the bound one from ``PeerManager.listen_port``.
    listen_port: int = 26656
    #: ``host:port`` announced to peers; default: the listen address.
    external_address: str = ""
    persistent_peers: tuple[str, ...] = ()
    max_inbound: int = 40
    max_outbound: int = 10
    handshake_timeout: float = 5.0
    ping_interval: float = 5.0
    #: A peer silent for this long (no message, not even PONG) is dropped.
    peer_timeout: float = 20.0
    max_frame: int = DEFAULT_MAX_FRAME
    #: Bytes queued for one peer before it counts as not reading and is dropped.
    send_queue_bytes: int = 32 * 1024 * 1024
    ban_seconds: float = 600.0
    pex: bool = True
    pex_interval: float = 30.0
    backoff_base: float = 0.5
    backoff_max: float = 60.0
    gossip_batch_bytes: int = 1024 * 1024
    #: Gossip queued within this many seconds goes out together: one batch, one
    #: sealed write per peer (0: at the end of the current loop turn).
    gossip_delay: float = 0.005
    request_timeout: float = 10.0
    #: Requests a peer may have in flight with us; more are answered "busy".
    max_requests_in_flight: int = 8

    def __post_init__(self) -> None:
        if self.max_inbound < 0 or self.max_outbound < 0:
            raise LocalError("peer limits cannot be negative")
        if self.external_address:
            split_host_port(self.external_address)
        for text in self.persistent_peers:
            PeerAddress.parse(text)


@dataclass(eq=False)
class Peer:
    """A registered link and what we know about the node at the other end."""

    conn: Connection
    hello: Hello
    outbound: bool
    #: Where the node can be dialled (None: it does not listen).
    address: PeerAddress | None
    connected_at: float
    last_received: float
    pex_requested: bool = False
    pex_answered_at: float = float("-inf")
    txs_sent: int = 0
    txs_received: int = 0
    requests_in_flight: int = 0
    pending: dict[int, asyncio.Future[bytes]] = field(default_factory=dict)
    request_ids: itertools.count = field(default_factory=lambda: itertools.count(1))
    gone: asyncio.Event = field(default_factory=asyncio.Event)

    @property
    def node_id(self) -> bytes:
        return self.conn.remote_id

    @property
    def is_validator(self) -> bool:
        return bool(self.hello.validator)


def short(node_id: bytes | None) -> str:
    return node_id.hex()[:12] if node_id else "?"


#: Persistent peers kept at most (configured ones and validators announced on chain).
_MAX_PERSISTENT = 1024


class PeerManager:
    """The node's peers. ``height`` reports the node's committed height for HELLO;
    ``validator`` is its validator address (empty if it is not one)."""

    def __init__(
        self,
        node_key: PrivateKey,
        chain_id: str,
        settings: P2PSettings | None = None,
        *,
        height: Callable[[], int] = lambda: 0,
        validator: bytes = b"",
        rng: random.Random | None = None,
    ) -> None:
        self.node_key = node_key
        self.node_id = node_key.address
        self.chain_id = chain_id
        self.settings = settings or P2PSettings()
        self.height = height
        self.validator = validator
        self.rng = rng or random.Random()
        self.peers: dict[bytes, Peer] = {}
        self.gossip = TxGossip()
        self.bans = BanList()
        self.book = AddressBook()
        self.persistent = [PeerAddress.parse(t) for t in self.settings.persistent_peers]
        #: Recent link endings, newest last: (node id or None, reason).
        self.disconnects: deque[tuple[bytes | None, str]] = deque(maxlen=256)
        self.on_txs: TxHandler | None = None
        self.on_consensus: ConsensusHandler | None = None
        self.on_peer_connected: list[Callable[[Peer], None]] = []
        self.on_peer_disconnected: list[Callable[[bytes, str], None]] = []
        self.request_handlers: dict[str, RequestHandler] = {}
        self._server: asyncio.Server | None = None
        self._tasks: set[asyncio.Task[object]] = set()
        self._dialling: set[bytes] = set()
        self._inbound_links = 0
        self._pending_by_host: dict[str, int] = {}
        self._flush_scheduled = False
        self._stopping = asyncio.Event()
        self.listen_port = 0

    # ------------------------------------------------------------------ lifecycle

    async def start(self) -> None:
        s = self.settings
        self._server = await asyncio.start_server(self._accept, s.listen_host, s.listen_port,
                                                  limit=2**16)
        self.listen_port = self._server.sockets[0].getsockname()[1]
        for address in self.persistent:
            self._spawn(self._keep_dialling(address))
        self._spawn(self._maintain())
        log.info("p2p listening on %s:%d as node %s", s.listen_host, self.listen_port,
                 self.node_id.hex())

    async def stop(self) -> None:
        """Close every link (telling peers why), then stop listening and dialling."""
        self._stopping.set()
        if self._server is not None:
            self._server.close()
        await asyncio.gather(*(p.conn.close("node shutting down") for p in list(self.peers.values())),
                             return_exceptions=True)
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        if self._server is not None:
            await self._server.wait_closed()

    def _spawn(self, coro: Coroutine[object, None, object]) -> asyncio.Task[object]:
        task = asyncio.get_running_loop().create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._task_done)
        return task

    def _task_done(self, task: asyncio.Task) -> None:
        self._tasks.discard(task)
        if not task.cancelled() and task.exception() is not None:
            # A bug of ours (a request handler, say): report it loudly; the link it
            # served ends on its own deadline.
            log.error("p2p task %s failed", task.get_name(), exc_info=task.exception())

    @property
    def listen_address(self) -> str:
        return self.settings.external_address or f"{self.settings.listen_host}:{self.listen_port}"

    @property
    def address(self) -> PeerAddress:
        """This node's own ``nodeid@host:port``."""
        host, port = split_host_port(self.listen_address)
        return PeerAddress(self.node_id, host, port)

    def _now(self) -> float:
        return asyncio.get_running_loop().time()

    # ------------------------------------------------------------------ connecting

    async def _accept(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        """One inbound link, from TCP accept to its end. It counts against
        ``max_inbound`` for its whole life, handshake included, and a host may hold
        only a few links that have not finished HELLO, so idle sockets from one
        address cannot lock everyone else out."""
        s = self.settings
        task = asyncio.current_task()
        assert task is not None
        self._tasks.add(task)  # so stop() cancels it too
        peername = writer.get_extra_info("peername")
        host = peername[0] if peername else ""
        pending = self._pending_by_host.get(host, 0)
        if self._stopping.is_set() or self._inbound_links >= s.max_inbound:
            refusal = "inbound connection refused: inbound limit reached"
        elif pending >= _MAX_PENDING_PER_HOST:
            refusal = f"inbound connection refused: {pending} unfinished handshakes from {host}"
        else:
            refusal = ""
        if refusal:
            writer.close()  # before the handshake: refusing costs nothing
            self._record(None, refusal)
            self._tasks.discard(task)
            return
        self._inbound_links += 1
        self._pending_by_host[host] = pending + 1
        counted_pending = True
        try:
            try:
                conn = await open_channel(reader, writer, self.node_key, initiator=False,
                                          max_frame=s.max_frame,
                                          send_queue_bytes=s.send_queue_bytes,
                                          timeout=s.handshake_timeout)
            except (P2PError, OSError) as exc:
                self._record(None, f"inbound handshake failed: {exc}")
                return

            def hello_done() -> None:
                nonlocal counted_pending
                if counted_pending:
                    counted_pending = False
                    self._release_pending(host)
            await self._run_peer(conn, None, on_admitted=hello_done)
        except asyncio.CancelledError:
            # stop() cancelled this link. Ending the task normally (its socket is
            # closed by then) rather than cancelled: Python 3.11's stream server asks
            # a cancelled handler task for its exception and logs a traceback.
            writer.close()
            if not self._stopping.is_set():
                raise
        finally:
            self._inbound_links -= 1
            if counted_pending:
                self._release_pending(host)
            self._tasks.discard(task)

    def _release_pending(self, host: str) -> None:
        left = self._pending_by_host.get(host, 1) - 1
        if left > 0:
            self._pending_by_host[host] = left
        else:
            self._pending_by_host.pop(host, None)

    async def dial(self, address: PeerAddress) -> Peer | None:
        """Dial once and run the link in the background; returns the registered peer,
        or None if the attempt failed (the reason is logged and recorded)."""
        registered: asyncio.Future[Peer | None] = asyncio.get_running_loop().create_future()
        self._spawn(self._dial_and_run(address, registered))
        return await registered

    async def _dial_and_run(self, address: PeerAddress,
                            registered: asyncio.Future[Peer | None] | None = None) -> bool:
        """Dial and run the link until it ends; True if it got registered."""
        s = self.settings
        self._dialling.add(address.node_id)
        try:
            async with asyncio.timeout(s.handshake_timeout):
                reader, writer = await asyncio.open_connection(address.host, address.port,
                                                               limit=2**16)
            conn = await open_channel(reader, writer, self.node_key, initiator=True,
                                      expected_peer=address.node_id, max_frame=s.max_frame,
                                      send_queue_bytes=s.send_queue_bytes,
                                      timeout=s.handshake_timeout)
        except (P2PError, OSError, TimeoutError, ValueError) as exc:
            # Never a ban here: nothing proved who answered at that address (an
            # address learned by peer exchange may point anywhere). ValueError: a host
            # name the resolver cannot encode (an address announced on chain).
            reason = str(exc) or type(exc).__name__
            self._record(address.node_id, f"dial {address} failed: {reason}")
            if registered is not None and not registered.done():
                registered.set_result(None)
            return False
        finally:
            self._dialling.discard(address.node_id)
        return await self._run_peer(conn, address, registered)

    async def _keep_dialling(self, address: PeerAddress) -> None:
        """Keep a persistent peer connected, whichever side dialled."""
        backoff = Backoff(self.settings.backoff_base, self.settings.backoff_max, self.rng)
        while not self._stopping.is_set():
            peer = self.peers.get(address.node_id)
            if peer is not None:
                backoff.reset()
                await peer.gone.wait()
            elif address.node_id not in self._dialling and await self._dial_and_run(address):
                backoff.reset()  # it worked: a drop later is a fresh start
            delay = backoff.next_delay()
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(delay):
                    await self._stopping.wait()

    def add_persistent(self, text: str) -> bool:
        """Keep a link to the peer at ``text`` (``nodeid@host:port``) from now on, as
        to a configured persistent peer: a validator voted into the set announced it,
        so it is connected before its first height. False (and nothing done) if it is
        malformed, this node, already kept, or too many are kept."""
        try:
            address = PeerAddress.parse(text)
            if len(address.host) > 253:
                raise LocalError("host name too long")
            address.host.encode("idna")
        except (LocalError, UnicodeError):
            log.warning("not dialling the announced peer %r: malformed address", text[:200])
            return False
        if (address.node_id == self.node_id or self._is_persistent(address.node_id)
                or len(self.persistent) >= _MAX_PERSISTENT):
            return False
        self.persistent.append(address)
        if self._server is not None and not self._stopping.is_set():
            self._spawn(self._keep_dialling(address))
        log.info("keeping a link to announced validator node %s", address)
        return True

    # ------------------------------------------------------------------ one link

    async def _run_peer(self, conn: Connection, address: PeerAddress | None,
                        registered: asyncio.Future[Peer | None] | None = None, *,
                        on_admitted: Callable[[], None] | None = None) -> bool:
        """Admit the link and dispatch its messages until it ends; True if it was
        registered."""
        peer: Peer | None = None
        reason = "closed"
        tell_peer = False
        try:
            peer = await self._admit(conn, address)
            if on_admitted is not None:
                on_admitted()
            if registered is not None and not registered.done():
                registered.set_result(peer)
            while True:
                message = await conn.receive()
                peer.last_received = self._now()
                self._dispatch(peer, message)
        except RemoteError as exc:
            reason = str(exc)
            if exc.bannable:
                self.bans.ban(conn.remote_id, self._now(), self.settings.ban_seconds)
                reason += f" (banned for {self.settings.ban_seconds:g} s)"
            tell_peer = True
        except PeerGone as exc:
            reason = conn.close_reason or str(exc)
        except asyncio.CancelledError:
            reason = "node shutting down"
            raise
        finally:
            if registered is not None and not registered.done():
                registered.set_result(None)
            # If something else already began closing the link (punish, a duplicate,
            # the dead-peer check), it finishes the job and its GOODBYE gets out.
            self._unregister(conn, peer, reason,
                             abort=not tell_peer and conn.close_reason is None)
        if tell_peer:
            await conn.close(reason)
        return peer is not None

    async def _admit(self, conn: Connection, address: PeerAddress | None) -> Peer:
        """Ban check, HELLO both ways, limits and duplicates; returns the registered peer."""
        s = self.settings
        remote = conn.remote_id
        now = self._now()
        if self._stopping.is_set():
            raise PeerRefused("node shutting down")
        if remote == self.node_id:
            raise PeerRefused("connected to ourselves")
        if self.bans.is_banned(remote, now):
            raise PeerRefused(f"node {short(remote)} is banned")
        conn.send(Hello(self.chain_id, PROTOCOL_VERSION, self.node_id, self.listen_address,
                        self.height(), self.validator))
        try:
            async with asyncio.timeout(s.handshake_timeout):
                hello = await conn.receive()
        except TimeoutError:
            raise PeerTimeout(f"no HELLO within {s.handshake_timeout:g} s") from None
        if type(hello) is Goodbye:  # refused before its HELLO: polite, not an offence
            raise PeerGone(f"peer said goodbye: {hello.reason}")
        if type(hello) is not Hello:
            raise ProtocolViolation(f"expected HELLO first, got {type(hello).__name__}")
        self._check_hello(hello, remote)
        outbound = conn.initiator
        if not outbound and address is None and hello.listen_address:
            with contextlib.suppress(LocalError):
                _, port = split_host_port(hello.listen_address)
                address = PeerAddress(remote, conn.remote_host, port)
        existing = self.peers.get(remote)
        if existing is not None:
            if not keeps_new_connection(self.node_id, remote, existing.outbound, outbound):
                raise PeerRefused("duplicate connection: keeping the existing one")
            # Unregistered before any await, so no third link can slip in meanwhile.
            self._unregister(existing.conn, existing, "replaced by a duplicate connection",
                             abort=False)
            self._spawn(existing.conn.close("duplicate connection: keeping the newer one"))
        elif outbound and sum(1 for p in self.peers.values() if p.outbound) >= s.max_outbound \
                and not self._is_persistent(remote):
            raise PeerRefused("outbound limit reached")
        peer = Peer(conn, hello, outbound, address, now, self._now())
        self.peers[remote] = peer
        self.gossip.add_peer(remote)
        if address is not None:
            self.book.add(address)
        log.info("peer %s connected (%s, %s, height %d)", short(remote),
                 "outbound" if outbound else "inbound", hello.listen_address or "not listening",
                 hello.height)
        for callback in self.on_peer_connected:
            callback(peer)
        if s.pex and outbound:
            peer.pex_requested = True
            conn.send(PexRequest())
        return peer

    def _check_hello(self, hello: Hello, remote: bytes) -> None:
        if hello.chain_id != self.chain_id:
            raise PeerRefused(f"peer is on chain {hello.chain_id!r}, we are on "
                              f"{self.chain_id!r}")
        if hello.version != PROTOCOL_VERSION:
            raise PeerRefused(f"peer speaks protocol version {hello.version}, we speak "
                              f"{PROTOCOL_VERSION}")
        if hello.node_id != remote:
            raise ProtocolViolation(f"HELLO claims node {short(hello.node_id)} but the "
                                    f"handshake proved node {short(remote)}")
        if hello.validator and len(hello.validator) != 20:
            raise ProtocolViolation("HELLO validator address is not 20 bytes")

    def _is_persistent(self, node_id: bytes) -> bool:
        return any(a.node_id == node_id for a in self.persistent)

    def _unregister(self, conn: Connection, peer: Peer | None, reason: str, *,
                    abort: bool = True) -> None:
        """Forget a link (once) and record why; ``abort`` also closes the socket now."""
        remote = conn.remote_id
        if peer is None:
            self._record(remote, reason)  # it never got past admission
        elif self.peers.get(remote) is peer:
            del self.peers[remote]
            self.gossip.remove_peer(remote)
            for future in peer.pending.values():
                if not future.done():
                    future.set_exception(RequestFailed(f"peer disconnected: {reason}"))
            peer.gone.set()
            self._record(remote, reason)
            for callback in self.on_peer_disconnected:
                callback(remote, reason)
        if abort:
            conn.abort(reason)

    def _record(self, node_id: bytes | None, reason: str) -> None:
        self.disconnects.append((node_id, reason))
        log.info("peer %s: %s", short(node_id), reason)

    def punish(self, node_id: bytes, reason: str) -> None:
        """The node found the peer's data invalid (a forged signature, say): drop and
        ban it."""
        self.bans.ban(node_id, self._now(), self.settings.ban_seconds)
        peer = self.peers.get(node_id)
        if peer is not None:
            full = f"{reason} (banned for {self.settings.ban_seconds:g} s)"
            self._unregister(peer.conn, peer, full, abort=False)
            self._spawn(peer.conn.close(full))  # GOODBYE first, then the socket

    # ------------------------------------------------------------------ messages

    def _dispatch(self, peer: Peer, message: Message) -> None:
        if type(message) is TxBatch:
            peer.txs_received += len(message.txs)
            fresh = self.gossip.received(peer.node_id, message.txs)
            if fresh and self.on_txs is not None:
                self.on_txs(peer.node_id, fresh)
        elif type(message) is ConsensusMessage:
            if self.on_consensus is not None:
                self.on_consensus(peer.node_id, message.body)
        elif type(message) is Ping:
            peer.conn.send(Pong(message.nonce))
        elif type(message) is Pong:
            pass  # receiving it refreshed last_received
        elif type(message) is Request:
            self._serve(peer, message)
        elif type(message) is Response:
            future = peer.pending.pop(message.request_id, None)
            if future is not None and not future.done():  # else: answered after we gave up
                if message.error:
                    future.set_exception(RequestFailed(f"peer answered: {message.error}"))
                else:
                    future.set_result(message.body)
        elif type(message) is PexRequest:
            self._answer_pex(peer)
        elif type(message) is PexAddresses:
            self._learn_addresses(peer, message)
        elif type(message) is Goodbye:
            raise PeerGone(f"peer said goodbye: {message.reason}")
        else:  # Hello
            raise ProtocolViolation(f"unexpected {type(message).__name__} after HELLO")

    def _answer_pex(self, peer: Peer) -> None:
        now = self._now()
        if now - peer.pex_answered_at < self.settings.pex_interval / 2:
            return  # asked too often: ignore rather than amplify
        peer.pex_answered_at = now
        known = [p.address for p in self.peers.values()
                 if p.address is not None and p is not peer]
        known += self.book.sample(MAX_PEX_ADDRESSES, self.rng)
        unique = {a.node_id: a for a in known if a.node_id != peer.node_id}
        addresses = [str(a) for a in list(unique.values())[:MAX_PEX_ADDRESSES]]
        peer.conn.send(PexAddresses(tuple(addresses)))

    def _learn_addresses(self, peer: Peer, message: PexAddresses) -> None:
        if not peer.pex_requested:
            raise ProtocolViolation("peer addresses sent without being asked")
        peer.pex_requested = False
        for text in message.addresses:
            try:
                address = PeerAddress.parse(text)
            except LocalError:
                continue  # one bad entry does not spoil the rest
            # Only new ids: a peer must not redirect the address of a node we know
            # (it would point our dials, and our view of that node, at itself).
            if (address.node_id != self.node_id and address.node_id not in self.peers
                    and not self._is_persistent(address.node_id)
                    and self.book.get(address.node_id) is None):
                self.book.add(address)

    def _serve(self, peer: Peer, request: Request) -> None:
        handler = self.request_handlers.get(request.method)
        if handler is None:
            peer.conn.send(Response(request.request_id, f"unknown method {request.method!r}", b""))
            return
        if peer.requests_in_flight >= self.settings.max_requests_in_flight:
            peer.conn.send(Response(request.request_id, "busy: too many requests in flight", b""))
            return
        peer.requests_in_flight += 1
        self._spawn(self._answer(peer, handler, request))

    async def _answer(self, peer: Peer, handler: RequestHandler, request: Request) -> None:
        try:
            body = await handler(peer.node_id, request.body)
            response = Response(request.request_id, "", body)
        except RequestFailed as exc:
            response = Response(request.request_id, str(exc)[:256], b"")
        finally:
            peer.requests_in_flight -= 1
        peer.conn.send(response)

    # ------------------------------------------------------------------ the node's API

    def send(self, node_id: bytes, body: bytes) -> bool:
        """Send a consensus message to one peer; False if it is not connected."""
        peer = self.peers.get(node_id)
        return peer is not None and peer.conn.send(ConsensusMessage(body))

    def broadcast(self, body: bytes, *, validators_only: bool = False) -> int:
        """Send a consensus message to every peer (or every validator peer); returns
        how many links it was queued on. Encoded once for all of them."""
        frame = encode_message(ConsensusMessage(body))
        sent = 0
        for peer in list(self.peers.values()):
            if (not validators_only or peer.is_validator) and peer.conn.send_encoded(frame):
                sent += 1
        return sent

    async def request(self, node_id: bytes, method: str, body: bytes,
                      timeout: float | None = None) -> bytes:
        """Ask one peer; returns its answer or raises :class:`RequestFailed`."""
        peer = self.peers.get(node_id)
        if peer is None:
            raise RequestFailed(f"node {short(node_id)} is not connected")
        request_id = next(peer.request_ids)
        future: asyncio.Future[bytes] = asyncio.get_running_loop().create_future()
        peer.pending[request_id] = future
        wait = self.settings.request_timeout if timeout is None else timeout
        try:
            if not peer.conn.send(Request(request_id, method, body)):
                raise RequestFailed(f"node {short(node_id)} is disconnecting")
            async with asyncio.timeout(wait):
                return await future
        except TimeoutError:
            raise RequestFailed(f"no answer to {method!r} within {wait:g} s") from None
        finally:
            peer.pending.pop(request_id, None)

    def gossip_txs(self, txs: list[tuple[bytes, bytes]], origin: bytes | None = None) -> None:
        """Spread (hash, encoded tx) pairs to every peer that lacks them, except
        ``origin``. Batched: everything queued in one loop iteration goes out as one
        TxBatch per peer."""
        self.gossip.publish(txs, origin)
        self._schedule_flush()

    def gossip_txs_to(self, node_id: bytes, txs: list[tuple[bytes, bytes]]) -> None:
        """Send (hash, encoded tx) pairs to one peer, skipping what it has."""
        self.gossip.publish_to(node_id, txs)
        self._schedule_flush()

    def _schedule_flush(self) -> None:
        if not self._flush_scheduled:
            self._flush_scheduled = True
            delay = self.settings.gossip_delay
            loop = asyncio.get_running_loop()
            if delay > 0:
                loop.call_later(delay, self._flush_gossip)
            else:
                loop.call_soon(self._flush_gossip)

    def _flush_gossip(self) -> None:
        self._flush_scheduled = False
        limit = self.settings.gossip_batch_bytes
        for node_id in self.gossip.pending_peers():
            txs = self.gossip.take(node_id)
            peer = self.peers.get(node_id)
            if peer is None:
                continue
            batch: list[bytes] = []
            size = 0
            for raw in txs:
                if batch and (size + len(raw) > limit or len(batch) >= MAX_TX_BATCH):
                    self._send_batch(peer, batch)
                    batch, size = [], 0
                batch.append(raw)
                size += len(raw) + 5
            if batch:
                self._send_batch(peer, batch)

    def _send_batch(self, peer: Peer, batch: list[bytes]) -> None:
        if peer.conn.send(TxBatch(tuple(batch))):
            peer.txs_sent += len(batch)

    # ------------------------------------------------------------------ upkeep

    async def _maintain(self) -> None:
        """Ping peers, drop silent ones, fill outbound slots from the address book, and
        ask for more addresses now and then."""
        s = self.settings
        period = max(0.01, min(s.ping_interval, s.peer_timeout / 2))
        nonce = itertools.count(1)
        last_pex = float("-inf")
        while not self._stopping.is_set():
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(period):
                    await self._stopping.wait()
            now = self._now()
            self.bans.prune(now)
            for peer in list(self.peers.values()):
                if now - peer.last_received > s.peer_timeout:
                    reason = f"peer silent for {s.peer_timeout:g} s (dead or half-open)"
                    self._unregister(peer.conn, peer, reason)
                else:
                    peer.conn.send(Ping(next(nonce)))
            self._fill_outbound()
            if s.pex and now - last_pex >= s.pex_interval and self.peers:
                last_pex = now
                peer = self.rng.choice(list(self.peers.values()))
                if not peer.pex_requested:
                    peer.pex_requested = True
                    peer.conn.send(PexRequest())

    def _fill_outbound(self) -> None:
        s = self.settings
        outbound = sum(1 for p in self.peers.values() if p.outbound) + len(self._dialling)
        if outbound >= s.max_outbound:
            return
        now = self._now()
        exclude = set(self.peers) | self._dialling | {self.node_id}
        exclude |= {a.node_id for a in self.persistent}  # their own loops dial them
        for address in self.book.candidates(exclude, s.max_outbound - outbound, self.rng):
            if not self.bans.is_banned(address.node_id, now):
                self._spawn(self._dial_and_run(address))
