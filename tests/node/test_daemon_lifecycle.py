"""A node that fails to start leaves nothing open, and stopping is idempotent.

For each step of ``Node.start`` (LevelDB, executor, sign log, index, p2p, consensus,
metrics, RPC) a real node is made to fail at that step, the way it would in the
field where we can (a port already taken, the database locked by another holder, a
sign log that cannot be opened or is damaged) and by a patched step where we cannot.
Then nothing may be left behind: no file descriptor, no task, no timer on the loop,
the LevelDB lock released (a new handle opens the same directory), every port free
again; ``stop()`` on the failed node does nothing; and once the obstacle is gone, a new
``Node`` on the same home starts, answers and stops.
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import os
import socket
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from chain.codec import pack
from consensus.driver import ConsensusDriver
from consensus.errors import SignLogCorrupt
from consensus.signlog import _frame
from node import daemon
from node.config import (
    Config,
    ConsensusSection,
    MetricsSection,
    NodeSection,
    P2PSection,
    RPCSection,
)
from node.daemon import Node
from node.home import Home, init_home
from node.localnet import free_base_port
from node.rpc.client import RPCClient
from storage.errors import StorageError
from storage.kv import LevelDBKV

CHAIN = "agora-lifecycle"
WAIT = 10.0


@dataclass(frozen=True)
class Ports:
    p2p: int
    rpc: int
    metrics: int

    def all(self) -> tuple[int, ...]:
        return (self.p2p, self.rpc, self.metrics)


def make_home(path: Path) -> tuple[Home, Ports]:
    """A validator's home with RPC and metrics on listeners of their own."""
    init_home(path, chain_id=CHAIN, validator=True)
    home = Home(path)
    base = free_base_port(3)
    ports = Ports(base, base + 1, base + 2)
    home.write_config(Config(
        node=NodeSection(mode="validator", moniker="lifecycle"),
        p2p=P2PSection(listen=f"127.0.0.1:{ports.p2p}", pex=False),
        rpc=RPCSection(listen=f"127.0.0.1:{ports.rpc}"),
        metrics=MetricsSection(enabled=True, listen=f"127.0.0.1:{ports.metrics}"),
        consensus=ConsensusSection(block_interval_ms=10, idle_interval_ms=50,
                                   view_timeout_ms=1_000)))
    return home, ports


def chain_dir(home: Home) -> Path:
    return home.data_dir / "chain"


# ---------------------------------------------------------------------- what is open


def open_fds() -> dict[tuple[int, int, int], str]:
    """This process's open files: (fd, device, inode) -> what it is. An open file
    keeps its inode when renamed (LevelDB renames its LOG), so a rename is no leak."""
    out = {}
    for name in os.listdir("/proc/self/fd"):
        path = f"/proc/self/fd/{name}"
        with contextlib.suppress(OSError):  # the listing's own fd is gone by now
            st = os.stat(path)
            out[(int(name), st.st_dev, st.st_ino)] = os.readlink(path)
    return out


@dataclass
class Snapshot:
    """What this process and its event loop hold open at one moment."""

    fds: dict[tuple[int, int, int], str]
    tasks: set[asyncio.Task]
    timers: set[asyncio.TimerHandle]

    @classmethod
    async def take(cls) -> Snapshot:
        await asyncio.sleep(0)  # let callbacks already due run (a closed task's last step)
        loop = asyncio.get_running_loop()
        # _scheduled is the loop's heap of timer handles (CPython's BaseEventLoop): a
        # service left running shows there as timers it keeps setting.
        timers = {h for h in loop._scheduled if not h.cancelled()}  # type: ignore[attr-defined]
        return cls(open_fds(), asyncio.all_tasks() - {asyncio.current_task()}, timers)

    async def left_over_since(self, before: Snapshot) -> list[str]:
        now = await Snapshot.take()
        left = [f"fd {key[0]} -> {now.fds[key]}" for key in sorted(now.fds.keys() - before.fds)]
        left += [f"task {t!r}" for t in now.tasks - before.tasks if not t.done()]
        left += [f"timer {h!r}" for h in now.timers - before.timers]
        return left


def port_is_free(port: int) -> bool:
    with socket.socket() as s:
        try:
            s.bind(("127.0.0.1", port))
        except OSError:
            return False
        return True


async def assert_nothing_left(home: Home, ports: Ports, before: Snapshot) -> None:
    assert await before.left_over_since(before) == []
    kv = LevelDBKV(chain_dir(home))  # raises if anyone in this process holds the lock
    kv.close()
    assert [p for p in ports.all() if not port_is_free(p)] == []


