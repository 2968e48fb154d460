"""The RPC listener (aiohttp): JSON-RPC over HTTP POST at ``/`` and over WebSocket at
``/websocket``; other parts of the node mount their pages on it (``/metrics``, later
``/explorer/``) through :meth:`RPCServer.mount` before it starts.

Bounds: connections in all and per address (``max_connections``,
``max_connections_per_ip``; loopback is not capped per address), answered 503 with the
reason at accept (:class:`ConnectionGate`); a connection idle — or dribbling a
request's headers — for ``idle_timeout_ms`` is closed; request bodies
(``max_body_bytes``; aiohttp answers 413 above it, and a body that cannot be read is a
400); batch length, answer size and the work one turn of the loop may do (the
dispatcher); an HTTP answer the client does not take within ``write_timeout_ms`` is cut,
and answers waiting on slow clients hold at most ``max_unsent_bytes`` node-wide;
WebSocket clients per node and per address (``ws_max_clients``,
``ws_max_clients_per_ip``, loopback not capped per address; one more is answered 503
before the upgrade), subscriptions per client and node-wide (the hub's), and a client
with no subscriptions that sends no request for ``ws_idle_timeout_ms`` is closed (1000,
with the reason).

Each WebSocket client has one writer task and an outgoing queue that nothing else ever
waits on. The writer yields to the loop after each message, so no client's burst holds
the loop, and its socket's kernel send buffer is capped at ``WS_SEND_BUFFER``: with
aiohttp's flow control (every ``WS_SEND_BUFFER`` written, the writer waits while the
transport holds over 64 KiB), a client that stops reading has a few hundred KiB
written for it before its writer stops, so what a crowd of non-readers costs the node
is bounded by their number, not by the kernel's buffer autotuning (about 3 MB each on
Linux). Notifications are counted against ``ws_queue``: a client that still has that
many messages unsent when a new block's notifications arrive has fallen behind and is
closed with code 1008 and the reason in the close frame (one block's notifications are
always taken whole, so a reader that keeps up survives a block of thousands of
transactions). Answers to the client's own requests are bounded differently: with more
than ``ANSWER_BYTES_AHEAD`` of them unsent, the client's next request is not read
(TCP pushes back) until they drain, for at most a ping interval, after which it is
dropped too. A closing client gets ``CLOSE_GRACE`` to read the rest and the close frame;
then its socket is cut, so a client that reads nothing — its kernel buffers full — never
holds a socket, a task or memory. Pings every ``ws_ping_interval_ms`` (aiohttp's
heartbeat) find dead connections: no pong within half an interval closes one. No
per-message compression (it would be paid per client for every notification). Stop
closes every client with 1001 (going away), bounded by ``STOP_GRACE``. CORS is off
unless ``cors_origins`` names origins (or ``*``).
"""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
import logging
import socket
from collections import deque
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

from aiohttp import WSCloseCode, WSMsgType, web

from p2p.policy import split_host_port

from .context import RPCContext
from .protocol import Dispatcher, Observer
from .subscriptions import Hub, Notes, Subscription

log = logging.getLogger("agora.rpc")

#: How long a closing WebSocket client has to read the rest and the close frame
#: before its socket is cut.
CLOSE_GRACE = 2.0
#: How long stop waits for clients to answer their close frames before cutting them.
STOP_GRACE = 1.0
#: The most one answer over WebSocket may hold (a batch's included): the endpoint is for
#: subscriptions and light queries; big reads go over HTTP, whose answers are cut when
#: not taken. 500 clients that never read then hold at most ~0.5 GB between them.
WS_MAX_ANSWER = 1 << 20
#: HTTP answers up to this size are handed to aiohttp whole (they fit a socket buffer);
#: larger ones are written under write_timeout_ms and counted in unsent_bytes.
_SMALL_ANSWER = 64 * 1024
#: Bytes of unsent answers a client may have before its next request waits.
ANSWER_BYTES_AHEAD = 1 << 20
#: SO_SNDBUF of a WebSocket client's socket (Linux doubles it for its bookkeeping):
#: bounds what the node writes for a client that stops reading, and a client's
#: notifications to about this much per round trip (1.3 MB/s at 100 ms).
WS_SEND_BUFFER = 64 << 10


