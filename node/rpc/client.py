"""The Python client of a node's JSON-RPC API: :class:`RPCClient` (asyncio, aiohttp)
with one typed method per API method, :class:`SyncClient` for scripts, and helpers that
build signed transactions for it. The CLI wallet, tests and benchmarks use it.

A JSON-RPC error is raised as :class:`RPCFailed` carrying the node's ``code``, its
``message`` and ``data`` (the reason); a node that cannot be reached raises
:class:`NodeUnreachable`.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Sequence
from typing import Any

import aiohttp

from chain.address import address_to_text
from chain.keys import PrivateKey
from chain.tx import Transaction, Transfer

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


class RPCClient:
    def __init__(self, url: str, session: aiohttp.ClientSession | None = None,
                 timeout: float = 60.0) -> None:
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
        if not isinstance(answer, dict):
            raise NodeUnreachable(f"{self.url} did not answer in JSON-RPC")
        if "error" in answer:
            raise RPCFailed(method, answer["error"])
        return answer["result"]

    # ------------------------------------------------------------ node

    async def status(self) -> dict[str, Any]:
        return await self.call("status")

    async def health(self) -> dict[str, Any]:
        return await self.call("health")

    async def net_info(self) -> dict[str, Any]:
        return await self.call("net_info")

    async def genesis(self) -> dict[str, Any]:
        return await self.call("genesis")

    async def validators(self, height: int | None = None) -> dict[str, Any]:
        return await self.call("validators", **_opt(height=height))

    async def mempool_status(self) -> dict[str, Any]:
        return await self.call("mempool_status")

    async def discover(self) -> dict[str, Any]:
        return await self.call("rpc.discover")

    # ------------------------------------------------------------ blocks

    async def block(self, height: int | None = None) -> dict[str, Any]:
        return await self.call("block", **_opt(height=height))

    async def block_by_hash(self, block_hash: bytes | str) -> dict[str, Any]:
        return await self.call("block_by_hash", hash=_hex(block_hash))

    async def header(self, height: int | None = None) -> dict[str, Any]:
        return await self.call("header", **_opt(height=height))

    async def commit(self, height: int | None = None) -> dict[str, Any]:
        return await self.call("commit", **_opt(height=height))

    # ------------------------------------------------------------ transactions

    async def tx(self, tx_hash: bytes | str, *, prove: bool = False) -> dict[str, Any]:
        return await self.call("tx", hash=_hex(tx_hash), **({"prove": True} if prove else {}))

    async def broadcast_tx_async(self, tx: Transaction) -> dict[str, Any]:
        return await self.call("broadcast_tx_async", tx=tx.encode().hex())

    async def broadcast_tx_sync(self, tx: Transaction) -> dict[str, Any]:
        return await self.call("broadcast_tx_sync", tx=tx.encode().hex())

    async def broadcast_tx_commit(self, tx: Transaction) -> dict[str, Any]:
        return await self.call("broadcast_tx_commit", tx=tx.encode().hex())

    async def broadcast_txs(self, txs: Sequence[Transaction | bytes]) -> list[dict[str, Any]]:
        return await self.call("broadcast_txs", txs=[
            (t if isinstance(t, bytes) else t.encode()).hex() for t in txs])

    # ------------------------------------------------------------ state

    async def account(self, address: bytes | str, height: int | None = None) -> dict[str, Any]:
        return await self.call("account", address=_address(address), **_opt(height=height))

    async def account_history(self, address: bytes | str, *, limit: int | None = None,
                              before: str | None = None) -> dict[str, Any]:
        return await self.call("account_history", address=_address(address),
                               **_opt(limit=limit, before=before))

    async def token_balance(self, address: bytes | str,
                            height: int | None = None) -> dict[str, Any]:
        return await self.call("token_balance", address=_address(address),
                               **_opt(height=height))

    async def call_contract(self, contract: str, method: str,
                            args: Sequence[Any] | dict[str, Any] = (), *,
                            sender: bytes | str | None = None,
                            height: int | None = None) -> dict[str, Any]:
        """``call``: a read-only contract call (named so as not to hide :meth:`call`)."""
        return await self.call("call", contract=contract, method=method,
                               args=args if isinstance(args, dict) else list(args),
                               **_opt(sender=_address(sender) if sender else None,
                                      height=height))

    async def contracts(self) -> list[dict[str, Any]]:
        return await self.call("contracts")

    async def proof(self, *, keys: Sequence[bytes] = (), tx: bytes | str | None = None,
                    height: int | None = None) -> dict[str, Any]:
        return await self.call("proof", keys=[k.hex() for k in keys],
                               **_opt(tx=_hex(tx) if tx is not None else None, height=height))

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

    # ------------------------------------------------------------ commerce

    async def listing(self, listing_id: int) -> dict[str, Any]:
        return await self.call("listing", listing_id=listing_id)

    async def listings(self, merchant: bytes | str, *, limit: int | None = None,
                       before: str | None = None) -> dict[str, Any]:
        return await self.call("listings", merchant=_address(merchant),
                               **_opt(limit=limit, before=before))

    async def order(self, order_id: int, *, history_limit: int | None = None,
                    history_after: str | None = None) -> dict[str, Any]:
        return await self.call("order", order_id=order_id,
                               **_opt(history_limit=history_limit, history_after=history_after))

    async def orders(self, *, buyer: bytes | str | None = None,
                     merchant: bytes | str | None = None, state: str | None = None,
                     limit: int | None = None, before: str | None = None) -> dict[str, Any]:
        """A buyer's or a merchant's orders (name one), optionally in one ``state``."""
        return await self.call("orders", **_opt(
            buyer=_address(buyer) if buyer is not None else None,
            merchant=_address(merchant) if merchant is not None else None,
            state=state, limit=limit, before=before))

    async def group(self, group_id: int, *, limit: int | None = None,
                    before: str | None = None) -> dict[str, Any]:
        return await self.call("group", group_id=group_id, **_opt(limit=limit, before=before))

    async def merchant(self, merchant: bytes | str) -> dict[str, Any]:
        return await self.call("merchant", merchant=_address(merchant))

    async def arbiter(self, arbiter: bytes | str) -> dict[str, Any]:
        return await self.call("arbiter", arbiter=_address(arbiter))

    async def reviews(self, *, merchant: bytes | str | None = None,
                      listing_id: int | None = None, order_id: int | None = None,
                      limit: int | None = None, before: str | None = None) -> dict[str, Any]:
        """The reviews of a merchant, a listing or an order (name one)."""
        return await self.call("reviews", **_opt(
            merchant=_address(merchant) if merchant is not None else None,
            listing_id=listing_id, order_id=order_id, limit=limit, before=before))

    async def events(self, contract: bytes | str, *, name: str | None = None,
                     from_height: int | None = None, to_height: int | None = None,
                     limit: int | None = None, before: str | None = None) -> dict[str, Any]:
        """Contract events of ``contract`` (a name such as "escrow", or an address)."""
        return await self.call("events", contract=_address(contract), **_opt(
            name=name, from_height=from_height, to_height=to_height, limit=limit,
            before=before))


def _hex(value: bytes | str) -> str:
    return value.hex() if isinstance(value, bytes) else value


class SyncClient:
    """The client for scripts without an event loop: ``SyncClient(url).status()``."""

    def __init__(self, url: str, timeout: float = 60.0) -> None:
        self.url = url
        self.timeout = timeout

    def __getattr__(self, name: str) -> Any:
        method = getattr(RPCClient, name)

        def run(*args: Any, **kwargs: Any) -> Any:
            async def go() -> Any:
                async with RPCClient(self.url, timeout=self.timeout) as client:
                    return await method(client, *args, **kwargs)
            return asyncio.run(go())
        return run


def transfer(key: PrivateKey, chain_id: str, nonce: int, to: bytes, amount: int, *,
             gas_price: int = 1, memo: str = "") -> Transaction:
    return Transaction.create(key, chain_id, nonce, Transfer(to, amount),
                              gas_limit=TRANSFER_GAS, gas_price=gas_price, memo=memo)
