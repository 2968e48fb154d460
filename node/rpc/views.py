"""The API's result models (pydantic): each method's answer is one of these, dumped to
JSON, and the same models give the OpenRPC document its result schemas.

Conventions (DESIGN.md): binary values are lowercase hex, addresses ``agora1...``,
amounts decimal strings (a 256-bit balance does not fit every client's JSON number),
heights and counts plain integers. Contract events and return values are decoded by
the ABI where the contract is known (``name``/``fields``), with the raw bytes beside.
Each ``of(...)`` builds a view from the chain types.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from chain.address import address_to_text
from chain.block import Block, CommitCertificate, Event, Header, Receipt, ReceiptStatus
from chain.merkle import InclusionProof
from chain.tx import Call, Deploy, Transaction, Transfer
from storage.proof import StateProof

from ..chainview import ChainView

# What the strings are, for the OpenRPC schemas only (never checked when a view is built).
#: Lowercase hex of whole bytes.
Hex = Annotated[str, Field(json_schema_extra={"pattern": "^([0-9a-f]{2})*$"})]
#: A 20-byte address as Bech32m text.
Address = Annotated[str, Field(json_schema_extra={"pattern": "^agora1[02-9ac-hj-np-z]{38}$"})]
#: A non-negative integer as a decimal string.
Amount = Annotated[str, Field(json_schema_extra={"pattern": "^[0-9]+$"})]


class View(BaseModel):
    # Every field is in every answer (defaults included), so the result schemas say
    # each is required.
    model_config = ConfigDict(frozen=True, json_schema_serialization_defaults_required=True)


# ---------------------------------------------------------------- blocks


class HeaderView(View):
    hash: Hex
    chain_id: str
    height: int
    time_ms: int
    prev_hash: Hex
    tx_root: Hex
    receipts_root: Hex
    state_root: Hex
    validators_hash: Hex
    next_validators_hash: Hex
    proposer: Address
    tx_count: int
    last_commit_hash: Hex
    raw: Hex = Field(description="The canonical encoding (what the hash is of).")

    @classmethod
    def of(cls, h: Header) -> HeaderView:
        return cls(
            hash=h.hash.hex(), chain_id=h.chain_id, height=h.height, time_ms=h.time_ms,
            prev_hash=h.prev_hash.hex(), tx_root=h.tx_root.hex(),
            receipts_root=h.receipts_root.hex(), state_root=h.state_root.hex(),
            validators_hash=h.validators_hash.hex(),
            next_validators_hash=h.next_validators_hash.hex(),
            proposer=address_to_text(h.proposer), tx_count=h.tx_count,
            last_commit_hash=h.last_commit_hash.hex(), raw=h.encode().hex())


class CommitSigView(View):
    validator: Address
    signature: Hex


class CommitView(View):
    height: int
    view: int
    block_hash: Hex
    signatures: list[CommitSigView]
    raw: Hex

    @classmethod
    def of(cls, c: CommitCertificate) -> CommitView:
        return cls(height=c.height, view=c.view, block_hash=c.block_hash.hex(),
                   signatures=[CommitSigView(validator=address_to_text(s.validator),
                                             signature=s.signature.hex())
                               for s in c.signatures],
                   raw=c.encode().hex())


class TransferView(View):
    type: Literal["transfer"] = "transfer"
    to: Address
    amount: Amount


class CallView(View):
    type: Literal["call"] = "call"
    contract: Address
    contract_name: str | None = Field(None, description="Set when the node knows the ABI.")
    method: str
    args: list[Hex]
    decoded_args: dict[str, Any] | None = Field(None, description="Decoded by the ABI.")
    value: Amount


class DeployView(View):
    type: Literal["deploy"] = "deploy"
    code_bytes: int
    value: Amount


ActionView = Annotated[TransferView | CallView | DeployView, Field(discriminator="type")]


class TxView(View):
    hash: Hex
    chain_id: str
    sender: Address
    nonce: int
    gas_limit: int
    gas_price: int
    action: ActionView
    memo: str
    raw: Hex

    @classmethod
    def of(cls, tx: Transaction, chain: ChainView | None = None) -> TxView:
        return cls.model_validate(tx_json(tx, chain))


def tx_json(tx: Transaction, chain: ChainView | None = None) -> dict[str, Any]:
    """A transaction as :class:`TxView` dumps it, built straight as JSON values: a
    block of thousands is rendered several times faster than through the model (a
    test holds the two equal)."""
    action = tx.action
    act: dict[str, Any]
    if type(action) is Transfer:
        act = {"type": "transfer", "to": address_to_text(action.to),
               "amount": str(action.amount)}
    elif type(action) is Call:
        from vm.executor import decode_args
        try:
            args = decode_args(action.args)
        except Exception:  # noqa: BLE001 - a malformed args blob is shown raw
            args = []
        known = chain.contracts.get(action.contract) if chain is not None else None
        decoded = None
        if known is not None:
            spec = known.method(action.method)
            if spec is not None and len(spec["inputs"]) == len(args):
                from vm.compiler.abi import AbiError, decode_value

                from ..chainview import abi_to_json
                try:
                    decoded = {i["name"]: abi_to_json(i["type"], decode_value(i["type"], a))
                               for i, a in zip(spec["inputs"], args, strict=True)}
                except (AbiError, AssertionError):
                    decoded = None
        act = {"type": "call", "contract": address_to_text(action.contract),
               "contract_name": known.name if known else None, "method": action.method,
               "args": [a.hex() for a in args], "decoded_args": decoded,
               "value": str(action.value)}
    else:
        assert type(action) is Deploy
        act = {"type": "deploy", "code_bytes": len(action.code), "value": str(action.value)}
    return {"hash": tx.hash.hex(), "chain_id": tx.chain_id,
            "sender": address_to_text(tx.sender_address), "nonce": tx.nonce,
            "gas_limit": tx.gas_limit, "gas_price": tx.gas_price, "action": act,
            "memo": tx.memo, "raw": tx.encode().hex()}


class EventView(View):
    contract: Address
    contract_name: str | None = Field(None, description="Set when the node knows the ABI.")
    name: str
    fields: dict[str, Any] | None = Field(None, description="Decoded by the ABI.")
    data: Hex

    @classmethod
    def of(cls, e: Event, chain: ChainView) -> EventView:
        contract_name, fields = chain.decode_event(e)
        return cls(contract=address_to_text(e.contract), contract_name=contract_name,
                   name=e.name, fields=fields, data=e.data.hex())


class ReceiptView(View):
    status: str = Field(description="ok, reverted, out_of_gas or error")
    gas_used: int
    return_data: Hex
    return_value: Any = Field(None, description="The return data decoded by the ABI.")
    reason: str
    events: list[EventView]

    @classmethod
    def of(cls, r: Receipt, chain: ChainView, tx: Transaction | None = None) -> ReceiptView:
        value = None
        if tx is not None and type(tx.action) is Call and r.status == ReceiptStatus.OK:
            known = chain.contracts.get(tx.action.contract)
            if known is not None:
                value = chain.decode_result(known, tx.action.method, r.return_data)
        return cls(status=ReceiptStatus.NAMES.get(r.status, str(r.status)),
                   gas_used=r.gas_used, return_data=r.return_data.hex(), return_value=value,
                   reason=r.reason, events=[EventView.of(e, chain) for e in r.events])


class BlockView(View):
    hash: Hex
    header: HeaderView
    txs: list[TxView]
    last_commit: CommitView | None

    @classmethod
    def of(cls, block: Block, chain: ChainView) -> BlockView:
        return cls.model_validate(block_json(block, chain))


def block_json(block: Block, chain: ChainView) -> dict[str, Any]:
    """A block as :class:`BlockView` dumps it (its transactions through :func:`tx_json`)."""
    return {"hash": block.hash.hex(),
            "header": HeaderView.of(block.header).model_dump(mode="json"),
            "txs": [tx_json(tx, chain) for tx in block.txs],
            "last_commit": (CommitView.of(block.last_commit).model_dump(mode="json")
                            if block.last_commit else None)}


class InclusionProofView(View):
    """An RFC 6962 audit path: leaf ``index`` of ``size`` leaves."""

    index: int
    size: int
    path: list[Hex]

    @classmethod
    def of(cls, p: InclusionProof) -> InclusionProofView:
        return cls(index=p.index, size=p.size, path=[s.hex() for s in p.path])


class TxResultView(View):
    hash: Hex
    height: int
    index: int
    tx: TxView
    receipt: ReceiptView
    proof: InclusionProofView | None = Field(
        None, description="The tx's inclusion proof under the block's tx_root (prove=true).")
    header: HeaderView | None = None


# ---------------------------------------------------------------- node


class StatusView(View):
    chain_id: str
    node_id: Hex
    moniker: str
    mode: str
    height: int
    latest_block_hash: Hex
    latest_block_time_ms: int
    state_root: Hex
    syncing: bool
    peers: int
    validator: Address | None
    mempool: dict[str, int]
    genesis_hash: Hex


class HealthView(View):
    healthy: bool
    height: int
    syncing: bool
    peers: int
    last_block_age_ms: int
    problems: list[str]


class PeerView(View):
    node_id: Hex
    direction: str = Field(description="inbound or outbound")
    address: str | None
    validator: Address | None
    connected_ms: int
    height: int | None = None


class NetInfoView(View):
    node_id: Hex
    listen: str
    peers: list[PeerView]
    inbound: int
    outbound: int


class ValidatorView(View):
    address: Address
    public_key: Hex
    power: int
    name: str
    p2p: str = Field("", description="The node address (id@host:port) the validator "
                                     "announced when it was voted in; empty for genesis'.")


class ValidatorsView(View):
    height: int
    hash: Hex
    total_power: int
    since: int = Field(description="The height this set has been in force from.")
    validators: list[ValidatorView]


# ---------------------------------------------------------------- governance


class ProposalView(View):
    """A proposal of the governance contract (governance.agc Proposal), with its status
    at the answer's height."""

    id: int
    kind: str = Field(description="add, remove, power or param")
    status: str = Field(description="open, passed, rejected, expired (its ttl ran out) or "
                                    "void (the validator set changed since it was made)")
    validator: Address | None = Field(description="The validator it adds, removes or "
                                                  "re-weights; null for a param proposal.")
    validator_name: str = Field(description="add: the name proposed; remove and power: the "
                                            "validator's name in the set.")
    public_key: Hex = Field(description="The validator's key; empty for a param proposal.")
    power: int = Field(description="add: its power; power: the new power; otherwise 0.")
    name: str = Field(description="add: the name proposed (as stored).")
    p2p: str = Field(description="add: the node address it announced (nodeid@host:port).")
    param: str = Field(description="param: min_gas_price or max_block_gas.")
    value: Amount = Field(description="param: the new value.")
    effective: int = Field(description="param: the height asked for (it takes effect there, "
                                       "or two blocks after it passes if that is later).")
    proposer: Address = Field(description="A validator, or the evidence address for a "
                                          "removal proposed by evidence of a double vote.")
    created: int = Field(description="The height of the block that made it.")
    expires: int = Field(description="The last height it can be voted on (created + ttl).")
    epoch: int = Field(description="The governance epoch it was made in.")
    yes_power: int
    no_power: int
    total_power: int = Field(description="The total power of the governing set now.")
    votes_needed_power: int | None = Field(description=(
        "The yes power still needed to pass it: the least P with 3 x (yes + P) > 2 x "
        "total_power; 0 once passed, null when it can no longer pass (rejected, "
        "expired, void)."))


