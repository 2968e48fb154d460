"""Governance through the executor: what the governance contract passes in block H is
the validator set of H + 2, stored with the block in one batch, committed to by block
H + 1's header; parameter changes take effect at their stated height; evidence of a
double vote is checked, recorded once and proposes the equivocator's removal.
"""

from __future__ import annotations

import pytest
from vm_helpers import ALICE, CAROL, RICH, VALIDATORS, TestChain, key, make_genesis

from chain.block import ReceiptStatus, Vote
from chain.evidence import COMMIT, PREPARE, PROPOSAL, DoubleSign
from chain.hashing import Domain, sha256
from chain.system import EVIDENCE_ADDRESS, GOVERNANCE_ADDRESS
from chain.tx import Call
from chain.validators import MIN_VALIDATORS
from storage.kv import MemoryKV
from vm.contracts import decode_result, encode_call, governance_contract
from vm.errors import InvalidBlock, InvalidTx
from vm.executor import EVIDENCE_METHOD, EVIDENCE_PREFIX, Executor, encode_args

NEWCOMER = key("validator-new")
OUTSIDER = key("outsider")
CHAIN = "agora-vm-test"


def gov_chain(kv: MemoryKV | None = None, *, ttl: int = 50) -> TestChain:
    entry = governance_contract([(k.public_key, 10, f"v{i}") for i, k in enumerate(VALIDATORS)],
                                proposal_ttl=ttl)
    balances = {k.address: RICH for k in [*VALIDATORS, ALICE, CAROL, NEWCOMER, OUTSIDER]}
    tc = TestChain(kv, make_genesis(balances, [entry]))
    tc.validator_keys[NEWCOMER.address] = NEWCOMER
    return tc


def gov(tc: TestChain, sender, method: str, *args):
    return tc.call(sender, GOVERNANCE_ADDRESS, method,
                   list(encode_call_args(method, *args)))


def encode_call_args(method: str, *args) -> list[bytes]:
    import msgpack
    return msgpack.unpackb(encode_call("governance", method, *args))


def view(tc: TestChain, method: str, *args):
    status, data, reason = tc.executor.call_view(ALICE.address, GOVERNANCE_ADDRESS, method,
                                                 encode_call_args(method, *args))
    assert status == ReceiptStatus.OK, reason
    return decode_result("governance", method, data)


def vote_in_newcomer(tc: TestChain) -> int:
    """Propose the newcomer (v0, counted yes) and have v1, v2 vote yes: passes in the
    block of the last vote. Returns that block's height."""
    r = tc.run_one(gov(tc, VALIDATORS[0], "propose_add", NEWCOMER.public_key, 10, "new",
                       "ab" * 20 + "@127.0.0.1:9"))
    assert r.status == ReceiptStatus.OK, r.reason
    pid = decode_result("governance", "propose_add", r.return_data)
    for v in VALIDATORS[1:3]:
        r = tc.run_one(gov(tc, v, "vote", pid, True))
        assert r.status == ReceiptStatus.OK, r.reason
    return tc.height


def test_a_passed_addition_is_in_force_two_heights_later_and_in_the_next_header() -> None:
    tc = gov_chain()
    genesis_set = tc.executor.validator_set(1)
    passed_at = vote_in_newcomer(tc)
    ex = tc.executor
    assert ex.validator_set(passed_at + 1) == genesis_set or \
        ex.validator_set(passed_at + 1).hash == genesis_set.hash
    new = ex.validator_set(passed_at + 2)
    assert len(new) == 5 and new.get(NEWCOMER.address).power == 10
    record = ex.validator_record(passed_at + 2)
    assert record.names[NEWCOMER.address] == "new"
    assert record.p2p[NEWCOMER.address].endswith("@127.0.0.1:9")
    block = tc.build([])  # block passed_at + 1 commits to the new set
    assert block.header.validators_hash == genesis_set.hash
    assert block.header.next_validators_hash == new.hash
    tc.commit(block)
    block = tc.build([])  # block passed_at + 2 is decided by the new set
    assert block.header.validators_hash == new.hash
    cert = tc.certify(block)
    assert any(s.validator == NEWCOMER.address for s in cert.signatures)
    tc.commit(block)
    assert view(tc, "member_count") == 5


