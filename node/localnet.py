"""``agora localnet``: N validators on 127.0.0.1, each an ordinary node home.

``HOME/nodeN/`` is a home like any other (``agora start --home HOME/node3`` restarts
one node by itself); ``HOME/keys/`` holds the demo accounts' keys (localnet keys need
no passphrase); ``HOME/genesis.json`` is the shared genesis; ``HOME/localnet.json``
says where everything is. Ports: node i listens for peers on ``base + 2i`` and for
RPC on ``base + 2i + 1`` (``--base-port`` on an existing localnet moves it there).

The nodes die with the localnet, however it dies: each is started with
``AGORA_EXIT_WITH_PARENT=<our pid>`` and stops cleanly once we are no longer its parent
(node/daemon.py; portable, checked twice a second), and on Linux the kernel also sends
it SIGTERM the moment we die (PR_SET_PDEATHSIG). A running localnet holds
``HOME/localnet.lock``; a second ``agora localnet`` on the same home refuses, and so
does one that finds any of its nodes still running (each running node holds its home's
``data/node.lock``), naming them and how to stop them.
"""

from __future__ import annotations

import asyncio
import ctypes
import json
import os
import random
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import aiohttp

from chain.address import address_to_text
from chain.keys import PrivateKey
from chain.system import SYSTEM_CONTRACTS
from vm.contracts import Demo

from .config import Config, ConsensusSection, NodeSection, P2PSection, RPCSection
from .genesis import DEMO_COINS, DEMO_TOKENS, GenesisValidator, genesis_document, now_ms
from .home import Home, HomeError, LockHeld, read_key, take_lock, write_key
from .rpc.client import NodeUnreachable, RPCClient, RPCFailed

DEMO_ACCOUNTS = ("buyer", "merchant", "arbiter", "referrer")
DEFAULT_BASE_PORT = 26600
DEFAULT_VALIDATORS = 4
CHAIN_ID = "agora-localnet"
#: Linux prctl(2): have the kernel send a signal to this process when its parent dies.
PR_SET_PDEATHSIG = 1


@dataclass(frozen=True)
class NodeInfo:
    index: int
    home: Path
    p2p: str
    rpc: str
    validator: str
    node_id: str
    #: A full node holding a validator key that is not in the genesis set: the
    #: validators can vote it in (``agora validator propose-add``).
    standby: bool = False


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
                     n["node_id"], bool(n.get("standby", False))) for n in data["nodes"]]


def init(home: Path, validators: int = 4, base_port: int | None = DEFAULT_BASE_PORT,
         chain_id: str = CHAIN_ID, consensus: ConsensusSection | None = None,
         extra_balances: dict[bytes, int] | None = None, standby: int = 0,
         proposal_ttl: int = 1_000) -> list[NodeInfo]:
    """Generate keys, genesis and N node homes under ``home`` (``consensus``: the
    nodes' consensus timing, default the config's; ``extra_balances``: more funded
    accounts, for benchmarks), and ``standby`` more full nodes with validator keys
    outside the genesis set, for the validators to vote in.

    Each validator key (standbys' too) is funded and also written to ``HOME/keys`` as
    ``nodeI``, so the operator commands can sign with it (``agora validator vote
    --from node0``)."""
    if validators < 1:
        raise HomeError("a localnet needs at least one validator")
    if standby < 0:
        raise HomeError("the number of standby nodes cannot be negative")
    if (home / "localnet.json").exists():
        raise HomeError(f"{home} already holds a localnet (localnet.json exists)")
    if base_port is None:
        base_port = DEFAULT_BASE_PORT
    home.mkdir(parents=True, exist_ok=True)
    total = validators + standby
    node_keys = [PrivateKey.generate() for _ in range(total)]
    validator_keys = [PrivateKey.generate() for _ in range(total)]
    accounts = {}
    for name in DEMO_ACCOUNTS:
        key = PrivateKey.generate()
        write_key(home / "keys" / f"{name}.json", key)
        accounts[name] = key.address
    for i, key in enumerate(validator_keys):
        write_key(home / "keys" / f"node{i}.json", key)
    # The merchant starts with two listings (one a group deal) and the arbiter is
    # registered: the real calls, run into genesis (vm.contracts.publish_demo).
    genesis = genesis_document(
        chain_id,
        [GenesisValidator(k.public_key, 10, f"node{i}")
         for i, k in enumerate(validator_keys[:validators])],
        time_ms=now_ms(),
        balances={**{a: DEMO_COINS for a in accounts.values()},
                  **{k.address: DEMO_COINS for k in validator_keys},
                  **(extra_balances or {})},
        proposal_ttl=proposal_ttl,
        commerce=True,
        token_balances={a: DEMO_TOKENS for a in accounts.values()},
        demo=Demo(merchant=accounts["merchant"], arbiter=accounts["arbiter"]))
    (home / "genesis.json").write_text(json.dumps(genesis, indent=2) + "\n")
    infos = []
    p2p_addresses = [f"{k.address.hex()}@127.0.0.1:{base_port + 2 * i}"
                     for i, k in enumerate(node_keys)]
    for i in range(total):
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
                              node_keys[i].address.hex(), standby=i >= validators))
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
                   "address": n.validator, "node_id": n.node_id, "standby": n.standby,
                   "pid": (pids or {}).get(n.index)} for n in infos],
        "contracts": {name: address_to_text(a) for name, a in SYSTEM_CONTRACTS.items()},
        "accounts": listed,
    }
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(manifest, indent=2) + "\n")
    os.replace(tmp, path)


