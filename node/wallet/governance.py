"""``agora validator ...``: the operators' side of validator-set governance.

Proposals and votes are transactions to the governance contract (governance.agc),
sent like every wallet change through :meth:`Session.send` (tried read-only first, so
a refusal -- "only a validator may propose" -- is a sentence before anything is
signed). After the commit each command says what happened: the proposal's id, what it
still needs (and the command that votes for it), or that it passed and the height the
change takes effect from (two heights after the block that passed it; a parameter from
its stated height, at the earliest two after that block). Reads go through the node's
``proposals``, ``validators`` and ``evidence`` methods.

A validator named on the command line is an ``agora1...`` address, a key held here
(its name), or the name it has in the validator set; a new one is its public key
(64 hex digits) or a key held here. In a localnet home (``localnet.json``, found in the
working directory or at ``--home``) a new validator's node address and name default
to its node's.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from chain.address import address_from_text, address_to_text
from chain.errors import InvalidAddress
from chain.keys import address_of
from chain.system import EVIDENCE_ADDRESS

from .actions import Report
from .errors import BadInput, Refused
from .session import Sent, Session
from .text import one_line

PARAMS = ("min_gas_price", "max_block_gas")
MAX_NAME = 64
MAX_P2P = 128
#: Blocks after the one it passes in before a change takes effect.
DELAY = 2
#: Who proposes the removals that evidence of a double vote asks for.
_EVIDENCE = address_to_text(EVIDENCE_ADDRESS)


# ---------------------------------------------------------------------- helpers


def _governance(s: Session) -> dict[str, Any]:
    if "governance" not in s.contracts():
        raise Refused(f"The node at {s.node_url} has no governance contract: this chain's "
                      "validator set is fixed at genesis and cannot be changed by vote.")
    return s.contract("governance")


def _manifest(s: Session) -> dict[str, Any] | None:
    """The localnet's ``localnet.json`` (in the working directory or at --home)."""
    for home in (s.localnet, s.home):
        if home is not None and (Path(home) / "localnet.json").is_file():
            try:
                data = json.loads((Path(home) / "localnet.json").read_text())
            except (OSError, ValueError):
                return None
            return data if isinstance(data, dict) else None
    return None


def _localnet_node(s: Session, address: bytes) -> dict[str, Any] | None:
    """The localnet node whose validator key has ``address``, if this is a localnet."""
    manifest = _manifest(s)
    if manifest is None:
        return None
    text = address_to_text(address)
    for node in manifest.get("nodes") or []:
        if isinstance(node, dict) and node.get("address") == text:
            return node
    return None


def _set(s: Session, height: int | None = None) -> dict[str, Any]:
    """The validator set of ``height`` (default: the newest the chain has decided, that
    of the latest height + 2, which the governance contract votes with)."""
    if height is None:
        height = int(s.status()["height"]) + DELAY
    return s.rpc("validators", height=height)


def _set_names(s: Session) -> dict[str, str]:
    """address text -> name, in the newest set."""
    return {v["address"]: v["name"] for v in _set(s)["validators"]}


def _named(s: Session, address: str, names: dict[str, str] | None = None) -> str:
    """``node4 (agora1...)`` for a sentence."""
    if address == _EVIDENCE:
        return "the evidence of a double vote"
    if names is None:
        names = _set_names(s)
    name = names.get(address) or s.name_of(address_from_text(address))
    return f"{name} ({address})" if name else address


def _member(s: Session, text: str, what: str = "validator") -> bytes:
    """A validator given as an address, a held key's name, or its name in the set."""
    try:
        return s.address(text, what)
    except BadInput as exc:
        matches = [v["address"] for v in _set(s)["validators"] if v["name"] == text.strip()]
        if len(matches) == 1:
            return address_from_text(matches[0])
        raise BadInput(f"{exc} It is not the name of a validator in the set either "
                       "(see `agora validator list`).") from None


