"""Answers checked by Merkle proof: state values against a verified header's
``state_root``, transactions and receipts against its ``tx_root`` and
``receipts_root``, and contract views run *here*, by our own VM, over proven state.

A contract view is run as a full node would run it, except that its reads come from
:class:`ProvenReads`: a key already proven is read from there; a key not yet proven
reads as absent and is noted. After the run every noted key is fetched with its proof
from the primary (in one batch), checked, and the view runs again; when a run reads
nothing new, every value it read was proven, so its result is. A view that needs more
than ``MAX_ROUNDS`` rounds or ``MAX_KEYS`` keys is refused (:class:`CannotProve`)
rather than answered in part. Contract code is state too (``c`` + address) and proven
the same way; code never changes once deployed, so it is kept across heights.

Any answer that does not match its proof is a lie: the primary is caught, dropped, and
the question asked again of the next node (:meth:`LightClient._with_primary`).
"""

from __future__ import annotations

import hashlib
from collections import OrderedDict
from dataclasses import dataclass
from typing import Any

from chain.block import Receipt
from chain.errors import DecodeError
from chain.merkle import InclusionProof
from chain.tx import Transaction
from vm.interpreter import BlockEnv, Machine
from vm.program import Program, load_program
from vm.world import CODE, WorldState, account_key, decode_account

from ..chainview import CALL_GAS_LIMIT, CallOutcome
from ..rpc.client import RPCFailed
from .client import LightClient
from .errors import BadProof, CannotProve, LightError
from .provider import Provider
from .verifier import LightBlock

#: Rounds of run-then-prove one view may take, and keys it may read.
MAX_ROUNDS = 16
MAX_KEYS = 4_096
#: Proven values of the current head kept (by key).
_CACHE_KEYS = 20_000


class ProvenReads:
    """What a :class:`~vm.world.WorldState` reads through: proven values only."""

    def __init__(self, proven: dict[bytes, bytes | None]) -> None:
        self.proven = proven
        self.missing: list[bytes] = []

    def get(self, key: bytes) -> bytes | None:
        if key in self.proven:
            return self.proven[key]
        self.missing.append(key)
        return None


@dataclass(frozen=True)
class ProvenTx:
    tx: Transaction
    receipt: Receipt
    height: int
    index: int
    block: LightBlock
    tx_proof: InclusionProof


