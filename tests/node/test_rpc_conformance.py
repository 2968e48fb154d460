"""JSON-RPC 2.0 conformance of a real node over real HTTP, with hypothesis: random
JSON, random bytes (invalid UTF-8 included), requests of every shape, wrong types and
well-typed-but-wrong values for every parameter of every method of the real method
table, deep nesting, huge numbers, batches (over the limit too) and notifications.

Every answer is checked against the specification: HTTP 200 with a JSON body (or 204
and nothing, when only notifications were sent), ``"jsonrpc": "2.0"``, exactly one of
``result`` and ``error``, an integer code from the spec's codes or our documented
ones, the request's ``id`` echoed (``null`` where it could not be read), one answer per
request that is not a notification. Never an HTTP 500, never -32603 ("internal error"
means a bug of ours) and never an error logged by the node.

Also: the body-size limit (413), a batch over ``max_batch`` refused whole, and CORS
(off by default; on for the origins ``[rpc] cors_origins`` names).

The node runs in a thread with its own event loop, so hypothesis drives plain
synchronous HTTP against it. Example counts are kept small (the whole file runs in
well under a minute); the ``ci`` profile derandomizes them. ``AGORA_FUZZ_SCALE=N``
multiplies them for a deeper run by hand.
"""

from __future__ import annotations

import asyncio
import http.client
import json
import logging
import os
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from jsonschema import Draft202012Validator

from chain.address import address_to_text
from chain.keys import PrivateKey
from node.config import Config, ConsensusSection, NodeSection, P2PSection, RPCSection
from node.daemon import Node
from node.home import Home, init_home
from node.localnet import free_base_port
from node.rpc.client import transfer
from node.rpc.methods import method_table
from node.rpc.openrpc import document
from node.rpc.protocol import OUR_ERRORS, Codes

CHAIN = "agora-conformance"
ALICE = PrivateKey.from_seed_text("conformance-alice")
BOB = PrivateKey.from_seed_text("conformance-bob")  # never funded
FUNDS = 10**21
MAX_BODY = 256 * 1024
MAX_BATCH = 8
MAX_BROADCAST = 16
MAX_PAGE = 10
WAIT = 10.0

STANDARD_CODES = {Codes.PARSE_ERROR, Codes.INVALID_REQUEST, Codes.METHOD_NOT_FOUND,
                  Codes.INVALID_PARAMS, Codes.INTERNAL_ERROR}
ALLOWED_CODES = STANDARD_CODES | set(OUR_ERRORS)
TABLE = method_table()
DOC = document(TABLE)
METHODS = {m["name"]: m for m in DOC["methods"]}
HTTP_METHODS = sorted(name for name, spec in TABLE.items() if not spec.websocket_only)
MEMBERS = {"jsonrpc", "method", "params", "id"}

#: A deeper run multiplies every example count: AGORA_FUZZ_SCALE=20 pytest this file.
SCALE = int(os.environ.get("AGORA_FUZZ_SCALE", "1"))


def fuzz(examples: int) -> settings:
    """Hypothesis settings with ``examples`` examples (the connection fixture is shared
    by a test's examples on purpose: it is one keep-alive connection)."""
    return settings(max_examples=examples * SCALE, deadline=None, suppress_health_check=[
        HealthCheck.too_slow, HealthCheck.data_too_large,
        HealthCheck.function_scoped_fixture])


# ---------------------------------------------------------------------- the node


class ErrorLog(logging.Handler):
    """Every ERROR the node logs (a method that failed, a task that died)."""

    def __init__(self) -> None:
        super().__init__(logging.ERROR)
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)

    def take(self) -> list[str]:
        out = [f"{r.name}: {r.getMessage()}" for r in self.records]
        self.records.clear()
        return out


@dataclass
class NodeThread:
    """A single-validator node (ALICE funded, fast blocks, free ports) running on its
    own event loop in a thread; the tests talk to it over HTTP only."""

    home_path: Path
    rpc: dict[str, Any] = field(default_factory=dict)
    loop: asyncio.AbstractEventLoop = field(default_factory=asyncio.new_event_loop)
    node: Node | None = None
    port: int = 0

    def __post_init__(self) -> None:
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True,
                                       name="conformance-node")

    def run(self, coro: Any) -> Any:
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(timeout=WAIT)

    def start(self) -> None:
        init_home(self.home_path, chain_id=CHAIN, validator=True)
        home = Home(self.home_path)
        base = free_base_port(2)
        self.port = base + 1
        home.write_config(Config(
            node=NodeSection(mode="validator", moniker="conformance"),
            p2p=P2PSection(listen=f"127.0.0.1:{base}", pex=False),
            rpc=RPCSection(**({"listen": f"127.0.0.1:{self.port}",
                               "max_body_bytes": MAX_BODY, "max_batch": MAX_BATCH,
                               "max_broadcast_txs": MAX_BROADCAST, "max_page": MAX_PAGE}
                              | self.rpc)),
            consensus=ConsensusSection(block_interval_ms=10, idle_interval_ms=200,
                                       view_timeout_ms=1_000)))
        genesis = json.loads(home.genesis_path.read_text())
        genesis["balances"] = [{"address": address_to_text(ALICE.address),
                                "amount": str(FUNDS)}]
        home.write_genesis(genesis)
        self.thread.start()

        async def start() -> Node:
            node = Node(home)
            await node.start()
            return node
        self.node = self.run(start())

    def stop(self) -> None:
        try:
            if self.node is not None:
                self.run(self.node.stop())
        finally:
            self.loop.call_soon_threadsafe(self.loop.stop)
            self.thread.join(WAIT)
            self.loop.close()


