"""Governance of the validator set (governance.agc), read as its specification.

Genesis members are named by the deployer, then sealed. A member proposes adding a
validator, removing one, changing one's power (each step moving less than a third of
the total power, and never below 4 validators) or a chain parameter; members vote with
their power, the proposer's yes counted at once. More than two thirds yes passes and
applies it, a third no rejects it. Proposals expire after the ttl, and every set change
starts an epoch that voids the open proposals of the one before. The set changes at
most once per block. The evidence reporter opens removals without voting, and never
reverts.

The unit tests check each rule at its boundary; GovernanceMachine runs random
proposals, votes and blocks by members and non-members against a model of the rules,
and checks the invariants the consensus relies on.
"""

from __future__ import annotations

import hashlib

import pytest
from hypothesis import HealthCheck, Phase, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, invariant, rule

from chain.address import address_to_text
from chain.keys import address_of
from chain.system import EVIDENCE_ADDRESS, GOVERNANCE_ADDRESS
from vm.contracts import (
    ADDRESSES,
    GENESIS_DISTRIBUTOR,
    compiled,
    decode_result,
    encode_call,
    genesis_contracts,
    governance_contract,
    method_abi,
)
from vm.interpreter import Status
from vm.testing import Contract, Env, Reverted

TTL = 10
DEPLOYER = b"\xde" * 20
REPORTER = b"\xee" * 20
STRANGER = b"\x57" * 20
START = 100                       # the block height the tests start at

ADD, REMOVE, POWER, PARAM = 1, 2, 3, 4
OPEN, PASSED, REJECTED, EXPIRED, VOID, UNKNOWN = 0, 1, 2, 3, 4, 5
NO_VOTE, YES, NO = 0, 1, 2

NOT_VALIDATOR_PROPOSE = "only a validator may propose"
NOT_VALIDATOR_VOTE = "only a validator may vote"
THIRD = "a step changes less than a third of the total power"
FLOOR = "a validator set keeps at least 4 validators"
CHANGED = "the validator set changed since this proposal was made; propose it again"
EXPIRED_REASON = "the proposal expired"
ONE_PER_BLOCK = "the validator set already changed in this block; vote again in the next one"
ALREADY_VOTED = "already voted on this proposal"
ONLY_REPORTER = "only the evidence recorder may call this"


def key(i: int) -> bytes:
    """A 32-byte public key."""
    return hashlib.sha256(b"agora/test/validator/%d" % i).digest()


def addr(i: int) -> bytes:
    return address_of(key(i))


def reverts(fn, *args, match: str = "", **kw) -> Reverted:
    """Call and expect a revert whose reason contains ``match``."""
    try:
        fn(*args, **kw)
    except Reverted as exc:
        assert match in exc.reason, f"reverted with {exc.reason!r}, expected {match!r}"
        return exc
    raise AssertionError(f"{getattr(fn, '__name__', fn)} did not revert (expected {match!r})")


class Gov:
    """The governance contract with genesis validators 0..n-1 of ``powers``, sealed, at
    block height START."""

    def __init__(self, powers: tuple[int, ...] = (10, 10, 10, 10), *, ttl: int = TTL,
                 seal: bool = True) -> None:
        self.env = Env(height=START)
        self.c: Contract = self.env.deploy(compiled("governance"), ttl, REPORTER,
                                           sender=DEPLOYER)
        for i, power in enumerate(powers):
            self.c.genesis_member(key(i), power, f"validator-{i}", sender=DEPLOYER)
        if seal:
            self.c.seal(sender=DEPLOYER)

    def next_block(self, n: int = 1) -> None:
        self.env.height += n

    def events(self, name: str) -> list[dict]:
        return [fields for n, fields in self.c.last_events if n == name]

    def add(self, proposer: int, i: int, power: int, p2p: str = "node@10.0.0.1:26656") -> int:
        return self.c.propose_add(key(i), power, f"validator-{i}", p2p, sender=addr(proposer))

    def vote(self, voters, pid: int, yes: bool = True) -> None:
        for v in voters:
            self.c.vote(pid, yes, sender=addr(v))

    def members(self, n: int) -> dict[bytes, int]:
        return {addr(i): self.c.member_power(addr(i)) for i in range(n)
                if self.c.member_power(addr(i))}


@pytest.fixture
def g() -> Gov:
    return Gov()


# ---------------------------------------------------------------- genesis


def test_genesis_members_and_views(g: Gov) -> None:
    assert g.c.member_count() == 4
    assert g.c.total_power() == 40
    assert g.c.current_epoch() == 0
    assert g.c.proposal_count() == 0
    assert g.c.ttl() == TTL
    for i in range(4):
        assert g.c.member_power(addr(i)) == 10
        assert g.c.member_key(addr(i)) == key(i)
    assert g.c.member_power(STRANGER) == 0
    assert g.c.member_key(STRANGER) == b""
    assert g.c.status(0) == UNKNOWN
    assert g.c.status(1) == UNKNOWN


def test_a_member_is_the_address_of_its_key() -> None:
    # sha256(public key)[:20], as chain.keys.address_of
    g = Gov()
    assert addr(0) == hashlib.sha256(key(0)).digest()[:20]
    assert g.c.member_power(hashlib.sha256(key(0)).digest()[:20]) == 10


def test_constructor_needs_a_ttl() -> None:
    env = Env()
    reverts(env.deploy, compiled("governance"), 0, REPORTER, match="ttl")


