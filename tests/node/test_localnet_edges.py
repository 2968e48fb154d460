"""`agora localnet` as a newcomer meets it (issue 14): its nodes die with it however it
dies, a second one on the same home refuses (naming what runs and how to stop it),
`--base-port` moves an existing localnet, status lines never ask a node this run did
not start, and localnet.json names the commerce contracts.

Real processes on 127.0.0.1, on ports from free_base_port; every wait polls for a
condition with a deadline; every process (the localnets and any node of theirs) is
killed in a finally.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import signal
import subprocess
import sys
import textwrap
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from chain.address import address_to_text
from chain.system import SYSTEM_CONTRACTS
from node import localnet
from node.config import ConsensusSection
from node.home import Home, init_home
from node.rpc.client import NodeUnreachable, RPCFailed, SyncClient

WAIT = 60.0  # the most any step may take on a loaded 2-core machine
FAST = ConsensusSection(block_interval_ms=50, idle_interval_ms=200, view_timeout_ms=1_000)


def until(condition: Callable[[], bool], what: str) -> None:
    deadline = time.monotonic() + WAIT
    while not condition():
        if time.monotonic() > deadline:
            pytest.fail(f"not within {WAIT:.0f} s: {what}")
        time.sleep(0.1)


def gone(pid: int) -> bool:
    """The process has exited (a zombie nobody reaped yet counts as exited)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except FileNotFoundError:
        return True
    except OSError:  # no /proc here
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return True
        return False
    return stat.rsplit(")", 1)[1].split()[0] in ("Z", "X")


def height(url: str) -> int | None:
    try:
        with SyncClient(url, timeout=5.0) as client:
            return int(client.status()["height"])
    except (NodeUnreachable, RPCFailed, OSError):
        return None


def agora(*args: str, **kwargs) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "cli", *args],
                            stdin=subprocess.DEVNULL, **kwargs)


def refused(*args: str) -> str:
    """An `agora ...` that must refuse: exit code 1; its stderr."""
    proc = agora(*args, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        out, err = proc.communicate(timeout=WAIT)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode == 1, (out, err)
    assert "Traceback" not in err
    return err


@pytest.fixture
def cleanup() -> Iterator[tuple[list[subprocess.Popen], list[Path]]]:
    """(processes, node homes): when the test ends, every process is killed, and so is
    any node still running on one of the homes (it holds the home's lock)."""
    procs: list[subprocess.Popen] = []
    homes: list[Path] = []
    try:
        yield procs, homes
    finally:
        for proc in procs:
            if proc.poll() is None:
                proc.kill()
            proc.wait()
        for path in homes:
            pid = Home(path).running_pid()
            if pid:
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, signal.SIGKILL)


# ---------------------------------------------------------------------- no processes


def test_localnet_json_names_the_commerce_contracts_and_accounts(tmp_path: Path) -> None:
    home = tmp_path / "net"
    localnet.init(home, 1, localnet.free_base_port(2))
    manifest = json.loads((home / "localnet.json").read_text())
    assert manifest["contracts"] == {name: address_to_text(address)
                                     for name, address in SYSTEM_CONTRACTS.items()}
    assert set(manifest["contracts"]) == {"token", "catalog", "escrow", "reviews", "governance"}
    assert [a["name"] for a in manifest["accounts"]] == list(localnet.DEMO_ACCOUNTS)
    assert [n["pid"] for n in manifest["nodes"]] == [None]


def test_base_port_moves_an_existing_localnet(tmp_path: Path) -> None:
    home = tmp_path / "net"
    old = localnet.free_base_port(6)
    infos = localnet.init(home, 3, old)
    # A peer the user added by hand (not one of the localnet's) is kept as it is.
    first = Home(infos[0].home)
    config = first.config()
    stranger = "ab" * 20 + "@127.0.0.1:1234"
    first.write_config(config.model_copy(update={"p2p": config.p2p.model_copy(
        update={"persistent_peers": [*config.p2p.persistent_peers, stranger]})}))
    new = localnet.free_base_port(6)
    moved = localnet.move_ports(home, new)
    assert moved is not None
    assert moved == localnet.node_infos(home)  # localnet.json says the same
    for info in moved:
        config = Home(info.home).config()
        assert config.p2p.listen == info.p2p == f"127.0.0.1:{new + 2 * info.index}"
        assert config.rpc.listen == f"127.0.0.1:{new + 2 * info.index + 1}"
        assert info.rpc == f"http://127.0.0.1:{new + 2 * info.index + 1}"
        peers = [p for p in config.p2p.persistent_peers if p != stranger]
        assert sorted(peers) == sorted(f"{o.node_id}@{o.p2p}" for o in moved if o != info)
    assert stranger in Home(infos[0].home).config().p2p.persistent_peers
    assert localnet.move_ports(home, new) is None  # already there: nothing to do