@dataclass
class Answer:
    status: int
    headers: http.client.HTTPMessage
    body: bytes


class HTTP:
    """One keep-alive HTTP/1.1 connection to the node (made again if it closes)."""

    def __init__(self, port: int) -> None:
        self.port = port
        self.conn: http.client.HTTPConnection | None = None

    def request(self, body: bytes, *, method: str = "POST", path: str = "/",
                headers: dict[str, str] | None = None) -> Answer:
        for attempt in range(2):
            if self.conn is None:
                self.conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=WAIT)
            try:
                self.conn.request(method, path, body=body, headers={
                    "Content-Type": "application/json", **(headers or {})})
                response = self.conn.getresponse()
                answer = Answer(response.status, response.headers, response.read())
            except (ConnectionError, http.client.HTTPException):
                self.close()
                if attempt:
                    raise
                continue
            if response.will_close:
                self.close()
            return answer
        raise AssertionError("unreachable")

    def close(self) -> None:
        if self.conn is not None:
            self.conn.close()
            self.conn = None

    def rpc(self, method: str, params: Any = None, id_: Any = 1) -> dict[str, Any]:
        request: dict[str, Any] = {"jsonrpc": "2.0", "method": method, "id": id_}
        if params is not None:
            request["params"] = params
        return exchange(self, request)  # type: ignore[return-value]

    def result(self, method: str, params: Any = None) -> Any:
        answer = self.rpc(method, params)
        assert "result" in answer, answer
        return answer["result"]


@dataclass
class Chain:
    """What the running chain holds, for the strategies to aim at."""

    tx_hash: str
    block_hash: str
    height: int
    contracts: list[dict[str, Any]]
    signed_tx: str  # a transaction that was committed (a replay is refused)


@dataclass
class Net:
    node: NodeThread
    http: HTTP
    errors: ErrorLog
    chain: Chain


@pytest.fixture(scope="module")
def net(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Net]:
    errors = ErrorLog()
    logging.getLogger().addHandler(errors)
    running = NodeThread(tmp_path_factory.mktemp("conformance"))
    try:
        running.start()
        http_ = HTTP(running.port)
        tx = transfer(ALICE, CHAIN, 0, BOB.address, 7)
        committed = http_.result("broadcast_tx_commit", {"tx": tx.encode().hex()})
        block = http_.result("block", {"height": committed["height"]})
        chain = Chain(tx.hash.hex(), block["hash"], committed["height"],
                      http_.result("contracts"), tx.encode().hex())
        yield Net(running, http_, errors, chain)
        http_.close()
    finally:
        running.stop()
        logging.getLogger().removeHandler(errors)


@pytest.fixture
def conn(net: Net) -> Iterator[HTTP]:
    """The node's connection; after each test, nothing may have been logged as an error."""
    net.errors.take()
    yield net.http
    assert net.errors.take() == []


# ---------------------------------------------------------------------- what the spec says


def valid_id(value: Any) -> bool:
    return value is None or (isinstance(value, str | int) and not isinstance(value, bool))


def is_request(item: Any) -> bool:
    """A well-formed request object (the spec names exactly these four members; this
    node refuses others as an Invalid Request)."""
    return (isinstance(item, dict) and item.get("jsonrpc") == "2.0"
            and isinstance(item.get("method"), str) and valid_id(item.get("id"))
            and isinstance(item.get("params", []), list | dict) and set(item) <= MEMBERS)


def strict_json(body: bytes) -> Any:
    def refuse(token: str) -> None:
        raise AssertionError(f"the answer holds {token}, which is not JSON")
    return json.loads(body, parse_constant=refuse)


#: Stands for a request text that is not JSON.
UNREADABLE = object()


