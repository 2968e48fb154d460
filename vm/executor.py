"""The executor: the state transition every validator runs, behind a small ABCI-like
interface for consensus.

Theory of operation
-------------------
State version h is the state after block h (version 0: genesis). Consensus drives the
executor with three calls:

* :meth:`Executor.check_tx` — may this transaction enter a mempool? Stateless checks
  (signature verified once and remembered by hash), then nonce and balance against the
  committed state. The node's mempool keeps nonces and balances itself and calls the
  two halves it needs, :meth:`Executor.check_stateless` and
  :meth:`Executor.check_recipient`.
* :meth:`Executor.execute_block` — run a proposed block on a scratch
  :class:`~vm.world.WorldState` over the committed state and return the state root and
  receipts. Nothing is written: a block that never commits is simply forgotten.
* :meth:`Executor.commit` — write the executed block, its certificate, receipts,
  indexes and the new state in one atomic batch.

Applying a transaction (:meth:`Executor.apply_tx`): it must be for this chain, bid at
least the minimum gas price, carry a gas limit covering its intrinsic gas, use the
sender's next nonce, and the sender must hold ``gas_limit * gas_price + value``.
Otherwise the transaction is *invalid* and so is a block containing it
(:class:`InvalidTx`). A valid transaction always takes effect on the nonce and the fee,
whatever its action does: the sender pays ``gas_used * gas_price``. Native transfers
take a fast path outside the VM. Fees are credited to the block's proposer after the
last transaction, so every transaction of a block sees the same proposer balance rules.

A native transfer of coin to an address that holds a contract is refused (an ``ERROR``
receipt, the fee paid, the coin not moved): a contract takes coin only through a call
of one of its payable methods, where it can account for it.

Gas (:mod:`vm.gas`): :data:`TX_GAS` per transaction plus :data:`TX_BYTE_GAS` per
encoded byte, plus :data:`DEPLOY_BYTE_GAS` per byte of deployed code; a call's
instructions use the rest of the gas limit.
"""

from __future__ import annotations

import functools
import hashlib
from collections import OrderedDict
from dataclasses import dataclass, field

import msgpack

from chain.block import (
    Block,
    CommitCertificate,
    Event,
    Header,
    Receipt,
    ReceiptStatus,
    receipts_root,
)
from chain.block import (
    InvalidBlock as ChainInvalidBlock,
)
from chain.codec import packb_plain
from chain.errors import DecodeError, InvalidGenesis, InvalidTransaction
from chain.evidence import DoubleSign, InvalidEvidence
from chain.genesis import ConsensusParams, Genesis
from chain.hashing import ZERO_HASH, sha256
from chain.keys import ADDRESS_SIZE
from chain.merkle import merkle_root
from chain.system import EVIDENCE_ADDRESS, GOVERNANCE_ADDRESS
from chain.tx import Call, Deploy, Transaction, Transfer
from chain.validators import (
    InvalidValidatorSet,
    SetRecord,
    ValidatorSet,
    apply_updates,
    check_step,
)
from storage.blockstore import BlockStore
from storage.errors import VersionNotAvailable
from storage.kv import KVStore
from storage.state import StateTree, StateUpdate

from .errors import InvalidBlock, InvalidCode, InvalidTx, NotExecuted, WrongStore
from .gas import encode_args, intrinsic_gas  # noqa: F401 - encode_args: callers import it here
from .interpreter import BlockEnv, Machine, Status, fit_reason
from .program import Program, load_program
from .world import ACCOUNT, RECORD, STORAGE, WorldState, decode_record

#: Gas to check and record a piece of evidence (two signatures), beside the governance
#: call it makes.
EVIDENCE_GAS = 40_000
#: Evidence is a call of this method of EVIDENCE_ADDRESS, its one argument the
#: encoded chain.evidence.DoubleSign.
EVIDENCE_METHOD = "submit"
#: Where a recorded piece of evidence lives in the state: under EVIDENCE_ADDRESS's
#: storage, this prefix + DoubleSign.key.
EVIDENCE_PREFIX = STORAGE + EVIDENCE_ADDRESS + b"e"

