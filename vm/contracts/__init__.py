"""The commerce contracts: deployed together, wired together, and placed in genesis.

:func:`deploy_commerce` deploys the reward token, the catalog, the escrow and the
reviews contract into a :class:`vm.testing.Env` at their fixed addresses
(:mod:`chain.system`), each constructor given the others' addresses and the deploy
limits of :class:`CommerceLimits`. Tests and tools use it as it is.

:func:`genesis_contracts` builds the genesis entries the same way: it runs the real
constructors (and, for a demo chain, the real calls that register an arbiter and
publish listings) in a fresh in-memory state, then writes out each contract's code,
storage and coin balance. Genesis storage is therefore exactly what the code itself
writes; nothing is laid out by hand. Token balances given to genesis are backed by
coin sent to the token's constructor, like every other token.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path

from chain.address import address_to_text
from chain.system import CATALOG_ADDRESS, ESCROW_ADDRESS, REVIEWS_ADDRESS, TOKEN_ADDRESS

from ..compiler import Compiled, compile_file
from ..compiler.abi import decode_value
from ..gas import encode_args
from ..testing import Contract, Env, encode_inputs

HERE = Path(__file__).resolve().parent
MINUTE_MS = 60 * 1000
HOUR_MS = 60 * MINUTE_MS
DAY_MS = 24 * HOUR_MS
#: the account genesis tokens pass through on their way to their holders
GENESIS_DISTRIBUTOR = hashlib.sha256(b"agora/genesis/distributor").digest()[:20]
SOURCES = {"token": "token.agc", "catalog": "catalog.agc", "escrow": "escrow.agc",
           "reviews": "reviews.agc"}
ADDRESSES = {"token": TOKEN_ADDRESS, "catalog": CATALOG_ADDRESS, "escrow": ESCROW_ADDRESS,
             "reviews": REVIEWS_ADDRESS}


@dataclass(frozen=True)
class CommerceLimits:
    """The limits fixed at deploy (each bounded by the contracts themselves)."""

    max_window_ms: int = 60 * DAY_MS        # any listing window, arbiter ruling, group
    max_fee_bps: int = 1_000                # an arbiter's fee: at most 10% here
    max_commission_bps: int = 3_000         # referral + cashback + bounty: at most 30%
    max_group_size: int = 10_000
    review_window_ms: int = 30 * DAY_MS     # a review bounty waits this long


@dataclass
class Commerce:
    """The commerce set in one :class:`Env`, each a :class:`vm.testing.Contract`."""

    env: Env
    token: Contract
    catalog: Contract
    escrow: Contract
    reviews: Contract


_COMPILED: dict[str, Compiled] = {}


def compiled(name: str) -> Compiled:
    """A commerce contract compiled once per process."""
    if name not in _COMPILED:
        _COMPILED[name] = compile_file(HERE / SOURCES[name])
    return _COMPILED[name]


def deploy_commerce(env: Env, limits: CommerceLimits = CommerceLimits(), *,
                    token_holder: bytes = GENESIS_DISTRIBUTOR, token_supply: int = 0,
                    deployer: bytes = GENESIS_DISTRIBUTOR) -> Commerce:
    """Deploy token, catalog, escrow and reviews at their chain.system addresses, wired
    to each other; ``token_supply`` tokens (backed by as much coin, sent by
    ``deployer``) go to ``token_holder``."""
    if token_supply:
        env.fund(deployer, token_supply)
    token = env.deploy(compiled("token"), ESCROW_ADDRESS, CATALOG_ADDRESS, REVIEWS_ADDRESS,
                       token_holder, sender=deployer, value=token_supply, at=TOKEN_ADDRESS)
    catalog = env.deploy(compiled("catalog"), ESCROW_ADDRESS, limits.max_window_ms,
                         limits.max_fee_bps, limits.max_commission_bps, limits.max_group_size,
                         sender=deployer, at=CATALOG_ADDRESS)
    escrow = env.deploy(compiled("escrow"), TOKEN_ADDRESS, CATALOG_ADDRESS, REVIEWS_ADDRESS,
                        limits.review_window_ms, sender=deployer, at=ESCROW_ADDRESS)
    reviews = env.deploy(compiled("reviews"), ESCROW_ADDRESS, sender=deployer,
                         at=REVIEWS_ADDRESS)
    return Commerce(env, token, catalog, escrow, reviews)


@dataclass(frozen=True)
class Demo:
    """Accounts a demo chain (the localnet) starts with: a registered arbiter, and a
    merchant with two listings, one ordinary and one with a group deal."""

    merchant: bytes
    arbiter: bytes


def publish_demo(commerce: Commerce, demo: Demo) -> None:
    """Register the demo arbiter and publish the demo merchant's listings."""
    coin = 10**18
    commerce.catalog.register_arbiter("Community arbiter", 200, 3 * DAY_MS,
                                      sender=demo.arbiter)
    nobody = bytes(20)
    mug = commerce.catalog.create_listing(
        "Handmade ceramic mug", hashlib.sha256(b"A stoneware mug, 350 ml, glazed by hand. "
                                               b"Dishwasher safe.").digest(),
        25 * coin, 25 * coin, 40, 3 * DAY_MS, 14 * DAY_MS, 7 * DAY_MS, 2 * DAY_MS,
        demo.arbiter, nobody, nobody, False, 5_000, sender=demo.merchant)
    commerce.catalog.set_commissions(mug, 200, 100, 100, sender=demo.merchant)
    tea = commerce.catalog.create_listing(
        "Organic green tea, family box", hashlib.sha256(b"1 kg of spring-picked green tea "
                                                        b"from a family farm.").digest(),
        40 * coin, 0, 500, 2 * DAY_MS, 10 * DAY_MS, 0, 2 * DAY_MS,
        demo.arbiter, nobody, nobody, True, 5_000, sender=demo.merchant)
    commerce.catalog.set_commissions(tea, 100, 200, 100, sender=demo.merchant)
    commerce.catalog.set_group_deal(tea, 30 * coin, 3, 2 * DAY_MS, sender=demo.merchant)