def manifest_accounts(place: Path) -> dict[str, str]:
    """The demo accounts named in ``place/localnet.json`` (name -> ``agora1...``);
    empty where there is no readable manifest."""
    try:
        listed = json.loads((place / "localnet.json").read_text()).get("accounts", [])
    except (OSError, ValueError, AttributeError):
        return {}
    return {a["name"]: a["address"] for a in listed if isinstance(a, dict)
            and isinstance(a.get("name"), str) and isinstance(a.get("address"), str)}


def account_key(home: Path, name: str) -> PrivateKey:
    return read_key(home / "keys" / f"{name}.json")


def move_ports(home: Path, base_port: int) -> list[NodeInfo] | None:
    """Move an existing localnet to ``base_port``: each node's p2p and RPC listen
    addresses and its persistent peers (in its config.toml) and localnet.json. Returns
    the new infos, or None if it already listens there. Its nodes must not be running."""
    infos = node_infos(home)
    moved = [replace(info, p2p=f"127.0.0.1:{base_port + 2 * info.index}",
                     rpc=f"http://127.0.0.1:{base_port + 2 * info.index + 1}")
             for info in infos]
    if moved == infos:
        return None
    p2p_of = {info.node_id.lower(): info.p2p for info in moved}
    for info in moved:
        node_home = Home(info.home)
        config = node_home.config()
        peers = []
        for peer in config.p2p.persistent_peers:
            node_id, at, _address = peer.partition("@")
            ours = p2p_of.get(node_id.lower().removeprefix("0x")) if at else None
            peers.append(f"{node_id}@{ours}" if ours is not None else peer)
        node_home.write_config(config.model_copy(update={
            "p2p": config.p2p.model_copy(update={"listen": info.p2p,
                                                 "persistent_peers": peers}),
            "rpc": config.rpc.model_copy(update={"listen": info.rpc.removeprefix("http://")}),
        }))
    write_manifest(home, moved, pids={})
    return moved


def still_running(infos: list[NodeInfo]) -> list[tuple[NodeInfo, int]]:
    """The nodes of ``infos`` running now (each running node holds its home's
    data/node.lock), with their pids (0: not written yet)."""
    found = []
    for info in infos:
        pid = Home(info.home).running_pid()
        if pid is not None:
            found.append((info, pid))
    return found