def check_response(response: Any, request: Any) -> None:
    """``response`` is a spec-valid answer to the one ``request`` object (or to a text
    that was :data:`UNREADABLE`)."""
    assert isinstance(response, dict), response
    assert response.get("jsonrpc") == "2.0", response
    assert "id" in response, response
    assert ("result" in response) != ("error" in response), response
    assert set(response) == {"jsonrpc", "id", "result" if "result" in response else "error"}
    assert valid_id(response["id"]), response
    if "error" in response:
        error = response["error"]
        assert isinstance(error, dict) and set(error) <= {"code", "message", "data"}, error
        assert type(error["code"]) is int and error["code"] in ALLOWED_CODES, error
        assert isinstance(error["message"], str) and error["message"], error
        assert error["code"] != Codes.INTERNAL_ERROR, f"an internal error for {request!r:.500}"
    if is_request(request):
        assert "id" in request, "a notification was answered"
        assert response["id"] == request["id"] and type(response["id"]) is type(request["id"])
        if "error" in response:
            assert response["error"]["code"] != Codes.INVALID_REQUEST, response
    else:
        assert "error" in response, f"{request!r:.300} is not a request but was run"
        code = response["error"]["code"]
        assert code == (Codes.PARSE_ERROR if request is UNREADABLE else Codes.INVALID_REQUEST)
        request_id = request.get("id") if isinstance(request, dict) else None
        assert response["id"] in (None, request_id if valid_id(request_id) else None)


def parses(body: bytes) -> tuple[bool, Any]:
    """Whether the node's JSON reader takes ``body`` (Python's, as the node's is)."""
    try:
        return True, json.loads(body)
    except (ValueError, RecursionError):
        return False, None


def check_answer(body: bytes, answer: Answer) -> Any:
    """``answer`` is the spec's answer to the request text ``body``; its JSON."""
    assert answer.status in (200, 204), (answer.status, answer.body[:300])
    ok, request = parses(body)
    if answer.status == 204:
        assert answer.body == b""
        items = request if isinstance(request, list) else [request]
        assert ok and items and len(items) <= MAX_BATCH
        assert all(is_request(i) and "id" not in i for i in items), "a request went unanswered"
        return None
    assert answer.headers.get_content_type() == "application/json"
    response = strict_json(answer.body)
    if not ok:
        check_response(response, UNREADABLE)
    elif isinstance(request, list) and (not request or len(request) > MAX_BATCH):
        assert isinstance(response, dict), "an empty or too long batch gets one error"
        assert response["error"]["code"] == Codes.INVALID_REQUEST and response["id"] is None
        check_response(response, request)  # a list: not a request
    elif isinstance(request, list):
        assert isinstance(response, list) and response, response
        answered = [i for i in request if not (is_request(i) and "id" not in i)]
        assert len(response) == len(answered), (len(response), len(answered))
        # Answers may come in any order and ids may repeat (null among them): every
        # answer must fit a request of its own.
        assert match(response, answered), f"answers {response} do not fit {answered}"
    else:
        check_response(response, request)
    return response


def fits(response: Any, request: Any) -> bool:
    try:
        check_response(response, request)
    except AssertionError:
        return False
    return True


def match(responses: list[Any], requests: list[Any]) -> bool:
    """Whether each response can be paired with a request of its own that it fits."""
    if not responses:
        return not requests
    first, rest = responses[0], responses[1:]
    return any(fits(first, r) and match(rest, requests[:i] + requests[i + 1:])
               for i, r in enumerate(requests))


def exchange(conn: HTTP, request: Any) -> Any:
    body = json.dumps(request).encode()
    return check_answer(body, conn.request(body))


# ---------------------------------------------------------------------- strategies


scalars = (st.none() | st.booleans() | st.integers() | st.integers(-(2**70), 2**70)
           | st.floats(allow_nan=False, allow_infinity=False)
           | st.text(max_size=20)
           | st.text(st.characters(exclude_categories=()), max_size=5))
json_values = st.recursive(scalars, lambda inner: st.lists(inner, max_size=4)
                           | st.dictionaries(st.text(max_size=8), inner, max_size=4),
                           max_leaves=12)
ids = (st.none() | st.integers() | st.text(max_size=12) | st.just(10**100) | st.just(-1)
       | st.booleans() | st.floats(allow_nan=False, allow_infinity=False)
       | st.lists(st.integers(), max_size=2))
method_names = st.sampled_from(sorted(TABLE)) | st.text(max_size=20) | st.just("rpc.x")


def requests() -> st.SearchStrategy[Any]:
    """Request-like objects: mostly well-formed, often not."""
    good = st.fixed_dictionaries(
        {"jsonrpc": st.just("2.0"), "method": method_names},
        optional={"params": st.lists(json_values, max_size=3)
                  | st.dictionaries(st.text(max_size=8), json_values, max_size=3),
                  "id": ids})
    bad = st.fixed_dictionaries(
        {}, optional={"jsonrpc": st.sampled_from(["2.0", "1.0", 2.0, 2, None, ""]),
                      "method": method_names | json_values, "params": json_values,
                      "id": ids, "extra": json_values})
    return st.one_of(good, good, bad, json_values)