def test_the_sets_survive_a_restart() -> None:
    kv = MemoryKV()
    tc = gov_chain(kv)
    passed_at = vote_in_newcomer(tc)
    again = Executor(kv, tc.genesis)
    assert again.validator_set(passed_at + 2).hash == tc.executor.validator_set(passed_at + 2).hash
    assert again.validator_set(passed_at + 1).hash == tc.executor.validator_set(1).hash
    assert [r.height for r in again.validator_records()] == [1, passed_at + 2]


def test_two_yes_of_four_do_not_pass() -> None:
    tc = gov_chain()
    r = tc.run_one(gov(tc, VALIDATORS[0], "propose_add", NEWCOMER.public_key, 10, "", ""))
    pid = decode_result("governance", "propose_add", r.return_data)
    tc.run_one(gov(tc, VALIDATORS[1], "vote", pid, True))
    tc.run([])
    tc.run([])
    assert len(tc.executor.validator_set(tc.height + 2)) == 4
    assert [r.height for r in tc.executor.validator_records()] == [1]


def test_a_block_whose_header_ignores_the_decided_set_is_refused_by_the_app() -> None:
    import dataclasses

    from consensus.errors import InvalidProposal
    from node.app import ChainApp
    from node.mempool import Mempool

    tc = gov_chain()
    vote_in_newcomer(tc)
    app = ChainApp(tc.executor, Mempool(tc.executor, invalid_tx=InvalidTx),
                   clock_ms=lambda: 2_000_000_000_000)
    block = tc.build([])
    lie = dataclasses.replace(block, header=dataclasses.replace(
        block.header, next_validators_hash=block.header.validators_hash))
    with pytest.raises(InvalidProposal, match="next validator set"):
        app.validate(lie)
    app.validate(block)


def test_a_parameter_change_takes_effect_at_its_height() -> None:
    tc = gov_chain()
    at = tc.height + 6
    r = tc.run_one(gov(tc, VALIDATORS[0], "propose_param", "min_gas_price", 7, at))
    assert r.status == ReceiptStatus.OK, r.reason
    pid = decode_result("governance", "propose_param", r.return_data)
    tc.run([gov(tc, VALIDATORS[1], "vote", pid, True), gov(tc, VALIDATORS[2], "vote", pid, True)])
    assert tc.executor.param_changes() == [(at, "min_gas_price", 7)]
    while tc.height + 1 < at:
        assert tc.executor.params.min_gas_price == 1
        tc.run([])
    assert tc.executor.params.min_gas_price == 7
    cheap = tc.transfer(ALICE, OUTSIDER.address, 1, gas_price=1)
    with pytest.raises(InvalidTx, match="below the minimum 7"):
        tc.executor.check_tx(cheap)
    again = Executor(tc.kv, tc.genesis)
    assert again.params.min_gas_price == 7


# ---------------------------------------------------------------- evidence


def double_commit(k, height: int = 1, view_: int = 0, kind: int = COMMIT) -> DoubleSign:
    a, b = sha256(b"block a"), sha256(b"block b")
    if kind == PROPOSAL:
        sign = lambda h: k.sign(Domain.PROPOSAL, CHAIN, [height, view_, h])  # noqa: E731
    else:
        sign = lambda h: Vote.create(k, CHAIN, kind, height, view_, h).signature  # noqa: E731
    return DoubleSign.of(kind, height, view_, k.address, (a, sign(a)), (b, sign(b)))


def evidence_tx(tc: TestChain, sender, record: DoubleSign):
    return tc.call(sender, EVIDENCE_ADDRESS, EVIDENCE_METHOD, [record.encode()], gas_limit=3_000_000)


