"""Regressions from the hostile test of the wallet: a node that hangs, trickles, floods,
answers nonsense or writes escape sequences ends a command in bounded time and memory,
with one sentence and exit 1, and nothing it sends drives the user's terminal; input
the wallet cannot use is exit 2 before any node is asked.

The node here is a plain socket server on 127.0.0.1 that plays one part per test."""

from __future__ import annotations

import json
import socket
import socketserver
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from chain.address import address_to_text
from node.wallet.runner import invoke, run

SOMEONE = address_to_text(bytes(range(20)))
ESC = "\x1b[2J\x1b]0;HACKED\x07\x9b31m\u202e"


def _read_request(conn: socket.socket) -> bytes | None:
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = conn.recv(65536)
        if not chunk:
            return None
        data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    length = next((int(line.split(b":")[1]) for line in head.split(b"\r\n")
                   if line.lower().startswith(b"content-length:")), 0)
    while len(body) < length:
        chunk = conn.recv(65536)
        if not chunk:
            return None
        body += chunk
    return body


def _answer(conn: socket.socket, body: bytes) -> None:
    conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n"
                 b"Content-Length: %d\r\n\r\n" % len(body) + body)


Part = Callable[[socket.socket, dict[str, Any], threading.Event], None]


@pytest.fixture
def node() -> Iterator[Callable[[Part], str]]:
    """``node(part)``: the URL of a node that plays ``part`` for every request."""
    servers: list[socketserver.ThreadingTCPServer] = []
    stop = threading.Event()

    def start(part: Part) -> str:
        class Handler(socketserver.BaseRequestHandler):
            def handle(self) -> None:
                self.request.settimeout(30)
                try:
                    while not stop.is_set():
                        body = _read_request(self.request)
                        if body is None:
                            return
                        part(self.request, json.loads(body), stop)
                except OSError:
                    return

        server = socketserver.ThreadingTCPServer(("127.0.0.1", 0), Handler)
        server.daemon_threads = True
        threading.Thread(target=server.serve_forever, daemon=True).start()
        servers.append(server)
        return f"http://127.0.0.1:{server.server_address[1]}"

    yield start
    stop.set()
    for server in servers:
        server.shutdown()
        server.server_close()


def _run(url: str, *args: Any, function: str = "balance", timeout: float = 60.0,
         as_json: bool = False, **kwargs: Any) -> tuple[int, list[str], list[str], float]:
    out: list[str] = []
    err: list[str] = []
    began = time.monotonic()
    code = run(invoke(function, *args, **kwargs), node=url, home=None, keystore=None,
               as_json=as_json, timeout=timeout, echo=out.append, err=err.append)
    return code, out, err, time.monotonic() - began


def test_a_node_that_trickles_its_answer_is_cut_at_the_deadline(node) -> None:
    def trickle(conn: socket.socket, request: dict[str, Any], stop: threading.Event) -> None:
        conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 100000\r\n\r\n")
        while not stop.is_set():  # a byte every 50 ms: each read gets something
            conn.sendall(b" ")
            stop.wait(0.05)

    code, out, err, took = _run(node(trickle), SOMEONE, timeout=1.5)
    assert code == 1 and out == []
    assert "no complete answer within 1.5 s" in err[0]
    assert took < 10


def test_a_node_that_trickles_its_headers_is_cut_at_the_deadline(node) -> None:
    def trickle(conn: socket.socket, request: dict[str, Any], stop: threading.Event) -> None:
        conn.sendall(b"HTTP/1.1 200 OK\r\n")
        while not stop.is_set():
            conn.sendall(b"X")
            stop.wait(0.05)

    code, _, err, took = _run(node(trickle), SOMEONE, timeout=1.5)
    assert code == 1 and "no complete answer within 1.5 s" in err[0] and took < 10


