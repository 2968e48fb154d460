"""The Python client of a node's JSON-RPC API: one typed method per API method
(:class:`RPCMethods`), over two transports — :class:`RPCClient` (asyncio, aiohttp;
``await client.status()``) and :class:`SyncClient` (the standard library's
http.client, one kept-alive connection; ``client.status()``) — and helpers that build
signed transactions for them. The CLI wallet uses the synchronous client, which does
not import aiohttp (0.4 s of a command's start); tests and benchmarks use either.

A JSON-RPC error is raised as :class:`RPCFailed` carrying the node's ``code``, its
``message`` and ``data`` (the reason); a node that cannot be reached raises
:class:`NodeUnreachable`.
"""

from __future__ import annotations

import http.client
import io
import json
import math
import re
import socket
import time
from collections.abc import AsyncIterator, Awaitable, Iterator, Sequence
from typing import TYPE_CHECKING, Any, Generic, TypeVar
from urllib.parse import urlsplit

from chain.address import address_to_text
from chain.keys import PrivateKey
from chain.tx import Transaction, Transfer

if TYPE_CHECKING:
    import aiohttp

#: Gas for a native transfer: the intrinsic cost of a transaction up to 400 bytes
#: (unused gas is refunded).
TRANSFER_GAS = 2_000 + 10 * 400


class RPCFailed(Exception):
    """The node answered with a JSON-RPC error."""

    def __init__(self, method: str, error: dict[str, Any]) -> None:
        self.method = method
        self.code = error.get("code")
        self.message = error.get("message")
        self.data = error.get("data")
        reason = f": {self.data}" if self.data is not None else ""
        super().__init__(f"{method}: {self.message}{reason} (code {self.code})")


class NodeUnreachable(Exception):
    """No answer from the node (connection refused, timed out, not JSON-RPC)."""


def _address(value: bytes | str) -> str:
    return address_to_text(value) if isinstance(value, bytes) else value


def _opt(**params: Any) -> dict[str, Any]:
    return {k: v for k, v in params.items() if v is not None}


R = TypeVar("R")


