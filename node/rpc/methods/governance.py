"""Validator-set governance: ``proposals`` (the governance contract's proposals, with
their status and the votes they still need) and ``evidence`` (double votes recorded on
chain, and the removals they proposed).

=========  ==================================================================
method     answers with
=========  ==================================================================
proposals  the governance contract's proposals, newest first (optionally only
           those of one status), each with its tallies, its expiry and the yes
           power it still needs, read at the latest height
evidence   the Equivocation events of the evidence address (optionally of one
           validator), newest first, each with the removal proposal its
           transaction opened, from the node's index
=========  ==================================================================

Cost. ``proposals`` runs five of the governance contract's views (count, epoch, ttl,
members, total power) and reads each proposal it looks at straight from the state (one
key: the contract's ``proposals[id]`` record, decoded as its ``proposal`` view would
return it, no VM run); it looks at most :data:`SCAN` proposals per request, so a filter
that matches few of many answers a page with ``next`` set where it stopped.
``evidence`` reads the index: one key per event, plus the transaction's receipt for the
proposal id; with a ``validator`` filter it reads at most :data:`SCAN` events per
request (evidence is rare: a chain holds a handful), with ``next`` where it stopped.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

import msgpack
from pydantic import Field, StrictInt

from chain.address import address_to_text
from chain.errors import DecodeError
from chain.evidence import KIND_NAMES, DoubleSign
from chain.system import EVIDENCE_ADDRESS, GOVERNANCE_ADDRESS
from vm.compiler.types import name_key
from vm.world import RECORD, STORAGE, decode_record

from ...chainview import KnownContract, NotFound
from ..context import RPCContext
from ..protocol import Params, cannot_answer, rpc_method
from ..views import EvidenceListView, EvidenceView, ProposalsView, ProposalView
from .commerce import IdCursor, PosCursor, _id_cursor, _pos_cursor, _pos_text
from .common import AddressText, Limit, answering, page_size

#: The most proposals (or evidence events) one request looks at.
SCAN = 1_000

KINDS = {1: "add", 2: "remove", 3: "power", 4: "param"}
STATUSES = {0: "open", 1: "passed", 2: "rejected", 3: "expired", 4: "void"}
StatusName = Literal["open", "passed", "rejected", "expired", "void"]
assert set(StatusName.__args__) == set(STATUSES.values())  # type: ignore[attr-defined]

_NOBODY = bytes(20)


def _governance(ctx: RPCContext) -> KnownContract:
    try:
        return ctx.chain.contract("governance")
    except NotFound:
        raise cannot_answer(
            "this chain has no governance contract (its genesis did not deploy it at "
            f"{address_to_text(GOVERNANCE_ADDRESS)}): its validator set never changes, "
            "and there are no proposals") from None


def _view_uint(ctx: RPCContext, method: str, height: int) -> int:
    with answering():
        value = ctx.chain.view("governance", method, height=height)
    if value is None:
        raise cannot_answer(f"the governance contract's {method} view failed")
    return int(value)


# ---------------------------------------------------------------- proposals


#: The Proposal record's fields: (key in the stored record, name, type).
_PROPOSAL_FIELDS: list[tuple[bytes, str, str]] | None = None
#: The storage key of ``proposals: Map[uint, Proposal]``.
_PROPOSALS_VAR = name_key("proposals")


def _proposal_fields() -> list[tuple[bytes, str, str]]:
    global _PROPOSAL_FIELDS
    if _PROPOSAL_FIELDS is None:
        from vm.contracts import compiled
        _PROPOSAL_FIELDS = [(name_key(f["name"]), f["name"], f["type"])
                            for f in compiled("governance").abi["records"]["Proposal"]]
    return _PROPOSAL_FIELDS


def _stored_value(type_name: str, raw: bytes) -> Any:
    """A record field's stored bytes -> the value the contract's view returns for it."""
    if type_name == "uint":
        if len(raw) > 32:
            raise ValueError(f"a uint of {len(raw)} bytes")
        return int.from_bytes(raw, "big")
    if type_name == "Address":
        if raw and len(raw) != 20:
            raise ValueError(f"an address of {len(raw)} bytes")
        return raw or _NOBODY
    if type_name == "str":
        return raw.decode("utf-8", "replace")
    return raw  # bytes


def stored_proposal(ctx: RPCContext, proposal_id: int, height: int) -> dict[str, Any]:
    """Proposal ``proposal_id`` at ``height`` as the contract's ``proposal`` view returns
    it (a record of Python values), read straight from the state.

    A record is one state key (vm/world.py): ``s`` + the contract + 0x00 + the record's
    storage key, for ``self.proposals[id]`` the variable's length-prefixed name and the
    id as 32 bytes; its value holds each field set under its length-prefixed name, as
    the bytes the contract stored (see commerce.py ``_stored_listings``; the tests
    compare the two, field for field)."""
    key = STORAGE + GOVERNANCE_ADDRESS + RECORD + _PROPOSALS_VAR + proposal_id.to_bytes(32, "big")
    with answering():
        raw = ctx.chain.state_value(key, height)
    problem, fields = decode_record(raw, strict=False) if raw is not None else ("", {})
    try:
        value = {name: _stored_value(kind, fields.get(k, b""))
                 for k, name, kind in _proposal_fields()}
    except ValueError as exc:
        problem = str(exc)
    if problem:
        raise cannot_answer(f"proposal {proposal_id} cannot be read: {problem}")
    return value


def proposal_status(record: dict[str, Any], epoch: int, ttl: int, height: int) -> int:
    """The contract's ``status`` of a proposal, at ``height`` (its proposal_status)."""
    if record["state"] != 0:
        return int(record["state"])
    if record["epoch"] != epoch:
        return 4
    if height > record["created"] + ttl:
        return 3
    return 0


