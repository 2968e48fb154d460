"""Where the explorer reads: the node's public JSON-RPC API and nothing else.

:class:`HttpSource` posts JSON-RPC batches to a node's URL (``agora explorer --node
URL``: a full node or a light node); :class:`LocalSource` hands the same JSON text to
the dispatcher of the node the explorer is mounted on (``/explorer/`` on a node), so
both read exactly what a client of the API reads -- names, parameters, result shapes,
limits and errors -- only without the loopback round trip.

A page asks for what it needs in one batch; each answer is a result or an
:class:`ApiError` in its place. Nothing here retries or caches: the explorer's pages
say what failed, in a sentence.
"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable, Sequence
from typing import Any, Protocol

#: The largest answer the explorer takes from a node over HTTP (a page's batch).
MAX_ANSWER_BYTES = 16 << 20
#: Seconds a batch may take over HTTP before the page says the node did not answer.
HTTP_TIMEOUT = 10.0
#: The most of a node's error message (or data) a page repeats.
MAX_TEXT = 300

Call = tuple[str, dict[str, Any]]


class ApiError(Exception):
    """The node answered a call with a JSON-RPC error (or not at all: ``code`` 0)."""

    def __init__(self, method: str, code: int, message: str, data: Any = None) -> None:
        super().__init__(f"{method}: {message}" + (f" ({data})" if isinstance(data, str)
                                                    and data else ""))
        self.method = method
        self.code = code
        self.message = message
        self.data = data

    @property
    def unreachable(self) -> bool:
        return self.code == 0

    @property
    def not_found(self) -> bool:
        """The subject does not exist (the API's -32001)."""
        return self.code == -32001

    @property
    def unsupported(self) -> bool:
        """The node does not serve this method (a light node's unprovable lists)."""
        return self.code == -32601


class Source(Protocol):
    async def batch(self, calls: Sequence[Call]) -> list[Any]:
        """Each call's result, or an :class:`ApiError` in its place."""
        ...  # pragma: no cover

    async def close(self) -> None:
        ...  # pragma: no cover


def _request(calls: Sequence[Call]) -> str:
    return json.dumps([{"jsonrpc": "2.0", "id": i, "method": m, "params": p}
                       for i, (m, p) in enumerate(calls)])


def _code(value: Any) -> int:
    """A JSON-RPC error code as the node gave it (0 where it is not a small integer)."""
    return value if isinstance(value, int) and not isinstance(value, bool) \
        and -(1 << 31) <= value < 1 << 31 else 0


def _error(method: str, error: Any) -> ApiError:
    e = error if isinstance(error, dict) else {}
    data = e.get("data")
    return ApiError(method, _code(e.get("code")), str(e.get("message", ""))[:MAX_TEXT],
                    data[:MAX_TEXT] if isinstance(data, str) else None)


def _answers(calls: Sequence[Call], text: str | bytes | None) -> list[Any]:
    try:
        answer = json.loads(text) if text else None
    except (ValueError, RecursionError):  # not JSON, or nested past Python's limit
        answer = None
    if isinstance(answer, dict) and "error" in answer:  # the whole batch was refused
        return [_error(m, answer["error"]) for m, _ in calls]
    if not isinstance(answer, list):
        return [ApiError(m, 0, "the node's answer was not JSON-RPC") for m, _ in calls]
    by_id = {a.get("id"): a for a in answer if isinstance(a, dict)
             and isinstance(a.get("id"), int)}
    out: list[Any] = []
    for i, (method, _) in enumerate(calls):
        a = by_id.get(i)
        if a is None:
            out.append(ApiError(method, 0, "the node left this call unanswered"))
        elif "error" in a:
            out.append(_error(method, a["error"]))
        else:
            out.append(a.get("result"))
    return out


class LocalSource:
    """The dispatcher of the node this explorer is mounted on."""

    def __init__(self, handle_text: Callable[[str], Awaitable[str | None]]) -> None:
        self._handle = handle_text

    async def batch(self, calls: Sequence[Call]) -> list[Any]:
        if not calls:
            return []
        return _answers(calls, await self._handle(_request(calls)))

    async def close(self) -> None:
        return None


class HttpSource:
    """A node's JSON-RPC endpoint over HTTP (one pooled aiohttp session)."""

    def __init__(self, url: str, timeout: float = HTTP_TIMEOUT) -> None:
        self.url = url if url.endswith("/") else url + "/"
        self.timeout = timeout
        self._session: Any = None

    async def batch(self, calls: Sequence[Call]) -> list[Any]:
        import aiohttp

        if not calls:
            return []
        if self._session is None:
            self._session = aiohttp.ClientSession(
                timeout=aiohttp.ClientTimeout(total=self.timeout))
        try:
            async with self._session.post(self.url, data=_request(calls),
                                          headers={"Content-Type": "application/json"}
                                          ) as response:
                if response.status != 200:
                    reason = f"the node answered HTTP {response.status}"
                    return [ApiError(m, 0, reason) for m, _ in calls]
                if (response.content_length or 0) > MAX_ANSWER_BYTES:
                    return [ApiError(m, 0, "the node's answer was too large")
                            for m, _ in calls]
                chunks, size = [], 0  # the whole body, however it arrives, up to the cap
                async for chunk in response.content.iter_chunked(64 * 1024):
                    size += len(chunk)
                    if size > MAX_ANSWER_BYTES:
                        return [ApiError(m, 0, "the node's answer was too large")
                                for m, _ in calls]
                    chunks.append(chunk)
                body = b"".join(chunks)
        except (aiohttp.ClientError, TimeoutError, OSError) as exc:
            reason = f"cannot reach the node at {self.url}: {exc or type(exc).__name__}"
            return [ApiError(m, 0, reason) for m, _ in calls]
        return _answers(calls, body)

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None
