"""The node: everything that turns the chain, storage, VM, p2p and consensus packages
into a running program.

* ``daemon`` wires the services and owns their lifecycle; ``app`` is the application
  consensus drives (executor + mempool); ``mempool`` and ``txrelay`` admit and spread
  transactions; ``events`` is the one bus commits are published on.
* ``chainview`` is the read-only query layer over committed blocks and state; ``index``
  the secondary indexes built from committed blocks; ``rpc/`` the JSON-RPC and
  WebSocket API (and its typed client); ``metrics`` the Prometheus endpoint.
* ``config``, ``home`` and ``genesis`` are a node's files (``agora init``);
  ``localnet`` runs N validators on one machine; ``contract_tool`` is behind
  ``agora contract``.
"""
