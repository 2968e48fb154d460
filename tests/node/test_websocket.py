"""WebSocket subscriptions of a real node: one validator in-process (LevelDB,
consensus, p2p and the aiohttp server on 127.0.0.1), driven by aiohttp clients and by
raw sockets that do the WebSocket handshake and then read nothing — clients that stop
reading must cost the node a bounded queue, never a stall.

Waits are on messages, on the node's event bus or its commit futures, bounded in time;
never sleeps.
"""

from __future__ import annotations

import asyncio
import base64
import dataclasses
import json
import os
import socket
import struct
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack, asynccontextmanager
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from chain.address import address_to_text
from chain.keys import PrivateKey
from chain.tx import Transaction
from node.config import Config, ConsensusSection, NodeSection, P2PSection, RPCSection
from node.daemon import Node
from node.events import BlockCommitted
from node.home import Home, init_home
from node.localnet import free_base_port
from node.rpc.client import RPCClient, transfer
from node.rpc.protocol import Codes
from node.rpc.server import (
    ANSWER_BYTES_AHEAD,
    CLOSE_GRACE,
    STOP_GRACE,
    WS_MAX_ANSWER,
    WS_SEND_BUFFER,
    WSConnection,
)

CHAIN = "agora-ws-test"
ALICE = PrivateKey.from_seed_text("ws-test-alice")
CAROL = PrivateKey.from_seed_text("ws-test-carol")
BOB = PrivateKey.from_seed_text("ws-test-bob").address  # never signs
DAVE = PrivateKey.from_seed_text("ws-test-dave").address
#: Funded senders for a block of thousands of transactions.
BURST_SENDERS = [PrivateKey.from_seed_text(f"ws-test-burst-{i}") for i in range(40)]
WAIT = 10.0  # seconds any condition below may take on a loaded machine


# ---------------------------------------------------------------------- a node


@dataclasses.dataclass
class Running:
    node: Node
    host: str
    port: int
    client: RPCClient
    session: aiohttp.ClientSession

    @property
    def ws_url(self) -> str:
        return f"http://{self.host}:{self.port}/websocket"

    async def connect(self, **kwargs: Any) -> WS:
        ws = await self.session.ws_connect(self.ws_url, **kwargs)
        return WS(ws)

    async def committed(self, txs: list[Transaction]) -> int:
        """Wait (bounded) until every tx in ``txs`` has committed; the highest height."""
        waiters = [(tx, self.node.waiters.wait(tx.hash)) for tx in txs]
        heights = []
        try:
            async with asyncio.timeout(WAIT):
                for tx, waiter in waiters:
                    found = self.node.executor.blocks.tx(tx.hash)
                    heights.append(found.height if found is not None else (await waiter)[0])
        finally:
            for tx, waiter in waiters:
                self.node.waiters.forget(tx.hash, waiter)
        return max(heights)

    def connection_added(self, before: set[WSConnection]) -> WSConnection:
        [conn] = self.node.rpc.connections - before
        return conn


@asynccontextmanager
async def running_node(home_path: Path, **rpc: Any) -> AsyncIterator[Running]:
    """A single-validator node with ALICE, CAROL and the burst senders funded, a block
    every 20 ms even when idle, and free ports; ``rpc``: [rpc] settings."""
    init_home(home_path, chain_id=CHAIN, validator=True)
    home = Home(home_path)
    p2p_port = free_base_port(2)
    rpc_port = p2p_port + 1
    home.write_config(Config(
        node=NodeSection(mode="validator", moniker="ws-test"),
        p2p=P2PSection(listen=f"127.0.0.1:{p2p_port}", pex=False),
        rpc=RPCSection(listen=f"127.0.0.1:{rpc_port}", **rpc),
        # (The burst test wants its ~2,000 transactions in one block: no proposer cap
        # below the chain's.)
        consensus=ConsensusSection(block_interval_ms=10, idle_interval_ms=20,
                                   view_timeout_ms=1_000, proposal_max_txs=5_000),
    ))
    genesis = json.loads(home.genesis_path.read_text())
    genesis["balances"] = [{"address": address_to_text(key.address), "amount": str(10**21)}
                           for key in [ALICE, CAROL, *BURST_SENDERS]]
    home.write_genesis(genesis)
    node = Node(home)
    await node.start()
    try:
        async with RPCClient(f"http://127.0.0.1:{rpc_port}/", timeout=WAIT) as client, \
                aiohttp.ClientSession() as session:
            yield Running(node, "127.0.0.1", rpc_port, client, session)
    finally:
        await node.stop()


# ---------------------------------------------------------------------- clients


class WS:
    """An aiohttp WebSocket client that answers calls and keeps the notifications that
    arrive meanwhile, in order."""

    def __init__(self, ws: aiohttp.ClientWebSocketResponse) -> None:
        self.ws = ws
        self.backlog: list[dict[str, Any]] = []
        self._ids = 0

    async def receive(self) -> dict[str, Any]:
        message = await self.ws.receive(timeout=WAIT)
        assert message.type == aiohttp.WSMsgType.TEXT, message
        return json.loads(message.data)

    async def send(self, body: Any) -> None:
        await self.ws.send_str(body if isinstance(body, str) else json.dumps(body))

    async def answer(self, request_id: Any) -> dict[str, Any]:
        while True:
            message = await self.receive()
            if "id" in message and message["id"] == request_id:
                return message
            assert message.get("method") == "subscription", message
            self.backlog.append(message)

    async def call(self, method: str, **params: Any) -> dict[str, Any]:
        """The whole response (``result`` or ``error``)."""
        self._ids += 1
        await self.send({"jsonrpc": "2.0", "id": self._ids, "method": method,
                         "params": params})
        return await self.answer(self._ids)

    async def subscribe(self, kind: str, **filters: Any) -> str:
        response = await self.call("subscribe", kind=kind, **filters)
        return response["result"]["subscription"]

    async def note(self) -> tuple[str, dict[str, Any]]:
        """The next notification: (subscription id, result)."""
        message = self.backlog.pop(0) if self.backlog else await self.receive()
        assert message["jsonrpc"] == "2.0" and message["method"] == "subscription", message
        assert "id" not in message
        return message["params"]["subscription"], message["params"]["result"]

    async def close_frame(self) -> aiohttp.WSMessage:
        """Read on to the close frame (dropping notifications on the way)."""
        async with asyncio.timeout(WAIT):
            while True:
                message = await self.ws.receive()
                if message.type != aiohttp.WSMsgType.TEXT:
                    return message


