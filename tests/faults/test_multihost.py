"""Validators on separate hosts: four `agora start` processes, each in its own Linux
network namespace with its own address (SUBNET.1 .. SUBNET.4, veth pairs on one
bridge), none of them on 127.0.0.1 of another. Their homes are made by
``deploy/make-testnet.sh`` — the operator's commands of README.md "Validators on
separate hosts" — so this test is what proves those instructions.

The bridge has SUBNET.254 in the test's own (root) namespace, so the test reaches
each node's JSON-RPC at its address, as a client on another machine would. It needs
root and ``ip netns`` (iproute2), and skips, saying why, without them. Namespace,
link and bridge names carry the test's pid; all of them are removed and every node
is stopped when the test ends, whatever happens.
"""

from __future__ import annotations

import ctypes
import json
import os
import shutil
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from chain.address import address_to_text
from chain.keys import PrivateKey
from node.daemon import EXIT_WITH_PARENT

REPO = Path(__file__).resolve().parents[2]
MAKE_TESTNET = REPO / "deploy" / "make-testnet.sh"
VALIDATORS = 4
P2P_PORT = 26656
RPC_PORT = 26657
CHAIN_ID = "agora-multihost"
WAIT = 60.0  # the most any one step may take on a loaded 2-core machine
PR_SET_PDEATHSIG = 1  # prctl(2)

pytestmark = pytest.mark.timeout(240)


def _ip(*args: str, check: bool = True) -> subprocess.CompletedProcess:
    proc = subprocess.run(["ip", *args], capture_output=True, text=True, timeout=30)
    if check and proc.returncode != 0:
        raise RuntimeError(f"ip {' '.join(args)}: {proc.stderr.strip()}")
    return proc


def _unavailable(tag: str) -> str | None:
    """Why network namespaces cannot be made here, or None if they can."""
    if not sys.platform.startswith("linux"):
        return "network namespaces are Linux only"
    if os.geteuid() != 0:
        return "needs root to create network namespaces and a bridge (ip netns add)"
    if shutil.which("ip") is None:
        return "the ip command (iproute2) is not installed"
    probe_ns, probe_br = f"{tag}-probe", f"amp{os.getpid()}"
    made = _ip("netns", "add", probe_ns, check=False)
    if made.returncode != 0:
        return f"ip netns add does not work here: {made.stderr.strip()}"
    _ip("netns", "del", probe_ns, check=False)
    made = _ip("link", "add", probe_br, "type", "bridge", check=False)
    if made.returncode != 0:
        return f"cannot create a bridge here: {made.stderr.strip()}"
    _ip("link", "del", probe_br, check=False)
    return None


def _free_subnet() -> str:
    """A 10.77.N /24 with no route in this namespace yet (N from our pid, so two runs
    at once pick different ones)."""
    routes = _ip("-4", "route", "show").stdout
    start = os.getpid() % 200
    for k in range(200):
        subnet = f"10.77.{(start + k) % 200 + 20}"
        if f"{subnet}." not in routes:
            return subnet
    raise RuntimeError("no free 10.77.N.0/24 subnet")


@dataclass
class Lab:
    """A bridge in the root namespace and one namespace per validator, on it."""

    tag: str
    subnet: str
    bridge: str = ""
    namespaces: list[str] = field(default_factory=list)
    host_links: list[str] = field(default_factory=list)

    def address(self, i: int) -> str:
        return f"{self.subnet}.{i + 1}"

    def create(self) -> None:
        pid = os.getpid()
        self.bridge = f"amb{pid}"  # link names: at most 15 characters
        _ip("link", "add", self.bridge, "type", "bridge")
        _ip("addr", "add", f"{self.subnet}.254/24", "dev", self.bridge)
        _ip("link", "set", self.bridge, "up")
        for i in range(VALIDATORS):
            ns, host_end, ns_end = f"{self.tag}-{i}", f"amh{pid}n{i}", f"amn{pid}n{i}"
            _ip("netns", "add", ns)
            self.namespaces.append(ns)
            _ip("link", "add", host_end, "type", "veth", "peer", "name", ns_end)
            self.host_links.append(host_end)
            _ip("link", "set", ns_end, "netns", ns)
            _ip("link", "set", host_end, "master", self.bridge)
            _ip("link", "set", host_end, "up")
            _ip("-n", ns, "link", "set", "lo", "up")
            _ip("-n", ns, "link", "set", ns_end, "name", "eth0")
            _ip("-n", ns, "addr", "add", f"{self.address(i)}/24", "dev", "eth0")
            _ip("-n", ns, "link", "set", "eth0", "up")

    def remove(self) -> None:
        """Everything made, each step on its own (a failed one does not stop the rest)."""
        for ns in self.namespaces:
            _ip("netns", "del", ns, check=False)  # takes its end of the veth pair along
        for link in self.host_links:
            _ip("link", "del", link, check=False)  # gone already, unless ns creation failed
        if self.bridge:
            _ip("link", "del", self.bridge, check=False)