@contextlib.contextmanager
def taken(port: int) -> Iterator[socket.socket]:
    """Another program listening on ``port``."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", port))
        s.listen()
        yield s


# ---------------------------------------------------------------------- the steps


@dataclass(frozen=True)
class Step:
    """How to make one start step fail: ``arrange(home, ports, monkeypatch, stack)``
    sets the obstacle up (undone when ``stack`` closes); the node must then fail with
    ``error``."""

    name: str
    arrange: Callable[[Home, Ports, pytest.MonkeyPatch, contextlib.ExitStack], None]
    error: type[BaseException]
    match: str | None = None


def boom(what: str) -> Callable[..., Any]:
    def fail(*_args: Any, **_kwargs: Any) -> Any:
        raise RuntimeError(f"{what} failed on purpose")
    return fail


def leveldb_held(home: Home, _ports: Ports, _mp: pytest.MonkeyPatch,
                 stack: contextlib.ExitStack) -> None:
    stack.callback(LevelDBKV(chain_dir(home)).close)


def signlog_is_a_directory(home: Home, _ports: Ports, _mp: pytest.MonkeyPatch,
                           stack: contextlib.ExitStack) -> None:
    home.signlog_path.unlink(missing_ok=True)
    home.signlog_path.mkdir(parents=True)
    stack.callback(home.signlog_path.touch)
    stack.callback(home.signlog_path.rmdir)


def signlog_damaged(home: Home, _ports: Ports, _mp: pytest.MonkeyPatch,
                    stack: contextlib.ExitStack) -> None:
    # A whole, checksummed record that is not a sign-log record: damage, not a torn
    # tail, so the node must refuse to sign anything rather than guess.
    home.signlog_path.parent.mkdir(parents=True, exist_ok=True)
    home.signlog_path.write_bytes(_frame(pack([1, 2])))
    stack.callback(home.signlog_path.write_bytes, b"")


def index_fails(_home: Home, _ports: Ports, mp: pytest.MonkeyPatch,
                _stack: contextlib.ExitStack) -> None:
    from node.index import ChainIndex
    mp.setattr(ChainIndex, "catch_up", boom("index catch-up"))


def driver_fails_after_starting(_home: Home, _ports: Ports, mp: pytest.MonkeyPatch,
                                _stack: contextlib.ExitStack) -> None:
    # The driver sets its first timers, then fails (as when the first proposal's
    # sign-log write fails): what it set must not outlive the failed start.
    start = ConsensusDriver.start

    async def start_then_fail(self: ConsensusDriver) -> None:
        await start(self)
        raise RuntimeError("consensus start failed on purpose")
    mp.setattr(ConsensusDriver, "start", start_then_fail)


def port_taken(which: str) -> Callable[..., None]:
    def arrange(_home: Home, ports: Ports, _mp: pytest.MonkeyPatch,
                stack: contextlib.ExitStack) -> None:
        stack.enter_context(taken(getattr(ports, which)))
    return arrange


STEPS = [
    Step("leveldb-locked", leveldb_held, StorageError, "cannot open LevelDB"),
    Step("executor", lambda _h, _p, mp, _s: mp.setattr(daemon, "Executor", boom("executor")),
         RuntimeError, "executor"),
    Step("signlog-unopenable", signlog_is_a_directory, IsADirectoryError),
    Step("signlog-damaged", signlog_damaged, SignLogCorrupt, "unreadable"),
    Step("index", index_fails, RuntimeError, "index catch-up"),
    Step("p2p-port-taken", port_taken("p2p"), OSError),
    Step("consensus-start", driver_fails_after_starting, RuntimeError, "consensus start"),
    Step("metrics-port-taken", port_taken("metrics"), OSError),
    Step("rpc-port-taken", port_taken("rpc"), OSError),
]


@pytest.mark.parametrize("step", STEPS, ids=[s.name for s in STEPS])
async def test_a_failed_start_leaves_nothing_open(tmp_path: Path, step: Step) -> None:
    home, ports = make_home(tmp_path)
    with pytest.MonkeyPatch.context() as mp, contextlib.ExitStack() as obstacle:
        step.arrange(home, ports, mp, obstacle)
        before = await Snapshot.take()
        node = Node(home)
        with pytest.raises(step.error, match=step.match) as failure:
            async with asyncio.timeout(WAIT):
                await node.start()
        if step.error is OSError:
            assert failure.value.errno == errno.EADDRINUSE
        assert await before.left_over_since(before) == []
        await node.stop()  # after a failed start: nothing to stop, and no error
        await node.stop()
        assert await before.left_over_since(before) == []
    # With the obstacle gone (a held lock or port released), the node holds neither.
    await assert_nothing_left(home, ports, before)
    # And the same home starts, serves and stops.
    await start_serve_and_stop(home, ports)
    await assert_nothing_left(home, ports, before)


async def start_serve_and_stop(home: Home, ports: Ports) -> None:
    node = Node(home)
    async with asyncio.timeout(WAIT):
        await node.start()
    try:
        async with RPCClient(f"http://127.0.0.1:{ports.rpc}/", timeout=WAIT) as client:
            assert (await client.status())["chain_id"] == CHAIN
    finally:
        await node.stop()


async def test_stop_is_idempotent_and_releases_everything(tmp_path: Path) -> None:
    home, ports = make_home(tmp_path)
    before = await Snapshot.take()
    await Node(home).stop()  # never started: nothing to do
    node = Node(home)
    await node.start()
    assert [p for p in ports.all() if port_is_free(p)] == []  # all three listening
    await node.stop()
    await node.stop()  # again: harmless
    await assert_nothing_left(home, ports, before)
    await start_serve_and_stop(home, ports)  # and the home starts again
    await assert_nothing_left(home, ports, before)


async def test_the_leak_checks_have_teeth(tmp_path: Path) -> None:
    """What the checks above look for is really seen when it is there."""
    home, ports = make_home(tmp_path)
    before = await Snapshot.take()
    held = LevelDBKV(chain_dir(home))
    try:
        with pytest.raises(StorageError, match="cannot open LevelDB"):
            LevelDBKV(chain_dir(home))  # one process, one holder: the lock is checked
        assert any("chain" in line for line in await before.left_over_since(before))
    finally:
        held.close()
    with taken(ports.rpc):
        assert not port_is_free(ports.rpc)
        assert any("socket" in line for line in await before.left_over_since(before))
    task = asyncio.get_running_loop().create_task(asyncio.Event().wait())
    timer = asyncio.get_running_loop().call_later(60, lambda: None)
    left = await before.left_over_since(before)
    assert any(line.startswith("task") for line in left)
    assert any(line.startswith("timer") for line in left)
    task.cancel()
    timer.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await task
    assert await before.left_over_since(before) == []