class ProposalsView(View):
    state: str | None = Field(description="The filter asked for.")
    items: list[ProposalView] = Field(description="Newest first.")
    next: str | None = Field(None, description="Pass as `before` for the next page.")
    count: int = Field(description="Proposals ever made (their ids are 1..count).")
    epoch: int = Field(description="The current governance epoch.")
    ttl: int = Field(description="Heights a proposal stays open after its block.")
    members: int = Field(description="Validators in the governing set.")
    total_power: int
    height: int = Field(description="The state read.")


class EvidenceView(View):
    """Evidence of a double vote recorded on chain (an Equivocation event of the
    evidence address), and the removal it proposed."""

    height: int = Field(description="The block that recorded it.")
    tx_index: int
    tx_hash: Hex
    time_ms: int
    validator: Address
    validator_name: str = Field(description="Its name in the validator set of the height it "
                                            "signed at.")
    signed_height: int = Field(description="The height it signed two messages at.")
    view: int
    kind: str = Field(description="What it signed twice: proposal, prepare or commit.")
    hash_a: Hex
    hash_b: Hex
    proposal_id: int | None = Field(description=(
        "The removal proposal the evidence opened (a governance Proposed event of the "
        "same transaction); null when none was opened (the validator was gone, a removal "
        "of it was open already, or removing it would break the set's limits)."))
    raw: Hex = Field(description="The evidence's canonical encoding (chain.evidence "
                                 "DoubleSign).")


