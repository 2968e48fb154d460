"""A Python client for a node's JSON-RPC API (asyncio, aiohttp), and helpers that
build signed transactions for it. The CLI wallet, tests and benchmarks use it."""

from __future__ import annotations

from typing import Any

import aiohttp

from chain.keys import PrivateKey
from chain.tx import Transaction, Transfer

#: Gas for a native transfer: the intrinsic cost of a transaction up to 400 bytes
#: (unused gas is refunded).
TRANSFER_GAS = 2_000 + 10 * 400


class RPCFailed(Exception):
    """The node answered with a JSON-RPC error."""

    def __init__(self, method: str, error: dict[str, Any]) -> None:
        super().__init__(f"{method}: {error.get('message')} ({error.get('data')})")
        self.code = error.get("code")
        self.data = error.get("data")


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

    async def call(self, method: str, **params: Any) -> Any:
        if self._session is None:
            self._session = aiohttp.ClientSession()
        self._ids += 1
        body = {"jsonrpc": "2.0", "id": self._ids, "method": method, "params": params}
        async with self._session.post(self.url, json=body, timeout=self.timeout) as response:
            answer = await response.json()
        if "error" in answer:
            raise RPCFailed(method, answer["error"])
        return answer["result"]

    async def status(self) -> dict[str, Any]:
        return await self.call("status")

    async def block(self, height: int | None = None) -> dict[str, Any]:
        return await self.call("block", **({"height": height} if height else {}))

    async def tx(self, tx_hash: bytes) -> dict[str, Any]:
        return await self.call("tx", hash=tx_hash.hex())

    async def account(self, address: bytes) -> dict[str, Any]:
        return await self.call("account", address=address.hex())

    async def broadcast_tx_sync(self, tx: Transaction) -> dict[str, Any]:
        return await self.call("broadcast_tx_sync", tx=tx.encode().hex())

    async def broadcast_tx_commit(self, tx: Transaction) -> dict[str, Any]:
        return await self.call("broadcast_tx_commit", tx=tx.encode().hex())


def transfer(key: PrivateKey, chain_id: str, nonce: int, to: bytes, amount: int, *,
             gas_price: int = 1, memo: str = "") -> Transaction:
    return Transaction.create(key, chain_id, nonce, Transfer(to, amount),
                              gas_limit=TRANSFER_GAS, gas_price=gas_price, memo=memo)
