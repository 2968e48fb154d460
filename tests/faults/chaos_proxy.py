"""A chaos TCP proxy for the fault tests: pure asyncio, no kernel tools.

Every directed link ``a -> b`` between validators gets its own listening port on
127.0.0.1 that forwards to ``b``'s real p2p port; node ``a``'s persistent peer ``b``
points at that port (see :mod:`faultnet`). So the proxy knows, for every TCP
connection, which pair of nodes it joins, whichever of the two dialled, and a rule per
unordered pair decides what happens to the bytes:

* ``delay(a, b, seconds, jitter)`` — every chunk is held that long (order is kept, as
  TCP keeps it);
* ``stall(a, b)`` — a black hole: connections stay open but nothing is forwarded (the
  bytes wait, as they would behind a dead route) until the rule is lifted; new
  connections hang too, so handshakes time out;
* ``cut(a, b)`` — existing connections are reset and new ones are closed at once;
* ``reset(a, b)`` — existing connections are reset once, new ones may come;
* ``partition(groups)`` — cut every pair that is not inside one group;
* ``heal()`` — every pair back to plain forwarding (stalled bytes flow again).

The proxy runs its own event loop in a daemon thread; its control methods are called
from the test (any thread) and take effect before they return.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import random
import threading
from collections.abc import Iterable
from dataclasses import dataclass, field

_CHUNK = 64 * 1024


@dataclass
class Rule:
    """What happens between one pair of nodes."""

    cut: bool = False
    stall: bool = False
    delay: float = 0.0
    jitter: float = 0.0

    @property
    def plain(self) -> bool:
        return not self.cut and not self.stall and self.delay == 0 and self.jitter == 0


@dataclass
class LinkStats:
    connections: int = 0
    refused: int = 0
    bytes: int = 0


@dataclass(eq=False)
class _Conn:
    pair: frozenset[int]
    writers: list[asyncio.StreamWriter] = field(default_factory=list)
    closed: bool = False

    def abort(self) -> None:
        if self.closed:
            return
        self.closed = True
        for writer in self.writers:
            with contextlib.suppress(Exception):
                writer.transport.abort()


class ChaosProxy:
    """``add_link(a, b, port)`` for each directed link, ``start()``, then the rules."""

    def __init__(self, seed: int | None = None) -> None:
        self.rng = random.Random(seed)
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._run, name="chaos-proxy", daemon=True)
        self._thread.start()
        self._rules: dict[frozenset[int], Rule] = {}
        self._conns: set[_Conn] = set()
        self._servers: list[asyncio.Server] = []
        #: (a, b) -> the port a dials to reach b.
        self.ports: dict[tuple[int, int], int] = {}
        self.stats: dict[frozenset[int], LinkStats] = {}
        #: Set (in the proxy's loop) whenever a rule changes: stalled pumps look again.
        self._changed: asyncio.Event | None = None
        self._closed = False

    # ------------------------------------------------------------------ plumbing

    def _run(self) -> None:
        asyncio.set_event_loop(self._loop)
        self._loop.run_forever()

    def _call(self, coro, timeout: float = 10.0):
        return asyncio.run_coroutine_threadsafe(coro, self._loop).result(timeout)

    def add_link(self, a: int, b: int, target_port: int, host: str = "127.0.0.1") -> int:
        """Listen for ``a``'s connections to ``b`` (at ``host:target_port``); the port."""
        return self._call(self._add_link(a, b, host, target_port))

    async def _add_link(self, a: int, b: int, host: str, target_port: int) -> int:
        if self._changed is None:
            self._changed = asyncio.Event()
        pair = frozenset((a, b))
        self._rules.setdefault(pair, Rule())
        self.stats.setdefault(pair, LinkStats())

        async def accepted(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            await self._serve(pair, host, target_port, reader, writer)

        server = await asyncio.start_server(accepted, "127.0.0.1", 0)
        self._servers.append(server)
        port = server.sockets[0].getsockname()[1]
        self.ports[(a, b)] = port
        return port

    def close(self) -> None:
        """Close every connection and listener and stop the loop (idempotent)."""
        if self._closed:
            return
        self._closed = True
        with contextlib.suppress(Exception):
            self._call(self._close(), timeout=5.0)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(5.0)
        if not self._thread.is_alive():
            self._loop.close()

    async def _close(self) -> None:
        for server in self._servers:
            server.close()
        for conn in list(self._conns):
            conn.abort()
        self._conns.clear()
        for task in [t for t in asyncio.all_tasks() if t is not asyncio.current_task()]:
            task.cancel()

    # ------------------------------------------------------------------ forwarding

    async def _serve(self, pair: frozenset[int], host: str, port: int,
                     reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        stats = self.stats[pair]
        if self._rules[pair].cut:
            stats.refused += 1
            writer.transport.abort()
            return
        try:
            async with asyncio.timeout(5.0):
                up_reader, up_writer = await asyncio.open_connection(host, port)
        except (OSError, TimeoutError):
            stats.refused += 1  # the node is down: the dialler sees its link fail
            writer.transport.abort()
            return
        conn = _Conn(pair, [writer, up_writer])
        if self._rules[pair].cut:  # cut while we dialled
            conn.abort()
            return
        stats.connections += 1
        self._conns.add(conn)
        try:
            await asyncio.gather(self._pump(conn, reader, up_writer),
                                 self._pump(conn, up_reader, writer))
        finally:
            conn.abort()
            self._conns.discard(conn)

    async def _pump(self, conn: _Conn, reader: asyncio.StreamReader,
                    writer: asyncio.StreamWriter) -> None:
        """One direction: read chunks, stamp each with the time it may leave, and a
        sender forwards them in order at those times, waiting out a stall."""
        queue: asyncio.Queue[tuple[float, bytes | None]] = asyncio.Queue()
        sender = asyncio.get_running_loop().create_task(self._send(conn, queue, writer))
        loop = asyncio.get_running_loop()
        last_due = 0.0
        try:
            while not conn.closed:
                try:
                    data = await reader.read(_CHUNK)
                except (OSError, asyncio.IncompleteReadError):
                    data = b""
                rule = self._rules[conn.pair]
                due = loop.time() + rule.delay + (self.rng.uniform(0, rule.jitter)
                                                   if rule.jitter else 0.0)
                last_due = max(last_due, due)
                await queue.put((last_due, data or None))
                if not data:
                    break
            await sender
        finally:
            sender.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await sender

    async def _send(self, conn: _Conn, queue: asyncio.Queue[tuple[float, bytes | None]],
                    writer: asyncio.StreamWriter) -> None:
        loop = asyncio.get_running_loop()
        assert self._changed is not None
        while True:
            due, data = await queue.get()
            wait = due - loop.time()
            if wait > 0:
                await asyncio.sleep(wait)
            while self._rules[conn.pair].stall and not conn.closed:
                changed = self._changed
                await changed.wait()
            if conn.closed:
                return
            if data is None:  # the other side closed: pass it on once all is out
                with contextlib.suppress(Exception):
                    await writer.drain()
                conn.abort()
                return
            self.stats[conn.pair].bytes += len(data)
            try:
                writer.write(data)
                await writer.drain()
            except (OSError, ConnectionError):
                conn.abort()
                return

    # ------------------------------------------------------------------ rules

    def _set(self, pairs: Iterable[frozenset[int]], **changes) -> None:
        self._call(self._apply(list(pairs), changes))

    async def _apply(self, pairs: list[frozenset[int]], changes: dict) -> None:
        reset = changes.pop("reset", False)
        for pair in pairs:
            rule = self._rules.setdefault(pair, Rule())
            for name, value in changes.items():
                setattr(rule, name, value)
            if changes.get("cut") or reset:
                for conn in [c for c in self._conns if c.pair == pair]:
                    conn.abort()
        assert self._changed is not None
        self._changed.set()  # wake stalled senders to look at their rule again
        self._changed = asyncio.Event()

    def _pairs(self, a: int, b: int | None) -> list[frozenset[int]]:
        if b is not None:
            return [frozenset((a, b))]
        return [p for p in self._rules if a in p]

    def delay(self, a: int, b: int | None = None, seconds: float = 0.1,
              jitter: float = 0.0) -> None:
        """Hold a pair's bytes ``seconds`` (+ up to ``jitter``); ``b`` None: all of a's."""
        self._set(self._pairs(a, b), delay=seconds, jitter=jitter)

    def delay_all(self, seconds: float, jitter: float = 0.0) -> None:
        self._set(list(self._rules), delay=seconds, jitter=jitter)

    def stall(self, a: int, b: int | None = None) -> None:
        """Black-hole a pair (``b`` None: every link of ``a``)."""
        self._set(self._pairs(a, b), stall=True)

    def cut(self, a: int, b: int | None = None) -> None:
        """Reset a pair's connections and refuse new ones (``b`` None: all of a's)."""
        self._set(self._pairs(a, b), cut=True)

    def reset(self, a: int, b: int | None = None) -> None:
        """Reset a pair's connections once (``b`` None: all of a's); they may reconnect."""
        self._call(self._apply(self._pairs(a, b), {"reset": True}))

    def partition(self, *groups: Iterable[int]) -> None:
        """Cut every pair not inside one group (nodes in no group are cut off)."""
        sets = [set(g) for g in groups]
        across = [p for p in self._rules if not any(p <= g for g in sets)]
        self._set(across, cut=True)

    def heal(self) -> None:
        """Every pair back to plain forwarding."""
        self._set(list(self._rules), cut=False, stall=False, delay=0.0, jitter=0.0)

    def rule(self, a: int, b: int) -> Rule:
        return self._rules[frozenset((a, b))]

    def connections(self, a: int, b: int) -> int:
        """Open proxied connections between ``a`` and ``b`` now."""
        pair = frozenset((a, b))
        return self._call(self._count(pair))

    async def _count(self, pair: frozenset[int]) -> int:
        return sum(1 for c in self._conns if c.pair == pair and not c.closed)


def all_pairs(n: int) -> list[tuple[int, int]]:
    return list(itertools.permutations(range(n), 2))
