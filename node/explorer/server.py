"""Serving the explorer: mounted on a node's RPC listener (``/explorer/`` beside ``/``
and ``/websocket``), or on its own listener by ``agora explorer --node URL --listen
ADDR``, where ``/websocket`` relays the browser's subscriptions to the node's own
WebSocket endpoint (so a page's live updates work whatever the browser can reach).

The relay is bounded: at most ``max_clients`` browsers at once (one more is answered
503), each relayed message at most ``MAX_MESSAGE`` bytes, and a browser's messages are
forwarded one at a time (aiohttp's flow control pushes back on a side that does not
read). It adds no subscription of its own: the node's limits apply to each browser.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

import aiohttp
from aiohttp import WSCloseCode, WSMsgType, web

from p2p.policy import split_host_port

from .pages import BASE, Explorer
from .source import HttpSource, LocalSource

log = logging.getLogger("agora.explorer")

#: Largest message relayed either way (a block's notifications come one per message).
MAX_MESSAGE = 1 << 20
#: Browsers relayed at once by a stand-alone explorer, and from one address.
MAX_CLIENTS = 200
MAX_PER_IP = 16


def names_near(home: Path | None) -> dict[str, str]:
    """Account names a reader may search for: a localnet's demo accounts (from the
    ``localnet.json`` in or beside the home) and the wallet keystore's names there."""
    if home is None:
        return {}
    from ..localnet import manifest_accounts
    from ..wallet.keystore import Keystore

    names = {**manifest_accounts(home.parent), **manifest_accounts(home)}
    for key in Keystore(home / "keys").list():  # unreadable key files are left out
        names.setdefault(key.name, key.address_text)
    return names


def mount_on_node(mount: Callable[[str, str, Any], None],
                  handle_text: Callable[[str], Any], *, home: Path | None = None,
                  label: str = "") -> Explorer:
    """Serve the explorer on a node's RPC listener (call before it starts). The pages
    read the node's public API through its own dispatcher."""
    explorer = Explorer(LocalSource(handle_text), names=names_near(home), node_label=label)
    for method, path, handler in explorer.routes():
        mount(method, path, handler)
    return explorer


class Relay:
    """``/websocket`` of a stand-alone explorer: each browser's connection relayed to
    the node's WebSocket endpoint, at most ``max_clients`` at once and ``max_per_ip``
    from one address (every relayed client reaches the node from this explorer's
    address, so the node's own per-address cap cannot tell them apart)."""

    def __init__(self, node_url: str, max_clients: int = MAX_CLIENTS,
                 max_per_ip: int = MAX_PER_IP) -> None:
        base = node_url.rstrip("/")
        self.upstream = ("ws" + base[4:] if base.startswith("http") else base) + "/websocket"
        self.max_clients = max_clients
        self.max_per_ip = max_per_ip
        self.clients = 0
        self.by_ip: dict[str, int] = {}
        #: Set while no browser is relayed.
        self.idle = asyncio.Event()
        self.idle.set()
        self._session: aiohttp.ClientSession | None = None

    async def handle(self, request: web.Request) -> web.StreamResponse:
        ip = request.remote or ""
        if self.clients >= self.max_clients:
            raise web.HTTPServiceUnavailable(
                text=f"this explorer relays at most {self.max_clients} live pages\n")
        if self.by_ip.get(ip, 0) >= self.max_per_ip:
            raise web.HTTPServiceUnavailable(
                text=f"this explorer relays at most {self.max_per_ip} live pages to one "
                     "address\n")
        self.clients += 1
        self.idle.clear()
        self.by_ip[ip] = self.by_ip.get(ip, 0) + 1
        try:
            return await self._relay(request)
        finally:
            self.clients -= 1
            if not self.clients:
                self.idle.set()
            self.by_ip[ip] -= 1
            if not self.by_ip[ip]:
                del self.by_ip[ip]

    async def _relay(self, request: web.Request) -> web.StreamResponse:
        # The browser's side first: a handshake that fails leaves nothing open upstream.
        browser = web.WebSocketResponse(max_msg_size=MAX_MESSAGE, heartbeat=30.0)
        try:
            await browser.prepare(request)
        except (ConnectionError, OSError, RuntimeError, aiohttp.ClientError) as exc:
            log.debug("a live page left during its handshake: %s", exc)
            return browser
        if self._session is None:
            self._session = aiohttp.ClientSession(
                connector=aiohttp.TCPConnector(limit=self.max_clients))
        try:
            upstream = await self._session.ws_connect(
                self.upstream, max_msg_size=MAX_MESSAGE, heartbeat=30.0,
                timeout=aiohttp.ClientWSTimeout(ws_receive=None, ws_close=5.0))
        except (aiohttp.ClientError, OSError, TimeoutError) as exc:
            await browser.close(code=WSCloseCode.TRY_AGAIN_LATER,
                                message=f"the node's WebSocket did not answer: {exc}"[:120]
                                .encode())
            return browser

        async def pump(src: Any, dst: Any) -> None:
            async for msg in src:
                if msg.type == WSMsgType.TEXT:
                    await dst.send_str(msg.data)
                elif msg.type in (WSMsgType.ERROR, WSMsgType.CLOSE):
                    break

        up = asyncio.ensure_future(pump(browser, upstream))
        down = asyncio.ensure_future(pump(upstream, browser))
        try:
            await asyncio.wait([up, down], return_when=asyncio.FIRST_COMPLETED)
        finally:
            for task in (up, down):
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError, Exception):
                    await task
            with contextlib.suppress(Exception):
                await upstream.close()
            with contextlib.suppress(Exception):
                await browser.close()
        return browser

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None