def _remove_stale() -> None:
    """Namespaces and links of earlier runs whose process is gone (killed too hard
    for its finalizers to run)."""
    def gone(pid: str) -> bool:
        return pid.isdigit() and not Path(f"/proc/{pid}").exists()

    for ns in _ip("netns", "list").stdout.split():
        parts = ns.split("-")  # agora-mh-PID-I
        if ns.startswith("agora-mh-") and len(parts) == 4 and gone(parts[2]):
            _ip("netns", "del", ns, check=False)
    for line in _ip("-o", "link", "show").stdout.splitlines():
        name = line.split(":")[1].strip().partition("@")[0] if ":" in line else ""
        pid = name[3:].partition("n")[0] if name[:3] in ("amb", "amh") else ""
        if gone(pid):
            _ip("link", "del", name, check=False)  # a bridge, or our end of a veth pair


@pytest.fixture
def lab() -> Iterator[Lab]:
    tag = f"agora-mh-{os.getpid()}"
    reason = _unavailable(tag)
    if reason:
        pytest.skip(reason)
    _remove_stale()
    made = Lab(tag, _free_subnet())
    try:
        made.create()
        yield made
    finally:
        made.remove()
        left = [ns for ns in _ip("netns", "list").stdout.split() if ns.startswith(tag)]
        assert not left, f"namespaces left behind: {left}"


def _die_with_parent() -> Callable[[], None]:
    """preexec_fn: the kernel sends the node SIGKILL if the test process dies (a
    hard timeout, say), so no node outlives it. `ip netns exec` execs the node in
    place (same pid), which keeps this setting."""
    prctl = ctypes.CDLL(None, use_errno=True).prctl
    parent = os.getpid()

    def preexec() -> None:
        prctl(PR_SET_PDEATHSIG, int(signal.SIGKILL), 0, 0, 0)
        if os.getppid() != parent:
            os.kill(os.getpid(), signal.SIGKILL)
    return preexec