def json_types(schema: dict[str, Any]) -> set[str] | None:
    """The JSON types a schema lets through (None: any)."""
    if "anyOf" in schema:
        out: set[str] = set()
        for option in schema["anyOf"]:
            types = json_types(option)
            if types is None:
                return None
            out |= types
        return out
    if "enum" in schema or "const" in schema:
        values = schema.get("enum", [schema.get("const")])
        return {type_name(v) for v in values}
    if "type" in schema:
        t = schema["type"]
        return set(t) if isinstance(t, list) else {t}
    return None


def type_name(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int):
        return "integer"
    return {float: "number", str: "string", list: "array", dict: "object"}[type(value)]


ALL_TYPES = ("null", "boolean", "integer", "number", "string", "array", "object")


def from_schema(schema: dict[str, Any]) -> st.SearchStrategy[Any]:
    """Values the schema accepts (the OpenRPC document's parameter schemas)."""
    if "anyOf" in schema:
        return st.one_of([from_schema(s) for s in schema["anyOf"]])
    if "enum" in schema:
        return st.sampled_from(schema["enum"])
    if "const" in schema:
        return st.just(schema["const"])
    kind = schema.get("type")
    if kind == "integer":
        low = schema.get("minimum", schema.get("exclusiveMinimum", -(2**70) - 1) + 1)
        high = schema.get("maximum", schema.get("exclusiveMaximum", 2**70 + 1) - 1)
        return st.integers(low, high) | st.sampled_from(sorted({low, low + 1, high}))
    if kind == "boolean":
        return st.booleans()
    if kind == "null":
        return st.none()
    if kind == "string":
        if "pattern" in schema:
            return st.from_regex(schema["pattern"], fullmatch=True)
        top = min(schema.get("maxLength", 80), 80)
        low = schema.get("minLength", 0)
        return (st.text(min_size=low, max_size=top)
                | st.text(st.characters(exclude_categories=()), min_size=low, max_size=top)
                | st.text("0123456789abcdef", min_size=max(low, 1), max_size=top))
    if kind == "array":
        items = from_schema(schema.get("items", {}))
        return st.lists(items, min_size=schema.get("minItems", 0),
                        max_size=min(schema.get("maxItems", 4), 4))
    if kind == "object":
        return st.dictionaries(st.text(max_size=8), json_values, max_size=3)
    return json_values


def abi_value(net: Net, kind: str) -> st.SearchStrategy[Any]:
    """A JSON argument for an ABI type, in range or just out of it."""
    addresses = [address_to_text(ALICE.address), ALICE.address.hex(),
                 address_to_text(BOB.address)] + [k["address"] for k in net.chain.contracts]
    if kind in ("uint", "int"):
        numbers = st.integers(0, 2**256 - 1) | st.integers(0, 20) | st.integers(-5, 2**257)
        return numbers | numbers.map(str)
    return {"Address": st.sampled_from(addresses), "bool": st.booleans(),
            "bytes": st.binary(max_size=64).map(bytes.hex),
            "str": st.text(max_size=30)}.get(kind, json_values)


def call_params(net: Net, data: st.DataObject) -> dict[str, Any]:
    """A ``call`` of a real method of a real contract (views and writing methods alike:
    a read-only call runs either and keeps nothing) with arguments of its types."""
    contract = data.draw(st.sampled_from(net.chain.contracts))
    method = data.draw(st.sampled_from([m for m in contract["abi"]["methods"]
                                        if m["name"] != "__init__"]))
    args: Any = [data.draw(abi_value(net, i["type"])) for i in method["inputs"]]
    if data.draw(st.booleans()):
        args = {i["name"]: a for i, a in zip(method["inputs"], args, strict=True)}
    out = {"contract": data.draw(st.sampled_from([contract["name"], contract["address"]])),
           "method": method["name"], "args": args}
    if data.draw(st.booleans()):
        out["sender"] = data.draw(abi_value(net, "Address"))
    if data.draw(st.booleans()):
        out["height"] = data.draw(st.integers(0, net.chain.height + 2))
    if data.draw(st.booleans()):
        out["gas"] = data.draw(st.integers(1, 50_000_000))
    return out


