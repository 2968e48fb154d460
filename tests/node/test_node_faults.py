"""A node that meets damage says so and stops rather than go on wrong (issue 15's
hostile-test findings), each with the finding it answers:

* a block write that fails (a damaged LevelDB table, a full disk) stops the node with
  a clear message and a non-zero exit, nothing acknowledged past the last block
  written, and no "committed block N" logged for a block that was not written;
* LevelDB comes back lower than the height the node had committed (its log
  truncated): logged loudly, with the heights lost;
* the sign log lives beside the validator key (wiping data/ keeps it); a home of
  the old layout has it moved there; a missing one, a damaged last record and a store
  behind the sign log are each logged;
* a flood of p2p refusals cannot flood the log.
"""

from __future__ import annotations

import json
import logging
import os
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

from chain.codec import pack
from consensus.signlog import _SIGNED, _frame
from node.config import Config, ConsensusSection, NodeSection, P2PSection, RPCSection
from node.daemon import HeadMark, Node, limit_noisy_logs
from node.home import Home, init_home
from node.localnet import free_base_port

CHAIN = "agora-faults"
REPO = Path(__file__).resolve().parents[2]


def make_home(path: Path) -> tuple[Home, int]:
    init_home(path, chain_id=CHAIN, validator=True)
    home = Home(path)
    base = free_base_port(2)
    home.write_config(Config(
        node=NodeSection(mode="validator", moniker="faults"),
        p2p=P2PSection(listen=f"127.0.0.1:{base}", pex=False),
        rpc=RPCSection(listen=f"127.0.0.1:{base + 1}"),
        consensus=ConsensusSection(block_interval_ms=10, idle_interval_ms=50,
                                   view_timeout_ms=1_000)))
    return home, base + 1