@dataclass
class Nodes:
    lab: Lab
    homes: list[Path]
    procs: list[subprocess.Popen] = field(default_factory=list)

    def rpc_url(self, i: int) -> str:
        return f"http://{self.lab.address(i)}:{RPC_PORT}"

    def start_all(self) -> None:
        preexec = _die_with_parent()
        for i, home in enumerate(self.homes):
            with open(home / "node.log", "ab") as log:
                self.procs.append(subprocess.Popen(
                    ["ip", "netns", "exec", self.lab.namespaces[i],
                     sys.executable, "-m", "cli", "start", "--home", str(home)],
                    stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                    cwd=REPO, env={**os.environ, EXIT_WITH_PARENT: str(os.getpid())},
                    start_new_session=True, preexec_fn=preexec))

    def stop_all(self) -> None:
        for proc in self.procs:
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
        deadline = time.monotonic() + 15
        for proc in self.procs:
            try:
                proc.wait(max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()

    def logs(self) -> str:
        return "\n".join(f"--- validator{i} (exit {p.poll()})\n"
                         + (self.homes[i] / "node.log").read_text(errors="replace")[-2500:]
                         for i, p in enumerate(self.procs))

    def call(self, i: int, method: str, **params: Any) -> Any:
        body = json.dumps({"jsonrpc": "2.0", "id": 1, "method": method,
                           "params": params}).encode()
        request = urllib.request.Request(self.rpc_url(i), data=body,
                                         headers={"Content-Type": "application/json"})
        with urllib.request.urlopen(request, timeout=5) as answer:
            reply = json.loads(answer.read())
        if "error" in reply:
            raise RuntimeError(f"validator{i} {method}: {reply['error']}")
        return reply["result"]

    def status(self, i: int) -> dict | None:
        try:
            return self.call(i, "status")
        except (OSError, urllib.error.URLError, RuntimeError, ValueError):
            return None  # starting, or down

    def until(self, what: str, condition: Callable[[], bool]) -> None:
        """Re-read ``condition`` every 200 ms until it holds; fail after WAIT seconds
        with the nodes' logs. (Other processes give no event to wait on.)"""
        deadline = time.monotonic() + WAIT
        while not condition():
            dead = [i for i, p in enumerate(self.procs) if p.poll() is not None]
            if dead or time.monotonic() > deadline:
                why = f"validators {dead} exited" if dead else f"not within {WAIT:g} s"
                pytest.fail(f"{what}: {why}\n{self.logs()}")
            time.sleep(0.2)


@pytest.fixture
def nodes(lab: Lab, tmp_path: Path) -> Iterator[Nodes]:
    out = tmp_path / "testnet"
    agora = shutil.which("agora", path=str(Path(sys.executable).parent))
    env = {**os.environ, "CHAIN_ID": CHAIN_ID, "PYTHON": sys.executable,
           "AGORA": agora or f"{sys.executable} -m cli"}
    made = subprocess.run(
        ["sh", str(MAKE_TESTNET), str(out), *(lab.address(i) for i in range(VALIDATORS))],
        cwd=REPO, env=env, capture_output=True, text=True, timeout=120)
    assert made.returncode == 0, f"make-testnet.sh failed:\n{made.stdout}\n{made.stderr}"
    running = Nodes(lab, [out / f"validator{i}" for i in range(VALIDATORS)])
    try:
        yield running
    finally:
        running.stop_all()  # before the lab's namespaces go


def _agora(*args: str) -> dict:
    """An `agora ... --json` command, run in the test's namespace (another machine)."""
    done = subprocess.run([sys.executable, "-m", "cli", *args, "--json"], cwd=REPO,
                          capture_output=True, text=True, timeout=90)
    assert done.returncode == 0, f"agora {' '.join(args)}: {done.stdout}{done.stderr}"
    return json.loads(done.stdout)


def test_validators_in_four_namespaces_commit_and_share_a_transfer(nodes: Nodes) -> None:
    lab = nodes.lab
    # Each config names the node's own host and the others' addresses, never loopback.
    for i, home in enumerate(nodes.homes):
        config = (home / "config.toml").read_text()
        assert f'external_address = "{lab.address(i)}:{P2P_PORT}"' in config
        assert "127.0.0.1:26656" not in config
        for j in range(VALIDATORS):
            assert (f"@{lab.address(j)}:{P2P_PORT}" in config) == (j != i)
    genesis = json.loads((nodes.homes[0] / "genesis.json").read_text())
    assert len(genesis["validators"]) == VALIDATORS

    nodes.start_all()

    # All four commit, each connected to the three others over the bridge.
    statuses: list[dict | None] = [None] * VALIDATORS

    def all_past_5() -> bool:
        statuses[:] = [nodes.status(i) for i in range(VALIDATORS)]
        return all(s is not None and s["height"] > 5 and s["peers"] == VALIDATORS - 1
                   for s in statuses)

    nodes.until("all four validators past height 5 with 3 peers each", all_past_5)
    assert len({s["genesis_hash"] for s in statuses if s}) == 1
    assert {s["validator"] for s in statuses if s} == {
        v["address"] for v in nodes.call(0, "validators")["validators"]}
    for i in range(VALIDATORS):  # peers known by the addresses they announce
        info = nodes.call(i, "net_info")
        assert info["listen"] == f"{lab.address(i)}:{P2P_PORT}"
        hosts = {p["address"].rpartition("@")[2] for p in info["peers"]}
        assert hosts == {f"{lab.address(j)}:{P2P_PORT}" for j in range(VALIDATORS) if j != i}

    status = _agora("query", "status", "--node", nodes.rpc_url(1))  # as the README shows
    assert (status["moniker"], status["peers"]) == ("validator1", VALIDATORS - 1), status

    # One chain: the same block at a height all four have committed.
    common = min(s["height"] for s in statuses if s)
    hashes = {nodes.call(i, "block", height=common)["hash"] for i in range(VALIDATORS)}
    assert len(hashes) == 1, f"different blocks at height {common}: {hashes}"

    # A transfer sent to validator0 commits, and validator3 (another host) has it.
    receiver = address_to_text(PrivateKey.generate().address)
    sent = _agora("transfer", "--from", "dev", "--to", receiver, "--amount", "7",
                  "--home", str(nodes.homes[0]), "--node", nodes.rpc_url(0))
    assert sent["ok"], sent
    tx_hash = sent["tx"]["hash"]
    seen: dict = {}

    def on_validator3() -> bool:
        try:
            seen.update(nodes.call(3, "tx", hash=tx_hash))
        except (OSError, urllib.error.URLError, RuntimeError):
            return False
        return True

    nodes.until("the transfer committed on validator3", on_validator3)
    assert seen["height"] == sent["tx"]["height"], (seen["height"], sent["tx"])
    balance = _agora("balance", receiver, "--node", nodes.rpc_url(3))
    assert balance["coin"] == str(7 * 10**18), balance

    # On validator0's host, the wallet finds the node through the home's own config
    # (RPC on 0.0.0.0): as `docker compose exec validator0 agora ...` runs it.
    beside = subprocess.run(
        ["ip", "netns", "exec", lab.namespaces[0], sys.executable, "-m", "cli", "balance",
         "dev", "--home", str(nodes.homes[0]), "--json"],
        cwd=REPO, capture_output=True, text=True, timeout=90)
    assert beside.returncode == 0, beside.stdout + beside.stderr
    dev = json.loads(beside.stdout)
    assert dev["coin"] == sent["balances"][sent["from"]]["coin"], (dev, sent)
