"""The OpenRPC document that ``rpc.discover`` serves: valid by the official OpenRPC
meta-schema (vendored in tests/vectors/, see its README), generated from exactly the
method table the server dispatches on, with a schema for every parameter and result
that the node's real answers (and the requests it accepts) actually match, every
``$ref`` resolving inside the document, and our -32000-range error codes documented.
"""

from __future__ import annotations

import copy
import json
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import pytest
from jsonschema import Draft7Validator, Draft202012Validator
from pydantic import BaseModel
from referencing import Registry
from referencing.jsonschema import DRAFT7

from chain.address import address_to_text
from chain.keys import PrivateKey
from node.config import Config, ConsensusSection, NodeSection, P2PSection, RPCSection
from node.daemon import Node
from node.home import Home, init_home
from node.localnet import free_base_port
from node.rpc import openrpc
from node.rpc.client import RPCClient, transfer
from node.rpc.methods import method_table
from node.rpc.protocol import OUR_ERRORS, Codes, MethodSpec, Params, rpc_method

VECTORS = Path(__file__).parent.parent / "vectors"
META = json.loads((VECTORS / "openrpc-meta-schema.json").read_text())
JSON_SCHEMA_META = json.loads((VECTORS / "json-schema-meta-schema.json").read_text())
#: The OpenRPC meta-schema's ``JSONSchema`` definition refers to this one by URL.
REGISTRY = Registry().with_resources(
    (uri, DRAFT7.create_resource(JSON_SCHEMA_META))
    for uri in ("https://meta.json-schema.tools", "https://meta.json-schema.tools/"))
META_VALIDATOR = Draft7Validator(META, registry=REGISTRY)

CHAIN = "agora-openrpc-test"
ALICE = PrivateKey.from_seed_text("openrpc-test-alice")
BOB = PrivateKey.from_seed_text("openrpc-test-bob")
WAIT = 10.0


@pytest.fixture(scope="module")
def doc() -> dict[str, Any]:
    return openrpc.document(method_table())


def meta_errors(document: dict[str, Any]) -> list[str]:
    return [f"{'/'.join(map(str, e.absolute_path))}: {e.message[:200]}"
            for e in META_VALIDATOR.iter_errors(document)]


def walk(value: Any, path: str = "#") -> Iterator[tuple[str, dict[str, Any]]]:
    """Every object in ``value`` with its JSON pointer."""
    if isinstance(value, dict):
        yield path, value
        for key, item in value.items():
            yield from walk(item, f"{path}/{key.replace('~', '~0').replace('/', '~1')}")
    elif isinstance(value, list):
        for i, item in enumerate(value):
            yield from walk(item, f"{path}/{i}")


def resolve(document: dict[str, Any], ref: str) -> Any:
    assert ref.startswith("#/"), f"{ref} points outside the document"
    node: Any = document
    for part in ref[2:].split("/"):
        part = part.replace("~1", "/").replace("~0", "~")
        assert isinstance(node, dict) and part in node, f"{ref} does not resolve"
        node = node[part]
    return node


def value_validator(document: dict[str, Any], schema: dict[str, Any]) -> Draft202012Validator:
    """A validator of values against one of the document's schemas (pydantic writes
    JSON Schema 2020-12); its ``#/components/...`` refs resolve in the document."""
    root = {**schema, "components": document["components"]}
    Draft202012Validator.check_schema(root)
    return Draft202012Validator(root)


def params_schema(method: dict[str, Any]) -> dict[str, Any]:
    """The method's parameters as one by-name object schema."""
    return {"type": "object", "additionalProperties": False,
            "properties": {p["name"]: p["schema"] for p in method["params"]},
            "required": [p["name"] for p in method["params"] if p["required"]]}


# ---------------------------------------------------------------------- the document


def test_the_vendored_meta_schema_is_the_openrpc_one() -> None:
    assert META["$id"] == "https://meta.open-rpc.org/"
    assert META["title"] == "openrpcDocument"
    assert openrpc.OPENRPC_VERSION in META["properties"]["openrpc"]["enum"]
    assert openrpc.OPENRPC_VERSION.startswith("1.2.")
    Draft7Validator.check_schema(META)
    Draft7Validator.check_schema(JSON_SCHEMA_META)


def test_the_document_is_valid_by_the_openrpc_meta_schema(doc: dict[str, Any]) -> None:
    assert meta_errors(doc) == []


