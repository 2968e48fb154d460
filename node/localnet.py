"""``agora localnet``: N validators on 127.0.0.1, each an ordinary node home.

``HOME/nodeN/`` is a home like any other (``agora start --home HOME/node3`` restarts
one node by itself); ``HOME/keys/`` holds the demo accounts' keys (localnet keys need
no passphrase); ``HOME/genesis.json`` is the shared genesis; ``HOME/localnet.json``
says where everything is. Ports: node i listens for peers on ``base + 2i`` and for
RPC on ``base + 2i + 1``.
"""

from __future__ import annotations

import asyncio
import json
import os
import random
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp

from chain.address import address_to_text
from chain.keys import PrivateKey
from chain.system import COMMERCE_CONTRACTS
from vm.contracts import Demo

from .config import Config, ConsensusSection, NodeSection, P2PSection, RPCSection
from .genesis import GenesisValidator, genesis_document, now_ms
from .home import Home, HomeError, read_key, write_key
from .rpc.client import NodeUnreachable, RPCClient, RPCFailed

DEMO_ACCOUNTS = ("buyer", "merchant", "arbiter", "referrer")
DEMO_COINS = 10**24
DEMO_TOKENS = 1_000 * 10**18
DEFAULT_BASE_PORT = 26600
CHAIN_ID = "agora-localnet"


@dataclass(frozen=True)
class NodeInfo:
    index: int
    home: Path
    p2p: str
    rpc: str
    validator: str
    node_id: str


def _ephemeral_floor() -> int:
    """The lowest port the OS hands out for outgoing connections (Linux: from
    /proc; elsewhere the IANA range's start)."""
    try:
        return int(Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return 49152


def free_base_port(count: int) -> int:
    """A port with ``count`` free ports from it on (127.0.0.1), for tests and bench.
    The run is taken below the ports the OS gives outgoing connections, so the nodes'
    own dials cannot take one of them before the nodes bind it."""
    top = min(_ephemeral_floor(), 65000) - count
    rng = random.Random()
    for _ in range(200):
        base = rng.randrange(10_000, top)
        try:
            for port in range(base, base + count):
                with socket.socket() as s:
                    s.bind(("127.0.0.1", port))
        except OSError:
            continue
        return base
    raise HomeError("no run of free ports found on 127.0.0.1")


def node_infos(home: Path) -> list[NodeInfo]:
    data = json.loads((home / "localnet.json").read_text())
    return [NodeInfo(n["index"], Path(n["home"]), n["p2p"], n["rpc"], n["address"],
                     n["node_id"]) for n in data["nodes"]]


def init(home: Path, validators: int = 4, base_port: int | None = DEFAULT_BASE_PORT,
         chain_id: str = CHAIN_ID, consensus: ConsensusSection | None = None,
         extra_balances: dict[bytes, int] | None = None) -> list[NodeInfo]:
    """Generate keys, genesis and N node homes under ``home`` (``consensus``: the
    nodes' consensus timing, default the config's; ``extra_balances``: more funded
    accounts, for benchmarks)."""
    if validators < 1:
        raise HomeError("a localnet needs at least one validator")
    if (home / "localnet.json").exists():
        raise HomeError(f"{home} already holds a localnet (localnet.json exists)")
    if base_port is None:
        base_port = DEFAULT_BASE_PORT
    home.mkdir(parents=True, exist_ok=True)
    node_keys = [PrivateKey.generate() for _ in range(validators)]
    validator_keys = [PrivateKey.generate() for _ in range(validators)]
    accounts = {}
    for name in DEMO_ACCOUNTS:
        key = PrivateKey.generate()
        write_key(home / "keys" / f"{name}.json", key)
        accounts[name] = key.address
    # The merchant starts with two listings (one a group deal) and the arbiter is
    # registered: the real calls, run into genesis (vm.contracts.publish_demo).
    genesis = genesis_document(
        chain_id,
        [GenesisValidator(k.public_key, 10, f"node{i}") for i, k in enumerate(validator_keys)],
        time_ms=now_ms(),
        balances={**{a: DEMO_COINS for a in accounts.values()}, **(extra_balances or {})},
        commerce=True,
        token_balances={a: DEMO_TOKENS for a in accounts.values()},
        demo=Demo(merchant=accounts["merchant"], arbiter=accounts["arbiter"]))
    (home / "genesis.json").write_text(json.dumps(genesis, indent=2) + "\n")
    infos = []
    p2p_addresses = [f"{k.address.hex()}@127.0.0.1:{base_port + 2 * i}"
                     for i, k in enumerate(node_keys)]
    for i in range(validators):
        node_home = Home(home / f"node{i}")
        config = Config(
            node=NodeSection(mode="validator", moniker=f"node{i}"),
            p2p=P2PSection(listen=f"127.0.0.1:{base_port + 2 * i}",
                           persistent_peers=[a for j, a in enumerate(p2p_addresses) if j != i],
                           # Four nodes on one machine: a short ping keeps failures quick.
                           ping_interval_ms=2_000, peer_timeout_ms=10_000),
            rpc=RPCSection(listen=f"127.0.0.1:{base_port + 2 * i + 1}"),
            consensus=consensus or ConsensusSection(),
        )
        node_home.init(config, validator=True, node_key=node_keys[i],
                       validator_key=validator_keys[i])
        node_home.write_genesis(genesis)
        infos.append(NodeInfo(i, node_home.path.resolve(), f"127.0.0.1:{base_port + 2 * i}",
                              f"http://127.0.0.1:{base_port + 2 * i + 1}",
                              address_to_text(validator_keys[i].address),
                              node_keys[i].address.hex()))
    write_manifest(home, infos, accounts, pids={})
    return infos


def write_manifest(home: Path, infos: list[NodeInfo], accounts: dict[str, bytes] | None = None,
                   pids: dict[int, int] | None = None) -> None:
    path = home / "localnet.json"
    previous: dict[str, Any] = json.loads(path.read_text()) if path.exists() else {}
    if accounts is None:
        listed = previous.get("accounts", [])
    else:
        listed = [{"name": n, "address": address_to_text(a), "key": f"keys/{n}.json"}
                  for n, a in accounts.items()]
    manifest = {
        "chain_id": json.loads((home / "genesis.json").read_text())["chain_id"],
        "nodes": [{"index": n.index, "home": str(n.home), "p2p": n.p2p, "rpc": n.rpc,
                   "address": n.validator, "node_id": n.node_id,
                   "pid": (pids or {}).get(n.index)} for n in infos],
        "contracts": {name: address_to_text(a) for name, a in COMMERCE_CONTRACTS.items()},
        "accounts": listed,
    }
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(manifest, indent=2) + "\n")
    os.replace(tmp, path)