def votes_needed(yes: int, total: int) -> int:
    """The least P >= 0 with 3 x (yes + P) > 2 x total."""
    return max(0, (2 * total) // 3 + 1 - yes)


class ProposalsParams(Params):
    state: StatusName | None = Field(None, description="Only proposals of this status.")
    limit: Annotated[StrictInt, Field(ge=1, le=100)] | None = Field(
        None, description="At most this many (default 20; at most 100, and at most the "
                          "node's rpc.max_page).")
    before: IdCursor | None = None


def _names(ctx: RPCContext) -> dict[bytes, str]:
    """Every validator's name, from the sets the chain has had (newest wins)."""
    names: dict[bytes, str] = {}
    for record in ctx.chain.validator_records():
        names.update(record.names)
    return names


@rpc_method("proposals", ProposalsParams, ProposalsView)
async def proposals(ctx: RPCContext, p: ProposalsParams) -> ProposalsView:
    """The governance contract's proposals, newest first (optionally only those of one
    status), each with its tallies, when it expires and the yes power it still needs.

    Read at the latest height: the status is the contract's ``status`` there (open,
    passed, rejected, expired: past ``created + ttl``; void: the validator set changed
    since it was made). At most 1,000 proposals are looked at per request: with a
    ``state`` filter a page may hold fewer than ``limit`` items and still have a
    ``next`` (keep paging until ``next`` is null)."""
    _governance(ctx)
    height = ctx.chain.height
    count = _view_uint(ctx, "proposal_count", height)
    epoch = _view_uint(ctx, "current_epoch", height)
    ttl = _view_uint(ctx, "ttl", height)
    total = _view_uint(ctx, "total_power", height)
    members = _view_uint(ctx, "member_count", height)
    limit = page_size(p.limit, min(100, ctx.limits.max_page))
    before = _id_cursor(p.before)
    pid = count if before is None else min(count, before - 1)
    names: dict[bytes, str] | None = None
    items: list[ProposalView] = []
    scanned = 0
    following: str | None = None
    while pid >= 1:
        if len(items) == limit or scanned == SCAN:
            following = str(pid + 1)
            break
        record = stored_proposal(ctx, pid, height)
        scanned += 1
        status = proposal_status(record, epoch, ttl, height)
        if p.state is None or STATUSES.get(status) == p.state:
            kind = KINDS.get(record["kind"], "unknown")
            validator = record["validator"] if kind != "param" else None
            name = record["name"]
            if validator is not None and kind != "add":
                if names is None:
                    names = _names(ctx)
                name_shown = names.get(validator, "")
            else:
                name_shown = name
            yes, no = record["yes"], record["no"]
            needed = (0 if status == 1 else votes_needed(yes, total) if status == 0
                      else None)
            items.append(ProposalView(
                id=pid, kind=kind, status=STATUSES.get(status, "unknown"),
                validator=address_to_text(validator) if validator is not None else None,
                validator_name=name_shown, public_key=record["public_key"].hex(),
                power=record["power"], name=name, p2p=record["p2p"], param=record["param"],
                value=str(record["value"]), effective=record["effective"],
                proposer=address_to_text(record["proposer"]), created=record["created"],
                expires=record["created"] + ttl, epoch=record["epoch"], yes_power=yes,
                no_power=no, total_power=total, votes_needed_power=needed))
        pid -= 1
    return ProposalsView(state=p.state, items=items, next=following, count=count, epoch=epoch,
                         ttl=ttl, members=members, total_power=total, height=height)


# ---------------------------------------------------------------- evidence


class EvidenceParams(Params):
    validator: AddressText | None = Field(None, description="Only this validator's double "
                                                            "votes.")
    limit: Limit | None = None
    before: PosCursor | None = None
    from_height: Annotated[StrictInt, Field(ge=0, lt=1 << 63)] | None = Field(
        None, description="The first height searched (default 0: evidence is rare, the "
                          "whole chain is searched).")
    to_height: Annotated[StrictInt, Field(ge=0, lt=1 << 63)] | None = Field(
        None, description="The last height searched (default: the latest).")


def _evidence_view(ctx: RPCContext, event: Any) -> EvidenceView:
    """An indexed Equivocation event as the API shows it."""
    try:
        fields = msgpack.unpackb(event.event.data, raw=True)
        record = DoubleSign.decode(fields[4])
    except (ValueError, TypeError, IndexError, KeyError, DecodeError,
            msgpack.UnpackException) as exc:
        raise cannot_answer(f"the evidence recorded at height {event.height} cannot be "
                            f"read: {exc}") from None
    proposal_id = None
    with answering():
        receipt = ctx.chain.tx(event.tx_hash).receipt
    for e in receipt.events:
        if e.contract == GOVERNANCE_ADDRESS and e.name == "Proposed":
            _, decoded = ctx.chain.decode_event(e)
            if decoded is not None and decoded.get("validator") == address_to_text(
                    record.validator):
                proposal_id = int(decoded["proposal_id"])
    try:
        name = ctx.chain.validator_record(record.height).names.get(record.validator, "")
    except NotFound:
        name = ""
    return EvidenceView(
        height=event.height, tx_index=event.tx_index, tx_hash=event.tx_hash.hex(),
        time_ms=event.time_ms, validator=address_to_text(record.validator),
        validator_name=name, signed_height=record.height, view=record.view,
        kind=KIND_NAMES.get(record.kind, str(record.kind)), hash_a=record.hash_a.hex(),
        hash_b=record.hash_b.hex(), proposal_id=proposal_id, raw=record.encode().hex())


def _of_validator(event: Any, validator: bytes) -> bool:
    try:
        return msgpack.unpackb(event.event.data, raw=True)[0] == validator
    except (ValueError, TypeError, IndexError, msgpack.UnpackException):
        return False


@rpc_method("evidence", EvidenceParams, EvidenceListView)
async def evidence(ctx: RPCContext, p: EvidenceParams) -> EvidenceListView:
    """Evidence of double votes recorded on chain, newest first (optionally of one
    validator), each with the removal proposal it opened.

    Read from the index (the Equivocation events of the evidence address). The whole
    chain is searched by default; ``from_height``/``to_height`` narrow it. With a
    ``validator`` filter at most 1,000 events are looked at per request: a page may
    hold fewer than ``limit`` items and still have a ``next``."""
    if ctx.index is None:
        raise cannot_answer("this node keeps no index, where evidence is looked up")
    index = ctx.index
    tip = index.height
    to_height = p.to_height if p.to_height is not None else max(tip, p.from_height or 0)
    from_height = p.from_height if p.from_height is not None else 0
    if from_height > to_height:
        raise cannot_answer(f"from_height {from_height} is above to_height {to_height}")
    to_height = min(to_height, tip)
    limit = page_size(p.limit, ctx.limits.max_page)
    validator: bytes | None = p.validator  # type: ignore[assignment]
    cursor = _pos_cursor(p.before)
    found: list[Any] = []
    following: tuple[int, int, int] | None = None
    scanned = 0
    while len(found) < limit:
        chunk = limit - len(found) if validator is None else min(100, SCAN - scanned)
        page = index.events(EVIDENCE_ADDRESS, "Equivocation", from_height, to_height,
                            chunk, cursor)
        for i, event in enumerate(page.items):
            scanned += 1
            if validator is None or _of_validator(event, validator):
                found.append(event)
                if len(found) == limit:
                    more = page.next is not None or i + 1 < len(page.items)
                    following = event.pos if more else None
                    break
        if len(found) == limit or page.next is None:
            break
        cursor = page.next
        if scanned >= SCAN:
            following = cursor  # looked at enough: the client asks on from here
            break
    return EvidenceListView(
        validator=address_to_text(validator) if validator is not None else None,
        from_height=from_height, to_height=to_height,
        items=[_evidence_view(ctx, e) for e in found],
        next=_pos_text(following),
        height=tip)
