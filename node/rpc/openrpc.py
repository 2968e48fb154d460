"""The OpenRPC 1.2 document (https://spec.open-rpc.org) of the node's API, generated
from the very method table the server dispatches on: each method's parameters and
result schemas come from its pydantic models, our error codes from
:data:`protocol.OUR_ERRORS`. ``rpc.discover`` serves it.

Shape of the document:

* ``methods``: one per entry of the table, in table order. Parameters are listed in
  the order of their model's fields, which is also the order a by-position call uses
  (``paramStructure: either``); each names its schema (the validation schema of the
  field: what the server accepts) and says whether it is required. The result's schema
  is the serialization schema of the result type (what the server sends: every field
  of a view is always present, so every field is required).
* ``components.schemas``: every model a method's schema refers to, by its class name;
  refs are ``#/components/schemas/Name``. Two different models of one name would make
  one of them describe the other, so that is refused when the document is built.
* ``components.errors``: our codes in the -32000 range, each method's ``errors``
  refers to them (``#/components/errors/Name``). The JSON-RPC 2.0 codes (-32700 ..
  -32603) are the spec's and not repeated.
* WebSocket-only methods (subscriptions) carry the tag ``websocket``.
"""

from __future__ import annotations

from functools import cache
from typing import Any

from pydantic import TypeAdapter

from .protocol import OUR_ERRORS, MethodSpec, NoParams, rpc_method

OPENRPC_VERSION = "1.2.6"
API_VERSION = "1.0.0"
_REF = "#/components/schemas/"


def _error_name(message: str) -> str:
    """``"Transaction rejected"`` -> ``"TransactionRejected"`` (a component key)."""
    return "".join(word[:1].upper() + word[1:] for word in message.split())


def _schema(tp: Any, defs: dict[str, Any], mode: str) -> dict[str, Any]:
    """The JSON schema of ``tp``; the models it refers to go into ``defs``."""
    schema = TypeAdapter(tp).json_schema(mode=mode,  # type: ignore[arg-type]
                                         ref_template=_REF + "{model}")
    for name, definition in schema.pop("$defs", {}).items():
        if defs.setdefault(name, definition) != definition:
            raise ValueError(f"two different models are both called {name}: rename one, "
                             "or the OpenRPC document would describe one as the other")
    ref = schema.get("$ref", "")
    if ref.startswith(_REF) and set(schema) == {"$ref"}:
        # A self-referencing model is put among the definitions whole; inline the top.
        schema = dict(defs[ref[len(_REF):]])
    return schema


def _params(spec: MethodSpec, defs: dict[str, Any]) -> list[dict[str, Any]]:
    schema = _schema(spec.params, defs, "validation")
    required = set(schema.get("required", []))
    params = []
    for name, prop in schema.get("properties", {}).items():
        entry: dict[str, Any] = {"name": name, "required": name in required,
                                 "schema": {k: v for k, v in prop.items()
                                            if k != "description"}}
        if "description" in prop:
            entry["description"] = prop["description"]
        params.append(entry)
    return params


def document(table: dict[str, MethodSpec]) -> dict[str, Any]:
    """The OpenRPC document of the methods in ``table``."""
    defs: dict[str, Any] = {}
    errors = {_error_name(message): {"code": code, "message": message, "data": description}
              for code, (message, description) in sorted(OUR_ERRORS.items(), reverse=True)}
    error_refs = [{"$ref": f"#/components/errors/{name}"} for name in errors]
    methods = []
    for spec in table.values():
        result_type = spec.result if spec.result is not None else Any
        method: dict[str, Any] = {
            "name": spec.name,
            "summary": spec.summary or spec.name,
            "paramStructure": "either",
            "params": _params(spec, defs),
            "result": {"name": f"{spec.name}_result",
                       "schema": _schema(result_type, defs, "serialization")},
            "errors": error_refs,
        }
        if spec.description:
            method["description"] = spec.description
        if spec.websocket_only:
            method["tags"] = [{"name": "websocket",
                               "description": "Only over the WebSocket endpoint."}]
        methods.append(method)
    return {
        "openrpc": OPENRPC_VERSION,
        "info": {"title": "Agora node JSON-RPC API", "version": API_VERSION,
                 "description": "JSON-RPC 2.0 over HTTP POST / (batches of at most "
                                "rpc.max_batch requests) or WebSocket /websocket. Binary "
                                "values are lowercase hex, addresses agora1..., amounts "
                                "decimal strings."},
        # The spec allows a relative URL: the node serving this document, at its root.
        "servers": [{"name": "this node", "url": "/"}],
        "methods": methods,
        "components": {"schemas": dict(sorted(defs.items())), "errors": errors},
    }


@cache
def _cached_document() -> dict[str, Any]:
    from .methods import method_table
    return document(method_table())


@rpc_method("rpc.discover", NoParams, dict[str, Any])
async def discover(_ctx: Any, _: NoParams) -> dict[str, Any]:
    """This API's OpenRPC document: every method, its parameters, result and errors."""
    return _cached_document()
