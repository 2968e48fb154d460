"""JSON-RPC 2.0 (https://www.jsonrpc.org/specification), transport-free: text in,
text (or nothing) out. The HTTP and WebSocket server (``server.py``) only moves bytes.

A method is a module-level ``async def name(ctx, params) -> result`` marked with
:func:`rpc_method`, which records its name, its parameters (a pydantic model: by name
as an object, or by position as an array in field order), its result model and its
summary. The same :class:`MethodSpec` table drives dispatch and the OpenRPC document,
so the two cannot disagree. A bad parameter is answered with -32602 naming it. Errors
of our own methods use the -32000 range (:class:`Codes`, documented in OpenRPC). A
method that raises anything else is our bug: it is logged with its traceback and the
client gets -32603 without the details.

Limits: a batch holds at most ``max_batch`` requests (a longer one is refused whole,
-32600, before anything runs). Batch items run concurrently, so one slow call
(``broadcast_tx_commit``) does not hold up the rest.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from pydantic import BaseModel, ConfigDict, TypeAdapter, ValidationError

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
    #: The question is well-formed but cannot be answered as asked (a range too wide,
    #: a height no longer kept, a contract call that reverted).
    NOT_ANSWERABLE = -32004
    #: A limit of this node was reached (subscriptions, clients).
    LIMIT = -32005


#: What each of our own codes means (the OpenRPC document's ``errors``).
OUR_ERRORS: dict[int, tuple[str, str]] = {
    Codes.TX_REJECTED: ("Transaction rejected", "The transaction was not admitted; data "
                        "says why: {code, reason}."),
    Codes.NOT_FOUND: ("Not found", "No such block, transaction, account record, listing, "
                      "order, group or review."),
    Codes.TIMEOUT: ("Timed out", "broadcast_tx_commit waited longer than the node's "
                    "rpc.commit_timeout_ms; the transaction may still commit."),
    Codes.UNAVAILABLE: ("Unavailable", "The node is stopping, or the method needs the "
                        "WebSocket endpoint."),
    Codes.NOT_ANSWERABLE: ("Cannot answer", "A height no longer kept, a range or page "
                           "beyond the limits, or a read-only call that reverted."),
    Codes.LIMIT: ("Limit reached", "Too many subscriptions on this connection or too "
                  "many WebSocket clients on this node."),
}


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


def not_found(what: str) -> RPCError:
    return RPCError(Codes.NOT_FOUND, "Not found", what)


def cannot_answer(why: str) -> RPCError:
    return RPCError(Codes.NOT_ANSWERABLE, "Cannot answer", why)


class Params(BaseModel):
    """Base of every method's parameters: unknown parameters are refused."""

    model_config = ConfigDict(extra="forbid", frozen=True)


class NoParams(Params):
    pass


Handler = Callable[[Any, Any], Awaitable[Any]]


@dataclass(frozen=True)
class MethodSpec:
    name: str
    params: type[Params]
    #: The result's type (a pydantic model, or any type pydantic can describe).
    result: Any
    handler: Handler
    summary: str
    description: str = ""
    #: Only over WebSocket (subscriptions).
    websocket_only: bool = False
    #: Runs outside the node's RPC work slots: it mostly waits (broadcast_tx_commit)
    #: or is trivially cheap, and must not hold a slot while it waits.
    unthrottled: bool = False
    #: Serialises the handler's result into JSON-ready values.
    adapter: TypeAdapter[Any] = field(compare=False, default_factory=lambda: TypeAdapter(Any))


def rpc_method(name: str, params: type[Params] = NoParams, result: Any = None, *,
               websocket_only: bool = False,
               unthrottled: bool = False) -> Callable[[Handler], Handler]:
    """Mark ``handler(ctx, params) -> result`` as the RPC method ``name``."""
    def mark(handler: Handler) -> Handler:
        doc = (handler.__doc__ or "").strip()
        summary, _, rest = doc.partition("\n\n")
        handler.__rpc__ = MethodSpec(  # type: ignore[attr-defined]
            name, params, result, handler, " ".join(summary.split()),
            " ".join(rest.split()), websocket_only, unthrottled,
            TypeAdapter(result) if result is not None else TypeAdapter(Any))
        return handler
    return mark


def collect(*modules: object) -> dict[str, MethodSpec]:
    """The methods marked in ``modules``, in definition order, by name."""
    table: dict[str, MethodSpec] = {}
    for module in modules:
        for value in vars(module).values():
            spec = getattr(value, "__rpc__", None)
            if isinstance(spec, MethodSpec):
                if spec.name in table:
                    raise ValueError(f"RPC method {spec.name} is defined twice")
                table[spec.name] = spec
    return table