def rpc_height(port: int) -> int | None:
    body = json.dumps({"jsonrpc": "2.0", "id": 1, "method": "status"}).encode()
    request = urllib.request.Request(f"http://127.0.0.1:{port}", body,
                                     {"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(request, timeout=2) as answer:
            return int(json.load(answer)["result"]["height"])
    except OSError:
        return None


# ---------------------------------------------------------------------- a failed write

#: Runs a real node whose LevelDB write batches fail from the Nth on, as they do once
#: a compaction hits a damaged table (LevelDB then fails every write).
FAILING_NODE = """
import sys
import plyvel
import storage.kv as kv
from node.daemon import run_node

writes = 0
original_init = kv._LevelDBBatch.__init__


class Failing:
    def __init__(self, batch):
        self.batch = batch

    def __getattr__(self, name):
        return getattr(self.batch, name)

    def write(self):
        global writes
        writes += 1
        if writes >= int(sys.argv[2]):
            raise plyvel.IOError("IO error: chain/000005.ldb: Corruption: block checksum "
                                 "mismatch")
        return self.batch.write()


def init(self, store, sync):
    original_init(self, store, sync)
    self._wb = Failing(self._wb)


kv._LevelDBBatch.__init__ = init
run_node(sys.argv[1])
"""


@pytest.mark.timeout(90)
def test_a_failed_block_write_stops_the_node_loudly(tmp_path: Path) -> None:
    home, rpc = make_home(tmp_path / "node")
    script = tmp_path / "failing_node.py"
    script.write_text(FAILING_NODE)
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    proc = subprocess.Popen([sys.executable, str(script), str(home.path), "12"],
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                            env=env, cwd=REPO)
    try:
        output, _ = proc.communicate(timeout=60)
    finally:
        proc.kill()
    assert proc.returncode == 1, output
    last = output.strip().splitlines()[-1]
    assert last.startswith("error: the node stopped: writing block "), output
    assert "LevelDB write at" in last and "block checksum mismatch" in last
    assert "plyvel" not in last  # the project's own storage error, not a raw IOError
    failed = int(last.split("writing block ")[1].split()[0])
    committed = [int(line.split("committed block ")[1].split()[0])
                 for line in output.splitlines() if "committed block " in line]
    assert committed and max(committed) == failed - 1, "a block was logged as committed " \
                                                       "that was not written"
    assert "CRITICAL" in output
    assert rpc_height(rpc) is None  # no zombie left answering
    # The store holds exactly what was acknowledged, and the node starts again from it.
    proc = subprocess.Popen([sys.executable, "-m", "cli", "start", "--home", str(home.path)],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env,
                            cwd=REPO)
    try:
        deadline = time.monotonic() + 30
        height = None
        while time.monotonic() < deadline:
            height = rpc_height(rpc)
            if height is not None and height > failed:
                break
            time.sleep(0.1)
        assert height is not None and height > failed, height
    finally:
        proc.terminate()
        proc.wait(timeout=15)


# ---------------------------------------------------------------------- lost blocks


def test_a_store_lower_than_the_committed_mark_is_reported(tmp_path: Path,
                                                           caplog: pytest.LogCaptureFixture
                                                           ) -> None:
    mark = HeadMark(tmp_path / "head")
    try:
        with caplog.at_level(logging.INFO, logger="agora.node"):
            mark.check(0)  # new: nothing to say
            assert not caplog.records
            mark.write(57)
            mark.check(57)
            assert not caplog.records
            mark.check(12)  # LevelDB came back at 12
        (record,) = caplog.records
        assert record.levelno == logging.ERROR
        assert "had committed height 57" in record.getMessage()
        assert "Heights 13..57 are gone" in record.getMessage()
        assert mark.read() == 57  # kept until the node is past it again
    finally:
        mark.close()
    # A damaged mark is no mark (and never a crash).
    (tmp_path / "head").write_bytes(b"\xff" * 16)
    mark = HeadMark(tmp_path / "head")
    try:
        assert mark.read() is None
    finally:
        mark.close()


async def test_a_node_restarted_on_a_truncated_store_says_what_was_lost(
        tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    home, _ = make_home(tmp_path / "node")
    (home.data_dir).mkdir(parents=True, exist_ok=True)
    mark = HeadMark(home.data_dir / "head")
    mark.write(40)  # what it had committed before its LevelDB log was cut off
    mark.close()
    with caplog.at_level(logging.WARNING):
        node = Node(home)
        await node.start()
        await node.stop()
    assert any("the store lost blocks" in r.getMessage() and "height 40" in r.getMessage()
               for r in caplog.records), caplog.text


# ---------------------------------------------------------------------- the sign log


async def test_an_old_homes_sign_log_moves_beside_the_key(tmp_path: Path) -> None:
    home, _ = make_home(tmp_path / "node")
    record = _frame(pack([_SIGNED, 1, 0, 0, b"\x01" * 32, []]))
    home.signlog_path.unlink()
    home.legacy_signlog_path.write_bytes(record)
    node = Node(home)
    await node.start()
    try:
        assert not home.legacy_signlog_path.exists()
        assert home.signlog_path.read_bytes().startswith(record)
        assert not node.core.guarded
    finally:
        await node.stop()


async def test_a_missing_sign_log_is_reported(tmp_path: Path,
                                              caplog: pytest.LogCaptureFixture) -> None:
    home, _ = make_home(tmp_path / "node")
    home.signlog_path.unlink()
    with caplog.at_level(logging.WARNING):
        node = Node(home)
        await node.start()
        await node.stop()
    text = caplog.text
    assert "sign log" in text and "is missing" in text
    # The only validator: no one could commit without it, so the guard would halt the
    # chain for good; it says so instead of waiting.
    assert "double-sign guard off" in text


async def test_a_store_behind_the_sign_log_and_a_torn_record_are_reported(
        tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    home, _ = make_home(tmp_path / "node")
    signed = _frame(pack([_SIGNED, 90, 0, 1, b"\x02" * 32, []]))
    home.signlog_path.write_bytes(signed + signed[:11])  # the last append cut off
    with caplog.at_level(logging.WARNING):
        node = Node(home)
        await node.start()
        await node.stop()
    text = caplog.text
    assert "ended in a damaged record (11 bytes, cut off)" in text
    assert "signatures up to height 90, the store only height 0" in text
    assert home.signlog_path.read_bytes().startswith(signed)


def test_wiping_data_keeps_the_sign_log(tmp_path: Path) -> None:
    home, _ = make_home(tmp_path / "node")
    assert home.data_dir not in home.signlog_path.parents
    assert home.signlog_path.parent == home.validator_key_path.parent


# ---------------------------------------------------------------------- log floods


def test_a_flood_of_refused_connections_writes_a_bounded_log() -> None:
    records: list[logging.LogRecord] = []

    class Keep(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            records.append(record)

    handler = Keep()
    p2p = logging.getLogger("agora.p2p")
    p2p.addHandler(handler)
    old_level = p2p.level
    p2p.setLevel(logging.INFO)
    limiter = limit_noisy_logs()
    try:
        for i in range(5_000):
            p2p.info("refused a connection from %s: %s", f"127.0.0.1:{i}", "too many peers")
    finally:
        p2p.removeFilter(limiter)
        p2p.removeHandler(handler)
        p2p.setLevel(old_level)
    assert len(records) == limiter.burst
