"""Benchmark: the light node (the issue's four targets).

1. **Sequential verification**: ``--headers`` headers of 4 validators (a
   :mod:`node.light.simchain` chain, built before the clock starts) verified one
   height at a time: a :class:`~node.light.client.LightClient` in ``sequential`` mode
   syncing from the genesis through an in-memory :class:`SimProvider`, and the bare
   :func:`~node.light.verifier.verify` loop. Beside them, this machine's ed25519
   verification rate (PyNaCl, one signature in a loop) measured in the same run: with
   4 signatures a header, rate / 4 headers/s is the ceiling. Target: 10,000 in < 5 s.
2. **Skipping verification**: catching up ``--skip`` heights from the genesis. The
   chain is a :class:`~node.light.simchain.LazySimChain` (every header hash worked
   out, certificates signed only for the heights the client asks for): a quarter of
   the set replaced at 30 % and at 70 % of the length, and in a second run also the
   whole set replaced at 90 % (nothing of a trusted set signs past it: the client
   bisects down to the change). Each run is done once to sign the heights it asks
   for, then timed with a fresh client. Target: 100,000 heights in < 2 s.
3. **Verified queries**: an in-process single-validator node with a small market
   (``--orders`` orders placed, shipped, confirmed and reviewed; then an empty block a
   second, the default) and a light node (LevelDB store, default settings) in front of
   it, both on loopback in this process; ``--queries`` sequential ``order``,
   ``listing``, ``account`` and ``reviews`` calls (aiohttp, keep-alive, after a
   warm-up) through the light node's JSON-RPC, interleaved with the same call on the
   full node: p50/p90/p99 ms. Then the first call of each method at each of up to 10
   new verified heads (nothing proven at that head cached yet). Target: ``order``
   < 30 ms.
4. **Disk**: the ``--headers`` headers verified by a sequential sync into a LevelDB
   :class:`~node.light.store.LightStore` (the light node's own options, ``keep`` =
   ``--headers``), its size once closed; then ``--follow`` more heights followed one
   at a time as the light node does (a synced write each, the oldest pruned), the
   largest size seen meanwhile (sampled) and once closed; then after a compaction
   (plyvel ``compact_range``). Target: < 1 KB per kept header.

    python -m bench.light [--json] [--headers 10000] [--skip 100000] [--queries 200]
                          [--follow N] [--orders 4]

Every result is printed with the command that produced it (``--json``: one JSON
object on stdout, progress on stderr).
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import hashlib
import json
import os
import shlex
import shutil
import statistics
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from chain.address import address_to_text
from chain.keys import PrivateKey
from chain.system import COMMERCE_CONTRACTS
from chain.tx import Call, Transaction
from node.light.client import LightClient, Options
from node.light.simchain import LazySimChain, SimChain, SimProvider, build, extend, keys
from node.light.store import LightStore
from node.light.verifier import LightBlock, Trusted, verify
from storage.kv import LevelDBKV, MemoryKV
from vm.contracts import encode_call

from .localnet import verify_rate

START_MS = 1_700_000_000_000
VALIDATORS = 4
COIN = 10**18
NOBODY = bytes(20)
DAY_MS = 86_400_000
PRICE = 10 * COIN
GAS = 1_000_000


def _log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def _pct(values: Sequence[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def _client(chain: SimChain | LazySimChain, provider: SimProvider, store: LightStore, *,
            sequential: bool) -> LightClient:
    """A light client trusting ``chain``'s genesis, its clock a second after the head."""
    now = chain.genesis.time_ms + chain.height * 1_000 + 1_000
    return LightClient(chain.genesis, store, provider, [],
                       options=Options(sequential=sequential), clock=lambda: now)


async def _sync(client: LightClient, height: int) -> float:
    """Start the client from the genesis and sync to the primary's head (``height``):
    seconds."""
    await client.start()
    gc.collect()
    t0 = time.perf_counter()
    head = await client.sync()
    elapsed = time.perf_counter() - t0
    assert head is not None and head.height == height, "did not reach the head"
    assert not client.reports, client.reports
    return elapsed


# ---------------------------------------------------------------- 1. sequential