def test_genesis_member_rules() -> None:
    g = Gov((), seal=False)
    reverts(g.c.genesis_member, key(0), 10, "a", sender=STRANGER, match="only the deployer")
    reverts(g.c.genesis_member, key(0)[:31], 10, "a", sender=DEPLOYER, match="32 bytes")
    reverts(g.c.genesis_member, key(0) + b"\x00", 10, "a", sender=DEPLOYER, match="32 bytes")
    reverts(g.c.genesis_member, key(0), 0, "a", sender=DEPLOYER, match="a power is")
    reverts(g.c.genesis_member, key(0), 2**60, "a", sender=DEPLOYER, match="a power is")
    reverts(g.c.genesis_member, key(0), 1, "x" * 65, sender=DEPLOYER, match="64 bytes")
    reverts(g.c.seal, sender=DEPLOYER, match="at least one validator")
    g.c.genesis_member(key(0), 2**60 - 1, "x" * 64, sender=DEPLOYER)
    reverts(g.c.genesis_member, key(0), 1, "again", sender=DEPLOYER, match="already a validator")
    reverts(g.c.genesis_member, key(1), 2, "b", sender=DEPLOYER, match="total power is at most")
    g.c.genesis_member(key(1), 1, "", sender=DEPLOYER)
    assert g.c.member_count() == 2 and g.c.total_power() == 2**60
    # proposals wait for the seal
    reverts(g.c.propose_remove, addr(1), sender=addr(0), match="not sealed")
    reverts(g.c.seal, sender=STRANGER, match="only the deployer")
    g.c.seal(sender=DEPLOYER)
    reverts(g.c.seal, sender=DEPLOYER, match="sealed")
    reverts(g.c.genesis_member, key(2), 10, "c", sender=DEPLOYER, match="sealed")
    assert g.c.member_count() == 2


# ---------------------------------------------------------------- who may propose and vote


def test_only_members_propose_and_vote(g: Gov) -> None:
    for who in (STRANGER, REPORTER, DEPLOYER, addr(9)):
        reverts(g.c.propose_add, key(9), 1, "n", "p@h:1", sender=who, match=NOT_VALIDATOR_PROPOSE)
        reverts(g.c.propose_remove, addr(0), sender=who, match=NOT_VALIDATOR_PROPOSE)
        reverts(g.c.propose_power, addr(0), 11, sender=who, match=NOT_VALIDATOR_PROPOSE)
        reverts(g.c.propose_param, "min_gas_price", 5, START + 2, sender=who,
                match=NOT_VALIDATOR_PROPOSE)
    pid = g.add(0, 9, 1)
    for who in (STRANGER, REPORTER, DEPLOYER, addr(9)):
        reverts(g.c.vote, pid, True, sender=who, match=NOT_VALIDATOR_VOTE)
    assert g.c.proposal(pid)["yes"] == 10


def test_a_double_vote_is_refused(g: Gov) -> None:
    pid = g.add(0, 9, 1)
    reverts(g.c.vote, pid, True, sender=addr(0), match=ALREADY_VOTED)   # the proposer
    reverts(g.c.vote, pid, False, sender=addr(0), match=ALREADY_VOTED)
    g.c.vote(pid, False, sender=addr(1))
    reverts(g.c.vote, pid, False, sender=addr(1), match=ALREADY_VOTED)
    reverts(g.c.vote, pid, True, sender=addr(1), match=ALREADY_VOTED)
    p = g.c.proposal(pid)
    assert (p["yes"], p["no"]) == (10, 10)
    assert [g.c.vote_of(pid, addr(i)) for i in range(4)] == [YES, NO, NO_VOTE, NO_VOTE]


def test_no_such_proposal(g: Gov) -> None:
    reverts(g.c.vote, 0, True, sender=addr(0), match="no such proposal")
    reverts(g.c.vote, 1, True, sender=addr(0), match="no such proposal")


# ---------------------------------------------------------------- two thirds, one third


def test_two_thirds_is_not_enough_more_is(g: Gov) -> None:
    # 4 x 10: 20 yes of 40 does not pass; 30 does (3 x 30 = 90 > 80)
    pid = g.add(0, 9, 13, "node9@10.0.0.9:26656")
    # (events first: any later call, a view too, replaces last_events)
    assert g.events("Proposed") == [{
        "proposal_id": 1, "kind": ADD, "proposer": addr(0), "validator": addr(9),
        "public_key": key(9), "power": 13, "param": "", "value": 0, "epoch": 0,
        "expires": START + TTL}]
    assert g.events("Voted") == [{"proposal_id": 1, "voter": addr(0), "yes": True,
                                  "yes_power": 10, "no_power": 0}]
    assert pid == 1 and g.c.proposal_count() == 1
    g.vote([1], pid)
    assert g.c.status(pid) == OPEN and g.c.proposal(pid)["yes"] == 20
    assert g.events("Passed") == [] and g.events("ValidatorUpdate") == []
    g.vote([2], pid)
    assert [n for n, _ in g.c.last_events] == ["Voted", "Passed", "ValidatorUpdate"]
    assert g.events("ValidatorUpdate") == [{"public_key": key(9), "power": 13,
                                            "name": "validator-9",
                                            "p2p": "node9@10.0.0.9:26656"}]
    assert g.events("Passed") == [{"proposal_id": pid}]
    assert g.c.status(pid) == PASSED and g.c.proposal(pid)["state"] == PASSED
    assert g.c.member_power(addr(9)) == 13 and g.c.member_key(addr(9)) == key(9)
    assert g.c.member_count() == 5 and g.c.total_power() == 53
    assert g.c.current_epoch() == 1
    reverts(g.c.vote, pid, True, sender=addr(3), match="already passed")
    # the new member proposes and votes
    g.next_block()
    pid2 = g.c.propose_param("min_gas_price", 7, START + 3, sender=addr(9))
    assert g.c.proposal(pid2)["yes"] == 13


