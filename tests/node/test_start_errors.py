"""`agora start` and `agora init --dev` as a newcomer meets them (issue 14).

Each operator's mistake — a genesis.json that is not UTF-8, a data directory made by
another genesis, two nodes on one home, a port another program listens on — ends
`agora start` with exit code 1 and one line on stderr saying what to do, never a
traceback. And `agora init --validator --dev` makes a one-node chain with a funded key
that a transfer can be committed from.

Real `python -m cli start` processes on 127.0.0.1, on ports from free_base_port; every
wait polls for a condition with a deadline, and every process is killed in a finally.
"""

from __future__ import annotations

import json
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from chain.address import address_to_text
from chain.genesis import Genesis
from chain.keys import PrivateKey
from node.config import Config, ConsensusSection, NodeSection, P2PSection, RPCSection
from node.genesis import DEMO_COINS, DEMO_TOKENS
from node.home import DEV_ACCOUNTS, Home, HomeError, init_home, read_key
from node.localnet import free_base_port
from node.rpc.client import NodeUnreachable, RPCFailed, SyncClient, transfer
from storage.kv import LevelDBKV

WAIT = 60.0  # the most any step may take on a loaded 2-core machine
FAST = ConsensusSection(block_interval_ms=50, idle_interval_ms=200, view_timeout_ms=1_000)


def make_home(path: Path, chain_id: str, *, dev: bool = False) -> tuple[Home, str]:
    """`agora init --validator` on free ports; returns the home and its RPC URL."""
    lines = init_home(path, chain_id=chain_id, validator=True, dev=dev)
    assert lines
    base = free_base_port(2)
    home = Home(path)
    home.write_config(Config(
        node=NodeSection(mode="validator"),
        p2p=P2PSection(listen=f"127.0.0.1:{base}", pex=False),
        rpc=RPCSection(listen=f"127.0.0.1:{base + 1}"), consensus=FAST))
    return home, f"http://127.0.0.1:{base + 1}"


def start(home: Home, **kwargs) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "cli", "start", "--home", str(home.path)],
                            stdin=subprocess.DEVNULL, **kwargs)


