"""JSON-RPC 2.0 (https://www.jsonrpc.org/specification), transport-free: text in,
text (or nothing) out. The HTTP server (node/rpc.py) only moves bytes.

Parameters are declared as pydantic models and may come by name (an object) or by
position (an array, in the model's field order); a bad one is answered with -32602
naming the parameter. Errors of our own methods use the -32000 range (see
:class:`Codes`). A method that raises anything else is our bug: it is logged with its
traceback and the client gets -32603 without the details.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from pydantic import BaseModel, ConfigDict, ValidationError

log = logging.getLogger("agora.rpc")


class Codes:
    PARSE_ERROR = -32700
    INVALID_REQUEST = -32600
    METHOD_NOT_FOUND = -32601
    INVALID_PARAMS = -32602
    INTERNAL_ERROR = -32603
    #: A transaction was refused (data: ``{"code": ..., "reason": ...}``).
    TX_REJECTED = -32000
    #: What was asked for does not exist (a height beyond the chain, an unknown tx).
    NOT_FOUND = -32001
    #: A wait ran out (broadcast_tx_commit).
    TIMEOUT = -32002
    #: The node is stopping and cannot answer this.
    UNAVAILABLE = -32003


class RPCError(Exception):
    """An error answer: ``code``, ``message`` and optional ``data``."""

    def __init__(self, code: int, message: str, data: Any = None) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.data = data

    def to_json(self) -> dict[str, Any]:
        error: dict[str, Any] = {"code": self.code, "message": self.message}
        if self.data is not None:
            error["data"] = self.data
        return error


class Params(BaseModel):
    """Base of every method's parameters: unknown parameters are refused."""

    model_config = ConfigDict(extra="forbid", frozen=True)


class NoParams(Params):
    pass


Handler = Callable[[Any], Awaitable[Any]]


@dataclass(frozen=True)
class Method:
    params: type[Params]
    handler: Handler
    summary: str


class Dispatcher:
    def __init__(self) -> None:
        self.methods: dict[str, Method] = {}

    def method(self, name: str, params: type[Params] = NoParams, summary: str = ""):
        """Decorator: register ``handler(params) -> result`` as method ``name``."""
        def register(handler: Handler) -> Handler:
            self.methods[name] = Method(params, handler, summary or (handler.__doc__ or ""))
            return handler
        return register

    async def handle_text(self, text: str | bytes) -> str | None:
        """A request body in, the response body out (None: nothing to send back)."""
        try:
            request = json.loads(text)
        except (json.JSONDecodeError, UnicodeDecodeError) as exc:
            return _dump(_error(None, RPCError(Codes.PARSE_ERROR, "Parse error", str(exc))))
        except RecursionError:
            return _dump(_error(None, RPCError(Codes.PARSE_ERROR, "Parse error",
                                               "nested too deeply")))
        except ValueError as exc:  # e.g. an integer of more than 4,300 digits
            return _dump(_error(None, RPCError(Codes.PARSE_ERROR, "Parse error", str(exc))))
        if isinstance(request, list):
            if not request:
                return _dump(_error(None, RPCError(Codes.INVALID_REQUEST, "Invalid Request",
                                                   "an empty batch")))
            # Concurrently: one slow call (broadcast_tx_commit) must not hold up the
            # rest of the batch. The spec lets the answers come in any order.
            answers = await asyncio.gather(*(self.handle(item) for item in request))
            responses = [r for r in answers if r is not None]
            return _dump(responses) if responses else None
        response = await self.handle(request)
        return _dump(response) if response is not None else None

    async def handle(self, request: Any) -> dict[str, Any] | None:
        """One request object in, its response object out (None for a notification)."""
        if not isinstance(request, dict) or request.get("jsonrpc") != "2.0" \
                or not isinstance(request.get("method"), str) \
                or not _valid_id(request.get("id")) \
                or not isinstance(request.get("params", []), list | dict) \
                or set(request) - {"jsonrpc", "method", "params", "id"}:
            request_id = request.get("id") if isinstance(request, dict) else None
            return _error(request_id if _valid_id(request_id) else None,
                          RPCError(Codes.INVALID_REQUEST, "Invalid Request"))
        is_notification = "id" not in request
        request_id = request.get("id")
        try:
            result = await self._call(request["method"], request.get("params", []))
        except RPCError as exc:
            return None if is_notification else _error(request_id, exc)
        except Exception:  # our bug: log it whole, tell the client only that it happened
            log.exception("RPC method %s failed", request["method"])
            error = RPCError(Codes.INTERNAL_ERROR, "Internal error")
            return None if is_notification else _error(request_id, error)
        return None if is_notification else {"jsonrpc": "2.0", "result": result, "id": request_id}

    async def _call(self, name: str, raw_params: list | dict) -> Any:
        method = self.methods.get(name)
        if method is None:
            raise RPCError(Codes.METHOD_NOT_FOUND, "Method not found", name)
        fields = list(method.params.model_fields)
        if isinstance(raw_params, list):
            if len(raw_params) > len(fields):
                raise RPCError(Codes.INVALID_PARAMS, "Invalid params",
                               f"{name} takes at most {len(fields)} parameters")
            raw_params = dict(zip(fields, raw_params, strict=False))
        try:
            params = method.params.model_validate(raw_params)
        except ValidationError as exc:
            problems = "; ".join(
                f"{'.'.join(str(p) for p in e['loc']) or 'params'}: "
                f"{'unknown parameter' if e['type'] == 'extra_forbidden' else e['msg']}"
                for e in exc.errors())
            raise RPCError(Codes.INVALID_PARAMS, "Invalid params", problems) from None
        return await method.handler(params)


def _valid_id(value: Any) -> bool:
    return value is None or (isinstance(value, str | int) and not isinstance(value, bool))


def _error(request_id: Any, error: RPCError) -> dict[str, Any]:
    return {"jsonrpc": "2.0", "error": error.to_json(), "id": request_id}


def _dump(value: Any) -> str:
    return json.dumps(value, separators=(",", ":"))
