"""Does a validator-set change cost an extra round? (issue: heights around a change
commit with the same latency as others, p50 within 10 %.)

    python -m bench.governance [--rate 100] [--before 40] [--after 40]

Starts a 4-validator localnet with one standby node (default consensus timing) in a
temporary home, keeps a steady open-loop load of transfers flowing (``--rate`` per
second, ``broadcast_tx_async`` to the validators in turn), and subscribes to the
``blocks`` and ``txs`` of an observer (node 0) over WebSocket, noting the moment each
notification arrives. Once ``--before`` heights have committed it votes the standby in
(propose-add, then two votes, as transactions of the validators' keys) and, once the
new set is in force, runs ``--after`` more heights, then removes one validator the
same way and runs on.

What it reports, as the observer saw it happen:

* height time: the time between consecutive block notifications, p50 and p90, for the
  heights around each change (from the block that passes it to three heights after it
  is in force) and for all the others;
* transaction latency: from submission to the transaction's commit notification,
  p50 and p99, for transactions committed around the changes and the others.

The load generator runs in this process; at the default rate it uses a few percent of
a core (printed), so it is not the bottleneck.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import aiohttp

from chain.address import address_to_text
from chain.keys import PrivateKey
from chain.system import GOVERNANCE_ADDRESS
from chain.tx import Call, Transaction
from node import localnet
from node.rpc.client import RPCClient, transfer
from vm.contracts import encode_call

SENDERS = 40


def _pct(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    values = sorted(values)
    return values[min(len(values) - 1, int(q * len(values)))]


class Observer:
    """Block and transaction notifications of one node, with their arrival times."""

    def __init__(self, url: str) -> None:
        self.url = url.replace("http://", "ws://") + "/websocket"
        self.blocks: dict[int, float] = {}
        self.txs: dict[str, tuple[float, int]] = {}

    async def run(self, ready: asyncio.Event) -> None:
        async with aiohttp.ClientSession() as session, \
                session.ws_connect(self.url, max_msg_size=0) as ws:
            for i, kind in enumerate(("blocks", "txs")):
                await ws.send_str(json.dumps({"jsonrpc": "2.0", "id": i, "method": "subscribe",
                                              "params": {"kind": kind}}))
            ready.set()
            async for message in ws:
                now = time.monotonic()
                body = json.loads(message.data)
                if body.get("method") != "subscription":
                    continue
                result = body["params"]["result"]
                if "receipt" in result:  # a committed transaction
                    self.txs.setdefault(result["hash"], (now, result["height"]))
                elif "proposer" in result:  # a new header
                    self.blocks.setdefault(result["height"], now)


async def _gov(client: RPCClient, key: PrivateKey, chain_id: str, nonce: int, method: str,
               *args: Any) -> dict[str, Any]:
    tx = Transaction.create(key, chain_id, nonce, Call(GOVERNANCE_ADDRESS, method,
                                                       encode_call("governance", method, *args),
                                                       0),
                            gas_limit=2_000_000, gas_price=1)
    out = await client.broadcast_tx_commit(tx)
    if out["receipt"]["status"] != "ok":
        raise SystemExit(f"{method} failed: {out['receipt']['reason']}")
    return out


async def _run(args: argparse.Namespace, home: Path) -> dict[str, Any]:
    senders = [PrivateKey.generate() for _ in range(SENDERS)]
    infos = localnet.init(home, 4, localnet.free_base_port(12), standby=1,
                          extra_balances={k.address: 10**24 for k in senders})
    chain_id = localnet.CHAIN_ID
    keys = [localnet.account_key(home, f"node{i}") for i in range(5)]
    procs = {i.index: localnet.start_node(i.home, i.home / "node.log") for i in infos}
    clients = [RPCClient(i.rpc, timeout=30.0) for i in infos]
    observer = Observer(infos[0].rpc)
    submitted: dict[str, float] = {}
    stop = asyncio.Event()
    cpu = [0.0]
    try:
        for c in clients:
            async with asyncio.timeout(60):
                while True:
                    try:
                        if (await c.status())["height"] >= 1:
                            break
                    except Exception:  # noqa: BLE001 - still starting
                        pass
                    await asyncio.sleep(0.2)
        ready = asyncio.Event()
        watcher = asyncio.create_task(observer.run(ready))
        await ready.wait()

        async def load() -> None:
            nonces = [0] * SENDERS
            pending: set[asyncio.Future[Any]] = set()
            period = 1.0 / args.rate
            k = 0
            next_at = time.monotonic()
            while not stop.is_set():
                c0 = time.process_time()
                i = k % SENDERS
                tx = transfer(senders[i], chain_id, nonces[i], senders[(i + 1) % SENDERS].address, 1)
                nonces[i] += 1
                submitted[tx.hash.hex()] = time.monotonic()
                pending.add(asyncio.ensure_future(clients[k % 4].broadcast_tx_async(tx)))
                pending.difference_update({t for t in pending if t.done()})
                k += 1
                cpu[0] += time.process_time() - c0
                next_at += period
                await asyncio.sleep(max(0.0, next_at - time.monotonic()))

        loader = asyncio.create_task(load())
        gov_nonce = {i: 0 for i in range(5)}

        async def wait_height(h: int) -> None:
            while max(observer.blocks, default=0) < h:
                await asyncio.sleep(0.05)

        async def change(propose: tuple, voters: list[int]) -> tuple[int, int]:
            out = await _gov(clients[0], keys[0], chain_id, gov_nonce[0], *propose)
            gov_nonce[0] += 1
            pid = int.from_bytes(bytes.fromhex(out["receipt"]["return_data"]), "big")
            passed = 0
            for v in voters:
                res = await _gov(clients[v % 4], keys[v], chain_id, gov_nonce[v], "vote", pid, True)
                gov_nonce[v] += 1
                if any(e["name"] == "ValidatorUpdate" for e in res["receipt"]["events"]):
                    passed = res["height"]
            if not passed:
                raise SystemExit("the change did not pass")
            return passed, passed + 2

        await wait_height(args.before)
        add = await change(("propose_add", keys[4].public_key, 10, "node4", ""), [1, 2])
        print(f"standby voted in at height {add[0]}, in force from {add[1]}", file=sys.stderr)
        await wait_height(add[1] + args.after)
        remove = await change(("propose_remove", keys[3].address), [1, 2, 4])
        print(f"node3 voted out at height {remove[0]}, in force from {remove[1]}",
              file=sys.stderr)
        await wait_height(remove[1] + args.after)
        stop.set()
        await loader
        await asyncio.sleep(1.0)
        watcher.cancel()
    finally:
        for c in clients:
            await c.close()
        localnet.stop_processes(procs, timeout=10)
    around: set[int] = set()
    for passed, in_force in (add, remove):
        around.update(range(passed, in_force + 4))
    heights = sorted(observer.blocks)
    first = args.before // 2  # after warm-up
    intervals = {h: observer.blocks[h] - observer.blocks[h - 1]
                 for h in heights if h - 1 in observer.blocks and h > first}
    near = [v for h, v in intervals.items() if h in around]
    other = [v for h, v in intervals.items() if h not in around]
    lat_near: list[float] = []
    lat_other: list[float] = []
    for tx_hash, (at, height) in observer.txs.items():
        sent = submitted.get(tx_hash)
        if sent is None or height <= first:
            continue
        (lat_near if height in around else lat_other).append(at - sent)
    span = observer.blocks[heights[-1]] - observer.blocks[heights[0]]
    return {
        "changes": {"add": {"passed": add[0], "in_force": add[1]},
                    "remove": {"passed": remove[0], "in_force": remove[1]}},
        "height_ms": {
            "around_changes": {"n": len(near), "p50": 1000 * _pct(near, 0.5),
                               "p90": 1000 * _pct(near, 0.9)},
            "others": {"n": len(other), "p50": 1000 * _pct(other, 0.5),
                       "p90": 1000 * _pct(other, 0.9)},
        },
        "tx_latency_ms": {
            "around_changes": {"n": len(lat_near), "p50": 1000 * _pct(lat_near, 0.5),
                               "p99": 1000 * _pct(lat_near, 0.99)},
            "others": {"n": len(lat_other), "p50": 1000 * _pct(lat_other, 0.5),
                       "p99": 1000 * _pct(lat_other, 0.99)},
        },
        "load": {"rate": args.rate, "generator_cpu_share": cpu[0] / span if span else None},
        "p50_ratio": (statistics.median(near) / statistics.median(other)
                      if near and other else None),
        "standby": address_to_text(keys[4].address),
    }


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rate", type=float, default=100.0, help="transfers per second")
    ap.add_argument("--before", type=int, default=40, help="heights before the first change")
    ap.add_argument("--after", type=int, default=40, help="heights after each change")
    args = ap.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="agora-bench-gov-") as tmp:
        result = asyncio.run(_run(args, Path(tmp) / "localnet"))
    print(json.dumps(result, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