def _new_validator(s: Session, text: str) -> tuple[bytes, str | None]:
    """(public key, the name of the key held here or None) of a validator to add."""
    text = text.strip()
    body = text[2:] if text[:2].lower() == "0x" else text
    if len(body) == 64:
        try:
            return bytes.fromhex(body), None
        except ValueError:
            pass  # 64 characters but not hex: perhaps a key name, tried below
    address = None
    if text.lower().startswith("agora1"):
        try:
            address = address_from_text(text)
        except InvalidAddress as exc:
            raise BadInput(f"--validator {text!r} is not a valid address: {exc}") from None
    elif len(body) == 40:
        try:
            address = bytes.fromhex(body)
        except ValueError:
            address = None
    if address is not None:
        for info in s.held_keys():
            if info.address == address:
                return info.public_key, info.name
        raise BadInput(f"--validator {text} is an address, and no key held here has it: a "
                       "validator is added by its public key (64 hex digits, `agora keys "
                       "show NAME` prints it) or the name of a key held here")
    info = s.key_info(text)
    return info.public_key, info.name


def _explain(s: Session, signer: bytes, what: str):
    def explain(reason: str) -> str:
        reason = reason.rstrip(".")
        if reason in ("only a validator may propose", "only a validator may vote"):
            return (f"Cannot {what}: {reason}, and {s.who(signer)} is not in the validator "
                    "set (see `agora validator list`).")
        return f"Cannot {what}: {reason}."
    return explain


def _proposal(s: Session, proposal_id: int) -> dict[str, Any] | None:
    page = s.rpc("proposals", before=str(proposal_id + 1), limit=1)
    items = [p for p in page["items"] if int(p["id"]) == proposal_id]
    return items[0] if items else None


def describe(p: dict[str, Any], names: dict[str, str] | None = None) -> str:
    """What a proposal (an item of ``proposals``) would do, as a phrase."""
    kind = p["kind"]
    names = names or {}
    who = p.get("validator") or ""
    name = p.get("validator_name") or names.get(who, "")
    validator = f"{name} ({who})" if name else who
    if kind == "add":
        return f"add {validator} with power {p['power']}"
    if kind == "remove":
        return f"remove {validator}"
    if kind == "power":
        return f"set the power of {validator} to {p['power']}"
    if kind == "param":
        return f"set {p['param']} to {p['value']} from height {p['effective']}"
    return f"a proposal of kind {kind}"


def _voters(s: Session, proposal: dict[str, Any], exclude: bytes) -> list[str]:
    """The names of keys held here that belong to validators who have not voted on
    ``proposal`` yet (the ones that could vote for it from this machine)."""
    members = {v["address"] for v in _set(s)["validators"]}
    out = []
    for info in s.held_keys():
        text = address_to_text(info.address)
        if info.address == exclude or text not in members or info.name in out:
            continue
        voted = s.view("governance", "vote_of", int(proposal["id"]), info.address)
        if voted is not None and int(voted) == 0:
            out.append(info.name)
    return out