@pytest.mark.parametrize("kind", [PROPOSAL, PREPARE, COMMIT])
def test_evidence_is_recorded_once_and_proposes_removal(kind: int) -> None:
    tc = gov_chain()
    vote_in_newcomer(tc)  # five validators: one may be removed
    tc.run([])
    record = double_commit(VALIDATORS[3], height=tc.height, kind=kind)
    r = tc.run_one(evidence_tx(tc, ALICE, record))
    assert r.status == ReceiptStatus.OK, r.reason
    names = [e.name for e in r.events]
    assert names[0] == "Equivocation" and "Proposed" in names
    assert tc.executor.evidence_recorded(record)
    pid = view(tc, "proposal_count")
    p = view(tc, "proposal", pid)
    assert p["kind"] == 2 and p["validator"] == VALIDATORS[3].address
    # Reported again, by anyone: the fee is paid, nothing is recorded twice.
    again = tc.run_one(evidence_tx(tc, OUTSIDER, record))
    assert again.status == ReceiptStatus.REVERTED and "already recorded" in again.reason
    assert view(tc, "proposal_count") == pid


def test_evidence_in_a_set_of_four_is_recorded_without_a_removal_proposal() -> None:
    tc = gov_chain()
    tc.run([])
    record = double_commit(VALIDATORS[3])
    r = tc.run_one(evidence_tx(tc, ALICE, record))
    assert r.status == ReceiptStatus.OK, r.reason
    assert [e.name for e in r.events] == ["Equivocation"]
    assert tc.executor.evidence_recorded(record)
    assert view(tc, "proposal_count") == 0


def test_evidence_removes_the_equivocator_from_a_set_of_five() -> None:
    tc = gov_chain()
    vote_in_newcomer(tc)
    tc.run([])
    tc.run([])
    record = double_commit(VALIDATORS[3], height=tc.height)
    r = tc.run_one(evidence_tx(tc, ALICE, record))
    assert r.status == ReceiptStatus.OK, r.reason
    pid = view(tc, "proposal_count")
    for v in [*VALIDATORS[:3], NEWCOMER]:
        r = tc.run_one(gov(tc, v, "vote", pid, True))
        assert r.status == ReceiptStatus.OK, r.reason
        if view(tc, "status", pid) == 1:
            break
    after = tc.executor.validator_set(tc.height + 2)
    assert len(after) == MIN_VALIDATORS and after.get(VALIDATORS[3].address) is None


def test_forged_evidence_is_refused_at_admission_and_in_a_block() -> None:
    tc = gov_chain()
    tc.run([])
    honest = double_commit(VALIDATORS[2])
    forged = DoubleSign(honest.kind, honest.height, honest.view, honest.validator,
                        honest.hash_a, honest.signature_a, honest.hash_b, bytes(64))
    not_a_validator = double_commit(OUTSIDER)
    same = DoubleSign(honest.kind, honest.height, honest.view, honest.validator,
                      honest.hash_a, honest.signature_a, honest.hash_a, honest.signature_a)
    future = double_commit(VALIDATORS[2], height=tc.height + 5)
    for bad, reason in ((forged, "does not verify"), (not_a_validator, "not a validator"),
                        (same, "must differ"), (future, "not reached")):
        tx = evidence_tx(tc, ALICE, bad)
        with pytest.raises(InvalidTx, match=reason):
            tc.executor.check_tx(tx)
        with pytest.raises(InvalidBlock, match=reason):
            tc.build([tx])
        tc.nonces.clear()
    junk = tc.call(ALICE, EVIDENCE_ADDRESS, EVIDENCE_METHOD, [b"junk"])
    with pytest.raises(InvalidTx, match="malformed evidence"):
        tc.executor.check_tx(junk)
    tc.nonces.clear()
    wrong_method = tc.tx(ALICE, Call(EVIDENCE_ADDRESS, "other",
                                     encode_args([honest.encode()]), 0))
    with pytest.raises(InvalidTx, match="submit"):
        tc.executor.check_tx(wrong_method)
    assert not tc.executor.evidence_recorded(honest)
    assert tc.executor.tree.get(EVIDENCE_PREFIX + honest.key) is None