def test_the_two_thirds_boundary_with_unequal_powers() -> None:
    g = Gov((7, 7, 6, 5, 5))        # total 30: yes must exceed 20
    pid = g.c.propose_power(addr(4), 6, sender=addr(0))
    g.vote([1, 2], pid)             # 20 = exactly two thirds
    assert g.c.status(pid) == OPEN
    g.vote([3], pid)                # 25
    assert g.c.status(pid) == PASSED and g.c.member_power(addr(4)) == 6


def test_a_third_no_rejects() -> None:
    g = Gov((7, 7, 6, 5, 5))        # total 30: 10 no rejects
    pid = g.c.propose_power(addr(4), 6, sender=addr(0))
    g.vote([3], pid, False)         # 5 no: 15 < 30
    assert g.c.status(pid) == OPEN
    g.vote([4], pid, False)         # 10 no: 30 >= 30
    assert g.events("Rejected") == [{"proposal_id": pid}]
    assert g.c.status(pid) == REJECTED and g.c.proposal(pid)["state"] == REJECTED
    reverts(g.c.vote, pid, True, sender=addr(1), match="rejected")
    assert g.c.member_power(addr(4)) == 5 and g.c.current_epoch() == 0


def test_a_proposer_with_more_than_two_thirds_passes_at_once() -> None:
    g = Gov((70, 10, 10, 10))
    pid = g.add(0, 9, 30)
    assert [n for n, _ in g.c.last_events] == ["Proposed", "Voted", "Passed", "ValidatorUpdate"]
    assert g.c.status(pid) == PASSED
    assert g.c.member_power(addr(9)) == 30 and g.c.total_power() == 130


def test_a_byzantine_quarter_gets_nowhere(g: Gov) -> None:
    # 1 of 4 validators (10 of 40, less than a third): removing anyone leaves fewer than 4
    for i in range(3):
        reverts(g.c.propose_remove, addr(i), sender=addr(3), match=FLOOR)
    # nor can it add a friend with a third of the power, or take it itself
    reverts(g.add, 3, 8, 14, match=THIRD)
    reverts(g.c.propose_power, addr(3), 24, sender=addr(3), match=THIRD)
    friend = g.add(3, 8, 13)
    more = g.c.propose_power(addr(3), 23, sender=addr(3))
    g.vote([0], friend)                             # one honest mistake: 20 of 40
    assert g.c.status(friend) == OPEN
    g.next_block(TTL + 1)
    assert g.c.status(friend) == EXPIRED and g.c.status(more) == EXPIRED
    assert g.members(9) == {addr(i): 10 for i in range(4)} and g.c.current_epoch() == 0


def test_a_byzantine_quarter_of_eight_gets_nowhere() -> None:
    # 6 and 7 are Byzantine: 20 of 80. They propose removing each honest validator.
    g = Gov((10,) * 8)
    pids = [g.c.propose_remove(addr(i), sender=addr(6)) for i in range(6)]
    for pid in pids:
        g.vote([7], pid)                            # 20: they agree with each other
    # honest validators vote no: three of them (30 of 80) reject it
    g.vote([0, 1, 2], pids[0], False)
    assert g.c.status(pids[0]) == REJECTED
    # an honest mistake or two still leaves it short (40 of 80, 3 x 40 <= 2 x 80)
    g.vote([0, 1], pids[5])
    assert g.c.status(pids[5]) == OPEN
    # or the honest stay silent: it expires
    g.next_block(TTL + 1)
    for pid in pids[1:]:
        assert g.c.status(pid) == EXPIRED
        reverts(g.c.vote, pid, True, sender=addr(2), match=EXPIRED_REASON)
    assert g.c.member_count() == 8 and g.c.total_power() == 80 and g.c.current_epoch() == 0


# ---------------------------------------------------------------- limits of a step


def test_floor_of_four_validators() -> None:
    g = Gov((10, 10, 10, 10, 10))
    pid = g.c.propose_remove(addr(4), sender=addr(0))
    g.vote([1, 2], pid)             # 30 of 50: not yet
    assert g.c.status(pid) == OPEN
    g.vote([3], pid)                # 40 > 33.3
    assert g.events("ValidatorUpdate") == [{"public_key": key(4), "power": 0,
                                            "name": "validator-4", "p2p": ""}]
    assert g.c.member_count() == 4 and g.c.total_power() == 40
    assert g.c.member_power(addr(4)) == 0 and g.c.member_key(addr(4)) == b""
    # the removed validator no longer proposes or votes
    reverts(g.c.propose_remove, addr(0), sender=addr(4), match=NOT_VALIDATOR_PROPOSE)
    g.next_block()
    for i in range(4):
        reverts(g.c.propose_remove, addr(i), sender=addr(0), match=FLOOR)
    assert g.c.propose_removal_by_evidence(addr(1), sender=REPORTER) == 0
    reverts(g.c.propose_remove, addr(4), sender=addr(0), match="not a validator")


def test_a_removed_validator_can_be_added_again() -> None:
    g = Gov((10, 10, 10, 10, 10))
    pid = g.c.propose_remove(addr(4), sender=addr(0))
    g.vote([1, 2, 3], pid)
    g.next_block()
    pid = g.add(0, 4, 5)
    g.vote([1, 2], pid)
    assert g.c.member_power(addr(4)) == 5 and g.c.member_key(addr(4)) == key(4)
    assert g.c.member_count() == 5 and g.c.current_epoch() == 2


