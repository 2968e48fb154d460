"""Regressions from the hostile test of the API: requests cannot hold the node's loop,
answers cannot hold its memory, connections cannot hold its descriptors, and a
stranger cannot make it log without end.

Waits are bounded and on events or socket reads; nothing sleeps on a guess.
"""

from __future__ import annotations

import asyncio
import json
import logging
import socket
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

from node.config import Config, ConsensusSection, NodeSection, P2PSection, RPCSection
from node.daemon import Node, RateLimitedLog
from node.home import Home, init_home
from node.localnet import free_base_port
from node.rpc.methods import method_table
from node.rpc.protocol import Codes, Dispatcher, Params
from node.rpc.server import ConnectionGate, _is_loopback

WAIT = 10.0


class N(Params):
    n: int = 0


# ---------------------------------------------------------------- the dispatcher


async def test_a_batch_lets_the_loop_turn_between_its_calls() -> None:
    # A batch of 20 calls used to run back to back in one turn of the loop: a batch
    # of heavy calls held consensus for seconds. Now a turn runs 10 ms of calls (and
    # the one that crosses it): here, calls of 4 ms, at most three per turn.
    rpc = Dispatcher(turn_budget=0.010)
    loop = asyncio.get_running_loop()
    turns = 0
    seen: list[int] = []
    stop = False

    def tick() -> None:
        nonlocal turns
        turns += 1
        if not stop:
            loop.call_soon(tick)

    @rpc.method("work", N)
    async def work(_ctx: Any, p: N) -> int:
        seen.append(turns)
        until = time.perf_counter() + 0.004
        while time.perf_counter() < until:
            pass
        return p.n

    loop.call_soon(tick)
    text = await rpc.handle_text(json.dumps(
        [{"jsonrpc": "2.0", "method": "work", "params": [i], "id": i} for i in range(20)]))
    stop = True
    assert len(json.loads(text)) == 20
    # Each turn ran at most two calls: the ticker advanced all along the batch.
    per_turn = {t: seen.count(t) for t in set(seen)}
    assert max(per_turn.values()) <= 3
    assert len(per_turn) >= 7


async def test_a_full_batch_answer_stops_the_work_of_the_rest() -> None:
    rpc = Dispatcher(max_response_bytes=2_000)
    ran: list[int] = []

    @rpc.method("blob", N)
    async def blob(_ctx: Any, p: N) -> str:
        ran.append(p.n)
        return "x" * 900

    text = await rpc.handle_text(json.dumps(
        [{"jsonrpc": "2.0", "method": "blob", "params": [i], "id": i} for i in range(50)]))
    answers = json.loads(text)
    assert sorted(a["id"] for a in answers) == list(range(50))
    assert sum("result" in a for a in answers) == 2
    # Only the calls that could still fit (and the one that did not) did any work.
    assert len(ran) <= 4
    assert all(a["error"]["code"] == Codes.NOT_ANSWERABLE for a in answers if "error" in a)


async def test_a_huge_broadcast_txs_list_is_refused_before_any_work() -> None:
    rpc = Dispatcher(method_table())
    body = json.dumps({"jsonrpc": "2.0", "method": "broadcast_txs",
                       "params": {"txs": [0] * 500_000}, "id": 1})
    loop = asyncio.get_running_loop()
    started = loop.time()
    answer = json.loads(await rpc.handle_text(body))
    assert loop.time() - started < 1.0  # it took 3 s of pydantic errors before
    assert answer["error"]["code"] == Codes.INVALID_PARAMS
    assert "at most 100000" in answer["error"]["data"]
    # A long list of wrong items is described by its first ten problems.
    answer = json.loads(await rpc.handle_text(json.dumps(
        {"jsonrpc": "2.0", "method": "broadcast_txs", "params": {"txs": [0] * 500}, "id": 2})))
    assert answer["error"]["data"].endswith("and 490 more")


# ---------------------------------------------------------------- a real node


@asynccontextmanager
async def node_with(tmp_path: Path, **rpc: Any) -> AsyncIterator[tuple[Node, int]]:
    init_home(tmp_path, chain_id="rpc-hardening", validator=True)
    home = Home(tmp_path)
    p2p = free_base_port(2)
    home.write_config(Config(
        node=NodeSection(mode="validator"),
        p2p=P2PSection(listen=f"127.0.0.1:{p2p}", pex=False),
        rpc=RPCSection(listen=f"127.0.0.1:{p2p + 1}", **rpc),
        consensus=ConsensusSection(block_interval_ms=10, idle_interval_ms=200)))
    node = Node(home)
    await node.start()
    try:
        yield node, p2p + 1
    finally:
        await node.stop()


async def _exchange(port: int, data: bytes, *, rcvbuf: int | None = None) -> bytes:
    """Send raw bytes, read until the server closes (bounded)."""
    sock = socket.socket()
    if rcvbuf is not None:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)
    sock.setblocking(False)
    loop = asyncio.get_running_loop()
    await loop.sock_connect(sock, ("127.0.0.1", port))
    try:
        await loop.sock_sendall(sock, data)
        out = b""
        async with asyncio.timeout(WAIT):
            while chunk := await loop.sock_recv(sock, 65536):
                out += chunk
        return out
    finally:
        sock.close()


