"""Community governance of the validator set: proposals, and votes weighted by power.

Members are the validators. Each is identified by the address of its public key (the
first 20 bytes of SHA-256 of the 32-byte key) and has a voting power, its public key
and a name. Genesis names them: the deployer adds each with ``genesis_member`` and then
``seal``s the set, once; after that neither can be called again, and the set changes
only by proposals that pass.

Proposals. Only a member proposes, and only after the seal. A proposal is one of:

1. ADD a validator: a 32-byte public key that is not a member, a power, a name (at
   most 64 bytes) and the p2p address its node is reached at ("nodeid@host:port", at
   most 128 bytes; empty if it gives none);
2. REMOVE a member;
3. POWER: give a member another power (different from its own);
4. PARAM: set a chain parameter from a block height on: "min_gas_price" (below 2**63)
   or "max_block_gas" (1,000,000 to below 2**63), effective at a height at least two
   blocks after the proposal's.

A set change moves less than a third of the total power at a time: 3 x the power added,
removed or changed (the difference) is less than the total power. A removal leaves at
least MIN_VALIDATORS (4) members. A power is 1 to below 2**60; the total power stays at
most 2**60 and the set at most 1024 members (chain/validators.py's limits: a set
beyond them could not be used).

Voting. Only a member votes, once per proposal, yes or no, with all its power; the
proposer's yes is counted when it proposes. A proposal is decided when

* more than two thirds of the total power voted yes (3 x yes > 2 x total): it PASSES
  and is applied in that same call; or
* at least a third voted no (3 x no >= total): it is REJECTED (it can no longer pass).

A vote is refused on a proposal that is decided, that EXPIRED (past its creation
height + the proposal ttl fixed at deploy) or that is VOID: every change of the
validator set starts a new epoch, and the open proposals of an earlier epoch -- made
against another set and other powers -- can no longer be voted on (propose again).

Applying. A set change is checked again against the set as it is (the same limits as
above, the key still not a member for ADD, the validator still a member for REMOVE and
POWER), and at most one set change happens per block: a vote that would pass a second
one in a block reverts, and so does a proposal its proposer's power alone would pass
(vote again, or propose, in the next one). The change starts a new epoch and
emits ValidatorUpdate(public_key, power, name, p2p) -- power 0 for a removal. A
parameter change does not touch the set (nor the epoch): it emits ParamChange(name,
value, effective), effective at the proposed height or two blocks after the one it
passed in, whichever is later.

Evidence. The reporter fixed at deploy (the executor, which checks evidence of a
double vote, from chain.system's EVIDENCE_ADDRESS) may ask for a member's removal with
``propose_removal_by_evidence``. That never reverts for the reporter: when the address
is not a member, a removal of it by evidence is already open in this epoch, or its
removal would break the limits, it returns 0 and changes nothing; otherwise it opens a
REMOVE proposal with the reporter as the proposer and no vote yet, and returns its id.
Members vote on it like any other.

Reading: ``proposal`` (the record; state 0 open, 1 passed, 2 rejected), ``status``
(0 open, 1 passed, 2 rejected, 3 expired, 4 void, 5 no such proposal), the members'
power and key, their count and total power, the epoch, the ttl, each member's vote.
"""

MIN_VALIDATORS: constant(uint) = 4
MAX_VALIDATORS: constant(uint) = 1024
MAX_POWER: constant(uint) = 2**60             # a power is below it
MAX_TOTAL_POWER: constant(uint) = 2**60       # the total power is at most it
MAX_NAME: constant(uint) = 64                 # bytes of UTF-8
MAX_P2P: constant(uint) = 128
MAX_PARAM: constant(uint) = 2**63             # a parameter's value is below it
MIN_BLOCK_GAS: constant(uint) = 1000000
PARAM_DELAY: constant(uint) = 2               # blocks before a parameter takes effect
KEY_SIZE: constant(uint) = 32
NOBODY: constant(Address) = "agora1qqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqry2cu5"  # a param proposal's validator

ADD: constant(uint) = 1
REMOVE: constant(uint) = 2
POWER: constant(uint) = 3
PARAM: constant(uint) = 4

OPEN: constant(uint) = 0
PASSED: constant(uint) = 1
REJECTED: constant(uint) = 2
EXPIRED: constant(uint) = 3
VOID: constant(uint) = 4
UNKNOWN: constant(uint) = 5

NO_VOTE: constant(uint) = 0
VOTED_YES: constant(uint) = 1
VOTED_NO: constant(uint) = 2