def test_a_third_cap_on_adding(g: Gov) -> None:
    reverts(g.add, 0, 9, 14, match=THIRD)          # 42 >= 40
    reverts(g.add, 0, 9, 0, match="a power is")
    reverts(g.add, 0, 1, 1, match="already a validator")
    reverts(g.c.propose_add, key(9)[:31], 1, "n", "p@h:1", sender=addr(0), match="32 bytes")
    reverts(g.add, 0, 9, 1, "x" * 129, match="p2p")
    reverts(g.c.propose_add, key(9), 1, "x" * 65, "p@h:1", sender=addr(0), match="64 bytes")
    assert g.add(0, 9, 13, "x" * 128) == 1         # 39 < 40
    assert g.c.propose_add(key(8), 1, "", "", sender=addr(0)) == 2   # no name, no address


def test_a_third_cap_on_removing() -> None:
    g = Gov((20, 10, 10, 10, 10))                  # total 60
    reverts(g.c.propose_remove, addr(0), sender=addr(1), match=THIRD)   # 60 >= 60
    assert g.c.propose_remove(addr(1), sender=addr(0)) == 1            # 30 < 60
    # nor by evidence
    assert g.c.propose_removal_by_evidence(addr(0), sender=REPORTER) == 0


def test_a_third_cap_on_power() -> None:
    g = Gov((25, 10, 10, 10, 10))                  # total 65
    reverts(g.c.propose_power, addr(1), 32, sender=addr(0), match=THIRD)   # +22: 66
    assert g.c.propose_power(addr(1), 31, sender=addr(0)) == 1            # +21: 63
    reverts(g.c.propose_power, addr(0), 3, sender=addr(1), match=THIRD)    # -22
    assert g.c.propose_power(addr(0), 4, sender=addr(1)) == 2             # -21
    reverts(g.c.propose_power, addr(0), 25, sender=addr(1), match="already has this power")
    reverts(g.c.propose_power, addr(0), 0, sender=addr(1), match="a power is")
    reverts(g.c.propose_power, addr(9), 5, sender=addr(1), match="not a validator")
    pid = g.c.propose_power(addr(0), 5, sender=addr(1))
    g.vote([0, 2], pid)                            # 45 of 65
    assert g.events("ValidatorUpdate") == [{"public_key": key(0), "power": 5,
                                            "name": "validator-0", "p2p": ""}]
    assert g.c.member_power(addr(0)) == 5 and g.c.total_power() == 45


# ---------------------------------------------------------------- time and epochs


def test_a_proposal_expires_after_its_ttl(g: Gov) -> None:
    pid = g.add(0, 9, 1)
    created = g.c.proposal(pid)["created"]
    assert created == START
    g.next_block(TTL)               # created + ttl: still open
    assert g.c.status(pid) == OPEN
    g.vote([1], pid)
    g.next_block()                  # created + ttl + 1
    assert g.c.status(pid) == EXPIRED
    reverts(g.c.vote, pid, True, sender=addr(2), match=EXPIRED_REASON)
    assert g.c.proposal(pid)["state"] == OPEN       # expiry is read, never written


def test_a_set_change_voids_older_proposals_of_every_kind() -> None:
    g = Gov((10, 10, 10, 10, 10))
    older_add = g.add(0, 9, 5)
    older_param = g.c.propose_param("max_block_gas", 2_000_000, START + 5, sender=addr(0))
    older_power = g.c.propose_power(addr(2), 12, sender=addr(0))
    change = g.c.propose_remove(addr(4), sender=addr(1))
    g.vote([2, 3, 0], change)
    assert g.c.current_epoch() == 1
    for pid in (older_add, older_param, older_power):
        assert g.c.status(pid) == VOID
        reverts(g.c.vote, pid, True, sender=addr(3), match=CHANGED)
    assert g.c.status(change) == PASSED
    # proposed again, in the new epoch, it can pass
    g.next_block()
    again = g.c.propose_param("max_block_gas", 2_000_000, START + 5, sender=addr(0))
    assert g.c.proposal(again)["epoch"] == 1
    g.vote([1, 2], again)
    assert g.c.status(again) == PASSED


def test_a_parameter_change_voids_nothing(g: Gov) -> None:
    older = g.add(0, 9, 5)
    param = g.c.propose_param("min_gas_price", 3, START + 2, sender=addr(1))
    g.vote([2, 3], param)
    assert g.c.status(param) == PASSED and g.c.current_epoch() == 0
    g.vote([1, 2], older)
    assert g.c.status(older) == PASSED and g.c.member_power(addr(9)) == 5


def test_one_set_change_per_block() -> None:
    g = Gov((10, 10, 10, 10, 10))
    first = g.add(0, 9, 5)
    g.vote([1, 2, 3], first)                        # passes at START
    assert g.c.current_epoch() == 1
    second = g.c.propose_power(addr(1), 12, sender=addr(0))   # same block, new epoch
    g.vote([1, 2], second)                          # 30 of 55
    reverts(g.c.vote, second, True, sender=addr(3), match=ONE_PER_BLOCK)
    assert g.c.status(second) == OPEN and g.c.proposal(second)["yes"] == 30
    assert g.c.vote_of(second, addr(3)) == NO_VOTE  # the reverted vote left nothing
    g.next_block()
    g.c.vote(second, True, sender=addr(3))
    assert g.c.status(second) == PASSED and g.c.member_power(addr(1)) == 12
    # a parameter change is not a set change: it may pass in the same block
    param = g.c.propose_param("min_gas_price", 1, START + 3, sender=addr(0))
    g.vote([1, 2, 3], param)
    assert g.c.status(param) == PASSED


def test_one_set_change_per_block_for_a_proposer_that_passes_alone() -> None:
    g = Gov((100, 10, 10, 10))
    g.add(0, 9, 1)                                  # 100 of 131: still more than 2/3
    reverts(g.add, 0, 8, 1, match=ONE_PER_BLOCK)
    assert g.c.proposal_count() == 1               # the whole proposal reverted
    g.next_block()
    g.add(0, 8, 1)
    assert g.c.member_count() == 6 and g.c.current_epoch() == 2