class RawWS:
    """A client on a bare socket with a small receive buffer: the WebSocket handshake,
    then whatever it sends, and it reads nothing until told to."""

    def __init__(self, sock: socket.socket, rest: bytes) -> None:
        self.sock = sock
        self.buffer = rest

    @classmethod
    async def connect(cls, host: str, port: int) -> RawWS:
        loop = asyncio.get_running_loop()
        sock = socket.socket()
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        sock.setblocking(False)
        try:
            async with asyncio.timeout(WAIT):
                await loop.sock_connect(sock, (host, port))
                key = base64.b64encode(os.urandom(16)).decode()
                await loop.sock_sendall(sock, (
                    f"GET /websocket HTTP/1.1\r\nHost: {host}:{port}\r\n"
                    "Upgrade: websocket\r\nConnection: Upgrade\r\n"
                    f"Sec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n\r\n"
                ).encode())
                response = b""
                while b"\r\n\r\n" not in response:
                    chunk = await loop.sock_recv(sock, 4096)
                    assert chunk, "closed during the handshake"
                    response += chunk
        except BaseException:
            sock.close()
            raise
        head, _, rest = response.partition(b"\r\n\r\n")
        assert head.startswith(b"HTTP/1.1 101"), head
        return cls(sock, rest)

    def close(self) -> None:
        self.sock.close()

    async def subscribe(self, kind: str) -> str:
        """Subscribe and read the answer (the last thing it reads, mostly)."""
        await self.send(request(0, "subscribe", kind=kind))
        async with asyncio.timeout(WAIT):
            frame = await self.frame()
        assert frame is not None and frame[0] == 0x1, frame
        answer = json.loads(frame[1])
        assert answer["id"] == 0, answer
        return answer["result"]["subscription"]

    async def send(self, body: Any) -> None:
        """One masked text frame (clients must mask)."""
        data = (body if isinstance(body, str) else json.dumps(body)).encode()
        mask = os.urandom(4)
        if len(data) < 126:
            header = struct.pack("!BB", 0x81, 0x80 | len(data))
        else:
            header = struct.pack("!BBH", 0x81, 0x80 | 126, len(data))
        masked = bytes(b ^ mask[i % 4] for i, b in enumerate(data))
        async with asyncio.timeout(WAIT):
            await asyncio.get_running_loop().sock_sendall(self.sock, header + mask + masked)

    async def _fill(self, need: int) -> bool:
        loop = asyncio.get_running_loop()
        while len(self.buffer) < need:
            chunk = await loop.sock_recv(self.sock, 1 << 16)
            if not chunk:
                return False
            self.buffer += chunk
        return True

    async def frame(self) -> tuple[int, bytes] | None:
        """The next frame from the server (opcode, payload), or None at EOF."""
        if not await self._fill(2):
            return None
        opcode, length = self.buffer[0] & 0x0F, self.buffer[1] & 0x7F
        at = 2
        if length == 126:
            if not await self._fill(4):
                return None
            length, at = struct.unpack("!H", self.buffer[2:4])[0], 4
        elif length == 127:
            if not await self._fill(10):
                return None
            length, at = struct.unpack("!Q", self.buffer[2:10])[0], 10
        if not await self._fill(at + length):
            return None
        payload, self.buffer = self.buffer[at:at + length], self.buffer[at + length:]
        return opcode, payload

    async def read_to_close(self) -> tuple[list[int], int | None, str]:
        """Read every frame to the close frame or EOF: the opcodes seen, the close
        code and reason (None, "" at EOF without one)."""
        opcodes = []
        async with asyncio.timeout(WAIT):
            while (frame := await self.frame()) is not None:
                opcode, payload = frame
                opcodes.append(opcode)
                if opcode == 0x8:
                    code = struct.unpack("!H", payload[:2])[0] if len(payload) >= 2 else None
                    return opcodes, code, payload[2:].decode()
        return opcodes, None, ""


def request(request_id: int, method: str, **params: Any) -> dict[str, Any]:
    return {"jsonrpc": "2.0", "id": request_id, "method": method, "params": params}


def headers_in_order(headers: list[dict[str, Any]]) -> None:
    for before, after in zip(headers, headers[1:], strict=False):
        assert after["height"] == before["height"] + 1
        assert after["prev_hash"] == before["hash"]


async def blocks_until(ws: WS, sub: str, done: Any) -> list[dict[str, Any]]:
    """Headers from ``sub`` (the only subscription) until ``done(header)``."""
    headers: list[dict[str, Any]] = []
    async with asyncio.timeout(WAIT):
        while True:
            sub_id, result = await ws.note()
            assert sub_id == sub
            headers.append(result)
            if done(result):
                return headers


# ---------------------------------------------------------------------- blocks


