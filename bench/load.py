"""The load side of ``agora bench``: generator processes, the commit observer, and
/proc readings of the nodes.

Generators
----------
:class:`Generators` starts ``--generators`` processes (multiprocessing, spawn). Each is
handed *streams* — one per sending account, a list of actions with sequential nonces
from the account's next one — signs them all before the clock starts
(:func:`sign_stream`), then, on ``run``, submits them with ``broadcast_txs`` (the
request body is joined from the pre-encoded hex: no JSON encoding on the clock). A
stream always goes to the same node, so its nonces arrive in order; each generator
talks to its own nodes (account ``a`` -> node ``a % nodes``, generator
``a % generators``).

* Open loop (``rate``): every ``tick`` the generator sends what its share of the
  offered rate says is due by now, whatever the answers so far (a late tick sends the
  missed ones at once); due sends that find no stream able to send are forfeited,
  never saved up into a burst, and counted.
* As fast as accepted (no rate): up to ``window`` requests of ``batch`` transactions
  in flight per node, the next sent as soon as one is answered; a node that answered
  ``pool_full`` is left alone for 2.5 ticks, so its pool can drain into a block.

Taking turns: per node, streams are served round robin (one transaction each per
turn), so every sender's transactions are spread over the run.

Refusals: ``broadcast_txs`` answers each transaction on its own. A transient refusal
(``pool_full``, ``sender_limit``, ``nonce_gap``, a failed request) rewinds the stream
to the refused nonce and holds it back for a backoff (50 ms doubling to 1 s): it then
resends from that nonce in order, so no gap is left (what had been admitted behind it
comes back ``already_known``, which counts as admitted). A permanent one (``invalid``,
``insufficient_balance``, ...) ends that stream, and the report says so. Every refusal
is counted by its code. When sending ends (all sent, or ``duration`` is up) a stream
is still resent up to the furthest nonce it had sent, so no admitted transaction is
left behind a gap; once ``drain_timeout`` s pass without one more admitted, the rest
is given up and counted.

Each generator reports, besides the transactions admitted and when each was sent,
what it offered: its send rate over its sending window, its CPU seconds and from them
the rate it could offer on a core of its own, the ticks' lateness and the forfeited
sends (which say whether the generator, not the node, held the rate back).

Observer
--------
:class:`Observer` subscribes to ``blocks`` over WebSocket on every node; the first
notification of a height is the moment that block's commit is observed. Blocks with
transactions are then read (``block``, from node ``height % nodes`` in turn so each
node renders a share of them) for their transactions' hashes: each hash's commit time
is that first notification's.
"""

from __future__ import annotations

import asyncio
import contextlib
import heapq
import json
import math
import multiprocessing as mp
import os
import queue
import time
import traceback
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any

from chain.keys import PrivateKey
from chain.tx import Call, Transaction, Transfer
from node.rpc.client import TRANSFER_GAS, NodeUnreachable, RPCClient, RPCFailed

#: An action to sign: ("transfer", to, amount) or
#: ("call", contract, method, args, value, gas_limit).
ActionSpec = tuple[Any, ...]

#: Refusals that a later resend can get past (the node is busy, not the tx wrong).
TRANSIENT = frozenset({"pool_full", "sender_limit", "nonce_gap", "request_failed",
                       "rpc_error"})
#: Most transactions in one broadcast_txs request (the node's own cap is 5,000 and its
#: body limit 1 MiB: about 2,800 transfers).
MAX_BATCH = 1_000


@dataclass
class StreamSpec:
    """One sending account's transactions in a phase."""

    sid: int        # the account's bench index: node = sid % nodes
    seed: str       # PrivateKey.from_seed_text(seed)
    node: int
    nonce: int      # the first transaction's nonce
    actions: list[ActionSpec]


