"""The transport-free JSON-RPC 2.0 dispatcher: the spec's own examples replayed, then
parameters, internal errors and ids."""

from __future__ import annotations

import asyncio
import json
import logging
from pathlib import Path
from typing import Any

import pytest
from pydantic import StrictInt

from node.rpc.protocol import Codes, Dispatcher, Params, RPCError

VECTORS = json.loads(
    (Path(__file__).parent.parent / "vectors" / "jsonrpc2-examples.json").read_text())


class Subtract(Params):
    minuend: StrictInt
    subtrahend: StrictInt


class Numbers(Params):
    """Up to five numbers (the spec's examples pass three or five by position)."""

    a: int = 0
    b: int = 0
    c: int = 0
    d: int = 0
    e: int = 0


class Hello(Params):
    n: int


def spec_dispatcher(calls: list[tuple[str, Any]]) -> Dispatcher:
    """The methods the spec's examples call; notifications append to ``calls``.

    ``foobar`` and ``foo.get`` are left out on purpose: the examples call them to get
    "Method not found" (and notify ``foobar`` expecting silence all the same)."""
    rpc = Dispatcher()

    @rpc.method("subtract", Subtract)
    async def subtract(_ctx: Any, p: Subtract) -> int:
        return p.minuend - p.subtrahend

    @rpc.method("sum", Numbers)
    async def sum_(_ctx: Any, p: Numbers) -> int:
        return p.a + p.b + p.c + p.d + p.e

    @rpc.method("get_data")
    async def get_data(_ctx: Any, _: Params) -> list[Any]:
        return ["hello", 5]

    def notification(name: str, params: type[Params]) -> None:
        @rpc.method(name, params)
        async def handler(_ctx: Any, p: Params) -> None:
            calls.append((name, p.model_dump()))

    notification("update", Numbers)
    notification("notify_sum", Numbers)
    notification("notify_hello", Hello)

    @rpc.method("fail")
    async def fail(_ctx: Any, _: Params) -> None:
        raise KeyError("secret-detail")

    @rpc.method("refuse", Subtract)
    async def refuse(_ctx: Any, _: Subtract) -> None:
        raise RPCError(Codes.TX_REJECTED, "Transaction rejected", {"code": "invalid"})

    return rpc


@pytest.fixture
def calls() -> list[tuple[str, Any]]:
    return []


@pytest.fixture
def rpc(calls: list[tuple[str, Any]]) -> Dispatcher:
    return spec_dispatcher(calls)


def without_data(response: Any) -> Any:
    """``error.data`` is optional ("may be omitted") and ours; the spec shows none."""
    if isinstance(response, list):
        return [without_data(r) for r in response]
    if isinstance(response, dict) and isinstance(response.get("error"), dict):
        response = {**response, "error": {k: v for k, v in response["error"].items()
                                          if k != "data"}}
    return response


def canonical(response: Any) -> Any:
    """Batch answers may come in any order: sort them (by id, then by content)."""
    if isinstance(response, list):
        return sorted(response, key=lambda r: json.dumps(r, sort_keys=True))
    return response


async def call(rpc: Dispatcher, request: Any) -> Any:
    """Send one request (or batch) as text; the parsed answer, None for no answer."""
    text = await rpc.handle_text(json.dumps(request))
    return None if text is None else json.loads(text)


async def error_of(rpc: Dispatcher, method: str, params: Any, request_id: Any = 1
                   ) -> dict[str, Any]:
    answer = await call(rpc, {"jsonrpc": "2.0", "method": method, "params": params,
                              "id": request_id})
    assert "result" not in answer and answer["id"] == request_id
    return answer["error"]


# ---------------------------------------------------------------------- the spec's examples


def test_all_fifteen_examples_are_there() -> None:
    assert len(VECTORS) == 15