def _is_loopback(host: str) -> bool:
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


class ConnectionGate:
    """Caps the listener's connections, in all and per peer address, at accept: one
    over a cap is answered 503 with the reason and closed before anything is read."""

    def __init__(self, server: web.Server, max_total: int, max_per_ip: int) -> None:
        self.max_total = max_total
        self.max_per_ip = max_per_ip
        self.by_ip: dict[str, int] = {}
        self.refused = 0
        self._counted: dict[Any, str] = {}
        made, lost = server.connection_made, server.connection_lost

        def connection_made(handler: Any, transport: asyncio.Transport) -> None:
            made(handler, transport)
            peer = transport.get_extra_info("peername")
            ip = str(peer[0]) if isinstance(peer, tuple) and peer else ""
            reason = ""
            if len(self._counted) >= self.max_total:
                reason = f"this node serves at most {self.max_total} RPC connections"
            elif not _is_loopback(ip) and self.by_ip.get(ip, 0) >= self.max_per_ip:
                reason = (f"this node serves at most {self.max_per_ip} RPC connections "
                          "from one address")
            if reason:
                self.refused += 1
                body = (reason + "\n").encode()
                transport.write(b"HTTP/1.1 503 Service Unavailable\r\nConnection: close\r\n"
                                b"Content-Type: text/plain\r\nContent-Length: "
                                + str(len(body)).encode() + b"\r\n\r\n" + body)
                transport.close()
                return
            self._counted[handler] = ip
            self.by_ip[ip] = self.by_ip.get(ip, 0) + 1

        def connection_lost(handler: Any, exc: BaseException | None = None) -> None:
            lost(handler, exc)
            ip = self._counted.pop(handler, None)
            if ip is not None:
                left = self.by_ip[ip] - 1
                if left:
                    self.by_ip[ip] = left
                else:
                    del self.by_ip[ip]

        server.connection_made = connection_made  # type: ignore[method-assign]
        server.connection_lost = connection_lost  # type: ignore[method-assign]

    def __len__(self) -> int:
        return len(self._counted)


@dataclass(frozen=True)
class ServerSettings:
    listen: str = "127.0.0.1:26657"
    max_body_bytes: int = 1 << 20
    max_batch: int = 100
    cors_origins: tuple[str, ...] = ()
    ws_max_clients: int = 500
    ws_max_subscriptions: int = 20
    ws_queue: int = 1_000
    ws_ping_interval_ms: int = 20_000
    #: WebSocket clients from one address (loopback, the operator's own tools, is not
    #: capped), and how long one with no subscriptions may go without a request.
    ws_max_clients_per_ip: int = 32
    ws_idle_timeout_ms: int = 60_000
    #: Connections at once (HTTP and WebSocket), and from one address (loopback, the
    #: operator's own tools, is not capped per address).
    max_connections: int = 1_000
    max_connections_per_ip: int = 64
    #: A connection with no request in progress for this long is closed (this also
    #: ends one that dribbles a request's headers).
    idle_timeout_ms: int = 15_000
    #: An HTTP answer the client has not taken in this long is cut.
    write_timeout_ms: int = 10_000
    #: HTTP answer bytes waiting on slow clients, node-wide; past it, new answers are
    #: refused with a short error until they drain.
    max_unsent_bytes: int = 256 << 20


class _WSContext:
    """The node's context plus this connection (what subscription methods need)."""

    def __init__(self, base: RPCContext, hub: Hub, connection: WSConnection) -> None:
        self._base = base
        self.hub = hub
        self.connection = connection

    def __getattr__(self, name: str) -> Any:
        return getattr(self._base, name)


#: A queued item: an answer's text, or one block's results for one subscription.
_Item = str | tuple[str, Notes]
_NOTE_HEAD = '{"jsonrpc":"2.0","method":"subscription","params":{"subscription":"'