MAX_ARGS = 64
_PROGRAM_CACHE_BYTES = 4 * 1024 * 1024  # of code; decoded, ~130 times as much memory
_GENESIS_KEY = b"G"  # beside the state (b"s...") and block (b"b...") namespaces
_VERIFIED_CACHE = 200_000
TRANSFER_TO_CONTRACT = ("coin cannot be sent to a contract by a transfer: call one of its "
                        "payable methods")
#: The chain parameters governance may change, with the values it may give them.
CHANGEABLE_PARAMS = {"min_gas_price": (0, 1 << 63), "max_block_gas": (1_000_000, 1 << 63)}


def contract_address(sender: bytes, nonce: int) -> bytes:
    """Where a deploy by ``sender`` with ``nonce`` puts its contract."""
    return hashlib.sha256(b"agora/contract/v1" + sender + nonce.to_bytes(8, "big")).digest()[:20]


def decode_args(data: bytes) -> list[bytes]:
    """Arguments of a call; raises ValueError unless ``data`` is exactly a msgpack array
    of at most MAX_ARGS byte strings (empty ``data`` is no arguments)."""
    if not data:
        return []
    try:
        args = msgpack.unpackb(data, raw=False, strict_map_key=True, use_list=True)
    except (ValueError, msgpack.UnpackException):
        # A fixed text: a receipt's reason is consensus data, and msgpack's own
        # messages may differ between versions.
        raise ValueError("undecodable arguments") from None
    if type(args) is not list or len(args) > MAX_ARGS or any(type(a) is not bytes for a in args):
        raise ValueError(f"arguments must be an array of at most {MAX_ARGS} byte strings")
    if packb_plain(args) != data:
        raise ValueError("arguments are not canonically encoded")
    return args


@dataclass(frozen=True)
class BlockContext:
    """The header fields the state transition depends on."""

    height: int
    time_ms: int
    proposer: bytes


@dataclass
class Execution:
    """A block run against the committed state: what commit() will write."""

    height: int
    state_root: bytes
    receipts: list[Receipt]
    update: StateUpdate
    receipts_root: bytes
    gas_used: int = 0
    fees: int = 0
    block_hash: bytes | None = field(default=None)
    #: The validator set from height + 2 on, if governance changed it in this block.
    next_set: SetRecord | None = None
    #: Chain parameter changes passed in this block: (from height, name, value).
    param_changes: tuple[tuple[int, str, int], ...] = ()


def _event_fields(data: bytes, count: int) -> list[bytes]:
    """The fields of a system contract's event (a packed array of byte strings)."""
    try:
        fields = msgpack.unpackb(data, raw=False)
    except (ValueError, msgpack.UnpackException):
        fields = None
    if type(fields) is not list or len(fields) != count or \
            any(type(f) is not bytes for f in fields):
        raise InvalidBlock("the governance contract emitted a malformed event")
    return fields


class _TreeAt:
    """The committed state tree as of one kept version (what WorldState reads)."""

    def __init__(self, tree: StateTree, version: int) -> None:
        self._tree = tree
        self._version = version

    def get(self, key: bytes) -> bytes | None:
        return self._tree.get_at(key, self._version)



@functools.lru_cache(maxsize=256)
def _transfer_receipt(gas_used: int) -> Receipt:
    """A successful transfer's receipt: the same record for the same gas (receipts are
    immutable), so each block's receipts root finds its encoding cached rather than
    packing one per transfer."""
    return Receipt(ReceiptStatus.OK, gas_used, b"", "", ())