def _outcome(s: Session, sent: Sent, proposal_id: int, signer: bytes
             ) -> tuple[dict[str, Any], list[str]]:
    """What the transaction did to proposal ``proposal_id``, for --json and in
    sentences: passed (and from which height), rejected, or what it still needs."""
    ids = {str(e.get("proposal_id")) for e in sent.events_named("Passed")}
    passed = str(proposal_id) in ids
    rejected = str(proposal_id) in {str(e.get("proposal_id"))
                                    for e in sent.events_named("Rejected")}
    data: dict[str, Any] = {"proposal_id": proposal_id}
    lines: list[str] = []
    if passed:
        data["status"] = "passed"
        updates = sent.events_named("ValidatorUpdate")
        params = sent.events_named("ParamChange")
        if updates:
            u = updates[0]
            address = address_to_text(address_of(bytes.fromhex(u["public_key"])))
            effective = sent.height + DELAY
            power = int(u["power"])
            who = f"{u['name']} ({address})" if u["name"] else address
            data["effective_height"] = effective
            data["change"] = {"validator": address, "name": u["name"], "power": power,
                              "p2p": u["p2p"]}
            if power == 0:
                change = f"{who} leaves the validator set"
            else:
                change = f"{who} is a validator with power {power}"
            lines.append(f"Proposal {proposal_id} passed in block {sent.height}: {change} "
                         f"from height {effective} on.")
        elif params:
            c = params[0]
            effective = int(c["effective"])
            data["effective_height"] = effective
            data["change"] = {"param": c["name"], "value": str(c["value"])}
            lines.append(f"Proposal {proposal_id} passed in block {sent.height}: {c['name']} "
                         f"is {c['value']} from height {effective} on.")
        else:
            lines.append(f"Proposal {proposal_id} passed in block {sent.height}.")
        return data, lines
    if rejected:
        data["status"] = "rejected"
        lines.append(f"Proposal {proposal_id} was rejected: validators holding at least a "
                     "third of the power voted no, so it can no longer pass.")
        return data, lines
    proposal = _proposal(s, proposal_id)
    if proposal is None:
        return {**data, "status": "unknown"}, [f"Proposal {proposal_id} is not on the node "
                                               "yet; see `agora validator proposals`."]
    data.update(status=proposal["status"], yes_power=proposal["yes_power"],
                no_power=proposal["no_power"], total_power=proposal["total_power"],
                votes_needed_power=proposal["votes_needed_power"],
                expires=proposal["expires"])
    needed = proposal["votes_needed_power"]
    tally = (f"yes {proposal['yes_power']}, no {proposal['no_power']} of "
             f"{proposal['total_power']} power")
    if proposal["status"] != "open" or needed is None:
        lines.append(f"Proposal {proposal_id} is {proposal['status']} ({tally}).")
        return data, lines
    voters = _voters(s, proposal, signer)
    data["can_vote_here"] = voters
    voter = voters[0] if voters else "KEY"
    lines.append(f"Proposal {proposal_id} is open ({tally}): it needs {needed} more power "
                 f"of yes votes to pass, by height {proposal['expires']}: agora validator "
                 f"vote --from {voter} {proposal_id} yes")
    if len(voters) > 1:
        lines.append(f"  validators whose keys are here and have not voted: "
                     f"{', '.join(voters)}")
    return data, lines


def _tx_line(s: Session, sent: Sent) -> str:
    return f"Transaction {sent.hash} committed in block {sent.height}; fee {s.coin(sent.fee)}."


def _proposed(s: Session, action: str, sent: Sent, key_address: bytes, what: str
              ) -> Report:
    try:
        proposal_id = int(sent.return_value)
    except (TypeError, ValueError):
        proposed = sent.events_named("Proposed")
        if not proposed:
            raise Refused(f"The transaction {sent.hash} committed, but its receipt names no "
                          f"proposal; check it with `agora query tx {sent.hash}`.") from None
        proposal_id = int(proposed[0]["proposal_id"])
    data, lines = _outcome(s, sent, proposal_id, key_address)
    head = (f"{s.who(key_address)} proposed to {what}: proposal {proposal_id} (its own yes "
            "vote counted).")
    return Report({"action": f"validator.{action}", **data, "proposer":
                   address_to_text(key_address), "tx": sent.json()},
                  [head, *lines, _tx_line(s, sent)])


# ---------------------------------------------------------------------- proposals