@dataclass(eq=False)
class WSConnection:
    """One client: its subscriptions and its outgoing queue, which one writer task
    empties. ``pending`` counts the notifications queued or being sent; answers are
    counted in bytes, ``answer_bytes``."""

    ws: web.WebSocketResponse
    transport: asyncio.Transport | None
    queue_limit: int
    on_drop: Callable[[WSConnection, str], None]
    #: The client's address ("" if unknown), and loop time of its last request.
    ip: str = ""
    last_request: float = 0.0
    idle_timer: asyncio.TimerHandle | None = None
    subscriptions: dict[str, Subscription] = field(default_factory=dict)
    queue: deque[_Item] = field(default_factory=deque)
    pending: int = 0
    #: Bytes of answers queued; above ANSWER_BYTES_AHEAD the next request waits.
    answer_bytes: int = 0
    closed: bool = False
    wake: asyncio.Event = field(default_factory=asyncio.Event)
    answers_drained: asyncio.Event = field(default_factory=asyncio.Event)
    closer: asyncio.Task | None = None

    def notify(self, items: list[tuple[str, Notes]]) -> None:
        """One block's notifications. Taken whole unless the client still has
        ``queue_limit`` notifications unsent: then it has fallen behind and is dropped."""
        if self.closed:
            return
        if self.pending >= self.queue_limit:
            self.on_drop(self, f"too slow: {self.pending} notifications waiting unread "
                               f"(the limit is {self.queue_limit}); reconnect and "
                               "subscribe again")
            return
        for item in items:
            self.queue.append(item)
            self.pending += len(item[1])
        self.wake.set()

    def answer(self, text: str) -> None:
        """Queue an answer (bounded by the reader waiting, not by dropping)."""
        if self.closed:
            return
        self.queue.append(text)
        self.answer_bytes += len(text)
        if self.answer_bytes > ANSWER_BYTES_AHEAD:
            self.answers_drained.clear()
        self.wake.set()

    def shut(self) -> None:
        """No more sending: frees the queue, wakes the writer and the reader."""
        self.closed = True
        self.queue.clear()
        self.wake.set()
        self.answers_drained.set()