class Proven:
    """Proven reads at the light client's verified head (or a verified height)."""

    def __init__(self, client: LightClient) -> None:
        self.client = client
        self._height = -1
        self._values: OrderedDict[bytes, bytes | None] = OrderedDict()
        self._code: dict[bytes, bytes | None] = {}
        self._programs: OrderedDict[bytes, Program] = OrderedDict()
        #: Keys proven and calls run (for tests and metrics).
        self.keys_proven = 0
        self.rounds = 0

    def head(self) -> LightBlock:
        block = self.client.latest
        if block is None:
            raise CannotProve("the light node has not verified any header yet")
        return block

    # ------------------------------------------------------------ state

    async def values(self, keys: list[bytes], block: LightBlock | None = None
                     ) -> dict[bytes, bytes | None]:
        """The values of ``keys`` at ``block`` (default: the head), each proven."""
        block = block or self.head()
        cache = self._cache_for(block)
        out: dict[bytes, bytes | None] = {}
        wanted = []
        for k in dict.fromkeys(keys):
            if k in cache:
                out[k] = cache[k]
            elif k.startswith(CODE) and k in self._code:
                out[k] = self._code[k]
            else:
                wanted.append(k)
        if wanted:
            fetched = await self.client._with_primary(
                lambda p: self._prove(p, wanted, block))
            out.update(fetched)
            if block is self.client.latest:
                for k, v in fetched.items():
                    cache[k] = v
                while len(cache) > _CACHE_KEYS:
                    cache.popitem(last=False)
            for k, v in fetched.items():
                if k.startswith(CODE) and v is not None:
                    self._code[k] = v
        return out

    def _cache_for(self, block: LightBlock) -> OrderedDict[bytes, bytes | None]:
        if block is self.client.latest:
            if self._height != block.height:
                self._height = block.height
                self._values = OrderedDict()
            return self._values
        return OrderedDict()

    async def _prove(self, provider: Provider, keys: list[bytes], block: LightBlock
                     ) -> dict[bytes, bytes | None]:
        try:
            items = await provider.state_proofs(keys, block.height)
        except RPCFailed as exc:
            raise CannotProve(f"{provider.url} cannot prove state of height {block.height}: "
                              f"{exc}") from None
        root = block.header.state_root
        got: dict[bytes, bytes | None] = {}
        for key, value, proof in items:
            if not proof.verify(root, key, value):
                what = "absent" if value is None else "a value"
                raise BadProof(f"{provider.url} answered {what} for state key {key.hex()[:80]} "
                               f"at height {block.height} that its proof does not show under "
                               "the verified state root")
            got[key] = value
        missing = [k for k in keys if k not in got]
        if missing:
            raise BadProof(f"{provider.url} left out the proof of state key "
                           f"{missing[0].hex()[:80]} (asked {len(keys)}, got {len(items)})")
        self.keys_proven += len(keys)
        return {k: got[k] for k in keys}

    async def account(self, address: bytes, block: LightBlock | None = None
                      ) -> tuple[int, int, bool]:
        """(nonce, balance, is a contract), proven."""
        found = await self.values([account_key(address), CODE + address], block)
        nonce, balance = decode_account(found[account_key(address)])
        return nonce, balance, found[CODE + address] is not None

    # ------------------------------------------------------------ contract views

    def _program(self, address: bytes, code: bytes) -> Program | None:
        digest = hashlib.sha256(code).digest()
        found = self._programs.get(digest)
        if found is None:
            try:
                found = load_program(code)
            except Exception:  # noqa: BLE001 - code that does not load cannot be run
                return None
            self._programs[digest] = found
            while len(self._programs) > 32:
                self._programs.popitem(last=False)
        return found

    async def call(self, contract: bytes, method: str, args: list[bytes], *,
                   sender: bytes = bytes(20), value: int = 0, gas: int = CALL_GAS_LIMIT,
                   block: LightBlock | None = None, time_ms: int | None = None) -> CallOutcome:
        """Run ``method`` of ``contract`` read-only over proven state (see the module
        docstring); its outcome, as ``ChainView.call`` gives it on a full node."""
        [out] = await self.calls([(contract, method, args)], sender=sender, value=value,
                                 gas=gas, block=block, time_ms=time_ms)
        return out

    async def calls(self, calls: list[tuple[bytes, str, list[bytes]]], *,
                    sender: bytes = bytes(20), value: int = 0, gas: int = CALL_GAS_LIMIT,
                    block: LightBlock | None = None, time_ms: int | None = None
                    ) -> list[CallOutcome]:
        """Several read-only calls at one height, their missing keys proven together
        (one round trip per round for all of them)."""
        block = block or self.head()
        gas = max(0, min(gas, CALL_GAS_LIMIT))
        env = BlockEnv(block.height, block.header.time_ms if time_ms is None else time_ms)
        known: dict[bytes, bytes | None] = {}
        for _ in range(MAX_ROUNDS):
            proven = {**self._code, **self._cache_for(block), **known}
            missing: list[bytes] = []
            outs = []
            for contract, method, args in calls:
                reads = ProvenReads(proven)
                world = WorldState(reads, self._program)  # type: ignore[arg-type]
                out = Machine(world, env, sender).call(sender, contract, method.encode(), args,
                                                       value, gas)
                self.rounds += 1
                missing += reads.missing
                outs.append(CallOutcome(out.status, out.data, out.reason, gas - out.gas_left,
                                        list(world.events), block.height))
            if not missing:
                return outs
            wanted = list(dict.fromkeys(missing))
            if len(known) + len(wanted) > MAX_KEYS:
                break
            known.update(await self.values(wanted, block))
        names = sorted({c[1] for c in calls})
        raise CannotProve(f"{len(calls)} view call(s) ({', '.join(names[:5])}) read more state "
                          f"than this light node proves for one answer ({MAX_KEYS} keys in "
                          f"{MAX_ROUNDS} rounds)")

    # ------------------------------------------------------------ transactions

    async def tx(self, tx_hash: bytes) -> ProvenTx:
        """A committed transaction and its receipt, each proven against the header of
        its height (verified here first). RPCFailed if the primary says it has none
        (a node that hides a transaction is not caught by this; a witness may be asked)."""
        return await self.client._with_primary(lambda p: self._tx(p, tx_hash))

    async def _tx(self, provider: Provider, tx_hash: bytes) -> ProvenTx:
        [answer] = await provider.tx_proofs([tx_hash])
        if isinstance(answer, RPCFailed):
            raise answer
        return await self.check_tx(provider, tx_hash, answer)

    async def check_tx(self, provider: Provider, tx_hash: bytes, answer: dict[str, Any]
                       ) -> ProvenTx:
        height = answer["height"]
        if not isinstance(height, int) or height < 1:
            raise BadProof(f"{provider.url} gave a transaction at height {height!r}")
        if height > self.client.height:
            # committed after our head: catch up first
            await self.client.sync()
            if height > self.client.height:
                raise BadProof(f"{provider.url} placed transaction {tx_hash.hex()} at height "
                               f"{height}, above every header it shows ({self.client.height})")
        try:
            block = await self.client.verify_height(height)
        except LightError as exc:
            raise CannotProve(f"the block of height {height} cannot be verified: {exc}") \
                from None
        header = block.header
        raw_tx, raw_receipt = answer["tx"], answer["receipt"]
        tx_proof, receipt_proof = answer["tx_proof"], answer["receipt_proof"]
        index = answer["index"]
        if answer["header"].hash != header.hash:
            raise BadProof(f"{provider.url} proved transaction {tx_hash.hex()} against a "
                           f"header of height {height} that is not the verified one")
        if (tx_proof.index != index or receipt_proof.index != index
                or tx_proof.size != header.tx_count or receipt_proof.size != header.tx_count):
            raise BadProof(f"{provider.url}'s proofs of {tx_hash.hex()} name another place "
                           "in the block than the one it claims")
        if not tx_proof.verify(raw_tx, header.tx_root):
            raise BadProof(f"{provider.url}'s transaction {tx_hash.hex()} does not match its "
                           "proof under the verified tx_root")
        if not receipt_proof.verify(raw_receipt, header.receipts_root):
            raise BadProof(f"{provider.url}'s receipt of {tx_hash.hex()} does not match its "
                           "proof under the verified receipts_root")
        try:
            tx = Transaction.decode(raw_tx)
            receipt = Receipt.decode(raw_receipt)
        except DecodeError as exc:
            raise BadProof(f"{provider.url} proved undecodable bytes: {exc}") from None
        if tx.hash != tx_hash:
            raise BadProof(f"{provider.url} answered another transaction than "
                           f"{tx_hash.hex()}, proven")
        return ProvenTx(tx, receipt, height, index, block, tx_proof)