class EvidenceListView(View):
    validator: Address | None
    from_height: int
    to_height: int
    items: list[EvidenceView] = Field(description="Newest first.")
    next: str | None = Field(None, description="Pass as `before` for the next page.")
    height: int = Field(description="The latest height the node has indexed.")


class MempoolView(View):
    count: int = Field(description="Transactions waiting.")
    bytes: int
    ready: int = Field(description="Those whose nonce follows on: the next block's pick.")
    queued: int = Field(description="Those waiting for an earlier nonce.")
    senders: int
    max_txs: int
    max_bytes: int


# ---------------------------------------------------------------- transactions


class BroadcastView(View):
    hash: Hex


class BroadcastItemView(View):
    hash: Hex | None = None
    error: dict[str, Any] | None = Field(
        None, description="{code, message, data} when this transaction was refused.")


class BroadcastCommitView(View):
    hash: Hex
    height: int
    index: int
    receipt: ReceiptView


# ---------------------------------------------------------------- state


class AccountView(View):
    address: Address
    balance: Amount
    nonce: int
    pending_nonce: int
    height: int
    is_contract: bool


class HistoryItemView(View):
    hash: Hex
    height: int
    index: int


class HistoryView(View):
    address: Address
    items: list[HistoryItemView]
    next: str | None = Field(None, description="Pass as `before` for the next page.")


class TokenBalanceView(View):
    address: Address
    token: Address
    balance: Amount
    height: int


class CallResultView(View):
    contract: Address
    contract_name: str
    method: str
    height: int
    status: str
    gas_used: int
    value: Any = Field(None, description="The return value decoded by the ABI.")
    return_data: Hex
    reason: str
    events: list[EventView]


class ContractView(View):
    name: str
    address: Address
    abi: dict[str, Any]


class StateProofView(View):
    key: Hex
    value: Hex | None
    height: int
    state_root: Hex
    proof: Hex = Field(description="The canonical encoding of the state proof.")

    @classmethod
    def of(cls, key: bytes, value: bytes | None, height: int, root: bytes,
           proof: StateProof) -> StateProofView:
        return cls(key=key.hex(), value=None if value is None else value.hex(),
                   height=height, state_root=root.hex(), proof=proof.encode().hex())
