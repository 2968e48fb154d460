"""The node's JSON-RPC API: ``protocol`` (transport-free JSON-RPC 2.0), ``server``
(aiohttp: POST ``/``, ``/websocket``, mounts), ``methods/`` (one module per topic),
``views`` (pydantic result models), ``subscriptions``, ``openrpc`` and ``client``.
Methods reach the node only through ``context.RPCContext``."""
