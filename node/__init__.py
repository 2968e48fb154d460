"""Config, mempool, the daemon, JSON-RPC server, light node, RPC client, metrics, localnet."""
