"""Benchmark: the `agora` wallet as a user types it (issue 14's targets).

Starts `agora localnet` (four validators, the default config: a block every
``block_interval_ms``), then times whole commands, each a fresh process from the
shell's point of view (interpreter start, imports, RPC, signing, the wait for the
commit, the answer printed):

1. ``agora balance buyer`` — target: under 300 ms at p50;
2. ``agora transfer --from buyer --to merchant --amount 0.001`` — target: within one
   block interval plus 300 ms at p50 (the command returns once the transfer is
   committed, which is final);
3. ``agora order place 1 --from buyer`` followed by ``agora order cancel`` — the same
   target, for contract calls (ABI encoding and the read-only try included).

Beside them: ``python -c pass`` (the interpreter's own start on this machine) and
``agora --version`` (the CLI's import cost). Bytecode caches are allowed (as on a
user's machine): a run with PYTHONDONTWRITEBYTECODE=1 re-compiles every module on
every start.

    python -m bench.wallet [--runs 30]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from node.config import ConsensusSection
from node.localnet import free_base_port


def _timed(cmd: list[str], cwd: Path, env: dict[str, str]) -> tuple[float, str]:
    start = time.perf_counter()
    proc = subprocess.run(cmd, cwd=cwd, env=env, capture_output=True, text=True)
    took = time.perf_counter() - start
    if proc.returncode != 0:
        raise SystemExit(f"{' '.join(cmd)} failed: {proc.stderr}{proc.stdout}")
    return took, proc.stdout


def _stats(name: str, samples: list[float], target_ms: float | None) -> dict[str, float]:
    ms = sorted(s * 1000 for s in samples)
    p50 = statistics.median(ms)
    p95 = ms[min(len(ms) - 1, int(len(ms) * 0.95))]
    verdict = ""
    if target_ms is not None:
        verdict = f"  target < {target_ms:.0f} ms: {'met' if p50 < target_ms else 'MISSED'}"
    print(f"{name:44} p50 {p50:7.1f} ms  p95 {p95:7.1f} ms  (n={len(ms)}){verdict}")
    return {"p50_ms": round(p50, 1), "p95_ms": round(p95, 1), "n": len(ms)}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=30)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args(argv)
    env = {k: v for k, v in os.environ.items()
           if not k.startswith("AGORA_") and k != "PYTHONDONTWRITEBYTECODE"}
    agora = [shutil.which("agora") or sys.executable, *([] if shutil.which("agora")
                                                       else ["-m", "cli"])]
    block_ms = ConsensusSection().block_interval_ms
    work = Path(tempfile.mkdtemp(prefix="agora-bench-wallet-"))
    home = work / "localnet"
    base = free_base_port(8)
    log = open(work / "localnet.log", "w")  # noqa: SIM115 - closed below
    net = subprocess.Popen([*agora, "localnet", "--home", str(home), "--base-port",
                            str(base)], env=env, stdout=log, stderr=subprocess.STDOUT)
    results: dict[str, dict[str, float]] = {}
    try:
        deadline = time.monotonic() + 60
        while True:
            if not (home / "localnet.json").exists():
                if net.poll() is not None or time.monotonic() > deadline:
                    raise SystemExit("the localnet did not start: see " + str(work))
                time.sleep(0.3)
                continue
            probe = subprocess.run([*agora, "query", "status", "--json"], cwd=home, env=env,
                                   capture_output=True, text=True)
            if probe.returncode == 0 and json.loads(probe.stdout)["height"] >= 1:
                break
            if time.monotonic() > deadline or net.poll() is not None:
                raise SystemExit("the localnet did not start: see " + str(work))
            time.sleep(0.3)
        for _ in range(3):  # warm the bytecode caches, as a user's second command is
            _timed([*agora, "balance", "buyer"], home, env)
        print(f"4-validator localnet, block interval {block_ms} ms; {args.runs} runs each; "
              f"{os.cpu_count()} cores")
        results["python -c pass"] = _stats(
            "python -c pass (interpreter start)",
            [_timed([sys.executable, "-c", "pass"], home, env)[0] for _ in range(args.runs)],
            None)
        results["agora --version"] = _stats(
            "agora --version (CLI start)",
            [_timed([*agora, "--version"], home, env)[0] for _ in range(args.runs)], None)
        results["balance"] = _stats(
            "agora balance buyer",
            [_timed([*agora, "balance", "buyer"], home, env)[0] for _ in range(args.runs)],
            300)
        transfers = [_timed([*agora, "transfer", "--from", "buyer", "--to", "merchant",
                             "--amount", "0.001"], home, env)[0] for _ in range(args.runs)]
        results["transfer"] = _stats("agora transfer (to commit)", transfers, block_ms + 300)
        places, cancels = [], []
        for _ in range(args.runs):
            took, out = _timed([*agora, "order", "place", "1", "--from", "buyer", "--json"],
                               home, env)
            places.append(took)
            order = str(json.loads(out)["order_id"])
            cancels.append(_timed([*agora, "order", "cancel", order, "--from", "buyer"],
                                  home, env)[0])
        results["order place"] = _stats("agora order place (to commit)", places,
                                        block_ms + 300)
        results["order cancel"] = _stats("agora order cancel (to commit)", cancels,
                                         block_ms + 300)
        if args.json:
            print(json.dumps({"block_interval_ms": block_ms, "results": results}, indent=2))
    finally:
        net.send_signal(signal.SIGINT)
        try:
            net.wait(30)
        except subprocess.TimeoutExpired:
            net.kill()
        log.close()
        shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
