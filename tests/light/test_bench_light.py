"""``python -m bench.light`` end to end at a small scale (a few seconds): every section's
report, the skipping runs' shape (a direct skip over quarter changes, bisection down
to a full replacement), the light node's answers checked equal to the full node's
(the bench refuses to time them otherwise); and the lazy chain the bench skips over is
the chain ``build`` makes."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path

from chain.keys import PrivateKey
from node.light.simchain import LazySimChain, build, keys

ROOT = Path(__file__).resolve().parent.parent.parent
START = 1_700_000_000_000


def test_lazy_chain_is_the_built_chain_signed_on_demand() -> None:
    changes: dict[int, Sequence[PrivateKey]] = {4: keys("new", 4), 9: keys("sim", 4)[:2] + keys("other", 2)}
    built = build(12, start_ms=START, changes=changes)
    lazy = LazySimChain(12, start_ms=START, changes=changes)
    assert lazy.height == 12 and lazy.signed == 0
    assert lazy.genesis.hash == built.genesis.hash
    for h in (12, 3, 4, 9, 1):
        a, b = built.block(h), lazy.block(h)
        assert (a.header, a.commit, a.validators.hash) == (b.header, b.commit, b.validators.hash)
    assert lazy.signed == 5
    lazy.block(12)
    assert lazy.signed == 5  # kept, not signed again


def test_bench_light_small() -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("AGORA_")}
    args = ["--headers", "200", "--skip", "2000", "--queries", "5", "--follow", "100"]
    proc = subprocess.run([sys.executable, "-m", "bench.light", "--json", *args], cwd=ROOT,
                          env=env, capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr[-3000:] + proc.stdout[-3000:]
    r = json.loads(proc.stdout)
    assert r["command"] == "python -m bench.light --json " + " ".join(args)

    s = r["sequential"]
    assert s["headers"] == 200 and s["signatures"] == 800
    assert s["ed25519_verify_per_s"] > 0 and s["ceiling_headers_per_s"] > 0
    assert s["client_sync_s"] > 0 and s["verify_loop_s"] > 0
    assert s["client_requests"] >= 200 // 99

    k = r["skipping"]
    assert k["heights"] == 2000
    assert k["changes"] == {"quarter_replaced_at": [600, 1400], "all_replaced_at": 1800}
    direct = k["quarter_changes"]
    # Half of the genesis set still signs the head: one header, verified by skipping.
    assert direct["headers_fetched"] == direct["headers_verified"] == 1
    bisected = k["full_replacement"]
    assert 1 < bisected["headers_fetched"] <= 40
    assert {1799, 1800, 2000} <= set(bisected["heights_fetched"])  # across the change
    assert bisected["verification_s"] > 0

    q = r["queries"]
    assert q["queries"] == 5 and q["orders"] == 4 and q["keys_proven"] > 0
    for name in ("order", "listing", "account", "reviews"):
        for side in ("light", "full"):
            t = q[name][side]
            assert 0 < t["p50_ms"] <= t["p90_ms"] <= t["p99_ms"] <= t["max_ms"]
        fresh = q[name]["light_new_head"]
        assert fresh["n"] == 2 and 0 < fresh["p50_ms"] <= fresh["max_ms"]
    assert q["light_heights"][1] >= q["light_heights"][0] + 2

    d = r["disk"]
    assert d["headers_kept"] == 200 and d["followed"] == 100
    assert 500 < d["logical_bytes_per_header"] < 1000
    for stage in ("after_catch_up", "peak_while_following", "after_following",
                  "after_compaction"):
        assert d[stage]["bytes"] > 200 * 500, stage
    assert d["after_compaction"].get("log", 0) == 0
    assert isinstance(r["ok"], bool)