async def test_a_subscriber_sees_every_block_in_order(tmp_path: Path) -> None:
    async with running_node(tmp_path) as net:
        ws = await net.connect()
        subscribed_at = net.node.executor.height
        sub = await ws.subscribe("blocks")
        answered_at = net.node.executor.height
        headers: list[dict[str, Any]] = []
        async with asyncio.timeout(WAIT):
            while len(headers) < 40:
                sub_id, header = await ws.note()
                assert sub_id == sub
                headers.append(header)
        assert subscribed_at < headers[0]["height"] <= answered_at + 1
        headers_in_order(headers)
        blocks = net.node.executor.blocks
        for header in headers:
            stored = blocks.header(header["height"])
            assert header["hash"] == stored.hash.hex()
            assert header["raw"] == stored.encode().hex()
        await ws.ws.close()


# ---------------------------------------------------------------------- txs


async def test_a_txs_subscription_sees_exactly_the_txs_of_its_account(tmp_path: Path) -> None:
    async with running_node(tmp_path) as net:
        ws = await net.connect()
        blocks = await ws.subscribe("blocks")
        every = await ws.subscribe("txs")
        bob = await ws.subscribe("txs", account=address_to_text(BOB))
        carol = await ws.subscribe("txs", account=address_to_text(CAROL.address))
        to_bob = transfer(ALICE, CHAIN, 0, BOB, 10)
        to_carol = transfer(ALICE, CHAIN, 1, CAROL.address, 20)
        from_carol = transfer(CAROL, CHAIN, 0, DAVE, 30)
        to_dave = transfer(ALICE, CHAIN, 2, DAVE, 40)
        txs = [to_bob, to_carol, from_carol, to_dave]
        answers = await net.client.broadcast_txs(txs)
        assert all(a.get("error") is None for a in answers), answers
        last = await net.committed(txs)
        # Everything of a block is queued before the next block's header, in order.
        seen: dict[str, list[dict[str, Any]]] = {every: [], bob: [], carol: []}
        async with asyncio.timeout(WAIT):
            while True:
                sub_id, result = await ws.note()
                if sub_id == blocks:
                    if result["height"] > last:
                        break
                else:
                    seen[sub_id].append(result)
        hashes = {sub: [r["hash"] for r in results] for sub, results in seen.items()}
        assert hashes[bob] == [to_bob.hash.hex()]
        assert sorted(hashes[carol]) == sorted([to_carol.hash.hex(), from_carol.hash.hex()])
        assert sorted(hashes[every]) == sorted(tx.hash.hex() for tx in txs)
        result = seen[bob][0]
        found = net.node.executor.blocks.tx(to_bob.hash)
        assert (result["height"], result["index"]) == (found.height, found.index)
        assert result["tx"]["sender"] == address_to_text(ALICE.address)
        assert result["tx"]["action"]["amount"] == "10"
        assert result["receipt"]["status"] == "ok"
        await ws.ws.close()


async def test_a_block_of_thousands_of_txs_is_bounded_and_a_reader_keeps_up(
        tmp_path: Path) -> None:
    """A notification burst: a block of ~2,000 transactions to `txs` subscribers with
    no filter. A client that reads survives it whole (one block is taken whole, even
    past ws_queue); one that reads nothing holds at most ws_queue plus one block's
    notifications, and is dropped at the next block."""
    queue = 50
    async with running_node(tmp_path, ws_queue=queue, max_body_bytes=4 << 20) as net:
        reader = await net.connect()
        await reader.subscribe("txs")
        before = set(net.node.rpc.connections)
        stalled = await RawWS.connect(net.host, net.port)
        try:
            await stalled.subscribe("txs")
            stalled_conn = net.connection_added(before)
            # The bytes of answers queued may pass the limit by one answer (the one that
            # crossed it): a genesis answer, the whole genesis document.
            one_answer = len(json.dumps(await net.client.call("genesis"))) + 1_000
            # Answers it does not read fill its socket buffers first (~6 MB).
            for n in range(1, 61):
                await stalled.send(request(n, "genesis"))
            biggest = 0  # the most transactions in one block so far
            over: list[str] = []

            def check(event: BlockCommitted) -> None:
                # Right after the hub told every connection of this block.
                nonlocal biggest
                biggest = max(biggest, len(event.block.txs))
                for conn in net.node.rpc.connections:
                    if conn.pending > queue + biggest:
                        over.append(f"{conn.pending} notifications at height "
                                    f"{event.block.height}")
                    if conn.answer_bytes > ANSWER_BYTES_AHEAD + one_answer:
                        over.append(f"{conn.answer_bytes} bytes of answers")

            stop = net.node.events.listen(BlockCommitted, check)
            try:
                per_sender = 50
                txs = [transfer(key, CHAIN, nonce, BOB, 1)
                       for nonce in range(per_sender) for key in BURST_SENDERS]
                answers = await net.client.broadcast_txs(txs)
                assert all(a.get("error") is None for a in answers)
                await net.committed(txs)
                got: set[str] = set()
                async with asyncio.timeout(WAIT):
                    while len(got) < len(txs):
                        _, result = await reader.note()
                        got.add(result["hash"])
                assert got == {tx.hash.hex() for tx in txs}
                # The stalled client goes at the next block with something for it.
                one_more = transfer(ALICE, CHAIN, 0, BOB, 1)
                await net.client.broadcast_tx_sync(one_more)
                await net.committed([one_more])
            finally:
                stop()
            assert biggest > queue, "the burst did not land in a block bigger than the queue"
            assert not over
            assert stalled_conn.closed and stalled_conn not in net.node.rpc.connections
            assert not stalled_conn.queue  # its queue is let go at once
            assert net.node.rpc.dropped_slow == 1
        finally:
            stalled.close()
        await reader.ws.close()