def hints(net: Net, method: str, p: dict[str, Any]) -> list[st.SearchStrategy[Any]]:
    """Values aimed at what the chain holds, beside the schema's own."""
    c, param = net.chain, p["name"]
    hashes = [c.tx_hash, c.block_hash, "0x" + c.tx_hash.upper(), "00" * 32]
    out: list[st.SearchStrategy[Any]] = []
    if "agora1..." in json.dumps(p["schema"]):  # an address (AddressText)
        out.append(abi_value(net, "Address"))
    if param == "height":
        out.append(st.sampled_from([0, 1, c.height, c.height + 1, 10**6, 2**63 - 1]))
    if param == "hash" or (param == "tx" and method == "proof"):
        out.append(st.sampled_from(hashes))
    if param == "tx" and method.startswith("broadcast"):
        out.append(st.sampled_from([c.signed_tx, c.signed_tx[:-2], c.signed_tx + "00",
                                    "00" + c.signed_tx[2:]]))
        out.append(st.binary(max_size=300).map(bytes.hex))
    if param == "txs":
        out.append(st.lists(st.sampled_from([c.signed_tx, "zz", "", "00" * 40])
                            | st.binary(max_size=200).map(bytes.hex), min_size=1, max_size=5))
    if param == "contract":
        out.append(st.sampled_from([k["name"] for k in c.contracts]
                                   + [k["address"] for k in c.contracts]))
    if param == "keys":
        out.append(st.lists(st.binary(max_size=80).map(bytes.hex), max_size=4))
    if param == "before" and method == "account_history":
        out.append(st.sampled_from([f"{c.height}:0", f"{c.height + 5}:3", "0:0",
                                    f"{2**63}:0", "9999999999999999999:4294967295"]))
    return out


def params_for(net: Net, method: str, data: st.DataObject) -> dict[str, Any]:
    """A params object the method's schema accepts, aimed at the chain's contents
    (three times in four where there is something to aim at)."""
    if method == "call" and data.draw(st.booleans()):
        return call_params(net, data)
    out: dict[str, Any] = {}
    for p in METHODS[method]["params"]:
        if not p["required"] and data.draw(st.booleans()):
            continue
        aimed = hints(net, method, p)
        aim = aimed and data.draw(st.sampled_from([True, True, True, False]))
        out[p["name"]] = data.draw(st.one_of(aimed) if aim else from_schema(p["schema"]))
    return out


def by_position(method: str, params: dict[str, Any]) -> list[Any] | dict[str, Any]:
    """``params`` as an array in field order, where they are a leading run of the
    method's parameters (else as they are: a gap cannot be left in an array)."""
    names = [p["name"] for p in METHODS[method]["params"]]
    if set(params) != set(names[:len(params)]):
        return params
    return [params[n] for n in names[:len(params)]]


# ---------------------------------------------------------------------- the node answers


@fuzz(120)
@given(body=st.one_of(
    json_values.map(lambda v: json.dumps(v).encode()),
    requests().map(lambda v: json.dumps(v).encode()),
    st.binary(max_size=200),
    # invalid UTF-8 inside an otherwise good request
    st.binary(min_size=1, max_size=8).map(
        lambda b: b'{"jsonrpc":"2.0","method":"status","id":"' + b"\xff" + b + b'"}'),
    st.text(max_size=40).map(lambda t: t.encode("utf-16")),
    st.sampled_from([b"", b" ", b"null", b"[]", b"[[]]", b"{}", b"[{}]", b"[1,2,3]",
                     b'{"jsonrpc":"2.0","method":"status","id":NaN}',
                     b'{"jsonrpc":"2.0","method":"status","id":1e400}',
                     b'{"jsonrpc":"2.0","method":"status","id":-0.0}',
                     b'{"jsonrpc":"2.0","method":"status","id":1}garbage',
                     b'{"jsonrpc":"2.0","method":"status","id":1,"id":"2"}',
                     b'\xef\xbb\xbf{"jsonrpc":"2.0","method":"status","id":1}',
                     b'{"jsonrpc":"2.0","method":"sta\\u0000tus","id":1}',
                     b'{"jsonrpc":"2.0","method":"status","params":"x","id":1}']),
))
def test_any_body_gets_a_spec_valid_answer(conn: HTTP, body: bytes) -> None:
    check_answer(body, conn.request(body))


@fuzz(60)
@given(batch=st.lists(requests(), min_size=1, max_size=MAX_BATCH))
def test_batches_get_one_answer_per_request(conn: HTTP, batch: list[Any]) -> None:
    exchange(conn, batch)


@fuzz(30)
@given(request=requests(), data=st.data())
def test_notifications_get_no_answer(conn: HTTP, request: Any, data: st.DataObject) -> None:
    if not is_request(request):
        request = {"jsonrpc": "2.0", "method": data.draw(method_names)}
    request.pop("id", None)
    answer = conn.request(json.dumps(request).encode())
    assert (answer.status, answer.body) == (204, b"")
    answer = conn.request(json.dumps([request] * data.draw(st.integers(1, MAX_BATCH))).encode())
    assert (answer.status, answer.body) == (204, b"")


#: A value of each JSON type, the borderline ones included ("5" for a number, 1 for a
#: boolean, 1.0 ... is left out: JSON Schema counts 1.0 as an integer).
OF_TYPE: dict[str, list[Any]] = {
    "null": [None], "boolean": [True, False], "integer": [0, 1, -1, 2**64],
    "number": [1.5, -0.5, 1e300], "string": ["", "5", "true", "0x00", "agora1"],
    "array": [[], [1], ["00"]], "object": [{}, {"a": 1}],
}