class RPCMethods(Generic[R]):
    """The API's methods, typed, over an abstract :meth:`call`: ``R`` is what a call
    gives — an awaitable for :class:`RPCClient`, the result for :class:`SyncClient`."""

    def call(self, method: str, /, **params: Any) -> R:
        raise NotImplementedError

    # ------------------------------------------------------------ node

    def status(self) -> R:
        return self.call("status")

    def health(self) -> R:
        return self.call("health")

    def net_info(self) -> R:
        return self.call("net_info")

    def genesis(self) -> R:
        return self.call("genesis")

    def validators(self, height: int | None = None) -> R:
        return self.call("validators", **_opt(height=height))

    def mempool_status(self) -> R:
        return self.call("mempool_status")

    def discover(self) -> R:
        return self.call("rpc.discover")

    # ------------------------------------------------------------ blocks

    def block(self, height: int | None = None) -> R:
        return self.call("block", **_opt(height=height))

    def block_by_hash(self, block_hash: bytes | str) -> R:
        return self.call("block_by_hash", hash=_hex(block_hash))

    def header(self, height: int | None = None) -> R:
        return self.call("header", **_opt(height=height))

    def commit(self, height: int | None = None) -> R:
        return self.call("commit", **_opt(height=height))

    # ------------------------------------------------------------ transactions

    def tx(self, tx_hash: bytes | str, *, prove: bool = False) -> R:
        return self.call("tx", hash=_hex(tx_hash), **({"prove": True} if prove else {}))

    def broadcast_tx_async(self, tx: Transaction) -> R:
        return self.call("broadcast_tx_async", tx=tx.encode().hex())

    def broadcast_tx_sync(self, tx: Transaction) -> R:
        return self.call("broadcast_tx_sync", tx=tx.encode().hex())

    def broadcast_tx_commit(self, tx: Transaction) -> R:
        return self.call("broadcast_tx_commit", tx=tx.encode().hex())

    def broadcast_txs(self, txs: Sequence[Transaction | bytes]) -> R:
        return self.call("broadcast_txs", txs=[
            (t if isinstance(t, bytes) else t.encode()).hex() for t in txs])

    # ------------------------------------------------------------ state

    def account(self, address: bytes | str, height: int | None = None) -> R:
        return self.call("account", address=_address(address), **_opt(height=height))

    def account_history(self, address: bytes | str, *, limit: int | None = None,
                        before: str | None = None) -> R:
        return self.call("account_history", address=_address(address),
                         **_opt(limit=limit, before=before))

    def token_balance(self, address: bytes | str,
                      height: int | None = None) -> R:
        return self.call("token_balance", address=_address(address),
                         **_opt(height=height))

    def call_contract(self, contract: str, method: str,
                      args: Sequence[Any] | dict[str, Any] = (), *,
                      sender: bytes | str | None = None,
                      height: int | None = None, value: int = 0,
                      time_ms: int | None = None) -> R:
        """``call``: a read-only contract call (named so as not to hide :meth:`call`)."""
        return self.call("call", contract=contract, method=method,
                         args=args if isinstance(args, dict) else list(args),
                         **_opt(sender=_address(sender) if sender else None,
                                height=height, value=str(value) if value else None,
                                time_ms=time_ms))

    def contracts(self) -> R:
        return self.call("contracts")

    def proof(self, *, keys: Sequence[bytes] = (), tx: bytes | str | None = None,
              height: int | None = None) -> R:
        return self.call("proof", keys=[k.hex() for k in keys],
                         **_opt(tx=_hex(tx) if tx is not None else None, height=height))

    # ------------------------------------------------------------ commerce

    def listing(self, listing_id: int) -> R:
        return self.call("listing", listing_id=listing_id)

    def listings(self, merchant: bytes | str, *, limit: int | None = None,
                 before: str | None = None) -> R:
        return self.call("listings", merchant=_address(merchant),
                         **_opt(limit=limit, before=before))

    def order(self, order_id: int, *, history_limit: int | None = None,
              history_after: str | None = None) -> R:
        return self.call("order", order_id=order_id,
                         **_opt(history_limit=history_limit, history_after=history_after))

    def orders(self, *, buyer: bytes | str | None = None,
               merchant: bytes | str | None = None, state: str | None = None,
               limit: int | None = None, before: str | None = None) -> R:
        """A buyer's or a merchant's orders (name one), optionally in one ``state``."""
        return self.call("orders", **_opt(
            buyer=_address(buyer) if buyer is not None else None,
            merchant=_address(merchant) if merchant is not None else None,
            state=state, limit=limit, before=before))

    def group(self, group_id: int, *, limit: int | None = None,
              before: str | None = None) -> R:
        return self.call("group", group_id=group_id, **_opt(limit=limit, before=before))

    def merchant(self, merchant: bytes | str) -> R:
        return self.call("merchant", merchant=_address(merchant))

    def arbiter(self, arbiter: bytes | str) -> R:
        return self.call("arbiter", arbiter=_address(arbiter))

    def reviews(self, *, merchant: bytes | str | None = None,
                listing_id: int | None = None, order_id: int | None = None,
                limit: int | None = None, before: str | None = None) -> R:
        """The reviews of a merchant, a listing or an order (name one)."""
        return self.call("reviews", **_opt(
            merchant=_address(merchant) if merchant is not None else None,
            listing_id=listing_id, order_id=order_id, limit=limit, before=before))

    def events(self, contract: bytes | str, *, name: str | None = None,
               from_height: int | None = None, to_height: int | None = None,
               limit: int | None = None, before: str | None = None) -> R:
        """Contract events of ``contract`` (a name such as "escrow", or an address)."""
        return self.call("events", contract=_address(contract), **_opt(
            name=name, from_height=from_height, to_height=to_height, limit=limit,
            before=before))

    # ------------------------------------------------------------ governance

    def proposals(self, *, state: str | None = None, limit: int | None = None,
                  before: str | None = None) -> R:
        """The governance contract's proposals, newest first (``state``: only those
        open, passed, rejected, expired or void)."""
        return self.call("proposals", **_opt(state=state, limit=limit, before=before))

    def evidence(self, *, validator: bytes | str | None = None,
                 from_height: int | None = None, to_height: int | None = None,
                 limit: int | None = None, before: str | None = None) -> R:
        """Double votes recorded on chain (of ``validator``, or everyone's), newest first."""
        return self.call("evidence", **_opt(
            validator=_address(validator) if validator is not None else None,
            from_height=from_height, to_height=to_height, limit=limit, before=before))


