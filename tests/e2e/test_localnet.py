"""A real 4-validator localnet: four `agora start` processes on 127.0.0.1, talking
over real sockets, driven through JSON-RPC. Ports are chosen free; every wait is a
bounded wait for something observable (a height, a state root); every process is
stopped (or killed) when the test ends, whatever happens.
"""

from __future__ import annotations

import asyncio
import shutil
import subprocess
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from node import localnet
from node.config import Config, ConsensusSection, NodeSection, P2PSection, RPCSection
from node.home import Home
from node.rpc.client import NodeUnreachable, RPCClient, RPCFailed, transfer

FAST = ConsensusSection(block_interval_ms=100, idle_interval_ms=300, view_timeout_ms=1_000,
                        max_view_timeout_ms=4_000)
WAIT = 60.0  # the most any step may take on a loaded 2-core CI machine


@dataclass
class Net:
    home: Path
    infos: list[localnet.NodeInfo]
    procs: dict[int, subprocess.Popen] = field(default_factory=dict)
    clients: dict[int, RPCClient] = field(default_factory=dict)

    def start(self, index: int) -> None:
        info = self.infos[index]
        self.procs[index] = localnet.start_node(info.home, info.home / "node.log")

    def kill(self, index: int) -> None:
        proc = self.procs.pop(index)
        proc.kill()  # SIGKILL: no shutdown code runs
        proc.wait()

    def log(self, index: int) -> str:
        return (self.infos[index].home / "node.log").read_text(errors="replace")[-3000:]

    async def height(self, index: int) -> int | None:
        try:
            return (await self.clients[index].status())["height"]
        except (NodeUnreachable, OSError, TimeoutError, RPCFailed):
            return None  # down, starting, or stopping

    async def until(self, condition: Callable[[], Awaitable[bool]]) -> None:
        """Wait until ``await condition()`` holds, at most WAIT seconds. Other
        processes give no event to wait on, so the condition is re-read every 100 ms:
        the wait ends as soon as it holds, and a hang fails the test at the bound."""
        async with asyncio.timeout(WAIT):
            while not await condition():
                await asyncio.sleep(0.1)

    async def heights(self, indexes) -> list[int | None]:
        return [await self.height(i) for i in indexes]

    async def wait_heights(self, indexes, at_least: int) -> None:
        async def reached() -> bool:
            hs = await self.heights(indexes)
            return all(h is not None and h >= at_least for h in hs)
        try:
            await self.until(reached)
        except TimeoutError:
            logs = "\n".join(f"--- node{i}\n{self.log(i)}" for i in indexes)
            pytest.fail(f"nodes {list(indexes)} did not reach height {at_least}: "
                        f"{await self.heights(indexes)}\n{logs}")

    async def block_hashes(self, index: int, upto: int) -> list[tuple[str, str]]:
        out = []
        for h in range(1, upto + 1):
            block = await self.clients[index].block(h)
            out.append((block["hash"], block["header"]["state_root"]))
        return out


@pytest.fixture
async def net(tmp_path: Path) -> AsyncIterator[Net]:
    base = localnet.free_base_port(8)
    infos = localnet.init(tmp_path / "localnet", 4, base, consensus=FAST)
    net = Net(tmp_path / "localnet", infos)
    for info in infos:
        net.clients[info.index] = RPCClient(info.rpc, timeout=5.0)
    try:
        for i in range(4):
            net.start(i)
        yield net
    finally:
        localnet.stop_processes(net.procs, timeout=10)
        for client in net.clients.values():
            await client.close()


async def assert_same_chain(net: Net, indexes, upto: int) -> None:
    chains = [await net.block_hashes(i, upto) for i in indexes]
    for i, chain in zip(indexes, chains, strict=True):
        assert chain == chains[0], f"node{i} disagrees with node{indexes[0]}"