@pytest.mark.parametrize(("what", "spoil"), [
    # (The meta-schema lets a method go without a result: OpenRPC 1.3 allows that for
    # notifications. 1.2 does not; test_every_method_has_params_and_a_result checks.)
    ("no name", lambda d: d["methods"][0].pop("name")),
    ("no params", lambda d: d["methods"][0].pop("params")),
    ("a param without a schema", lambda d: d["methods"][4]["params"][0].pop("schema")),
    ("an unknown openrpc version", lambda d: d.update(openrpc="9.9.9")),
    ("a stray member", lambda d: d["methods"][0].update(paramz=[])),
    ("a schema that is not one", lambda d: d["components"]["schemas"].update(X={"type": 5})),
    ("an error code that is not an integer",
     lambda d: d["components"]["errors"]["NotFound"].update(code="-32001")),
])
def test_the_meta_schema_check_has_teeth(doc: dict[str, Any], what: str, spoil: Any) -> None:
    spoilt = copy.deepcopy(doc)
    spoil(spoilt)
    assert meta_errors(spoilt), what


def test_it_lists_exactly_the_methods_of_the_table(doc: dict[str, Any]) -> None:
    names = [m["name"] for m in doc["methods"]]
    assert names == list(method_table())
    assert len(set(names)) == len(names)
    assert "rpc.discover" in names
    for m in doc["methods"]:
        spec = method_table()[m["name"]]
        assert ("tags" in m) == spec.websocket_only, m["name"]
        assert m["summary"] and m["summary"] != m["name"], f"{m['name']} has no docstring"


def test_every_method_has_params_and_a_result(doc: dict[str, Any]) -> None:
    typed = {"type", "anyOf", "oneOf", "$ref", "enum", "const"}
    for m in doc["methods"]:
        spec = method_table()[m["name"]]
        assert m["paramStructure"] == "either"
        assert [p["name"] for p in m["params"]] == list(spec.params.model_fields), m["name"]
        seen_optional = False
        for p in m["params"]:
            where = f"{m['name']}({p['name']})"
            assert typed & set(p["schema"]), f"{where} has a schema that says nothing"
            Draft202012Validator.check_schema(p["schema"])
            # By position, an optional parameter can only be left out at the end.
            assert not (p["required"] and seen_optional), f"{where}: required after optional"
            seen_optional |= not p["required"]
            field = spec.params.model_fields[p["name"]]
            assert p["required"] == field.is_required(), where
        assert m["result"]["name"], m["name"]
        result = m["result"]["schema"]
        assert typed & set(result), f"{m['name']} has a result schema that says nothing"
        value_validator(doc, result)  # a valid schema whose refs resolve


def test_every_ref_resolves_within_the_document(doc: dict[str, Any]) -> None:
    refs = []
    for path, node in walk(doc):
        if isinstance(node.get("$ref"), str):
            refs.append((path, node["$ref"]))
        mapping = node.get("discriminator", {}).get("mapping", {}) \
            if isinstance(node.get("discriminator"), dict) else {}
        refs.extend((path, ref) for ref in mapping.values())
    assert len(refs) > 50
    for path, ref in refs:
        target = resolve(doc, ref)
        assert isinstance(target, dict) and target, f"{path}: {ref}"
    schemas = doc["components"]["schemas"]
    used = {ref.removeprefix("#/components/schemas/") for _, ref in refs}
    assert set(schemas) <= used, f"never referred to: {set(schemas) - used}"


def test_our_error_codes_are_documented(doc: dict[str, Any]) -> None:
    errors = doc["components"]["errors"]
    assert {e["code"]: (e["message"], e["data"]) for e in errors.values()} == OUR_ERRORS
    ours = {v for k, v in vars(Codes).items() if not k.startswith("_") and isinstance(v, int)
            and -32099 <= v <= -32000}
    assert ours == set(OUR_ERRORS), "a code of the -32000 range is missing from OUR_ERRORS"
    assert all(-32099 <= code <= -32000 for code in OUR_ERRORS)  # the spec's server range
    for m in doc["methods"]:
        codes = [resolve(doc, e["$ref"])["code"] for e in m["errors"]]
        assert sorted(codes) == sorted(OUR_ERRORS), m["name"]


def test_two_models_of_one_name_are_refused() -> None:
    def model(field: str) -> type[BaseModel]:
        return type("Clash", (BaseModel,), {"__annotations__": {field: int}})

    class P(Params):
        pass

    table: dict[str, MethodSpec] = {}
    for i, field in enumerate(("a", "b")):
        async def handler(_ctx: Any, _: P) -> None:
            """A method."""
        spec = rpc_method(f"m{i}", P, list[model(field)])(handler).__rpc__  # type: ignore[attr-defined, misc]
        table[spec.name] = spec
    with pytest.raises(ValueError, match="Clash"):
        openrpc.document(table)


# ---------------------------------------------------------------------- against a real node


