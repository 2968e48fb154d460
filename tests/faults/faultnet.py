"""A 4-validator localnet of real `agora start` processes for fault injection.

:class:`FaultNet` makes the homes with :func:`node.localnet.init` (ports chosen free),
rewires each node's persistent peers through a :class:`chaos_proxy.ChaosProxy` (node
``i``'s peer ``j`` is the proxy's port for the link ``i -> j``), shortens timeouts, and
starts, kills (``SIGKILL`` of the process group), pauses (``SIGSTOP``), resumes,
restarts and wipes nodes. Every process it starts is in its own process group and is
killed when the net closes — by the fixture's finalizer, whatever the test did — and,
should the test process itself die, by the kernel (``PR_SET_PDEATHSIG``) and by the
node's own parent check (``AGORA_EXIT_WITH_PARENT``).

Waits poll what the nodes answer over RPC until a deadline; nothing sleeps on a guess.
:class:`TransferLoad` keeps native transfers flowing through the live nodes and
records which ones ``broadcast_tx_commit`` acknowledged.
"""

from __future__ import annotations

import asyncio
import atexit
import contextlib
import json
import os
import random
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from chaos_proxy import ChaosProxy
from invariants import Ack, Report, check
from wire_spy import WireSpy

from chain.address import address_from_text
from chain.keys import PrivateKey
from chain.system import COMMERCE_CONTRACTS
from chain.tx import Call, Transaction
from node import localnet
from node.config import ConsensusSection
from node.daemon import EXIT_WITH_PARENT
from node.home import Home
from node.rpc.client import NodeUnreachable, RPCClient, RPCFailed, transfer
from vm.compiler.abi import encode_value
from vm.gas import encode_args

REPO = Path(__file__).resolve().parents[2]
CHAIN_ID = localnet.CHAIN_ID
#: Short timeouts: a failed view costs about a second, an idle block comes every 0.3 s.
FAST = ConsensusSection(block_interval_ms=100, idle_interval_ms=300, view_timeout_ms=1_000,
                        max_view_timeout_ms=4_000)
#: Gas for a reward-token call (``transfer`` or ``redeem``; the unused part is refunded).
TOKEN_CALL_GAS = 200_000
#: The longest any one wait may take on a loaded 2-core machine.
WAIT = 90.0
POLL = 0.05

#: Process groups started by this test process and not yet reaped: killed at exit,
#: whatever way the tests ended.
_GROUPS: set[int] = set()


def _kill_groups() -> None:
    for pgid in list(_GROUPS):
        for sig in (signal.SIGCONT, signal.SIGKILL):
            with contextlib.suppress(OSError):
                os.killpg(pgid, sig)
    _GROUPS.clear()


atexit.register(_kill_groups)


def spawn(argv: list[str], log_path: Path) -> subprocess.Popen:
    """Run ``argv`` (a Python command line, from the repository root) in its own
    process group, its output appended to ``log_path``; it dies with us."""
    # PR_SET_PDEATHSIG (main thread, Linux), as the localnet starts its nodes.
    die_with_us = getattr(localnet, "_die_with_us", None)
    preexec = die_with_us() if die_with_us is not None else None
    with open(log_path, "ab") as log:
        proc = subprocess.Popen(
            argv, cwd=REPO, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
            env={**os.environ, EXIT_WITH_PARENT: str(os.getpid())},
            start_new_session=True, preexec_fn=preexec)
    _GROUPS.add(proc.pid)
    return proc


def kill_group(proc: subprocess.Popen, sig: int = signal.SIGKILL) -> None:
    with contextlib.suppress(OSError):
        os.killpg(proc.pid, sig)


