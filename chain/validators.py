"""Validators and validator sets with voting power."""

from __future__ import annotations

from collections.abc import Iterable

from .codec import Bytes, Record, UInt, record
from .errors import RemoteError
from .keys import PUBLIC_KEY_SIZE, address_of
from .merkle import merkle_root

#: Total voting power is bounded so that 3 * power never overflows a u64 anywhere.
MAX_TOTAL_POWER = 1 << 60
MAX_VALIDATORS = 1024


class InvalidValidatorSet(RemoteError):
    """A validator set breaks a rule: empty, duplicate keys, zero power, too large."""


@record(("public_key", Bytes(PUBLIC_KEY_SIZE)), ("power", UInt(64)))
class Validator(Record):
    """One validator: its ed25519 public key and its voting power."""

    public_key: bytes
    power: int

    @property
    def address(self) -> bytes:
        return address_of(self.public_key)


class ValidatorSet:
    """An ordered, validated set of validators.

    The order is the one given (genesis order); it is part of the set's hash, which
    headers commit to. A quorum is *more than* two thirds of the total power.
    """

    __slots__ = ("validators", "total_power", "_by_address", "_hash")

    def __init__(self, validators: Iterable[Validator]) -> None:
        self.validators: tuple[Validator, ...] = tuple(validators)
        if not self.validators:
            raise InvalidValidatorSet("a validator set needs at least one validator")
        if len(self.validators) > MAX_VALIDATORS:
            raise InvalidValidatorSet(f"more than {MAX_VALIDATORS} validators")
        by_address: dict[bytes, Validator] = {}
        total = 0
        for v in self.validators:
            if v.power <= 0:
                raise InvalidValidatorSet(f"validator {v.public_key.hex()} has no voting power")
            if v.address in by_address:
                raise InvalidValidatorSet(f"validator {v.public_key.hex()} is listed twice")
            by_address[v.address] = v
            total += v.power
        if total > MAX_TOTAL_POWER:
            raise InvalidValidatorSet("total voting power is too large")
        self.total_power = total
        self._by_address = by_address
        self._hash = merkle_root([v.encode() for v in self.validators])

    @property
    def hash(self) -> bytes:
        """RFC 6962 Merkle root over the encoded validators, in order."""
        return self._hash

    def get(self, address: bytes) -> Validator | None:
        return self._by_address.get(address)

    def __len__(self) -> int:
        return len(self.validators)

    def __iter__(self):
        return iter(self.validators)

    def has_quorum(self, power: int) -> bool:
        """True iff ``power`` is more than two thirds of the total."""
        return 3 * power > 2 * self.total_power

    def exceeds_one_third(self, power: int) -> bool:
        """True iff ``power`` is more than a third of the total: at least one honest
        validator is among them (PBFT joins a view change on such evidence)."""
        return 3 * power > self.total_power

    @property
    def quorum_power(self) -> int:
        """The least power that is more than two thirds of the total."""
        return 2 * self.total_power // 3 + 1