@pytest.mark.parametrize("vector", VECTORS, ids=[v["name"] for v in VECTORS])
async def test_spec_example(rpc: Dispatcher, vector: dict[str, Any]) -> None:
    answer = await rpc.handle_text(vector["request"])
    if vector["response"] is None:
        assert answer is None
        return
    assert answer is not None
    expected = json.loads(vector["response"])
    assert canonical(without_data(json.loads(answer))) == canonical(expected)


async def test_spec_notifications_run_their_methods(rpc: Dispatcher,
                                                    calls: list[tuple[str, Any]]) -> None:
    for vector in VECTORS:
        await rpc.handle_text(vector["request"])
    assert calls == [
        ("update", {"a": 1, "b": 2, "c": 3, "d": 4, "e": 5}),
        ("notify_hello", {"n": 7}),
        ("notify_sum", {"a": 1, "b": 2, "c": 4, "d": 0, "e": 0}),
        ("notify_hello", {"n": 7}),
    ]


async def test_bytes_in_work_like_text(rpc: Dispatcher) -> None:
    body = b'{"jsonrpc": "2.0", "method": "subtract", "params": [42, 23], "id": 1}'
    assert json.loads(await rpc.handle_text(body)) == {"jsonrpc": "2.0", "result": 19, "id": 1}
    answer = json.loads(await rpc.handle_text(b"\xff\xfe\x00garbage"))
    assert answer["error"]["code"] == Codes.PARSE_ERROR and answer["id"] is None


async def test_json_nested_too_deep_is_a_parse_error_not_a_crash(rpc: Dispatcher) -> None:
    # A request body of 100 000 "[" (well under the HTTP body limit) makes json.loads
    # raise RecursionError; the client must get an error answer, not a dropped request.
    answer = await rpc.handle_text("[" * 100_000)
    assert answer is not None
    error = json.loads(answer)
    assert error["error"]["code"] in (Codes.PARSE_ERROR, Codes.INVALID_REQUEST)
    assert error["id"] is None


# ---------------------------------------------------------------------- parameters


async def test_an_invalid_parameter_is_named(rpc: Dispatcher) -> None:
    error = await error_of(rpc, "subtract", {"minuend": "42", "subtrahend": 23})
    assert error["code"] == Codes.INVALID_PARAMS and error["message"] == "Invalid params"
    assert error["data"].startswith("minuend: ")
    error = await error_of(rpc, "subtract", [42, True])
    assert error["data"].startswith("subtrahend: ")


async def test_a_missing_parameter_is_named(rpc: Dispatcher) -> None:
    for params in ([42], {"minuend": 42}):
        error = await error_of(rpc, "subtract", params)
        assert error["code"] == Codes.INVALID_PARAMS
        assert error["data"] == "subtrahend: Field required"
    error = await error_of(rpc, "subtract", {})
    assert error["data"] == "minuend: Field required; subtrahend: Field required"


async def test_an_unknown_parameter_is_refused(rpc: Dispatcher) -> None:
    error = await error_of(rpc, "subtract", {"minuend": 1, "subtrahend": 2, "extra": 3})
    assert error["code"] == Codes.INVALID_PARAMS
    assert error["data"] == "extra: unknown parameter"


async def test_too_many_positional_parameters_are_refused(rpc: Dispatcher) -> None:
    error = await error_of(rpc, "subtract", [1, 2, 3])
    assert error["code"] == Codes.INVALID_PARAMS
    assert error["data"] == "subtract takes at most 2 parameters"
    error = await error_of(rpc, "get_data", [1])
    assert error["data"] == "get_data takes at most 0 parameters"


async def test_params_must_be_an_array_or_an_object(rpc: Dispatcher) -> None:
    for params in (None, 1, "x"):
        error = await error_of(rpc, "get_data", params, request_id=None)
        assert error["code"] == Codes.INVALID_REQUEST