# ---------------------------------------------------------------- parameters


def test_parameter_proposals(g: Gov) -> None:
    h = START
    reverts(g.c.propose_param, "max_block_txs", 5, h + 2, sender=addr(0),
            match="min_gas_price and max_block_gas")
    reverts(g.c.propose_param, "min_gas_price", 2**63, h + 2, sender=addr(0), match="2**63")
    reverts(g.c.propose_param, "max_block_gas", 999_999, h + 2, sender=addr(0),
            match="1,000,000")
    reverts(g.c.propose_param, "max_block_gas", 2**63, h + 2, sender=addr(0), match="2**63")
    reverts(g.c.propose_param, "min_gas_price", 1, h + 1, sender=addr(0), match="two blocks")
    assert g.c.propose_param("min_gas_price", 0, h + 2, sender=addr(0)) == 1
    assert g.c.propose_param("min_gas_price", 2**63 - 1, h + 2, sender=addr(0)) == 2
    assert g.c.propose_param("max_block_gas", 1_000_000, h + 2, sender=addr(0)) == 3
    late = g.c.propose_param("max_block_gas", 2**63 - 1, h + 50, sender=addr(0))
    p = g.c.proposal(3)
    assert (p["kind"], p["param"], p["value"], p["effective"], p["name"]) == \
        (PARAM, "max_block_gas", 1_000_000, h + 2, "")
    # passed later than its effective height - 2: two blocks after it passed
    g.next_block(1)
    g.vote([1, 2], 1)
    assert g.events("ParamChange") == [{"name": "min_gas_price", "value": 0,
                                        "effective": h + 3}]
    g.next_block(4)
    g.vote([1, 2], 3)
    assert g.events("ParamChange") == [{"name": "max_block_gas", "value": 1_000_000,
                                        "effective": h + 7}]
    assert g.events("ValidatorUpdate") == []
    # passed in time: at its own height
    g.vote([1, 2], late)
    assert g.events("ParamChange") == [{"name": "max_block_gas", "value": 2**63 - 1,
                                        "effective": h + 50}]
    assert g.c.current_epoch() == 0 and g.c.total_power() == 40


# ---------------------------------------------------------------- evidence


def test_evidence_only_from_the_reporter() -> None:
    g = Gov((10, 10, 10, 10, 10))
    for who in (STRANGER, addr(0), DEPLOYER):
        reverts(g.c.propose_removal_by_evidence, addr(4), sender=who, match=ONLY_REPORTER)


def test_evidence_opens_one_removal_without_a_vote() -> None:
    g = Gov((10, 10, 10, 10, 10))
    assert g.c.propose_removal_by_evidence(STRANGER, sender=REPORTER) == 0   # not a member
    assert g.c.last_events == [] and g.c.proposal_count() == 0
    pid = g.c.propose_removal_by_evidence(addr(4), sender=REPORTER)
    assert [n for n, _ in g.c.last_events] == ["Proposed"]
    assert pid == 1
    p = g.c.proposal(pid)
    assert (p["kind"], p["validator"], p["public_key"], p["proposer"], p["yes"], p["no"]) == \
        (REMOVE, addr(4), key(4), REPORTER, 0, 0)
    # no duplicate while it is open
    assert g.c.propose_removal_by_evidence(addr(4), sender=REPORTER) == 0
    assert g.c.proposal_count() == 1
    # another validator's is its own
    assert g.c.propose_removal_by_evidence(addr(3), sender=REPORTER) == 2
    # once it expires, new evidence opens a new one
    g.next_block(TTL + 1)
    assert g.c.propose_removal_by_evidence(addr(4), sender=REPORTER) == 3
    # and once rejected
    g.vote([0, 1], 3, False)
    assert g.c.status(3) == REJECTED
    assert g.c.propose_removal_by_evidence(addr(4), sender=REPORTER) == 4
    g.vote([0, 1, 2], 4)                            # 30 of 50: not yet; the reporter has no vote
    assert g.c.status(4) == OPEN
    g.vote([3], 4)
    assert g.events("ValidatorUpdate") == [{"public_key": key(4), "power": 0,
                                            "name": "validator-4", "p2p": ""}]
    assert g.c.status(4) == PASSED and g.c.member_power(addr(4)) == 0
    # gone: nothing to propose; the floor of 4 keeps the rest
    g.next_block()
    assert g.c.propose_removal_by_evidence(addr(4), sender=REPORTER) == 0
    assert g.c.propose_removal_by_evidence(addr(0), sender=REPORTER) == 0


def test_evidence_in_a_new_epoch_opens_a_new_removal() -> None:
    g = Gov((10, 10, 10, 10, 10, 10))
    first = g.c.propose_removal_by_evidence(addr(5), sender=REPORTER)
    change = g.c.propose_power(addr(0), 11, sender=addr(1))
    g.vote([2, 3, 4, 0], change)
    assert g.c.status(first) == VOID
    assert g.c.propose_removal_by_evidence(addr(5), sender=REPORTER) == first + 2


# ---------------------------------------------------------------- the genesis builder


