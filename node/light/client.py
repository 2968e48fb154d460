"""The light client: follows the chain's head from a primary full node, verifying every
header it keeps, cross-checks each new head with witness nodes, and catches the nodes
that lie (CometBFT's ``light/client.go`` and ``light/detector.go`` are the models).

Trust starts from the genesis file (height 0: the first set is the genesis set) or from
a header hash the operator trusts, and then only moves forward through
:func:`~node.light.verifier.verify`: skipping ahead where more than 1/3 of a trusted set
signed the new header, bisecting where not (or one height at a time in sequential
mode). Verified blocks go to the :class:`~node.light.store.LightStore`; after a restart
verification resumes from the newest one.

**Detection.** A new head is compared with every witness. Where a witness has another
header at that height, the light node verifies the witness's header too, from the same
trusted point: if it does not verify, the witness lied and is dropped; if it does, two
conflicting headers were both signed by a quorum -- validators signed twice. Their
conflicting COMMIT signatures become :class:`~chain.evidence.DoubleSign` evidence
(submitted as a transaction where a reporting key is configured), and the side fewer
witnesses stand by is dropped. A primary that stops advancing while a witness shows a
verified newer head is stale and is replaced. Every catch is a :class:`Report`: in the
log, in ``light_status``, and the node caught is never asked again.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from chain.evidence import COMMIT, DoubleSign
from chain.genesis import Genesis

from ..rpc.client import RPCFailed
from .errors import (
    BadProof,
    InvalidLightBlock,
    LightError,
    NoHonestNode,
    NotEnoughTrust,
    TrustExpired,
    Unreachable,
)
from .provider import BLOCKS_PER_BATCH, Provider
from .store import LightStore
from .verifier import (
    MAX_CLOCK_DRIFT_MS,
    TRUSTING_PERIOD_MS,
    LightBlock,
    Trusted,
    check_fresh,
    verify,
)

log = logging.getLogger("agora.light")


def wall_ms() -> int:
    return time.time_ns() // 1_000_000


@dataclass(frozen=True)
class Options:
    trusting_period_ms: int = TRUSTING_PERIOD_MS
    max_clock_drift_ms: int = MAX_CLOCK_DRIFT_MS
    #: Verify every height (instead of skipping where a trusted set allows it).
    sequential: bool = False
    #: A primary whose head stays this many heights behind a witness's verified head
    #: for ``stale_after_ms`` is stale.
    stale_heights: int = 3
    stale_after_ms: int = 10_000
    #: Heights walked back by hash links to verify a header below the oldest kept.
    max_backwards: int = 10_000


@dataclass
class Report:
    """A node caught lying (or failing in a way only a liar or a broken node would)."""

    node: str
    role: str                 # primary or witness
    what: str                 # forged header, bad proof, stale, conflicting header, ...
    detail: str
    height: int | None
    time_ms: int
    evidence: list[DoubleSign] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        return {"node": self.node, "role": self.role, "what": self.what,
                "detail": self.detail, "height": self.height, "time_ms": self.time_ms,
                "evidence": [{"validator": e.validator.hex(), "height": e.height,
                              "view": e.view, "hash_a": e.hash_a.hex(),
                              "hash_b": e.hash_b.hex(), "raw": e.encode().hex()}
                             for e in self.evidence]}


class LightClient:
    def __init__(self, genesis: Genesis, store: LightStore, primary: Provider,
                 witnesses: list[Provider], *, options: Options = Options(),
                 clock: Callable[[], int] = wall_ms,
                 report_evidence: Callable[[list[DoubleSign], Provider], Any] | None = None
                 ) -> None:
        self.genesis = genesis
        self.chain_id = genesis.chain_id
        self.genesis_hash = genesis.hash
        self.store = store
        self.primary: Provider | None = primary
        self.witnesses = list(witnesses)
        self.options = options
        self.clock = clock
        self.report_evidence = report_evidence
        self.reports: list[Report] = []
        #: Nodes caught and dropped (closed when the light node stops).
        self.dropped: list[Provider] = []
        #: Set when two chains both verify and no majority of the nodes tells them
        #: apart: the light node stops following (CometBFT halts too).
        self.halted: str = ""
        self.root: Trusted | None = None
        self.latest: LightBlock | None = None
        #: Listeners told of each newly verified head (subscriptions, the watcher).
        self.listeners: list[Callable[[LightBlock], None]] = []
        #: When the primary was last seen behind a witness's verified head.
        self._behind_since: int | None = None
        self.last_error: str = ""

    # ------------------------------------------------------------ start

    def genesis_root(self) -> Trusted:
        g = self.genesis
        return Trusted(0, self.genesis_hash, g.time_ms, g.validators, g.validators.hash)

    async def start(self, trust_height: int | None = None,
                    trust_hash: bytes | None = None) -> None:
        """Resume from the store, or start from a trusted header (or the genesis).
        Raises TrustExpired, LightError."""
        self.store.check_chain(self.chain_id, self.genesis_hash)
        meta = self.store.meta()
        latest = self.store.latest()
        if meta is not None and (trust_height is None or latest is not None
                                 and latest.height >= trust_height):
            root_height, root_hash = meta[2], meta[3]
            if root_height == 0:
                self.root = self.genesis_root()
            else:
                block = self.store.get(root_height)
                if block is None or block.hash != root_hash:
                    raise LightError("the light store lost its trusted header; delete its "
                                     "data/ and start again")
                self.root = Trusted.of(block)
            self.latest = latest
            check_fresh(self.trusted(), self.clock(), self.options.trusting_period_ms)
            log.info("light node resumes at height %d (trusted from %d)",
                     self.trusted().height, root_height)
            return
        if trust_height is None or trust_height == 0:
            root = self.genesis_root()
            check_fresh(root, self.clock(), self.options.trusting_period_ms)
            self.root = root
            self.store.set_meta(self.chain_id, self.genesis_hash, 0, self.genesis_hash)
            return
        if trust_hash is None:
            raise LightError("a trusted height needs its header hash (--trust-hash)")
        block = await self._with_primary(lambda p: p.light_block(trust_height))
        if block.hash != trust_hash:
            raise LightError(f"the primary's header at height {trust_height} has hash "
                             f"{block.hash.hex()}, not the trusted {trust_hash.hex()}: "
                             "check the hash, or the primary is on another chain")
        block.check(self.chain_id)
        check_fresh(Trusted.of(block), self.clock(), self.options.trusting_period_ms)
        self.root = Trusted.of(block)
        self.store.save([block])
        self.store.set_meta(self.chain_id, self.genesis_hash, trust_height, trust_hash)
        self.latest = block

    def trusted(self) -> Trusted:
        if self.latest is not None:
            return Trusted.of(self.latest)
        assert self.root is not None, "start() first"
        return self.root

    @property
    def height(self) -> int:
        return self.trusted().height

    # ------------------------------------------------------------ catching liars

    def nodes(self) -> list[Provider]:
        return ([self.primary] if self.primary is not None else []) + self.witnesses

    def caught(self, node: Provider, what: str, detail: str, height: int | None = None,
               evidence: list[DoubleSign] | None = None) -> Report:
        """Record a liar, drop it, and promote a witness if it was the primary. A node
        already dropped (caught by another request meanwhile) is not reported again."""
        role = "primary" if node is self.primary else "witness"
        if node is not self.primary and node not in self.witnesses:
            return Report(node.url, "dropped", what, detail, height, self.clock())
        report = Report(node.url, role, what, detail, height, self.clock(),
                        list(evidence or []))
        self.reports.append(report)
        del self.reports[:-100]
        log.warning("caught %s %s: %s — %s; dropped", role, node.url, what, detail)
        if node is self.primary:
            self.primary = self.witnesses.pop(0) if self.witnesses else None
            if self.primary is not None:
                log.warning("%s is the primary now", self.primary.url)
        elif node in self.witnesses:
            self.witnesses.remove(node)
        self.dropped.append(node)
        return report

    def demote(self, node: Provider, why: str) -> None:
        """A primary that did not answer (down, too slow) goes to the end of the
        witnesses and the first witness asks instead: not an accusation."""
        if node is not self.primary or not self.witnesses:
            return
        log.warning("primary %s %s; %s is the primary now", node.url, why,
                    self.witnesses[0].url)
        self.primary = self.witnesses.pop(0)
        self.witnesses.append(node)

    def need_primary(self) -> Provider:
        if self.primary is None:
            raise NoHonestNode("every node given to this light node was caught lying: "
                               "give it honest ones (--primary, --witness)")
        return self.primary

    async def _with_primary(self, ask: Callable[[Provider], Any]) -> Any:
        """``ask(primary)``; a primary caught lying on the way is dropped and the next
        one asked."""
        while True:
            primary = self.need_primary()
            try:
                return await ask(primary)
            except (InvalidLightBlock, BadProof) as exc:
                if primary is self.primary:
                    self.caught(primary, "invalid answer", str(exc))

    # ------------------------------------------------------------ verification

    async def verify_block(self, provider: Provider, target: LightBlock,
                           trusted: Trusted | None = None) -> list[LightBlock]:
        """Verify ``target`` (from ``provider``) starting at ``trusted`` (default: the
        newest stored below it), fetching pivots from ``provider``; the blocks verified
        on the way, ``target`` last. Raises InvalidLightBlock (``provider`` lied),
        TrustExpired."""
        if trusted is None:
            below = self.store.at_or_below(target.height - 1)
            trusted = Trusted.of(below) if below is not None else self.root
        assert trusted is not None
        now = self.clock()
        opts = self.options
        verified: list[LightBlock] = []
        if opts.sequential and target.height > trusted.height + 1:
            heights = list(range(trusted.height + 1, target.height))
            for start in range(0, len(heights), BLOCKS_PER_BATCH * 3):
                for block in await provider.light_blocks(heights[start:start + BLOCKS_PER_BATCH * 3]):
                    verify(trusted, block, chain_id=self.chain_id, now_ms=now,
                           trusting_period_ms=opts.trusting_period_ms,
                           max_clock_drift_ms=opts.max_clock_drift_ms)
                    trusted = Trusted.of(block)
                    verified.append(block)
        pending = [target]
        while pending:
            candidate = pending[-1]
            try:
                verify(trusted, candidate, chain_id=self.chain_id, now_ms=now,
                       trusting_period_ms=opts.trusting_period_ms,
                       max_clock_drift_ms=opts.max_clock_drift_ms)
            except NotEnoughTrust:
                mid = (trusted.height + candidate.height) // 2
                pending.append(await provider.light_block(mid))
                continue
            trusted = Trusted.of(candidate)
            verified.append(candidate)
            pending.pop()
        return verified

    async def verify_height(self, height: int) -> LightBlock:
        """A verified light block of ``height`` (at most the verified head): stored, or
        verified now from the newest stored below it, or -- below every stored one --
        by hash links back from the oldest stored above it."""
        if height < 1 or height > self.height:
            raise LightError(f"height {height} is not verified: the light node has verified "
                             f"up to {self.height}")
        found = self.store.get(height)
        if found is not None:
            return found
        below = self.store.at_or_below(height)
        if below is not None or (self.root is not None and self.root.height == 0):

            async def forward(p: Provider) -> LightBlock:
                target = await p.light_block(height)
                blocks = await self.verify_block(p, target)
                self.store.save(blocks)
                return blocks[-1]

            return await self._with_primary(forward)
        return await self._with_primary(lambda p: self._backwards(p, height))

    async def _backwards(self, provider: Provider, height: int) -> LightBlock:
        above = self.store.at_or_above(height)
        assert above is not None
        if above.height - height > self.options.max_backwards:
            raise LightError(f"height {height} is {above.height - height} heights below the "
                             f"oldest verified header ({above.height}); this light node walks "
                             f"back at most {self.options.max_backwards}")
        expected_hash = above.header.prev_hash
        h = above.height - 1
        while True:
            lo = max(height, h - BLOCKS_PER_BATCH * 3 + 1)
            blocks = await provider.light_blocks(list(range(h, lo - 1, -1)))
            for block in blocks:
                if block.hash != expected_hash:
                    raise InvalidLightBlock(f"header {block.height} is not the parent the "
                                            f"verified header {block.height + 1} names")
                block.check(self.chain_id)
                expected_hash = block.header.prev_hash
                if block.height == height:
                    self.store.save([block])
                    return block
            h = lo - 1

    # ------------------------------------------------------------ following the head

    async def sync(self) -> LightBlock | None:
        """Verify the primary's newest header, cross-check it with the witnesses and
        keep it. Returns the new head (None: nothing new). A primary caught lying is
        replaced and the next one asked."""
        if self.halted:
            raise LightError(self.halted)
        while True:
            primary = self.need_primary()
            try:
                return await self._sync_from(primary)
            except (InvalidLightBlock, BadProof) as exc:
                if primary is self.primary:
                    self.caught(primary, "invalid header", str(exc))
            except Unreachable as exc:
                self.last_error = str(exc)
                await self._check_stale(primary, None)
                if primary is self.primary:
                    self.demote(primary, "did not answer")
                    raise

    async def _sync_from(self, primary: Provider) -> LightBlock | None:
        trusted = self.trusted()
        height = await primary.latest_height()
        if height <= trusted.height:
            # Nothing new (or less than it has shown us): behind a witness for long,
            # it is withholding or stuck.
            await self._check_stale(primary, height)
            return None
        try:
            target = await primary.light_block(height)
        except RPCFailed as exc:
            raise Unreachable(f"{primary.url} has no light block for its own head "
                              f"{height}: {exc}") from None
        blocks = await self.verify_block(primary, target, trusted)
        head = blocks[-1]
        if not await self._cross_check(head, trusted):
            return None  # the primary lost: the next sync asks the new one
        self.store.save(blocks)
        self.latest = head
        self._behind_since = None
        self.last_error = ""
        for listener in list(self.listeners):
            try:
                listener(head)
            except Exception:  # noqa: BLE001 - a listener's bug must not stop the client
                log.exception("light head listener failed")
        return head

    async def _check_stale(self, primary: Provider, primary_height: int | None) -> None:
        """A witness shows a verified head ``stale_heights`` above the primary's for
        ``stale_after_ms``: the primary withholds (or is stuck); drop it."""
        best: tuple[int, Provider] | None = None
        for w in list(self.witnesses):
            try:
                h = await w.latest_height()
            except (Unreachable, RPCFailed):
                continue
            if best is None or h > best[0]:
                best = (h, w)
        base = primary_height if primary_height is not None else self.height
        if best is None or best[0] < base + self.options.stale_heights:
            self._behind_since = None
            return
        witness = best[1]
        # The witness's head must verify before it can condemn anyone.
        try:
            target = await witness.light_block(best[0])
            await self.verify_block(witness, target, self.trusted())
        except (InvalidLightBlock, BadProof) as exc:
            self.caught(witness, "invalid header", str(exc))
            return
        except (Unreachable, RPCFailed, NotEnoughTrust):
            return
        now = self.clock()
        if self._behind_since is None:
            self._behind_since = now
        if now - self._behind_since >= self.options.stale_after_ms and primary is self.primary:
            self.caught(primary, "stale",
                        f"its head stayed at {base} for {(now - self._behind_since) // 1000} s "
                        f"while {witness.url} showed a verified header at {best[0]}",
                        height=base)
            self._behind_since = None

    async def _cross_check(self, head: LightBlock, trusted: Trusted) -> bool:
        """Compare ``head`` with every witness; True if the primary's head stands."""
        conflicts: list[tuple[Provider, LightBlock]] = []
        agree = 0
        for w in list(self.witnesses):
            try:
                theirs = await w.light_block(head.height)
            except (Unreachable, RPCFailed):
                continue  # down, or not at this height yet
            except (InvalidLightBlock, BadProof) as exc:
                self.caught(w, "invalid header", str(exc), head.height)
                continue
            if theirs.hash == head.hash:
                agree += 1
                continue
            try:
                await self.verify_block(w, theirs, trusted)
            except (InvalidLightBlock, BadProof) as exc:
                self.caught(w, "conflicting header",
                            f"its header {head.height} ({theirs.hash.hex()[:16]}…) differs from "
                            f"the verified one and does not verify: {exc}", head.height)
                continue
            except (Unreachable, RPCFailed, TrustExpired, NotEnoughTrust):
                continue
            conflicts.append((w, theirs))
        if not conflicts:
            return True
        # Both sides verify: validators signed two headers for one height. The side
        # more nodes stand by is taken; evidence goes to a node on that side.
        evidence = double_signs(head, conflicts[0][1])
        log.error("FORK at height %d: %s and %s both carry verifying certificates; %d "
                  "validator(s) signed both", head.height, head.hash.hex(),
                  conflicts[0][1].hash.hex(), len({e.validator for e in evidence}))
        primary = self.need_primary()
        primary_side = agree + 1
        if primary_side == len(conflicts):
            self.halted = (f"validators signed two chains at height {head.height} "
                           f"({head.hash.hex()[:16]}… from {primary.url}, "
                           f"{conflicts[0][1].hash.hex()[:16]}… from {conflicts[0][0].url}) "
                           "and as many nodes stand by each: this light node stops following "
                           "until its operator decides which nodes to trust")
            self.reports.append(Report(primary.url, "primary", "fork", self.halted,
                                       head.height, self.clock(), evidence))
            log.error("%s", self.halted)
            await self._report(evidence, [primary] + [w for w, _ in conflicts])
            return False
        if primary_side > len(conflicts):
            for w, theirs in conflicts:
                self.caught(w, "conflicting header",
                            f"its header {head.height} ({theirs.hash.hex()[:16]}…) verifies but "
                            f"conflicts with the one {primary_side} node(s) stand by",
                            head.height, evidence)
            await self._report(evidence, [primary])
            return True
        self.caught(primary, "conflicting header",
                    f"its header {head.height} ({head.hash.hex()[:16]}…) verifies but "
                    f"conflicts with the one {len(conflicts)} witness(es) stand by",
                    head.height, evidence)
        await self._report(evidence, [conflicts[0][0]])
        return False

    async def _report(self, evidence: list[DoubleSign], to: list[Provider]) -> None:
        if self.report_evidence is None or not evidence:
            return
        for node in to:
            try:
                await self.report_evidence(evidence, node)
            except Exception as exc:  # noqa: BLE001 - reporting is best effort
                log.warning("could not submit the evidence to %s: %s", node.url, exc)

    def status(self) -> dict[str, Any]:
        t = self.trusted()
        return {"chain_id": self.chain_id, "height": t.height, "hash": t.hash.hex(),
                "time_ms": t.time_ms,
                "trusted_root": {"height": self.root.height if self.root else 0,
                                 "hash": self.root.hash.hex() if self.root else ""},
                "primary": self.primary.url if self.primary else None,
                "witnesses": [w.url for w in self.witnesses],
                "headers_kept": len(self.store),
                "sequential": self.options.sequential,
                "trusting_period_ms": self.options.trusting_period_ms,
                "last_error": self.last_error, "halted": self.halted,
                "caught": [r.to_json() for r in self.reports]}


def double_signs(a: LightBlock, b: LightBlock) -> list[DoubleSign]:
    """The COMMIT signatures in both certificates of one height (and view) for
    different blocks: each is a validator's equivocation."""
    if a.height != b.height or a.commit.view != b.commit.view or a.hash == b.hash:
        return []
    theirs = {s.validator: s.signature for s in b.commit.signatures}
    out = []
    for s in a.commit.signatures:
        other = theirs.get(s.validator)
        if other is not None:
            out.append(DoubleSign.of(COMMIT, a.height, a.commit.view, s.validator,
                                     (a.hash, s.signature), (b.hash, other)))
    return out