async def test_a_method_error_reaches_the_client_with_its_data(rpc: Dispatcher) -> None:
    error = await error_of(rpc, "refuse", [1, 2], request_id="r")
    assert error == {"code": Codes.TX_REJECTED, "message": "Transaction rejected",
                     "data": {"code": "invalid"}}


# ---------------------------------------------------------------------- internal errors


async def test_an_internal_error_is_logged_but_not_shown(rpc: Dispatcher,
                                                         caplog: pytest.LogCaptureFixture
                                                         ) -> None:
    with caplog.at_level(logging.ERROR, logger="agora.rpc"):
        error = await error_of(rpc, "fail", [])
    assert error == {"code": Codes.INTERNAL_ERROR, "message": "Internal error"}
    [record] = caplog.records
    assert "fail" in record.getMessage()
    assert record.exc_info is not None and "secret-detail" in str(record.exc_info[1])


async def test_an_internal_error_in_a_notification_is_logged_silently(
        rpc: Dispatcher, caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.ERROR, logger="agora.rpc"):
        assert await call(rpc, {"jsonrpc": "2.0", "method": "fail"}) is None
    assert len(caplog.records) == 1


async def test_an_internal_error_spoils_only_its_own_batch_entry(rpc: Dispatcher) -> None:
    answer = await call(rpc, [{"jsonrpc": "2.0", "method": "fail", "id": 1},
                              {"jsonrpc": "2.0", "method": "subtract", "params": [5, 3],
                               "id": 2}])
    assert canonical(answer) == [
        {"jsonrpc": "2.0", "error": {"code": Codes.INTERNAL_ERROR, "message": "Internal error"},
         "id": 1},
        {"jsonrpc": "2.0", "result": 2, "id": 2},
    ]


# ---------------------------------------------------------------------- ids and shapes


@pytest.mark.parametrize("request_id", ["abc", "", 0, -7, 2**70, None],
                         ids=["string", "empty-string", "zero", "negative", "big", "null"])
async def test_valid_ids_are_echoed(rpc: Dispatcher, request_id: Any) -> None:
    # "id": null is a call (answered with id null), not a notification.
    answer = await call(rpc, {"jsonrpc": "2.0", "method": "get_data", "id": request_id})
    assert answer == {"jsonrpc": "2.0", "result": ["hello", 5], "id": request_id}


@pytest.mark.parametrize("request_id", [True, False, [1], {"a": 1}],
                         ids=["true", "false", "array", "object"])
async def test_an_id_of_a_wrong_type_is_an_invalid_request(rpc: Dispatcher,
                                                           request_id: Any) -> None:
    answer = await call(rpc, {"jsonrpc": "2.0", "method": "get_data", "id": request_id})
    assert answer["id"] is None
    assert answer["error"]["code"] == Codes.INVALID_REQUEST


@pytest.mark.parametrize("body", [
    {"jsonrpc": "1.0", "method": "get_data", "id": 1},
    {"method": "get_data", "id": 1},
    {"jsonrpc": 2.0, "method": "get_data", "id": 1},
    {"jsonrpc": "2.0", "id": 1},
    {"jsonrpc": "2.0", "method": None, "id": 1},
    {"jsonrpc": "2.0", "method": "get_data", "id": 1, "extra": True},
], ids=["version-1.0", "no-version", "version-number", "no-method", "method-null",
        "extra-member"])
async def test_a_malformed_request_is_invalid_and_keeps_its_id(rpc: Dispatcher,
                                                               body: dict) -> None:
    answer = await call(rpc, body)
    assert answer["error"]["code"] == Codes.INVALID_REQUEST
    assert answer["id"] == 1