#: Called once per request with (method name, outcome): "ok", "error" (a client's
#: mistake or a refusal: our error codes) or "internal" (our bug).
Observer = Callable[[str, str], None]


class Dispatcher:
    def __init__(self, methods: Mapping[str, MethodSpec] | None = None, *,
                 max_batch: int = 100, max_response_bytes: int = 8 << 20,
                 turn_budget: float = 0.010, observer: Observer | None = None) -> None:
        self.methods: dict[str, MethodSpec] = dict(methods or {})
        self.max_batch = max_batch
        #: Seconds of method calls one turn of the event loop may run, across all
        #: requests and batch items. The node's consensus and p2p share the loop: however
        #: many requests arrive at once, they get their turn after this much (plus the
        #: one call that crossed it, itself bounded). A call that finds the turn's
        #: budget spent waits for the next turn.
        self.turn_budget = turn_budget
        self._spent = 0.0
        #: The most one answer (a whole batch's included) may hold: what comes after
        #: is answered with an error telling the client to ask for less.
        self.max_response_bytes = max_response_bytes
        self.observer = observer

    def method(self, name: str, params: type[Params] = NoParams, result: Any = None):
        """Decorator: register ``handler(ctx, params) -> result`` as method ``name``."""
        def register(handler: Handler) -> Handler:
            rpc_method(name, params, result)(handler)
            self.methods[name] = handler.__rpc__  # type: ignore[attr-defined]
            return handler
        return register

    async def handle_text(self, text: str | bytes, ctx: Any = None, *,
                          websocket: bool = False,
                          max_response_bytes: int | None = None) -> str | None:
        """A request body in, the response body out (None: nothing to send back).
        ``max_response_bytes`` lowers the answer limit for this request."""
        limit = self.max_response_bytes if max_response_bytes is None else \
            min(max_response_bytes, self.max_response_bytes)
        try:
            request = json.loads(text)
        except (json.JSONDecodeError, UnicodeDecodeError) as exc:
            return self._refuse(RPCError(Codes.PARSE_ERROR, "Parse error", str(exc)))
        except RecursionError:
            return self._refuse(RPCError(Codes.PARSE_ERROR, "Parse error",
                                         "nested too deeply"))
        except ValueError as exc:  # e.g. an integer of more than 4,300 digits
            return self._refuse(RPCError(Codes.PARSE_ERROR, "Parse error", str(exc)))
        if not isinstance(request, list):
            response = await self.handle(request, ctx, websocket=websocket)
            return None if response is None else self._sized(response, limit, limit)
        if not request:
            return self._refuse(RPCError(Codes.INVALID_REQUEST, "Invalid Request",
                                         "an empty batch"))
        if len(request) > self.max_batch:
            return self._refuse(RPCError(
                Codes.INVALID_REQUEST, "Invalid Request",
                f"a batch of {len(request)} requests; this node takes at most "
                f"{self.max_batch} in one batch"))
        # Items run concurrently (one slow broadcast_tx_commit does not hold up the
        # rest; the spec lets answers come in any order), and each answer is turned
        # into text as soon as it is ready, against the batch's byte budget.
        budget = [limit]
        parts: list[str] = []

        def full() -> bool:
            return budget[0] <= 0

        async def one(item: Any) -> None:
            response = await self.handle(item, ctx, websocket=websocket, full=full)
            if response is not None:
                part = self._sized(response, budget[0], limit)
                budget[0] -= len(part)
                parts.append(part)

        await asyncio.gather(*(one(item) for item in request))
        return "[" + ",".join(parts) + "]" if parts else None

    def _refuse(self, error: RPCError) -> str:
        self._observe_label("(parse error)" if error.code == Codes.PARSE_ERROR else "(invalid)",
                      "error")
        return _dump(_error(None, error))

    def _sized(self, response: dict[str, Any], budget: int, limit: int) -> str:
        """``response`` as text, or an error in its place if it would not fit."""
        text = _dump(response)
        if len(text) > budget:
            text = _dump(_error(response.get("id"), RPCError(
                Codes.NOT_ANSWERABLE, "Cannot answer",
                f"the answer would be {len(text):,} bytes, more than the "
                f"{limit:,} this node sends at once: ask for less "
                "(fewer requests in the batch, a smaller page)")))
        return text

    async def handle(self, request: Any, ctx: Any = None, *, websocket: bool = False,
                     full: Callable[[], bool] | None = None) -> dict[str, Any] | None:
        """One request object in, its response object out (None for a notification)."""
        if not isinstance(request, dict) or request.get("jsonrpc") != "2.0" \
                or not isinstance(request.get("method"), str) \
                or not _valid_id(request.get("id")) \
                or not isinstance(request.get("params", []), list | dict) \
                or set(request) - {"jsonrpc", "method", "params", "id"}:
            request_id = request.get("id") if isinstance(request, dict) else None
            self._observe_label("(invalid)", "error")
            return _error(request_id if _valid_id(request_id) else None,
                          RPCError(Codes.INVALID_REQUEST, "Invalid Request"))
        is_notification = "id" not in request
        request_id = request.get("id")
        name = request["method"]
        try:
            method = self.methods.get(name)
            if method is not None and method.unthrottled:
                result = await self._call(name, request.get("params", []), ctx, websocket)
            else:
                while self._spent >= self.turn_budget:
                    await asyncio.sleep(0)  # this turn's budget is spent: the next one
                if full is not None and full():
                    # The batch's answer is full: the rest is refused unworked.
                    raise RPCError(Codes.NOT_ANSWERABLE, "Cannot answer",
                                   "the batch's answer reached the most this node "
                                   "sends at once: ask for less")
                started = time.perf_counter()
                try:
                    result = await self._call(name, request.get("params", []), ctx,
                                              websocket)
                finally:
                    self._spend(time.perf_counter() - started)
        except RPCError as exc:
            self._observe(name, "error")
            return None if is_notification else _error(request_id, exc)
        except Exception:  # our bug: log it whole, tell the client only that it happened
            log.exception("RPC method %s failed", name)
            self._observe(name, "internal")
            error = RPCError(Codes.INTERNAL_ERROR, "Internal error")
            return None if is_notification else _error(request_id, error)
        self._observe(name, "ok")
        return None if is_notification else {"jsonrpc": "2.0", "result": result, "id": request_id}

    def _spend(self, seconds: float) -> None:
        if self._spent == 0.0:
            # The first work of this turn: the budget renews at the start of the next,
            # ahead of the calls that will wait for it (they are queued after this).
            asyncio.get_running_loop().call_soon(self._new_turn)
        self._spent += max(seconds, 1e-9)

    def _new_turn(self) -> None:
        self._spent = 0.0

    def _observe(self, name: str, outcome: str) -> None:
        # Unknown names are counted under one label: a stranger cannot grow the
        # metrics without bound.
        self._observe_label(name if name in self.methods else "(unknown)", outcome)

    def _observe_label(self, label: str, outcome: str) -> None:
        if self.observer is not None:
            self.observer(label, outcome)

    async def _call(self, name: str, raw_params: list | dict, ctx: Any,
                    websocket: bool) -> Any:
        method = self.methods.get(name)
        if method is None:
            raise RPCError(Codes.METHOD_NOT_FOUND, "Method not found", name[:100])
        if method.websocket_only and not websocket:
            raise RPCError(Codes.UNAVAILABLE, "Unavailable",
                           f"{name} works over the WebSocket endpoint (/websocket) only")
        fields = list(method.params.model_fields)
        if isinstance(raw_params, list):
            if len(raw_params) > len(fields):
                raise RPCError(Codes.INVALID_PARAMS, "Invalid params",
                               f"{name} takes at most {len(fields)} parameters")
            raw_params = dict(zip(fields, raw_params, strict=False))
        try:
            params = method.params.model_validate(raw_params)
        except ValidationError as exc:
            raise RPCError(Codes.INVALID_PARAMS, "Invalid params", describe(exc)) from None
        result = await method.handler(ctx, params)
        if isinstance(result, BaseModel):
            return result.model_dump(mode="json")
        if method.result is not None and result is not None \
                and not isinstance(result, str | int | float | bool | dict):
            return method.adapter.dump_python(result, mode="json")
        return result


def describe(exc: ValidationError) -> str:
    """A pydantic error as one sentence per problem (the first ten), each naming the
    parameter."""
    errors = exc.errors(include_url=False, include_context=False, include_input=False)
    text = "; ".join(
        f"{'.'.join(str(p) for p in e['loc']) or 'params'}: "
        f"{'unknown parameter' if e['type'] == 'extra_forbidden' else e['msg']}"
        for e in errors[:10])
    if len(errors) > 10:
        text += f"; and {len(errors) - 10} more"
    return text[:2000]


def _valid_id(value: Any) -> bool:
    return value is None or (isinstance(value, str | int) and not isinstance(value, bool))


def _error(request_id: Any, error: RPCError) -> dict[str, Any]:
    return {"jsonrpc": "2.0", "error": error.to_json(), "id": request_id}


def _dump(value: Any) -> str:
    return json.dumps(value, separators=(",", ":"))