def genesis_contracts(
    *,
    limits: CommerceLimits = CommerceLimits(),
    token_balances: dict[bytes, int] | None = None,
    demo: Demo | None = None,
    time_ms: int = 1_767_225_600_000,
) -> list[dict]:
    """The ``contracts`` entries of a genesis file: token, catalog, escrow and reviews
    at their fixed addresses, as their constructors leave them, with
    ``token_balances`` minted against coin held by the token, and (``demo``) an
    arbiter and listings published by the real calls at ``time_ms``."""
    token_balances = {a: v for a, v in (token_balances or {}).items() if v}
    env = Env(time_ms=time_ms)
    total = sum(token_balances.values())
    commerce = deploy_commerce(env, limits, token_supply=total)
    for address, amount in sorted(token_balances.items()):
        commerce.token.transfer(address, amount, sender=GENESIS_DISTRIBUTOR)
    if demo is not None:
        publish_demo(commerce, demo)
    entries = []
    for name, address in ADDRESSES.items():
        prefix = b"s" + address
        storage = {k[len(prefix):]: v for k, v in env.world.changes().items()
                   if k.startswith(prefix) and v}
        entries.append({
            "address": address_to_text(address),
            "code": compiled(name).code.hex(),
            "balance": str(env.world.balance(address)),
            "storage": {k.hex(): v.hex() for k, v in sorted(storage.items())},
        })
    return entries


def method_abi(contract: str, method: str) -> dict:
    """The ABI entry of ``method`` of the commerce contract ``contract`` ("escrow" ...)."""
    for m in compiled(contract).abi["methods"]:
        if m["name"] == method:
            return m
    raise KeyError(f"the {contract} contract has no method {method!r}")


def encode_call(contract: str, method: str, *args: object) -> bytes:
    """The ``args`` bytes of a Call transaction to a commerce contract's method."""
    return encode_args(encode_inputs(method, method_abi(contract, method)["inputs"], args))


def decode_result(contract: str, method: str, data: bytes) -> object:
    """A commerce method's return data, decoded by its ABI (a record as a dict)."""
    m = method_abi(contract, method)
    if m["output"] is None:
        return None
    return decode_value(m["output"], data, compiled(contract).abi["records"])


__all__ = ["Commerce", "CommerceLimits", "Demo", "deploy_commerce", "genesis_contracts",
           "publish_demo", "compiled", "method_abi", "encode_call", "decode_result",
           "GENESIS_DISTRIBUTOR"]


# ---------------------------------------------------------------- governance
#
# The validator set's governance contract (governance.agc) is not part of the commerce
# set: genesis_contracts emits ADDRESSES only, so its address is kept apart here.

from chain.system import EVIDENCE_ADDRESS, GOVERNANCE_ADDRESS  # noqa: E402

SOURCES["governance"] = "governance.agc"
#: contracts built by their own genesis builder, beside the commerce set
GOVERNANCE_ADDRESSES = {"governance": GOVERNANCE_ADDRESS}


def governance_contract(validators: list[tuple[bytes, int, str]], *,
                        proposal_ttl: int = 1000,
                        time_ms: int = 1_767_225_600_000) -> dict:
    """The genesis entry of the governance contract at ``GOVERNANCE_ADDRESS``, built by
    the real calls: deployed by ``GENESIS_DISTRIBUTOR`` with ``proposal_ttl`` (heights)
    and ``EVIDENCE_ADDRESS`` as the evidence reporter, each ``(public_key, power,
    name)`` of ``validators`` named a genesis member in order, then sealed. The entry
    has the shape of :func:`genesis_contracts`' (address, code, balance, storage)."""
    env = Env(time_ms=time_ms)
    governance = env.deploy(compiled("governance"), proposal_ttl, EVIDENCE_ADDRESS,
                            sender=GENESIS_DISTRIBUTOR, at=GOVERNANCE_ADDRESS)
    for public_key, power, name in validators:
        governance.genesis_member(public_key, power, name, sender=GENESIS_DISTRIBUTOR)
    governance.seal(sender=GENESIS_DISTRIBUTOR)
    prefix = b"s" + GOVERNANCE_ADDRESS
    storage = {k[len(prefix):]: v for k, v in env.world.changes().items()
               if k.startswith(prefix) and v}
    return {
        "address": address_to_text(GOVERNANCE_ADDRESS),
        "code": compiled("governance").code.hex(),
        "balance": str(env.world.balance(GOVERNANCE_ADDRESS)),
        "storage": {k.hex(): v.hex() for k, v in sorted(storage.items())},
    }


__all__ += ["governance_contract", "GOVERNANCE_ADDRESSES"]