def test_governance_contract_genesis_entry() -> None:
    validators = [(key(i), 10 + i, f"validator-{i}") for i in range(4)]
    entry = governance_contract(validators, proposal_ttl=50)
    assert set(entry) == {"address", "code", "balance", "storage"}
    assert entry["address"] == address_to_text(GOVERNANCE_ADDRESS)
    assert entry["code"] == compiled("governance").code.hex()
    assert entry["balance"] == "0"
    assert entry == governance_contract(validators, proposal_ttl=50)   # deterministic
    # the storage, placed in a fresh state, is the sealed contract
    env = Env(height=5)
    env.world.set_code(GOVERNANCE_ADDRESS, bytes.fromhex(entry["code"]))
    for k, v in entry["storage"].items():
        env.world.put(b"s" + GOVERNANCE_ADDRESS + bytes.fromhex(k), bytes.fromhex(v))
    c = Contract(env, GOVERNANCE_ADDRESS, compiled("governance"))
    assert c.member_count() == 4 and c.total_power() == 46 and c.ttl() == 50
    assert [c.member_key(addr(i)) for i in range(4)] == [key(i) for i in range(4)]
    reverts(c.genesis_member, key(8), 1, "late", sender=GENESIS_DISTRIBUTOR, match="sealed")
    pid = c.propose_removal_by_evidence(addr(0), sender=EVIDENCE_ADDRESS)
    assert pid == 0                                 # 4 validators: the floor
    pid = c.propose_add(key(8), 1, "new", "n@h:1", sender=addr(3))
    c.vote(pid, True, sender=addr(2))
    c.vote(pid, True, sender=addr(1))               # 13 + 12 + 11 = 36 > 30.7
    assert c.member_power(addr(8)) == 1


def test_the_commerce_genesis_is_unchanged() -> None:
    assert "governance" not in ADDRESSES
    addresses = [e["address"] for e in genesis_contracts()]
    assert address_to_text(GOVERNANCE_ADDRESS) not in addresses and len(addresses) == 4


def test_abi_helpers_know_governance() -> None:
    assert [i["name"] for i in method_abi("governance", "vote")["inputs"]] == \
        ["proposal_id", "yes"]
    assert encode_call("governance", "vote", 3, True)
    assert decode_result("governance", "member_count", (4).to_bytes(1, "big")) == 4
    record = compiled("governance").abi["records"]
    assert "Proposal" in record


# ---------------------------------------------------------------- random runs

POOL = 12                   # keys 0..11: genesis members first, the rest candidates
WHO = st.integers(0, 99)    # GovernanceMachine.actor: mostly a member
POWER_PICK = st.integers(0, 15)   # GovernanceMachine.power
PICK = st.integers(0, 99)         # GovernanceMachine.pick: mostly an open proposal
ACTORS = [*(addr(i) for i in range(POOL)), STRANGER, REPORTER]
M_TTL = 4