class RPCServer:
    def __init__(self, ctx: RPCContext, dispatcher: Dispatcher, hub: Hub,
                 settings: ServerSettings, *, observer: Observer | None = None) -> None:
        self.ctx = ctx
        self.dispatcher = dispatcher
        self.hub = hub
        self.settings = settings
        self.observer = observer
        self.connections: set[WSConnection] = set()
        #: WebSocket clients by address (loopback's too, though not capped), those
        #: upgrading included.
        self.ws_by_ip: dict[str, int] = {}
        self._ws_upgrading = 0
        #: Clients dropped for falling behind (metrics read it).
        self.dropped_slow = 0
        #: HTTP answer bytes not yet taken by their clients, and clients cut for not
        #: taking theirs within write_timeout_ms.
        self.unsent_bytes = 0
        self.slow_http_cut = 0
        self.gate: ConnectionGate | None = None
        self._mounts: list[tuple[str, str, Callable[[web.Request], Awaitable[web.StreamResponse]]]] = []
        self._runner: web.AppRunner | None = None
        self._tasks: set[asyncio.Task] = set()
        #: Connections whose socket is cut if still open after CLOSE_GRACE.
        self._reapers: dict[WSConnection, asyncio.TimerHandle] = {}
        self._stopping = False

    def mount(self, method: str, path: str,
              handler: Callable[[web.Request], Awaitable[web.StreamResponse]]) -> None:
        """Serve ``handler`` at ``path`` too (call before :meth:`start`)."""
        self._mounts.append((method, path, handler))

    async def start(self) -> None:
        s = self.settings
        middlewares = [self._cors] if s.cors_origins else []
        app = web.Application(client_max_size=s.max_body_bytes, middlewares=middlewares)
        app.router.add_post("/", self._http)
        app.router.add_get("/websocket", self._websocket)
        for method, path, handler in self._mounts:
            app.router.add_route(method, path, handler)
        self._runner = web.AppRunner(app, access_log=None, handle_signals=False,
                                     shutdown_timeout=1.0,
                                     keepalive_timeout=s.idle_timeout_ms / 1000)
        await self._runner.setup()
        assert self._runner.server is not None
        self.gate = ConnectionGate(self._runner.server, s.max_connections,
                                   s.max_connections_per_ip)
        host, port = split_host_port(s.listen)
        site = web.TCPSite(self._runner, host, port)
        try:
            await site.start()
        except BaseException:
            await self._runner.cleanup()
            self._runner = None
            raise

    async def stop(self) -> None:
        """Close every WebSocket (1001, going away) and the listener. Bounded: a
        client that has not answered its close frame within STOP_GRACE is cut."""
        self._stopping = True
        connections = list(self.connections)
        for conn in connections:
            self._drop(conn, "the node is stopping", code=WSCloseCode.GOING_AWAY)
        closers = [conn.closer for conn in connections if conn.closer is not None]
        if closers:  # clients that read answer the close at once
            await asyncio.wait(closers, timeout=STOP_GRACE)
        for conn in list(self._reapers):  # cut now whoever has not finished
            self._reap(conn)
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None
        for task in list(self._tasks):
            task.cancel()

    # ------------------------------------------------------------ HTTP

    def _allowed_origin(self, request: web.BaseRequest) -> str:
        origins = self.settings.cors_origins
        origin = request.headers.get("Origin", "")
        return "*" if "*" in origins else (origin if origin in origins else "")

    @web.middleware
    async def _cors(self, request: web.Request, handler: Any) -> web.StreamResponse:
        allowed = self._allowed_origin(request)
        if request.method == "OPTIONS":
            response: web.StreamResponse = web.Response(status=204)
        else:
            try:
                response = await handler(request)
            except web.HTTPException as exc:
                # A 413, 404 or 405 carries the headers too, so a browser shows the
                # client the real refusal, not a CORS failure.
                self._cors_headers(exc.headers, allowed)
                raise
        if not response.prepared:
            self._cors_headers(response.headers, allowed)
        return response

    @staticmethod
    def _cors_headers(headers: Any, allowed: str) -> None:
        if allowed:
            headers["Access-Control-Allow-Origin"] = allowed
            headers["Access-Control-Allow-Methods"] = "POST, GET, OPTIONS"
            headers["Access-Control-Allow-Headers"] = "Content-Type"
            if allowed != "*":
                headers["Vary"] = "Origin"

    async def _http(self, request: web.Request) -> web.StreamResponse:
        try:
            body = await request.read()  # over max_body_bytes: aiohttp answers 413
        except web.HTTPException:
            raise
        except Exception as exc:  # noqa: BLE001 - a body that cannot be read (bad gzip,
            # a broken chunk): the client's fault, told in one line, never a 500
            raise web.HTTPBadRequest(text=f"cannot read the request body: {exc}\n") from None
        answer = await self.dispatcher.handle_text(body, self.ctx)
        if answer is None:
            return web.Response(status=204)
        data = answer.encode()
        if len(data) <= _SMALL_ANSWER:
            # Most answers: the socket buffer takes them at once.
            return web.Response(body=data, content_type="application/json")
        s = self.settings
        if self.unsent_bytes + len(data) > s.max_unsent_bytes:
            data = (b'{"jsonrpc":"2.0","error":{"code":-32005,"message":"Limit reached",'
                    b'"data":"this node is busy sending answers to slow clients: try '
                    b'again shortly"},"id":null}')
        response = web.StreamResponse(headers={"Content-Type": "application/json"})
        response.content_length = len(data)
        if s.cors_origins:
            self._cors_headers(response.headers, self._allowed_origin(request))
        await response.prepare(request)
        # Counted until the client has taken it (or is cut): a client that never reads
        # holds these bytes for write_timeout_ms at most.
        self.unsent_bytes += len(data)
        try:
            # In this task (no new one): the answer goes out before anything the
            # request scheduled (a block proposal) runs.
            async with asyncio.timeout(s.write_timeout_ms / 1000):
                await response.write(data)
                await response.write_eof()
        except TimeoutError:
            self.slow_http_cut += 1
            if request.transport is not None:
                request.transport.abort()
        finally:
            self.unsent_bytes -= len(data)
        return response

    # ------------------------------------------------------------ WebSocket

    async def _websocket(self, request: web.Request) -> web.StreamResponse:
        s = self.settings
        if self._stopping:
            return web.Response(status=503, text="the node is stopping\n")
        if len(self.connections) + self._ws_upgrading >= s.ws_max_clients:
            return web.Response(status=503, text=f"this node serves at most "
                                                 f"{s.ws_max_clients} WebSocket clients\n")
        ip = self._ws_client_ip(request)
        if not _is_loopback(ip) and self.ws_by_ip.get(ip, 0) >= s.ws_max_clients_per_ip:
            return web.Response(status=503, text=f"this node serves at most "
                                                 f"{s.ws_max_clients_per_ip} WebSocket "
                                                 "clients from one address\n")
        transport = request.transport
        sock = transport.get_extra_info("socket") if transport is not None else None
        if sock is not None:
            with contextlib.suppress(OSError):
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, WS_SEND_BUFFER)
        # No per-message compression: every notification would be compressed once per
        # client (and each client would hold a compressor's memory).
        # The writer checks every WS_SEND_BUFFER it writes whether the transport holds
        # more than its 64 KiB high-water mark, and waits for it to drain if so.
        ws = web.WebSocketResponse(heartbeat=s.ws_ping_interval_ms / 1000,
                                   max_msg_size=s.max_body_bytes, compress=False,
                                   writer_limit=WS_SEND_BUFFER)
        # Both slots are held through the upgrade, so clients arriving at once cannot
        # all pass the checks above.
        self.ws_by_ip[ip] = self.ws_by_ip.get(ip, 0) + 1
        self._ws_upgrading += 1
        try:
            await ws.prepare(request)
        except BaseException:
            self._release_ip(ip)
            raise
        finally:
            self._ws_upgrading -= 1
        loop = asyncio.get_running_loop()
        conn = WSConnection(ws, transport if isinstance(transport, asyncio.Transport) else None,
                            s.ws_queue, self._drop, ip=ip, last_request=loop.time())
        conn.answers_drained.set()
        self.connections.add(conn)
        conn.idle_timer = loop.call_later(s.ws_idle_timeout_ms / 1000, self._idle, conn)
        ctx = _WSContext(self.ctx, self.hub, conn)
        writer = asyncio.create_task(self._write(conn))
        self._tasks.add(writer)
        writer.add_done_callback(self._tasks.discard)
        try:
            async for message in ws:
                if message.type == WSMsgType.TEXT or message.type == WSMsgType.BINARY:
                    conn.last_request = loop.time()
                    answer = await self.dispatcher.handle_text(
                        message.data, ctx, websocket=True, max_response_bytes=WS_MAX_ANSWER)
                    if answer is not None:
                        conn.answer(answer)
                    if not conn.answers_drained.is_set():
                        # The client is not reading its answers: stop reading its
                        # requests (TCP pushes back) for at most one ping interval.
                        try:
                            async with asyncio.timeout(max(s.ws_ping_interval_ms / 1000,
                                                           CLOSE_GRACE)):
                                await conn.answers_drained.wait()
                        except TimeoutError:
                            self._drop(conn, f"too slow: {conn.answer_bytes} bytes of "
                                             "answers unread")
                if conn.closed:
                    break
        finally:
            self._forget(conn)
            conn.shut()
            if conn.closer is not None:
                # Dropped: let the close frame (and its reason) go out, bounded.
                await asyncio.wait([conn.closer], timeout=CLOSE_GRACE + 0.5)
            writer.cancel()  # it may wait on a client that reads nothing
            self._reap_later(conn)
        return ws

    async def _write(self, conn: WSConnection) -> None:
        ws = conn.ws
        queue = conn.queue
        try:
            while not conn.closed:
                if not queue:
                    conn.wake.clear()
                    await conn.wake.wait()
                    continue
                item = queue.popleft()
                if isinstance(item, str):
                    await ws.send_str(item)
                    conn.answer_bytes -= len(item)
                    if conn.answer_bytes <= ANSWER_BYTES_AHEAD:
                        conn.answers_drained.set()
                    await asyncio.sleep(0)  # let the loop (and other writers) run
                    continue
                sub_id, notes = item
                head = _NOTE_HEAD + sub_id + '","result":'
                for note in notes:
                    if conn.closed:
                        return
                    text = note if isinstance(note, str) else note.text()
                    await ws.send_str(head + text + "}}")
                    conn.pending -= 1
                    await asyncio.sleep(0)
        except (ConnectionError, RuntimeError):
            pass  # the client went away; the reader ends too
        except Exception:  # our bug (a result that cannot be rendered): say so, end
            log.exception("WebSocket writer failed")
            self._drop(conn, "internal error", code=WSCloseCode.INTERNAL_ERROR)

    def _ws_client_ip(self, request: web.Request) -> str:
        """The WebSocket client's address, as the socket says ("" if unknown)."""
        transport = request.transport
        peer = transport.get_extra_info("peername") if transport is not None else None
        return str(peer[0]) if isinstance(peer, tuple) and peer else ""

    def _release_ip(self, ip: str) -> None:
        left = self.ws_by_ip.get(ip, 0) - 1
        if left > 0:
            self.ws_by_ip[ip] = left
        else:
            self.ws_by_ip.pop(ip, None)

    def _idle(self, conn: WSConnection) -> None:
        """Close ``conn`` if it has no subscriptions and has sent no request for
        ``ws_idle_timeout_ms``; otherwise look again when it could be."""
        conn.idle_timer = None
        if conn.closed:
            return
        idle = self.settings.ws_idle_timeout_ms / 1000
        loop = asyncio.get_running_loop()
        left = conn.last_request + idle - loop.time()
        if conn.subscriptions or left > 0:
            conn.idle_timer = loop.call_later(idle if conn.subscriptions else left,
                                              self._idle, conn)
            return
        self._drop(conn, f"idle: no subscriptions and no request for {idle:g} s",
                   code=WSCloseCode.OK)

    def _forget(self, conn: WSConnection) -> None:
        if conn in self.connections:
            self.connections.discard(conn)
            self._release_ip(conn.ip)
            if conn.idle_timer is not None:
                conn.idle_timer.cancel()
                conn.idle_timer = None
            self.hub.remove_all(conn)

    def _drop(self, conn: WSConnection, reason: str,
              code: int = WSCloseCode.POLICY_VIOLATION) -> None:
        """Close ``conn`` now, saying why; never waits on the client."""
        if conn.closed:
            return
        if code == WSCloseCode.POLICY_VIOLATION:
            self.dropped_slow += 1
            log.info("dropping a WebSocket client: %s", reason)
        self._forget(conn)
        conn.shut()
        task = asyncio.get_running_loop().create_task(self._close(conn, reason, code))
        conn.closer = task
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        self._reap_later(conn)

    async def _close(self, conn: WSConnection, reason: str, code: int) -> None:
        # The close frame carries the reason (at most 123 bytes by RFC 6455), queued
        # behind what the client has not read yet.
        try:
            async with asyncio.timeout(CLOSE_GRACE):
                await conn.ws.close(code=code, message=reason.encode()[:123])
        except (TimeoutError, ConnectionError, RuntimeError):
            pass

    def _reap_later(self, conn: WSConnection) -> None:
        """After CLOSE_GRACE, cut the socket if it is still open or still holds
        unsent bytes: closing a transport whose client reads nothing would wait to
        flush for ever."""
        if conn not in self._reapers and not _going(conn.transport):
            self._reapers[conn] = asyncio.get_running_loop().call_later(
                CLOSE_GRACE, self._reap, conn)

    def _reap(self, conn: WSConnection) -> None:
        handle = self._reapers.pop(conn, None)
        if handle is not None:
            handle.cancel()
        if not _going(conn.transport):
            conn.transport.abort()  # type: ignore[union-attr]


def _going(transport: asyncio.Transport | None) -> bool:
    """Closed or closing with nothing left to send: the socket goes by itself."""
    return transport is None or (transport.is_closing()
                                 and not transport.get_write_buffer_size())