@pytest.mark.timeout(180)
async def test_four_validators_agree_on_every_block(net: Net) -> None:
    await net.wait_heights(range(4), 3)
    buyer = localnet.account_key(net.home, "buyer")
    merchant = localnet.account_key(net.home, "merchant")
    chain_id = "agora-localnet"
    result = await net.clients[2].broadcast_tx_commit(
        transfer(buyer, chain_id, 0, merchant.address, 12345))
    assert result["receipt"]["status"] == "ok"
    height = result["height"]
    await net.wait_heights(range(4), height + 2)
    await assert_same_chain(net, range(4), height + 2)
    for i in range(4):  # the transfer is where node 2 said, on every node
        found = await net.clients[i].tx(bytes.fromhex(result["hash"]))
        assert (found["height"], found["index"]) == (height, result["index"])


@pytest.mark.timeout(240)
async def test_a_killed_validator_is_not_missed_and_catches_up(net: Net) -> None:
    await net.wait_heights(range(4), 2)
    net.kill(3)
    alive = [0, 1, 2]
    start = max(h for h in await net.heights(alive) if h is not None)
    await net.wait_heights(alive, start + 5)  # three of four keep committing
    net.start(3)
    target = max(h for h in await net.heights(alive) if h is not None)
    await net.wait_heights([3], target)
    await net.wait_heights(range(4), target + 2)  # and it votes again
    await assert_same_chain(net, range(4), target + 2)


@pytest.mark.timeout(300)
async def test_killing_all_loses_no_acknowledged_transaction(net: Net) -> None:
    await net.wait_heights(range(4), 2)
    buyer = localnet.account_key(net.home, "buyer")
    merchant = localnet.account_key(net.home, "merchant")
    chain_id = "agora-localnet"
    acknowledged = []
    for nonce in range(6):
        result = await net.clients[nonce % 4].broadcast_tx_commit(
            transfer(buyer, chain_id, nonce, merchant.address, 1_000 + nonce))
        acknowledged.append(result)
    before = [h for h in await net.heights(range(4)) if h is not None]
    for i in range(4):
        net.kill(i)
    for i in range(4):
        net.start(i)
    # It resumes from where it stopped, not from scratch.
    await net.wait_heights(range(4), max(before) + 3)
    for result in acknowledged:
        for i in range(4):
            found = await net.clients[i].tx(bytes.fromhex(result["hash"]))
            assert found["height"] == result["height"]
            assert found["receipt"]["status"] == "ok"
    upto = max(before) + 3
    await assert_same_chain(net, range(4), upto)  # identical block hashes and state roots
    account = await net.clients[0].account(buyer.address)
    assert account["nonce"] == len(acknowledged)


@pytest.mark.timeout(120)
async def test_a_node_restarts_by_itself_from_its_home(net: Net) -> None:
    """`agora start --home HOME/node1` is all it takes (the localnet is ordinary homes)."""
    await net.wait_heights(range(4), 2)
    localnet.stop_processes({1: net.procs.pop(1)})  # a clean stop (SIGTERM)
    assert "stopped at height" in net.log(1)
    net.start(1)
    target = max(h for h in await net.heights([0, 2, 3]) if h is not None)
    await net.wait_heights([1], target)


@pytest.mark.timeout(120)
async def test_a_full_node_follows_the_chain(net: Net, tmp_path: Path) -> None:
    """A node that does not vote syncs what it missed, then follows by watching the
    validators' messages."""
    await net.wait_heights(range(4), 3)
    base = localnet.free_base_port(2)
    first = net.infos[0]
    home = Home(tmp_path / "full")
    home.init(Config(node=NodeSection(mode="full", moniker="follower"),
                     p2p=P2PSection(listen=f"127.0.0.1:{base}",
                                    persistent_peers=[f"{first.node_id}@{first.p2p}"]),
                     rpc=RPCSection(listen=f"127.0.0.1:{base + 1}"), consensus=FAST),
              validator=False)
    shutil.copy(net.home / "genesis.json", home.genesis_path)
    full = localnet.NodeInfo(4, home.path, f"127.0.0.1:{base}", f"http://127.0.0.1:{base + 1}",
                             "", home.node_key().address.hex())
    net.infos.append(full)
    net.clients[4] = RPCClient(full.rpc, timeout=5.0)
    net.start(4)
    target = max(h for h in await net.heights(range(4)) if h is not None) + 3
    await net.wait_heights([4], target)
    await assert_same_chain(net, [0, 4], target)
    status = await net.clients[4].status()
    assert status["validator"] is None and status["peers"] >= 1