class Member(Record):
    power: uint              # 0: not a member
    public_key: bytes
    name: str


class Proposal(Record):
    kind: uint               # 1 add, 2 remove, 3 power, 4 param
    state: uint              # 0 open, 1 passed, 2 rejected (expired, void: see status)
    public_key: bytes        # the validator's key (add, remove, power)
    validator: Address       # its address
    power: uint              # add: its power; power: the new power
    name: str                # add: the validator's name
    p2p: str                 # add: "nodeid@host:port"
    param: str               # param: "min_gas_price" or "max_block_gas"
    value: uint              # param: the new value
    effective: uint          # param: the height it takes effect at (at the earliest)
    proposer: Address
    created: uint            # block height
    epoch: uint              # the epoch it was made in
    yes: uint                # power that voted yes
    no: uint                 # power that voted no


class Proposed(Event):
    proposal_id: uint
    kind: uint
    proposer: Address
    validator: Address
    public_key: bytes
    power: uint
    param: str
    value: uint
    epoch: uint
    expires: uint            # the last height it can be voted on


class Voted(Event):
    proposal_id: uint
    voter: Address
    yes: bool
    yes_power: uint          # the proposal's totals after this vote
    no_power: uint


class Passed(Event):
    proposal_id: uint


class Rejected(Event):
    proposal_id: uint


class ValidatorUpdate(Event):
    public_key: bytes
    power: uint              # 0: removed
    name: str
    p2p: str


class ParamChange(Event):
    name: str
    value: uint
    effective: uint          # block height


members: Map[Address, Member]
n_members: uint
power_sum: uint
epoch: uint
proposal_ttl: uint
changed_at: uint                      # block height of the last set change
proposals: Map[uint, Proposal]
last_proposal: uint                   # ids start at 1
votes: Map[uint, Map[Address, uint]]  # proposal -> member -> 1 yes, 2 no
evidence_removals: Map[Address, uint] # validator -> its latest removal by evidence
deployer: Address
sealed: bool
reporter: Address


def __init__(proposal_ttl: uint, reporter: Address):
    assert proposal_ttl > 0, "the proposal ttl is at least one block"
    self.proposal_ttl = proposal_ttl
    self.reporter = reporter
    self.deployer = msg.sender


# ---------------------------------------------------------------- genesis

@public
def genesis_member(public_key: bytes, power: uint, name: str):
    assert msg.sender == self.deployer, "only the deployer names the genesis validators"
    assert not self.sealed, "the genesis validators are sealed"
    assert len(public_key) == KEY_SIZE, "a public key is 32 bytes"
    validator: Address = self.address_of(public_key)
    assert self.members[validator].power == 0, "already a validator"
    assert power > 0 and power < MAX_POWER, "a power is 1 to below 2**60"
    assert len(name.encode()) <= MAX_NAME, "a name is at most 64 bytes"
    assert self.n_members < MAX_VALIDATORS, "at most 1024 validators"
    assert self.power_sum + power <= MAX_TOTAL_POWER, "the total power is at most 2**60"
    self.members[validator] = Member(power, public_key, name)
    self.n_members += 1
    self.power_sum += power


@public
def seal():
    assert msg.sender == self.deployer, "only the deployer seals the genesis validators"
    assert not self.sealed, "the genesis validators are sealed"
    assert self.n_members > 0, "a validator set has at least one validator"
    self.sealed = True


# ---------------------------------------------------------------- proposals

@public
def propose_add(public_key: bytes, power: uint, name: str, p2p: str) -> uint:
    self.only_member_proposes()
    self.check_add(public_key, power)
    assert len(name.encode()) <= MAX_NAME, "a name is at most 64 bytes"
    assert len(p2p.encode()) <= MAX_P2P, "a p2p address (nodeid@host:port) is at most 128 bytes"
    proposal_id: uint = self.open_proposal(ADD, public_key, self.address_of(public_key),
                                           power, name, p2p, "", 0, 0, msg.sender)
    self.count_vote(proposal_id, msg.sender, True)
    return proposal_id


@public
def propose_remove(validator: Address) -> uint:
    self.only_member_proposes()
    self.check_remove(validator)
    proposal_id: uint = self.open_proposal(REMOVE, self.members[validator].public_key,
                                           validator, 0, "", "", "", 0, 0, msg.sender)
    self.count_vote(proposal_id, msg.sender, True)
    return proposal_id


