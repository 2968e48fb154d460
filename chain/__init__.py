"""The data model every other package shares: canonical codec, hashing, keys and
addresses, transactions, headers, blocks, votes, commit certificates, Merkle proofs
and the genesis file."""