async def wait_for_block(net: Running, height: int) -> None:
    reached = asyncio.Event()

    def committed(event: BlockCommitted) -> None:
        if event.block.height >= height:
            reached.set()

    stop = net.node.events.listen(BlockCommitted, committed)
    try:
        if net.node.executor.height < height:
            async with asyncio.timeout(WAIT):
                await reached.wait()
    finally:
        stop()


# ---------------------------------------------------------------------- slow clients


async def test_a_client_that_stops_reading_is_dropped_and_the_others_keep_going(
        tmp_path: Path) -> None:
    async with running_node(tmp_path, ws_queue=4) as net:
        reader = await net.connect()
        sub = await reader.subscribe("blocks")
        before = set(net.node.rpc.connections)
        stalled = await RawWS.connect(net.host, net.port)
        try:
            # It subscribes, then asks for answers it never reads: the node's socket
            # buffers and then its transport fill, then its queue.
            await stalled.subscribe("blocks")
            stalled_conn = net.connection_added(before)
            for n in range(1, 201):
                await stalled.send(request(n, "genesis"))
            headers: list[dict[str, Any]] = []
            async with asyncio.timeout(WAIT):
                while not net.node.rpc.dropped_slow:
                    sub_id, header = await reader.note()
                    assert sub_id == sub
                    headers.append(header)
            # The node had stopped being able to write to it at all.
            assert stalled_conn.transport.get_write_buffer_size() > 0
            assert stalled_conn.closed and stalled_conn not in net.node.rpc.connections
            assert len(net.node.rpc.hub) == 1
            # It is told why, in the close frame, behind what it had not read.
            opcodes, code, reason = await stalled.read_to_close()
            assert code == 1008, (opcodes[-5:], code)
            assert reason.startswith("too slow"), reason
            assert opcodes.count(0x1) >= 1  # it was sent text before falling behind
            # The other subscriber missed nothing, and blocks keep committing.
            dropped_at = net.node.executor.height
            headers += await blocks_until(reader, sub, lambda h: h["height"] >= dropped_at + 5)
            headers_in_order(headers)
            assert net.node.rpc.dropped_slow == 1
        finally:
            stalled.close()
        await reader.ws.close()


async def test_a_client_that_reads_nothing_is_cut_after_the_grace(tmp_path: Path) -> None:
    """Dropped while its kernel buffers are full, it cannot even take its close frame:
    its socket is cut after CLOSE_GRACE, not kept open to flush for ever."""
    async with running_node(tmp_path, ws_queue=2) as net:
        before = set(net.node.rpc.connections)
        stalled = await RawWS.connect(net.host, net.port)
        try:
            await stalled.subscribe("blocks")
            conn = net.connection_added(before)
            for n in range(1, 201):
                await stalled.send(request(n, "genesis"))
            loop = asyncio.get_running_loop()
            transport = conn.transport
            server_socket = transport.get_extra_info("socket")
            cut = loop.create_future()
            abort = transport.abort

            def recording_abort() -> None:
                abort()
                if not cut.done():
                    cut.set_result(loop.time())

            transport.abort = recording_abort
            dropped = loop.create_future()

            def committed(_event: BlockCommitted) -> None:
                if conn.closed and not dropped.done():
                    dropped.set_result(loop.time())

            stop = net.node.events.listen(BlockCommitted, committed)
            try:
                async with asyncio.timeout(WAIT):
                    dropped_at = await dropped
                    # Its kernel buffers were full: the close frame could not go out.
                    assert transport.get_write_buffer_size() > 0
                    cut_at = await cut
            finally:
                stop()
            assert CLOSE_GRACE - 0.5 < cut_at - dropped_at < CLOSE_GRACE + 1.0
            # The transport let go of its socket before the abort returned to us.
            assert server_socket.fileno() == -1
        finally:
            stalled.close()


async def test_a_client_that_reads_nothing_costs_the_node_a_bounded_write(
        tmp_path: Path) -> None:
    """A client that subscribes to a burst it never reads has a bounded amount written
    for it — its capped socket buffer and the transport's high-water mark — however
    many notifications wait (before the cap: what the kernel's autotuning allowed,
    about 3 MB on Linux); the rest wait in its queue as shared references, costing
    nothing until it is dropped."""
    subs = 20
    async with running_node(tmp_path, ws_queue=100_000, ws_max_subscriptions=subs,
                            max_body_bytes=4 << 20) as net:
        before = set(net.node.rpc.connections)
        stalled = await RawWS.connect(net.host, net.port)
        try:
            for _ in range(subs):
                await stalled.subscribe("txs")
            conn = net.connection_added(before)
            written = 0
            send_str = conn.ws.send_str

            async def counting(data: str, compress: int | None = None) -> None:
                nonlocal written
                written += len(data)
                await send_str(data, compress)

            conn.ws.send_str = counting  # type: ignore[method-assign]
            txs = [transfer(key, CHAIN, nonce, BOB, 1)
                   for nonce in range(10) for key in BURST_SENDERS]
            answers = await net.client.broadcast_txs(txs)
            assert all(a.get("error") is None for a in answers)
            await net.committed(txs)
            # Its writer has stopped: nothing sent between two blocks, with the
            # transport holding what the kernel would not take.
            last = [-1]

            def stopped() -> bool:
                pending, last[0] = last[0], conn.pending
                return pending == conn.pending and conn.transport.get_write_buffer_size() > 0

            await at_a_block(net, stopped)
            total = subs * len(txs)
            sent = total - conn.pending
            assert sent < total // 10, (sent, total)
            # 2 x SO_SNDBUF in the kernel, up to the writer's limit and the transport's
            # high-water mark in the transport, one message over, the client's own
            # small buffers.
            assert written < 4 * WS_SEND_BUFFER + (64 << 10), (written, sent)
            assert not conn.closed and net.node.rpc.dropped_slow == 0
        finally:
            stalled.close()


