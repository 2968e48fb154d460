"""The reward token: community members earn it for reviews and referrals, and spend or
transfer it like any ERC-20 token.

ERC-20 conventions (balance_of, transfer, approve, transfer_from, allowance,
total_supply, name, symbol, decimals, Transfer and Approval events), plus
transfer_and_call in the style of ERC-1363: tokens move to a contract and the
contract is told in the same transaction, so a buyer can pay an escrow order in
tokens with one transaction. Only the escrow and reviews contracts mint (and genesis,
through the initial holder given at deploy).
"""

NAME: constant(str) = "Agora Reward"
SYMBOL: constant(str) = "AGR"
DECIMALS: constant(uint) = 18
NOBODY: constant(Address) = "agora1qqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqry2cu5"  # mints come from here

balances: Map[Address, uint]
allowances: Map[Address, Map[Address, uint]]
supply: uint
minters: Map[Address, bool]


class Transfer(Event):
    sender: Address
    receiver: Address
    amount: uint


class Approval(Event):
    owner: Address
    spender: Address
    amount: uint


class TokenReceiver(Interface):
    def on_token_received(sender: Address, amount: uint, data: bytes) -> bool: ...


def __init__(escrow: Address, reviews: Address, holder: Address, initial: uint):
    self.minters[escrow] = True
    self.minters[reviews] = True
    if initial > 0:
        self.mint_to(holder, initial)


# ---------------------------------------------------------------- reading

@view
def name() -> str:
    return NAME


@view
def symbol() -> str:
    return SYMBOL


@view
def decimals() -> uint:
    return DECIMALS


@view
def total_supply() -> uint:
    return self.supply


@view
def balance_of(owner: Address) -> uint:
    return self.balances[owner]


@view
def allowance(owner: Address, spender: Address) -> uint:
    return self.allowances[owner][spender]


@view
def is_minter(account: Address) -> bool:
    return self.minters[account]


# ---------------------------------------------------------------- moving tokens

@public
def transfer(receiver: Address, amount: uint) -> bool:
    self.move(msg.sender, receiver, amount)
    return True


@public
def approve(spender: Address, amount: uint) -> bool:
    # Set, not add: the owner states the whole allowance each time.
    self.allowances[msg.sender][spender] = amount
    emit(Approval(msg.sender, spender, amount))
    return True


@public
def transfer_from(owner: Address, receiver: Address, amount: uint) -> bool:
    assert self.allowances[owner][msg.sender] >= amount, "allowance exceeded"
    self.allowances[owner][msg.sender] -= amount
    self.move(owner, receiver, amount)
    return True


@public
def transfer_and_call(receiver: Address, amount: uint, data: bytes) -> bool:
    # The receiving contract learns of the payment in the same transaction and may
    # refuse it (returning False or reverting undoes the transfer too).
    self.move(msg.sender, receiver, amount)
    accepted: bool = TokenReceiver(receiver).on_token_received(msg.sender, amount, data)
    assert accepted, "the receiver refused the tokens"
    return True


# ---------------------------------------------------------------- minting

@public
def mint(receiver: Address, amount: uint):
    assert self.minters[msg.sender], "only the escrow and reviews contracts mint"
    self.mint_to(receiver, amount)


def mint_to(receiver: Address, amount: uint):
    self.supply += amount
    self.balances[receiver] += amount
    emit(Transfer(NOBODY, receiver, amount))


def move(sender: Address, receiver: Address, amount: uint):
    assert self.balances[sender] >= amount, "insufficient balance"
    self.balances[sender] -= amount
    self.balances[receiver] += amount
    emit(Transfer(sender, receiver, amount))
