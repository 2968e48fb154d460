"""Header verification for the light node: pure functions over chain types, no I/O
(CometBFT's ``light/verifier.go`` is the model).

A :class:`LightBlock` is what a light node needs of one height: the header, the commit
certificate that made it final and the validator set of that height. Its own
consistency (:meth:`LightBlock.check`) is a promise a full node makes and can break:
the set hashes to the header's ``validators_hash``, the certificate is for this header
and validators of that set holding more than 2/3 of its power signed it.

Trust then moves forward from a :class:`Trusted` point (genesis, a header hash the
operator gave, or a header verified before):

* **adjacent** (``height + 1``): the new header names the trusted one as its parent and
  its set is the one the trusted header committed to in ``next_validators_hash``;
* **skipping** (further ahead): validators of the trusted set holding more than 1/3 of
  its power signed the new header's certificate, so at least one honest validator of a
  set we trust did (the light client's trust assumption: fewer than 1/3 of a trusted
  set's power is Byzantine during the trusting period). Short of that the caller
  bisects (:class:`NotEnoughTrust` is not an accusation).

Anything else is a lie or a broken node (:class:`InvalidLightBlock`), except that a
trusted point older than the trusting period can no longer vouch for anything
(:class:`TrustExpired`): validators that signed it may since have left and be free to
sign a false chain at no cost.
"""

from __future__ import annotations

from dataclasses import dataclass

from chain.block import CommitCertificate, Header
from chain.errors import InvalidCertificate
from chain.validators import ValidatorSet

from .errors import InvalidLightBlock, NotEnoughTrust, TrustExpired

DAY_MS = 24 * 3600 * 1000
#: Default trusting period: a week.
TRUSTING_PERIOD_MS = 7 * DAY_MS
#: How far ahead of our clock a header's time may be.
MAX_CLOCK_DRIFT_MS = 10_000


@dataclass(frozen=True)
class LightBlock:
    header: Header
    commit: CommitCertificate
    validators: ValidatorSet

    @property
    def height(self) -> int:
        return self.header.height

    @property
    def hash(self) -> bytes:
        return self.header.hash

    def check(self, chain_id: str) -> None:
        """Its own consistency (see the module docstring); raises InvalidLightBlock."""
        h = self.header
        if h.chain_id != chain_id:
            raise InvalidLightBlock(f"header of height {h.height} is for chain {h.chain_id!r}, "
                                    f"not {chain_id!r}")
        if h.height < 1:
            raise InvalidLightBlock("a header's height starts at 1")
        if self.validators.hash != h.validators_hash:
            raise InvalidLightBlock(f"the validator set given for height {h.height} is not the "
                                    "one its header commits to")
        try:
            self.commit.verify(chain_id, self.validators, height=h.height, block_hash=h.hash)
        except InvalidCertificate as exc:
            raise InvalidLightBlock(f"the commit certificate of height {h.height} does not "
                                    f"verify against its validator set: {exc}") from None


@dataclass(frozen=True)
class Trusted:
    """A point trust starts from: a verified light block, or the genesis (height 0,
    whose hash is the genesis hash and whose set is the first height's)."""

    height: int
    hash: bytes
    time_ms: int
    validators: ValidatorSet
    next_validators_hash: bytes

    @classmethod
    def of(cls, block: LightBlock) -> Trusted:
        h = block.header
        return cls(h.height, h.hash, h.time_ms, block.validators, h.next_validators_hash)


def check_fresh(trusted: Trusted, now_ms: int, trusting_period_ms: int) -> None:
    """Raise TrustExpired if ``trusted`` is older than the trusting period."""
    age = now_ms - trusted.time_ms
    if age >= trusting_period_ms:
        raise TrustExpired(
            f"the trusted header of height {trusted.height} is {_days(age)} old, beyond the "
            f"trusting period of {_days(trusting_period_ms)}: validators who signed it may "
            "have left and could sign a false chain. Start again from a header you trust "
            "(agora light --trust-height H --trust-hash HASH, from a source you trust) or, "
            "if you accept the risk, a longer --trusting-period")


def _days(ms: int) -> str:
    days = ms / DAY_MS
    if days >= 1:
        return f"{days:.1f} days"
    return f"{ms / 3_600_000:.1f} hours"


def verify(trusted: Trusted, untrusted: LightBlock, *, chain_id: str, now_ms: int,
           trusting_period_ms: int = TRUSTING_PERIOD_MS,
           max_clock_drift_ms: int = MAX_CLOCK_DRIFT_MS) -> None:
    """Verify ``untrusted`` from ``trusted``: adjacent or skipping (see the module
    docstring). Raises TrustExpired, InvalidLightBlock or NotEnoughTrust."""
    check_fresh(trusted, now_ms, trusting_period_ms)
    h = untrusted.header
    if h.height <= trusted.height:
        raise InvalidLightBlock(f"height {h.height} is not above the trusted {trusted.height}")
    if h.time_ms <= trusted.time_ms and trusted.height > 0:
        raise InvalidLightBlock(f"header {h.height}'s time is not after the trusted header's")
    if h.time_ms < trusted.time_ms:
        raise InvalidLightBlock(f"header {h.height}'s time is before the genesis")
    if h.time_ms > now_ms + max_clock_drift_ms:
        raise InvalidLightBlock(f"header {h.height}'s time is {h.time_ms - now_ms} ms ahead of "
                                "our clock")
    if h.height == trusted.height + 1:
        if h.prev_hash != trusted.hash:
            raise InvalidLightBlock(f"header {h.height} does not follow the trusted header "
                                    f"{trusted.height} (another parent)")
        if h.validators_hash != trusted.next_validators_hash:
            raise InvalidLightBlock(f"header {h.height}'s validator set is not the one header "
                                    f"{trusted.height} named as next")
        untrusted.check(chain_id)
        return
    # Skipping: cheap checks of the new block first, then >1/3 of the trusted set.
    c = untrusted.commit
    if (untrusted.validators.hash != h.validators_hash or h.chain_id != chain_id
            or c.height != h.height or c.block_hash != h.hash):
        untrusted.check(chain_id)  # raises with the reason
    try:
        c.verify_trusting(chain_id, trusted.validators, block_hash=h.hash)
    except InvalidCertificate as exc:
        if "does not verify" in str(exc) or "twice" in str(exc):
            raise InvalidLightBlock(f"the commit certificate of height {h.height}: {exc}") from None
        raise NotEnoughTrust(f"height {h.height}: {exc}") from None
    untrusted.check(chain_id)
