"""The fixed addresses of the commerce contracts every Agora chain starts with.

Genesis deploys them (``vm/contracts/*.agc``) at these addresses, so wallets, the RPC
server and the contracts themselves name each other without a lookup:

* ``TOKEN_ADDRESS`` — the reward token (``token.agc``): backed one to one by coin.
* ``CATALOG_ADDRESS`` — listings and their terms, and the arbiter registry
  (``catalog.agc``).
* ``ESCROW_ADDRESS`` — orders and group deals: the money, from payment to payout,
  returns, disputes, commissions, and the outcome records of merchants, listings and
  arbiters (``escrow.agc``).
* ``REVIEWS_ADDRESS`` — reviews tied to ended orders, and their reputation
  (``reviews.agc``).
* ``GOVERNANCE_ADDRESS`` — the validator set's governance (``governance.agc``), and
  ``EVIDENCE_ADDRESS``, where evidence of equivocation is sent.

Each is the first 20 bytes of SHA-256 of a fixed tag; no key can sign for them (the
address of a key is SHA-256 of a public key).
"""

from __future__ import annotations

from .hashing import sha256

TOKEN_ADDRESS = sha256(b"agora/system/token")[:20]
CATALOG_ADDRESS = sha256(b"agora/system/catalog")[:20]
ESCROW_ADDRESS = sha256(b"agora/system/escrow")[:20]
REVIEWS_ADDRESS = sha256(b"agora/system/reviews")[:20]
#: The validator-set governance contract (``governance.agc``): proposals and votes.
GOVERNANCE_ADDRESS = sha256(b"agora/system/governance")[:20]
#: Not a contract: a call to it carries evidence of a double vote, which the executor
#: checks itself (it verifies signatures, which contracts cannot), records, and passes
#: on to the governance contract as a removal proposal sent from this address.
EVIDENCE_ADDRESS = sha256(b"agora/system/evidence")[:20]

#: name -> address, in the order genesis lists them
COMMERCE_CONTRACTS = {
    "token": TOKEN_ADDRESS,
    "catalog": CATALOG_ADDRESS,
    "escrow": ESCROW_ADDRESS,
    "reviews": REVIEWS_ADDRESS,
}

#: Every contract genesis places at a fixed address, by name: the commerce set and
#: the validator set's governance.
SYSTEM_CONTRACTS = {**COMMERCE_CONTRACTS, "governance": GOVERNANCE_ADDRESS}

#: How people read the native coin: amounts on chain are base units, and one coin is
#: 10**COIN_DECIMALS of them (like the reward token's 18 decimals).
COIN_SYMBOL = "AGO"
COIN_DECIMALS = 18