async def test_a_writer_lets_the_loop_turn_between_messages(tmp_path: Path) -> None:
    """A client that reads a burst of notifications is written to one message per
    turn of the loop, so its writer never holds the loop for the whole burst."""
    async with running_node(tmp_path) as net:
        before = set(net.node.rpc.connections)
        reader = await net.connect()
        await reader.subscribe("txs")
        conn = net.connection_added(before)
        turns = 0

        async def count_turns() -> None:
            nonlocal turns
            while True:
                turns += 1
                await asyncio.sleep(0)

        seen: list[int] = []  # the turn count at each message written to the reader
        send_str = conn.ws.send_str

        async def recording(data: str, compress: int | None = None) -> None:
            seen.append(turns)
            await send_str(data, compress)

        conn.ws.send_str = recording  # type: ignore[method-assign]
        ticker = asyncio.create_task(count_turns())
        try:
            txs = [transfer(key, CHAIN, nonce, BOB, 1)
                   for nonce in range(5) for key in BURST_SENDERS]
            answers = await net.client.broadcast_txs(txs)
            assert all(a.get("error") is None for a in answers)
            await net.committed(txs)
            got: set[str] = set()
            async with asyncio.timeout(WAIT):
                while len(got) < len(txs):
                    _, result = await reader.note()
                    got.add(result["hash"])
        finally:
            ticker.cancel()
        assert len(seen) >= len(txs)
        assert all(a < b for a, b in zip(seen, seen[1:], strict=False)), seen
        await reader.ws.close()


# ---------------------------------------------------------------------- limits


async def test_subscription_limit_unsubscribe_and_unsubscribe_all(tmp_path: Path) -> None:
    async with running_node(tmp_path, ws_max_subscriptions=2) as net:
        ws = await net.connect()
        first = await ws.subscribe("blocks")
        second = await ws.subscribe("txs")
        refused = await ws.call("subscribe", kind="events")
        assert refused["error"]["code"] == Codes.LIMIT
        assert "at most 2 subscriptions" in refused["error"]["data"]
        assert (await ws.call("unsubscribe", subscription=second))["result"] is True
        assert (await ws.call("unsubscribe", subscription=second))["result"] is False
        assert (await ws.call("unsubscribe", subscription="nonesuch"))["result"] is False
        third = await ws.subscribe("blocks")
        assert len({first, second, third}) == 3
        assert (await ws.call("unsubscribe_all"))["result"] == 2
        assert len(net.node.rpc.hub) == 0
        # Nothing of the old subscriptions comes after the answer: a new one sees
        # three blocks and nothing else.
        ws.backlog.clear()
        fourth = await ws.subscribe("blocks")
        for _ in range(3):
            sub_id, _ = await ws.note()
            assert sub_id == fourth
        await ws.ws.close()


async def test_bad_params_and_bad_json_over_websocket(tmp_path: Path) -> None:
    async with running_node(tmp_path) as net:
        ws = await net.connect()
        await ws.send("{not json")
        answer = await ws.receive()
        assert answer["error"]["code"] == Codes.PARSE_ERROR and answer["id"] is None
        bad = await ws.call("subscribe", kind="news")
        assert bad["error"]["code"] == Codes.INVALID_PARAMS
        bad = await ws.call("subscribe", kind="blocks", account=address_to_text(BOB))
        assert bad["error"]["code"] == Codes.INVALID_PARAMS
        bad = await ws.call("subscribe", kind="txs", event="Transfer")
        assert bad["error"]["code"] == Codes.INVALID_PARAMS
        # The connection is still good, and any other method works over it too.
        assert (await ws.call("status"))["result"]["chain_id"] == CHAIN
        await ws.ws.close()


async def test_subscribe_over_http_post_is_refused_clearly(tmp_path: Path) -> None:
    async with running_node(tmp_path) as net:
        for method in ("subscribe", "unsubscribe", "unsubscribe_all"):
            async with net.session.post(f"http://{net.host}:{net.port}/", json=request(
                    1, method, kind="blocks") if method == "subscribe" else request(
                    1, method)) as response:
                error = (await response.json())["error"]
            assert error["code"] == Codes.UNAVAILABLE
            assert "WebSocket" in error["data"] and "/websocket" in error["data"]


async def test_clients_per_node_are_limited_before_the_upgrade(tmp_path: Path) -> None:
    async with running_node(tmp_path, ws_max_clients=2) as net:
        first = await net.connect()
        second = await net.connect()
        with pytest.raises(aiohttp.WSServerHandshakeError) as refused:
            await net.connect()
        assert refused.value.status == 503
        # Those already in are served as before.
        assert (await second.call("status"))["result"]["chain_id"] == CHAIN
        await first.ws.close()
        await second.ws.close()


