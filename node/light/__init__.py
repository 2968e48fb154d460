"""The light node (``agora light``): verified headers, verified answers, lying full nodes
caught. ``verifier`` (pure header verification), ``store`` (verified headers on disk),
``provider`` (a full node's RPC as claims), ``client`` (following the head, bisection,
witnesses and detection), ``proven`` (state and transactions checked by Merkle proof,
contract views run locally over proven state), ``service`` (the local JSON-RPC
endpoint) and ``watch`` (a merchant's open orders)."""