def test_evidence_out_of_gas_records_nothing() -> None:
    tc = gov_chain()
    tc.run([])
    record = double_commit(VALIDATORS[1])
    tx = tc.call(ALICE, EVIDENCE_ADDRESS, EVIDENCE_METHOD, [record.encode()], gas_limit=60_000)
    r = tc.run_one(tx)
    assert r.status == ReceiptStatus.OUT_OF_GAS
    assert not tc.executor.evidence_recorded(record)
    r = tc.run_one(evidence_tx(tc, ALICE, record))
    assert r.status == ReceiptStatus.OK, r.reason


def test_a_raised_minimum_price_drops_waiting_cheap_transactions_from_the_pool() -> None:
    """Otherwise every block built from the pool would hold a transaction the new
    parameters refuse, and the proposer would propose empty blocks for ever."""
    from node.app import ChainApp
    from node.mempool import Mempool

    tc = gov_chain()
    pool = Mempool(tc.executor, invalid_tx=InvalidTx)
    app = ChainApp(tc.executor, pool, clock_ms=lambda: 2_000_000_000_000)
    at = tc.height + 4
    r = tc.run_one(gov(tc, VALIDATORS[0], "propose_param", "min_gas_price", 5, at))
    pid = decode_result("governance", "propose_param", r.return_data)
    tc.run([gov(tc, VALIDATORS[1], "vote", pid, True), gov(tc, VALIDATORS[2], "vote", pid, True)])
    cheap = tc.transfer(ALICE, OUTSIDER.address, 1, gas_price=1)
    dear = tc.transfer(CAROL, OUTSIDER.address, 1, gas_price=9)
    pool.add(cheap)
    pool.add(dear)
    while tc.height + 1 < at:  # empty blocks: both wait in the pool until the switch
        block = tc.build([])
        app.validate(block)
        cert = tc.certify(block)
        app.commit(block, cert)
        tc.last_commit = cert
    assert tc.executor.params.min_gas_price == 5
    assert cheap.hash not in pool and dear.hash in pool
    block = app.propose(tc.height + 1, 0, tc.last_commit, VALIDATORS[0].address)
    assert [t.hash for t in block.txs] == [dear.hash]


# ---------------------------------------------------------------- regressions (attack)


def test_a_parameter_change_effective_beyond_2_63_is_refused_by_the_contract() -> None:
    """It passed and was certified, then every node crashed writing its height into
    an 8-byte key, and again on every restart."""
    tc = gov_chain()
    for at in (2**63, 2**64):
        r = tc.run_one(gov(tc, VALIDATORS[0], "propose_param", "min_gas_price", 5, at))
        assert r.status == ReceiptStatus.REVERTED and "2**63" in r.reason
    assert view(tc, "proposal_count") == 0


def test_two_changes_of_one_parameter_for_one_height_agree_live_and_after_restart() -> None:
    """The live node kept both and took the larger; the stored records kept the last
    passed: a restarted node refused the live nodes' blocks."""
    tc = gov_chain()
    at = tc.height + 8
    ids = []
    for value in (50_000_000, 2_000_000):
        r = tc.run_one(gov(tc, VALIDATORS[0], "propose_param", "max_block_gas", value, at))
        ids.append(decode_result("governance", "propose_param", r.return_data))
    tc.run([gov(tc, v, "vote", pid, True) for pid in ids for v in VALIDATORS[1:3]])
    assert tc.executor.param_changes() == [(at, "max_block_gas", 2_000_000)]
    again = Executor(tc.kv, tc.genesis)
    assert again.param_changes() == tc.executor.param_changes()
    while tc.height + 1 < at:
        tc.run([])
    assert tc.executor.params.max_block_gas == 2_000_000
    assert Executor(tc.kv, tc.genesis).params == tc.executor.params