@asynccontextmanager
async def running_node(home_path: Path) -> AsyncIterator[tuple[Node, RPCClient]]:
    """A single-validator node with ALICE funded and fast blocks, on free ports."""
    init_home(home_path, chain_id=CHAIN, validator=True)
    home = Home(home_path)
    port = free_base_port(2)
    home.write_config(Config(
        node=NodeSection(mode="validator", moniker="openrpc-test"),
        p2p=P2PSection(listen=f"127.0.0.1:{port}", pex=False),
        rpc=RPCSection(listen=f"127.0.0.1:{port + 1}"),
        consensus=ConsensusSection(block_interval_ms=10, idle_interval_ms=100,
                                   view_timeout_ms=1_000)))
    genesis = json.loads(home.genesis_path.read_text())
    genesis["balances"] = [{"address": address_to_text(ALICE.address), "amount": str(10**21)}]
    home.write_genesis(genesis)
    node = Node(home)
    await node.start()
    try:
        async with RPCClient(f"http://127.0.0.1:{port + 1}/", timeout=WAIT) as client:
            yield node, client
    finally:
        await node.stop()


async def test_the_node_serves_the_document_and_its_answers_match_it(tmp_path: Path) -> None:
    async with running_node(tmp_path) as (node, client):
        served = await client.discover()
        assert served == json.loads(json.dumps(openrpc.document(method_table())))
        assert [m["name"] for m in served["methods"]] == list(node.dispatcher.methods)
        methods = {m["name"]: m for m in served["methods"]}

        tx = transfer(ALICE, CHAIN, 0, BOB.address, 5)
        committed = await client.broadcast_tx_commit(tx)
        height = committed["height"]
        block = await client.block(height)
        token = next(c for c in await client.contracts() if c["name"] == "token")
        alice = address_to_text(ALICE.address)
        calls: list[tuple[str, dict[str, Any]]] = [
            ("status", {}), ("health", {}), ("net_info", {}), ("genesis", {}),
            ("validators", {}), ("validators", {"height": height}), ("mempool_status", {}),
            ("block", {}), ("block", {"height": height}), ("block_by_hash", {"hash": block["hash"]}),
            ("header", {"height": height}), ("commit", {"height": height}),
            ("block_results", {"height": height}),
            ("tx", {"hash": tx.hash.hex()}), ("tx", {"hash": "0x" + tx.hash.hex(), "prove": True}),
            ("account", {"address": alice}), ("account", {"address": BOB.address.hex(), "height": 0}),
            ("account_history", {"address": alice, "limit": 1}),
            ("token_balance", {"address": alice}),
            ("call", {"contract": "token", "method": "balance_of", "args": [alice]}),
            ("call", {"contract": token["address"], "method": "balance_of", "args": [alice],
                      "sender": alice, "height": height, "gas": 100_000}),
            ("contracts", {}), ("proof", {"keys": ["00"], "tx": tx.hash.hex()}),
            ("broadcast_tx_sync", {"tx": transfer(ALICE, CHAIN, 1, BOB.address, 5).encode().hex()}),
            ("broadcast_txs", {"txs": [transfer(ALICE, CHAIN, 2, BOB.address, 5).encode().hex(),
                                       "00"]}),
            ("broadcast_tx_async", {"tx": transfer(ALICE, CHAIN, 3, BOB.address, 5).encode().hex()}),
            ("proposals", {}), ("proposals", {"state": "open", "limit": 5}),
            ("evidence", {}), ("evidence", {"validator": alice, "from_height": 0}),
            ("rpc.discover", {}),
        ]
        seen = {"broadcast_tx_commit"}
        validators = {name: value_validator(served, m["result"]["schema"])
                      for name, m in methods.items()}
        params_validators = {name: Draft202012Validator(params_schema(m))
                             for name, m in methods.items()}
        params_validators["broadcast_tx_commit"].validate({"tx": tx.encode().hex()})
        validators["broadcast_tx_commit"].validate(committed)
        for name, params in calls:
            errors = [e.message for e in params_validators[name].iter_errors(params)]
            assert errors == [], f"{name}{params}: the schema refuses what the node takes"
            answer = await client.call(name, **params)
            errors = [f"{'/'.join(map(str, e.absolute_path))}: {e.message[:300]}"
                      for e in validators[name].iter_errors(answer)]
            assert errors == [], f"{name}{params}: the answer does not match its schema"
            seen.add(name)
        untried = {n for n, s in method_table().items() if not s.websocket_only} - seen
        # The commerce methods need orders, listings and reviews: their own tests (with a
        # full order's lifecycle) check their answers.
        assert untried <= {"listing", "listings", "order", "orders", "group", "merchant",
                           "arbiter", "reviews", "events"}, untried