def test_a_node_that_never_stops_sending_is_cut_at_the_answer_cap(node) -> None:
    def flood(conn: socket.socket, request: dict[str, Any], stop: threading.Event) -> None:
        conn.sendall(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n")
        chunk = b" " * 1_000_000
        while not stop.is_set():
            conn.sendall(b"%x\r\n" % len(chunk) + chunk + b"\r\n")

    code, _, err, took = _run(node(flood), SOMEONE, timeout=30)
    assert code == 1 and "more than 33,554,432 bytes" in err[0]
    assert took < 30


def test_a_node_that_says_it_sends_a_gigabyte_is_not_read(node) -> None:
    def huge(conn: socket.socket, request: dict[str, Any], stop: threading.Event) -> None:
        conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 1000000000\r\n\r\n{")
        stop.wait(30)

    code, _, err, _took = _run(node(huge), SOMEONE, timeout=30)
    assert code == 1 and "1,000,000,000 bytes" in err[0]


def test_escape_sequences_from_a_node_never_reach_the_terminal(node) -> None:
    def hostile(conn: socket.socket, request: dict[str, Any], stop: threading.Event) -> None:
        _answer(conn, json.dumps({"jsonrpc": "2.0", "id": request["id"], "error": {
            "code": -1, "message": ESC + "A" * 2_000_000, "data": ESC}}).encode())

    code, out, err, _took = _run(node(hostile), SOMEONE)
    assert code == 1 and out == []
    text = "\n".join(err)
    assert not any(c in text for c in "\x1b\x07\x9b\u202e")
    assert "\\x1b[2J" in text  # shown, escaped
    assert len(text) < 5_000  # 2 MB of it is not printed
    # --json: one object, with the text escaped by JSON itself, bounded too.
    code, out, _, _took = _run(node(hostile), SOMEONE, as_json=True)
    assert code == 1 and len(out) == 1
    assert "\x1b" not in out[0] and len(out[0]) < 10_000
    assert json.loads(out[0])["ok"] is False


@pytest.mark.parametrize("answer", [
    "garbage", None, [1, 2], {"balance": "many"}, {"pending_nonce": 1},
    {"balance": {"a": 1}, "nonce": 0, "pending_nonce": 0, "is_contract": False}])
def test_a_nonsense_answer_is_a_sentence_not_a_traceback(node, answer: Any) -> None:
    def liar(conn: socket.socket, request: dict[str, Any], stop: threading.Event) -> None:
        _answer(conn, json.dumps({"jsonrpc": "2.0", "id": request["id"],
                                  "result": answer}).encode())

    code, out, err, _took = _run(node(liar), SOMEONE)
    assert code == 1 and out == []
    assert "gave an answer this wallet cannot read" in err[0]
    assert "Nothing was sent." in err[0]


def test_an_error_that_is_not_an_object_is_not_json_rpc(node) -> None:
    def liar(conn: socket.socket, request: dict[str, Any], stop: threading.Event) -> None:
        _answer(conn, json.dumps({"jsonrpc": "2.0", "id": request["id"],
                                  "error": "boom"}).encode())

    code, _, err, _took = _run(node(liar), SOMEONE)
    assert code == 1 and "did not answer in JSON-RPC" in err[0]


@pytest.mark.parametrize("url", ["http://[::1", "http://a b:1", "http://" + "a" * 300 + ":1",
                                 "http://127.0.0.1:99999", "ftp://127.0.0.1:1"])
def test_a_url_that_is_not_a_node_url_is_usage(url: str) -> None:
    code, _, err, _took = _run(url, SOMEONE)
    assert code == 2 and "is not a node URL" in err[0] and len(err[0]) < 400


def test_text_that_is_not_utf8_is_usage_before_any_node_is_asked() -> None:
    # A lone surrogate is what an undecodable byte in argv becomes.
    code, _, err, _took = _run("http://127.0.0.1:9", "merchant", function="listing_create",
                               title="caf\udce9", price="1", token_price=None, stock=1,
                               description="", terms=None)
    assert code == 2 and "--title holds bytes that are not UTF-8" in err[0]
