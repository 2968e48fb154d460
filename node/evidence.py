"""Evidence goes on chain: a validator that sees another sign two conflicting messages
sends the pair to ``EVIDENCE_ADDRESS`` in a transaction signed (and paid for) with its
own validator key. The executor checks it and records it once; the governance
contract opens a removal proposal against the equivocator (vm/executor.py,
vm/contracts/governance.agc).

:class:`EvidenceReporter` is the node's side: the consensus driver hands it each
:class:`consensus.core.Evidence` it finds, and it builds the :class:`DoubleSign`,
skips what the chain (or this process) already has, and submits the transaction.
"""

from __future__ import annotations

import logging
from collections.abc import Callable

from chain.block import Vote
from chain.evidence import PROPOSAL, DoubleSign
from chain.keys import PrivateKey
from chain.system import EVIDENCE_ADDRESS
from chain.tx import Call, Transaction
from consensus.core import Evidence
from consensus.messages import CompactProposal
from vm.executor import EVIDENCE_METHOD, Executor, encode_args

log = logging.getLogger("agora.evidence")

#: Gas an evidence transaction may use (checking it, recording it and the governance
#: call: about 125,000 measured); what it does not use is refunded. Never above the
#: block gas limit, which governance may lower to 1,000,000.
EVIDENCE_GAS_LIMIT = 500_000
#: Once a validator's conflict is reported, its further ones (an equivocator signs
#: conflicts at every height) are not reported for this many heights: one recorded
#: conflict opens its removal, and each report costs its sender a fee.
REPORT_EVERY = 1_000
#: Pieces reported by this process, remembered so one is sent once.
_MAX_REPORTED = 4096


def double_sign(evidence: Evidence) -> DoubleSign:
    """The on-chain record of a conflict the consensus core found."""
    first, second = evidence.first, evidence.second
    if isinstance(first, Vote) and isinstance(second, Vote):
        return DoubleSign.of(first.kind, first.height, first.view, evidence.validator,
                             (first.block_hash, first.signature),
                             (second.block_hash, second.signature))
    assert isinstance(first, CompactProposal) and isinstance(second, CompactProposal)
    return DoubleSign.of(PROPOSAL, first.height, first.view, evidence.validator,
                         (first.header.hash, first.signature),
                         (second.header.hash, second.signature))


def evidence_tx(key: PrivateKey, chain_id: str, nonce: int, record: DoubleSign, *,
                gas_price: int, gas_limit: int = EVIDENCE_GAS_LIMIT) -> Transaction:
    """A transaction that reports ``record``."""
    action = Call(EVIDENCE_ADDRESS, EVIDENCE_METHOD, encode_args([record.encode()]), 0)
    return Transaction.create(key, chain_id, nonce, action, gas_limit=gas_limit,
                              gas_price=gas_price)


class EvidenceReporter:
    """Submits evidence transactions signed with this node's validator key."""

    def __init__(self, key: PrivateKey, executor: Executor,
                 pending_nonce: Callable[[bytes], int],
                 submit: Callable[[Transaction], object]) -> None:
        self.key = key
        self.executor = executor
        self.pending_nonce = pending_nonce
        self.submit = submit
        self._reported: dict[bytes, None] = {}
        #: validator -> the height of its last conflict reported
        self._last_report: dict[bytes, int] = {}
        #: Transactions submitted (read by tests and metrics).
        self.submitted = 0

    def report(self, evidence: Evidence) -> None:
        try:
            record = double_sign(evidence)
        except (AssertionError, ValueError) as exc:
            log.warning("cannot put this evidence on chain: %s", exc)
            return
        if record.key in self._reported or self.executor.evidence_recorded(record):
            return
        last = self._last_report.get(record.validator)
        if last is not None and abs(record.height - last) < REPORT_EVERY:
            return
        ex = self.executor
        params = ex.params
        tx = evidence_tx(self.key, ex.chain_id, self.pending_nonce(self.key.address), record,
                         gas_price=params.min_gas_price,
                         gas_limit=min(EVIDENCE_GAS_LIMIT, params.max_block_gas))
        try:
            self.submit(tx)
        except Exception as exc:  # a refusal (no funds, pool full): said, not fatal
            log.warning("could not submit evidence (%s) on chain: %s", record.describe(), exc)
            return
        self._reported[record.key] = None
        if len(self._reported) > _MAX_REPORTED:
            self._reported.pop(next(iter(self._reported)))
        self._last_report[record.validator] = record.height
        if len(self._last_report) > _MAX_REPORTED:
            self._last_report.pop(next(iter(self._last_report)))
        self.submitted += 1
        log.warning("submitted evidence on chain: %s (tx %s)", record.describe(),
                    tx.hash.hex()[:16])