def build_tx(key: PrivateKey, chain_id: str, nonce: int, action: ActionSpec) -> Transaction:
    if action[0] == "transfer":
        return Transaction.create(key, chain_id, nonce, Transfer(action[1], action[2]),
                                  gas_limit=TRANSFER_GAS, gas_price=1)
    _, contract, method, args, value, gas = action
    return Transaction.create(key, chain_id, nonce, Call(contract, method, args, value),
                              gas_limit=gas, gas_price=1)


def sign_stream(key: PrivateKey, chain_id: str, spec: StreamSpec) -> tuple[list[str], list[str]]:
    """The stream's transactions as (hex encodings, hex hashes)."""
    hexes, hashes = [], []
    for i, action in enumerate(spec.actions):
        tx = build_tx(key, chain_id, spec.nonce + i, action)
        hexes.append(tx.encode().hex())
        hashes.append(tx.hash.hex())
    return hexes, hashes


@dataclass
class RunParams:
    start_at: float              # time.monotonic() at which every generator starts
    rate: float | None           # this generator's share of the offered rate (tx/s)
    duration: float | None       # stop sending new transactions after this long
    tick: float = 0.02
    batch: int = 500             # most transactions per request
    window: int = 2              # requests in flight per node without a rate
    drain_timeout: float = 60.0  # after sending ended, resend until this long without
    #                              one more admitted
    progress_every: float = 0.25


# ---------------------------------------------------------------- the generator process


class _Stream:
    __slots__ = ("sid", "node", "nonce", "hexes", "hashes", "cursor", "frontier",
                 "accepted", "sends", "until", "fails", "dead", "queued", "held")

    def __init__(self, spec: StreamSpec, hexes: list[str], hashes: list[str]) -> None:
        self.sid = spec.sid
        self.node = spec.node
        self.nonce = spec.nonce
        self.hexes = hexes
        self.hashes = hashes
        self.cursor = 0       # next to send
        self.frontier = 0     # one past the furthest sent
        #: each one's send time once admitted (-1: admitted, when unknown)
        self.accepted: list[float | None] = [None] * len(hexes)
        self.sends = bytearray(len(hexes))  # times each was sent (to 255)
        self.until = 0.0      # held back until then (after a refusal)
        self.fails = 0        # refusals in a row (the backoff doubles)
        self.dead = False     # a permanent refusal ended it
        self.queued = False   # in its lane's ring
        self.held = False     # in its lane's heap of held-back streams