def refuse_if_running(home: Path, infos: list[NodeInfo]) -> None:
    running = still_running(infos)
    if not running:
        return
    named = ", ".join(f"node{info.index} (pid {pid or '?'}, home {info.home})"
                      for info, pid in running)
    pids = " ".join(str(pid) for _, pid in running if pid)
    raise HomeError(f"nodes of the localnet in {home} are still running: {named}; stop "
                    f"them first ({f'kill {pids}' if pids else 'kill them'}), then run "
                    "`agora localnet` again")


# ---------------------------------------------------------------------- running


def _die_with_us() -> Callable[[], None] | None:
    """Linux: a ``preexec_fn`` that has the kernel send the child SIGTERM when we die
    (PR_SET_PDEATHSIG). Only from the main thread: the signal comes when the *thread*
    that forked the child ends, and a worker thread ending is not our death.
    Elsewhere None: the node's own parent check (AGORA_EXIT_WITH_PARENT) does it."""
    if not sys.platform.startswith("linux") \
            or threading.current_thread() is not threading.main_thread():
        return None
    try:
        prctl = ctypes.CDLL(None, use_errno=True).prctl  # loaded here, not after fork
    except (OSError, AttributeError):
        return None
    parent = os.getpid()

    def preexec() -> None:
        prctl(PR_SET_PDEATHSIG, int(signal.SIGTERM), 0, 0, 0)
        # The classic race: if we died between fork and prctl, no signal will come.
        if os.getppid() != parent:
            os.kill(os.getpid(), signal.SIGTERM)
    return preexec


def start_node(node_home: Path, log_path: Path) -> subprocess.Popen:
    """``agora start --home node_home`` as a child process, its log in ``log_path``.
    The node dies with this process (see the module's docstring)."""
    from .daemon import EXIT_WITH_PARENT  # the node's side of it; imported when used

    log = open(log_path, "ab")  # noqa: SIM115 - the child process owns it
    try:
        return subprocess.Popen(
            [sys.executable, "-m", "cli", "start", "--home", str(node_home)],
            stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
            env={**os.environ, EXIT_WITH_PARENT: str(os.getpid())},
            start_new_session=True,  # Ctrl-C goes to us; we stop the nodes in order
            preexec_fn=_die_with_us(),  # only prctl and getppid between fork and exec
        )
    finally:
        log.close()


def last_line(path: Path) -> str:
    """The last line of a node's log (``agora start`` says why it stopped there)."""
    try:
        with open(path, "rb") as f:
            f.seek(max(0, f.seek(0, os.SEEK_END) - 4096))
            lines = f.read().decode("utf-8", "replace").strip().splitlines()
    except OSError:
        return ""
    return lines[-1].strip() if lines else ""


async def _status_lines(infos: list[NodeInfo], procs: dict[int, subprocess.Popen],
                        every: float, stop: asyncio.Event, echo) -> None:
    """Every ``every`` seconds: each node's height and peers, and the transactions
    committed since the localnet started (read from the most advanced node). Only the
    nodes this run started are asked: one whose process exited is reported as exited
    (whatever might answer on its port is not it)."""
    async with aiohttp.ClientSession() as session:
        clients = [RPCClient(info.rpc, session, timeout=2.0) for info in infos]
        counted: int | None = None  # blocks up to here are counted
        committed = 0
        while not stop.is_set():
            parts = []
            best: tuple[int, RPCClient] | None = None
            for info, client in zip(infos, clients, strict=True):
                code = procs[info.index].poll()
                if code is not None:
                    parts.append(f"node{info.index} exited ({code})")
                    continue
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