def baseline(net: Net, method: str) -> dict[str, Any]:
    """Good values for the method's required parameters."""
    c = net.chain
    good = {"address": address_to_text(ALICE.address), "hash": c.tx_hash,
            "tx": c.signed_tx, "txs": [c.signed_tx], "contract": "token",
            "method": "balance_of"}
    out = {}
    for p in METHODS[method]["params"]:
        if p["required"] and "agora1..." in json.dumps(p["schema"]):
            out[p["name"]] = good["address"]
        elif p["required"]:
            out[p["name"]] = good.get(p["name"], next(iter(
                v for t in sorted(json_types(p["schema"]) or ["string"])
                for v in OF_TYPE[t])))
    return out


@pytest.mark.parametrize("method", HTTP_METHODS)
def test_wrong_types_are_invalid_params_naming_the_parameter(net: Net, conn: HTTP,
                                                             method: str) -> None:
    """Every parameter, every JSON type its schema does not allow, by name and by
    position: -32602 naming the parameter (so the schemas are no looser than the
    server, and the server no looser than the schemas say)."""
    params = METHODS[method]["params"]
    names = [p["name"] for p in params]
    cases = []
    for p in params:
        allowed = json_types(p["schema"])
        assert allowed is not None, f"{method}({p['name']}) takes anything"
        for kind in ALL_TYPES:
            if kind in allowed:
                continue
            for value in OF_TYPE[kind]:
                named = baseline(net, method) | {p["name"]: value}
                cases.append((p["name"], value, named))
                last = max(names.index(n) for n in named)
                if all(n in named for n in names[:last + 1]):
                    cases.append((p["name"], value, [named[n] for n in names[:last + 1]]))
    if not params:
        cases = [("params", v, v) for v in ([1], [None], {"a": 1})]
    for start in range(0, len(cases), MAX_BATCH):
        chunk = cases[start:start + MAX_BATCH]
        answers = exchange(conn, [{"jsonrpc": "2.0", "method": method, "params": sent,
                                   "id": start + i}
                                  for i, (_, _, sent) in enumerate(chunk)])
        for answer in answers:
            name, value, sent = chunk[answer["id"] - start]
            assert "error" in answer, f"{method}: {name}={value!r} was taken ({sent})"
            error = answer["error"]
            assert error["code"] == Codes.INVALID_PARAMS, (method, sent, error)
            if params:
                assert f"{name}:" in error["data"] or f"{name}." in error["data"], \
                    (method, sent, error)


@pytest.mark.parametrize("method", HTTP_METHODS)
def test_missing_and_unknown_params_are_invalid_params(conn: HTTP, method: str) -> None:
    params = METHODS[method]["params"]
    required = [p["name"] for p in params if p["required"]]
    if required:
        answer = exchange(conn, {"jsonrpc": "2.0", "method": method, "params": {}, "id": 1})
        assert answer["error"]["code"] == Codes.INVALID_PARAMS
        assert required[0] in answer["error"]["data"]
    answer = exchange(conn, {"jsonrpc": "2.0", "method": method, "id": 2,
                             "params": [None] * (len(params) + 1)})
    assert answer["error"]["code"] == Codes.INVALID_PARAMS
    answer = exchange(conn, {"jsonrpc": "2.0", "method": method, "id": 3,
                             "params": {"no_such_parameter": 1}})
    assert answer["error"]["code"] == Codes.INVALID_PARAMS
    assert "no_such_parameter: unknown parameter" in answer["error"]["data"]


@pytest.mark.parametrize("method", HTTP_METHODS)
def test_well_typed_but_wrong_params_never_fail_inside(net: Net, conn: HTTP,
                                                      method: str) -> None:
    """Values of the right JSON type (as the OpenRPC document describes them) but of
    any content: an answer or a clear refusal, never -32603 (check_response); an
    answer matches the method's result schema in the document."""
    result_schema = Draft202012Validator(
        {**METHODS[method]["result"]["schema"], "components": DOC["components"]})

    @fuzz(25)
    @given(data=st.data())
    def check(data: st.DataObject) -> None:
        params = params_for(net, method, data)
        sent = by_position(method, params) if data.draw(st.booleans()) else params
        answer = exchange(conn, {"jsonrpc": "2.0", "method": method, "params": sent,
                                 "id": data.draw(st.integers() | st.text(max_size=4))})
        if "result" in answer:
            errors = [f"{'/'.join(map(str, e.absolute_path))}: {e.message[:200]}"
                      for e in result_schema.iter_errors(answer["result"])]
            assert errors == [], f"{method}{sent}: the answer does not match its schema"
        if "error" in answer and answer["error"]["code"] == Codes.INVALID_PARAMS:
            # The schema let the value through and the server refused it: only the
            # content may be wrong (an address's checksum, a hash's bytes...), and the
            # refusal names the parameter.
            assert any(p["name"] in answer["error"]["data"]
                       for p in METHODS[method]["params"]), answer

    check()