async def test_a_batch_answers_each_call_once_and_skips_notifications(
        rpc: Dispatcher, calls: list[tuple[str, Any]]) -> None:
    answer = await call(rpc, [
        {"jsonrpc": "2.0", "method": "subtract", "params": [3, 1], "id": "a"},
        {"jsonrpc": "2.0", "method": "notify_hello", "params": {"n": 1}},
        {"jsonrpc": "2.0", "method": "get_data", "id": True},
        [{"jsonrpc": "2.0", "method": "get_data", "id": 9}],  # batches do not nest
    ])
    assert canonical(without_data(answer)) == canonical([
        {"jsonrpc": "2.0", "result": 2, "id": "a"},
        {"jsonrpc": "2.0", "error": {"code": -32600, "message": "Invalid Request"}, "id": None},
        {"jsonrpc": "2.0", "error": {"code": -32600, "message": "Invalid Request"}, "id": None},
    ])
    assert calls == [("notify_hello", {"n": 1})]


# ---------------------------------------------------------------------- regressions from the second review

HUGE = "9" * 5_000  # past the interpreter's 4,300-digit limit for int <-> str


@pytest.mark.parametrize("template", [
    '{"jsonrpc": "2.0", "method": "get_data", "id": HUGE}',
    '{"jsonrpc": "2.0", "method": "subtract", "params": [HUGE, 1], "id": 1}',
    '[{"jsonrpc": "2.0", "method": "get_data", "id": 1}, HUGE]',
], ids=["id", "param", "batch-entry"])
async def test_a_huge_integer_is_a_parse_error(rpc: Dispatcher, template: str) -> None:
    """Review 2: json.loads raised ValueError, which escaped handle_text (HTTP 500)."""
    answer = json.loads(await rpc.handle_text(template.replace("HUGE", HUGE)))
    assert answer["error"]["code"] == Codes.PARSE_ERROR and answer["id"] is None


async def test_a_batch_runs_its_calls_concurrently() -> None:
    """Review 2: a batch ran its calls one after the other, so one slow call
    (broadcast_tx_commit) held up the rest. Each call here returns only once both
    have started: one after the other, the first would wait for ever."""
    rpc = Dispatcher()
    started: list[int] = []
    both = asyncio.Event()

    class Which(Params):
        n: int

    @rpc.method("slow", Which)
    async def slow(_ctx: Any, p: Which) -> int:
        started.append(p.n)
        if len(started) == 2:
            both.set()
        await both.wait()
        return p.n

    async with asyncio.timeout(5.0):
        answer = await call(rpc, [{"jsonrpc": "2.0", "method": "slow", "params": [n], "id": n}
                                  for n in (1, 2)])
    assert canonical(answer) == [{"jsonrpc": "2.0", "result": n, "id": n} for n in (1, 2)]
    assert sorted(started) == [1, 2]


# ---------------------------------------------------------------------- answer size


async def test_an_answer_too_big_is_refused_with_a_reason_and_a_batch_stays_bounded() -> None:
    rpc = Dispatcher(max_response_bytes=2_000)

    @rpc.method("blob", Hello)
    async def blob(_ctx: Any, p: Hello) -> str:
        return "x" * p.n

    small = json.loads(await rpc.handle_text(json.dumps(
        {"jsonrpc": "2.0", "method": "blob", "params": [10], "id": 1})))
    assert small["result"] == "x" * 10
    big = json.loads(await rpc.handle_text(json.dumps(
        {"jsonrpc": "2.0", "method": "blob", "params": [5_000], "id": 2})))
    assert big["id"] == 2 and big["error"]["code"] == Codes.NOT_ANSWERABLE
    assert "ask for less" in big["error"]["data"]
    # Five answers of 600 bytes: the first three fit the 2,000-byte budget, the rest
    # are answered with the error, each under its own id.
    text = await rpc.handle_text(json.dumps(
        [{"jsonrpc": "2.0", "method": "blob", "params": [600], "id": i} for i in range(5)]))
    assert len(text) < 2_000 + 5 * 400
    answers = json.loads(text)
    assert sorted(a["id"] for a in answers) == list(range(5))
    assert sum("result" in a for a in answers) == 3
    assert all(a["error"]["code"] == Codes.NOT_ANSWERABLE for a in answers if "error" in a)