class Executor:
    """The state transition over one store: state tree and block store side by side."""

    def __init__(
        self,
        kv: KVStore,
        genesis: Genesis,
        *,
        history: int = 100,
        cache_nodes: int = 400_000,
    ) -> None:
        self.genesis = genesis
        self.chain_id = genesis.chain_id
        self.params = genesis.consensus
        self.kv = kv
        self.tree = StateTree(kv, prefix=b"s", history=history, cache_nodes=cache_nodes)
        self.blocks = BlockStore(kv, prefix=b"b")
        self._programs: OrderedDict[bytes, Program] = OrderedDict()
        self._program_bytes = 0
        self._genesis_hash = genesis.hash  # computed once: it hashes all genesis code
        self._verified: OrderedDict[bytes, None] = OrderedDict()
        self._executed: dict[bytes, Execution] = {}
        #: Addresses whose account (nonce, balance) the last committed block changed:
        #: the mempool re-checks only those senders.
        self.changed_accounts: frozenset[bytes] = frozenset()
        if self.tree.version < 0:
            self._write_genesis()
        stored = kv.get(_GENESIS_KEY)
        if stored != self._genesis_hash:
            raise WrongStore(
                f"this database was made for genesis {stored.hex() if stored else '(none)'}, "
                f"not {self._genesis_hash.hex()}: use the matching genesis file or a new "
                "data dir"
            )
        if self.tree.version != self.blocks.height:
            raise WrongStore(
                f"the database is inconsistent: state at height {self.tree.version}, blocks "
                f"at {self.blocks.height}"
            )
        #: The validator sets, oldest first, each from the height it is in force.
        self._sets: list[SetRecord] = [
            SetRecord.from_rows(h, rows) for h, rows in self.blocks.validator_sets()]
        if not self._sets:  # a store made before sets were stored: genesis' set
            self._sets = [self._genesis_set()]
        self._param_changes = self.blocks.param_changes()
        self.params = self.params_at(self.height + 1)

    # ------------------------------------------------------------------ state

    @property
    def genesis_hash(self) -> bytes:
        """The genesis hash, computed once (it hashes every genesis contract's code)."""
        return self._genesis_hash

    @property
    def height(self) -> int:
        """The last committed height (0: only genesis)."""
        return self.tree.version

    def state_root(self) -> bytes:
        return self.tree.root_hash()

    def account(self, address: bytes) -> tuple[int, int]:
        """(nonce, balance) of ``address`` in the committed state."""
        return self._world().account(address)

    def _world(self) -> WorldState:
        return WorldState(self.tree, self._program)

    def world_at(self, version: int) -> WorldState:
        """A scratch world over the committed state as of ``version`` (the latest or a
        kept older one; VersionNotAvailable otherwise), for read-only queries."""
        if version == self.height:
            return self._world()
        tree = self.tree
        if not tree.oldest_version <= version < self.height:
            raise VersionNotAvailable(f"state version {version} is not readable (kept: "
                                      f"{tree.oldest_version}..{self.height})")
        return WorldState(_TreeAt(tree, version), self._program)  # type: ignore[arg-type]

    def _program(self, address: bytes, code: bytes) -> Program | None:
        """Decoded code, cached by address and checked against the code it came from
        (a dropped block may have deployed other code at the same address)."""
        cached = self._programs.get(address)
        if cached is not None and cached.code == code:
            self._programs.move_to_end(address)
            return cached
        try:
            program = load_program(code)
        except InvalidCode:
            return None  # stored code is validated at deploy; never happens
        if cached is not None:
            self._program_bytes -= len(cached.code)
        self._programs[address] = program
        self._program_bytes += len(code)
        # Bounded by code bytes, not entries: a decoded program takes ~130 times its
        # code in memory.
        while self._program_bytes > _PROGRAM_CACHE_BYTES and len(self._programs) > 1:
            _, old = self._programs.popitem(last=False)
            self._program_bytes -= len(old.code)
        return program

    def _genesis_set(self) -> SetRecord:
        g = self.genesis
        names = {v.address: n for v, n in zip(g.validators, g.validator_names, strict=True)
                 if n}
        return SetRecord(1, g.validators, names)

    # ------------------------------------------------------------------ validators

    def validator_record(self, height: int) -> SetRecord:
        """The validator set in force at ``height`` (known up to the committed height
        + 2: block h decides the set of h + 2), with names and node addresses."""
        if height > self.height + 2:
            raise VersionNotAvailable(f"the validator set of height {height} is not known "
                                      f"yet (the chain is at {self.height})")
        sets = self._sets
        for record in reversed(sets):
            if record.height <= height:
                return record
        return sets[0]

    def validator_set(self, height: int) -> ValidatorSet:
        return self.validator_record(height).validators

    def latest_validator_record(self) -> SetRecord:
        """The newest validator set the chain decided (in force now or within two
        heights)."""
        return self._sets[-1]

    def validator_records(self) -> list[SetRecord]:
        """Every validator set of the chain, oldest first."""
        return list(self._sets)

    def params_at(self, height: int) -> ConsensusParams:
        """The chain parameters of block ``height``: genesis', with every change
        governance scheduled for ``height`` or before."""
        update = {name: value for h, name, value in self._param_changes if h <= height}
        if not update:
            return self.genesis.consensus
        return self.genesis.consensus.model_copy(update=update)

    def param_changes(self) -> list[tuple[int, str, int]]:
        """Every parameter change governance passed: (from height, name, value)."""
        return list(self._param_changes)

    def _governance(self, receipts: list[Receipt], height: int
                    ) -> tuple[SetRecord | None, tuple[tuple[int, str, int], ...]]:
        """What the governance contract passed in block ``height``: the set from
        height + 2 on, and parameter changes. The contract keeps to the rules; they are
        checked again here, so a contract bug cannot break what consensus relies on."""
        updates: list[tuple[bytes, int, str, str]] = []
        params: list[tuple[int, str, int]] = []
        for receipt in receipts:
            if receipt.status != ReceiptStatus.OK:
                continue
            for event in receipt.events:
                if event.contract != GOVERNANCE_ADDRESS:
                    continue
                if event.name == "ValidatorUpdate":
                    key, power_b, name_b, p2p_b = _event_fields(event.data, 4)
                    updates.append((key, int.from_bytes(power_b, "big"),
                                    name_b.decode("utf-8", "replace"),
                                    p2p_b.decode("utf-8", "replace")))
                elif event.name == "ParamChange":
                    param_b, value_b, at_b = _event_fields(event.data, 3)
                    param = param_b.decode("utf-8", "replace")
                    value, at = int.from_bytes(value_b, "big"), int.from_bytes(at_b, "big")
                    bounds = CHANGEABLE_PARAMS.get(param)
                    if bounds is None or not bounds[0] <= value < bounds[1] or \
                            not height + 2 <= at < 1 << 63:
                        raise InvalidBlock(f"governance passed a parameter change the chain "
                                           f"refuses: {param} = {value} from height {at}")
                    params.append((at, param, value))
        if not updates:
            return None, tuple(params)
        current = self.validator_record(height + 1)
        try:
            new = apply_updates(current.validators, [(k, p) for k, p, _, _ in updates])
            check_step(current.validators, new)
        except InvalidValidatorSet as exc:
            raise InvalidBlock(f"governance passed a validator set the chain refuses: "
                               f"{exc}") from None
        names, addresses = dict(current.names), dict(current.p2p)
        for key, _, name, p2p in updates:
            validator = new.get(sha256(key)[:ADDRESS_SIZE])
            if validator is None:
                continue
            if name:
                names[validator.address] = name
            if p2p:
                addresses[validator.address] = p2p
        keep = {v.address for v in new}
        return (SetRecord(height + 2, new, {a: n for a, n in names.items() if a in keep},
                          {a: t for a, t in addresses.items() if a in keep}), tuple(params))

    def _check_governance(self, world: WorldState) -> None:
        """A genesis with the governance contract must name the genesis validators,
        with their powers, as its members: it counts their votes, and the executor
        applies what they pass to the genesis set."""
        if world.code(GOVERNANCE_ADDRESS) is None:
            return
        machine = Machine(world, BlockEnv(0, self.genesis.time_ms), GOVERNANCE_ADDRESS)

        def ask(method: str, *args: bytes) -> int:
            out = machine.call(GOVERNANCE_ADDRESS, GOVERNANCE_ADDRESS, method.encode(),
                               list(args), 0, 10_000_000)
            if out.status != Status.OK:
                raise InvalidGenesis(f"the governance contract cannot answer {method}: "
                                     f"{out.reason}")
            return int.from_bytes(out.data, "big")

        validators = self.genesis.validators
        if ask("member_count") != len(validators) or \
                ask("total_power") != validators.total_power or \
                any(ask("member_power", v.address) != v.power for v in validators):
            raise InvalidGenesis("the governance contract's members are not the genesis "
                                 "validators with their powers")
        world.forget_journal()

    def _write_genesis(self) -> None:
        world = self._world()
        for address, amount in self.genesis.balances:
            world.add_balance(address, amount)
        for contract in self.genesis.contracts:
            try:
                load_program(contract.code)
            except InvalidCode as exc:
                raise InvalidGenesis(f"genesis contract {contract.address.hex()}: {exc}") from None
            world.set_code(contract.address, contract.code)
            if contract.balance:
                world.add_balance(contract.address, contract.balance)
            for key, value in contract.storage:
                if key[:1] != RECORD:
                    world.sstore(contract.address, key, value)
                    continue
                problem = decode_record(value)[0]  # a record: all its fields in one key
                if problem:
                    raise InvalidGenesis(f"genesis contract {contract.address.hex()}: "
                                         f"storage key {key.hex()}: {problem}")
                world.put(STORAGE + contract.address + key, value)
        self._check_governance(world)
        update = self.tree.prepare(world.changes(), 0)
        with self.kv.batch(sync=True) as batch:
            self.tree.write(update, batch)
            batch.put(_GENESIS_KEY, self._genesis_hash)
            self.blocks.put_validator_set(batch, 1, self._genesis_set().rows())
        self.tree.committed(update)

    # ------------------------------------------------------------------ mempool

    def verify_signature(self, tx: Transaction) -> None:
        """Stateless checks, with the signature verified once per transaction hash."""
        h = tx.hash
        if h in self._verified:
            return
        try:
            tx.validate(self.chain_id, self.params.max_tx_bytes)
        except InvalidTransaction as exc:
            raise InvalidTx(str(exc)) from None
        self._verified[h] = None
        if len(self._verified) > _VERIFIED_CACHE:
            self._verified.popitem(last=False)

    def check_tx(self, tx: Transaction) -> None:
        """May ``tx`` enter a mempool? Raises InvalidTx with the reason. A nonce ahead
        of the account's is accepted (it may follow queued transactions)."""
        self.check_stateless(tx)
        nonce, balance = self._world().account(tx.sender_address)
        if tx.nonce < nonce:
            raise InvalidTx(f"nonce {tx.nonce} already used (account is at {nonce})")
        if balance < tx.max_fee + tx.value:
            raise InvalidTx(f"balance {balance} cannot pay up to {tx.max_fee + tx.value}")
        self.check_recipient(tx)

    def check_stateless(self, tx: Transaction) -> None:
        """The checks no state changes: chain, size, signature (once per hash), gas
        fields. Raises InvalidTx."""
        self.verify_signature(tx)
        self._check_fields(tx)

    def evidence_of(self, action: Call) -> DoubleSign:
        """The evidence an evidence call carries, checked against the validator set of
        its height; InvalidTx if it proves nothing (forged, malformed, no conflict)."""
        if action.method != EVIDENCE_METHOD or action.value:
            raise InvalidTx(f"evidence is sent as {EVIDENCE_METHOD}(evidence), with no value")
        try:
            args = decode_args(action.args)
            if len(args) != 1:
                raise ValueError("one argument: the encoded evidence")
            evidence = DoubleSign.decode(args[0])
        except (ValueError, DecodeError) as exc:
            raise InvalidTx(f"malformed evidence: {exc}") from None
        if evidence.height > self.height + 1:
            raise InvalidTx(f"evidence from height {evidence.height}, which the chain has "
                            "not reached")
        try:
            evidence.verify(self.chain_id, self.validator_set(evidence.height))
        except InvalidEvidence as exc:
            raise InvalidTx(f"invalid evidence: {exc}") from None
        return evidence

    def evidence_recorded(self, evidence: DoubleSign) -> bool:
        return self._world().get(EVIDENCE_PREFIX + evidence.key) is not None

    def check_recipient(self, tx: Transaction) -> None:
        """Can what ``tx`` acts on take it? A transfer of value to a contract cannot
        (contracts take value through calls); evidence must prove a double vote.
        Raises InvalidTx."""
        action = tx.action
        if type(action) is Transfer and action.amount and \
                self._world().code(action.to) is not None:
            raise InvalidTx(TRANSFER_TO_CONTRACT)
        if type(action) is Call and action.contract == EVIDENCE_ADDRESS:
            # Here, after the nonce and balance checks: its two signatures are checked
            # only for a sender that can pay (no throwaway keys making us verify).
            self.evidence_of(action)

    def _check_fields(self, tx: Transaction) -> int:
        if tx.gas_price < self.params.min_gas_price:
            raise InvalidTx(f"gas price {tx.gas_price} is below the minimum "
                            f"{self.params.min_gas_price}")
        need = intrinsic_gas(tx)
        if tx.gas_limit < need:
            raise InvalidTx(f"gas limit {tx.gas_limit} is below the intrinsic gas {need}")
        if tx.gas_limit > self.params.max_block_gas:
            raise InvalidTx(f"gas limit {tx.gas_limit} exceeds the block gas limit")
        return need

    # ------------------------------------------------------------------ blocks

    def apply_tx(self, world: WorldState, tx: Transaction, env: BlockEnv) -> tuple[Receipt, int]:
        """Apply one transaction; returns its receipt and the fee it paid. Raises
        InvalidTx if it cannot be applied at all (the state is then unchanged)."""
        if tx.chain_id != self.chain_id:
            raise InvalidTx(f"transaction is for chain {tx.chain_id!r}")
        need = self._check_fields(tx)
        sender = tx.sender_address
        nonce, balance = world.account(sender)
        if tx.nonce != nonce:
            raise InvalidTx(f"nonce {tx.nonce}, the account's next nonce is {nonce}")
        action = tx.action
        price = tx.gas_price
        if type(action) is Transfer:  # the fast path: no VM, fixed gas
            amount = action.amount
            fee = need * price
            if balance < tx.gas_limit * price + amount:
                raise InvalidTx(f"balance {balance} cannot pay up to "
                                f"{tx.gas_limit * price + amount}")
            if amount and world.code(action.to) is not None:
                # A contract could never account for coin that arrives without a call:
                # it would be lost for good. The fee is paid; the coin stays put.
                world.set_account(sender, nonce + 1, balance - fee)
                return Receipt(ReceiptStatus.ERROR, need, b"", TRANSFER_TO_CONTRACT, ()), fee
            world.set_account(sender, nonce + 1, balance - fee - amount)
            if amount:
                world.add_balance(action.to, amount)
            return _transfer_receipt(need), fee
        max_fee = tx.gas_limit * price
        if balance < max_fee + action.value:
            raise InvalidTx(f"balance {balance} cannot pay up to {max_fee + action.value}")
        evidence = None
        if type(action) is Call and action.contract == EVIDENCE_ADDRESS:
            evidence = self.evidence_of(action)  # forged evidence makes the block invalid
        world.set_account(sender, nonce + 1, balance - max_fee)
        world.forget_journal()
        world.events = []
        gas_box = [tx.gas_limit - need]  # the action's gas; _run_action leaves what is left
        if evidence is not None:
            status, data, reason = self._record_evidence(world, evidence, env, gas_box)
        else:
            status, data, reason = self._run_action(world, action, sender, nonce, env, gas_box)
        gas_used = tx.gas_limit - gas_box[0]
        fee = gas_used * price
        world.add_balance(sender, max_fee - fee)  # the unused gas back
        # A failed call rolled its events back with its writes; the next transaction
        # starts a fresh event list and journal.
        events = tuple(world.events)
        return Receipt(status, gas_used, data, fit_reason(reason), events), fee

    def _record_evidence(self, world: WorldState, evidence: DoubleSign, env: BlockEnv,
                         gas_box: list[int]) -> tuple[int, bytes, str]:
        """Record verified evidence once, and propose the equivocator's removal to the
        governance contract (which declines when it cannot be removed: the evidence
        stays recorded). A second report of the same conflict is reverted."""
        if gas_box[0] < EVIDENCE_GAS:
            gas_box[0] = 0
            return Status.OUT_OF_GAS, b"", "out of gas recording evidence"
        gas_box[0] -= EVIDENCE_GAS
        key = EVIDENCE_PREFIX + evidence.key
        if world.get(key) is not None:
            return Status.REVERTED, b"", "this evidence is already recorded"
        checkpoint = world.checkpoint()
        world.put(key, evidence.encode())
        world.emit(Event(EVIDENCE_ADDRESS, "Equivocation", packb_plain([
            evidence.validator, evidence.height.to_bytes(8, "big").lstrip(b"\0"),
            evidence.view.to_bytes(4, "big").lstrip(b"\0"), bytes([evidence.kind]).lstrip(b"\0"),
            evidence.encode()])))
        machine = Machine(world, env, EVIDENCE_ADDRESS)
        out = machine.call(EVIDENCE_ADDRESS, GOVERNANCE_ADDRESS, b"propose_removal_by_evidence",
                           [evidence.validator], 0, gas_box[0])
        gas_box[0] = out.gas_left
        if out.status == Status.OUT_OF_GAS:
            # Recorded without its removal proposal would be recorded for good: all or
            # nothing, so the sender can send it again with more gas.
            world.revert(checkpoint)
            return Status.OUT_OF_GAS, b"", "out of gas proposing the equivocator's removal"
        return Status.OK, out.data if out.status == Status.OK else b"", ""

    def _run_action(
        self, world: WorldState, action: Call | Deploy, sender: bytes, nonce: int,
        env: BlockEnv, gas_box: list[int],
    ) -> tuple[int, bytes, str]:
        machine = Machine(world, env, sender)
        try:
            args = decode_args(action.args)
        except ValueError as exc:
            gas_box[0] = 0
            return Status.ERROR, b"", str(exc)
        if type(action) is Call:
            out = machine.call(sender, action.contract, action.method.encode(), args,
                               action.value, gas_box[0])
            gas_box[0] = out.gas_left
            return out.status, out.data, out.reason
        assert type(action) is Deploy
        try:
            program = load_program(action.code)
        except InvalidCode as exc:
            gas_box[0] = 0
            return Status.ERROR, b"", str(exc)
        out = machine.deploy(sender, contract_address(sender, nonce), program, args,
                             action.value, gas_box[0])
        gas_box[0] = out.gas_left
        return out.status, out.data, out.reason

    def execute(self, txs: list[Transaction] | tuple[Transaction, ...],
                ctx: BlockContext) -> Execution:
        """Run ``txs`` as block ``ctx.height`` on top of the committed state. Raises
        InvalidBlock naming the first transaction that cannot be applied."""
        if ctx.height != self.height + 1:
            raise InvalidBlock(f"block {ctx.height} does not follow height {self.height}")
        if len(txs) > self.params.max_block_txs:
            raise InvalidBlock(f"{len(txs)} transactions, the limit is "
                               f"{self.params.max_block_txs}")
        total_gas = sum(tx.gas_limit for tx in txs)
        if total_gas > self.params.max_block_gas:
            raise InvalidBlock(f"transactions ask for {total_gas} gas, the block limit is "
                               f"{self.params.max_block_gas}")
        world = self._world()
        env = BlockEnv(ctx.height, ctx.time_ms)
        receipts = []
        fees = 0
        gas_used = 0
        for i, tx in enumerate(txs):
            try:
                self.verify_signature(tx)
                receipt, fee = self.apply_tx(world, tx, env)
            except InvalidTx as exc:
                raise InvalidBlock(f"transaction {i} ({tx.hash.hex()[:16]}): {exc}") from None
            receipts.append(receipt)
            fees += fee
            gas_used += receipt.gas_used
        if fees:
            world.add_balance(ctx.proposer, fees)
        next_set, param_changes = self._governance(receipts, ctx.height)
        update = self.tree.prepare(world.changes(), ctx.height)
        return Execution(ctx.height, update.root_hash, receipts, update,
                         receipts_root(receipts), gas_used, fees, next_set=next_set,
                         param_changes=param_changes)

    def build_block(
        self,
        txs: list[Transaction] | tuple[Transaction, ...],
        *,
        time_ms: int,
        proposer: bytes,
        validators_hash: bytes,
        next_validators_hash: bytes,
        last_commit: CommitCertificate | None,
    ) -> Block:
        """The proposer's block of ``txs`` on top of the committed state, its header
        carrying the roots that executing them gives. Like any other proposal it goes
        through :meth:`execute_block` before :meth:`commit`. Raises InvalidBlock if a
        transaction cannot be applied."""
        height = self.height + 1
        execution = self.execute(txs, BlockContext(height, time_ms, proposer))
        parent = self.blocks.header(height - 1) if height > 1 else None
        header = Header(
            self.chain_id, height, time_ms,
            parent.hash if parent is not None else self._genesis_hash,
            merkle_root([t.encode() for t in txs]), execution.receipts_root,
            execution.state_root, validators_hash, next_validators_hash, proposer, len(txs),
            sha256(last_commit.encode()) if last_commit is not None else ZERO_HASH,
        )
        block = Block(header, tuple(txs), last_commit)
        # Kept as this block's execution: the proposer validates its own block like
        # any other, and a block is executed once per node.
        execution.block_hash = block.hash
        self._executed[block.hash] = execution
        return block

    def execute_block(self, block: Block) -> tuple[bytes, list[Receipt]]:
        """Execute a proposed block on a scratch state: (state root, receipts). The
        result is kept for :meth:`commit`; committed state is not touched."""
        header = block.header
        try:
            block.validate_basic(self.chain_id, self._genesis_hash)
        except ChainInvalidBlock as exc:
            raise InvalidBlock(str(exc)) from None
        size = len(block.encode())
        if size > self.params.max_block_bytes:
            raise InvalidBlock(f"block is {size} bytes, the limit is "
                               f"{self.params.max_block_bytes}")
        if header.height > 1:
            parent = self.blocks.header(header.height - 1)
            if parent is not None and parent.hash != header.prev_hash:
                raise InvalidBlock(f"block {header.height} does not extend the stored block "
                                   f"{header.height - 1}")
        done = self._executed.get(block.hash)
        if done is not None and done.height == header.height:
            # Executed already (built here, or validated before). The same hash means
            # the same transactions: validate_basic checked them against tx_root.
            return done.state_root, done.receipts
        execution = self.execute(block.txs, BlockContext(header.height, header.time_ms,
                                                         header.proposer))
        execution.block_hash = block.hash
        self._executed[block.hash] = execution
        return execution.state_root, execution.receipts

    def forget_executions(self) -> None:
        """Drop the executions kept for commit (the proposer's own included): the next
        execute_block runs its block again, as a validator that did not build it does.
        Benchmarks time that work this way."""
        self._executed.clear()

    def commit(self, block: Block, certificate: CommitCertificate, *,
               sync: bool = True) -> list[Receipt]:
        """Write ``block`` (executed before with :meth:`execute_block`), its certificate,
        receipts, indexes and the new state in one atomic batch; returns the receipts."""
        execution = self._executed.get(block.hash)
        if execution is None or execution.height != self.height + 1:
            raise NotExecuted(f"block {block.height} was not executed on this state")
        header = block.header
        if execution.state_root != header.state_root:
            raise InvalidBlock("the block's state root is not the one its transactions give")
        if execution.receipts_root != header.receipts_root:
            raise InvalidBlock("the block's receipts root is not the one its transactions give")
        with self.kv.batch(sync=sync) as batch:
            self.tree.write(execution.update, batch)
            self.blocks.put_block(batch, block, certificate, execution.receipts)
            # The set and parameters governance changed go in the same atomic batch.
            if execution.next_set is not None:
                self.blocks.put_validator_set(batch, execution.next_set.height,
                                              execution.next_set.rows())
            for at, name, value in execution.param_changes:
                self.blocks.put_param_change(batch, at, name, value)
        self.tree.committed(execution.update)
        if execution.next_set is not None:
            self._sets.append(execution.next_set)
        if execution.param_changes:
            # One value per (height, name), the one passed last winning: what the P
            # records (keyed by height and name, a later write overwriting) say after
            # a restart.
            merged = {(at, name): value for at, name, value in self._param_changes}
            merged.update({(at, name): value for at, name, value in execution.param_changes})
            self._param_changes = sorted((at, name, value)
                                         for (at, name), value in merged.items())
        params = self.params_at(self.height + 1)
        if params != self.params:  # the same object while nothing changes
            self.params = params
        self._executed.clear()  # prepared on the old version: useless now
        self.changed_accounts = frozenset(
            key[1:] for key in execution.update.changes
            if key[:1] == ACCOUNT and len(key) == 1 + ADDRESS_SIZE)
        return execution.receipts

    # ------------------------------------------------------------------ reads

    def call_view(self, sender: bytes, contract: bytes, method: str, args: list[bytes],
                  gas: int = 10_000_000) -> tuple[int, bytes, str]:
        """Run a method against the committed state and throw the changes away
        (queries; `agora contract run`)."""
        world = self._world()
        last = self.blocks.header(self.height) if self.height else None
        time_ms = last.time_ms if last is not None else self.genesis.time_ms
        machine = Machine(world, BlockEnv(self.height, time_ms), sender)
        out = machine.call(sender, contract, method.encode(), args, 0, gas)
        return out.status, out.data, out.reason
