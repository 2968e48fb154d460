"""The RPC listener (aiohttp): JSON-RPC over HTTP POST at ``/`` and over WebSocket at
``/websocket``; other parts of the node mount their pages on it (``/metrics``, later
``/explorer/``) through :meth:`RPCServer.mount` before it starts.

Bounds: request bodies (``max_body_bytes``; aiohttp answers 413 above it), batch length
(the dispatcher), WebSocket clients per node (``ws_max_clients``; one more is answered
503 before the upgrade), subscriptions per client, and each client's outgoing queue
(``ws_queue``): a client that lets it fill is closed with code 1008 and a reason, so it
can never hold the node's memory or stall anyone. Pings every ``ws_ping_interval_ms``
find dead connections. CORS is off unless ``cors_origins`` names origins (or ``*``).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

from aiohttp import WSCloseCode, WSMsgType, web

from p2p.policy import split_host_port

from .context import RPCContext
from .protocol import Dispatcher, Observer
from .subscriptions import Hub, Subscription

log = logging.getLogger("agora.rpc")


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


class _WSContext:
    """The node's context plus this connection (what subscription methods need)."""

    def __init__(self, base: RPCContext, hub: Hub, connection: WSConnection) -> None:
        self._base = base
        self.hub = hub
        self.connection = connection

    def __getattr__(self, name: str) -> Any:
        return getattr(self._base, name)


@dataclass(eq=False)
class WSConnection:
    ws: web.WebSocketResponse
    transport: asyncio.BaseTransport | None
    queue_limit: int
    on_drop: Callable[[WSConnection, str], None]
    subscriptions: dict[str, Subscription] = field(default_factory=dict)
    queue: asyncio.Queue[str] = field(default_factory=asyncio.Queue)
    closed: bool = False

    def push(self, text: str) -> None:
        if self.closed:
            return
        if self.queue.qsize() >= self.queue_limit:
            self.on_drop(self, f"too slow: {self.queue_limit} messages waiting unread; "
                               "reconnect and subscribe again")
            return
        self.queue.put_nowait(text)


class RPCServer:
    def __init__(self, ctx: RPCContext, dispatcher: Dispatcher, hub: Hub,
                 settings: ServerSettings, *, observer: Observer | None = None) -> None:
        self.ctx = ctx
        self.dispatcher = dispatcher
        self.hub = hub
        self.settings = settings
        self.observer = observer
        self.connections: set[WSConnection] = set()
        #: Clients dropped for falling behind (metrics read it).
        self.dropped_slow = 0
        self._mounts: list[tuple[str, str, Callable[[web.Request], Awaitable[web.StreamResponse]]]] = []
        self._runner: web.AppRunner | None = None
        self._tasks: set[asyncio.Task] = set()

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
                                     shutdown_timeout=1.0)
        await self._runner.setup()
        host, port = split_host_port(s.listen)
        site = web.TCPSite(self._runner, host, port)
        try:
            await site.start()
        except BaseException:
            await self._runner.cleanup()
            self._runner = None
            raise

    async def stop(self) -> None:
        for conn in list(self.connections):
            self._drop(conn, "the node is stopping", code=WSCloseCode.GOING_AWAY)
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None
        for task in list(self._tasks):
            task.cancel()

    # ------------------------------------------------------------ HTTP

    @web.middleware
    async def _cors(self, request: web.Request, handler: Any) -> web.StreamResponse:
        origins = self.settings.cors_origins
        origin = request.headers.get("Origin", "")
        allowed = "*" if "*" in origins else (origin if origin in origins else "")
        if request.method == "OPTIONS":
            response: web.StreamResponse = web.Response(status=204)
        else:
            response = await handler(request)
        if allowed:
            response.headers["Access-Control-Allow-Origin"] = allowed
            response.headers["Access-Control-Allow-Methods"] = "POST, GET, OPTIONS"
            response.headers["Access-Control-Allow-Headers"] = "Content-Type"
            if allowed != "*":
                response.headers["Vary"] = "Origin"
        return response

    async def _http(self, request: web.Request) -> web.Response:
        body = await request.read()  # over max_body_bytes: aiohttp answers 413
        answer = await self.dispatcher.handle_text(body, self.ctx)
        if answer is None:
            return web.Response(status=204)
        return web.Response(text=answer, content_type="application/json")

    # ------------------------------------------------------------ WebSocket

    async def _websocket(self, request: web.Request) -> web.StreamResponse:
        s = self.settings
        if len(self.connections) >= s.ws_max_clients:
            return web.Response(status=503, text=f"this node serves at most "
                                                 f"{s.ws_max_clients} WebSocket clients\n")
        ws = web.WebSocketResponse(heartbeat=s.ws_ping_interval_ms / 1000,
                                   max_msg_size=s.max_body_bytes)
        await ws.prepare(request)
        conn = WSConnection(ws, request.transport, s.ws_queue, self._drop)
        self.connections.add(conn)
        ctx = _WSContext(self.ctx, self.hub, conn)
        writer = asyncio.create_task(self._write(conn))
        self._tasks.add(writer)
        writer.add_done_callback(self._tasks.discard)
        try:
            async for message in ws:
                if message.type == WSMsgType.TEXT or message.type == WSMsgType.BINARY:
                    answer = await self.dispatcher.handle_text(message.data, ctx, websocket=True)
                    if answer is not None:
                        conn.push(answer)
                if conn.closed:
                    break
        finally:
            self._forget(conn)
            if not conn.closed:
                conn.closed = True
                conn.queue.put_nowait("")  # wakes the writer to end
            try:
                await asyncio.wait_for(asyncio.shield(writer), 2.0)
            except (TimeoutError, asyncio.CancelledError):
                writer.cancel()
        return ws

    async def _write(self, conn: WSConnection) -> None:
        ws = conn.ws
        try:
            while True:
                text = await conn.queue.get()
                if conn.closed:
                    break
                await ws.send_str(text)
        except (ConnectionError, RuntimeError):
            pass  # the client went away; the reader ends too
        finally:
            conn.closed = True

    def _forget(self, conn: WSConnection) -> None:
        if conn in self.connections:
            self.connections.discard(conn)
            self.hub.remove_all(conn)

    def _drop(self, conn: WSConnection, reason: str,
              code: int = WSCloseCode.POLICY_VIOLATION) -> None:
        """Close ``conn`` now, saying why; never waits on the client."""
        if conn.closed:
            return
        conn.closed = True
        if code == WSCloseCode.POLICY_VIOLATION:
            self.dropped_slow += 1
            log.info("dropping a WebSocket client: %s", reason)
        self._forget(conn)
        conn.queue.put_nowait("")
        task = asyncio.get_running_loop().create_task(self._close(conn, reason, code))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _close(self, conn: WSConnection, reason: str, code: int) -> None:
        # The close frame carries the reason (at most 123 bytes by RFC 6455). A client
        # that reads nothing gets a bounded wait, then its socket is cut.
        try:
            await asyncio.wait_for(conn.ws.close(code=code, message=reason.encode()[:123]), 2.0)
        except (TimeoutError, ConnectionError, RuntimeError):
            pass
        finally:
            if conn.transport is not None and not conn.ws.closed:
                conn.transport.abort()  # type: ignore[attr-defined]
