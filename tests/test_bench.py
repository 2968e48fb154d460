"""`agora bench` end to end, at a small scale: the JSON report's fields, every admitted
transaction committed, refusals resent in order, and the escrow phases' events found."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


def _bench(*args: str) -> dict:
    env = {k: v for k, v in os.environ.items() if not k.startswith("AGORA_")}
    proc = subprocess.run([sys.executable, "-m", "cli", "bench", "--validators", "2",
                           "--json", *args], cwd=ROOT, env=env, capture_output=True,
                          text=True, timeout=100)
    assert proc.returncode == 0, proc.stderr[-3000:] + proc.stdout[-3000:]
    return json.loads(proc.stdout)


def test_transfers_as_fast_as_accepted_resend_refusals_in_order() -> None:
    # Two senders of 100 transfers each, all at once: past the mempool's 64 per sender
    # the node refuses (sender_limit); the generator resends them in nonce order.
    r = _bench("--txs", "200", "--senders", "2")
    assert r["ok"] is True
    assert r["workload"] == "transfer" and r["txs"] == 200
    assert r["admitted"] == 200 and r["committed"] == r["admitted"]
    assert r["never_committed"] == 0
    assert r["refused"].get("sender_limit", 0) > 0 and r["resent"] > 0
    assert r["submitted"] == r["admitted"] + sum(r["refused"].values())
    assert r["committed_tps"] > 0
    lat = r["latency_ms"]
    assert lat["samples"] == 200
    assert 0 < lat["min"] <= lat["p50"] <= lat["p95"] <= lat["p99"] <= lat["max"]
    assert r["blocks_per_s"] > 0 and r["txs_per_block"]["max"] >= r["txs_per_block"]["mean"]
    assert [n["node"] for n in r["nodes"]] == [0, 1]
    for n in r["nodes"]:
        assert n["cpu_s"] > 0 and n["peak_rss_mb"] > 10
    assert len(r["generators"]) == 2
    assert sum(g["submitted"] for g in r["generators"]) == r["submitted"]
    e = r["ed25519"]
    assert e["verify_per_core"] > 0 and e["cores"] >= 1
    assert e["ceiling_tps"] == round(e["cores"] * e["verify_per_core"] / 2)
    assert 0 < e["fraction_of_ceiling"] < 1
    (phase,) = r["phases"]
    assert phase["name"] == "transfers" and phase["drained"] is True


@pytest.mark.slow  # waits out a reputation window of blocks before the load
def test_with_the_last_validator_stopped_the_others_carry_the_load() -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("AGORA_")}
    proc = subprocess.run([sys.executable, "-m", "cli", "bench", "--validators", "4",
                           "--json", "--txs", "400", "--rate", "200", "--stop-validator"],
                          cwd=ROOT, env=env, capture_output=True, text=True, timeout=200)
    assert proc.returncode == 0, proc.stderr[-3000:] + proc.stdout[-3000:]
    r = json.loads(proc.stdout)
    assert r["stopped_validator"] is True
    assert [n["node"] for n in r["nodes"]] == [0, 1, 2]  # node3 never ran
    assert r["admitted"] == 400 and r["committed"] == 400
    # Dropped from the rotation before the load: no height waits for a view timeout.
    assert 0 < r["longest_height_ms"]["ms"] < 1_000


@pytest.mark.slow  # ~12 s of a 2-core CI's ten minutes; the transfer run stays
def test_mixed_workload_at_a_rate_runs_every_phase() -> None:
    r = _bench("--workload", "mixed", "--txs", "80", "--rate", "200")
    assert r["ok"] is True and r["checks_ok"] is True
    assert [p["name"] for p in r["phases"]] == ["orders", "ships", "confirm+review"]
    assert r["committed"] == r["admitted"] == r["txs"]
    gas = r["setup"]["gas_limits"]
    assert set(gas) == {"place_order", "ship", "confirm", "post_review", "join_group"}
    kinds = [set(p["kinds"]) for p in r["phases"]]
    assert {"place_order", "transfer", "join_group"} <= kinds[0]
    assert {"ship", "transfer", "join_group"} <= kinds[1]
    assert {"confirm", "post_review", "transfer", "join_group"} <= kinds[2]
    for p in r["phases"]:
        assert p["checks"] and all(c["found"] == c["expected"] > 0
                                   for c in p["checks"].values()), p["checks"]
    assert r["rate_offered"] == 200


# ---------------------------------------------------------------- the generator alone


class _FakeNode:
    """A node's admission as the generator sees it: per sender, nonces admitted in a
    contiguous run (at most ``ahead`` waiting behind a gap), and a pool that is full
    at random (a quarter of the time)."""

    def __init__(self, ahead: int = 3) -> None:
        import random

        self.rng = random.Random(5)
        self.ahead = ahead
        self.admitted: dict[str, set[int]] = {}

    def admit(self, raw: str) -> dict:
        sender, nonce_text = bytes.fromhex(raw).decode().split(":")
        nonce = int(nonce_text)
        have = self.admitted.setdefault(sender, set())
        if nonce in have:
            return {"error": {"code": -32000, "data": {"code": "already_known"}}}
        ready = 0
        while ready in have:
            ready += 1
        if nonce > ready + self.ahead:
            return {"error": {"code": -32000, "data": {"code": "nonce_gap"}}}
        if self.rng.random() < 0.25:
            return {"error": {"code": -32000, "data": {"code": "pool_full"}}}
        have.add(nonce)
        return {"hash": raw}


async def _run_fake(rate: float | None) -> tuple[dict, _FakeNode]:
    import time

    from aiohttp import web

    from bench.load import RunParams, StreamSpec, _Runner, _Stream

    node = _FakeNode()

    async def handle(request: web.Request) -> web.Response:
        body = await request.json()
        return web.json_response({"jsonrpc": "2.0", "id": body["id"], "result": [
            node.admit(t) for t in body["params"]["txs"]]})

    app = web.Application()
    app.router.add_post("/", handle)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    try:
        streams = []
        for k in range(6):
            spec = StreamSpec(k, f"s{k}", k % 2, 0, [("transfer", b"", 1)] * 30)
            raws = [f"s{k}:{n}".encode().hex() for n in range(30)]
            streams.append(_Stream(spec, raws, raws))
        url = f"http://127.0.0.1:{port}/"
        events: list = []

        class Sink:
            def put(self, item: object) -> None:
                events.append(item)

        params = RunParams(start_at=time.monotonic(), rate=rate, duration=None, tick=0.005,
                           batch=7, window=2, drain_timeout=20)
        result = await _Runner(0, [url, url], streams, params, Sink()).run()
    finally:
        await runner.cleanup()
    return result, node


async def test_generator_resends_refusals_in_order_open_loop() -> None:
    result, node = await _run_fake(rate=3_000)
    assert result["accepted"] == 180 and result["unaccepted"] == 0
    assert not result["gave_up"] and result["dead_streams"] == 0
    assert result["refused"]["pool_full"] > 0
    assert result["attempts"] == 180 + result["resent"]
    for k in range(6):  # every nonce admitted, none missing
        assert node.admitted[f"s{k}"] == set(range(30))
    assert result["next_nonces"] == {k: 30 for k in range(6)}
    assert len(result["hashes"]) == 180 == len(set(result["hashes"]))


async def test_generator_resends_refusals_in_order_as_fast_as_accepted() -> None:
    result, node = await _run_fake(rate=None)
    assert result["accepted"] == 180 and result["unaccepted"] == 0
    assert result["refused"]["pool_full"] > 0
    for k in range(6):
        assert node.admitted[f"s{k}"] == set(range(30))
