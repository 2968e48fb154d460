"""The reward token: what merchants pay commissions in, and what anyone can spend at any
merchant, transfer, or turn back into coin.

Backed one to one (property 1): a token exists only for a coin held here. Tokens are
minted only by the escrow, against the coin it pays in with them (a merchant's
commissions out of an order's proceeds), and by genesis against the genesis coin sent
to the constructor. Any holder may ``redeem`` tokens for the coin behind them. So the
supply equals the coin reserve, can never outgrow the coin that exists, and no
arithmetic on it can overflow (property 3): every balance is at most the supply, and
the supply at most all the coin there is. (Coin can reach this contract without tokens
only if another contract pushes it here with ``send``, on purpose: that over-backs the
token and mints nothing. A transfer transaction to a contract is refused.)

ERC-20 conventions: balance_of, transfer, approve, transfer_from, allowance,
total_supply, name, symbol, decimals, Transfer and Approval events, plus
increase_allowance / decrease_allowance (so a change of allowance cannot be raced) and
transfer_and_call in the style of ERC-1363: tokens move to a contract and the contract
is told in the same transaction (that is how an order is paid in tokens).

Tokens never vanish by mistake: a transfer to the zero address is refused (``redeem``
is how tokens leave), and so is a plain transfer to a commerce contract, which could
not tell whose tokens they are: those take tokens only through transfer_and_call.
"""

NAME: constant(str) = "Agora Reward"
SYMBOL: constant(str) = "AGR"
DECIMALS: constant(uint) = 18
NOBODY: constant(Address) = "agora1qqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqry2cu5"  # mints come from here

balances: Map[Address, uint]
allowances: Map[Address, Map[Address, uint]]
supply: uint
minters: Map[Address, bool]
call_only: Map[Address, bool]   # contracts that take tokens only through transfer_and_call


class Transfer(Event):
    sender: Address
    receiver: Address
    amount: uint


class Approval(Event):
    owner: Address
    spender: Address
    amount: uint


class Redeemed(Event):
    holder: Address
    amount: uint


class TokenReceiver(Interface):
    def on_token_received(sender: Address, amount: uint, data: bytes) -> bool: ...


@payable
def __init__(escrow: Address, catalog: Address, reviews: Address, holder: Address):
    # The coin sent here backs the first tokens, all given to `holder` (genesis).
    self.minters[escrow] = True
    self.call_only[escrow] = True
    self.call_only[catalog] = True
    self.call_only[reviews] = True
    self.call_only[self.address] = True
    if msg.value > 0:
        self.mint_to(holder, msg.value)


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
def reserve() -> uint:
    # The coin that backs the supply: never less than it.
    return self.balance


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
    self.check_receiver(receiver)
    self.move(msg.sender, receiver, amount)
    return True


@public
def approve(spender: Address, amount: uint) -> bool:
    # Sets the whole allowance. To change one that may be in use, increase_allowance
    # and decrease_allowance cannot be raced by the spender.
    self.allowances[msg.sender][spender] = amount
    emit(Approval(msg.sender, spender, amount))
    return True


@public
def increase_allowance(spender: Address, added: uint) -> bool:
    self.allowances[msg.sender][spender] += added
    emit(Approval(msg.sender, spender, self.allowances[msg.sender][spender]))
    return True


@public
def decrease_allowance(spender: Address, removed: uint) -> bool:
    assert self.allowances[msg.sender][spender] >= removed, "allowance below zero"
    self.allowances[msg.sender][spender] -= removed
    emit(Approval(msg.sender, spender, self.allowances[msg.sender][spender]))
    return True


@public
def transfer_from(owner: Address, receiver: Address, amount: uint) -> bool:
    assert self.allowances[owner][msg.sender] >= amount, "allowance exceeded"
    self.check_receiver(receiver)
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


# ---------------------------------------------------------------- coin in, coin out

@public
@payable
def mint(receiver: Address, amount: uint):
    # Only the escrow, and only against the same amount of coin, paid in with the call.
    assert self.minters[msg.sender], "only the escrow mints"
    assert msg.value == amount, "a token is minted only against the same amount of coin"
    assert receiver != NOBODY, "mint to an account"
    self.mint_to(receiver, amount)


@public
def redeem(amount: uint):
    # Tokens back into the coin behind them.
    assert self.balances[msg.sender] >= amount, "insufficient balance"
    self.balances[msg.sender] -= amount
    self.supply -= amount
    send(msg.sender, amount)
    emit(Transfer(msg.sender, NOBODY, amount))
    emit(Redeemed(msg.sender, amount))


# ---------------------------------------------------------------- helpers

def mint_to(receiver: Address, amount: uint):
    self.supply += amount
    self.balances[receiver] += amount
    emit(Transfer(NOBODY, receiver, amount))


def move(sender: Address, receiver: Address, amount: uint):
    assert self.balances[sender] >= amount, "insufficient balance"
    self.balances[sender] -= amount
    self.balances[receiver] += amount
    emit(Transfer(sender, receiver, amount))


def check_receiver(receiver: Address):
    assert receiver != NOBODY, "tokens sent to the zero address would be lost: redeem them"
    assert not self.call_only[receiver], \
        "this contract takes tokens only through transfer_and_call"