async def test_clients_per_address_are_limited_but_loopback_is_not(tmp_path: Path) -> None:
    async with running_node(tmp_path, ws_max_clients_per_ip=2) as net:
        rpc = net.node.rpc
        # Loopback (the operator's tools, these tests) is not capped per address.
        local = [await net.connect() for _ in range(3)]
        assert rpc.ws_by_ip == {"127.0.0.1": 3}
        # Clients that come from elsewhere are.
        rpc._ws_client_ip = lambda request: "203.0.113.7"  # type: ignore[method-assign]
        first = await net.connect()
        second = await net.connect()
        with pytest.raises(aiohttp.WSServerHandshakeError) as refused:
            await net.connect()
        assert refused.value.status == 503
        async with net.session.get(net.ws_url, headers={
                "Upgrade": "websocket", "Connection": "Upgrade", "Sec-WebSocket-Version": "13",
                "Sec-WebSocket-Key": base64.b64encode(os.urandom(16)).decode()}) as response:
            assert response.status == 503
            assert "at most 2 WebSocket clients from one address" in await response.text()
        assert rpc.ws_by_ip == {"127.0.0.1": 3, "203.0.113.7": 2}
        # Those in are served; one leaving makes room for another.
        assert (await second.call("status"))["result"]["chain_id"] == CHAIN
        await first.ws.close()
        async with asyncio.timeout(WAIT):
            while rpc.ws_by_ip.get("203.0.113.7") != 1:
                await second.call("status")  # a round trip: the node has seen the close
        third = await net.connect()
        assert rpc.ws_by_ip == {"127.0.0.1": 3, "203.0.113.7": 2}
        for ws in (*local, second, third):
            await ws.ws.close()


async def test_a_client_with_no_subscriptions_and_no_requests_is_closed_when_idle(
        tmp_path: Path) -> None:
    idle_ms = 300
    async with running_node(tmp_path, ws_idle_timeout_ms=idle_ms) as net:
        loop = asyncio.get_running_loop()
        started = loop.time()
        idle = await net.connect()
        subscribed = await net.connect()
        sub = await subscribed.subscribe("blocks")
        chatty = await net.connect()
        answers: list[dict[str, Any]] = []

        async def keep_asking() -> None:
            # A request every sixth of the timeout, from the moment it connects (asking
            # only as blocks came raced the idle one's close on a loaded machine).
            while True:
                answers.append(await chatty.call("status"))
                await asyncio.sleep(idle_ms / 6000)

        asking = asyncio.create_task(keep_asking())
        # The idle one is told why, no sooner than the timeout.
        message = await idle.close_frame()
        assert message.type == aiohttp.WSMsgType.CLOSE, message
        assert message.data == aiohttp.WSCloseCode.OK
        assert message.extra == "idle: no subscriptions and no request for 0.3 s"
        assert loop.time() - started >= idle_ms / 1000
        # One with a subscription stays, and so does one that keeps asking, for three
        # timeouts more.
        since = loop.time()
        headers: list[dict[str, Any]] = []
        async with asyncio.timeout(WAIT):
            while loop.time() - since < 3 * idle_ms / 1000:
                sub_id, header = await subscribed.note()
                assert sub_id == sub
                headers.append(header)
        headers_in_order(headers)
        asking.cancel()
        assert answers and all(a["result"]["chain_id"] == CHAIN for a in answers)
        assert not chatty.ws.closed
        await chatty.ws.close()
        # Without its subscription it is idle too: closed a timeout after its last
        # request.
        asked = loop.time()
        assert (await subscribed.call("unsubscribe_all"))["result"] == 1
        message = await subscribed.close_frame()
        assert message.type == aiohttp.WSMsgType.CLOSE, message
        assert message.extra.startswith("idle: ")
        assert loop.time() - asked >= idle_ms / 1000
        assert net.node.rpc.dropped_slow == 0  # idle is not slow


# ---------------------------------------------------------------------- ping / pong


async def test_pings_keep_an_idle_client_and_one_that_never_answers_is_dropped(
        tmp_path: Path) -> None:
    async with running_node(tmp_path, ws_ping_interval_ms=100) as net:
        before = set(net.node.rpc.connections)
        idle = await net.connect(autoping=False)
        await idle.send(request(1, "status"))
        pings = 0
        async with asyncio.timeout(WAIT):
            while (message := await idle.ws.receive()).type == aiohttp.WSMsgType.PING:
                pings += 1
                await idle.ws.pong(message.data)
        assert json.loads(message.data)["id"] == 1
        conn = net.connection_added(before)
        async with asyncio.timeout(WAIT):
            while pings < 4:  # about four intervals, answered: still connected
                message = await idle.ws.receive()
                assert message.type == aiohttp.WSMsgType.PING, message
                pings += 1
                await idle.ws.pong(message.data)
        assert conn in net.node.rpc.connections and not conn.closed
        # Now it stops answering: the node closes it.
        async with asyncio.timeout(WAIT):
            while (message := await idle.ws.receive()).type == aiohttp.WSMsgType.PING:
                pass
        assert message.type in (aiohttp.WSMsgType.CLOSE, aiohttp.WSMsgType.CLOSED,
                                aiohttp.WSMsgType.ERROR), message
        await idle.ws.close()
        # A client on a bare socket that reads nothing is dropped the same way.
        before = set(net.node.rpc.connections)
        silent = await RawWS.connect(net.host, net.port)
        try:
            opcodes, code, _ = await silent.read_to_close()  # pings, then EOF
            assert set(opcodes) <= {0x9, 0x8} and 0x9 in opcodes
        finally:
            silent.close()
        assert not (net.node.rpc.connections - before)


# ---------------------------------------------------------------------- stop