class RPCClient(RPCMethods[Awaitable[Any]]):
    """The asyncio client (aiohttp), for code that runs in an event loop."""

    def __init__(self, url: str, session: aiohttp.ClientSession | None = None,
                 timeout: float = 60.0) -> None:
        import aiohttp

        self.url = url
        self._session = session
        self._own_session = session is None
        self.timeout = aiohttp.ClientTimeout(total=timeout)
        self._ids = 0

    async def __aenter__(self) -> RPCClient:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    async def close(self) -> None:
        if self._own_session and self._session is not None:
            await self._session.close()
            self._session = None

    async def call(self, method: str, /, **params: Any) -> Any:
        """Call ``method`` with named parameters; its result (or RPCFailed)."""
        import aiohttp

        if self._session is None:
            self._session = aiohttp.ClientSession()
        self._ids += 1
        body = {"jsonrpc": "2.0", "id": self._ids, "method": method, "params": params}
        try:
            async with self._session.post(self.url, json=body,
                                          timeout=self.timeout) as response:
                if response.status != 200:
                    text = (await response.text())[:200]
                    raise NodeUnreachable(f"{self.url} answered HTTP {response.status}: {text}")
                answer = await response.json()
        except (aiohttp.ClientError, TimeoutError) as exc:
            raise NodeUnreachable(f"cannot reach the node at {self.url}: {exc}") from None
        return _result(self.url, method, answer)

    async def pages(self, method: str, key: str = "items", **params: Any
                    ) -> AsyncIterator[dict[str, Any]]:
        """Every item of a paged method, page after page (``next`` -> ``before``)."""
        while True:
            page = await self.call(method, **params)
            for item in page[key]:
                yield item
            if not page.get("next"):
                return
            params["before"] = page["next"]


def _result(url: str, method: str, answer: Any) -> Any:
    if not isinstance(answer, dict) or ("result" not in answer and "error" not in answer):
        raise NodeUnreachable(f"{url} did not answer in JSON-RPC")
    if "error" in answer:
        error = answer["error"]
        if not isinstance(error, dict):
            raise NodeUnreachable(f"{url} did not answer in JSON-RPC (its error is not an "
                                  "object)")
        raise RPCFailed(method, error)
    return answer["result"]


#: The most a synchronous call reads of an answer: a node that sends more (or never
#: stops) is cut off rather than filling the caller's memory. The largest honest answer
#: is a page of blocks or a contract's ABI, well under this.
MAX_ANSWER_BYTES = 32 * 1024 * 1024
_LABEL = re.compile(r"^[A-Za-z0-9-]{1,63}$")
_IP6 = re.compile(r"^[0-9a-fA-F:.]{2,45}$")


def _good_host(host: str) -> bool:
    """A DNS name, an IPv4 address, or an IPv6 address (what urlsplit left of it)."""
    if len(host) > 253:
        return False
    if ":" in host:
        return bool(_IP6.match(host))
    return all(_LABEL.match(label) for label in host.removesuffix(".").split("."))


class _Deadline:
    """When the call in flight must be over (monotonic seconds)."""

    at = math.inf

    def left(self) -> float:
        left = self.at - time.monotonic()
        if left <= 0:
            raise TimeoutError("timed out")
        return left


class _DeadlineSocket:
    """A connected socket whose every read and write must finish by one deadline. A
    plain socket timeout is per read, so a node that trickles its answer a byte at a
    time restarts it with every byte and holds the caller forever; this one sets each
    read's timeout to what is left of the call's."""

    def __init__(self, sock: socket.socket, deadline: _Deadline) -> None:
        self._sock = sock
        self._deadline = deadline

    def sendall(self, data: bytes) -> None:
        self._sock.settimeout(self._deadline.left())
        self._sock.sendall(data)

    def recv_into(self, buffer: Any) -> int:
        self._sock.settimeout(self._deadline.left())
        return self._sock.recv_into(buffer)

    def makefile(self, *_args: Any, **_kwargs: Any) -> io.BufferedReader:
        return io.BufferedReader(_DeadlineReader(self))

    def close(self) -> None:
        self._sock.close()

    def __getattr__(self, name: str) -> Any:
        return getattr(self._sock, name)


class _DeadlineReader(io.RawIOBase):
    def __init__(self, sock: _DeadlineSocket) -> None:
        self._sock = sock

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        return self._sock.recv_into(buffer)


class _HTTPConnection(http.client.HTTPConnection):
    deadline: _Deadline

    def connect(self) -> None:
        super().connect()
        self.sock = _DeadlineSocket(self.sock, self.deadline)


class _HTTPSConnection(http.client.HTTPSConnection):
    deadline: _Deadline

    def connect(self) -> None:
        super().connect()
        self.sock = _DeadlineSocket(self.sock, self.deadline)


