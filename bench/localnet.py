"""Benchmark: committed transactions/s and submit-to-commit latency on a localnet of
this machine (``agora bench``).

    agora bench [--validators 4] [--txs N | --duration S] [--rate R]
                [--workload transfer|escrow|mixed] [--json] [--profile]
    python -m bench.localnet ...      # the same

A localnet of ``--validators`` nodes in a temporary home on free ports (removed at
the end, also on Ctrl-C or an error; ``--keep`` keeps it). Every account is funded in
genesis; the workload's set-up (listings, groups, a probe order that measures gas) is
done before any clock starts (bench/workloads.py says what each workload submits and
why the escrow flow runs in three phases).

Load (bench/load.py): ``--generators`` processes, each signing its share of the
transactions before the clock, then submitting them with ``broadcast_txs`` (JSON-RPC,
batched), each sender's transactions always to the same node. With ``--rate`` the
offered rate is fixed (open loop: every ``--tick-ms`` what is due is sent, whatever the
answers); without it, as fast as the nodes accept (a few requests in flight per node).
Refused transactions are resent in nonce order after a backoff; every refusal is
counted by the code ``broadcast_txs`` gave. Each generator reports what it offered
and, from its CPU time, what it could have offered: the generators are shown not to be
the bottleneck, or the report shows that they were.

Commits are observed as they happen: a WebSocket ``blocks`` subscription on every node
(the first notification of a height is its commit), each block with transactions then
read for its hashes. Latency is each transaction's submission (the request that it was
admitted in) to its block's first notification. After the sending, the run waits (at
most ``--drain-timeout``) for every admitted transaction to commit, and reports any
that did not.

Reported (``--json``: one object with all of it): committed tx/s sustained over the
window from the first commit to the last (the first block's transactions, gathered
before the window opens, not counted), and from the first submission; submitted,
admitted and refused counts by reason; latency min/p50/p95/p99/max; blocks/s and
transactions per block; each node's CPU seconds, utilisation (of one core) and peak RSS
(/proc: stat, VmHWM); each generator's offered and possible rate; and, measured in the
same run (before the nodes start and again after they stop, the better of the two
taken), this machine's ed25519 verifications per second per core (PyNaCl), the ceiling
it implies (each validator verifies every transaction once: cores x rate / validators)
and the throughput as a fraction of it; the committed tx/s "while submitting" (the
blocks committed before the last submission) besides. ``--profile`` runs the nodes
under cProfile (``AGORA_PROFILE``) and prints the top functions, by own time, of the
node that used the most CPU.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import math
import os
import pstats
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any, TextIO

import aiohttp
import nacl.signing

from consensus.core import REPUTATION_WINDOW
from node import localnet
from node.config import ConsensusSection
from node.rpc.client import NodeUnreachable, RPCClient, RPCFailed

from .load import (
    BlockSeen,
    GeneratorFailed,
    Generators,
    Observer,
    RunParams,
    cpu_seconds,
    peak_rss_mb,
)
from .workloads import FUNDS, Accounts, Net, Phase, Workload, make

#: Transactions signed for a --duration run without --rate: enough for the ceiling, at
#: most this many.
MAX_PRESIGNED = 300_000


def verify_rate(seconds: float = 1.0) -> float:
    """ed25519 verifications per second on one core (PyNaCl, a 150-byte message)."""
    key = nacl.signing.SigningKey.generate()
    message = b"x" * 150
    signature = key.sign(message).signature
    verify = key.verify_key.verify
    n = 0
    start = time.perf_counter()
    while time.perf_counter() - start < seconds:
        for _ in range(200):
            verify(message, signature)
        n += 200
    return n / (time.perf_counter() - start)


def pct(values: list[float], q: float) -> float:
    values = sorted(values)
    return values[min(len(values) - 1, int(q * len(values)))]


def parse(argv: list[str] | None) -> argparse.Namespace:
    ap = argparse.ArgumentParser(prog="agora bench", description=__doc__.splitlines()[0])
    ap.add_argument("--validators", type=int, default=4)
    size = ap.add_mutually_exclusive_group()
    size.add_argument("--txs", type=int, help="transactions to submit (default 10,000)")
    size.add_argument("--duration", type=float,
                      help="seconds to submit for (transfer; escrow and mixed: sizes the "
                           "run to about this long at --rate)")
    ap.add_argument("--rate", type=float,
                    help="offered tx/s, open loop (default: as fast as accepted)")
    ap.add_argument("--workload", choices=("transfer", "escrow", "mixed"),
                    default="transfer")
    ap.add_argument("--json", action="store_true",
                    help="print one JSON object (progress goes to stderr)")
    ap.add_argument("--profile", action="store_true",
                    help="run the nodes under cProfile; print the busiest node's top functions")
    ap.add_argument("--generators", type=int, default=2, help="load-generator processes")
    ap.add_argument("--senders", type=int,
                    help="transfer senders (default: a tenth of the transfers, 50 to 2,000)")
    ap.add_argument("--tick-ms", type=float, default=20.0,
                    help="open loop: send what is due this often")
    ap.add_argument("--batch", type=int, default=500, help="most txs in one broadcast_txs")
    ap.add_argument("--window", type=int, default=2,
                    help="without --rate: requests in flight per node")
    ap.add_argument("--drain-timeout", type=float, default=60.0,
                    help="after sending, wait for every admitted tx to commit; give up "
                         "once this long passes with none committing")
    ap.add_argument("--block-interval-ms", type=int,
                    help=f"the nodes' block interval (default "
                         f"{ConsensusSection().block_interval_ms})")
    ap.add_argument("--proposal-max-txs", type=int,
                    help=f"the most transactions a node puts in a block it proposes "
                         f"(default {ConsensusSection().proposal_max_txs})")
    ap.add_argument("--keep", action="store_true", help="keep the localnet's directory")
    ap.add_argument("--stop-validator", action="store_true",
                    help="leave the last validator stopped for the whole run (the chain "
                         "runs on the others; load starts once the proposer rotation has "
                         "dropped it)")
    args = ap.parse_args(argv)
    for name in ("validators", "txs", "generators", "batch", "window", "senders"):
        value = getattr(args, name)
        if value is not None and value < 1:
            ap.error(f"--{name} must be at least 1")
    for name in ("duration", "rate", "tick_ms", "drain_timeout"):
        value = getattr(args, name)
        if value is not None and value <= 0:
            ap.error(f"--{name.replace('_', '-')} must be positive")
    args.batch = min(args.batch, 1_000)
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse(argv)
    # SIGTERM cleans up like Ctrl-C: the nodes stopped, the localnet removed.
    if threading.current_thread() is threading.main_thread():
        signal.signal(signal.SIGTERM, signal.default_int_handler)
    try:
        report = asyncio.run(run(args))
    except KeyboardInterrupt:
        print("interrupted: the nodes are stopped and the localnet removed", file=sys.stderr)
        return 130
    except (GeneratorFailed, NodeUnreachable, RPCFailed, RuntimeError, TimeoutError) as exc:
        print(f"agora bench failed: {exc or type(exc).__name__} (--keep keeps the nodes' "
              "logs)", file=sys.stderr)
        return 1
    if args.json:
        print(json.dumps(report, indent=2))
    else:
        print_report(report, sys.stdout)
    return 0 if report["ok"] else 1


# ---------------------------------------------------------------------- the run


async def run(args: argparse.Namespace) -> dict[str, Any]:
    out = sys.stderr if args.json else sys.stdout

    def say(text: str) -> None:
        print(text, file=out, flush=True)

    cores = os.cpu_count() or 1
    say("measuring ed25519 verification on this machine ...")
    verify = first = verify_rate(1.0)
    ceiling = cores * verify / args.validators
    txs = _size(args, ceiling)
    workload = make(args.workload, txs, args.senders)
    accounts = Accounts(args.validators - 1 if args.stop_validator and args.validators > 1 else args.validators)
    for seed in workload.seeds():
        accounts[seed]  # noqa: B018 - numbers and derives every account now
    offered = f"{args.rate:,.0f} tx/s offered" if args.rate else "as fast as accepted"
    say(f"agora bench: {workload.name}, {txs:,} txs, {args.validators} validators on "
        f"{cores} cores, {offered}, {args.generators} generators, "
        f"{len(accounts.by_index):,} accounts")
    workdir = Path(tempfile.mkdtemp(prefix="agora-bench-"))
    procs: dict[int, subprocess.Popen] = {}
    profiles: dict[int, Path] = {}
    generators: Generators | None = None
    report: dict[str, Any] = {}
    try:
        base = localnet.free_base_port(2 * args.validators)
        consensus = ConsensusSection(**{
            k: v for k, v in (("block_interval_ms", args.block_interval_ms),
                              ("proposal_max_txs", args.proposal_max_txs)) if v is not None})
        infos = localnet.init(workdir / "net", args.validators, base, consensus=consensus,
                              extra_balances={a.address: FUNDS for a in accounts.by_index})
        if args.stop_validator:
            say(f"node{infos[-1].index} stays stopped (--stop-validator)")
            infos = infos[:-1]
        for info in infos:
            if args.profile:
                profiles[info.index] = info.home / "profile.out"
                os.environ["AGORA_PROFILE"] = str(profiles[info.index])
            try:
                procs[info.index] = localnet.start_node(info.home, info.home / "node.log")
            finally:
                os.environ.pop("AGORA_PROFILE", None)
        urls = [info.rpc for info in infos]
        generators = Generators(args.generators, urls, localnet.CHAIN_ID)
        async with aiohttp.ClientSession() as session:
            report = await _measure(args, workload, accounts, workdir / "net", urls, procs,
                                    generators, session, say)
        for i, proc in procs.items():
            report["nodes"][i]["peak_rss_mb"] = _round(peak_rss_mb(proc.pid), 1)
    finally:
        if generators is not None:
            generators.close()
        localnet.stop_processes(procs)
        if args.profile and report:
            report["profile"] = _busiest(profiles, {n["node"]: n["cpu_s"]
                                                    for n in report["nodes"]})
        if args.keep:
            say(f"kept {workdir}")
        else:
            shutil.rmtree(workdir, ignore_errors=True)
    # Once more with the nodes stopped: the better of the two is this machine's rate (a
    # measurement can only be slowed by something else running, never sped up).
    again = verify_rate(1.0)
    verify = max(verify, again)
    ceiling = cores * verify / args.validators
    report["ed25519"] = {"verify_per_core": round(verify), "cores": cores,
                         "measured": [round(first), round(again)],
                         "ceiling_tps": round(ceiling),
                         "fraction_of_ceiling": _round(report["committed_tps"] / ceiling, 4)
                         if report.get("committed_tps") else None}
    return report


def _size(args: argparse.Namespace, ceiling: float) -> int:
    if args.txs:
        return int(args.txs)
    if args.duration:
        if args.rate:
            return max(1, math.ceil(args.rate * args.duration))
        return int(min(MAX_PRESIGNED, max(2_000, ceiling * args.duration)))
    return 10_000


async def _wait_ready(clients: list[RPCClient], procs: dict[int, subprocess.Popen],
                      min_height: int) -> int:
    async with asyncio.timeout(180):
        while True:
            for i, proc in procs.items():
                if proc.poll() is not None:
                    raise RuntimeError(f"node{i} exited ({proc.returncode}) while starting")
            try:
                heights = [(await c.status())["height"] for c in clients]
                if min(heights) >= min_height:
                    return max(heights)
            except (NodeUnreachable, RPCFailed, OSError):
                pass
            await asyncio.sleep(0.2)


async def _measure(args: argparse.Namespace, workload: Workload, accounts: Accounts,
                   home: Path, urls: list[str], procs: dict[int, subprocess.Popen],
                   generators: Generators, session: aiohttp.ClientSession,
                   say: Any) -> dict[str, Any]:
    clients = [RPCClient(u, session, timeout=120) for u in urls]
    height = await _wait_ready(clients, procs,
                               REPUTATION_WINDOW + 3 if args.stop_validator else 2)
    chain_id = (await clients[0].status())["chain_id"]
    observer = Observer(urls, session, say)
    await observer.start(height)
    try:
        net = Net(clients, chain_id, accounts, observer,
                  localnet.account_key(home, "arbiter").address,
                  localnet.account_key(home, "referrer").address, say)
        t = time.monotonic()
        setup = await workload.setup(net)
        if setup:
            say(f"set-up done in {time.monotonic() - t:.1f} s (off the clock)")
        cpu0 = time.process_time()
        phases = []
        ran: list[Phase] = []
        async for phase in workload.phases(net):
            phases.append(await _run_phase(args, net, phase, workload, generators, procs, say))
            ran.append(phase)
        missed = sum(1 for b in observer.blocks.values() if b.missed)
        report = _summary(args, workload, phases, procs)
        report["setup"] = setup
        seen = sorted((b for b in observer.blocks.values() if b.height > height and not b.missed),
                      key=lambda b: b.height)
        # A height counts from the one before only if both carry transactions and the
        # one before came after its phase's load began: a block after an idle one
        # (the load starting, or resends trickling in after the drain) measures the
        # idle interval, not a slow height.
        gaps = [(b.at - a.at, b.height) for a, b in zip(seen, seen[1:], strict=False)
                if b.height == a.height + 1 and a.tx_count and b.tx_count and any(
                    p.from_height < b.height <= p.to_height and a.at >= p.started_at
                    for p in ran)]
        worst = max(gaps, default=(0.0, 0))
        report["longest_height_ms"] = {"ms": round(worst[0] * 1000), "height": worst[1]}
        report["stopped_validator"] = bool(args.stop_validator)
        report["observer"] = {"reconnects": observer.reconnects, "missed_notifications": missed,
                              "cpu_s": round(time.process_time() - cpu0, 2),
                              "blocks_read": observer.read_blocks,
                              "txs_read": observer.read_txs,
                              "read_s": round(observer.read_seconds, 2)}
        return report
    finally:
        await observer.close()


async def _run_phase(args: argparse.Namespace, net: Net, phase: Phase, workload: Workload,
                     generators: Generators, procs: dict[int, subprocess.Popen],
                     say: Any) -> dict[str, Any]:
    g = generators.count
    parts: list[list[Any]] = [[] for _ in range(g)]
    for s in phase.streams:
        parts[s.sid % g].append(s)
    total = sum(len(s.actions) for s in phase.streams)
    tag = f"[{phase.name}]"
    signed = await generators.sign(parts)
    say(f"{tag} signed {total:,} txs from {len(phase.streams):,} senders in "
        f"{max(s['seconds'] for s in signed):.1f} s ({g} generators, before the clock)")
    observer = net.observer
    phase.from_height = observer.height
    cpu0 = {i: cpu_seconds(p.pid) for i, p in procs.items()}
    start_at = phase.started_at = time.monotonic() + 0.3
    shares = [s["txs"] / total if total else 0 for s in signed]
    params = [RunParams(start_at=start_at,
                        rate=args.rate * share if args.rate else None,
                        # with a rate, --duration sized the run; without, it ends it
                        duration=args.duration if workload.name == "transfer"
                        and not args.rate else None,
                        tick=args.tick_ms / 1000, batch=args.batch, window=args.window,
                        drain_timeout=args.drain_timeout) for share in shares]
    progress: dict[int, dict[str, Any]] = {}
    sending = [True]

    async def report_progress() -> None:
        last_t, last_c = start_at, 0
        while True:
            await asyncio.sleep(max(0.0, start_at - time.monotonic()) + 1.0)
            now = time.monotonic()
            committed = observer.committed_after(phase.from_height)
            attempts = sum(p["attempts"] for p in progress.values())
            admitted = sum(p["accepted"] for p in progress.values())
            refused = sum(p["refused"] for p in progress.values())
            say(f"{tag} {now - start_at:6.1f} s  {'sent' if sending[0] else 'draining'} "
                f"{attempts:,}  admitted {admitted:,}  refused {refused:,}  committed "
                f"{committed:,}  {(committed - last_c) / (now - last_t):,.0f} tx/s  height "
                f"{observer.height}")
            last_t, last_c = now, committed

    ticker = asyncio.create_task(report_progress())
    try:
        results = await generators.run(params, progress.update, timeout=180)
        sending[0] = False
        hashes = [h for r in results for h in r["hashes"]]
        drained = await observer.wait_for(hashes, args.drain_timeout)
        # every block up to the last commit read (the drain may end on a notification)
        async with asyncio.timeout(30):
            while observer.read_height < observer.height:
                await asyncio.sleep(0.02)
        end = time.monotonic()
    finally:
        ticker.cancel()
    cpu1 = {i: cpu_seconds(p.pid) for i, p in procs.items()}
    for r in results:
        for sid, nonce in r["next_nonces"].items():
            net.accounts.by_index[sid].nonce = nonce
    stats = _phase_stats(phase, results, observer, start_at, end)
    phase.to_height = stats.pop("_last_height")
    stats["drained"] = drained
    stats["signed"] = [{"txs": s["txs"], "seconds": round(s["seconds"], 2)} for s in signed]
    stats["node_cpu_s"] = {i: _delta(cpu0[i], cpu1[i]) for i in procs}
    stats["checks"] = await workload.check(net, phase)
    say(f"{tag} {_phase_line(stats)}")
    for name, c in stats["checks"].items():
        if c["found"] != c["expected"]:
            say(f"{tag} CHECK FAILED: {name}: expected {c['expected']:,}, found "
                f"{c['found']:,} in the phase's blocks")
    return stats


def _delta(a: float | None, b: float | None) -> float | None:
    return None if a is None or b is None else b - a


def _round(x: float | None, digits: int = 1) -> float | None:
    return None if x is None else round(x, digits)


def _latency(values: list[float]) -> dict[str, Any]:
    if not values:
        return {"samples": 0}
    ms = sorted(v * 1000 for v in values)
    return {"min": round(ms[0], 1), "p50": round(statistics.median(ms), 1),
            "p95": round(pct(ms, 0.95), 1), "p99": round(pct(ms, 0.99), 1),
            "max": round(ms[-1], 1), "mean": round(statistics.fmean(ms), 1),
            "samples": len(ms)}


def _phase_stats(phase: Phase, results: list[dict[str, Any]], observer: Observer,
                 start_at: float, end: float) -> dict[str, Any]:
    commit_time = observer.commit_time
    latencies: list[float] = []
    ours: set[str] = set()
    committed = 0
    never: list[str] = []
    for r in results:
        for h, sent in zip(r["hashes"], r["sent_at"], strict=True):
            ours.add(h)
            at = commit_time.get(h)
            if at is None:
                never.append(h)
                continue
            committed += 1
            if sent is not None and sent > 0:
                latencies.append(at - sent)
    blocks = sorted((b for b in observer.blocks.values() if b.height > phase.from_height),
                    key=lambda b: b.height)
    with_ours = [(b, sum(1 for h in b.hashes if h in ours)) for b in blocks]
    with_ours = [(b, n) for b, n in with_ours if n]
    refused: dict[str, int] = {}
    for r in results:
        for code, n in r["refused"].items():
            refused[code] = refused.get(code, 0) + n
    first_send = min((r["first_send"] for r in results if r["attempts"]), default=start_at)
    last_send = max((r["last_send"] for r in results if r["attempts"]), default=start_at)
    attempts = sum(r["attempts"] for r in results)
    stats: dict[str, Any] = {
        "name": phase.name, "kinds": phase.kinds,
        "txs": sum(len(s.actions) for s in phase.streams),
        "submitted": attempts, "resent": sum(r["resent"] for r in results),
        "admitted": sum(r["accepted"] for r in results), "committed": committed,
        "never_committed": len(never), "never_committed_sample": never[:5],
        "unadmitted": sum(r["unaccepted"] for r in results),
        "dead_streams": sum(r["dead_streams"] for r in results),
        "refused": dict(sorted(refused.items(), key=lambda kv: -kv[1])),
        "submit_tps": round(attempts / (last_send - first_send), 1)
        if last_send > first_send else None,
        "latency_ms": _latency(latencies), "_latencies": latencies,
        "wall_s": round(end - start_at, 2),
        "generators": [{
            "gid": r["gid"], "submitted": r["attempts"], "requests": r["requests"],
            "offered_tx_s": _round(r["offered_tx_s"], 1),
            "capacity_tx_s": round(r["capacity_tx_s"]), "cpu_s": round(r["cpu_s"], 2),
            "cpu_util": round(r["cpu_s"] / r["wall_s"], 3) if r["wall_s"] > 0 else None,
            "max_late_ms": round(r["max_late_s"] * 1000, 1), "forfeited": r["forfeited"],
            "gave_up": r["gave_up"]} for r in results],
        "_last_height": with_ours[-1][0].height if with_ours else phase.from_height,
    }
    if with_ours:
        first, first_n = with_ours[0]
        last = with_ours[-1][0]
        window = [b for b in blocks if first.height <= b.height <= last.height]
        span = last.at - first.at
        stats.update({
            "first_height": first.height, "last_height": last.height,
            "window_s": round(span, 3),
            "_counted": committed - first_n, "_span": span,
            "committed_tps": round((committed - first_n) / span, 1) if span > 0 else None,
            # while the load was still being offered: the blocks after the first up to
            # the last one committed before the last submission
            "steady_tps": _steady(with_ours, last_send),
            "end_to_end_tps": round(committed / (last.at - first_send), 1)
            if last.at > first_send else None,
            "blocks": len(window),
            "blocks_per_s": round((len(window) - 1) / span, 2) if span > 0 else None,
            "txs_per_block": {"mean": round(statistics.fmean(b.tx_count for b in window), 1),
                              "max": max(b.tx_count for b in window)},
            "_window": [b.tx_count for b in window],
        })
    else:
        stats.update({"committed_tps": None, "_counted": 0, "_span": 0.0, "_window": []})
    return stats


def _steady(with_ours: list[tuple[BlockSeen, int]], last_send: float) -> float | None:
    inside = [(b, n) for b, n in with_ours if b.at <= last_send]
    if len(inside) < 3:
        return None
    span = inside[-1][0].at - inside[0][0].at
    return round(sum(n for _, n in inside[1:]) / span, 1) if span > 0 else None


def _phase_line(s: dict[str, Any]) -> str:
    lat = s["latency_ms"]
    parts = [f"committed {s['committed']:,}/{s['admitted']:,} admitted"]
    if s.get("committed_tps") is not None:
        parts.append(f"{s['committed_tps']:,.0f} tx/s sustained")
    if lat["samples"]:
        parts.append(f"latency p50 {lat['p50']:,.0f} p99 {lat['p99']:,.0f} ms")
    if s["refused"]:
        parts.append("refused " + ", ".join(f"{k} {v:,}" for k, v in s["refused"].items()))
    if s["never_committed"]:
        parts.append(f"NEVER COMMITTED {s['never_committed']:,}")
    return "; ".join(parts)


def _summary(args: argparse.Namespace, workload: Workload, phases: list[dict[str, Any]],
             procs: dict[int, subprocess.Popen]) -> dict[str, Any]:
    counted = sum(p["_counted"] for p in phases)
    span = sum(p["_span"] for p in phases)
    window = [n for p in phases for n in p["_window"]]
    latencies = [x for p in phases for x in p["_latencies"]]
    refused: dict[str, int] = {}
    for p in phases:
        for code, n in p["refused"].items():
            refused[code] = refused.get(code, 0) + n
    wall = sum(p["wall_s"] for p in phases)
    nodes = []
    for i in sorted(procs):
        cpu = [p["node_cpu_s"][i] for p in phases]
        total = None if any(c is None for c in cpu) else sum(cpu)
        nodes.append({"node": i, "pid": procs[i].pid, "cpu_s": _round(total, 2),
                      "cpu_util": _round(total / wall, 3) if total is not None and wall else None,
                      "peak_rss_mb": None})
    gens: dict[int, dict[str, Any]] = {}
    for p in phases:
        for gstat in p["generators"]:
            agg = gens.setdefault(gstat["gid"], {"gid": gstat["gid"], "submitted": 0,
                                                 "cpu_s": 0.0, "requests": 0, "forfeited": 0,
                                                 "max_late_ms": 0.0, "offered_tx_s": [],
                                                 "capacity_tx_s": None})
            agg["submitted"] += gstat["submitted"]
            agg["cpu_s"] = round(agg["cpu_s"] + gstat["cpu_s"], 2)
            agg["requests"] += gstat["requests"]
            agg["forfeited"] += gstat["forfeited"]
            agg["max_late_ms"] = max(agg["max_late_ms"], gstat["max_late_ms"])
            if gstat["offered_tx_s"] is not None:
                agg["offered_tx_s"].append(gstat["offered_tx_s"])
    for agg in gens.values():
        # submissions per generator CPU second (None: too little CPU to tell)
        agg["capacity_tx_s"] = (round(agg["submitted"] / agg["cpu_s"])
                                if agg["cpu_s"] >= 0.05 else None)
        agg["cpu_util"] = round(agg["cpu_s"] / wall, 3) if wall else None
    committed = sum(p["committed"] for p in phases)
    admitted = sum(p["admitted"] for p in phases)
    never = sum(p["never_committed"] for p in phases)
    checks_ok = all(c["found"] == c["expected"] for p in phases for c in p["checks"].values())
    for p in phases:
        for key in ("_counted", "_span", "_window", "_latencies"):
            p.pop(key, None)
    return {
        "ok": never == 0 and checks_ok and committed > 0,
        "workload": workload.name, "validators": args.validators,
        "txs": sum(p["txs"] for p in phases), "rate_offered": args.rate,
        "duration": args.duration, "generators_count": args.generators,
        "block_interval_ms": args.block_interval_ms or ConsensusSection().block_interval_ms,
        "committed_tps": round(counted / span, 1) if span > 0 else None,
        "window_s": round(span, 2),
        "submitted": sum(p["submitted"] for p in phases),
        "resent": sum(p["resent"] for p in phases),
        "admitted": admitted, "committed": committed, "never_committed": never,
        "refused": dict(sorted(refused.items(), key=lambda kv: -kv[1])),
        "latency_ms": _latency(latencies),
        "blocks_per_s": round((len(window) - len(phases)) / span, 2) if span > 0 else None,
        "txs_per_block": {"mean": round(statistics.fmean(window), 1) if window else None,
                          "max": max(window) if window else None},
        "checks_ok": checks_ok,
        "nodes": nodes, "generators": [gens[g] for g in sorted(gens)],
        "phases": phases,
    }


def _busiest(profiles: dict[int, Path], cpu: dict[int, float | None]) -> dict[str, Any] | None:
    """The top functions by own time of the node that used the most CPU in the phases
    (its whole life is profiled: start-up included). Time blocked in epoll (idle) is
    left out of the list and given on its own."""
    node = max(profiles, key=lambda i: cpu.get(i) or 0.0)
    try:
        stats = pstats.Stats(str(profiles[node]))
    except (OSError, TypeError, EOFError, ValueError):
        return None
    raw: dict[Any, Any] = stats.stats  # type: ignore[attr-defined]
    idle = sum(v[2] for (f, _line, name), v in raw.items() if "select.epoll" in name)
    top = sorted(((k, v) for k, v in raw.items() if "select.epoll" not in k[2]),
                 key=lambda kv: -kv[1][2])[:25]
    return {"node": node, "total_s": round(stats.total_tt, 2),  # type: ignore[attr-defined]
            "idle_s": round(idle, 2),
            "top": [{"function": f"{Path(f).name}:{line}({name})", "calls": nc,
                     "tottime_s": round(tt, 3), "cumtime_s": round(ct, 3)}
                    for (f, line, name), (_cc, nc, tt, ct, _callers) in top]}


# ---------------------------------------------------------------------- the report


def print_report(r: dict[str, Any], out: TextIO) -> None:
    def line(label: str, text: str) -> None:
        print(f"  {label:12} {text}", file=out)

    print(f"\nagora bench: {r['workload']} on {r['validators']} validators"
          + (f", {r['rate_offered']:,.0f} tx/s offered" if r["rate_offered"] else
             ", as fast as accepted"), file=out)
    if r.get("setup", {}).get("gas_limits"):
        line("gas limits", ", ".join(f"{k} {v:,}" for k, v in r["setup"]["gas_limits"].items()))
    if len(r["phases"]) > 1:
        for p in r["phases"]:
            print(f"  {'[' + p['name'] + ']':16} {_phase_line(p)}", file=out)
    tps = r["committed_tps"]
    line("throughput", (f"{tps:,.0f} tx/s committed, sustained over {r['window_s']:.1f} s "
                        "(first to last commit)" if tps is not None else "nothing committed")
         + ("; per phase: " + ", ".join(
             f"{p['name']} {p['committed_tps']:,.0f}" for p in r["phases"]
             if p.get("committed_tps") is not None) if len(r["phases"]) > 1 else
            f"; {r['phases'][0].get('end_to_end_tps') or 0:,.0f} tx/s from the first "
            "submission" + (f"; {r['phases'][0]['steady_tps']:,.0f} tx/s while submitting"
                            if r["phases"][0].get("steady_tps") else "")))
    line("txs", f"{r['submitted']:,} submitted ({r['resent']:,} resent), {r['admitted']:,} "
                f"admitted, {r['committed']:,} committed, {r['never_committed']:,} never "
                "committed")
    line("refused", ", ".join(f"{k} {v:,}" for k, v in r["refused"].items()) or "none")
    lat = r["latency_ms"]
    if lat["samples"]:
        line("latency", f"min {lat['min']:,.0f}  p50 {lat['p50']:,.0f}  p95 {lat['p95']:,.0f}"
                        f"  p99 {lat['p99']:,.0f}  max {lat['max']:,.0f} ms  (submit to "
                        f"commit, {lat['samples']:,} txs)")
    if r["blocks_per_s"] is not None:
        line("blocks", f"{r['blocks_per_s']:.2f} blocks/s; {r['txs_per_block']['mean']:,.1f} "
                       f"txs per block (mean), {r['txs_per_block']['max']:,} max "
                       f"(block interval {r['block_interval_ms']} ms)")
    if r.get("longest_height_ms"):
        worst = r["longest_height_ms"]
        line("longest", f"height {worst['height']} took {worst['ms']:,} ms from the one "
                        f"before (commit to commit, as observed, between blocks with transactions)"
                        + ("; the last validator stopped throughout"
                           if r.get("stopped_validator") else ""))
    line("nodes", "; ".join(
        f"node{n['node']} {n['cpu_s'] or 0:.1f} CPU s ({(n['cpu_util'] or 0):.0%}), "
        f"peak RSS {n['peak_rss_mb'] or 0:,.0f} MB" for n in r["nodes"]))
    rates = [max(g["offered_tx_s"]) for g in r["generators"] if g["offered_tx_s"]]
    offered = (f"offered {sum(rates):,.0f} tx/s together (their busiest phase)" if rates
               else "sent each phase at once")
    line("generators", f"{offered}; " + "; ".join(
        f"gen{g['gid']} CPU {g['cpu_s']:.1f} s ({(g['cpu_util'] or 0):.0%}), "
        + (f"could offer >= {g['capacity_tx_s']:,} tx/s on a core (at these batch sizes), "
           if g["capacity_tx_s"] else "")
        + f"ticks late <= {g['max_late_ms']:,.0f} ms, {g['forfeited']:,} sends forfeited"
        for g in r["generators"]))
    e = r["ed25519"]
    frac = e["fraction_of_ceiling"]
    line("ed25519", f"{e['verify_per_core']:,} verifications/s per core x {e['cores']} cores "
                    f"/ {r['validators']} validators = ceiling {e['ceiling_tps']:,} tx/s; "
                    f"throughput = {frac:.1%} of it" if frac is not None else "")
    if r.get("observer"):
        o = r["observer"]
        per = o["read_s"] / o["txs_read"] * 1e6 if o["txs_read"] else 0.0
        line("observer", f"{o['reconnects']} reconnects, {o['missed_notifications']} blocks "
                         f"not notified; read {o['blocks_read']:,} blocks ({o['txs_read']:,} "
                         f"txs) in {o['read_s']:.1f} s ({per:,.0f} us per tx); the "
                         f"coordinator used {o['cpu_s']:.1f} CPU s over the phases")
    for p in r["phases"]:
        for name, c in p["checks"].items():
            ok = "ok" if c["found"] == c["expected"] else "FAILED"
            line("check", f"{p['name']}: {name} {c['found']:,} of {c['expected']:,} ({ok})")
    prof = r.get("profile")
    if prof:
        print(f"\nprofile of the busiest node (node{prof['node']}: {prof['total_s']:.1f} s "
              f"profiled over its whole life, {prof['idle_s']:.1f} s of it idle in epoll), "
              "by own time:", file=out)
        print(f"  {'own s':>8} {'cum s':>8} {'calls':>10}  function", file=out)
        for f in prof["top"]:
            print(f"  {f['tottime_s']:8.3f} {f['cumtime_s']:8.3f} {f['calls']:10,}  "
                  f"{f['function']}", file=out)
    if not r["ok"]:
        print("\nFAILED: " + ("some admitted transactions never committed; "
                             if r["never_committed"] else "")
              + ("a check of the phases' events failed" if not r["checks_ok"] else "")
              + ("nothing committed" if not r["committed"] else ""), file=out)


if __name__ == "__main__":
    sys.exit(main())