async def start_standalone(node_url: str, listen: str, *, home: Path | None = None
                           ) -> tuple[web.AppRunner, Explorer, Relay]:
    """``agora explorer``: the pages over ``node_url`` on ``listen``."""
    source = HttpSource(node_url)
    explorer = Explorer(source, names=names_near(home), node_label=node_url)
    relay = Relay(node_url)
    app = web.Application(client_max_size=64 * 1024)
    for method, path, handler in explorer.routes():
        app.router.add_route(method, path, handler)

    async def root(_: web.Request) -> web.StreamResponse:
        raise web.HTTPFound(BASE + "/")
    app.router.add_get("/", root)
    app.router.add_get("/websocket", relay.handle)
    runner = web.AppRunner(app, access_log=None, handle_signals=False, shutdown_timeout=1.0)
    await runner.setup()
    host, port = split_host_port(listen)
    try:
        await web.TCPSite(runner, host, port).start()
    except BaseException:
        await runner.cleanup()
        await source.close()
        raise
    return runner, explorer, relay


def resolve_node(url: str | None, home: Path | None) -> str:
    """``--node``, else $AGORA_NODE, else the first node of the localnet at ``--home``
    (or ./localnet), else the default RPC address."""
    url = url or os.environ.get("AGORA_NODE")
    if not url:
        for place in ([home] if home is not None else []) + [Path("localnet")]:
            try:
                url = json.loads((place / "localnet.json").read_text())["nodes"][0]["rpc"]
                break
            except (OSError, ValueError, KeyError, IndexError, TypeError):
                continue
    from ..wallet.session import DEFAULT_NODE

    url = url if isinstance(url, str) and url else DEFAULT_NODE
    return url if "://" in url else "http://" + url


def run_explorer(node_url: str | None, listen: str, *, home: str | Path | None = None,
                 echo: Callable[[str], None] = print) -> None:
    """Serve until Ctrl-C."""
    home_path = Path(home).expanduser() if home else None
    url = resolve_node(node_url, home_path)
    try:
        split_host_port(listen)
    except ValueError as exc:
        raise SystemExit(f"error: --listen {listen!r}: {exc}") from None

    async def main() -> None:
        try:
            runner, explorer, relay = await start_standalone(url, listen, home=home_path)
        except OSError as exc:
            raise SystemExit(f"error: cannot listen on {listen}: {exc.strerror or exc}") \
                from None
        node_url = url
        host, port = split_host_port(listen)
        echo(f"explorer for {node_url} at http://{host}:{port}{BASE}/ (Ctrl-C stops it)")
        try:
            await asyncio.Event().wait()
        finally:
            await runner.cleanup()
            await relay.close()
            await explorer.source.close()

    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(main())