@public
def propose_power(validator: Address, power: uint) -> uint:
    self.only_member_proposes()
    self.check_power(validator, power)
    proposal_id: uint = self.open_proposal(POWER, self.members[validator].public_key,
                                           validator, power, "", "", "", 0, 0, msg.sender)
    self.count_vote(proposal_id, msg.sender, True)
    return proposal_id


@public
def propose_param(name: str, value: uint, effective: uint) -> uint:
    self.only_member_proposes()
    if name == "min_gas_price":
        assert value < MAX_PARAM, "min_gas_price is below 2**63"
    else:
        assert name == "max_block_gas", "the parameters are min_gas_price and max_block_gas"
        assert value >= MIN_BLOCK_GAS and value < MAX_PARAM, \
            "max_block_gas is 1,000,000 to below 2**63"
    assert effective >= block.height + PARAM_DELAY, \
        "a parameter takes effect two blocks after the proposal at the earliest"
    assert effective < MAX_PARAM, "a parameter takes effect at a height below 2**63"
    proposal_id: uint = self.open_proposal(PARAM, b"", NOBODY, 0, "", "", name, value,
                                           effective, msg.sender)
    self.count_vote(proposal_id, msg.sender, True)
    return proposal_id


@public
def propose_removal_by_evidence(validator: Address) -> uint:
    # Never reverts for the reporter (the evidence is recorded either way): 0 when there
    # is nothing to propose.
    assert msg.sender == self.reporter, "only the evidence recorder may call this"
    if not self.sealed or self.members[validator].power == 0:
        return 0
    earlier: uint = self.evidence_removals[validator]
    if earlier != 0 and self.proposal_status(earlier) == OPEN:
        return 0
    if not self.removable(validator):
        return 0
    proposal_id: uint = self.open_proposal(REMOVE, self.members[validator].public_key,
                                           validator, 0, "", "", "", 0, 0, msg.sender)
    self.evidence_removals[validator] = proposal_id
    return proposal_id


# ---------------------------------------------------------------- votes

@public
def vote(proposal_id: uint, yes: bool):
    assert self.members[msg.sender].power > 0, "only a validator may vote"
    assert proposal_id > 0 and proposal_id <= self.last_proposal, "no such proposal"
    assert self.proposals[proposal_id].state != PASSED, "the proposal already passed"
    assert self.proposals[proposal_id].state != REJECTED, "the proposal was rejected"
    assert self.proposals[proposal_id].epoch == self.epoch, \
        "the validator set changed since this proposal was made; propose it again"
    assert block.height <= self.proposals[proposal_id].created + self.proposal_ttl, \
        "the proposal expired (its creation height + the proposal ttl has passed)"
    assert self.votes[proposal_id][msg.sender] == NO_VOTE, "already voted on this proposal"
    self.count_vote(proposal_id, msg.sender, yes)


# ---------------------------------------------------------------- reading

@view
def proposal(proposal_id: uint) -> Proposal:
    return self.proposals[proposal_id]


@view
def status(proposal_id: uint) -> uint:
    return self.proposal_status(proposal_id)


@view
def member_power(validator: Address) -> uint:
    return self.members[validator].power


@view
def member_key(validator: Address) -> bytes:
    return self.members[validator].public_key


@view
def member_count() -> uint:
    return self.n_members


@view
def total_power() -> uint:
    return self.power_sum


@view
def current_epoch() -> uint:
    return self.epoch


@view
def proposal_count() -> uint:
    return self.last_proposal


@view
def vote_of(proposal_id: uint, voter: Address) -> uint:
    return self.votes[proposal_id][voter]


@view
def ttl() -> uint:
    return self.proposal_ttl


# ---------------------------------------------------------------- helpers

def address_of(public_key: bytes) -> Address:
    return to_address(slice(sha256(public_key), 0, 20))


def only_member_proposes():
    assert self.sealed, "the genesis validators are not sealed yet"
    assert self.members[msg.sender].power > 0, "only a validator may propose"


def third(changed: uint) -> bool:
    # A step moves less than a third of the total power.
    return 3 * changed < self.power_sum


def check_add(public_key: bytes, power: uint):
    assert len(public_key) == KEY_SIZE, "a public key is 32 bytes"
    assert self.members[self.address_of(public_key)].power == 0, "already a validator"
    assert power > 0 and power < MAX_POWER, "a power is 1 to below 2**60"
    assert self.third(power), "a step changes less than a third of the total power"
    assert self.n_members < MAX_VALIDATORS, "at most 1024 validators"
    assert self.power_sum + power <= MAX_TOTAL_POWER, "the total power is at most 2**60"


