"""Transactions: who pays, in what order, for which action, on which chain.

A transaction carries exactly one action — :class:`Transfer` native coin,
:class:`Call` a contract method, or :class:`Deploy` code — and is signed by its sender
over everything but the signature, in the ``agora/tx/v1`` domain and for its chain id.
Its hash is SHA-256 of its full canonical encoding (ed25519 signatures from libsodium
are not malleable, so the hash is a stable identity).

Only *stateless* checks live here (size, canonical form, chain id, signature, field
limits). Nonce and balance are checked by the executor against state.
"""

from __future__ import annotations

from typing import ClassVar, final

from .codec import BigUInt, Bytes, OneOf, Record, Str, UInt, pack, record
from .errors import DecodeError, InvalidTransaction
from .hashing import Domain, sha256
from .keys import (
    ADDRESS_SIZE,
    PUBLIC_KEY_SIZE,
    SIGNATURE_SIZE,
    PrivateKey,
    address_of,
    verify,
)

MAX_CHAIN_ID = 64
MAX_METHOD = 64
MAX_MEMO = 256
MAX_CALL_ARGS = 64 * 1024
MAX_CODE = 64 * 1024
#: Default and absolute ceiling of an encoded transaction; genesis may set it lower.
MAX_TX_SIZE = 160 * 1024

Address = Bytes(ADDRESS_SIZE)
Amount = BigUInt(256)


# final: nothing subclasses an action, so `type(a) is Transfer` settles which it is.
@final
@record(("to", Address), ("amount", Amount))
class Transfer(Record):
    """Move ``amount`` native coin from the sender to ``to``."""

    TAG: ClassVar[int] = 0
    to: bytes
    amount: int


@final
@record(
    ("contract", Address),
    ("method", Str(MAX_METHOD)),
    ("args", Bytes(max_len=MAX_CALL_ARGS)),
    ("value", Amount),
)
class Call(Record):
    """Call ``method`` of ``contract`` with ABI-encoded ``args``, sending ``value``."""

    TAG: ClassVar[int] = 1
    contract: bytes
    method: str
    args: bytes
    value: int


@final
@record(("code", Bytes(max_len=MAX_CODE)), ("args", Bytes(max_len=MAX_CALL_ARGS)), ("value", Amount))
class Deploy(Record):
    """Deploy ``code``, running its constructor with ``args`` and ``value``."""

    TAG: ClassVar[int] = 2
    code: bytes
    args: bytes
    value: int


Action = Transfer | Call | Deploy


#: For Transaction.signed_message: a 3-item array header with the domain tag packed
#: once, and the encoded signature's size (bin 8 header + 64 bytes), which ends every
#: transaction's encoding.
_SIGNED_PREFIX = b"\x93" + pack(Domain.TX)
_SIGNATURE_TAIL = 2 + SIGNATURE_SIZE


@record(
    ("chain_id", Str(MAX_CHAIN_ID)),
    ("sender", Bytes(PUBLIC_KEY_SIZE)),
    ("nonce", UInt(64)),
    ("gas_limit", UInt(64)),
    ("gas_price", UInt(64)),
    ("action", OneOf(Transfer, Call, Deploy)),
    ("memo", Str(MAX_MEMO)),
    ("signature", Bytes(SIGNATURE_SIZE)),
)
class Transaction(Record):
    """A signed transaction. ``sender`` is the ed25519 public key of the payer."""

    MAX_SIZE: ClassVar[int] = MAX_TX_SIZE
    chain_id: str
    sender: bytes
    nonce: int
    gas_limit: int
    gas_price: int
    action: Action
    memo: str
    signature: bytes

    @classmethod
    def create(
        cls,
        key: PrivateKey,
        chain_id: str,
        nonce: int,
        action: Action,
        *,
        gas_limit: int,
        gas_price: int,
        memo: str = "",
    ) -> Transaction:
        """Build and sign a transaction with ``key``."""
        unsigned = cls(chain_id, key.public_key, nonce, gas_limit, gas_price, action, memo,
                       bytes(SIGNATURE_SIZE))
        signature = key.sign(Domain.TX, chain_id, unsigned.signing_body())
        return cls(chain_id, key.public_key, nonce, gas_limit, gas_price, action, memo, signature)

    def signing_body(self) -> list:
        """What the signature covers: every field but the signature itself."""
        return self.to_raw()[:-1]

    @property
    def hash(self) -> bytes:
        """SHA-256 of the canonical encoding (the transaction id)."""
        cached = self.__dict__.get("_hash")
        if cached is None:
            cached = sha256(self.encode())
            object.__setattr__(self, "_hash", cached)
        return cached

    @property
    def sender_address(self) -> bytes:
        """The 20-byte address of the sender."""
        cached = self.__dict__.get("_sender_address")
        if cached is None:
            cached = address_of(self.sender)
            object.__setattr__(self, "_sender_address", cached)
        return cached

    @property
    def max_fee(self) -> int:
        """The most this transaction can cost in fees: gas limit times gas price."""
        return self.gas_limit * self.gas_price

    @property
    def value(self) -> int:
        """Native coin the action moves out of the sender's balance."""
        action = self.action
        return action.amount if type(action) is Transfer else action.value

    def signed_message(self) -> bytes:
        """The exact bytes the signature covers: ``signing_bytes(Domain.TX, chain_id,
        signing_body())``, cut from the encoding rather than built again. The encoding
        is an 8-item array ending in the 64-byte signature (a bin 8: 2 header bytes), so
        the signed body is the same array with a 7-item header and without its last 66
        bytes; ``[tag, chain id, body]`` around it is a 3-item header and two strings."""
        encoded = self.encode()
        return (_SIGNED_PREFIX + pack(self.chain_id) + b"\x97"
                + encoded[1:-_SIGNATURE_TAIL])

    def has_valid_signature(self) -> bool:
        """True iff the signature verifies (the result is cached on the object)."""
        cached = self.__dict__.get("_sig_ok")
        if cached is None:
            cached = verify(self.sender, self.signed_message(), self.signature)
            object.__setattr__(self, "_sig_ok", cached)
        return cached

    def validate(self, chain_id: str, max_size: int = MAX_TX_SIZE) -> None:
        """Stateless validation; raises :class:`InvalidTransaction` with the reason.

        Checks the encoded size, the chain id, the gas fields and the signature. The
        cheap checks run first so junk costs no signature verification.
        """
        size = len(self.encode())
        if size > max_size:
            raise InvalidTransaction(f"transaction is {size} bytes, over the limit of {max_size}")
        if self.chain_id != chain_id:
            raise InvalidTransaction(
                f"transaction is for chain {self.chain_id!r}, this is chain {chain_id!r}"
            )
        if self.gas_limit == 0:
            raise InvalidTransaction("gas limit must be positive")
        if not self.has_valid_signature():
            raise InvalidTransaction("transaction signature does not verify")

    @classmethod
    def decode_and_validate(
        cls, data: bytes, chain_id: str, max_size: int = MAX_TX_SIZE
    ) -> Transaction:
        """Decode untrusted bytes and run the stateless checks in one step."""
        try:
            tx = cls.decode(data, max_size)
        except DecodeError as exc:
            raise InvalidTransaction(f"malformed transaction: {exc}") from None
        tx.validate(chain_id, max_size)
        return tx