@dataclass
class FaultNet:
    home: Path
    infos: list[localnet.NodeInfo]
    genesis: dict[str, Any]
    proxy: ChaosProxy | None
    procs: dict[int, subprocess.Popen] = field(default_factory=dict)
    paused: set[int] = field(default_factory=set)
    #: Polling clients (short timeout); the load has its own.
    clients: dict[int, RPCClient] = field(default_factory=dict)
    rng: random.Random = field(default_factory=random.Random)
    spy: WireSpy | None = None

    # ------------------------------------------------------------------ setup

    @classmethod
    def create(cls, root: Path, *, validators: int = 4, proxy: bool = True,
               consensus: ConsensusSection = FAST, seed: int | None = None) -> FaultNet:
        base = localnet.free_base_port(2 * validators)
        home = root / "localnet"
        infos = localnet.init(home, validators, base, consensus=consensus)
        genesis = json.loads((home / "genesis.json").read_text())
        chaos = ChaosProxy(seed) if proxy else None
        net = cls(home, infos, genesis, chaos, rng=random.Random(seed))
        try:
            net._configure()
        except BaseException:
            net.close_sync()
            raise
        for info in infos:
            net.clients[info.index] = RPCClient(info.rpc, timeout=3.0)
        return net

    def _configure(self) -> None:
        """Peers through the proxy; quick failure detection; long state history (the
        invariant checker reads state at old heights); a client waits at most 20 s for
        a commit."""
        n = len(self.infos)
        for info in self.infos:
            home = Home(info.home)
            config = home.config()
            p2p_update: dict[str, Any] = {"ping_interval_ms": 1_000, "peer_timeout_ms": 5_000}
            if self.proxy is not None:
                peers = []
                for j in range(n):
                    if j != info.index:
                        _, port = self.infos[j].p2p.rsplit(":", 1)
                        proxy_port = self.proxy.add_link(info.index, j, int(port))
                        peers.append(f"{self.infos[j].node_id}@127.0.0.1:{proxy_port}")
                p2p_update["persistent_peers"] = peers
            home.write_config(config.model_copy(update={
                "p2p": config.p2p.model_copy(update=p2p_update),
                "rpc": config.rpc.model_copy(update={"commit_timeout_ms": 20_000}),
                "storage": config.storage.model_copy(update={"history": 100_000}),
            }))

    def watch(self) -> WireSpy:
        """Start a :class:`WireSpy` on every validator (direct links, not proxied)."""
        assert self.spy is None
        validators = Home(self.infos[0].home).genesis().validators
        self.spy = WireSpy(CHAIN_ID, validators,
                           [f"{info.node_id}@{info.p2p}" for info in self.infos])
        self.spy.start()
        return self.spy

    def assert_no_double_signs(self, exempt: Iterable[int] = ()) -> None:
        """The spy saw no validator (but ``exempt`` ones) sign two different things
        for one (kind, height, view)."""
        assert self.spy is not None
        skip = {address_from_text(self.infos[i].validator) for i in exempt}
        names = {address_from_text(info.validator): f"node{info.index}" for info in self.infos}
        found = {(names.get(k[0], k[0].hex()),) + k[1:]: sorted(h.hex()[:16] for h in v)
                 for k, v in self.spy.conflicts().items() if k[0] not in skip}
        assert not found, f"double signs seen on the wire: {found}"
        assert self.spy.forged == 0, f"{self.spy.forged} messages with bad signatures"

    # ------------------------------------------------------------------ processes

    @property
    def size(self) -> int:
        return len(self.infos)

    def validator(self, i: int) -> str:
        """Node i's validator address (agora1...)."""
        return self.infos[i].validator

    def validator_hex(self, i: int) -> str:
        return address_from_text(self.infos[i].validator).hex()

    def log_path(self, i: int) -> Path:
        return self.infos[i].home / "node.log"

    def start(self, i: int, argv: list[str] | None = None) -> None:
        """Start node i (``agora start``, or ``argv`` with the home appended)."""
        assert i not in self.procs or self.procs[i].poll() is not None, f"node{i} runs"
        home = str(self.infos[i].home)
        command = (argv or [sys.executable, "-m", "cli", "start", "--home"]) + [home]
        self.procs[i] = spawn(command, self.log_path(i))

    def start_all(self) -> None:
        for info in self.infos:
            self.start(info.index)

    def kill(self, i: int) -> None:
        """kill -9 node i's process group; returns once it is gone."""
        proc = self.procs.pop(i)
        kill_group(proc, signal.SIGKILL)
        proc.wait(30)
        _GROUPS.discard(proc.pid)
        self.paused.discard(i)

    def stop(self, i: int) -> None:
        """A clean stop (SIGTERM), SIGKILL after 15 s."""
        proc = self.procs.pop(i)
        self.resume(i)
        kill_group(proc, signal.SIGTERM)
        try:
            proc.wait(15)
        except subprocess.TimeoutExpired:
            kill_group(proc, signal.SIGKILL)
            proc.wait(15)
        _GROUPS.discard(proc.pid)

    def pause(self, i: int) -> None:
        """SIGSTOP node i: it holds its sockets and state but does nothing."""
        kill_group(self.procs[i], signal.SIGSTOP)
        self.paused.add(i)

    def resume(self, i: int) -> None:
        if i in self.paused:
            kill_group(self.procs[i], signal.SIGCONT)
            self.paused.discard(i)

    def wipe_data(self, i: int, *, signlog: bool = False) -> None:
        """Delete node i's chain data (it must not be running); with ``signlog`` its
        sign log too, wherever the home keeps it."""
        assert i not in self.procs, f"node{i} is running"
        home = Home(self.infos[i].home)
        shutil.rmtree(home.data_dir, ignore_errors=True)
        if signlog:
            for path in (home.signlog_path, home.data_dir / "signlog"):
                with contextlib.suppress(FileNotFoundError):
                    path.unlink()

    def running(self) -> list[int]:
        """Nodes started, not exited, not paused."""
        return [i for i, p in sorted(self.procs.items())
                if p.poll() is None and i not in self.paused]

    def exited(self) -> dict[int, int]:
        return {i: p.returncode for i, p in self.procs.items() if p.poll() is not None}

    def log(self, i: int, tail: int = 4000) -> str:
        try:
            return self.log_path(i).read_text(errors="replace")[-tail:]
        except OSError:
            return ""

    def evidence_lines(self, against: int, among: Iterable[int] | None = None) -> list[str]:
        """Lines of the other nodes' logs that report evidence of a double sign by
        node ``against``'s validator."""
        target = self.validator_hex(against)
        lines = []
        for i in among if among is not None else range(self.size):
            if i == against:
                continue
            text = self.log_path(i).read_text(errors="replace") \
                if self.log_path(i).exists() else ""
            lines += [f"node{i}: {line}" for line in text.splitlines()
                      if "evidence" in line and (target in line or target[:12] in line)]
        return lines

    # ------------------------------------------------------------------ reading

    async def height(self, i: int) -> int | None:
        if i in self.paused or i not in self.procs:
            return None
        try:
            return (await self.clients[i].status())["height"]
        except (NodeUnreachable, OSError, TimeoutError, RPCFailed):
            return None  # starting, stopping, or busy

    async def heights(self, indexes: Iterable[int] | None = None) -> dict[int, int | None]:
        idx = list(range(self.size) if indexes is None else indexes)
        values = await asyncio.gather(*(self.height(i) for i in idx))
        return dict(zip(idx, values, strict=True))

    async def tip(self, indexes: Iterable[int] | None = None) -> int:
        """The highest height any of ``indexes`` (default: the running nodes) reports."""
        hs = await self.heights(self.running() if indexes is None else indexes)
        known = [h for h in hs.values() if h is not None]
        return max(known) if known else 0

    def describe(self, indexes: Iterable[int] | None = None) -> str:
        idx = list(range(self.size) if indexes is None else indexes)
        parts = []
        for i in idx:
            proc = self.procs.get(i)
            state = ("not started" if proc is None else
                     f"exited {proc.returncode}" if proc.poll() is not None else
                     "paused" if i in self.paused else "running")
            parts.append(f"--- node{i} ({state}), log tail:\n{self.log(i)}")
        return "\n".join(parts)

    async def until(self, condition: Callable[[], Awaitable[bool]], what: str,
                    timeout: float = WAIT, nodes: Iterable[int] | None = None) -> None:
        """Poll ``await condition()`` until it holds; fail the test at ``timeout``
        saying ``what`` was awaited, with the nodes' heights and log tails."""
        deadline = time.monotonic() + timeout
        while not await condition():
            if time.monotonic() > deadline:
                heights = await self.heights()
                pytest.fail(f"timed out after {timeout:g} s waiting for {what}; heights "
                            f"{heights}, proxy {self._proxy_state()}\n{self.describe(nodes)}")
            dead = {i: c for i, c in self.exited().items()}
            if dead:
                pytest.fail(f"nodes exited while waiting for {what}: {dead}\n"
                            f"{self.describe(dead)}")
            await asyncio.sleep(POLL)

    def _proxy_state(self) -> str:
        if self.proxy is None:
            return "none"
        return ", ".join(f"{sorted(p)}:{'cut' if r.cut else ''}{'stall' if r.stall else ''}"
                         f"{f'delay={r.delay}' if r.delay else ''}"
                         for p, r in self.proxy._rules.items() if not r.plain) or "plain"

    async def wait_heights(self, indexes: Iterable[int], at_least: int,
                           timeout: float = WAIT) -> dict[int, int]:
        idx = list(indexes)

        async def reached() -> bool:
            hs = await self.heights(idx)
            return all(h is not None and h >= at_least for h in hs.values())
        await self.until(reached, f"nodes {idx} at height >= {at_least}", timeout, idx)
        return {i: h for i, h in (await self.heights(idx)).items() if h is not None}

    async def advance(self, indexes: Iterable[int], blocks: int,
                      timeout: float = WAIT) -> int:
        """Wait until each of ``indexes`` is ``blocks`` past the highest of them now;
        the height reached."""
        idx = list(indexes)
        target = await self.tip(idx) + blocks
        await self.wait_heights(idx, target, timeout)
        return target

    async def assert_frozen(self, indexes: Iterable[int], seconds: float, *,
                            slack: int = 0, settle: float = 0.0) -> int:
        """None of ``indexes`` commits a block for ``seconds``; the highest height they
        hold. First, for ``settle`` seconds, each may still commit ``slack`` blocks
        (messages already on their way when the fault began). A node that does not
        answer counts as not moving. Watching for something *not* to happen takes the
        whole window: callers make it several view timeouts long."""
        idx = list(indexes)
        start = await self.heights(idx)

        def check_slack(now: dict[int, int | None]) -> None:
            over = {i: (start[i], h) for i, h in now.items()
                    if h is not None and start[i] is not None and h > start[i] + slack}
            assert not over, f"nodes committed more than {slack} blocks: {over}"

        settle_until = time.monotonic() + settle
        while time.monotonic() < settle_until:
            check_slack(await self.heights(idx))
            await asyncio.sleep(0.1)
        base = await self.heights(idx)
        check_slack(base)
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            now = await self.heights(idx)
            moved = {i: (base[i], h) for i, h in now.items()
                     if h is not None and base[i] is not None and h > base[i]}
            assert not moved, f"nodes committed blocks while they could not: {moved}"
            for i, h in now.items():
                if base[i] is None:
                    base[i] = h
            await asyncio.sleep(0.1)
        known = [h for h in base.values() if h is not None]
        return max(known) if known else 0

    async def check(self, indexes: Iterable[int] | None = None, *,
                    acks: Iterable[Ack] = (), converge: bool = True,
                    min_height: int = 1, state_roots: bool = True) -> Report:
        """The invariants over ``indexes`` (default: every running node). With
        ``converge``, first wait until they all hold the height the highest holds
        now (so the accounts are compared at a recent height)."""
        idx = list(self.running() if indexes is None else indexes)
        if converge:
            await self.wait_heights(idx, max(await self.tip(idx), min_height))
        return await check({i: self.infos[i].rpc for i in idx}, self.genesis,
                           acknowledged=acks, min_height=min_height, state_roots=state_roots)

    def expected_proposer(self, height: int) -> int:
        """The node that proposes ``height`` in view 0 while every validator is in the
        rotation: validator ``height mod n`` in genesis order (checked against the
        chain by the callers)."""
        return height % self.size

    # ------------------------------------------------------------------ teardown

    def close_sync(self) -> None:
        for i in list(self.procs):
            self.resume(i)
        for proc in self.procs.values():
            kill_group(proc, signal.SIGTERM)
        deadline = time.monotonic() + 10
        for proc in self.procs.values():
            try:
                proc.wait(max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                kill_group(proc, signal.SIGKILL)
                proc.wait(10)
            _GROUPS.discard(proc.pid)
        self.procs.clear()
        if self.spy is not None:
            self.spy.close()
        if self.proxy is not None:
            self.proxy.close()

    async def close(self) -> None:
        try:
            await asyncio.get_running_loop().run_in_executor(None, self.close_sync)
        finally:
            for client in self.clients.values():
                with contextlib.suppress(Exception):
                    await client.close()


# ---------------------------------------------------------------------- load


@dataclass
class TransferLoad:
    """Native transfers from the demo accounts, each sender one at a time through
    ``broadcast_tx_commit`` on a live node (round robin), for as long as it runs.
    A failure (node killed, no quorum, commit timeout) is counted and the sender
    takes its nonce again from a live node; only acknowledged transactions are
    promised to be in the chain."""

    net: FaultNet
    senders: list[PrivateKey]
    recipients: list[bytes]
    #: The share of transactions that are reward-token calls (``transfer`` to a
    #: recipient, or ``redeem`` for coin) rather than native transfers.
    token_share: float = 0.0
    acks: list[Ack] = field(default_factory=list)
    #: Receipt status of each acknowledged token call.
    token_calls: list[str] = field(default_factory=list)
    failures: int = 0
    rng: random.Random = field(default_factory=random.Random)
    _stop: asyncio.Event = field(default_factory=asyncio.Event)
    _tasks: list[asyncio.Task] = field(default_factory=list)
    _clients: dict[int, RPCClient] = field(default_factory=dict)

    @classmethod
    def demo(cls, net: FaultNet, seed: int | None = None, token_share: float = 0.0
             ) -> TransferLoad:
        senders = [localnet.account_key(net.home, name) for name in localnet.DEMO_ACCOUNTS]
        rng = random.Random(seed)
        recipients = [PrivateKey.from_seed_text(f"faults-recipient-{i}").address
                      for i in range(4)] + [k.address for k in senders]
        return cls(net, senders, recipients, token_share=token_share, rng=rng)

    def _tx(self, key: PrivateKey, nonce: int, offset: int) -> tuple[Transaction, bool]:
        """The next transaction of a sender; whether it is a token call."""
        to = self.rng.choice([r for r in self.recipients if r != key.address])
        memo = f"faults {offset}/{nonce}"
        if self.rng.random() >= self.token_share:
            return transfer(key, CHAIN_ID, nonce, to, self.rng.randrange(1, 10**6),
                            memo=memo), False
        amount = self.rng.randrange(1, 10**15)
        if self.rng.random() < 0.5:
            method, args = "transfer", [encode_value("Address", to),
                                        encode_value("uint", amount)]
        else:
            method, args = "redeem", [encode_value("uint", amount)]
        action = Call(COMMERCE_CONTRACTS["token"], method, encode_args(args), 0)
        return Transaction.create(key, CHAIN_ID, nonce, action, gas_limit=TOKEN_CALL_GAS,
                                  gas_price=1, memo=memo), True

    def start(self) -> None:
        for info in self.net.infos:
            self._clients[info.index] = RPCClient(info.rpc, timeout=25.0)
        self._tasks = [asyncio.get_running_loop().create_task(self._send(key, n))
                       for n, key in enumerate(self.senders)]

    async def stop(self) -> list[Ack]:
        self._stop.set()
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        for client in self._clients.values():
            await client.close()
        return self.acks

    async def __aenter__(self) -> TransferLoad:
        self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()

    async def wait_acks(self, count: int, timeout: float = WAIT) -> None:
        """Until at least ``count`` transactions are acknowledged."""
        await self.net.until(self._has(count), f"{count} acknowledged transfers", timeout)

    def _has(self, count: int) -> Callable[[], Awaitable[bool]]:
        async def enough() -> bool:
            return len(self.acks) >= count
        return enough

    async def _send(self, key: PrivateKey, offset: int) -> None:
        nonce: int | None = None
        turn = offset
        while not self._stop.is_set():
            live = self.net.running()
            if not live:
                await asyncio.sleep(0.1)
                continue
            turn += 1
            client = self._clients[live[turn % len(live)]]
            try:
                if nonce is None:
                    nonce = (await client.account(key.address))["pending_nonce"]
                tx, token = self._tx(key, nonce, offset)
                result = await client.broadcast_tx_commit(tx)
                self.acks.append(Ack.of(result))
                if token:
                    self.token_calls.append(result["receipt"]["status"])
                nonce += 1
            except (RPCFailed, NodeUnreachable, OSError, TimeoutError):
                self.failures += 1
                nonce = None  # ask again: the tx may or may not be on its way
                await asyncio.sleep(0.2)