def sequential(n: int) -> tuple[dict[str, Any], SimChain]:
    rate = verify_rate(1.0)
    _log(f"ed25519: {rate:,.0f} verifications/s on one core; building {n:,} heights of "
         f"{VALIDATORS} validators ...")
    t0 = time.perf_counter()
    chain = build(n, start_ms=START_MS, validators=keys("sim", VALIDATORS))
    built = time.perf_counter() - t0
    g = chain.genesis
    now = chain.block(n).header.time_ms + 1_000

    gc.collect()
    t0 = time.perf_counter()
    trusted = Trusted(0, g.hash, g.time_ms, g.validators, g.validators.hash)
    for block in chain.blocks:
        verify(trusted, block, chain_id=g.chain_id, now_ms=now)
        trusted = Trusted.of(block)
    loop_s = time.perf_counter() - t0

    provider = SimProvider(chain)
    client = _client(chain, provider, LightStore(MemoryKV()), sequential=True)
    client_s = asyncio.run(_sync(client, n))
    assert client.height == n and len(client.store) == n
    signatures = sum(len(b.commit.signatures) for b in chain.blocks)
    ceiling_s = signatures / rate
    return {
        "headers": n, "validators": VALIDATORS, "signatures": signatures,
        "build_s": round(built, 3),
        "ed25519_verify_per_s": round(rate),
        "ceiling_headers_per_s": round(rate / VALIDATORS),
        "ceiling_s": round(ceiling_s, 3),
        "client_sync_s": round(client_s, 3),
        "client_headers_per_s": round(n / client_s),
        "client_requests": provider.requests,
        "verify_loop_s": round(loop_s, 3),
        "verify_loop_headers_per_s": round(n / loop_s),
        "target_s_per_10000": 5.0,
        "client_s_per_10000": round(client_s * 10_000 / n, 3),
        "ok": client_s * 10_000 / n < 5.0,
    }, chain


# ---------------------------------------------------------------- 2. skipping


class CountingProvider(SimProvider):
    """A SimProvider that counts the light blocks it serves."""

    def __init__(self, chain: SimChain | LazySimChain) -> None:
        super().__init__(chain)
        self.served: list[int] = []

    async def light_blocks(self, heights: Sequence[int]) -> list[LightBlock]:
        self.served += heights
        return await super().light_blocks(heights)