class SyncClient(RPCMethods[Any]):
    """The client for scripts and the CLI: ``SyncClient(url).status()``. One HTTP/1.1
    connection, kept alive between calls and opened again if the node closed it.

    Every call ends within ``timeout`` seconds, all of it (connecting, sending, the
    node's work and its whole answer), and reads at most ``max_answer`` bytes: a node
    that hangs, trickles or floods raises :class:`NodeUnreachable` instead."""

    def __init__(self, url: str, timeout: float = 60.0,
                 max_answer: int = MAX_ANSWER_BYTES) -> None:
        try:
            parts = urlsplit(url)
            port = parts.port
        except ValueError as exc:
            raise NodeUnreachable(f"{url[:100]!r} is not a node URL ({exc}): use "
                                  "http://HOST:PORT") from None
        host = parts.hostname or ""
        if parts.scheme not in ("http", "https") or not host or not _good_host(host):
            raise NodeUnreachable(f"{url[:100]!r} is not a node URL: use http://HOST:PORT")
        self.url = url
        self.timeout = timeout
        self.max_answer = max_answer
        self._parts = parts
        self._host, self._port = host, port
        self._path = parts.path or "/"
        self._conn: _HTTPConnection | _HTTPSConnection | None = None
        self._deadline = _Deadline()
        self._ids = 0

    def __enter__(self) -> SyncClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        if self._conn is not None:
            self._conn.close()
            self._conn = None

    def _connection(self) -> _HTTPConnection | _HTTPSConnection:
        if self._conn is None:
            cls = _HTTPSConnection if self._parts.scheme == "https" else _HTTPConnection
            self._conn = cls(self._host, self._port, timeout=self.timeout)
            self._conn.deadline = self._deadline
        return self._conn

    def call(self, method: str, /, **params: Any) -> Any:
        """Call ``method`` with named parameters; its result (or RPCFailed)."""
        self._ids += 1
        body = json.dumps({"jsonrpc": "2.0", "id": self._ids, "method": method,
                           "params": params}).encode()
        self._deadline.at = time.monotonic() + self.timeout
        try:
            for attempt in (1, 2):
                conn = self._connection()
                try:
                    conn.request("POST", self._path, body,
                                 {"Content-Type": "application/json"})
                    response = conn.getresponse()
                    data = self._read(response)
                    break
                except (http.client.RemoteDisconnected, BrokenPipeError,
                        ConnectionResetError) as exc:
                    # A kept-alive connection the node closed while idle: dial again once.
                    self.close()
                    if attempt == 2:
                        raise NodeUnreachable(f"cannot reach the node at {self.url}: "
                                              f"{exc or 'the connection was closed'}"
                                              ) from None
                except (OSError, http.client.HTTPException, UnicodeError) as exc:
                    self.close()
                    raise NodeUnreachable(f"cannot reach the node at {self.url}: "
                                          f"{_reason(exc, self.timeout)}") from None
        finally:
            self._deadline.at = math.inf
        if response.status != 200:
            raise NodeUnreachable(f"{self.url} answered HTTP {response.status}: "
                                  f"{data[:200].decode(errors='replace')}")
        try:
            answer = json.loads(data)
        except ValueError:
            raise NodeUnreachable(f"{self.url} did not answer in JSON-RPC") from None
        return _result(self.url, method, answer)

    def _read(self, response: http.client.HTTPResponse) -> bytes:
        length = response.getheader("Content-Length")
        if length is not None and length.strip().isdigit() and int(length) > self.max_answer:
            self.close()
            raise NodeUnreachable(f"{self.url} sent an answer of {int(length):,} bytes, "
                                  f"more than the {self.max_answer:,} a call reads")
        data = response.read(self.max_answer + 1)
        if len(data) > self.max_answer:
            self.close()
            raise NodeUnreachable(f"{self.url} sent an answer of more than "
                                  f"{self.max_answer:,} bytes, the most a call reads")
        if not response.isclosed():  # an answer longer than its own Content-Length
            self.close()
        return data

    def pages(self, method: str, key: str = "items", **params: Any
              ) -> Iterator[dict[str, Any]]:
        """Every item of a paged method, page after page (``next`` -> ``before``)."""
        while True:
            page = self.call(method, **params)
            yield from page[key]
            if not page.get("next"):
                return
            params["before"] = page["next"]


def _reason(exc: BaseException, timeout: float) -> str:
    if isinstance(exc, TimeoutError):
        return f"no complete answer within {timeout:g} s"
    if isinstance(exc, OSError) and exc.strerror:
        return exc.strerror
    return str(exc) or type(exc).__name__


def _hex(value: bytes | str) -> str:
    return value.hex() if isinstance(value, bytes) else value


def transfer(key: PrivateKey, chain_id: str, nonce: int, to: bytes, amount: int, *,
             gas_price: int = 1, memo: str = "") -> Transaction:
    return Transaction.create(key, chain_id, nonce, Transfer(to, amount),
                              gas_limit=TRANSFER_GAS, gas_price=gas_price, memo=memo)