async def test_stop_closes_every_websocket_promptly(tmp_path: Path) -> None:
    async with AsyncExitStack() as stack:
        net = await stack.enter_async_context(running_node(tmp_path))
        reading = await net.connect()
        await reading.subscribe("blocks")
        idle = await net.connect()
        stalled = await RawWS.connect(net.host, net.port)
        stack.callback(stalled.close)
        await stalled.subscribe("blocks")
        # One more that reads nothing, with its socket buffers full: its close frame
        # cannot go out at all.
        before = set(net.node.rpc.connections)
        full = await RawWS.connect(net.host, net.port)
        stack.callback(full.close)
        await full.subscribe("blocks")
        full_conn = net.connection_added(before)
        full_socket = full_conn.transport.get_extra_info("socket")
        for n in range(1, 101):
            await full.send(request(n, "genesis"))
        await at_a_block(net, lambda: full_conn.transport.get_write_buffer_size() > 0)

        loop = asyncio.get_running_loop()
        started = loop.time()
        stopping = asyncio.create_task(net.node.stop())
        for client in (reading, idle):
            message = await client.close_frame()
            assert message.type == aiohttp.WSMsgType.CLOSE, message
            assert message.data == aiohttp.WSCloseCode.GOING_AWAY
            assert message.extra == "the node is stopping"
        opcodes, code, reason = await stalled.read_to_close()
        assert (code, reason) == (1001, "the node is stopping")
        async with asyncio.timeout(WAIT):
            await stopping
        assert loop.time() - started < STOP_GRACE + 1.5
        assert not net.node.rpc.connections
        assert full_socket.fileno() == -1


async def at_a_block(net: Running, condition: Any) -> None:
    """Wait (bounded) for ``condition()``, checked as each block commits."""
    met = asyncio.Event()

    def committed(_event: BlockCommitted) -> None:
        if condition():
            met.set()

    stop = net.node.events.listen(BlockCommitted, committed)
    try:
        if not condition():
            async with asyncio.timeout(WAIT):
                await met.wait()
    finally:
        stop()


# ---------------------------------------------------------------------- contract events


async def test_an_events_subscription_sees_exactly_the_events_of_its_order(
        tmp_path: Path) -> None:
    from rpc_helpers import (
        ARBITER,
        BUYER_1,
        BUYER_2,
        MERCHANT,
        MUG,
        MUG_PRICE,
        MUG_VERSION,
        NOBODY,
        Calls,
        commerce_node,
    )

    chain_id = "agora-ws-events"
    calls = Calls(chain_id)
    async with commerce_node(tmp_path, chain_id) as net, aiohttp.ClientSession() as session:
        ws = WS(await session.ws_connect(net.url + "websocket"))
        blocks = await ws.subscribe("blocks")
        placed = await ws.subscribe("events", contract="escrow", event="OrderPlaced")
        of_buyer_2 = await ws.subscribe("events", account=address_to_text(BUYER_2.address))
        unknown = await ws.call("subscribe", kind="events", contract="nonesuch")
        assert unknown["error"]["code"] == Codes.INVALID_PARAMS

        def place(buyer: PrivateKey) -> Transaction:
            return calls(buyer, "escrow", "place_order", MUG, MUG_VERSION, 1,
                         ARBITER.address, NOBODY, value=MUG_PRICE)

        answers = await net.commit_all([place(BUYER_1), place(BUYER_2)])
        order_ids = {}
        for answer in answers:
            [event] = [e for e in answer["receipt"]["events"] if e["name"] == "OrderPlaced"]
            order_ids[event["fields"]["buyer"]] = int(event["fields"]["order_id"])
        first = order_ids[address_to_text(BUYER_1.address)]
        second = order_ids[address_to_text(BUYER_2.address)]
        of_first = await ws.subscribe("events", contract="escrow", order_id=first)
        of_second = await ws.subscribe("events", order_id=second)
        answers += [await net.commit(calls(MERCHANT, "escrow", "ship", first, "TRACK-1")),
                    await net.commit(calls(MERCHANT, "escrow", "decline", second))]
        last = max(a["height"] for a in answers)
        seen: dict[str, list[dict[str, Any]]] = {
            sub: [] for sub in (placed, of_buyer_2, of_first, of_second)}
        async with asyncio.timeout(WAIT):
            while True:
                sub_id, result = await ws.note()
                if sub_id == blocks:
                    if result["height"] > last:
                        break
                else:
                    seen[sub_id].append(result)

        # What the chain says happened, from the receipts, in order.
        chain_events = [(a["height"], a["index"], n, e) for a in answers
                        for n, e in enumerate(a["receipt"]["events"])]
        chain_events.sort(key=lambda c: c[:3])

        def expected(keep: Any, since: int = 0) -> list[tuple[int, int, int]]:
            return [(h, i, n) for h, i, n, e in chain_events if h >= since and keep(e)]

        def got(sub: str) -> list[tuple[int, int, int]]:
            return [(r["height"], r["tx_index"], r["event_index"]) for r in seen[sub]]

        escrow = net.node.chain.contract("escrow").address
        assert got(placed) == expected(lambda e: e["name"] == "OrderPlaced"
                                       and e["contract"] == address_to_text(escrow))
        assert len(got(placed)) == 2
        assert got(of_buyer_2) == expected(
            lambda e: address_to_text(BUYER_2.address) in (e["fields"] or {}).values())
        since = answers[2]["height"]  # of_first/of_second began after the orders were placed
        assert got(of_first) == expected(
            lambda e: e["contract"] == address_to_text(escrow)
            and (e["fields"] or {}).get("order_id") == str(first), since)
        assert got(of_second) == expected(
            lambda e: (e["fields"] or {}).get("order_id") == str(second), since)
        assert got(of_first) and got(of_second)
        assert {r["name"] for r in seen[of_first]} == {"OrderChanged"}
        note = seen[of_first][0]
        assert note["contract_name"] == "escrow" and note["fields"]["note"] == "TRACK-1"
        await ws.ws.close()


