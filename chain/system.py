"""The fixed addresses of the commerce contracts every Agora chain starts with.

Genesis deploys the reward token, the escrow and the reviews contract
(``vm/contracts/*.agc``) at these addresses, so wallets, the RPC server and other
contracts can name them without a lookup. Each is the first 20 bytes of SHA-256 of a
fixed tag; no key can sign for them (an address of a key is SHA-256 of a public key).
"""

from __future__ import annotations

from .hashing import sha256

TOKEN_ADDRESS = sha256(b"agora/system/token")[:20]
ESCROW_ADDRESS = sha256(b"agora/system/escrow")[:20]
REVIEWS_ADDRESS = sha256(b"agora/system/reviews")[:20]