class _Lane:
    """One node, as one generator sends to it."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.ring: deque[_Stream] = deque()
        self.held: list[tuple[float, int, _Stream]] = []
        self.inflight = 0
        self.pause_until = 0.0  # without a rate: the pool was full, let it drain a little


class _Runner:
    def __init__(self, gid: int, urls: list[str], streams: list[_Stream], p: RunParams,
                 events: Any) -> None:
        self.gid = gid
        self.p = p
        self.events = events
        self.streams = streams
        self.lanes: dict[int, _Lane] = {}
        for s in streams:
            lane = self.lanes.setdefault(s.node, _Lane(urls[s.node]))
            lane.ring.append(s)
            s.queued = True
        self.seq = 0
        #: transactions never sent yet (sending ends at 0)
        self.fresh_left = sum(len(s.hexes) for s in streams)
        self.fresh = True  # new transactions may be sent (else only resends)
        self.attempts = 0
        self.resent = 0
        self.accepted = 0
        self.duplicates = 0
        self.refused: dict[str, int] = {}
        self.dead = 0
        self.requests = 0
        self.forfeited = 0
        self.max_late = 0.0
        self.first_send: float | None = None
        self.last_send = 0.0
        self.tasks: set[asyncio.Task[None]] = set()
        self.wake = asyncio.Event()

    # ------------------------------------------------------------ picking

    def _release(self, lane: _Lane, now: float) -> None:
        while lane.held and lane.held[0][0] <= now:
            until, _, s = heapq.heappop(lane.held)
            if s.until > until and not s.dead:  # refused again meanwhile: held longer
                self.seq += 1
                heapq.heappush(lane.held, (s.until, self.seq, s))
                continue
            s.held = False
            if not s.queued and not s.dead:
                lane.ring.appendleft(s)  # a resend goes first
                s.queued = True

    def _end_sending(self) -> None:
        """No new transactions from now: only streams with resends stay in the rings."""
        self.fresh = False
        for lane in self.lanes.values():
            keep = deque(s for s in lane.ring if s.cursor < s.frontier and not s.dead)
            for s in lane.ring:
                s.queued = False
            for s in keep:
                s.queued = True
            lane.ring = keep

    def _take(self, lane: _Lane, n: int, now: float) -> list[tuple[_Stream, int]]:
        self._release(lane, now)
        out: list[tuple[_Stream, int]] = []
        ring = lane.ring
        while len(out) < n and ring:
            s = ring.popleft()
            s.queued = False
            if s.dead or s.until > now:
                continue  # held back: back in the ring when released
            limit = len(s.hexes) if self.fresh else s.frontier
            if s.cursor >= limit:
                continue
            out.append((s, s.cursor))
            if s.sends[s.cursor] < 255:
                s.sends[s.cursor] += 1
            if s.cursor < s.frontier:
                self.resent += 1
            s.cursor += 1
            if s.cursor > s.frontier:
                s.frontier = s.cursor
                self.fresh_left -= 1
            if s.cursor < limit:
                ring.append(s)
                s.queued = True
        return out

    def _busy(self) -> bool:
        """Anything left to send or to hear back about."""
        return bool(self.tasks) or any(lane.ring or lane.held for lane in self.lanes.values())

    # ------------------------------------------------------------ sending

    def _send(self, lane: _Lane, items: list[tuple[_Stream, int]], now: float) -> None:
        for i in range(0, len(items), self.p.batch):
            chunk = items[i:i + self.p.batch]
            lane.inflight += 1  # until its answer is in (_post)
            task = asyncio.create_task(self._post(lane, chunk, now))
            self.tasks.add(task)
            task.add_done_callback(self.tasks.discard)
        self.attempts += len(items)
        if self.first_send is None:
            self.first_send = now
        self.last_send = now

    async def _post(self, lane: _Lane, items: list[tuple[_Stream, int]], sent: float) -> None:
        body = ('{"jsonrpc":"2.0","id":1,"method":"broadcast_txs","params":{"txs":["'
                + '","'.join([s.hexes[i] for s, i in items]) + '"]}}').encode()
        self.requests += 1
        results: list[Any] | None = None
        failure = "request_failed"
        try:
            async with self.session.post(lane.url, data=body,
                                         headers={"Content-Type": "application/json"}) as r:
                raw = await r.read()
            answer = json.loads(raw)
            if isinstance(answer, dict) and isinstance(answer.get("result"), list) \
                    and len(answer["result"]) == len(items):
                results = answer["result"]
            else:
                failure = "rpc_error"
        except Exception:  # noqa: BLE001 - any failed request is counted and resent
            failure = "request_failed"
        finally:
            lane.inflight -= 1
        now = time.monotonic()
        if results is None:
            self._refused(lane, [(s, i, failure) for s, i in items], now)
        else:
            refused = []
            for (s, i), item in zip(items, results, strict=True):
                if item.get("hash"):
                    if s.accepted[i] is None:
                        s.accepted[i] = sent
                        self.accepted += 1
                    s.fails = 0
                    continue
                error = item.get("error") or {}
                data = error.get("data")
                code = str(data.get("code") if isinstance(data, dict) else error.get("code"))
                if code == "already_known":  # admitted before (a resend): fine
                    if s.accepted[i] is None:
                        s.accepted[i] = sent
                        self.accepted += 1
                    self.duplicates += 1
                elif code == "nonce_too_low" and s.sends[i] > 1:
                    # a resend of one committed meanwhile (its admission's answer may have
                    # been lost with a failed request: admitted, when unknown)
                    if s.accepted[i] is None:
                        s.accepted[i] = -1.0
                        self.accepted += 1
                    self.duplicates += 1
                else:
                    refused.append((s, i, code))
            if refused:
                self._refused(lane, refused, now)
        self.wake.set()

    def _refused(self, lane: _Lane, refused: list[tuple[_Stream, int, str]],
                 now: float) -> None:
        rewound: dict[int, _Stream] = {}
        for s, i, code in refused:
            self.refused[code] = self.refused.get(code, 0) + 1
            if code == "pool_full" and self.p.rate is None:
                lane.pause_until = now + 2.5 * self.p.tick
            if s.dead:
                continue
            if code not in TRANSIENT:
                s.dead = True
                self.dead += 1
                self.fresh_left -= len(s.hexes) - s.frontier
                continue
            if i < s.cursor:
                s.cursor = i
            rewound[id(s)] = s
        for s in rewound.values():
            if s.dead:
                continue
            s.until = now + min(1.0, 0.05 * 2 ** s.fails)
            s.fails += 1
            if not s.held:
                self.seq += 1
                heapq.heappush(lane.held, (s.until, self.seq, s))
                s.held = True

    # ------------------------------------------------------------ the loops

    async def run(self) -> dict[str, Any]:
        import aiohttp

        p = self.p
        connector = aiohttp.TCPConnector(limit=0, force_close=False)
        self.session = aiohttp.ClientSession(
            connector=connector, timeout=aiohttp.ClientTimeout(total=120))
        try:
            delay = p.start_at - time.monotonic()
            if delay > 0:
                await asyncio.sleep(delay)
            cpu0 = time.process_time()
            t0 = p.start_at
            stop_at = t0 + p.duration if p.duration else math.inf
            progress = asyncio.create_task(self._progress())
            drain_deadline = math.inf
            accepted_then = 0
            gave_up = False
            scheduled = 0
            next_tick = t0
            while True:
                now = time.monotonic()
                if self.fresh and now >= stop_at:
                    self._end_sending()
                if p.rate is not None:
                    self.max_late = max(self.max_late, now - next_tick)
                    due = int(p.rate * (now - t0))
                    budget = due - scheduled
                    scheduled = due
                    if budget > 0:
                        self._spend(budget, now)
                else:
                    for lane in self.lanes.values():
                        self._fill(lane, now)
                if not self.fresh or self.fresh_left <= 0:
                    # Sending has ended: what is left is resends up to the frontier.
                    if self.fresh:
                        self._end_sending()
                    if self.accepted > accepted_then or drain_deadline == math.inf:
                        # resending goes on while the node admits some of it
                        accepted_then = self.accepted
                        drain_deadline = now + p.drain_timeout
                    if not self._busy():
                        break
                    if now > drain_deadline:
                        gave_up = True
                        break
                next_tick += p.tick
                if next_tick < now:
                    next_tick = now + p.tick  # late: the due sends went out above
                self.wake.clear()
                timeout = max(0.0, next_tick - time.monotonic())
                if p.rate is None:
                    with contextlib.suppress(TimeoutError):
                        await asyncio.wait_for(self.wake.wait(), timeout)
                else:
                    await asyncio.sleep(timeout)
            for task in list(self.tasks):
                task.cancel()
            progress.cancel()
            cpu = time.process_time() - cpu0
            return self._result(cpu, t0, gave_up)
        finally:
            await self.session.close()

    def _spend(self, budget: int, now: float) -> None:
        lanes = list(self.lanes.values())
        left = budget
        for pass_ in range(2):
            for k, lane in enumerate(lanes):
                if left <= 0:
                    break
                share = left if pass_ else -(-left // (len(lanes) - k))
                items = self._take(lane, share, now)
                if items:
                    self._send(lane, items, now)
                    left -= len(items)
            if left <= 0:
                break
        if left > 0 and self.fresh:  # due, but every stream with more is held back
            self.forfeited += min(left, max(0, self.fresh_left))

    def _fill(self, lane: _Lane, now: float) -> None:
        if now < lane.pause_until:
            return
        while lane.inflight < self.p.window:
            items = self._take(lane, self.p.batch, now)
            if not items:
                return
            self._send(lane, items, now)

    async def _progress(self) -> None:
        while True:
            await asyncio.sleep(self.p.progress_every)
            self.events.put((self.gid, "progress", self._counts()))

    def _counts(self) -> dict[str, Any]:
        return {"attempts": self.attempts, "accepted": self.accepted,
                "refused": sum(self.refused.values())}

    def _result(self, cpu: float, t0: float, gave_up: bool) -> dict[str, Any]:
        hashes: list[str] = []
        times: list[float] = []
        unaccepted = 0
        next_nonces: dict[int, int] = {}
        for s in self.streams:
            prefix = 0
            for i, at in enumerate(s.accepted):
                if at is None:
                    unaccepted += 1
                    continue
                hashes.append(s.hashes[i])
                times.append(at)
                if prefix == i:
                    prefix += 1
            next_nonces[s.sid] = s.nonce + prefix
        first = self.first_send if self.first_send is not None else t0
        span = self.last_send - first
        return {"gid": self.gid, "hashes": hashes, "sent_at": times,
                "attempts": self.attempts, "resent": self.resent, "accepted": self.accepted,
                "duplicates": self.duplicates, "refused": dict(self.refused),
                "dead_streams": self.dead, "unaccepted": unaccepted, "gave_up": gave_up,
                "requests": self.requests, "forfeited": self.forfeited,
                "max_late_s": self.max_late, "cpu_s": cpu,
                "first_send": first, "last_send": self.last_send,
                "wall_s": time.monotonic() - t0,
                # None: all sent at once (a burst: no rate to speak of)
                "offered_tx_s": self.attempts / span if span >= 0.05 else None,
                "capacity_tx_s": self.attempts / cpu if cpu > 0 else 0.0,
                "next_nonces": next_nonces}


def _generator_main(gid: int, urls: list[str], chain_id: str, commands: Connection,
                    events: Any) -> None:
    keys: dict[str, PrivateKey] = {}
    streams: list[_Stream] = []
    try:
        while True:
            cmd, arg = commands.recv()
            if cmd == "stop":
                return
            if cmd == "sign":
                t0 = time.perf_counter()
                streams = []
                for spec in arg:
                    key = keys.get(spec.seed)
                    if key is None:
                        key = keys[spec.seed] = PrivateKey.from_seed_text(spec.seed)
                    hexes, hashes = sign_stream(key, chain_id, spec)
                    streams.append(_Stream(spec, hexes, hashes))
                events.put((gid, "signed", {"txs": sum(len(s.hexes) for s in streams),
                                            "seconds": time.perf_counter() - t0}))
            elif cmd == "run":
                runner = _Runner(gid, urls, streams, arg, events)
                events.put((gid, "done", asyncio.run(runner.run())))
    except (EOFError, KeyboardInterrupt):
        return
    except BaseException:  # noqa: BLE001 - told to the coordinator, which stops the run
        events.put((gid, "error", traceback.format_exc()))


class GeneratorFailed(Exception):
    pass


class Generators:
    """The generator processes, driven from the coordinator's event loop."""

    def __init__(self, count: int, urls: list[str], chain_id: str) -> None:
        ctx = mp.get_context("spawn")
        self.count = count
        self.events: Any = ctx.Queue()
        self.pipes: list[Connection] = []
        self.procs: list[Any] = []
        for gid in range(count):
            ours, theirs = ctx.Pipe()
            proc = ctx.Process(target=_generator_main, name=f"bench-generator-{gid}",
                               args=(gid, urls, chain_id, theirs, self.events), daemon=True)
            proc.start()
            theirs.close()
            self.pipes.append(ours)
            self.procs.append(proc)

    async def _next(self, timeout: float) -> tuple[int, str, Any]:
        loop = asyncio.get_running_loop()
        deadline = time.monotonic() + timeout
        while True:
            try:
                item = await loop.run_in_executor(None, self.events.get, True, 0.2)
            except queue.Empty:
                for proc in self.procs:
                    if not proc.is_alive():
                        raise GeneratorFailed(f"{proc.name} exited ({proc.exitcode})") from None
                if time.monotonic() > deadline:
                    raise GeneratorFailed(f"no word from the generators in {timeout:g} s") from None
                continue
            if item[1] == "error":
                raise GeneratorFailed(f"generator {item[0]} failed:\n{item[2]}")
            return item

    async def sign(self, parts: Sequence[list[StreamSpec]]) -> list[dict[str, Any]]:
        """Each generator signs its part; returns what each said (txs, seconds)."""
        for pipe, part in zip(self.pipes, parts, strict=True):
            pipe.send(("sign", part))
        said: dict[int, dict[str, Any]] = {}
        while len(said) < self.count:
            gid, kind, info = await self._next(600)
            if kind == "signed":
                said[gid] = info
        return [said[g] for g in range(self.count)]

    async def run(self, params: list[RunParams],
                  on_progress: Callable[[dict[int, dict[str, Any]]], None],
                  timeout: float) -> list[dict[str, Any]]:
        for pipe, p in zip(self.pipes, params, strict=True):
            pipe.send(("run", p))
        done: dict[int, dict[str, Any]] = {}
        progress: dict[int, dict[str, Any]] = {}
        while len(done) < self.count:
            gid, kind, info = await self._next(timeout)
            if kind == "progress":
                progress[gid] = info
                on_progress(progress)
            elif kind == "done":
                done[gid] = info
                progress[gid] = {"attempts": info["attempts"], "accepted": info["accepted"],
                                 "refused": sum(info["refused"].values())}
                on_progress(progress)
        return [done[g] for g in range(self.count)]

    def close(self) -> None:
        for pipe in self.pipes:
            with contextlib.suppress(OSError, ValueError):
                pipe.send(("stop", None))
        for proc in self.procs:
            proc.join(2)
            if proc.is_alive():
                proc.terminate()
                proc.join(2)
        self.events.close()
        self.events.join_thread()


