"""Validators and validator sets with voting power."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field

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


#: Governance never takes a set below this many validators (a set of 4 tolerates one
#: Byzantine validator; fewer tolerate none).
MIN_VALIDATORS = 4


def power_change(old: ValidatorSet, new: ValidatorSet) -> int:
    """How much voting power moves between two sets: the sum, over every validator in
    either, of the difference of its power (a removed one's whole power, an added
    one's whole power)."""
    moved = 0
    for v in old:
        now = new.get(v.address)
        moved += abs(v.power - (now.power if now is not None else 0))
    for v in new:
        if old.get(v.address) is None:
            moved += v.power
    return moved


def check_step(old: ValidatorSet, new: ValidatorSet) -> None:
    """The rules of one governance step, which keep consecutive sets overlapping by
    more than two thirds of the power (what light nodes rely on to skip ahead): less
    than a third of the old set's power moves, and a set does not shrink below
    :data:`MIN_VALIDATORS`. Raises InvalidValidatorSet."""
    if len(new) < len(old) and len(new) < MIN_VALIDATORS:
        raise InvalidValidatorSet(f"a validator set may not shrink below {MIN_VALIDATORS} "
                                  "validators")
    moved = power_change(old, new)
    if 3 * moved >= old.total_power:
        raise InvalidValidatorSet(f"a step may move less than a third of the voting power "
                                  f"({moved} of {old.total_power} would move)")


def apply_updates(old: ValidatorSet, updates: Iterable[tuple[bytes, int]]) -> ValidatorSet:
    """``old`` with each (public key, power) applied in order: power 0 removes the
    validator, a new key is appended, a known key gets the new power (keeping its
    place). Raises InvalidValidatorSet if the result breaks a rule."""
    rows = [(v.public_key, v.power) for v in old]
    for key, power in updates:
        index = next((i for i, (k, _) in enumerate(rows) if k == key), None)
        if index is None:
            if power:
                rows.append((key, power))
        elif power:
            rows[index] = (key, power)
        else:
            del rows[index]
    if not rows:
        raise InvalidValidatorSet("the update removes every validator")
    return ValidatorSet(Validator(k, p) for k, p in rows)


@dataclass(frozen=True)
class SetRecord:
    """A validator set as stored for the heights it is in force: from ``height`` on
    (until the next record). ``names`` and ``p2p`` (by validator address) are what
    people and nodes read — a name, and the node address the validator announced —
    and are not part of the set's hash."""

    height: int
    validators: ValidatorSet
    names: dict[bytes, str] = field(default_factory=dict)
    p2p: dict[bytes, str] = field(default_factory=dict)

    def rows(self) -> list[tuple[bytes, int, str, str]]:
        return [(v.public_key, v.power, self.names.get(v.address, ""),
                 self.p2p.get(v.address, "")) for v in self.validators]

    @classmethod
    def from_rows(cls, height: int, rows: Iterable[tuple[bytes, int, str, str]]) -> SetRecord:
        rows = list(rows)
        vset = ValidatorSet(Validator(k, p) for k, p, _, _ in rows)
        names = {address_of(k): n for k, _, n, _ in rows if n}
        p2p = {address_of(k): a for k, _, _, a in rows if a}
        return cls(height, vset, names, p2p)