def start_and_fail(home: Home) -> str:
    """`agora start` that must end by itself: exit code 1, one line on stderr."""
    proc = start(home, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        out, err = proc.communicate(timeout=WAIT)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode == 1, (out, err)
    assert "Traceback" not in err
    assert len(err.strip().splitlines()) == 1, err
    assert err.startswith("error: ")
    return err.strip()


def until(condition: Callable[[], bool], what: str) -> None:
    deadline = time.monotonic() + WAIT
    while not condition():
        if time.monotonic() > deadline:
            pytest.fail(f"not within {WAIT:.0f} s: {what}")
        time.sleep(0.1)


def height(url: str) -> int | None:
    try:
        with SyncClient(url, timeout=5.0) as client:
            return int(client.status()["height"])
    except (NodeUnreachable, RPCFailed, OSError):
        return None


@pytest.fixture
def procs() -> Iterator[list[subprocess.Popen]]:
    """Processes a test starts: killed when it ends, whatever happens."""
    started: list[subprocess.Popen] = []
    try:
        yield started
    finally:
        for proc in started:
            if proc.poll() is None:
                proc.kill()
            proc.wait()


def run_until_height(home: Home, url: str, at_least: int,
                     procs: list[subprocess.Popen]) -> subprocess.Popen:
    proc = start(home, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    procs.append(proc)

    def reached() -> bool:
        assert proc.poll() is None, f"the node exited with {proc.returncode}"
        h = height(url)
        return h is not None and h >= at_least
    until(reached, f"the node at {url} reaches height {at_least}")
    return proc


def stop(proc: subprocess.Popen) -> None:
    proc.terminate()
    assert proc.wait(WAIT) == 0


# ---------------------------------------------------------------------- agora start


def test_a_genesis_that_is_not_utf8_is_one_line(tmp_path: Path) -> None:
    home, _url = make_home(tmp_path / "node", "agora-a")
    home.genesis_path.write_bytes(b'\xff\xfe{"chain_id": "agora-a"}')
    err = start_and_fail(home)
    assert f"{home.genesis_path} is not UTF-8 text" in err
    assert "at byte 0" in err


def test_a_config_that_is_not_utf8_is_one_line(tmp_path: Path) -> None:
    home, _url = make_home(tmp_path / "node", "agora-a")
    home.config_path.write_bytes(b"[node]\nmoniker = \"caf\xe9\"\n")
    err = start_and_fail(home)
    assert f"{home.config_path} is not UTF-8 text" in err


@pytest.mark.timeout(120)
def test_a_data_directory_of_another_chain_is_one_line(
        tmp_path: Path, procs: list[subprocess.Popen]) -> None:
    home, url = make_home(tmp_path / "a", "agora-a")
    stop(run_until_height(home, url, 1, procs))
    own = home.genesis_path.read_bytes()
    other, _ = make_home(tmp_path / "b", "agora-b")
    home.genesis_path.write_bytes(other.genesis_path.read_bytes())  # another chain's
    err = start_and_fail(home)
    assert f"the data directory {home.data_dir} was made by chain 'agora-a'" in err
    assert "not by this genesis.json (chain 'agora-b'" in err
    assert "point the node at its own genesis, or move" in err
    # The same chain id, another genesis (a new genesis time): named as such.
    document = json.loads(own)
    document["genesis_time"] = "2026-01-01T00:00:01Z"
    home.genesis_path.write_text(json.dumps(document))
    mine = Genesis.from_dict(document).hash.hex()[:16]
    err = start_and_fail(home)
    assert "was made by another genesis of chain 'agora-a'" in err
    assert f"genesis {mine}..." in err
    # With its own genesis back, the node starts where it was.
    home.genesis_path.write_bytes(own)
    stop(run_until_height(home, url, 2, procs))


@pytest.mark.timeout(120)
def test_a_second_node_on_one_home_is_one_line(tmp_path: Path,
                                                procs: list[subprocess.Popen]) -> None:
    home, url = make_home(tmp_path / "node", "agora-a")
    first = run_until_height(home, url, 1, procs)
    err = start_and_fail(home)
    assert f"another node is already running on this home ({home.path}, pid {first.pid};" in err
    assert f"stop it first (`kill {first.pid}`)" in err
    assert first.poll() is None and height(url) is not None  # the first one is untouched
    assert home.running_pid() == first.pid
    stop(first)
    assert home.running_pid() is None  # a stopped node lets the home go


def test_a_database_another_program_holds_is_one_line(tmp_path: Path) -> None:
    """Held by something other than an Agora node (which would hold data/node.lock)."""
    home, _url = make_home(tmp_path / "node", "agora-a")
    held = LevelDBKV(str(home.data_dir / "chain"))
    try:
        err = start_and_fail(home)
    finally:
        held.close()
    assert f"another process holds the LevelDB lock on {home.data_dir}" in err
    assert "stop it first" in err


def test_a_port_another_program_listens_on_is_one_line(tmp_path: Path) -> None:
    home, _url = make_home(tmp_path / "node", "agora-a")
    host, port = home.config().p2p.listen.split(":")
    with socket.socket() as taken:
        taken.bind((host, int(port)))
        taken.listen()
        err = start_and_fail(home)
    assert "address already in use" in err
    assert f"change the port in {home.config_path}" in err


# ---------------------------------------------------------------------- agora init --dev


def test_dev_needs_a_validator_and_creates_nothing_without_one(tmp_path: Path) -> None:
    with pytest.raises(HomeError, match="--dev needs --validator"):
        init_home(tmp_path / "node", chain_id="agora-dev", validator=False, dev=True)
    assert not (tmp_path / "node").exists()


def test_dev_funds_passphrase_free_keys_and_says_where_they_are(tmp_path: Path) -> None:
    lines = init_home(tmp_path / "node", chain_id="agora-dev", validator=True, dev=True)
    home = Home(tmp_path / "node")
    keys = {name: read_key(home.path / "keys" / f"{name}.json") for name in DEV_ACCOUNTS}
    text = "\n".join(lines)
    validator = home.validator_key()
    assert address_to_text(validator.address) in text  # the agora1... form
    assert address_to_text(keys["dev"].address) in text
    assert str(home.path / "keys" / "dev.json") in text
    genesis = home.genesis()
    assert dict(genesis.balances) == {k.address: DEMO_COINS for k in keys.values()}
    document = json.loads(home.genesis_path.read_text())
    assert document["contracts"]  # the commerce contracts, with the demo in them
    assert lines[-1].startswith("node id ")
    assert DEMO_TOKENS > 0


@pytest.mark.timeout(120)
def test_a_dev_chain_commits_a_transfer_from_the_dev_key(
        tmp_path: Path, procs: list[subprocess.Popen]) -> None:
    home, url = make_home(tmp_path / "node", "agora-dev", dev=True)
    dev = read_key(home.path / "keys" / "dev.json")
    to = PrivateKey.generate().address
    run_until_height(home, url, 1, procs)
    with SyncClient(url, timeout=WAIT) as client:
        result = client.broadcast_tx_commit(transfer(dev, "agora-dev", 0, to, 12_345))
        assert result["receipt"]["status"] == "ok"
        assert int(client.account(to)["balance"]) == 12_345
        assert client.account(dev.address)["nonce"] == 1


def test_a_signal_while_starting_stops_it_cleanly(tmp_path: Path,
                                                  procs: list[subprocess.Popen]) -> None:
    """Ctrl-C (or the localnet's SIGTERM) as the node opens its home: no traceback,
    exit code 0, the home let go."""
    home, _url = make_home(tmp_path / "node", "agora-a")
    proc = start(home, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    procs.append(proc)
    deadline = time.monotonic() + WAIT
    while home.running_pid() != proc.pid:  # a tight poll: the start takes ~0.5 s
        assert proc.poll() is None and time.monotonic() < deadline
        time.sleep(0.002)
    proc.send_signal(signal.SIGINT)
    _out, err = proc.communicate(timeout=WAIT)
    assert proc.returncode == 0, err
    assert "Traceback" not in err
    assert "stopped while starting" in err or "stopped at height" in err
    assert home.running_pid() is None
