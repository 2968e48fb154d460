"""Genesis documents, built in one place: ``agora init``, ``agora localnet`` and the
benchmarks all call :func:`genesis_document` instead of writing the JSON by hand.

It returns the plain document a ``genesis.json`` holds (chain id, start time,
validators with names and powers, balances, the commerce contracts — optionally with
the demo arbiter and listings, and token balances); :meth:`chain.genesis.Genesis.from_dict`
is still what validates it, so a document built here is checked like any file a user
wrote.
"""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from chain.address import address_to_text
from vm.contracts import Demo, genesis_contracts, governance_contract

#: 2026-01-01T00:00:00Z: the start time of fixed (reproducible) chains.
FIXED_TIME_MS = 1_767_225_600_000

#: What each demo account of a try-it-out chain starts with (``agora localnet``'s
#: buyer, merchant, arbiter and referrer; ``agora init --validator --dev``'s dev keys):
#: a million coins and a thousand reward tokens (18 decimals each).
DEMO_COINS = 10**24
DEMO_TOKENS = 1_000 * 10**18


@dataclass(frozen=True)
class GenesisValidator:
    """A validator of the first set: its ed25519 public key, voting power and a name
    people read (the name is not part of the genesis hash)."""

    public_key: bytes
    power: int
    name: str = ""


def now_ms() -> int:
    """The current time in whole seconds, as milliseconds: a genesis time to start a
    new chain from (whole seconds keep ``genesis_time`` short to read)."""
    return int(time.time()) * 1000


def format_time(time_ms: int) -> str:
    """``genesis_time`` text: RFC 3339 UTC, with milliseconds only if there are any."""
    seconds, ms = divmod(time_ms, 1000)
    text = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(seconds))
    return f"{text}.{ms:03d}Z" if ms else f"{text}Z"


def genesis_document(
    chain_id: str,
    validators: Sequence[GenesisValidator],
    *,
    time_ms: int = FIXED_TIME_MS,
    balances: Mapping[bytes, int] | None = None,
    commerce: bool = False,
    token_balances: Mapping[bytes, int] | None = None,
    demo: Demo | None = None,
    governance: bool = True,
    proposal_ttl: int = 1_000,
) -> dict[str, Any]:
    """The genesis document of a chain: ``validators`` in order, native coin
    ``balances`` by address, and with ``commerce`` the token, catalog, escrow and
    reviews contracts as their constructors leave them at ``time_ms`` (with
    ``token_balances`` minted, and with ``demo`` its arbiter registered and its
    merchant's listings published). ``governance``: the validator set's governance
    contract, its members the validators, its proposals open for ``proposal_ttl``
    heights (without it the set never changes)."""
    if not commerce and (token_balances or demo is not None):
        raise ValueError("token balances and a demo need the commerce contracts "
                         "(commerce=True)")
    document: dict[str, Any] = {
        "chain_id": chain_id,
        "genesis_time": format_time(time_ms),
        "validators": [{"name": v.name, "public_key": v.public_key.hex(), "power": v.power}
                       for v in validators],
        "balances": [{"address": address_to_text(a), "amount": str(amount)}
                     for a, amount in (balances or {}).items()],
    }
    contracts = []
    if commerce:
        contracts += genesis_contracts(
            token_balances=dict(token_balances or {}), demo=demo, time_ms=time_ms)
    if governance:
        contracts.append(governance_contract(
            [(v.public_key, v.power, v.name) for v in validators],
            proposal_ttl=proposal_ttl, time_ms=time_ms))
    if contracts:
        document["contracts"] = contracts
    return document


def set_validators(document: dict[str, Any], validators: Sequence[GenesisValidator], *,
                   proposal_ttl: int = 1_000) -> dict[str, Any]:
    """``document`` with ``validators`` as its validator set, in order, everything else
    kept — and, if it carries the governance contract, that contract rebuilt with the
    same validators as its members (the node refuses a genesis whose governance
    members are not its validators)."""
    from chain.address import address_from_text
    from chain.system import GOVERNANCE_ADDRESS

    if not validators:
        raise ValueError("a genesis needs at least one validator")
    keys = [v.public_key for v in validators]
    if len(set(keys)) != len(keys):
        raise ValueError("a public key is given twice")
    out = dict(document)
    out["validators"] = [{"name": v.name, "public_key": v.public_key.hex(), "power": v.power}
                         for v in validators]
    contracts = []
    for entry in document.get("contracts", []):
        try:
            governance = address_from_text(entry["address"]) == GOVERNANCE_ADDRESS
        except (KeyError, TypeError, ValueError):
            governance = False
        if governance:
            entry = governance_contract([(v.public_key, v.power, v.name) for v in validators],
                                        proposal_ttl=proposal_ttl)
        contracts.append(entry)
    if "contracts" in document:
        out["contracts"] = contracts
    return out