def propose_add(s: Session, sender: str, validator: str, power: int, *,
                name: str | None = None, p2p: str | None = None) -> Report:
    _governance(s)
    public_key, key_name = _new_validator(s, validator)
    if len(public_key) != 32:
        raise BadInput("a validator's public key is 32 bytes (64 hex digits)")
    address = address_of(public_key)
    node = _localnet_node(s, address)
    if name is None:
        name = key_name or (f"node{node['index']}" if node and "index" in node else "")
    if p2p is None:
        p2p = ""
        if node is not None and node.get("node_id") and node.get("p2p"):
            p2p = f"{node['node_id']}@{node['p2p']}"
    if len(name.encode()) > MAX_NAME:
        raise BadInput(f"--name is {len(name.encode())} bytes; a name is at most {MAX_NAME}")
    if p2p:
        from p2p.errors import LocalError
        from p2p.policy import PeerAddress
        try:
            PeerAddress.parse(p2p)
        except LocalError as exc:
            raise BadInput(f"--p2p: {exc}") from None
        if len(p2p.encode()) > MAX_P2P:
            raise BadInput(f"--p2p is longer than {MAX_P2P} bytes")
    key = s.key(sender)
    sent = s.send(key, "governance", "propose_add", [public_key, power, name, p2p],
                  explain=_explain(s, key.address, "propose"))
    who = f"{name} ({address_to_text(address)})" if name else address_to_text(address)
    report = _proposed(s, "propose-add", sent, key.address,
                       f"add {who} with power {power}")
    report.data.update(validator=address_to_text(address), public_key=public_key.hex(),
                       name=name, p2p=p2p, power=power)
    if p2p:
        report.lines.insert(1, f"  its node is announced at {p2p}")
    return report


def propose_remove(s: Session, sender: str, validator: str) -> Report:
    _governance(s)
    address = _member(s, validator)
    key = s.key(sender)
    sent = s.send(key, "governance", "propose_remove", [address],
                  explain=_explain(s, key.address, "propose"))
    report = _proposed(s, "propose-remove", sent, key.address,
                       f"remove {_named(s, address_to_text(address))}")
    report.data["validator"] = address_to_text(address)
    return report


def propose_power(s: Session, sender: str, validator: str, power: int) -> Report:
    _governance(s)
    address = _member(s, validator)
    key = s.key(sender)
    sent = s.send(key, "governance", "propose_power", [address, power],
                  explain=_explain(s, key.address, "propose"))
    report = _proposed(s, "propose-power", sent, key.address,
                       f"set the power of {_named(s, address_to_text(address))} to {power}")
    report.data.update(validator=address_to_text(address), power=power)
    return report


def propose_param(s: Session, sender: str, name: str, value: int,
                  effective: int | None = None) -> Report:
    _governance(s)
    if name not in PARAMS:
        raise BadInput(f"--name {name!r}: the parameters are {' and '.join(PARAMS)}")
    if effective is None:
        # the earliest the contract takes: two blocks after the proposal's (the next)
        effective = int(s.status()["height"]) + 1 + DELAY
    key = s.key(sender)
    sent = s.send(key, "governance", "propose_param", [name, value, effective],
                  explain=_explain(s, key.address, "propose"))
    report = _proposed(s, "propose-param", sent, key.address,
                       f"set {name} to {value} from height {effective}")
    report.data.update(param=name, value=str(value), effective=effective)
    return report


def vote(s: Session, sender: str, proposal_id: int, choice: str) -> Report:
    _governance(s)
    choice = choice.strip().lower()
    if choice not in ("yes", "no"):
        raise BadInput(f"vote yes or no, not {choice!r}")
    yes = choice == "yes"
    key = s.key(sender)
    sent = s.send(key, "governance", "vote", [proposal_id, yes],
                  explain=_explain(s, key.address, f"vote on proposal {proposal_id}"))
    tallies = [e for e in sent.events_named("Voted")
               if str(e.get("proposal_id")) == str(proposal_id)]
    tally = (f" (yes {tallies[-1]['yes_power']}, no {tallies[-1]['no_power']} power so far)"
             if tallies else "")
    data, lines = _outcome(s, sent, proposal_id, key.address)
    return Report({"action": "validator.vote", **data, "voter": address_to_text(key.address),
                   "yes": yes, "tx": sent.json()},
                  [f"{s.who(key.address)} voted {choice} on proposal {proposal_id}{tally}.",
                   *lines, _tx_line(s, sent)])