async def test_event_matching_examines_only_the_groups_an_event_can_reach(
        tmp_path: Path) -> None:
    """Two hundred `events` subscriptions for accounts no event names, and forty alike
    that take everything, cost each event a handful of look-ups — not a check against
    every subscription (the old hub's 240 per event). The node caps subscriptions of
    all its clients together."""
    from rpc_helpers import (
        ARBITER,
        BUYER_1,
        BUYER_2,
        MUG,
        MUG_PRICE,
        MUG_VERSION,
        NOBODY,
        Calls,
        commerce_node,
    )

    chain_id = "agora-ws-index"
    calls = Calls(chain_id)
    rpc = {"ws_max_subscriptions": 250, "ws_max_total_subscriptions": 245}
    async with commerce_node(tmp_path, chain_id, rpc) as net, aiohttp.ClientSession() as session:
        hub = net.node.rpc.hub
        crowd = WS(await session.ws_connect(net.url + "websocket"))
        crowd_blocks = await crowd.subscribe("blocks")
        strangers = [await crowd.subscribe("events", account=address_to_text(
            PrivateKey.from_seed_text(f"ws-index-{i}").address)) for i in range(200)]
        everything = [await crowd.subscribe("events") for _ in range(40)]
        watcher = WS(await session.ws_connect(net.url + "websocket"))
        blocks = await watcher.subscribe("blocks")
        placed = await watcher.subscribe("events", contract="escrow", event="OrderPlaced")
        buyer_2 = address_to_text(BUYER_2.address)
        of_buyer_2 = await watcher.subscribe("events", account=buyer_2)
        assert len(hub) == 244
        hub.examined = hub.decoded = 0

        def place(buyer: PrivateKey) -> Transaction:
            return calls(buyer, "escrow", "place_order", MUG, MUG_VERSION, 1,
                         ARBITER.address, NOBODY, value=MUG_PRICE)

        answers = await net.commit_all([place(BUYER_1), place(BUYER_2)])
        last = max(a["height"] for a in answers)
        chain_events = sorted(((a["height"], a["index"], n), e) for a in answers
                              for n, e in enumerate(a["receipt"]["events"]))

        async def notes_to(ws: WS, blocks_sub: str) -> dict[str, list[tuple[int, int, int]]]:
            seen: dict[str, list[tuple[int, int, int]]] = {}
            async with asyncio.timeout(WAIT):
                while True:
                    sub_id, result = await ws.note()
                    if sub_id == blocks_sub:
                        if result["height"] > last:
                            return seen
                    else:
                        seen.setdefault(sub_id, []).append(
                            (result["height"], result["tx_index"], result["event_index"]))

        to_watcher = await notes_to(watcher, blocks)
        to_crowd = await notes_to(crowd, crowd_blocks)
        every = [where for where, _ in chain_events]
        names_buyer_2 = [where for where, e in chain_events
                         if buyer_2 in (e["fields"] or {}).values()]
        placed_events = [where for where, e in chain_events if e["name"] == "OrderPlaced"]
        assert to_watcher == {placed: placed_events, of_buyer_2: names_buyer_2}
        assert len(placed_events) == 2 and names_buyer_2
        assert to_crowd == {sub: every for sub in everything}  # nothing to the strangers
        # Per event: the match-everything group, the (escrow, OrderPlaced) group for
        # the two orders placed, BUYER_2's group where the event names BUYER_2; none
        # of the strangers' groups. Each event decoded at most once.
        assert hub.examined == len(every) + len(placed_events) + len(names_buyer_2)
        assert hub.decoded <= len(every)

        # The node-wide cap (245): one more, then a refusal that says why.
        await watcher.subscribe("txs")
        refused = await watcher.call("subscribe", kind="blocks")
        assert refused["error"]["code"] == Codes.LIMIT
        assert "at most 245 subscriptions for all its clients together" in \
            refused["error"]["data"]
        assert (await crowd.call("unsubscribe", subscription=strangers[0]))["result"] is True
        await watcher.subscribe("blocks")
        # Unsubscribing leaves no empty groups behind.
        assert (await crowd.call("unsubscribe_all"))["result"] == 240
        assert len(hub) == 5
        assert set(hub._events_by_account) == {buyer_2}
        assert len(hub._event_groups) == 2 and not hub._events_by_order
        await crowd.ws.close()
        await watcher.ws.close()


async def test_an_answer_over_websocket_holds_at_most_a_mebibyte(tmp_path: Path) -> None:
    """Hostile test: 100 clients that asked for batches of big answers and never read
    them held 2.5 GB. Over WebSocket one answer is at most WS_MAX_ANSWER; the rest of a
    batch is refused, each item under its own id, with the reason."""
    async with running_node(tmp_path) as net:
        ws = await net.connect(max_msg_size=4 * WS_MAX_ANSWER)
        await ws.send([{"jsonrpc": "2.0", "method": "genesis", "id": i} for i in range(30)])
        message = await ws.ws.receive(timeout=WAIT)
        assert message.type == aiohttp.WSMsgType.TEXT
        assert len(message.data) <= WS_MAX_ANSWER
        answers = json.loads(message.data)
        assert sorted(a["id"] for a in answers) == list(range(30))
        refused = [a for a in answers if "error" in a]
        assert refused and len(refused) < 30
        assert all(a["error"]["code"] == Codes.NOT_ANSWERABLE
                   and "ask for less" in a["error"]["data"] for a in refused)
        # Over HTTP the same batch fits the node's larger limit.
        async with net.session.post(f"http://127.0.0.1:{net.port}/", json=[
                {"jsonrpc": "2.0", "method": "genesis", "id": i} for i in range(30)]) as r:
            assert all("result" in a for a in await r.json())
