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
import json
import socket
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
        raise RPCFailed(method, answer["error"])
    return answer["result"]


class SyncClient(RPCMethods[Any]):
    """The client for scripts and the CLI: ``SyncClient(url).status()``. One HTTP/1.1
    connection, kept alive between calls and opened again if the node closed it."""

    def __init__(self, url: str, timeout: float = 60.0) -> None:
        parts = urlsplit(url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise NodeUnreachable(f"{url!r} is not a node URL: use http://HOST:PORT")
        self.url = url
        self.timeout = timeout
        self._parts = parts
        self._path = parts.path or "/"
        self._conn: http.client.HTTPConnection | None = None
        self._ids = 0

    def __enter__(self) -> SyncClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        if self._conn is not None:
            self._conn.close()
            self._conn = None

    def _connection(self) -> http.client.HTTPConnection:
        if self._conn is None:
            cls = (http.client.HTTPSConnection if self._parts.scheme == "https"
                   else http.client.HTTPConnection)
            try:
                port = self._parts.port
            except ValueError:
                raise NodeUnreachable(f"{self.url!r} has a bad port") from None
            self._conn = cls(self._parts.hostname or "", port, timeout=self.timeout)
        return self._conn

    def call(self, method: str, /, **params: Any) -> Any:
        """Call ``method`` with named parameters; its result (or RPCFailed)."""
        self._ids += 1
        body = json.dumps({"jsonrpc": "2.0", "id": self._ids, "method": method,
                           "params": params}).encode()
        for attempt in (1, 2):
            conn = self._connection()
            try:
                conn.request("POST", self._path, body, {"Content-Type": "application/json"})
                response = conn.getresponse()
                data = response.read()
                break
            except (http.client.RemoteDisconnected, BrokenPipeError,
                    ConnectionResetError) as exc:
                # A kept-alive connection the node closed while idle: dial again once.
                self.close()
                if attempt == 2:
                    raise NodeUnreachable(f"cannot reach the node at {self.url}: {exc}") from None
            except (OSError, http.client.HTTPException) as exc:
                self.close()
                reason = ("timed out" if isinstance(exc, (TimeoutError, socket.timeout))
                          else exc.strerror or str(exc) if isinstance(exc, OSError) else str(exc))
                raise NodeUnreachable(f"cannot reach the node at {self.url}: {reason}") from None
        if response.status != 200:
            raise NodeUnreachable(f"{self.url} answered HTTP {response.status}: "
                                  f"{data[:200].decode(errors='replace')}")
        try:
            answer = json.loads(data)
        except ValueError:
            raise NodeUnreachable(f"{self.url} did not answer in JSON-RPC") from None
        return _result(self.url, method, answer)

    def pages(self, method: str, key: str = "items", **params: Any
              ) -> Iterator[dict[str, Any]]:
        """Every item of a paged method, page after page (``next`` -> ``before``)."""
        while True:
            page = self.call(method, **params)
            yield from page[key]
            if not page.get("next"):
                return
            params["before"] = page["next"]


def _hex(value: bytes | str) -> str:
    return value.hex() if isinstance(value, bytes) else value


def transfer(key: PrivateKey, chain_id: str, nonce: int, to: bytes, amount: int, *,
             gas_price: int = 1, memo: str = "") -> Transaction:
    return Transaction.create(key, chain_id, nonce, Transfer(to, amount),
                              gas_limit=TRANSFER_GAS, gas_price=gas_price, memo=memo)