# ---------------------------------------------------------------------- reading


def proposals(s: Session, *, state: str | None = None, limit: int = 20) -> Report:
    _governance(s)
    params: dict[str, Any] = {"limit": limit}
    if state is not None:
        params["state"] = state
    page = s.rpc("proposals", **params)
    names = _set_names(s)
    what = f"{state} proposals" if state else "proposals"
    if len(page["items"]) == 1:
        what = what[:-1]
    lines = [f"{len(page['items'])} {what} at height {page['height']} (newest first; "
             f"{page['count']} made in all; the set has {page['members']} validators, "
             f"total power {page['total_power']}):"]
    for p in page["items"]:
        status = p["status"]
        if status == "open":
            status += (f", needs {p['votes_needed_power']} more yes power, open until "
                       f"height {p['expires']}")
        lines.append(f"  #{p['id']} {describe(p, names)}: {status} (yes {p['yes_power']}, "
                     f"no {p['no_power']}); proposed by {_named(s, p['proposer'], names)} "
                     f"at height {p['created']}")
    if not page["items"]:
        lines.append("  none")
    elif page.get("next"):
        lines.append("  (more: raise --limit)")
    return Report(page, lines)


def validators(s: Session, *, height: int | None = None) -> Report:
    params = {"height": height} if height is not None else {}
    vset = s.rpc("validators", **params)
    total = int(vset["total_power"])
    lines = [f"Validator set at height {vset['height']} (in force since height "
             f"{vset['since']}): {len(vset['validators'])} validators, total power {total}"]
    width = max([len(v["name"]) for v in vset["validators"]] + [4])
    for v in vset["validators"]:
        share = 100 * int(v["power"]) / total if total else 0
        line = (f"  {(v['name'] or '-'):{width}}  {v['address']}  power {v['power']} "
                f"({share:.1f}%)")
        if v.get("p2p"):
            line += f"  node {v['p2p']}"
        lines.append(one_line(line, 1_000))
    data = dict(vset)
    data["validators"] = [{**v, "share": round(int(v["power"]) / total, 6) if total else 0}
                          for v in vset["validators"]]
    if height is None:
        # A change passed in the last two blocks is decided but not in force yet.
        newest = _set(s, int(vset["height"]) + DELAY)
        if newest["hash"] != vset["hash"]:
            data["next_set"] = {"since": newest["since"], "hash": newest["hash"]}
            lines.append(f"A new set is decided, in force from height {newest['since']}: "
                         f"agora validator list --height {newest['since']}")
    return Report(data, lines)


def evidence(s: Session, *, validator: str | None = None, limit: int = 20) -> Report:
    params: dict[str, Any] = {"limit": limit}
    if validator is not None:
        params["validator"] = address_to_text(_member(s, validator))
    page = s.rpc("evidence", **params)
    lines = [f"{len(page['items'])} double vote(s) recorded"
             + (f" of {page['validator']}" if page.get("validator") else "")
             + " (newest first):"]
    for e in page["items"]:
        who = (f"{e['validator_name']} ({e['validator']})" if e["validator_name"]
               else e["validator"])
        removal = (f"; removal proposal #{e['proposal_id']}" if e["proposal_id"] is not None
                   else "; no removal proposed")
        lines.append(f"  block {e['height']}: {who} signed two {e['kind']}s at height "
                     f"{e['signed_height']} view {e['view']} ({e['hash_a'][:12]}... and "
                     f"{e['hash_b'][:12]}...){removal}; tx {e['tx_hash']}")
    if not page["items"]:
        lines.append("  none")
    elif page.get("next"):
        lines.append("  (more: raise --limit)")
    return Report(page, lines)

