"""Accounts and contracts in the committed state: ``account``, ``account_history``,
``token_balance``, ``call`` (a read-only contract call) and ``contracts``."""

from __future__ import annotations

from typing import Annotated, Any

from pydantic import Field, StrictInt, StrictStr

from chain.address import address_to_text
from chain.block import ReceiptStatus
from chain.system import TOKEN_ADDRESS
from vm.compiler.abi import encode_value
from vm.world import CODE

from ...chainview import CALL_GAS_LIMIT, CallOutcome, ChainView, KnownContract
from ..context import RPCContext
from ..protocol import Params, cannot_answer, rpc_method
from ..views import (
    AccountView,
    CallResultView,
    ContractView,
    EventView,
    HistoryItemView,
    HistoryView,
    TokenBalanceView,
)
from .common import AddressText, Height, Limit, answering, page_size


class AccountParams(Params):
    address: AddressText
    height: Height | None = None


@rpc_method("account", AccountParams, AccountView)
async def account(ctx: RPCContext, p: AccountParams) -> AccountView:
    """Balance and nonce in the committed state (or at a recent ``height``);
    ``pending_nonce`` is the nonce the sender's next transaction should use, counting
    those waiting in the mempool."""
    address: bytes = p.address  # type: ignore[assignment]
    with answering():
        nonce, balance, height = ctx.chain.account(address, p.height)
        is_contract = ctx.chain.state_value(CODE + address, height) is not None
    return AccountView(address=address_to_text(address), balance=str(balance), nonce=nonce,
                       pending_nonce=max(nonce, ctx.pending_nonce(address)), height=height,
                       is_contract=is_contract)


class HistoryParams(Params):
    address: AddressText
    limit: Limit | None = None
    before: Annotated[StrictStr, Field(pattern=r"^\d{1,19}:\d{1,10}$")] | None = Field(
        None, description="The `next` of the previous page (height:index).")


@rpc_method("account_history", HistoryParams, HistoryView)
async def account_history(ctx: RPCContext, p: HistoryParams) -> HistoryView:
    """Transactions that touched an account (sent, received, or a contract it called),
    newest first, a page at a time."""
    address: bytes = p.address  # type: ignore[assignment]
    limit = page_size(p.limit, ctx.limits.max_page)
    before = None
    if p.before is not None:
        h, i = p.before.split(":")
        before = (int(h), int(i))
        if before[0] >= 1 << 63 or before[1] >= 1 << 32:
            raise cannot_answer("before: out of range")
    entries = ctx.chain.history(address, limit + 1, before)
    more = len(entries) > limit
    entries = entries[:limit]
    return HistoryView(
        address=address_to_text(address),
        items=[HistoryItemView(hash=e.tx_hash.hex(), height=e.height, index=e.index)
               for e in entries],
        next=f"{entries[-1].height}:{entries[-1].index}" if more else None)


class TokenBalanceParams(Params):
    address: AddressText
    height: Height | None = None


@rpc_method("token_balance", TokenBalanceParams, TokenBalanceView)
async def token_balance(ctx: RPCContext, p: TokenBalanceParams) -> TokenBalanceView:
    """An account's reward-token balance (the token contract's ``balance_of``)."""
    address: bytes = p.address  # type: ignore[assignment]
    with answering():
        token = ctx.chain.contract("token")
        out = ctx.chain.call(token.address, "balance_of", [encode_value("Address", address)],
                             height=p.height)
    if out.status != ReceiptStatus.OK:
        raise cannot_answer(f"the token contract refused: {out.reason}")
    return TokenBalanceView(address=address_to_text(address),
                            token=address_to_text(TOKEN_ADDRESS),
                            balance=str(int.from_bytes(out.data, "big")), height=out.height)


class CallParams(Params):
    contract: Annotated[StrictStr, Field(max_length=90)] = Field(
        description="A known contract's name (token, catalog, escrow, reviews) or address.")
    method: Annotated[StrictStr, Field(min_length=1, max_length=64)]
    args: list[Any] | dict[str, Any] = Field(
        default_factory=list,
        description="The method's arguments by position or by name, in the API's JSON "
                    "conventions (integers as numbers or decimal strings, addresses as "
                    "agora1..., bytes as hex).")
    sender: AddressText | None = Field(None, description="msg.sender of the call.")
    height: Height | None = None
    gas: Annotated[StrictInt, Field(ge=1, le=CALL_GAS_LIMIT)] = CALL_GAS_LIMIT
    value: Annotated[StrictStr, Field(max_length=78, pattern="^[0-9]+$")] = Field(
        "0", description="Coin sent with the call (base units, decimal string), paid "
                         "from the sender's balance as a transaction would: a wallet "
                         "tries a payable method this way before signing.")
    time_ms: Annotated[StrictInt, Field(ge=0, lt=1 << 63)] | None = Field(
        None, description="The block time the call sees (default: the state's block's). "
                          "A wallet passes its clock, as the next block will carry it, "
                          "so a deadline that has passed since the last block counts.")


@rpc_method("call", CallParams, CallResultView)
async def call(ctx: RPCContext, p: CallParams) -> CallResultView:
    """Run a contract method read-only against the latest (or a recent) state: the
    arguments encoded by the ABI, the result decoded; nothing is written and nobody
    pays. Gas is bounded by the node. A revert is answered as a result with status
    ``reverted`` and the reason, so a wallet can show it before signing anything."""
    chain = ctx.chain
    with answering():
        known = chain.contract(p.contract)
        args = chain.encode_args(known, p.method, p.args)
        out = chain.call(known.address, p.method, args, height=p.height,
                         sender=p.sender if p.sender is not None else bytes(20),  # type: ignore[arg-type]
                         gas=p.gas, value=int(p.value), time_ms=p.time_ms)
    return call_result(chain, known, p.method, out)


def call_result(chain: ChainView, known: KnownContract, method: str,
                out: CallOutcome) -> CallResultView:
    """A read-only call's outcome as the API shows it (also the light node's)."""
    ok = out.status == ReceiptStatus.OK
    return CallResultView(
        contract=address_to_text(known.address), contract_name=known.name, method=method,
        height=out.height, status=ReceiptStatus.NAMES.get(out.status, str(out.status)),
        gas_used=out.gas_used, value=chain.decode_result(known, method, out.data) if ok else None,
        return_data=out.data.hex(), reason=out.reason,
        events=[EventView.of(e, chain) for e in out.events] if ok else [])


@rpc_method("contracts", Params, list[ContractView])
async def contracts(ctx: RPCContext, _: Params) -> list[ContractView]:
    """The genesis contracts this node knows: name, address and ABI."""
    return [ContractView(name=c.name, address=address_to_text(c.address), abi=c.abi)
            for c in ctx.chain.contracts.values()]