def test_websocket_methods_over_http_are_refused(conn: HTTP) -> None:
    for name, spec in TABLE.items():
        if spec.websocket_only:
            answer = conn.rpc(name, {"kind": "blocks"})
            assert answer["error"]["code"] == Codes.UNAVAILABLE, answer
            assert "/websocket" in answer["error"]["data"]


# ---------------------------------------------------------------------- nesting and numbers


@pytest.mark.parametrize("depth", [10, 500, 990, 1_000, 3_000, 100_000])
def test_deep_nesting(conn: HTTP, depth: int) -> None:
    nested = b"[" * depth + b"]" * depth
    shapes = [
        nested,
        b'{"jsonrpc":"2.0","method":"status","id":' + nested + b"}",
        b'{"jsonrpc":"2.0","method":"call","id":1,"params":{"contract":"token",'
        b'"method":"balance_of","args":' + nested + b"}}",
        b'{"jsonrpc":"2.0","method":"block","id":1,"params":[' + nested + b"]}",
        b'[{"jsonrpc":"2.0","method":"status","id":1},' + nested + b"]",
        b'{"a":' * depth + b"1" + b"}" * depth,
    ]
    for body in shapes:
        answer = conn.request(body)
        if len(body) > MAX_BODY:
            assert answer.status == 413
        else:
            check_answer(body, answer)


@pytest.mark.parametrize("number", [
    "1e400", "-1e400", "1e-400", "-0", "0.0", "1.0", "1E2", str(2**63), str(2**64),
    str(2**256), str(-(2**256)), "9" * 4300, "9" * 4301, "-" + "9" * 5000, "1" + "0" * 20_000,
    "0." + "1" * 5000, "1" * 300 + ".5e-300",
])
def test_huge_and_odd_numbers(conn: HTTP, number: str) -> None:
    n = number.encode()
    for body in (
        b'{"jsonrpc":"2.0","method":"status","id":' + n + b"}",
        b'{"jsonrpc":"2.0","method":"block","params":{"height":' + n + b'},"id":1}',
        b'{"jsonrpc":"2.0","method":"account_history","params":{"address":"'
        + address_to_text(ALICE.address).encode() + b'","limit":' + n + b'},"id":1}',
        b'{"jsonrpc":"2.0","method":"call","id":1,"params":{"contract":"token",'
        b'"method":"balance_of","args":[' + n + b'],"gas":' + n + b"}}",
        b'{"jsonrpc":"2.0","method":"proof","params":{"keys":[],"height":' + n + b'},"id":1}',
        b"[" + n + b"]",
    ):
        check_answer(body, conn.request(body))


# ---------------------------------------------------------------------- limits


def test_a_body_over_the_limit_is_refused_with_413(conn: HTTP) -> None:
    filler = '{"jsonrpc":"2.0","method":"status","id":1,"params":{"x":"%s"}}'
    at_limit = (filler % ("a" * (MAX_BODY - len(filler) + 2))).encode()
    assert len(at_limit) == MAX_BODY
    check_answer(at_limit, conn.request(at_limit))  # the last byte allowed: answered
    over = at_limit[:-3] + b'a"}}'
    assert len(over) == MAX_BODY + 1
    assert conn.request(over).status == 413
    assert conn.request(b"[" * (2 * MAX_BODY)).status == 413
    assert "result" in conn.rpc("status")  # still serving


def test_a_batch_over_the_limit_is_refused_whole(conn: HTTP) -> None:
    pending = conn.result("account", {"address": address_to_text(ALICE.address)})
    tx = transfer(ALICE, CHAIN, pending["pending_nonce"], BOB.address, 1)
    submit = {"jsonrpc": "2.0", "method": "broadcast_tx_sync", "params": [tx.encode().hex()],
              "id": 1}
    status = {"jsonrpc": "2.0", "method": "status", "id": 2}
    for batch in ([submit] + [status] * MAX_BATCH, [submit, *([status] * 50)]):
        answer = exchange(conn, batch)
        assert answer["error"]["code"] == Codes.INVALID_REQUEST
        assert f"at most {MAX_BATCH}" in answer["error"]["data"]
    after = conn.result("account", {"address": address_to_text(ALICE.address)})
    assert after["pending_nonce"] == pending["pending_nonce"], "part of the batch ran"
    # At the limit, the whole batch runs.
    answers = exchange(conn, [submit] + [status] * (MAX_BATCH - 1))
    assert {a["id"]: "result" in a for a in answers} == {1: True, 2: True}
    after = conn.result("account", {"address": address_to_text(ALICE.address)})
    assert after["pending_nonce"] == pending["pending_nonce"] + 1