def skipping(n: int) -> dict[str, Any]:
    first = keys("sim", VALIDATORS)
    quarter = max(1, VALIDATORS // 4)
    a, b, c = round(n * 0.3), round(n * 0.7), round(n * 0.9)
    set_b = keys("skip-b", quarter) + first[quarter:]
    set_c = set_b[:quarter] + keys("skip-c", quarter) + set_b[2 * quarter:]
    runs: dict[str, dict[int, Sequence[PrivateKey]]] = {
        "quarter_changes": {a: set_b, b: set_c},
        "full_replacement": {a: set_b, b: set_c, c: keys("skip-d", VALIDATORS)}}
    out: dict[str, Any] = {"heights": n, "validators": VALIDATORS,
                           "changes": {"quarter_replaced_at": [a, b], "all_replaced_at": c},
                           "target_s": 2.0}
    for name, changes in runs.items():
        t0 = time.perf_counter()
        chain = LazySimChain(n, start_ms=START_MS, validators=first, changes=changes)
        hashed = time.perf_counter() - t0
        # Once to sign what the client asks for (outside the clock), then timed.
        t0 = time.perf_counter()
        asyncio.run(_sync(_client(chain, CountingProvider(chain), LightStore(MemoryKV()),
                                  sequential=False), n))
        warm = time.perf_counter() - t0
        provider = CountingProvider(chain)
        client = _client(chain, provider, LightStore(MemoryKV()), sequential=False)
        elapsed = asyncio.run(_sync(client, n))
        assert client.height == n
        pivots = sorted(set(provider.served))
        out[name] = {
            "verification_s": round(elapsed, 4),
            "headers_fetched": len(provider.served),
            "headers_verified": len(client.store),
            "requests": provider.requests,
            "heights_fetched": pivots if len(pivots) <= 40 else pivots[:40] + ["..."],
            "chain_hashes_s": round(hashed, 2),
            "first_run_with_signing_s": round(warm, 3),
            "s_per_100000": round(elapsed * 100_000 / n, 4),
            "ok": elapsed * 100_000 / n < 2.0 if n >= 100_000 else elapsed < 2.0,
        }
        _log(f"  skipping, {name}: {elapsed * 1000:,.1f} ms, {len(provider.served)} "
             f"header(s) fetched, {len(client.store)} verified")
    return out


# ---------------------------------------------------------------- 3. queries


class Market:
    """A single-validator node in this process with a small market on it."""

    CHAIN = "agora-bench-light"

    def __init__(self, home: Path, orders: int) -> None:
        self.home = home
        self.n = orders
        self.merchant = PrivateKey.from_seed_text("bench-light-merchant")
        self.arbiter = PrivateKey.from_seed_text("bench-light-arbiter")
        self.buyers = [PrivateKey.from_seed_text(f"bench-light-buyer-{i}")
                       for i in range(orders)]
        self.nonces: dict[bytes, int] = {}
        self.node: Any = None
        self.url = ""
        self.listing = 0
        self.orders: list[int] = []

    def call(self, key: PrivateKey, contract: str, method: str, *args: object,
             value: int = 0) -> Transaction:
        nonce = self.nonces.get(key.address, 0)
        self.nonces[key.address] = nonce + 1
        action = Call(COMMERCE_CONTRACTS[contract], method,
                      encode_call(contract, method, *args), value)
        return Transaction.create(key, self.CHAIN, nonce, action, gas_limit=GAS, gas_price=1)

    async def start(self) -> None:
        from node.config import Config, ConsensusSection, NodeSection, P2PSection, RPCSection
        from node.daemon import Node
        from node.genesis import GenesisValidator, genesis_document, now_ms
        from node.home import Home, init_home
        from node.localnet import free_base_port
        from vm.contracts import Demo

        home = Home(self.home)
        init_home(self.home, chain_id=self.CHAIN, validator=True)
        port = free_base_port(2)
        listen = f"127.0.0.1:{port + 1}"
        # Blocks as fast as transactions come (the market's setup), an empty one a
        # second otherwise (the default): the light node's head moves as on a real chain.
        home.write_config(Config(
            node=NodeSection(mode="validator", moniker="bench-light"),
            p2p=P2PSection(listen=f"127.0.0.1:{port}", pex=False),
            rpc=RPCSection(listen=listen),
            consensus=ConsensusSection(block_interval_ms=10, view_timeout_ms=1_000)))
        actors = [self.merchant, self.arbiter, *self.buyers]
        home.write_genesis(genesis_document(
            self.CHAIN, [GenesisValidator(home.validator_key().public_key, 10, "validator-0")],
            time_ms=now_ms(), balances={k.address: 10**6 * COIN for k in actors},
            commerce=True, demo=Demo(merchant=self.merchant.address,
                                     arbiter=self.arbiter.address)))
        self.node = Node(home)
        await self.node.start()
        self.url = f"http://{listen}/"

    async def run(self, client: Any) -> None:
        """create_listing; orders placed, shipped, confirmed, reviewed (a block each)."""
        async def commit(txs: list[Transaction]) -> list[dict[str, Any]]:
            answers = await asyncio.gather(*(client.broadcast_tx_commit(t) for t in txs))
            for tx, a in zip(txs, answers, strict=True):
                assert a["receipt"]["status"] == "ok", (tx.action, a["receipt"])
            return list(answers)

        m = self.merchant
        description = hashlib.sha256(b"A walnut board, oiled, 40 x 25 cm.").digest()
        [listed] = await commit([self.call(
            m, "catalog", "create_listing", "Walnut cutting board", description, PRICE, 0,
            10 * self.n, 3 * DAY_MS, 14 * DAY_MS, 7 * DAY_MS, 2 * DAY_MS,
            self.arbiter.address, NOBODY, NOBODY, False, 5_000)])
        self.listing = int(listed["receipt"]["return_value"])
        placed = await commit([self.call(b, "escrow", "place_order", self.listing, 1, 1,
                                         self.arbiter.address, NOBODY, value=PRICE)
                               for b in self.buyers])
        self.orders = [int(next(e for e in a["receipt"]["events"]
                                if e["name"] == "OrderPlaced")["fields"]["order_id"])
                       for a in placed]
        await commit([self.call(m, "escrow", "ship", o, f"TRK-{o}") for o in self.orders])
        await commit([self.call(b, "escrow", "confirm", o, True)
                      for b, o in zip(self.buyers, self.orders, strict=True)])
        await commit([self.call(b, "reviews", "post_review", o, 5, "Lovely board")
                      for b, o in zip(self.buyers, self.orders, strict=True)])

    async def stop(self) -> None:
        if self.node is not None:
            await self.node.stop()


def _strip(x: Any) -> Any:
    """An answer without the height it was read at (the light head may trail)."""
    if isinstance(x, dict):
        return {k: _strip(v) for k, v in x.items() if k != "height"}
    if isinstance(x, list):
        return [_strip(v) for v in x]
    return x


async def _queries(args: argparse.Namespace, workdir: Path) -> dict[str, Any]:
    from node.light.service import LightNode, LightSettings
    from node.localnet import free_base_port
    from node.rpc.client import RPCClient

    market = Market(workdir / "node", args.orders)
    light = None
    kv = None
    try:
        t0 = time.perf_counter()
        await market.start()
        async with RPCClient(market.url, timeout=30) as full:
            await market.run(full)
            setup = time.perf_counter() - t0
            head = (await full.status())["height"]
            _log(f"  market: {len(market.orders)} orders placed, shipped, confirmed, reviewed "
                 f"by height {head} ({setup:.1f} s)")
            port = free_base_port(1)
            kv = LevelDBKV(workdir / "light", cache_mb=8, write_buffer_mb=1)
            light = LightNode(market.node.executor.genesis, kv, LightSettings(
                primary=market.url, rpc_listen=f"127.0.0.1:{port}"))
            t0 = time.perf_counter()
            await light.start()
            started = time.perf_counter() - t0
            assert light.client.height >= head, (light.client.height, head)
            merchant = address_to_text(market.merchant.address)
            buyer = address_to_text(market.buyers[0].address)
            orders = market.orders
            calls: dict[str, Any] = {
                "order": lambda c, i: c.order(orders[i % len(orders)]),
                "listing": lambda c, i: c.listing(market.listing),
                "account": lambda c, i: c.account(buyer),
                "reviews": lambda c, i: c.reviews(merchant=merchant),
            }
            results: dict[str, Any] = {}
            first: dict[str, dict[str, float]] = {}
            heights = [light.client.height]
            async with RPCClient(f"http://127.0.0.1:{port}/", timeout=30) as lc:
                for name, ask in calls.items():
                    for i in range(max(3, len(orders))):  # warm-up: headers, code, programs
                        q0 = time.perf_counter()
                        mine = await ask(lc, i)
                        q1 = time.perf_counter()
                        theirs = await ask(full, i)
                        if i == 0:
                            first[name] = {"light": round((q1 - q0) * 1000, 2),
                                           "full": round((time.perf_counter() - q1) * 1000, 2)}
                        if _strip(mine) != _strip(theirs):
                            raise SystemExit(f"{name}: the light node's answer differs from "
                                             f"the full node's:\n{mine}\n{theirs}")
                    times: dict[str, list[float]] = {"light": [], "full": []}
                    for i in range(args.queries):
                        for side, c in (("light", lc), ("full", full)):
                            q0 = time.perf_counter()
                            await ask(c, i)
                            times[side].append((time.perf_counter() - q0) * 1000)
                    results[name] = {side: {
                        "p50_ms": round(_pct(v, 0.5), 2), "p90_ms": round(_pct(v, 0.9), 2),
                        "p99_ms": round(_pct(v, 0.99), 2), "max_ms": round(max(v), 2),
                        "mean_ms": round(statistics.fmean(v), 2)}
                        for side, v in times.items()}
                    results[name]["first_call_ms"] = first[name]
                    _log(f"  {name}: light p50 {results[name]['light']['p50_ms']} ms, full "
                         f"p50 {results[name]['full']['p50_ms']} ms")
                # The first answer at each new verified head: its proven values are not
                # cached yet (headers, contract code and programs are).
                rounds = max(2, min(10, args.queries // 20))
                fresh: dict[str, list[float]] = {name: [] for name in calls}
                for r in range(rounds):
                    seen = light.client.height
                    async with asyncio.timeout(30):
                        while light.client.height == seen:
                            await asyncio.sleep(0.005)
                    for name, ask in calls.items():
                        q0 = time.perf_counter()
                        await ask(lc, r)
                        fresh[name].append((time.perf_counter() - q0) * 1000)
                for name, v in fresh.items():
                    results[name]["light_new_head"] = {
                        "n": len(v), "p50_ms": round(_pct(v, 0.5), 2),
                        "max_ms": round(max(v), 2)}
            status = light.client.status()
            heights.append(light.client.height)
            return {
                "queries": args.queries, "orders": len(market.orders),
                "market_setup_s": round(setup, 2), "light_start_s": round(started, 3),
                "light_heights": heights, "headers_kept": status["headers_kept"],
                "keys_proven": light.ctx.proven.keys_proven,
                "target_order_p50_ms": 30.0,
                "ok": (results["order"]["light"]["p99_ms"] < 30.0
                       and results["order"]["light_new_head"]["max_ms"] < 30.0),
                **results,
            }
    finally:
        if light is not None:
            await light.stop()  # closes its store
        elif kv is not None:
            kv.close()
        await market.stop()


# ---------------------------------------------------------------- 4. disk


def _du(path: Path) -> tuple[int, dict[str, int]]:
    """Bytes of the files under ``path``, and by kind (table, log, other)."""
    kinds: dict[str, int] = {}
    total = 0
    for f in path.rglob("*"):
        if f.is_file():
            size = f.stat().st_size
            total += size
            kind = {".ldb": "tables", ".sst": "tables", ".log": "log"}.get(f.suffix, "other")
            kinds[kind] = kinds.get(kind, 0) + size
    return total, kinds


def _open(path: Path) -> LevelDBKV:
    """The light node's own LevelDB options (node/light/service.py ``open_store``)."""
    return LevelDBKV(path, cache_mb=8, write_buffer_mb=1)


def _size(path: Path, kept: int) -> dict[str, Any]:
    total, kinds = _du(path)
    return {"bytes": total, "bytes_per_header": round(total / kept), **kinds}


def disk(chain: SimChain, follow: int, workdir: Path) -> dict[str, Any]:
    """Catch up ``chain``'s heights into a LevelDB store, then follow ``follow`` more
    one height at a time (each a synced write; the oldest pruned past ``keep``)."""
    n = chain.height
    if follow:
        extend(chain, follow)
    path = workdir / "light-store"
    provider = SimProvider(chain, head=n)
    kv = _open(path)
    client = _client(chain, provider, LightStore(kv, keep=n), sequential=True)
    sync_s = asyncio.run(_sync(client, n))
    kept = len(client.store)
    logical = sum(len(k) + len(v) for k, v in kv.iterate())
    kv.close()
    caught_up = _size(path, kept)

    kv = _open(path)
    client = _client(chain, provider, LightStore(kv, keep=n), sequential=False)

    every = max(1, follow // 100)
    peak = (0, 0)  # (bytes on disk while open, at height)

    async def following() -> float:
        nonlocal peak
        await client.start()  # resumes from the store
        spent = 0.0
        for h in range(n + 1, n + follow + 1):
            provider.head = h
            t0 = time.perf_counter()
            head = await client.sync()
            spent += time.perf_counter() - t0
            assert head is not None and head.height == h
            if (h - n) % every == 0:
                peak = max(peak, (_du(path)[0], h))
        return spent

    follow_s = asyncio.run(following())
    assert len(client.store) == kept, (len(client.store), kept)
    kv.close()
    followed = _size(path, kept)

    kv = _open(path)
    try:
        # LevelDBKV has no compaction of its own: plyvel's. Its compact_range() without
        # bounds compacts nothing (plyvel 1.5.1, LevelDB 1.22), so every key's bounds.
        kv._db.compact_range(start=b"\x00", stop=b"\xff" * 34)
    finally:
        kv.close()
    compacted = _size(path, kept)
    kv = _open(path)
    try:
        again = LightStore(kv, keep=n)
        latest = again.latest()
        assert len(again) == kept and latest is not None and latest.height == n + follow
    finally:
        kv.close()
    caught_up_ok = max(caught_up["bytes"], compacted["bytes"]) / kept < 1024
    following_ok = max(peak[0], followed["bytes"]) / kept < 1024
    return {
        "headers_kept": kept, "validators": VALIDATORS, "followed": follow,
        "sync_into_leveldb_s": round(sync_s, 3),
        "follow_ms_per_height": round(follow_s * 1000 / follow, 3) if follow else None,
        "logical_bytes_per_header": round(logical / kept),
        "after_catch_up": caught_up,
        "peak_while_following": {"bytes": peak[0], "bytes_per_header": round(peak[0] / kept),
                                 "at_height": peak[1], "sampled_every": every},
        "after_following": followed,
        "after_compaction": compacted,
        "target_bytes_per_header": 1024,
        "caught_up_ok": caught_up_ok,
        "following_ok": following_ok,
        "ok": caught_up_ok and following_ok,
    }


# ---------------------------------------------------------------- report


def _print(r: dict[str, Any]) -> None:
    s = r.get("sequential")
    if s:
        print(f"1. sequential verification, {s['headers']:,} headers of {s['validators']} "
              f"validators ({s['signatures']:,} signatures; chain built in {s['build_s']} s, "
              "outside the clock):")
        print(f"   ed25519 on this machine: {s['ed25519_verify_per_s']:,} verifications/s on "
              f"one core -> ceiling {s['ceiling_headers_per_s']:,} headers/s "
              f"({s['ceiling_s']} s for these)")
        print(f"   LightClient(sequential) sync from genesis: {s['client_sync_s']} s, "
              f"{s['client_headers_per_s']:,} headers/s ({s['client_requests']} provider "
              "requests)")
        print(f"   bare verify() loop:                        {s['verify_loop_s']} s, "
              f"{s['verify_loop_headers_per_s']:,} headers/s")
        print(f"   target: 10,000 in < 5 s -> {s['client_s_per_10000']} s per 10,000: "
              f"{'met' if s['ok'] else 'MISSED'}")
    k = r.get("skipping")
    if k:
        print(f"2. skipping verification, {k['heights']:,} heights from genesis (a quarter "
              f"of the set replaced at {k['changes']['quarter_replaced_at'][0]:,} and "
              f"{k['changes']['quarter_replaced_at'][1]:,}):")
        for name, label in (("quarter_changes", "quarter changes only"),
                            ("full_replacement", f"and all replaced at "
                                                 f"{k['changes']['all_replaced_at']:,}")):
            x = k[name]
            print(f"   {label + ':':40} {x['verification_s'] * 1000:,.1f} ms; "
                  f"{x['headers_fetched']} header(s) fetched, {x['headers_verified']} "
                  f"verified, {x['requests']} requests (first run, signing on demand: "
                  f"{x['first_run_with_signing_s']} s; hashing the chain "
                  f"{x['chain_hashes_s']} s)")
        met = k["quarter_changes"]["ok"] and k["full_replacement"]["ok"]
        print(f"   target: 100,000 in < 2 s: {'met' if met else 'MISSED'}")
    q = r.get("queries")
    if q:
        print(f"3. verified queries on loopback ({q['queries']} each, sequential, after a "
              f"warm-up; full node and light node in this process, {q['orders']} orders; "
              f"light node started and synced in {q['light_start_s']} s; its head moved "
              f"{q['light_heights'][0]} -> {q['light_heights'][1]} meanwhile):")
        for name in ("order", "listing", "account", "reviews"):
            lt, fu = q[name]["light"], q[name]["full"]
            print(f"   {name:8} light p50 {lt['p50_ms']:6.2f}  p90 {lt['p90_ms']:6.2f}  p99 "
                  f"{lt['p99_ms']:6.2f} ms   | full node p50 {fu['p50_ms']:6.2f}  p90 "
                  f"{fu['p90_ms']:6.2f}  p99 {fu['p99_ms']:6.2f} ms   (first call: light "
                  f"{q[name]['first_call_ms']['light']}, full {q[name]['first_call_ms']['full']})")
        for name in ("order", "listing", "account", "reviews"):
            x = q[name]["light_new_head"]
            print(f"   {name:8} light, first call at each of {x['n']} new heads: p50 "
                  f"{x['p50_ms']:6.2f}  max {x['max_ms']:6.2f} ms")
        print(f"   target: a verified order < 30 ms -> p50 {q['order']['light']['p50_ms']} ms, "
              f"p99 {q['order']['light']['p99_ms']} ms, at a new head max "
              f"{q['order']['light_new_head']['max_ms']} ms: {'met' if q['ok'] else 'MISSED'}")
    d = r.get("disk")
    if d:
        print(f"4. disk: LevelDB LightStore keeping {d['headers_kept']:,} headers of "
              f"{d['validators']} validators ({d['logical_bytes_per_header']} bytes/header "
              f"of keys and values; sequential catch-up in {d['sync_into_leveldb_s']} s, "
              f"then {d['followed']:,} heights followed one at a time, "
              f"{d['follow_ms_per_height']} ms each with a synced write):")
        for label, key in (("after the catch-up, closed", "after_catch_up"),
                           ("largest while following", "peak_while_following"),
                           (f"after following {d['followed']:,} more, closed",
                            "after_following"),
                           ("after compaction", "after_compaction")):
            x = d[key]
            parts = ", ".join(f"{kind} {x[kind]:,}" for kind in ("tables", "log", "other")
                              if kind in x)
            if "at_height" in x:
                parts = (f"at height {x['at_height']:,}, sampled every {x['sampled_every']:,}"
                         " heights")
            print(f"   {label + ':':36} {x['bytes']:>10,} bytes = {x['bytes_per_header']} "
                  f"bytes/header ({parts})")
        print(f"   target: < 1 KB per kept header -> after the catch-up (closed, compacted): "
              f"{'met' if d['caught_up_ok'] else 'MISSED'}; while following: "
              f"{'met' if d['following_ok'] else 'MISSED'}")


def main(argv: list[str] | None = None) -> int:
    doc = __doc__ or "Benchmark: the light node."
    ap = argparse.ArgumentParser(prog="python -m bench.light",
                                 description=doc.splitlines()[0])
    ap.add_argument("--json", action="store_true", help="one JSON object on stdout")
    ap.add_argument("--headers", type=int, default=10_000,
                    help="heights verified sequentially, and kept on disk (target 1, 4)")
    ap.add_argument("--skip", type=int, default=100_000,
                    help="heights caught up by skipping verification (target 2)")
    ap.add_argument("--queries", type=int, default=200,
                    help="timed calls of each method on each node (target 3)")
    ap.add_argument("--follow", type=int, default=None,
                    help="heights followed one at a time after the catch-up, each kept "
                         "header replaced once at the default (= --headers; target 4)")
    ap.add_argument("--orders", type=int, default=4, help="orders in the market (target 3)")
    args = ap.parse_args(argv)
    if args.follow is None:
        args.follow = args.headers
    if args.headers < 2 or args.skip < 20 or args.queries < 1 or args.orders < 1 \
            or args.follow < 0:
        ap.error("--headers >= 2, --skip >= 20, --queries >= 1, --orders >= 1, --follow >= 0")
    raw = sys.argv[1:] if argv is None else list(argv)
    command = shlex.join(["python", "-m", "bench.light", *raw])
    result: dict[str, Any] = {"command": command, "cores": os.cpu_count(),
                              "python": sys.version.split()[0]}
    if not args.json:
        print(f"$ {command}", flush=True)
    t_all = time.perf_counter()
    workdir = Path(tempfile.mkdtemp(prefix="agora-bench-light-"))
    try:
        _log(f"1. sequential: {args.headers:,} headers ...")
        result["sequential"], chain = sequential(args.headers)
        if not args.json:
            _print({"sequential": result["sequential"]})
        _log(f"2. skipping: {args.skip:,} heights ...")
        result["skipping"] = skipping(args.skip)
        if not args.json:
            _print({"skipping": result["skipping"]})
        _log(f"3. queries: {args.queries} of each ...")
        result["queries"] = asyncio.run(_queries(args, workdir))
        if not args.json:
            _print({"queries": result["queries"]})
        _log(f"4. disk: {args.headers:,} headers into LevelDB, {args.follow:,} followed ...")
        result["disk"] = disk(chain, args.follow, workdir)
        if not args.json:
            _print({"disk": result["disk"]})
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    result["total_s"] = round(time.perf_counter() - t_all, 1)
    result["ok"] = all(result[k]["ok"] for k in ("sequential", "queries", "disk")) and \
        result["skipping"]["quarter_changes"]["ok"] and result["skipping"]["full_replacement"]["ok"]
    if args.json:
        print(json.dumps(result, indent=2))
    else:
        print(f"all targets {'met' if result['ok'] else 'NOT met'}; {result['total_s']} s "
              f"in all ({result['cores']} cores, Python {result['python']})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