async def test_a_body_that_cannot_be_read_is_a_400_not_a_500(tmp_path: Path) -> None:
    async with node_with(tmp_path) as (_node, port):
        answer = await _exchange(port, b"POST / HTTP/1.1\r\nHost: x\r\nContent-Encoding: gzip\r\n"
                                       b"Content-Length: 10\r\nConnection: close\r\n\r\n"
                                       b"not gzip!!")
        assert answer.startswith(b"HTTP/1.1 400"), answer[:200]
        assert b"cannot read the request body" in answer


async def test_a_connection_that_dribbles_its_headers_is_closed(tmp_path: Path) -> None:
    async with node_with(tmp_path, idle_timeout_ms=300) as (_node, port):
        loop = asyncio.get_running_loop()
        started = loop.time()
        # Half a request line, then silence: the node closes it after the idle timeout.
        answer = await _exchange(port, b"POST / HTTP/1.1\r\nHost: x\r\n")
        assert loop.time() - started < 5.0
        assert answer == b"" or not answer.startswith(b"HTTP/1.1 200")


async def test_connections_over_the_cap_are_refused_with_the_reason(tmp_path: Path) -> None:
    async with node_with(tmp_path, max_connections=3) as (node, port):
        held = []
        loop = asyncio.get_running_loop()
        try:
            for _ in range(3):
                s = socket.socket()
                s.setblocking(False)
                await loop.sock_connect(s, ("127.0.0.1", port))
                held.append(s)
            assert node.rpc is not None and node.rpc.gate is not None
            async with asyncio.timeout(WAIT):  # the server has accepted all three
                while len(node.rpc.gate) < 3:
                    await asyncio.sleep(0.01)
            answer = await _exchange(port, b"")
            assert answer.startswith(b"HTTP/1.1 503")
            assert b"at most 3 RPC connections" in answer
        finally:
            for s in held:
                s.close()
        async with asyncio.timeout(WAIT):  # the count goes back down
            while len(node.rpc.gate):
                await asyncio.sleep(0.01)
        body = b'{"jsonrpc":"2.0","method":"status","id":1}'
        answer = await _exchange(port, b"POST / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n"
                                       b"Content-Length: " + str(len(body)).encode()
                                 + b"\r\n\r\n" + body)
        assert answer.startswith(b"HTTP/1.1 200")


def test_only_loopback_is_spared_the_per_address_cap() -> None:
    assert _is_loopback("127.0.0.1") and _is_loopback("::1") and _is_loopback("127.3.4.5")
    assert not _is_loopback("10.0.0.1") and not _is_loopback("203.0.113.9")
    assert not _is_loopback("") and not _is_loopback("not-an-ip")

    class Transport:
        def __init__(self, ip: str) -> None:
            self.ip = ip
            self.written = b""
            self.closed = False

        def get_extra_info(self, _: str) -> tuple[str, int]:
            return (self.ip, 5000)

        def write(self, data: bytes) -> None:
            self.written += data

        def close(self) -> None:
            self.closed = True

    class Server:
        def connection_made(self, handler: object, transport: object) -> None:
            pass

        def connection_lost(self, handler: object, exc: object = None) -> None:
            pass

    server = Server()
    gate = ConnectionGate(server, max_total=100, max_per_ip=2)  # type: ignore[arg-type]
    stranger = [Transport("203.0.113.9") for _ in range(3)]
    local = [Transport("127.0.0.1") for _ in range(5)]
    for i, t in enumerate(stranger + local):
        server.connection_made(i, t)
    assert [t.closed for t in stranger] == [False, False, True]
    assert b"from one address" in stranger[2].written
    assert not any(t.closed for t in local)
    server.connection_lost(0)
    assert gate.by_ip["203.0.113.9"] == 1 and len(gate) == 6


async def test_a_client_that_does_not_take_its_answer_is_cut(tmp_path: Path) -> None:
    async with node_with(tmp_path, write_timeout_ms=300,
                         max_response_bytes=64 << 20) as (node, port):
        assert node.rpc is not None
        batch = json.dumps([{"jsonrpc": "2.0", "method": "genesis", "id": i}
                            for i in range(100)]).encode()
        sock = socket.socket()
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        sock.setblocking(False)
        loop = asyncio.get_running_loop()
        await loop.sock_connect(sock, ("127.0.0.1", port))
        try:
            await loop.sock_sendall(sock, b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: "
                                    + str(len(batch)).encode() + b"\r\n\r\n" + batch)
            # The answer (~10 MB) is more than the socket buffers hold; nobody reads.
            async with asyncio.timeout(WAIT):
                while node.rpc.slow_http_cut == 0:
                    await asyncio.sleep(0.02)
            assert node.rpc.unsent_bytes == 0
        finally:
            sock.close()


def test_a_flood_of_one_log_line_is_held_back_and_counted() -> None:
    limiter = RateLimitedLog(burst=3, window=60.0)
    records = [logging.LogRecord("aiohttp.server", logging.ERROR, __file__, 1,
                                 "Error handling request", None, None) for _ in range(100)]
    for i, r in enumerate(records):
        r.created = 1000.0 + i * 0.01
    passed = [r for r in records if limiter.filter(r)]
    assert len(passed) == 3
    later = logging.LogRecord("aiohttp.server", logging.ERROR, __file__, 1,
                              "Error handling request", None, None)
    later.created = 1000.0 + 61
    assert limiter.filter(later)
    assert "97 more like it held back" in later.getMessage()
    other = logging.LogRecord("agora.node", logging.INFO, __file__, 1, "committed", None, None)
    other.created = 1000.5
    assert limiter.filter(other)

