"""The genesis file: the chain id, its start time, the first validators, the initial
balances, the pre-deployed contracts and the consensus parameters every node must
agree on.

``genesis.json`` is read with pydantic so that every mistake is reported with the path
of the offending key (``validators.2.power: ...``), and unknown keys are refused — a
typo in a genesis file must stop a node, not be silently ignored. The validated file
is turned into plain chain types; its hash (SHA-256 of the canonical encoding of
those) is what nodes compare to be sure they start from the same genesis.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Annotated, Any

import nacl.bindings
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    StrictInt,
    StrictStr,
    ValidationError,
    field_validator,
)

from .address import address_from_text, address_to_text
from .codec import pack
from .errors import InvalidAddress, InvalidGenesis
from .hashing import sha256
from .keys import PUBLIC_KEY_SIZE
from .tx import MAX_TX_SIZE
from .validators import InvalidValidatorSet, Validator, ValidatorSet

CHAIN_ID_RE = re.compile(r"^[a-z0-9][a-z0-9._-]{0,63}$")
MAX_AMOUNT = (1 << 256) - 1
MAX_CONTRACT_CODE = 64 * 1024
MAX_STORAGE_KEY = 512
MAX_STORAGE_VALUE = 64 * 1024
MAX_GENESIS_FILE = 64 * 1024 * 1024
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_MS = timedelta(milliseconds=1)


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, strict=False)


class ConsensusParams(_Model):
    """Chain-wide rules fixed at genesis (local timing lives in config.toml)."""

    # Strict: 1e3, "1000" or true are mistakes in a genesis file, not numbers.
    max_block_txs: Annotated[StrictInt, Field(gt=0, le=65_536)] = 5_000
    max_block_bytes: Annotated[StrictInt, Field(gt=0, le=16 * 1024 * 1024)] = 8 * 1024 * 1024
    max_tx_bytes: Annotated[StrictInt, Field(gt=0, le=MAX_TX_SIZE)] = 64 * 1024
    max_block_gas: Annotated[StrictInt, Field(gt=0, lt=1 << 63)] = 100_000_000
    min_gas_price: Annotated[StrictInt, Field(ge=0, lt=1 << 63)] = 1

    def to_raw(self) -> list[int]:
        return [self.max_block_txs, self.max_block_bytes, self.max_tx_bytes,
                self.max_block_gas, self.min_gas_price]


class _ValidatorModel(_Model):
    name: Annotated[StrictStr, Field(max_length=64)] = ""
    public_key: StrictStr
    power: Annotated[StrictInt, Field(gt=0, lt=1 << 60)]

    @field_validator("public_key")
    @classmethod
    def _hex_key(cls, v: str) -> str:
        try:
            raw = bytes.fromhex(v)
        except ValueError:
            raise ValueError("public_key must be hex") from None
        if len(raw) != PUBLIC_KEY_SIZE or len(v) != 2 * PUBLIC_KEY_SIZE:
            raise ValueError(f"public_key must be {PUBLIC_KEY_SIZE} bytes of hex")
        if not nacl.bindings.crypto_core_ed25519_is_valid_point(raw):
            raise ValueError("public_key is not a valid ed25519 public key")
        return v.lower()


class _BalanceModel(_Model):
    address: StrictStr
    amount: StrictInt | StrictStr

    @field_validator("address")
    @classmethod
    def _address(cls, v: str) -> str:
        try:
            address_from_text(v)
        except InvalidAddress as exc:
            raise ValueError(str(exc)) from None
        return v.lower()

    @field_validator("amount")
    @classmethod
    def _amount(cls, v: int | str) -> int:
        if isinstance(v, str):
            if not (v.isascii() and v.isdigit()):
                raise ValueError("amount must be a non-negative integer")
            v = int(v)
        if not 0 <= v <= MAX_AMOUNT:
            raise ValueError("amount must fit in 256 bits")
        return v


def _hex(v: str, what: str, max_len: int) -> bytes:
    try:
        raw = bytes.fromhex(v)
    except ValueError:
        raise ValueError(f"{what} must be hex") from None
    if len(raw) > max_len:
        raise ValueError(f"{what} is {len(raw)} bytes, at most {max_len}")
    return raw


class _ContractModel(_Model):
    address: StrictStr
    code: StrictStr
    balance: StrictInt | StrictStr = 0
    storage: dict[StrictStr, StrictStr] = {}

    _address = field_validator("address")(_BalanceModel._address.__func__)  # type: ignore[attr-defined]
    _balance = field_validator("balance")(_BalanceModel._amount.__func__)  # type: ignore[attr-defined]

    @field_validator("code")
    @classmethod
    def _code(cls, v: str) -> str:
        if not _hex(v, "code", MAX_CONTRACT_CODE):
            raise ValueError("code is empty")
        return v.lower()

    @field_validator("storage")
    @classmethod
    def _storage(cls, v: dict[str, str]) -> dict[str, str]:
        for key, value in v.items():
            if not _hex(key, f"storage key {key!r}", MAX_STORAGE_KEY):
                raise ValueError("storage keys are not empty")
            if not _hex(value, f"storage value of {key!r}", MAX_STORAGE_VALUE):
                raise ValueError(f"storage value of {key!r} is empty (leave the key out)")
        return v


class _GenesisModel(_Model):
    chain_id: str
    genesis_time: datetime
    validators: Annotated[list[_ValidatorModel], Field(min_length=1)]
    balances: list[_BalanceModel] = []
    contracts: list[_ContractModel] = []
    consensus: ConsensusParams = ConsensusParams()

    @field_validator("chain_id")
    @classmethod
    def _chain_id(cls, v: str) -> str:
        # fullmatch: with match(), "$" would also accept a trailing newline.
        if not CHAIN_ID_RE.fullmatch(v):
            raise ValueError("chain_id is 1-64 characters of a-z, 0-9, '.', '_', '-'")
        return v

    @field_validator("genesis_time", mode="before")
    @classmethod
    def _text_time(cls, v: object) -> object:
        if not isinstance(v, str | datetime):
            raise ValueError("genesis_time is a text such as 2026-01-01T00:00:00Z")
        return v

    @field_validator("genesis_time")
    @classmethod
    def _tz(cls, v: datetime) -> datetime:
        if v.tzinfo is None:
            raise ValueError("genesis_time needs a time zone, e.g. 2026-01-01T00:00:00Z")
        return v


@dataclass(frozen=True)
class GenesisContract:
    """A contract in place from the start: its code (validated by the executor, which
    refuses a genesis with invalid code), balance and storage."""

    address: bytes
    code: bytes
    balance: int
    storage: tuple[tuple[bytes, bytes], ...]


@dataclass(frozen=True)
class Genesis:
    """A validated genesis: plain chain types, ready for the executor and consensus."""

    chain_id: str
    time_ms: int
    validators: ValidatorSet
    validator_names: tuple[str, ...]
    balances: tuple[tuple[bytes, int], ...]
    consensus: ConsensusParams
    contracts: tuple[GenesisContract, ...] = ()

    @property
    def hash(self) -> bytes:
        """SHA-256 of the canonical encoding of everything above (names excluded)."""
        return sha256(pack([
            "agora/genesis/v1",
            self.chain_id,
            self.time_ms,
            [v.to_raw() for v in self.validators],
            [[a, amount.to_bytes(32, "big")] for a, amount in self.balances],
            self.consensus.to_raw(),
            [[c.address, c.code, c.balance.to_bytes(32, "big"), [list(kv) for kv in c.storage]]
             for c in self.contracts],
        ]))

    @classmethod
    def from_dict(cls, data: Any, source: str = "genesis") -> Genesis:
        """Validate a parsed JSON document; raises InvalidGenesis naming the key."""
        try:
            model = _GenesisModel.model_validate(data)
        except ValidationError as exc:
            raise InvalidGenesis(_describe(exc, source)) from None
        validators = [Validator(bytes.fromhex(v.public_key), v.power) for v in model.validators]
        try:
            vset = ValidatorSet(validators)
        except InvalidValidatorSet as exc:
            raise InvalidGenesis(f"{source}: validators: {exc}") from None
        seen: set[bytes] = set()
        balances = []
        for i, b in enumerate(model.balances):
            addr = address_from_text(b.address)
            if addr in seen:
                raise InvalidGenesis(f"{source}: balances.{i}.address: {b.address} listed twice")
            seen.add(addr)
            balances.append((addr, int(b.amount)))
        balances.sort()
        # Exact integer arithmetic: timestamp() * 1000 is a float and can land one
        # millisecond low (2004-06-01T13:17:20.909Z gave ...908).
        time_ms = (model.genesis_time - _EPOCH) // _MS
        if time_ms < 0:
            raise InvalidGenesis(f"{source}: genesis_time: before 1970")
        contracts = []
        for i, c in enumerate(model.contracts):
            addr = address_from_text(c.address)
            if addr in seen:
                raise InvalidGenesis(f"{source}: contracts.{i}.address: {c.address} already has "
                                     "a balance or a contract")
            seen.add(addr)
            storage = tuple(sorted((bytes.fromhex(k), bytes.fromhex(v))
                                   for k, v in c.storage.items()))
            if len({k for k, _ in storage}) != len(storage):
                raise InvalidGenesis(f"{source}: contracts.{i}.storage: a key listed twice")
            contracts.append(GenesisContract(addr, bytes.fromhex(c.code), int(c.balance),
                                             storage))
        contracts.sort(key=lambda c: c.address)
        supply = sum(amount for _, amount in balances) + sum(c.balance for c in contracts)
        if supply > MAX_AMOUNT:
            # Every balance, and the sum of any of them, must stay within 256 bits.
            raise InvalidGenesis(f"{source}: balances: the total supply exceeds 2**256 - 1")
        return cls(model.chain_id, time_ms, vset, tuple(v.name for v in model.validators),
                   tuple(balances), model.consensus, tuple(contracts))

    @classmethod
    def load(cls, path: str | Path) -> Genesis:
        """Read and validate a genesis JSON file."""
        path = Path(path)
        try:
            if path.stat().st_size > MAX_GENESIS_FILE:
                raise InvalidGenesis(f"{path}: larger than {MAX_GENESIS_FILE} bytes")
            text = path.read_text(encoding="utf-8")
        except OSError as exc:
            raise InvalidGenesis(f"{path}: cannot read: {exc.strerror or exc}") from None
        except UnicodeDecodeError:
            raise InvalidGenesis(f"{path}: not UTF-8 text") from None
        try:
            data = json.loads(text)
        except json.JSONDecodeError as exc:
            raise InvalidGenesis(f"{path}: not JSON: {exc}") from None
        except RecursionError:
            raise InvalidGenesis(f"{path}: JSON nested too deeply") from None
        return cls.from_dict(data, str(path))

    def to_dict(self) -> dict[str, Any]:
        """The JSON document this genesis was (or could have been) read from."""
        time = _EPOCH + self.time_ms * _MS  # exact, unlike fromtimestamp(ms / 1000)
        return {
            "chain_id": self.chain_id,
            "genesis_time": time.isoformat(timespec="milliseconds").replace("+00:00", "Z"),
            "validators": [
                {"name": name, "public_key": v.public_key.hex(), "power": v.power}
                for name, v in zip(self.validator_names, self.validators, strict=True)
            ],
            "balances": [
                {"address": address_to_text(a), "amount": str(amount)}
                for a, amount in self.balances
            ],
            "contracts": [
                {"address": address_to_text(c.address), "code": c.code.hex(),
                 "balance": str(c.balance), "storage": {k.hex(): v.hex() for k, v in c.storage}}
                for c in self.contracts
            ],
            "consensus": self.consensus.model_dump(),
        }


def _describe(exc: ValidationError, source: str) -> str:
    lines = []
    for err in exc.errors():
        loc = ".".join(str(p) for p in err["loc"]) or "(top level)"
        msg = err["msg"]
        if err["type"] == "extra_forbidden":
            msg = "unknown key"
        lines.append(f"{source}: {loc}: {msg}")
    return "; ".join(lines)