def account_key(home: Path, name: str) -> PrivateKey:
    return read_key(home / "keys" / f"{name}.json")


# ---------------------------------------------------------------------- running


def start_node(node_home: Path, log_path: Path) -> subprocess.Popen:
    """``agora start --home node_home`` as a child process, its log in ``log_path``."""
    log = open(log_path, "ab")  # noqa: SIM115 - the child process owns it
    try:
        return subprocess.Popen(
            [sys.executable, "-m", "cli", "start", "--home", str(node_home)],
            stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
            start_new_session=True,  # Ctrl-C goes to us; we stop the nodes in order
        )
    finally:
        log.close()


async def _status_lines(infos: list[NodeInfo], every: float, stop: asyncio.Event,
                        echo) -> None:
    """Every ``every`` seconds: each node's height and peers, and the transactions
    committed since the localnet started (read from the most advanced node)."""
    async with aiohttp.ClientSession() as session:
        clients = [RPCClient(info.rpc, session, timeout=2.0) for info in infos]
        counted: int | None = None  # blocks up to here are counted
        committed = 0
        while not stop.is_set():
            parts = []
            best: tuple[int, RPCClient] | None = None
            for info, client in zip(infos, clients, strict=True):
                try:
                    status = await client.status()
                except (NodeUnreachable, TimeoutError, RPCFailed):
                    parts.append(f"node{info.index} down")
                    continue
                parts.append(f"node{info.index} h={status['height']} peers={status['peers']}")
                if best is None or status["height"] > best[0]:
                    best = (status["height"], client)
            if best is not None:
                height, client = best
                if counted is None:
                    counted = height
                try:
                    while counted < height:
                        block = await client.block(counted + 1)
                        committed += block["header"]["tx_count"]
                        counted += 1
                except (NodeUnreachable, TimeoutError, RPCFailed):
                    pass  # counted next time
                parts.insert(0, f"height {height}, {committed:,} txs committed")
            echo(time.strftime("%H:%M:%S ") + " | ".join(parts))
            try:
                async with asyncio.timeout(every):
                    await stop.wait()
            except TimeoutError:
                pass


def stop_processes(procs: dict[int, subprocess.Popen], timeout: float = 15.0) -> None:
    """SIGTERM every node (they shut down in order), SIGKILL any that hangs."""
    for proc in procs.values():
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
    deadline = time.monotonic() + timeout
    for proc in procs.values():
        try:
            proc.wait(max(0.1, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def run(home: Path, validators: int, base_port: int | None, echo,
        status_every: float = 5.0) -> None:
    """Init if needed, start every node, print status lines until Ctrl-C, stop."""
    if not (home / "localnet.json").exists():
        init(home, validators, base_port)
        echo(f"created a {validators}-validator localnet in {home}")
    infos = node_infos(home)
    procs: dict[int, subprocess.Popen] = {}
    try:
        for info in infos:
            procs[info.index] = start_node(info.home, info.home / "node.log")
        write_manifest(home, infos, pids={i: p.pid for i, p in procs.items()})
        for info in infos:
            echo(f"node{info.index}: rpc {info.rpc}  p2p {info.p2p}  validator {info.validator}"
                 f"  log {info.home / 'node.log'}")
        echo(f"demo accounts: {', '.join(DEMO_ACCOUNTS)} (keys in {home / 'keys'}); "
             "Ctrl-C stops every node")
        stop = asyncio.Event()

        async def main() -> None:
            loop = asyncio.get_running_loop()
            for sig in (signal.SIGINT, signal.SIGTERM):
                loop.add_signal_handler(sig, stop.set)
            watcher = asyncio.create_task(_watch(procs, stop, echo))
            await _status_lines(infos, status_every, stop, echo)
            watcher.cancel()

        asyncio.run(main())
    finally:
        echo("stopping every node ...")
        stop_processes(procs)
        write_manifest(home, infos, pids={})
        echo("stopped")


async def _watch(procs: dict[int, subprocess.Popen], stop: asyncio.Event, echo) -> None:
    """Report a node that exits on its own (the others keep running)."""
    reported: set[int] = set()
    while not stop.is_set():
        for index, proc in procs.items():
            code = proc.poll()
            if code is not None and index not in reported:
                reported.add(index)
                echo(f"node{index} exited with code {code}; see its node.log")
        try:
            async with asyncio.timeout(1.0):
                await stop.wait()
        except TimeoutError:
            pass
