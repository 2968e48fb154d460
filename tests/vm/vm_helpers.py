"""Shared builders for the VM and executor tests.

:class:`TestChain` is a single-node chain over an :class:`Executor`: it builds each
block the way a proposer does (execute the transactions, put the resulting roots in
the header), certifies it with fixed validator keys, and commits it. Keys come from
``PrivateKey.from_seed_text`` so every run signs the same bytes.
"""

from __future__ import annotations

from chain.block import Block, CommitCertificate, Receipt, Vote, VoteKind
from chain.genesis import Genesis
from chain.keys import PrivateKey
from chain.tx import Call, Deploy, Transaction, Transfer
from chain.validators import Validator, ValidatorSet
from storage.kv import KVStore, MemoryKV
from vm.asm import assemble
from vm.executor import Executor, contract_address, encode_args

CHAIN = "agora-vm-test"
GENESIS_TIME_MS = 1_767_225_600_000  # 2026-01-01T00:00:00Z
BLOCK_INTERVAL_MS = 1_000
GAS_PRICE = 1
RICH = 10**30


def key(name: str) -> PrivateKey:
    return PrivateKey.from_seed_text(name)


ALICE = key("alice")
BOB = key("bob")
CAROL = key("carol")
VALIDATORS = [key(f"validator-{i}") for i in range(4)]
PROPOSER = VALIDATORS[0].address


def make_genesis(balances: dict[bytes, int] | None = None, contracts: list[dict] | None = None,
                 **consensus: int) -> Genesis:
    """A genesis with four validators; Alice, Bob and Carol rich unless told otherwise."""
    from chain.address import address_to_text

    if balances is None:
        balances = {ALICE.address: RICH, BOB.address: RICH, CAROL.address: RICH}
    return Genesis.from_dict({
        "chain_id": CHAIN,
        "genesis_time": "2026-01-01T00:00:00Z",
        "validators": [{"public_key": k.public_key.hex(), "power": 10} for k in VALIDATORS],
        "balances": [{"address": address_to_text(a), "amount": str(v)}
                     for a, v in balances.items()],
        "contracts": contracts or [],
        "consensus": consensus,
    })


def vset() -> ValidatorSet:
    return ValidatorSet(Validator(k.public_key, 10) for k in VALIDATORS)


class TestChain:
    """An executor plus the bookkeeping a proposer and the validators would do."""

    __test__ = False  # not a pytest class

    def __init__(self, kv: KVStore | None = None, genesis: Genesis | None = None,
                 **executor_options: int) -> None:
        self.kv = kv if kv is not None else MemoryKV()
        self.genesis = genesis if genesis is not None else make_genesis()
        self.executor = Executor(self.kv, self.genesis, **executor_options)
        self.nonces: dict[bytes, int] = {}
        self.last_commit: CommitCertificate | None = None
        #: Validator keys by address: the ones that sign each height's certificate are
        #: those of that height's set (a test adds the keys of validators it votes in).
        self.validator_keys = {k.address: k for k in VALIDATORS}

    # -- transactions -------------------------------------------------------------

    def next_nonce(self, sender: PrivateKey) -> int:
        addr = sender.address
        if addr not in self.nonces:
            self.nonces[addr] = self.executor.account(addr)[0]
        n = self.nonces[addr]
        self.nonces[addr] = n + 1
        return n

    def tx(self, sender: PrivateKey, action, *, gas_limit: int = 1_000_000,
           gas_price: int = GAS_PRICE, nonce: int | None = None) -> Transaction:
        return Transaction.create(
            sender, CHAIN, self.next_nonce(sender) if nonce is None else nonce, action,
            gas_limit=gas_limit, gas_price=gas_price,
        )

    def transfer(self, sender: PrivateKey, to: bytes, amount: int, **kw) -> Transaction:
        return self.tx(sender, Transfer(to, amount), **kw)

    def call(self, sender: PrivateKey, contract: bytes, method: str, args: list[bytes] = (),
             value: int = 0, **kw) -> Transaction:
        return self.tx(sender, Call(contract, method, encode_args(list(args)), value), **kw)

    def deploy(self, sender: PrivateKey, code: bytes | str, args: list[bytes] = (),
               value: int = 0, **kw) -> tuple[Transaction, bytes]:
        """A deploy transaction and the address its contract will have."""
        if isinstance(code, str):
            code = assemble(code)
        nonce = kw.pop("nonce", None)
        nonce = self.next_nonce(sender) if nonce is None else nonce
        tx = self.tx(sender, Deploy(code, encode_args(list(args)), value), nonce=nonce, **kw)
        return tx, contract_address(sender.address, nonce)

    # -- blocks -------------------------------------------------------------------

    @property
    def height(self) -> int:
        return self.executor.height

    def build(self, txs: list[Transaction], proposer: bytes = PROPOSER) -> Block:
        """The block a proposer makes of ``txs`` on top of the committed state."""
        ex = self.executor
        height = self.height + 1
        return ex.build_block(
            txs, time_ms=GENESIS_TIME_MS + height * BLOCK_INTERVAL_MS,
            proposer=proposer, validators_hash=ex.validator_set(height).hash,
            next_validators_hash=ex.validator_set(height + 1).hash,
            last_commit=self.last_commit,
        )

    def certify(self, block: Block) -> CommitCertificate:
        """Every validator of the block's height signs (all their keys are known)."""
        signers = [self.validator_keys[v.address]
                   for v in self.executor.validator_set(block.height)]
        votes = [Vote.create(k, CHAIN, VoteKind.COMMIT, block.height, 0, block.hash)
                 for k in signers]
        return CommitCertificate.from_votes(votes)

    def commit(self, block: Block) -> list[Receipt]:
        root, receipts = self.executor.execute_block(block)
        assert root == block.header.state_root
        cert = self.certify(block)
        self.executor.commit(block, cert)
        self.last_commit = cert
        return receipts

    def run(self, txs: list[Transaction], proposer: bytes = PROPOSER) -> list[Receipt]:
        """Build, execute, certify and commit one block of ``txs``; its receipts."""
        return self.commit(self.build(txs, proposer))

    def run_one(self, tx: Transaction) -> Receipt:
        return self.run([tx])[0]

    def balance(self, address: bytes) -> int:
        return self.executor.account(address)[1]
