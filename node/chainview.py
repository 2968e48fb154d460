"""A read-only view of the committed chain, for the RPC methods, the index, the explorer
and (through RPC) light nodes: blocks, transactions, accounts, contract storage,
read-only contract calls at the latest or a recent height, proofs, and the ABIs of
the contracts it knows.

Nothing here writes. Values come out as chain types (bytes, ints); turning them into
JSON is the RPC views' business, except for contract values, which only the ABI can
type: :func:`abi_to_json` / :func:`abi_from_json` do that with the rules of DESIGN.md
(amounts as decimal strings, addresses as ``agora1...``, bytes as hex).

The ABIs known are those of the genesis contracts whose code is exactly the code the
node's own commerce contracts compile to; a contract the node cannot vouch for is
shown raw.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from chain.address import address_from_text, address_to_text
from chain.block import Block, CommitCertificate, Event, Header, Receipt
from chain.errors import InvalidAddress
from chain.genesis import Genesis
from chain.merkle import InclusionProof, MerkleTree
from chain.validators import SetRecord, ValidatorSet
from storage.blockstore import HistoryEntry, TxRecord
from storage.errors import VersionNotAvailable
from storage.proof import StateProof
from vm.compiler.abi import AbiError, decode_event, decode_value, encode_value
from vm.executor import Executor
from vm.interpreter import BlockEnv, Machine
from vm.world import WorldState

#: Gas a read-only call may burn. It costs the node CPU, not anyone's coin, and it
#: runs on the node's event loop: a million gas is ~0.2 s on a slow core (50 million
#: was 9 s, a stall any stranger could cause). The commerce views need under 100,000.
CALL_GAS_LIMIT = 1_000_000


class ViewError(Exception):
    """A query that cannot be answered as asked (says why)."""


class NotFound(ViewError):
    """What was asked for does not exist."""


class NotKept(ViewError):
    """What was asked for is older than this node keeps."""


@dataclass(frozen=True)
class KnownContract:
    name: str
    address: bytes
    abi: dict[str, Any]

    def method(self, name: str) -> dict[str, Any] | None:
        for m in self.abi["methods"]:
            if m["name"] == name and name != "__init__":
                return m
        return None

    def event(self, name: str) -> dict[str, Any] | None:
        for e in self.abi["events"]:
            if e["name"] == name:
                return e
        return None


def known_contracts(genesis: Genesis) -> dict[bytes, KnownContract]:
    """The genesis contracts whose code is our compiled system code (commerce and
    governance), by address."""
    from vm.contracts import ADDRESSES, GOVERNANCE_ADDRESSES, compiled

    out: dict[bytes, KnownContract] = {}
    codes = {c.address: c.code for c in genesis.contracts}
    for name, address in {**ADDRESSES, **GOVERNANCE_ADDRESSES}.items():
        build = compiled(name)
        if codes.get(address) == build.code:
            out[address] = KnownContract(name, address, build.abi)
    return out


# ---------------------------------------------------------------- ABI values <-> JSON


def abi_to_json(type_name: str, value: object,
                records: Mapping[str, list[dict]] | None = None) -> Any:
    """A decoded ABI value in the API's JSON conventions (a record, by its fields' types
    in ``records``)."""
    if records is not None and type_name in records and isinstance(value, dict):
        types = {f["name"]: f["type"] for f in records[type_name]}
        return {k: abi_to_json(types[k], v) for k, v in value.items()}
    if type_name in ("uint", "int"):
        return str(value)
    if type_name == "Address":
        assert isinstance(value, bytes)
        return address_to_text(value) if len(value) == 20 else value.hex()
    if type_name == "bytes":
        assert isinstance(value, bytes)
        return value.hex()
    return value


def abi_from_json(type_name: str, value: Any, where: str) -> bytes:
    """A JSON argument encoded for ``type_name``; ViewError names ``where`` if it does
    not fit."""
    try:
        if type_name in ("uint", "int"):
            if isinstance(value, str) and value.lstrip("-").isdigit() and len(value) <= 80:
                value = int(value)
            if type(value) is not int:
                raise AbiError(f"a {type_name} is an integer or a decimal string")
        elif type_name == "Address":
            if not isinstance(value, str):
                raise AbiError("an address is agora1... text or 20 bytes of hex")
            value = parse_address(value)
        elif type_name == "bytes":
            if not isinstance(value, str):
                raise AbiError("bytes are hex text")
            value = parse_hex(value, "bytes")
        return encode_value(type_name, value)
    except (AbiError, ValueError) as exc:
        raise ViewError(f"{where}: {exc}") from None


def parse_hex(text: str, what: str = "value") -> bytes:
    """Hex with or without ``0x`` (ValueError naming ``what`` if it is not)."""
    body = text[2:] if text[:2] in ("0x", "0X") else text
    try:
        return bytes.fromhex(body)
    except ValueError:
        raise ValueError(f"{what} must be hex") from None


def parse_address(text: str) -> bytes:
    """An address given as ``agora1...`` text or as 20 bytes of hex (ValueError if not).
    The one parser of addresses that clients type."""
    if text[:6].lower() == "agora1":  # BIP-173 allows the all-uppercase form
        try:
            return address_from_text(text)
        except InvalidAddress as exc:
            raise ValueError(str(exc)) from None
    try:
        raw = parse_hex(text, "address")
    except ValueError:
        raw = b""
    if len(raw) != 20:
        raise ValueError("an address is agora1... text or 20 bytes of hex")
    return raw


# ---------------------------------------------------------------- the view


#: Blocks (and trees, and rendered views of them) kept decoded.
_CACHED_BLOCKS = 8


def _remember(cache: OrderedDict, key: Any, value: Any, size: int) -> None:
    cache[key] = value
    while len(cache) > size:
        cache.popitem(last=False)


@dataclass(frozen=True)
class CallOutcome:
    status: int
    data: bytes
    reason: str
    gas_used: int
    events: list[Event]
    height: int


class ChainView:
    """Reads over one node's executor (its block store and state tree)."""

    def __init__(self, executor: Executor) -> None:
        self._ex = executor
        self.genesis = executor.genesis
        #: computed once: it hashes every genesis contract's code
        self.genesis_hash = executor.genesis_hash
        self._latest: tuple[int, Header | None] = (-1, None)
        # Committed blocks never change: the last few decoded, their Merkle trees and
        # what the RPC views rendered of them are kept, so asking again is cheap.
        self._blocks: OrderedDict[int, Block] = OrderedDict()
        self._trees: OrderedDict[tuple[str, int], MerkleTree] = OrderedDict()
        self._rendered: OrderedDict[tuple[str, bytes], Any] = OrderedDict()
        self.contracts = known_contracts(executor.genesis)
        self._by_name = {c.name: c for c in self.contracts.values()}

    # ------------------------------------------------------------ blocks

    @property
    def height(self) -> int:
        return self._ex.height

    @property
    def max_tx_bytes(self) -> int:
        return self._ex.params.max_tx_bytes

    def state_root(self, height: int | None = None) -> bytes:
        try:
            return self._ex.tree.root_hash(height)
        except VersionNotAvailable as exc:
            raise NotKept(str(exc)) from None

    def _height(self, height: int | None) -> int:
        h = self.height if height is None else height
        if not 0 <= h <= self.height:
            raise NotFound(f"height {h} is beyond the chain, which is at {self.height}")
        return h

    def block(self, height: int | None = None) -> Block:
        h = self._height(height)
        found = self._blocks.get(h)
        if found is not None:
            self._blocks.move_to_end(h)
            return found
        found = self._ex.blocks.block(h) if h else None
        if found is None:
            raise NotFound(f"no block at height {h} (the chain starts at 1)")
        _remember(self._blocks, h, found, _CACHED_BLOCKS)
        return found

    def block_by_hash(self, block_hash: bytes) -> Block:
        height = self._ex.blocks.height_of(block_hash)
        if height is None:
            raise NotFound(f"no block with hash {block_hash.hex()}")
        return self.block(height)

    def rendered(self, kind: str, key: bytes, render: Callable[[], Any]) -> Any:
        """``render()``, kept for the next time ``(kind, key)`` names the same immutable
        thing (a committed block's view)."""
        found = self._rendered.get((kind, key))
        if found is None:
            found = render()
            _remember(self._rendered, (kind, key), found, _CACHED_BLOCKS)
        else:
            self._rendered.move_to_end((kind, key))
        return found

    def _tree(self, kind: str, height: int, leaves: Callable[[], list[bytes]]) -> MerkleTree:
        tree = self._trees.get((kind, height))
        if tree is None:
            tree = MerkleTree(leaves())
            _remember(self._trees, (kind, height), tree, _CACHED_BLOCKS)
        return tree

    def header(self, height: int | None = None) -> Header:
        h = self._height(height)
        found = self._ex.blocks.header(h) if h else None
        if found is None:
            raise NotFound(f"no header at height {h} (the chain starts at 1)")
        return found

    def commit(self, height: int | None = None) -> CommitCertificate:
        h = self._height(height)
        found = self._ex.blocks.commit(h) if h else None
        if found is None:
            raise NotFound(f"no commit at height {h} (the chain starts at 1)")
        return found

    def latest_header(self) -> Header | None:
        """The last committed header (None: only genesis), read once per height."""
        h = self.height
        if self._latest[0] != h:
            self._latest = (h, self._ex.blocks.header(h) if h else None)
        return self._latest[1]

    def latest_time_ms(self) -> int:
        header = self.latest_header()
        return header.time_ms if header is not None else self.genesis.time_ms

    def latest_hash(self) -> bytes:
        header = self.latest_header()
        return header.hash if header is not None else self.genesis_hash

    def receipts(self, height: int) -> list[Receipt]:
        found = self._ex.blocks.receipts(self._height(height)) if height else None
        if found is None:
            raise NotFound(f"no block at height {height}")
        return found

    def validators(self, height: int | None = None) -> ValidatorSet:
        """The validator set of ``height`` (default: the latest block's)."""
        return self.validator_record(height).validators

    def validator_record(self, height: int | None = None) -> SetRecord:
        """The validator set of ``height`` with names and node addresses; known up to
        two heights past the chain (block h decides the set of h + 2)."""
        h = self.height if height is None else height
        if not 0 <= h <= self.height + 2:
            raise NotFound(f"the validator set of height {h} is not known: the chain is at "
                           f"{self.height}, and its sets are known up to {self.height + 2}")
        return self._ex.validator_record(max(h, 1))

    def validator_records(self) -> list[SetRecord]:
        """Every validator set of the chain, oldest first."""
        return self._ex.validator_records()

    # ------------------------------------------------------------ transactions

    def tx(self, tx_hash: bytes) -> TxRecord:
        found = self._ex.blocks.tx(tx_hash)
        if found is None:
            raise NotFound(f"no committed transaction {tx_hash.hex()}")
        return found

    def tx_proof(self, record: TxRecord) -> tuple[Header, InclusionProof]:
        block = self.block(record.height)
        tree = self._tree("tx", record.height, lambda: [tx.encode() for tx in block.txs])
        return block.header, tree.proof(record.index)

    def receipt_proof(self, record: TxRecord) -> InclusionProof:
        tree = self._tree("receipt", record.height,
                          lambda: [r.encode() for r in self.receipts(record.height)])
        return tree.proof(record.index)

    def history(self, address: bytes, limit: int,
                before: tuple[int, int] | None) -> list[HistoryEntry]:
        return self._ex.blocks.history(address, limit=limit, before=before)

    # ------------------------------------------------------------ state

    def _world(self, height: int | None) -> tuple[WorldState, int]:
        h = self._height(height)
        try:
            return self._ex.world_at(h), h
        except VersionNotAvailable:
            raise NotKept(f"the state of height {h} is no longer kept (this node keeps "
                          f"heights {self._ex.tree.oldest_version}..{self.height})") from None

    def account(self, address: bytes, height: int | None = None) -> tuple[int, int, int]:
        """(nonce, balance, height read)."""
        world, h = self._world(height)
        nonce, balance = world.account(address)
        return nonce, balance, h

    def state_value(self, key: bytes, height: int | None = None) -> bytes | None:
        world, _ = self._world(height)
        return world.get(key)

    def prove(self, key: bytes, height: int | None = None) -> tuple[bytes | None, StateProof,
                                                                    int]:
        h = self._height(height)
        try:
            value, proof = self._ex.tree.prove(key, h)
        except VersionNotAvailable as exc:
            raise NotKept(str(exc)) from None
        return value, proof, h

    # ------------------------------------------------------------ contracts

    def contract(self, ref: str) -> KnownContract:
        """A known contract by name ("escrow") or address."""
        found = self._by_name.get(ref)
        if found is not None:
            return found
        try:
            address = parse_address(ref)
        except ValueError:
            raise NotFound(f"no known contract {ref!r} (known: "
                           f"{', '.join(sorted(self._by_name))})") from None
        known = self.contracts.get(address)
        if known is None:
            raise NotFound(f"{ref} is not a contract this node knows the ABI of")
        return known

    def call(self, contract: bytes, method: str, args: list[bytes], *,
             sender: bytes = bytes(20), height: int | None = None,
             gas: int = CALL_GAS_LIMIT, value: int = 0,
             time_ms: int | None = None) -> CallOutcome:
        """Run ``method`` against the state of ``height`` and throw the changes away
        (``value``: coin the sender pays in; ``time_ms``: the block time the call sees,
        default that of ``height``'s block)."""
        world, h = self._world(height)
        if time_ms is None:
            header = self._ex.blocks.header(h) if h else None
            time_ms = header.time_ms if header is not None else self.genesis.time_ms
        gas = max(0, min(gas, CALL_GAS_LIMIT))
        machine = Machine(world, BlockEnv(h, time_ms), sender)
        out = machine.call(sender, contract, method.encode(), args, value, gas)
        return CallOutcome(out.status, out.data, out.reason, gas - out.gas_left,
                           list(world.events), h)

    def view(self, name: str, method: str, *args: bytes, height: int | None = None) -> Any:
        """A known contract's view, decoded (None when it reverts: "no such ...")."""
        known = self._by_name[name]
        out = self.call(known.address, method, list(args), height=height)
        if out.status != 0:
            return None
        spec = known.method(method)
        assert spec is not None
        if spec["output"] is None:
            return None
        return decode_value(spec["output"], out.data, known.abi["records"])

    def decode_result(self, known: KnownContract, method: str, data: bytes) -> Any:
        spec = known.method(method)
        if spec is None or spec["output"] is None:
            return None
        try:
            return abi_to_json(spec["output"],
                               decode_value(spec["output"], data, known.abi["records"]),
                               known.abi["records"])
        except AbiError:
            return None

    def decode_event(self, event: Event) -> tuple[str | None, dict[str, Any] | None]:
        """(contract name, fields as JSON) of an event, or (None, None) if unknown."""
        known = self.contracts.get(event.contract)
        if known is None:
            return None, None
        spec = known.event(event.name)
        if spec is None:
            return known.name, None
        try:
            fields = decode_event(spec["fields"], event.data)
        except AbiError:
            return known.name, None
        types = {f["name"]: f["type"] for f in spec["fields"]}
        return known.name, {k: abi_to_json(types[k], v) for k, v in fields.items()}

    def encode_args(self, known: KnownContract, method: str,
                    args: list[Any] | Mapping[str, Any]) -> list[bytes]:
        spec = known.method(method)
        if spec is None:
            raise NotFound(f"the {known.name} contract has no method {method!r}")
        inputs = spec["inputs"]
        if isinstance(args, Mapping):
            missing = [i["name"] for i in inputs if i["name"] not in args]
            extra = sorted(set(args) - {i["name"] for i in inputs})
            if missing or extra:
                raise ViewError(f"{known.name}.{method} takes "
                                f"({', '.join(i['name'] for i in inputs)})"
                                + (f"; missing {', '.join(missing)}" if missing else "")
                                + (f"; unknown {', '.join(extra)}" if extra else ""))
            values = [args[i["name"]] for i in inputs]
        else:
            if len(args) != len(inputs):
                raise ViewError(f"{known.name}.{method} takes {len(inputs)} argument(s) "
                                f"({', '.join(i['name'] for i in inputs)}), got {len(args)}")
            values = list(args)
        return [abi_from_json(i["type"], v, f"args.{i['name']}")
                for i, v in zip(inputs, values, strict=True)]