def check_remove(validator: Address):
    assert self.members[validator].power > 0, "not a validator"
    assert self.n_members >= MIN_VALIDATORS + 1, "a validator set keeps at least 4 validators"
    assert self.third(self.members[validator].power), \
        "a step changes less than a third of the total power"


def removable(validator: Address) -> bool:
    # check_remove, without reverting
    if self.members[validator].power == 0:
        return False
    if self.n_members < MIN_VALIDATORS + 1:
        return False
    return self.third(self.members[validator].power)


def check_power(validator: Address, power: uint):
    old: uint = self.members[validator].power
    assert old > 0, "not a validator"
    assert power > 0 and power < MAX_POWER, "a power is 1 to below 2**60"
    assert power != old, "the validator already has this power"
    if power > old:
        assert self.third(power - old), "a step changes less than a third of the total power"
        assert self.power_sum + (power - old) <= MAX_TOTAL_POWER, \
            "the total power is at most 2**60"
    else:
        assert self.third(old - power), "a step changes less than a third of the total power"


def open_proposal(kind: uint, public_key: bytes, validator: Address, power: uint, name: str,
                  p2p: str, param: str, value: uint, effective: uint,
                  proposer: Address) -> uint:
    self.last_proposal += 1
    proposal_id: uint = self.last_proposal
    self.proposals[proposal_id] = Proposal(
        kind=kind, state=OPEN, public_key=public_key, validator=validator, power=power,
        name=name, p2p=p2p, param=param, value=value, effective=effective,
        proposer=proposer, created=block.height, epoch=self.epoch, yes=0, no=0)
    emit(Proposed(proposal_id, kind, proposer, validator, public_key, power, param, value,
                  self.epoch, block.height + self.proposal_ttl))
    return proposal_id


def count_vote(proposal_id: uint, voter: Address, yes: bool):
    power: uint = self.members[voter].power
    if yes:
        self.votes[proposal_id][voter] = VOTED_YES
        self.proposals[proposal_id].yes += power
    else:
        self.votes[proposal_id][voter] = VOTED_NO
        self.proposals[proposal_id].no += power
    yes_power: uint = self.proposals[proposal_id].yes
    no_power: uint = self.proposals[proposal_id].no
    emit(Voted(proposal_id, voter, yes, yes_power, no_power))
    if 3 * yes_power > 2 * self.power_sum:
        self.proposals[proposal_id].state = PASSED
        emit(Passed(proposal_id))
        self.apply(proposal_id)
    elif 3 * no_power >= self.power_sum:
        self.proposals[proposal_id].state = REJECTED
        emit(Rejected(proposal_id))


def apply(proposal_id: uint):
    kind: uint = self.proposals[proposal_id].kind
    if kind == PARAM:
        effective: uint = self.proposals[proposal_id].effective
        if effective < block.height + PARAM_DELAY:
            effective = block.height + PARAM_DELAY
        emit(ParamChange(self.proposals[proposal_id].param, self.proposals[proposal_id].value,
                         effective))
        return
    assert self.changed_at != block.height, \
        "the validator set already changed in this block; vote again in the next one"
    public_key: bytes = self.proposals[proposal_id].public_key
    validator: Address = self.proposals[proposal_id].validator
    power: uint = self.proposals[proposal_id].power
    if kind == ADD:
        self.check_add(public_key, power)
        name: str = self.proposals[proposal_id].name
        self.members[validator] = Member(power, public_key, name)
        self.n_members += 1
        self.power_sum += power
        emit(ValidatorUpdate(public_key, power, name, self.proposals[proposal_id].p2p))
    elif kind == REMOVE:
        self.check_remove(validator)
        self.power_sum -= self.members[validator].power
        self.n_members -= 1
        emit(ValidatorUpdate(public_key, 0, self.members[validator].name, ""))
        self.members[validator] = Member(0, b"", "")
    else:
        self.check_power(validator, power)
        self.power_sum = self.power_sum - self.members[validator].power + power
        self.members[validator].power = power
        emit(ValidatorUpdate(public_key, power, self.members[validator].name, ""))
    self.epoch += 1
    self.changed_at = block.height


def proposal_status(proposal_id: uint) -> uint:
    if proposal_id == 0 or proposal_id > self.last_proposal:
        return UNKNOWN
    state: uint = self.proposals[proposal_id].state
    if state != OPEN:
        return state
    if self.proposals[proposal_id].epoch != self.epoch:
        return VOID
    if block.height > self.proposals[proposal_id].created + self.proposal_ttl:
        return EXPIRED
    return OPEN