# ---------------------------------------------------------------- the observer


@dataclass
class BlockSeen:
    height: int
    at: float          # when its commit was first observed (time.monotonic())
    tx_count: int
    node: int          # the node that told first
    hashes: list[str] = field(default_factory=list)
    missed: bool = False  # no notification came (a reconnect): `at` is when it was read


class Observer:
    """Follows every node's new blocks over WebSocket; see the module docstring."""

    def __init__(self, urls: list[str], session: Any, log: Callable[[str], None]) -> None:
        self.urls = urls
        self.session = session
        self.log = log
        self.clients = [RPCClient(u, session, timeout=60) for u in urls]
        self.seen: dict[int, BlockSeen] = {}   # notified, not necessarily read
        self.blocks: dict[int, BlockSeen] = {}  # read (hashes known), in order
        self.commit_time: dict[str, float] = {}
        self.height = 0        # highest notified
        self.read_height = 0   # every block up to here is read
        self.reconnects = 0
        #: reading blocks for their hashes: how long it took (request, the node's
        #: rendering, transfer, parsing), how many blocks and transactions
        self.read_seconds = 0.0
        self.read_blocks = 0
        self.read_txs = 0
        self._new = asyncio.Event()
        self._tasks: list[asyncio.Task[None]] = []
        self._subscribed = [asyncio.Event() for _ in urls]
        self._closing = False

    async def start(self, from_height: int) -> None:
        self.height = self.read_height = from_height
        for i, url in enumerate(self.urls):
            self._tasks.append(asyncio.create_task(self._follow(i, url)))
        self._tasks.append(asyncio.create_task(self._reader()))
        async with asyncio.timeout(30):
            for ev in self._subscribed:
                await ev.wait()

    async def close(self) -> None:
        self._closing = True
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task

    async def _follow(self, i: int, url: str) -> None:
        import aiohttp

        while not self._closing:
            try:
                async with self.session.ws_connect(url.rstrip("/") + "/websocket",
                                                   heartbeat=None, max_msg_size=0) as ws:
                    await ws.send_json({"jsonrpc": "2.0", "id": 1, "method": "subscribe",
                                        "params": {"kind": "blocks"}})
                    async for msg in ws:
                        if msg.type != aiohttp.WSMsgType.TEXT:
                            break
                        now = time.monotonic()
                        data = json.loads(msg.data)
                        if data.get("id") == 1:
                            if "error" in data:
                                raise RuntimeError(f"subscribe refused: {data['error']}")
                            self._subscribed[i].set()
                            continue
                        if data.get("method") != "subscription":
                            continue
                        header = data["params"]["result"]
                        h = header["height"]
                        if h not in self.seen and h > self.read_height:
                            self.seen[h] = BlockSeen(h, now, header["tx_count"], i)
                            if h > self.height:
                                self.height = h
                            self._new.set()
                    if not self._closing:
                        self.log(f"node{i}: the WebSocket closed ({ws.close_code} "
                                 f"{ws.exception() or ''}); reconnecting")
            except (aiohttp.ClientError, OSError, TimeoutError) as exc:
                if self._closing:
                    return
                self.log(f"node{i}: WebSocket failed ({exc}); reconnecting")
            self.reconnects += 1
            await asyncio.sleep(0.5)

    async def _reader(self) -> None:
        """Reads each block with transactions, in height order, for its hashes."""
        n = len(self.clients)
        while True:
            await self._new.wait()
            self._new.clear()
            while self.read_height < self.height:
                h = self.read_height + 1
                seen = self.seen.get(h)
                if seen is None:  # missed (a reconnect): read its header now
                    header = await self._any("header", h)
                    seen = BlockSeen(h, time.monotonic(), header["tx_count"], 0, missed=True)
                if seen.tx_count:
                    t0 = time.perf_counter()
                    block = None
                    for k in (h % n, seen.node):
                        try:
                            block = await self.clients[k].block(h)
                            break
                        except (RPCFailed, NodeUnreachable):
                            continue
                    if block is None:
                        block = await self._any("block", h)
                    seen.hashes = [tx["hash"] for tx in block["txs"]]
                    self.read_seconds += time.perf_counter() - t0
                    self.read_blocks += 1
                    self.read_txs += len(seen.hashes)
                    for tx_hash in seen.hashes:
                        self.commit_time[tx_hash] = seen.at
                self.blocks[h] = seen
                self.seen.pop(h, None)
                self.read_height = h

    async def _any(self, method: str, height: int) -> Any:
        for _ in range(50):
            for client in self.clients:
                try:
                    return await client.call(method, height=height)
                except (RPCFailed, NodeUnreachable):
                    continue
            await asyncio.sleep(0.1)
        raise NodeUnreachable("no node answered")

    def committed_after(self, height: int) -> int:
        """Transactions in the blocks notified above ``height`` (read or not)."""
        total = 0
        for h, b in self.blocks.items():
            if h > height:
                total += b.tx_count
        for h, b in self.seen.items():
            if h > height:
                total += b.tx_count
        return total

    async def wait_for(self, hashes: Sequence[str], timeout: float) -> bool:
        """Until every one of ``hashes`` is committed; False once ``timeout`` seconds
        pass without one more of them committing."""
        ct = self.commit_time
        pending = [h for h in hashes if h not in ct]
        deadline = time.monotonic() + timeout
        while pending:
            if time.monotonic() > deadline:
                return False
            await asyncio.sleep(0.05)
            left = [h for h in pending if h not in ct]
            if len(left) < len(pending):
                deadline = time.monotonic() + timeout
            pending = left
        return True


# ---------------------------------------------------------------- /proc


_TICK = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100


def cpu_seconds(pid: int) -> float | None:
    """User + system CPU seconds of a process (Linux /proc), None if gone."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except (OSError, IndexError):
        return None
    return (int(fields[11]) + int(fields[12])) / _TICK


def peak_rss_mb(pid: int) -> float | None:
    """VmHWM (peak resident set) of a process in MiB, None if unknown."""
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    except (OSError, ValueError, IndexError):
        return None
    return None
