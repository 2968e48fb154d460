"""Validator-set governance on a real localnet: ``agora localnet init --validators 4
--standby 1`` makes the homes, ``agora localnet`` runs the five `agora start`
processes, and the operators use ``agora validator ...`` (each a real subprocess).

One test walks the whole story, since each step needs the one before: the standby
is voted in through the CLI and proposes and signs from two heights after the block
that passed it; an original validator is voted out and the chain goes on without
its signature; every node is killed with SIGKILL right after that change and
restarted — the same chain and the same sets; a new full node syncs from genesis
across both changes (verifying each certificate against its own height's set).
Every wait is bounded; every process is killed at the end, whatever happened.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import shutil
import signal
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from chain.address import address_from_text
from node import localnet
from node.config import Config, ConsensusSection, NodeSection, P2PSection, RPCSection
from node.home import Home
from node.rpc.client import NodeUnreachable, RPCClient, RPCFailed

REPO = Path(__file__).resolve().parents[2]
FAST = ConsensusSection(block_interval_ms=100, idle_interval_ms=300, view_timeout_ms=1_000,
                        max_view_timeout_ms=4_000)
WAIT = 90.0  # the most any one step may take on a loaded 2-core CI machine


class Localnet:
    """``agora localnet`` in a subprocess, and RPC clients of its nodes."""

    def __init__(self, home: Path) -> None:
        self.home = home
        self.env = {k: v for k, v in os.environ.items() if not k.startswith("AGORA_")}
        self.env["PYTHONPATH"] = str(REPO)
        self.proc: subprocess.Popen | None = None
        self.infos = localnet.node_infos(home)
        self.clients = {i.index: RPCClient(i.rpc, timeout=5.0) for i in self.infos}
        self.extra: list[subprocess.Popen] = []

    def agora(self, *args: str, node: int = 0) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "cli", *args, "--home", str(self.home),
             "--node", self.infos[node].rpc, "--json"],
            cwd=REPO, env=self.env, capture_output=True, text=True, timeout=WAIT)

    def start(self) -> None:
        log = open(self.home / "runner.log", "a")  # noqa: SIM115 - the child keeps it
        self.proc = subprocess.Popen([sys.executable, "-m", "cli", "localnet", "--home",
                                      str(self.home)], cwd=REPO, env=self.env, stdout=log,
                                     stderr=subprocess.STDOUT)
        log.close()

    def node_pids(self) -> list[int]:
        manifest = json.loads((self.home / "localnet.json").read_text())
        return [n["pid"] for n in manifest["nodes"] if n.get("pid")]

    def kill_all(self) -> None:
        """SIGKILL every node and the runner: no shutdown code runs anywhere."""
        for pid in self.node_pids():
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        if self.proc is not None:
            self.proc.kill()
            self.proc.wait()
            self.proc = None

    async def close(self) -> None:
        if self.proc is not None:
            self.proc.send_signal(signal.SIGINT)
            try:
                self.proc.wait(30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        for pid in self.node_pids():
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        for p in self.extra:
            p.kill()
            p.wait()
        for client in self.clients.values():
            await client.close()

    def log(self, index: int) -> str:
        return (self.infos[index].home / "node.log").read_text(errors="replace")[-3000:]

    async def until(self, what: str, condition) -> Any:
        """Re-read ``condition()`` every 100 ms until it gives a true value, at most WAIT
        seconds (other processes give no event to wait on)."""
        try:
            async with asyncio.timeout(WAIT):
                while True:
                    try:
                        got = await condition()
                    except (NodeUnreachable, OSError, TimeoutError, RPCFailed):
                        got = None
                    if got:
                        return got
                    await asyncio.sleep(0.1)
        except TimeoutError:
            logs = "\n".join(f"--- node{i.index}\n{self.log(i.index)}" for i in self.infos)
            pytest.fail(f"timed out waiting until {what}\n{logs}")

    async def height(self, index: int) -> int:
        return (await self.clients[index].status())["height"]

    async def wait_heights(self, indexes, at_least: int) -> None:
        async def reached() -> bool:
            return all([await self.height(i) >= at_least for i in indexes])
        await self.until(f"nodes {list(indexes)} reach height {at_least}", reached)

    async def call(self, index: int, method: str, **params: Any) -> Any:
        return await self.clients[index].call(method, **params)


def cli_ok(result: subprocess.CompletedProcess[str]) -> dict[str, Any]:
    assert result.returncode == 0, f"exit {result.returncode}\n{result.stdout}\n{result.stderr}"
    return json.loads(result.stdout)


async def set_at(net: Localnet, index: int, height: int) -> dict[str, Any]:
    return await net.call(index, "validators", height=height)


async def addresses_at(net: Localnet, index: int, height: int) -> set[str]:
    return {v["address"] for v in (await set_at(net, index, height))["validators"]}


async def signers(net: Localnet, index: int, height: int) -> set[str]:
    commit = await net.call(index, "commit", height=height)
    return {s["validator"] for s in commit["signatures"]}


async def vote_through(net: Localnet, proposal: int, voters: list[str]) -> None:
    for voter in voters:
        out = cli_ok(net.agora("validator", "vote", "--from", voter, str(proposal), "yes"))
        assert out


async def wait_change(net: Localnet, present: str | None, absent: str | None) -> int:
    """The height the set changes at (``since`` of the set that has ``present`` in it
    and not ``absent``), once every running node knows it."""
    async def changed() -> int | None:
        status = await net.clients[0].status()
        record = await set_at(net, 0, status["height"] + 2)
        names = {v["address"] for v in record["validators"]}
        if (present is None or present in names) and (absent is None or absent not in names):
            return record["since"]
        return None
    return await net.until("the validator set changes", changed)


@pytest.mark.timeout(600)
async def test_the_standby_is_voted_in_a_validator_out_and_everything_survives(
        tmp_path: Path) -> None:
    home = tmp_path / "localnet"
    base = localnet.free_base_port(12)
    init = subprocess.run([sys.executable, "-m", "cli", "localnet", "init", "--validators",
                           "4", "--standby", "1", "--home", str(home), "--base-port", str(base)],
                          cwd=REPO, capture_output=True, text=True, timeout=WAIT)
    assert init.returncode == 0, init.stderr
    for info in localnet.node_infos(home):  # quick heights, quick failure detection
        h = Home(info.home)
        h.write_config(h.config().model_copy(update={"consensus": FAST}))
    net = Localnet(home)
    standby, leaving = net.infos[4], net.infos[3]
    assert standby.standby and not any(i.standby for i in net.infos[:4])
    try:
        net.start()
        await net.wait_heights(range(5), 2)
        assert standby.validator not in await addresses_at(net, 0, await net.height(0))
        status = await net.clients[4].status()
        assert status["validator"] is None  # a full node until voted in

        # -- the standby is voted in through the CLI
        cli_ok(net.agora("validator", "propose-add", "--from", "node0", "--validator", "node4",
                         "--power", "10"))
        proposals = await net.call(0, "proposals", state="open")
        proposal = proposals["items"][0]["id"]
        await vote_through(net, proposal, ["node1", "node2"])
        joined = await wait_change(net, standby.validator, None)
        before = await set_at(net, 0, joined - 1)
        after = await set_at(net, 0, joined)
        assert standby.validator not in {v["address"] for v in before["validators"]}
        assert {v["address"] for v in after["validators"]} == \
            {i.validator for i in net.infos[:5]}
        assert next(v for v in after["validators"] if v["address"] == standby.validator)["p2p"]
        # It signs from the height it joins, and takes its turn proposing.
        await net.wait_heights(range(5), joined + 12)
        for h in range(1, joined):
            assert standby.validator not in await signers(net, 0, h)
        assert any([standby.validator in await signers(net, 0, h)
                    for h in range(joined, joined + 12)])

        async def proposed() -> bool:
            top = await net.height(0)
            blocks = [await net.clients[0].block(h) for h in range(joined, top + 1)]
            return any(b["header"]["proposer"] == standby.validator for b in blocks)
        await net.until("the standby proposes a block", proposed)
        assert (await net.clients[4].status())["validator"] == standby.validator
        # Every header from the change on commits to the sets the chain decided.
        block = await net.clients[0].block(joined - 1)
        assert block["header"]["next_validators_hash"] == after["hash"]
        assert block["header"]["validators_hash"] == before["hash"]

        # -- an original validator is voted out (node3 keeps running)
        cli_ok(net.agora("validator", "propose-remove", "--from", "node0", "--validator",
                         "node3"))
        proposals = await net.call(0, "proposals", state="open")
        proposal = proposals["items"][0]["id"]
        await vote_through(net, proposal, ["node1", "node2", "node4"])
        left = await wait_change(net, None, leaving.validator)
        # Kill every node with SIGKILL right after the change is decided, and restart.
        tip = await net.height(0)
        sets_before = {h: (await set_at(net, 0, h))["hash"] for h in range(1, tip + 3)}
        hashes_before = [(await net.clients[0].block(h))["hash"] for h in range(1, tip + 1)]
        net.kill_all()
        net.start()
        await net.wait_heights(range(5), max(tip, left) + 10)
        for i in range(5):
            for h in range(1, tip + 3):
                assert (await set_at(net, i, h))["hash"] == sets_before[h], (i, h)
            assert [(await net.clients[i].block(h))["hash"] for h in range(1, tip + 1)] == \
                hashes_before
        # The chain went on without node3's signature from the height it left.
        top = await net.height(0)
        for h in range(left, top + 1):
            assert leaving.validator not in await signers(net, 0, h)
            assert (await net.clients[0].block(h))["header"]["proposer"] != leaving.validator
        assert (await net.clients[3].status())["validator"] is None

        # -- a new full node syncs from genesis across both changes
        full_base = localnet.free_base_port(2)
        full_home = Home(tmp_path / "full")
        first = net.infos[0]
        full_home.init(Config(node=NodeSection(mode="full", moniker="newcomer"),
                              p2p=P2PSection(listen=f"127.0.0.1:{full_base}",
                                             persistent_peers=[f"{first.node_id}@{first.p2p}"]),
                              rpc=RPCSection(listen=f"127.0.0.1:{full_base + 1}"),
                              consensus=FAST), validator=False)
        shutil.copy(home / "genesis.json", full_home.genesis_path)
        net.extra.append(localnet.start_node(full_home.path, full_home.path / "node.log"))
        full = RPCClient(f"http://127.0.0.1:{full_base + 1}", timeout=5.0)
        net.clients[99] = full
        target = await net.height(0) + 3

        async def synced() -> bool:
            return (await full.status())["height"] >= target
        await net.until("the new full node syncs", synced)
        for h in range(1, target + 1):
            assert (await full.block(h))["hash"] == (await net.clients[0].block(h))["hash"]
        for h in (1, joined - 1, joined, left - 1, left, target):
            assert (await full.call("validators", height=h))["hash"] == \
                (await set_at(net, 0, h))["hash"]
        assert address_from_text(standby.validator)
    finally:
        await net.close()