async def test_status_lines_never_ask_a_node_whose_process_exited(tmp_path: Path) -> None:
    """Whatever answers on an exited node's port is not it: it is not asked."""
    asked = 0

    async def count(_reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        nonlocal asked
        asked += 1
        writer.close()

    server = await asyncio.start_server(count, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    exited = subprocess.Popen([sys.executable, "-c", "raise SystemExit(3)"])
    exited.wait()
    info = localnet.NodeInfo(0, tmp_path, "127.0.0.1:1", f"http://127.0.0.1:{port}", "", "")
    lines: list[str] = []
    stop = asyncio.Event()

    def echo(line: str) -> None:
        lines.append(line)
        stop.set()
    try:
        async with asyncio.timeout(WAIT):
            await localnet._status_lines([info], {0: exited}, 0.1, stop, echo)
    finally:
        server.close()
        await server.wait_closed()
    assert len(lines) == 1 and lines[0].endswith("node0 exited (3)")
    assert asked == 0


# ---------------------------------------------------------------------- processes


@pytest.mark.timeout(180)
def test_nodes_die_with_a_killed_localnet_and_a_second_one_refuses_meanwhile(
        tmp_path: Path, cleanup: tuple[list[subprocess.Popen], list[Path]]) -> None:
    procs, homes = cleanup
    home = tmp_path / "net"
    infos = localnet.init(home, 2, localnet.free_base_port(4), consensus=FAST)
    homes.extend(info.home for info in infos)
    base = localnet.free_base_port(4)  # and the run moves it here
    out = tmp_path / "localnet.out"
    with open(out, "wb") as sink:
        run = agora("localnet", "--home", str(home), "--validators", "2",
                    "--base-port", str(base), stdout=sink, stderr=subprocess.STDOUT)
    procs.append(run)

    def moved() -> bool:
        assert run.poll() is None, out.read_text()
        return "moved the localnet" in out.read_text()
    until(moved, "the localnet moves to the new ports")
    infos = localnet.node_infos(home)
    assert [i.rpc for i in infos] == [f"http://127.0.0.1:{base + 1}",
                                      f"http://127.0.0.1:{base + 3}"]

    def committing() -> bool:
        assert run.poll() is None, out.read_text()
        # Two validators commit only together: both on the new ports, peered.
        return all((h := height(i.rpc)) is not None and h >= 2 for i in infos)
    until(committing, "both nodes commit on the moved ports")
    pids = [Home(i.home).running_pid() for i in infos]
    manifest = json.loads((home / "localnet.json").read_text())
    assert [n["pid"] for n in manifest["nodes"]] == pids and all(pids)

    err = refused("localnet", "--home", str(home), "--validators", "2")
    assert f"another `agora localnet` (pid {run.pid}) is running in {home}" in err
    assert all(Home(i.home).running_pid() == pid for i, pid in zip(infos, pids, strict=True))

    run.kill()  # SIGKILL: the localnet runs no code of its own on the way out
    run.wait()
    until(lambda: all(gone(pid) for pid in pids if pid), "the nodes exit after the localnet")
    for info in infos:
        assert Home(info.home).running_pid() is None
        assert "stopped at height" in (info.home / "node.log").read_text()  # cleanly


@pytest.mark.timeout(120)
def test_a_rerun_refuses_while_a_node_of_its_localnet_runs(
        tmp_path: Path, cleanup: tuple[list[subprocess.Popen], list[Path]]) -> None:
    procs, homes = cleanup
    home = tmp_path / "net"
    infos = localnet.init(home, 2, localnet.free_base_port(4), consensus=FAST)
    homes.extend(info.home for info in infos)
    node = localnet.start_node(infos[0].home, infos[0].home / "node.log")  # left running
    procs.append(node)
    until(lambda: Home(infos[0].home).running_pid() == node.pid, "node0 holds its home")
    before = (home / "localnet.json").read_text()
    err = refused("localnet", "--home", str(home), "--validators", "2")
    assert f"node0 (pid {node.pid}, home {infos[0].home})" in err
    assert f"kill {node.pid}" in err
    assert "node1" not in err
    assert (home / "localnet.json").read_text() == before  # no pids rewritten
    assert node.poll() is None and Home(infos[1].home).running_pid() is None


#: Each way a node learns its parent died, with the other one switched off in the
#: parent that starts it: what it does, and what the node's log then says.
WITHOUT = {
    # The portable way alone: AGORA_EXIT_WITH_PARENT, Linux's death signal off.
    "parent-check": ("localnet._die_with_us = lambda: None",
                     "the process that started this node (pid {parent}) is gone: stopping"),
    # Linux's PR_SET_PDEATHSIG alone: the node is told no parent pid to watch.
    "pdeathsig": ("import node.daemon; node.daemon.EXIT_WITH_PARENT = 'AGORA_UNUSED'",
                  "stopping"),
}


@pytest.mark.timeout(120)
@pytest.mark.parametrize("way", WITHOUT, ids=list(WITHOUT))
def test_a_node_stops_once_its_parent_is_gone(
        tmp_path: Path, cleanup: tuple[list[subprocess.Popen], list[Path]], way: str) -> None:
    if way == "pdeathsig" and not sys.platform.startswith("linux"):
        pytest.skip("PR_SET_PDEATHSIG is Linux's")
    procs, homes = cleanup
    path = tmp_path / "node"
    init_home(path, chain_id="agora-orphan", validator=True)
    base = localnet.free_base_port(2)
    config = Home(path).config()
    Home(path).write_config(config.model_copy(update={
        "p2p": config.p2p.model_copy(update={"listen": f"127.0.0.1:{base}"}),
        "rpc": config.rpc.model_copy(update={"listen": f"127.0.0.1:{base + 1}"})}))
    homes.append(path)
    switch_off, said = WITHOUT[way]
    parent = subprocess.Popen([sys.executable, "-c", textwrap.dedent(f"""
        import time
        from pathlib import Path
        from node import localnet
        {switch_off}
        node = localnet.start_node(Path({str(path)!r}), Path({str(path / 'node.log')!r}))
        print(node.pid, flush=True)
        time.sleep(600)
        """)], stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, text=True)
    procs.append(parent)
    assert parent.stdout is not None
    pid = int(parent.stdout.readline())
    until(lambda: Home(path).running_pid() == pid, "the node holds its home")
    until(lambda: height(f"http://127.0.0.1:{base + 1}") is not None, "the node answers")
    parent.kill()
    parent.wait()
    until(lambda: gone(pid), "the node exits after its parent")
    log = (path / "node.log").read_text()
    assert said.format(parent=parent.pid) in log
    assert "stopped at height" in log  # cleanly, either way
    assert Home(path).running_pid() is None


@pytest.mark.timeout(120)
def test_a_localnet_whose_nodes_all_exit_says_why_and_fails(
        tmp_path: Path, cleanup: tuple[list[subprocess.Popen], list[Path]]) -> None:
    _procs, homes = cleanup
    home = tmp_path / "net"
    infos = localnet.init(home, 1, localnet.free_base_port(2), consensus=FAST)
    homes.extend(info.home for info in infos)
    (infos[0].home / "genesis.json").write_bytes(b"\xff not UTF-8")
    proc = agora("localnet", "--home", str(home), "--validators", "1",
                 stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        out, err = proc.communicate(timeout=WAIT)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode == 1, (out, err)
    assert "node0 exited with code 1: error: " in out
    assert "genesis.json is not UTF-8 text" in out
    assert "every node exited" in err


def test_validators_on_an_existing_localnet_of_another_size_is_refused(tmp_path: Path) -> None:
    home = tmp_path / "ln"
    localnet.init(home, 1, localnet.free_base_port(2))
    before = (home / "localnet.json").read_text()
    with pytest.raises(localnet.HomeError, match=r"has 1 validators, not 3: run it without "
                                                  r"--validators"):
        localnet.run(home, 3, None, lambda _: None)
    assert (home / "localnet.json").read_text() == before  # nothing touched