class GovernanceMachine(RuleBasedStateMachine):
    """Random proposals, votes, evidence and blocks, by members and by others. A model
    of the rules predicts each call's outcome (ok or revert, and the id it returns);
    the contract's events drive the model's set, and are checked as they come."""

    @initialize(powers=st.lists(st.integers(1, 12), min_size=4, max_size=7)
                | st.tuples(st.integers(4, 7), st.integers(1, 5)).map(lambda t: [t[1]] * t[0]))
    def genesis(self, powers: list[int]) -> None:
        # (equal powers reach the boundaries exactly: 2/3 yes, 1/3 no)
        self.env = Env(height=START)
        self.c = self.env.deploy(compiled("governance"), M_TTL, REPORTER, sender=DEPLOYER)
        self.members: dict[bytes, int] = {}
        for i, p in enumerate(powers):
            self.c.genesis_member(key(i), p, f"v{i}", sender=DEPLOYER)
            self.members[addr(i)] = p
        self.c.seal(sender=DEPLOYER)
        self.floor = min(len(powers), 4)
        self.keys = {addr(i): key(i) for i in range(POOL)}
        self.epoch = 0
        self.changed_at = 0
        self.proposals: dict[int, dict] = {}
        self.by_evidence: dict[bytes, int] = {}
        self.update_heights: set[int] = set()
        self.updates = 0
        self.passes = 0

    # -------------------------------------------------- the model

    @property
    def total(self) -> int:
        return sum(self.members.values())

    def open_now(self, pid: int) -> bool:
        p = self.proposals[pid]
        return (p["state"] == OPEN and p["epoch"] == self.epoch
                and self.env.height <= p["created"] + M_TTL)

    def can_add(self, validator: bytes, power: int) -> bool:
        return validator not in self.members and 0 < power < 2**60 and 3 * power < self.total

    def can_remove(self, validator: bytes) -> bool:
        return (validator in self.members and len(self.members) >= 5
                and 3 * self.members[validator] < self.total)

    def can_power(self, validator: bytes, power: int) -> bool:
        old = self.members.get(validator, 0)
        return old > 0 and 0 < power < 2**60 and power != old and 3 * abs(power - old) < self.total

    def counts(self, voter: bytes, p: dict, yes: bool) -> bool:
        """Whether the vote would go through (False: the pass it triggers reverts)."""
        yes_power = p["yes"] + (self.members[voter] if yes else 0)
        if 3 * yes_power > 2 * self.total and p["kind"] != PARAM:
            return self.changed_at != self.env.height
        return True

    def new(self, kind: int, proposer: bytes, **fields) -> dict:
        return {"kind": kind, "state": OPEN, "epoch": self.epoch, "created": self.env.height,
                "yes": 0, "no": 0, "voters": {}, "proposer": proposer, **fields}

    # -------------------------------------------------- the contract's side

    def run(self, method: str, args: tuple, sender: bytes, expect_ok: bool):
        result = self.c.invoke(self.c.method_abi(method), args, sender=sender, value=0,
                               gas=None)
        ok = result.status == Status.OK
        assert ok == expect_ok, (method, args, sender.hex(), result.reason)
        if ok:
            self.events(result.events)
        return result.value

    def events(self, events) -> None:
        decided: dict[int, int] = {}    # what each vote of this call must have decided
        passed: dict = {}                 # the proposal that passed last
        for name, f in events:
            if name == "Voted":
                p = self.proposals[f["proposal_id"]]
                voter = f["voter"]
                assert voter in self.members and voter not in p["voters"]
                p["voters"][voter] = f["yes"]
                p["yes" if f["yes"] else "no"] += self.members[voter]
                assert (p["yes"], p["no"]) == (f["yes_power"], f["no_power"])
                decided[f["proposal_id"]] = PASSED if 3 * p["yes"] > 2 * self.total \
                    else REJECTED if 3 * p["no"] >= self.total else OPEN
            elif name == "Passed":
                p = self.proposals[f["proposal_id"]]
                # the yes power of the voters, members of this epoch, is more than 2/3
                assert p["epoch"] == self.epoch
                yes = sum(self.members[v] for v, y in p["voters"].items() if y)
                assert 3 * yes > 2 * self.total
                p["state"] = PASSED
                passed = p
                self.passes += 1
            elif name == "Rejected":
                p = self.proposals[f["proposal_id"]]
                no = sum(self.members[v] for v, y in p["voters"].items() if not y)
                assert 3 * no >= self.total and 3 * p["yes"] <= 2 * self.total
                p["state"] = REJECTED
            elif name == "ValidatorUpdate":
                validator = address_of(f["public_key"])
                # the change the proposal that passed asked for
                assert passed["kind"] != PARAM and validator == passed["validator"]
                assert f["power"] == passed["power"]
                assert f["p2p"] == (passed["p2p"] if passed["kind"] == ADD else "")
                old = self.members.get(validator, 0)
                assert 3 * abs(f["power"] - old) < self.total, "a step of a third or more"
                assert self.env.height not in self.update_heights, "two set changes in a block"
                self.update_heights.add(self.env.height)
                if f["power"] == 0:
                    assert len(self.members) >= 5, "below the floor of 4"
                    del self.members[validator]
                else:
                    self.members[validator] = f["power"]
                self.epoch += 1
                self.changed_at = self.env.height
                self.updates += 1
            elif name == "ParamChange":
                assert passed["kind"] == PARAM
                assert (f["name"], f["value"]) == (passed["param"], passed["value"])
                assert f["effective"] == max(passed["effective"], self.env.height + 2)
        for pid, state in decided.items():
            assert self.proposals[pid]["state"] == state, (pid, state)

    # -------------------------------------------------- rules

    def validator(self, i: int, *, member: bool) -> int:
        """A key index: mostly (0..7) a member (``member``) or not, else any."""
        pool = [j for j in range(POOL) if (addr(j) in self.members) == member]
        return pool[i % len(pool)] if i < 8 and pool else i % POOL

    def power(self, pick: int, base: int = 0) -> int:
        """A power for a proposal: small (pick 0..7), or ``base`` moved by about a third
        of the total: up (8..11) or down (12..15) by the smallest step too big for the
        rule, minus 2, minus 1, exactly, plus 1."""
        if pick < 8:
            return pick
        third = -(-self.total // 3)                 # the smallest step that is too big
        step = third + pick % 4 - 2
        return base + step if pick < 12 else max(base - step, 0)

    def actor(self, who: int) -> bytes:
        """Mostly a member (0..89), otherwise anyone else: a candidate, a removed
        member, a stranger or the reporter."""
        members = sorted(self.members)
        if who < 90:
            return members[who % len(members)]
        others = [a for a in ACTORS if a not in self.members]
        return others[who % len(others)]

    def propose(self, method: str, args: tuple, sender: bytes, valid: bool, p: dict):
        ok = valid and sender in self.members and self.counts(sender, p, True)
        pid = len(self.proposals) + 1
        if ok:
            self.proposals[pid] = p
        value = self.run(method, args, sender, ok)
        if ok:
            assert value == pid
        return value

    @rule(kind=st.sampled_from([ADD, REMOVE, POWER, PARAM]), who=WHO, i=st.integers(0, 9),
          power=POWER_PICK, p2p=st.sampled_from(["n@h:1", "", "x" * 128, "x" * 129]),
          name=st.sampled_from(["min_gas_price", "max_block_gas", "max_block_txs"]),
          value=st.sampled_from([0, 999_999, 1_000_000, 2**63 - 1, 2**63]),
          delay=st.integers(0, 4))
    def propose_any(self, kind: int, who: int, i: int, power: int, p2p: str, name: str,
                    value: int, delay: int) -> None:
        """One rule for the four kinds, so that votes are drawn as often as proposals."""
        if kind == ADD:
            self.propose_add(who, i, power, p2p)
        elif kind == REMOVE:
            self.propose_remove(who, i)
        elif kind == POWER:
            self.propose_power(who, i, power)
        else:
            self.propose_param(who, name, value, delay)

    def propose_add(self, who: int, i: int, power: int, p2p: str) -> None:
        sender, i = self.actor(who), self.validator(i, member=False)
        power = self.power(power)
        valid = self.can_add(addr(i), power) and len(p2p) <= 128
        p = self.new(ADD, sender, validator=addr(i), power=power, p2p=p2p)
        self.propose("propose_add", (key(i), power, f"v{i}", p2p), sender, valid, p)

    def propose_remove(self, who: int, i: int) -> None:
        sender, i = self.actor(who), self.validator(i, member=True)
        p = self.new(REMOVE, sender, validator=addr(i), power=0)
        self.propose("propose_remove", (addr(i),), sender, self.can_remove(addr(i)), p)

    def propose_power(self, who: int, i: int, power: int) -> None:
        sender, i = self.actor(who), self.validator(i, member=True)
        power = self.power(power, self.members.get(addr(i), 0))
        p = self.new(POWER, sender, validator=addr(i), power=power)
        self.propose("propose_power", (addr(i), power), sender, self.can_power(addr(i), power),
                     p)

    def propose_param(self, who: int, name: str, value: int, delay: int) -> None:
        sender = self.actor(who)
        valid = delay >= 2 and value < 2**63 and (
            name == "min_gas_price" or (name == "max_block_gas" and value >= 1_000_000))
        p = self.new(PARAM, sender, param=name, value=value, effective=self.env.height + delay)
        self.propose("propose_param", (name, value, self.env.height + delay), sender, valid, p)

    @rule(who=st.sampled_from([REPORTER, REPORTER, STRANGER]), i=st.integers(0, 9))
    def evidence(self, who: bytes, i: int) -> None:
        v = addr(i)
        earlier = self.by_evidence.get(v)
        opens = (v in self.members and not (earlier and self.open_now(earlier))
                 and self.can_remove(v))
        pid = len(self.proposals) + 1
        value = self.run("propose_removal_by_evidence", (v,), who, who == REPORTER)
        if who == REPORTER:
            assert value == (pid if opens else 0)
            if opens:
                self.proposals[pid] = self.new(REMOVE, who, validator=v, power=0)
                self.by_evidence[v] = pid

    @rule(who=WHO, pick=PICK, yes=st.sampled_from([True, True, False]))
    def vote(self, who: int, pick: int, yes: bool) -> None:
        self.vote_as(self.actor(who), self.pick(pick), yes)

    @rule(start=st.integers(0, 9), count=st.integers(1, 6), outsider=st.booleans(),
          pick=PICK, yes=st.lists(st.sampled_from([True, True, False]), min_size=7,
                                      max_size=7))
    def campaign(self, start: int, count: int, outsider: bool, pick: int,
                 yes: list[bool]) -> None:
        """Several members (and maybe someone else) vote on one proposal in a row, in
        one block."""
        pid = self.pick(pick)
        members = sorted(self.members)
        voters = [members[(start + k) % len(members)] for k in range(count)]
        if outsider:
            voters.insert(count // 2, self.actor(90 + start))
        for who, y in zip(voters, yes, strict=False):
            self.vote_as(who, pid, y)

    def pick(self, pick: int) -> int:
        """Mostly a proposal open now (0..89; the latest if none is), otherwise any id, 0
        and the next one too."""
        open_ids = [pid for pid in self.proposals if self.open_now(pid)]
        if pick >= 90:
            return pick % (len(self.proposals) + 2)
        return open_ids[pick % len(open_ids)] if open_ids else max(len(self.proposals), 1)

    def vote_as(self, who: bytes, pid: int, yes: bool) -> None:
        p = self.proposals.get(pid)
        ok = (p is not None and who in self.members and self.open_now(pid)
              and who not in p["voters"] and self.counts(who, p, yes))
        self.run("vote", (pid, yes), who, ok)

    @rule(blocks=st.sampled_from([1, 1, 1, 2, M_TTL]))
    def next_block(self, blocks: int) -> None:
        self.env.height += blocks

    # -------------------------------------------------- invariants

    @invariant()
    def the_set_is_the_models(self) -> None:
        if not hasattr(self, "c"):
            return
        assert self.c.total_power() == self.total
        assert self.c.member_count() == len(self.members) >= self.floor
        assert self.c.current_epoch() == self.epoch
        for a in self.keys:
            assert self.c.member_power(a) == self.members.get(a, 0)
            assert self.c.member_key(a) == (self.keys[a] if a in self.members else b"")

    @invariant()
    def the_proposals_are_the_models(self) -> None:
        if not hasattr(self, "c"):
            return
        assert self.c.proposal_count() == len(self.proposals)
        for pid in list(self.proposals)[-3:]:
            p, q = self.proposals[pid], self.c.proposal(pid)
            assert (q["state"], q["yes"], q["no"], q["epoch"], q["kind"]) == \
                (p["state"], p["yes"], p["no"], p["epoch"], p["kind"])
            want = p["state"] if p["state"] != OPEN else VOID if p["epoch"] != self.epoch \
                else EXPIRED if self.env.height > p["created"] + M_TTL else OPEN
            assert self.c.status(pid) == want
        if self.proposals:                  # every vote on the latest
            p = self.proposals[len(self.proposals)]
            for a in self.keys:
                vote = p["voters"].get(a)
                assert self.c.vote_of(len(self.proposals), a) == \
                    (NO_VOTE if vote is None else YES if vote else NO)


TestGovernance = GovernanceMachine.TestCase
TestGovernance.settings = settings(
    max_examples=100, stateful_step_count=80, deadline=None,
    phases=[Phase.explicit, Phase.reuse, Phase.generate],
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much])


def test_the_machine_reaches_set_changes() -> None:
    """A fixed run is not all reverts: proposals pass, change the set, get rejected."""
    m = GovernanceMachine()
    m.genesis([5, 5, 5, 5, 5, 5])
    for step in range(60):
        i = step % POOL
        if step % 4 == 0:
            m.propose_add(step % 6, 6 + i % 3, 2, "n@h:1")
        elif step % 4 == 1:
            m.propose_remove(step % 6, i)
        elif step % 4 == 2:
            m.propose_power(step % 6, i % 6, 4)
        for voter in range(POOL):
            m.vote_as(addr(voter), max(len(m.proposals) - step % 2, 1), step % 5 != 0)
        m.next_block(1)
        m.the_set_is_the_models()
        m.the_proposals_are_the_models()
    assert m.updates >= 5 and m.passes >= 5
    assert any(p["state"] == REJECTED for p in m.proposals.values())