def run(home: Path, validators: int | None, base_port: int | None, echo,
        status_every: float = 5.0, standby: int | None = None) -> None:
    """Init if needed, start every node, print status lines until Ctrl-C, stop.
    ``base_port`` None: an existing localnet's own ports (a new one's: 26600);
    ``validators`` None: an existing localnet's own count (a new one's: 4);
    ``standby`` None: an existing localnet's own standby nodes (a new one's: 0)."""
    home.mkdir(parents=True, exist_ok=True)
    try:
        release = take_lock(home / "localnet.lock")
    except LockHeld as held:
        pid = held.pid or "?"
        raise HomeError(f"another `agora localnet` (pid {pid}) is running in {home}: stop "
                        f"it first (Ctrl-C in its terminal, or `kill {pid}`)") from None
    try:
        if not (home / "localnet.json").exists():
            validators = validators or DEFAULT_VALIDATORS
            init(home, validators, base_port, standby=standby or 0)
            extra = f" and {standby} standby node(s)" if standby else ""
            echo(f"created a {validators}-validator localnet{extra} in {home}")
        else:
            infos = node_infos(home)
            genesis_count = sum(not i.standby for i in infos)
            if validators is not None and validators != genesis_count:
                raise HomeError(f"the localnet in {home} has {genesis_count} validators, not "
                                f"{validators}: run it without --validators, or make a new "
                                f"one with another --home")
            standbys = len(infos) - genesis_count
            if standby is not None and standby != standbys:
                raise HomeError(f"the localnet in {home} has {standbys} standby node(s), not "
                                f"{standby}: run it without --standby, or make a new one "
                                f"with another --home")
            refuse_if_running(home, infos)
            if base_port is not None and (moved := move_ports(home, base_port)):
                echo(f"moved the localnet in {home} to ports {base_port}-"
                     f"{base_port + 2 * len(moved) - 1} (p2p and rpc of each node)")
        _run(home, node_infos(home), echo, status_every)
    finally:
        release()


def _run(home: Path, infos: list[NodeInfo], echo, status_every: float) -> None:
    procs: dict[int, subprocess.Popen] = {}
    try:
        for info in infos:
            procs[info.index] = start_node(info.home, info.home / "node.log")
        write_manifest(home, infos, pids={i: p.pid for i, p in procs.items()})
        for info in infos:
            role = "standby (validator key, not yet voted in)" if info.standby else "validator"
            echo(f"node{info.index}: rpc {info.rpc}  p2p {info.p2p}  {role} {info.validator}"
                 f"  log {info.home / 'node.log'}")
        if any(info.standby for info in infos):
            first = next(info for info in infos if info.standby)
            echo(f"vote node{first.index} in: agora validator propose-add --from node0 "
                 f"--home {home} --validator node{first.index} --power 10 (then "
                 "`agora validator vote` by the other validators)")
        echo(f"demo accounts: {', '.join(DEMO_ACCOUNTS)} (keys in {home / 'keys'}); "
             "Ctrl-C stops every node")
        echo(f"explorer: {infos[0].rpc.rstrip('/')}/explorer/ (every node serves one; "
             "?lang=zh-CN for Chinese)")
        stop = asyncio.Event()

        async def main() -> None:
            loop = asyncio.get_running_loop()
            for sig in (signal.SIGINT, signal.SIGTERM):
                loop.add_signal_handler(sig, stop.set)
            watcher = asyncio.create_task(_watch(infos, procs, stop, echo))
            await _status_lines(infos, procs, status_every, stop, echo)
            watcher.cancel()

        asyncio.run(main())
        if all(proc.poll() is not None for proc in procs.values()):
            raise HomeError("every node exited; see their node.log")
    finally:
        echo("stopping every node ...")
        stop_processes(procs)
        write_manifest(home, infos, pids={})
        echo("stopped")


async def _watch(infos: list[NodeInfo], procs: dict[int, subprocess.Popen],
                 stop: asyncio.Event, echo) -> None:
    """Report a node that exits on its own, with the last line of its log (the others
    keep running); once every node has exited, stop."""
    reported: set[int] = set()
    while not stop.is_set():
        for info in infos:
            code = procs[info.index].poll()
            if code is not None and info.index not in reported:
                reported.add(info.index)
                log = info.home / "node.log"
                said = last_line(log)
                echo(f"node{info.index} exited with code {code}"
                     + (f": {said}" if said else "") + f" (see {log})")
        if len(reported) == len(procs):
            echo("every node has exited")
            stop.set()
            return
        try:
            async with asyncio.timeout(1.0):
                await stop.wait()
        except TimeoutError:
            pass