def test_broadcast_txs_and_pages_are_bounded(conn: HTTP) -> None:
    answer = conn.rpc("broadcast_txs", {"txs": ["00"] * (MAX_BROADCAST + 1)})
    assert answer["error"]["code"] == Codes.INVALID_PARAMS
    assert answer["error"]["data"].startswith(f"txs: at most {MAX_BROADCAST}")
    items = conn.result("broadcast_txs", {"txs": ["00"] * MAX_BROADCAST})
    assert len(items) == MAX_BROADCAST and all(i["error"]["code"] == Codes.TX_REJECTED
                                               for i in items)
    alice = address_to_text(ALICE.address)
    answer = conn.rpc("account_history", {"address": alice, "limit": MAX_PAGE + 1})
    assert answer["error"]["code"] == Codes.NOT_ANSWERABLE
    assert f"at most {MAX_PAGE}" in answer["error"]["data"]
    assert "items" in conn.result("account_history", {"address": alice, "limit": MAX_PAGE})


def test_a_notification_runs_though_nothing_is_answered(conn: HTTP) -> None:
    pending = conn.result("account", {"address": address_to_text(ALICE.address)})
    tx = transfer(ALICE, CHAIN, pending["pending_nonce"], BOB.address, 1)
    answer = conn.request(json.dumps({"jsonrpc": "2.0", "method": "broadcast_tx_sync",
                                      "params": {"tx": tx.encode().hex()}}).encode())
    assert (answer.status, answer.body) == (204, b"")
    after = conn.result("account", {"address": address_to_text(ALICE.address)})
    assert after["pending_nonce"] == pending["pending_nonce"] + 1


def test_other_http_methods_and_paths_are_not_server_errors(conn: HTTP) -> None:
    for verb in ("GET", "PUT", "DELETE", "PATCH"):
        assert conn.request(b"", method=verb).status == 405
    conn.close()
    c = http.client.HTTPConnection("127.0.0.1", conn.port, timeout=WAIT)
    try:
        c.request("POST", "/nowhere", body=b"{}")
        assert c.getresponse().status == 404
    finally:
        c.close()
    for content_type in ("text/plain", "application/x-www-form-urlencoded", ""):
        body = b'{"jsonrpc":"2.0","method":"health","id":1}'
        answer = conn.request(body, headers={"Content-Type": content_type})
        assert "result" in check_answer(body, answer)


# ---------------------------------------------------------------------- CORS


PREFLIGHT = {"Access-Control-Request-Method": "POST",
             "Access-Control-Request-Headers": "content-type"}
STATUS = json.dumps({"jsonrpc": "2.0", "method": "status", "id": 1}).encode()


def test_cors_is_off_by_default(conn: HTTP) -> None:
    origin = {"Origin": "https://shop.example"}
    answer = conn.request(b"", method="OPTIONS", headers=origin | PREFLIGHT)
    assert answer.status == 405
    assert "Access-Control-Allow-Origin" not in answer.headers
    answer = conn.request(STATUS, headers=origin)
    assert answer.status == 200 and "Access-Control-Allow-Origin" not in answer.headers


@pytest.mark.parametrize("origins", [["https://shop.example", "http://localhost:3000"], ["*"]])
def test_cors_is_on_for_the_configured_origins(tmp_path: Path, origins: list[str]) -> None:
    running = NodeThread(tmp_path, rpc={"cors_origins": origins})
    try:
        running.start()
        conn = HTTP(running.port)
        for origin in ("https://shop.example", "http://localhost:3000", "https://evil.example"):
            allowed = "*" if origins == ["*"] else origin if origin in origins else None
            preflight = conn.request(b"", method="OPTIONS", headers={"Origin": origin} | PREFLIGHT)
            post = conn.request(STATUS, headers={"Origin": origin})
            assert post.status == 200 and "result" in check_answer(STATUS, post)
            assert preflight.status in (200, 204)
            for answer in (preflight, post):
                assert answer.headers.get("Access-Control-Allow-Origin") == allowed, origin
            if allowed:
                assert "POST" in preflight.headers["Access-Control-Allow-Methods"]
                assert "content-type" in preflight.headers["Access-Control-Allow-Headers"].lower()
            if allowed not in (None, "*"):
                assert "Origin" in post.headers.get("Vary", "")
            # Refusals carry the headers too, so a browser sees the 405 or 404 itself.
            for refusal in (conn.request(b"", method="PUT", headers={"Origin": origin}),
                            conn.request(STATUS, path="/nowhere", headers={"Origin": origin})):
                assert refusal.status in (404, 405)
                assert refusal.headers.get("Access-Control-Allow-Origin") == allowed, origin
        no_origin = conn.request(STATUS)
        assert "Access-Control-Allow-Origin" not in no_origin.headers or origins == ["*"]
        conn.close()
    finally:
        running.stop()
