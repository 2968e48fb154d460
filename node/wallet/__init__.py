"""The wallet behind the ``agora`` CLI: an encrypted keystore (``keystore``), amounts in
decimals (``amounts``), and one function per commerce action that builds the
transaction from the contract ABI, tries it read-only first, signs, submits, waits for
the commit and reports the outcome (``session``, ``actions``). It reaches a node only
through the JSON-RPC client (``node.rpc.client``)."""
