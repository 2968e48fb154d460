"""The OpenRPC 1.2 document (https://spec.open-rpc.org) of the node's API, generated
from the very method table the server dispatches on: each method's parameters and
result schemas come from its pydantic models, our error codes from
:data:`protocol.OUR_ERRORS`. ``rpc.discover`` serves it."""

from __future__ import annotations

from functools import cache
from typing import Any

from pydantic import TypeAdapter

from .protocol import OUR_ERRORS, MethodSpec, NoParams, rpc_method

OPENRPC_VERSION = "1.2.6"
API_VERSION = "1.0.0"


def _schema(tp: Any, defs: dict[str, Any], mode: str) -> dict[str, Any]:
    schema = TypeAdapter(tp).json_schema(mode=mode,  # type: ignore[arg-type]
                                         ref_template="#/components/schemas/{model}")
    defs.update(schema.pop("$defs", {}))
    return schema


def document(table: dict[str, MethodSpec]) -> dict[str, Any]:
    """The OpenRPC document of the methods in ``table``."""
    defs: dict[str, Any] = {}
    errors = [{"code": code, "message": message, "data": description}
              for code, (message, description) in sorted(OUR_ERRORS.items(), reverse=True)]
    methods = []
    for spec in table.values():
        params_schema = _schema(spec.params, defs, "validation")
        defs.pop(spec.params.__name__, None)
        required = set(params_schema.get("required", []))
        params = []
        for name, prop in params_schema.get("properties", {}).items():
            entry: dict[str, Any] = {"name": name, "required": name in required,
                                     "schema": {k: v for k, v in prop.items()
                                                if k != "description"}}
            if "description" in prop:
                entry["description"] = prop["description"]
            params.append(entry)
        result_type = spec.result if spec.result is not None else Any
        method: dict[str, Any] = {
            "name": spec.name,
            "summary": spec.summary or spec.name,
            "paramStructure": "either",
            "params": params,
            "result": {"name": f"{spec.name}_result",
                       "schema": _schema(result_type, defs, "serialization")},
            "errors": errors,
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
                 "description": "Binary values are hex, addresses agora1..., amounts "
                                "decimal strings. POST / or WebSocket /websocket."},
        "servers": [{"name": "this node", "url": "/"}],
        "methods": methods,
        "components": {"schemas": defs},
    }


@cache
def _cached_document() -> dict[str, Any]:
    from .methods import method_table
    return document(method_table())


@rpc_method("rpc.discover", NoParams, dict[str, Any])
async def discover(_ctx: Any, _: NoParams) -> dict[str, Any]:
    """This API's OpenRPC document: every method, its parameters, result and errors."""
    return _cached_document()