def test_the_parameters_object_stays_the_same_while_nothing_changes() -> None:
    """ChainApp re-checks the whole pool when the parameters change (by identity):
    after a change it did so at every block."""
    tc = gov_chain()
    at = tc.height + 3
    r = tc.run_one(gov(tc, VALIDATORS[0], "propose_param", "min_gas_price", 2, at))
    pid = decode_result("governance", "propose_param", r.return_data)
    tc.run([gov(tc, VALIDATORS[1], "vote", pid, True), gov(tc, VALIDATORS[2], "vote", pid, True)])
    at = tc.executor.param_changes()[0][0]  # two blocks after the passing one at least
    while tc.height + 1 < at:
        tc.run([])
    params = tc.executor.params
    assert params.min_gas_price == 2
    tc.run([])
    tc.run([])
    assert tc.executor.params is params


def test_evidence_is_checked_only_for_a_sender_that_can_pay() -> None:
    """A throwaway key with no coin made every node verify two signatures per
    transaction before the balance check refused it."""
    from node.mempool import Mempool, TxRejected

    tc = gov_chain()
    tc.run([])
    pool = Mempool(tc.executor, invalid_tx=InvalidTx)
    pauper = key("pauper")
    record = double_commit(VALIDATORS[1])
    bogus = DoubleSign(record.kind, record.height, record.view, record.validator,
                       record.hash_a, record.signature_a, record.hash_b, record.signature_a)
    tx = tc.call(pauper, EVIDENCE_ADDRESS, EVIDENCE_METHOD, [bogus.encode()])
    with pytest.raises(TxRejected, match="balance"):
        pool.add(tx)
    rich = tc.call(ALICE, EVIDENCE_ADDRESS, EVIDENCE_METHOD, [bogus.encode()])
    with pytest.raises(TxRejected, match="does not verify"):
        pool.add(rich)


def test_the_reporter_fits_its_evidence_in_a_lowered_block_gas_limit() -> None:
    """With max_block_gas lowered to 1,000,000 every evidence transaction (gas limit
    2,000,000) was refused: no equivocation was ever reported on chain."""
    from consensus.core import Evidence
    from node.evidence import EvidenceReporter
    from node.mempool import Mempool

    tc = gov_chain()
    at = tc.height + 3
    r = tc.run_one(gov(tc, VALIDATORS[0], "propose_param", "max_block_gas", 1_000_000, at))
    pid = decode_result("governance", "propose_param", r.return_data)
    tc.run([gov(tc, VALIDATORS[1], "vote", pid, True), gov(tc, VALIDATORS[2], "vote", pid, True)])
    at = tc.executor.param_changes()[0][0]
    while tc.height + 1 < at:
        tc.run([])
    assert tc.executor.params.max_block_gas == 1_000_000
    pool = Mempool(tc.executor, invalid_tx=InvalidTx)
    reporter = EvidenceReporter(VALIDATORS[0], tc.executor, pool.pending_nonce, pool.add)
    k = VALIDATORS[3]
    a, b = sha256(b"block a"), sha256(b"block b")
    votes = [Vote.create(k, CHAIN, COMMIT, tc.height, 0, h) for h in (a, b)]
    reporter.report(Evidence(k.address, votes[0], votes[1]))
    assert reporter.submitted == 1 and len(pool) == 1
    receipt = tc.run_one(next(iter(pool)))
    assert receipt.status == ReceiptStatus.OK, receipt.reason
    # The equivocator's next conflict, a height later, is not reported again so soon.
    votes = [Vote.create(k, CHAIN, COMMIT, tc.height, 0, h) for h in (a, b)]
    reporter.report(Evidence(k.address, votes[0], votes[1]))
    assert reporter.submitted == 1
