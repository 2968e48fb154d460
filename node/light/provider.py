"""A full node as the light node sees it: a source of claims, never of truth.

:class:`Provider` speaks the full node's public JSON-RPC (``header``, ``commit``,
``validators``, ``proof`` and the commerce methods) and turns answers into chain types,
decoding the canonical ``raw`` bytes the API carries beside every header and
certificate. It checks only that an answer is well formed; whether it is *true* is for
the verifier and the proofs. Every answer is bounded in size and time: a node that
sends too much, too slowly or garbage is :class:`Unreachable` (it did not answer) or,
where it answered something that cannot be what it claims, a liar
(:class:`InvalidLightBlock` / :class:`BadProof`).
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

import aiohttp

from chain.block import CommitCertificate, Header
from chain.errors import DecodeError, EncodeError
from chain.merkle import InclusionProof
from chain.validators import InvalidValidatorSet, Validator, ValidatorSet
from storage.proof import StateProof

from ..rpc.client import RPCFailed
from .errors import BadProof, InvalidLightBlock, Unreachable
from .verifier import LightBlock

#: The most one answer may hold (a batch of 33 light blocks of 1,000 validators is
#: ~8 MiB; an honest answer of anything the light node asks is far smaller).
MAX_ANSWER_BYTES = 16 * 1024 * 1024
#: Calls in one JSON-RPC batch (the full node's default limit is 100).
MAX_BATCH = 99
#: Light blocks fetched in one batch (three calls each).
BLOCKS_PER_BATCH = MAX_BATCH // 3


def _hex(value: Any, what: str) -> bytes:
    if not isinstance(value, str):
        raise BadProof(f"{what} is not hex")
    try:
        return bytes.fromhex(value)
    except ValueError:
        raise BadProof(f"{what} is not hex") from None


class Provider:
    """One full node's RPC, with batches, bounded answers and a timeout."""

    def __init__(self, url: str, *, timeout_s: float = 5.0,
                 session: aiohttp.ClientSession | None = None) -> None:
        self.url = url
        self.timeout = aiohttp.ClientTimeout(total=timeout_s)
        self._session = session
        self._own = session is None
        self._ids = 0

    def __repr__(self) -> str:
        return f"Provider({self.url})"

    async def close(self) -> None:
        if self._own and self._session is not None:
            await self._session.close()
            self._session = None

    # ------------------------------------------------------------ transport

    async def _post(self, body: Any) -> Any:
        if self._session is None:
            self._session = aiohttp.ClientSession()
        try:
            async with self._session.post(self.url, json=body, timeout=self.timeout) as resp:
                if resp.status != 200:
                    raise Unreachable(f"{self.url} answered HTTP {resp.status}")
                if (resp.content_length or 0) > MAX_ANSWER_BYTES:
                    raise Unreachable(f"{self.url} sent an answer over "
                                      f"{MAX_ANSWER_BYTES >> 20} MiB")
                chunks: list[bytes] = []
                total = 0
                async for chunk in resp.content.iter_chunked(1 << 16):
                    total += len(chunk)
                    if total > MAX_ANSWER_BYTES:
                        raise Unreachable(f"{self.url} sent an answer over "
                                          f"{MAX_ANSWER_BYTES >> 20} MiB")
                    chunks.append(chunk)
                data = b"".join(chunks)
        except (TimeoutError, aiohttp.ClientError, OSError) as exc:
            raise Unreachable(f"cannot reach {self.url}: {exc or type(exc).__name__}") from None
        try:
            return json.loads(data)
        except (ValueError, RecursionError):  # RecursionError: nested too deeply
            raise Unreachable(f"{self.url} did not answer in JSON") from None

    def _request(self, method: str, params: dict[str, Any]) -> dict[str, Any]:
        self._ids += 1
        return {"jsonrpc": "2.0", "id": self._ids, "method": method,
                "params": {k: v for k, v in params.items() if v is not None}}

    @staticmethod
    def _unwrap(method: str, answer: Any, url: str) -> Any:
        if not isinstance(answer, dict) or ("result" not in answer and "error" not in answer):
            raise Unreachable(f"{url} did not answer {method} in JSON-RPC")
        if "error" in answer:
            error = answer["error"]
            if not isinstance(error, dict):
                raise Unreachable(f"{url} did not answer {method} in JSON-RPC")
            raise RPCFailed(method, error)
        return answer["result"]

    async def call(self, method: str, /, **params: Any) -> Any:
        """One call: its result, or RPCFailed (the node's error) / Unreachable."""
        answer = await self._post(self._request(method, params))
        return self._unwrap(method, answer, self.url)

    async def batch(self, calls: Sequence[tuple[str, dict[str, Any]]]) -> list[Any]:
        """Several calls in one request; each result in its place, or its RPCFailed."""
        out: list[Any] = []
        for start in range(0, len(calls), MAX_BATCH):
            chunk = calls[start:start + MAX_BATCH]
            requests = [self._request(m, p) for m, p in chunk]
            answer = await self._post(requests)
            if not isinstance(answer, list) or len(answer) != len(requests):
                raise Unreachable(f"{self.url} did not answer a batch of {len(requests)}")
            by_id = {a.get("id"): a for a in answer if isinstance(a, dict)}
            for req, (method, _) in zip(requests, chunk, strict=True):
                try:
                    out.append(self._unwrap(method, by_id.get(req["id"]), self.url))
                except RPCFailed as exc:
                    out.append(exc)
        return out

    # ------------------------------------------------------------ light blocks

    async def latest_height(self) -> int:
        status = await self.call("status")
        height = status.get("height") if isinstance(status, dict) else None
        if not isinstance(height, int) or height < 0:
            raise Unreachable(f"{self.url} answered status without a height")
        return height

    async def light_blocks(self, heights: Sequence[int]) -> list[LightBlock]:
        """The light blocks of ``heights`` (RPCFailed if the node has one not)."""
        out: list[LightBlock] = []
        for start in range(0, len(heights), BLOCKS_PER_BATCH):
            chunk = heights[start:start + BLOCKS_PER_BATCH]
            calls: list[tuple[str, dict[str, Any]]] = []
            for h in chunk:
                calls += [("header", {"height": h}), ("commit", {"height": h}),
                          ("validators", {"height": h})]
            results = await self.batch(calls)
            for i, h in enumerate(chunk):
                header, commit, vset = results[3 * i:3 * i + 3]
                for r in (header, commit, vset):
                    if isinstance(r, RPCFailed):
                        raise r
                out.append(self.decode_light_block(h, header, commit, vset))
        return out

    async def light_block(self, height: int) -> LightBlock:
        return (await self.light_blocks([height]))[0]

    def decode_light_block(self, height: int, header: Any, commit: Any,
                           vset: Any) -> LightBlock:
        try:
            h = decode_header(header)
            c = CommitCertificate.decode(_hex(commit["raw"], "commit.raw"))
            validators = ValidatorSet(
                Validator(_hex(v["public_key"], "validators.public_key"), v["power"])
                for v in vset["validators"])
        except (KeyError, TypeError, DecodeError, EncodeError, InvalidValidatorSet, BadProof,
                ValueError) as exc:
            raise InvalidLightBlock(f"{self.url} sent a malformed light block for height "
                                    f"{height}: {exc}") from None
        if h.height != height:
            raise InvalidLightBlock(f"{self.url} sent header {h.height} when asked for {height}")
        return LightBlock(h, c, validators)

    # ------------------------------------------------------------ proofs

    async def state_proofs(self, keys: Sequence[bytes], height: int
                           ) -> list[tuple[bytes, bytes | None, StateProof]]:
        """(key, claimed value, proof) of each key at ``height``, unverified."""
        out: list[tuple[bytes, bytes | None, StateProof]] = []
        calls = [("proof", {"keys": [k.hex() for k in keys[i:i + 64]], "height": height})
                 for i in range(0, len(keys), 64)]
        for result in await self.batch(calls):
            if isinstance(result, RPCFailed):
                raise result
            try:
                if result["height"] != height:
                    raise BadProof(f"asked for height {height}, proved {result['height']}")
                for item in result["state"]:
                    value = item["value"]
                    out.append((_hex(item["key"], "key"),
                                None if value is None else _hex(value, "value"),
                                StateProof.decode(_hex(item["proof"], "proof"))))
            except (KeyError, TypeError, DecodeError, EncodeError, ValueError) as exc:
                raise BadProof(f"{self.url} sent a malformed state proof: {exc}") from None
        return out

    async def tx_proofs(self, hashes: Sequence[bytes]) -> list[dict[str, Any] | RPCFailed]:
        """The ``proof`` answers of committed transactions (decoded, unverified)."""
        results = await self.batch([("proof", {"tx": h.hex()}) for h in hashes])
        out: list[dict[str, Any] | RPCFailed] = []
        for r in results:
            if isinstance(r, RPCFailed):
                out.append(r)
                continue
            try:
                t = r["tx"]
                out.append({
                    "hash": _hex(t["hash"], "tx.hash"), "height": t["height"],
                    "index": t["index"], "tx": _hex(t["tx"], "tx.tx"),
                    "receipt": _hex(t["receipt"], "tx.receipt"),
                    "tx_proof": _inclusion(t["tx_proof"]),
                    "receipt_proof": _inclusion(t["receipt_proof"]),
                    "header": decode_header(t["header"])})
            except (KeyError, TypeError, DecodeError, EncodeError, ValueError) as exc:
                raise BadProof(f"{self.url} sent a malformed tx proof: {exc}") from None
        return out


def decode_header(view: Any) -> Header:
    header = Header.decode(_hex(view["raw"], "header.raw"))
    if "hash" in view and _hex(view["hash"], "header.hash") != header.hash:
        raise BadProof("a header's hash is not the hash of its bytes")
    return header


def _inclusion(view: Any) -> InclusionProof:
    path = tuple(_hex(p, "proof.path") for p in view["path"])
    if not isinstance(view["index"], int) or not isinstance(view["size"], int):
        raise BadProof("an inclusion proof's index and size are integers")
    return InclusionProof(view["index"], view["size"], path)
