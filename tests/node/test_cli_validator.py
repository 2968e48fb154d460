"""``agora validator ...`` as an operator types it, in-process (click's runner) against
the governance test node (gov_helpers.GovNet: the node's real RPC stack over HTTP, five
validators whose keys sit in HOME/keys as node0..node4, a standby node5, and a
localnet.json naming their nodes).

Covered: the set listed (names, shares, since, node addresses); a refusal explained in
one sentence before anything is signed (an outsider proposes; a vote on no proposal);
the standby proposed by key name (its node address and name from localnet.json), voted
through, the output naming the next voter and then the height the change holds from;
a parameter change passed; the proposals listed by status; evidence of a double vote
listed with the removal it opened; --json everywhere; usage errors exit 2.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner, Result
from gov_helpers import CHAIN, NODES, OUTSIDER, STANDBY, STANDBY_NODE_ID, STANDBY_P2P, GovNet

from chain.address import address_to_text
from chain.block import Vote, VoteKind
from chain.evidence import PREPARE, DoubleSign
from chain.hashing import sha256
from chain.system import EVIDENCE_ADDRESS
from chain.tx import Call, Transaction
from cli import main
from node.rpc.client import SyncClient
from vm.executor import encode_args


class Agora:
    def __init__(self, net: GovNet) -> None:
        self.net = net
        self.runner = CliRunner()

    def run(self, *args: str) -> Result:
        return self.runner.invoke(main, [*args, "--node", self.net.url,
                                         "--home", str(self.net.home)])

    def text(self, *args: str) -> str:
        result = self.run(*args)
        assert result.exit_code == 0, f"agora {' '.join(args)}: {result.output}"
        assert "Traceback" not in result.output
        return result.stdout

    def json(self, *args: str) -> dict[str, Any]:
        result = self.run(*args, "--json")
        assert result.exit_code == 0, f"agora {' '.join(args)}: {result.output}"
        out = json.loads(result.stdout)
        assert out["ok"] is True
        return out

    def fails(self, code: int, *args: str) -> str:
        result = self.run(*args)
        assert result.exit_code == code, f"agora {' '.join(args)}: {result.output}"
        assert "Traceback" not in result.output
        return " ".join(result.output.split())


@pytest.fixture(scope="module")
def agora(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Agora]:
    home = tmp_path_factory.mktemp("validator-cli")
    patch = pytest.MonkeyPatch()
    # the wallet's per-key lock files, and no localnet found in the working directory
    patch.setenv("XDG_RUNTIME_DIR", str(home))
    patch.delenv("AGORA_NODE", raising=False)
    patch.chdir(home)
    try:
        with GovNet(home / "net") as net:
            yield Agora(net)
    finally:
        patch.undo()


def test_list_shows_the_set(agora: Agora) -> None:
    out = agora.text("validator", "list")
    lines = out.splitlines()
    assert lines[0] == ("Validator set at height 0 (in force since height 1): 5 validators, "
                        "total power 50")
    assert lines[1].split() == ["node0", address_to_text(NODES[0].address), "power", "10",
                                "(20.0%)"]
    data = agora.json("validator", "list")
    assert [v["name"] for v in data["validators"]] == [f"node{i}" for i in range(5)]
    assert (data["since"], data["total_power"]) == (1, 50)
    assert all(v["share"] == 0.2 for v in data["validators"])


def test_a_localnet_home_is_found_by_home_alone(agora: Agora) -> None:
    """``--home LOCALNET`` without --node (the hint ``agora localnet`` prints): the
    node is the localnet's first, the keys its keys/."""
    result = agora.runner.invoke(main, ["validator", "list", "--home", str(agora.net.home)])
    assert result.exit_code == 0, result.output
    assert "5 validators" in result.stdout


def test_an_explicit_localnet_home_wins_over_one_in_the_working_directory(
        agora: Agora, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """An old, stopped localnet in ./localnet was asked instead of the --home given."""
    stale = tmp_path / "localnet"
    stale.mkdir()
    (stale / "localnet.json").write_text(json.dumps(
        {"nodes": [{"index": 0, "rpc": "http://127.0.0.1:9"}]}))
    monkeypatch.chdir(tmp_path)
    result = agora.runner.invoke(main, ["validator", "list", "--home", str(agora.net.home)])
    assert result.exit_code == 0, result.output
    assert "5 validators" in result.stdout


def test_refusals_are_one_sentence_and_nothing_is_sent(agora: Agora) -> None:
    before = agora.net.height
    said = agora.fails(1, "validator", "propose-add", "--from", "outsider", "--validator",
                       "node5", "--power", "10")
    assert said == (f"Error: Cannot propose: only a validator may propose, and "
                    f"{address_to_text(OUTSIDER.address)} (outsider) is not in the validator "
                    "set (see `agora validator list`).")
    said = agora.fails(1, "validator", "vote", "--from", "node1", "99", "yes")
    assert said == "Error: Cannot vote on proposal 99: no such proposal."
    said = agora.fails(2, "validator", "propose-remove", "--from", "node0", "--validator",
                       "nobody-here")
    assert "neither an agora1... address nor a key name" in said
    assert "not the name of a validator in the set" in said
    said = agora.fails(2, "validator", "propose-add", "--from", "node0", "--validator",
                       "node5", "--power", "10", "--p2p", "not-an-address")
    assert "--p2p" in said and "nodeid@host:port" in said
    assert agora.fails(2, "validator", "vote", "--from", "node1", "1", "maybe")
    assert agora.net.height == before  # nothing was signed or sent


def test_the_standby_is_proposed_voted_in_and_the_change_has_a_height(agora: Agora) -> None:
    out = agora.json("validator", "propose-add", "--from", "node0", "--validator", "node5",
                     "--power", "10")
    assert (out["proposal_id"], out["status"], out["name"], out["p2p"]) == \
        (1, "open", "node5", f"{STANDBY_NODE_ID}@{STANDBY_P2P}")
    assert out["validator"] == address_to_text(STANDBY.address)
    assert (out["yes_power"], out["total_power"], out["votes_needed_power"]) == (10, 50, 24)
    assert out["can_vote_here"] == ["node1", "node2", "node3", "node4"]

    said = agora.text("validator", "vote", "--from", "node1", "1", "yes")
    assert "voted yes on proposal 1 (yes 20, no 0 power so far)." in said
    assert ("Proposal 1 is open (yes 20, no 0 of 50 power): it needs 14 more power of yes "
            "votes to pass, by height 1001: agora validator vote --from node2 1 yes") in said

    listed = agora.text("validator", "proposals", "--state", "open")
    assert "#1 add node5 (" in listed and "needs 14 more yes power" in listed

    agora.text("validator", "vote", "--from", "node2", "1", "yes")
    out = agora.json("validator", "vote", "--from", "node3", "1", "yes")
    at = out["tx"]["height"]
    assert (out["status"], out["effective_height"]) == ("passed", at + 2)
    assert out["change"] == {"validator": address_to_text(STANDBY.address), "name": "node5",
                             "power": 10, "p2p": f"{STANDBY_NODE_ID}@{STANDBY_P2P}"}
    listed = agora.text("validator", "list")
    assert f"A new set is decided, in force from height {at + 2}: agora validator list " \
           f"--height {at + 2}" in listed
    agora.net.blocks(2)
    listed = agora.text("validator", "list", "--height", str(at + 2))
    assert f"(in force since height {at + 2}): 6 validators, total power 60" in listed
    assert f"node5  {address_to_text(STANDBY.address)}  power 10 (16.7%)  node " \
           f"{STANDBY_NODE_ID}@{STANDBY_P2P}" in listed
    assert "passed" in agora.text("validator", "proposals", "--state", "passed")
    assert "0 open proposals" in agora.text("validator", "proposals", "--state", "open")


def test_a_parameter_change_passes_with_its_height(agora: Agora) -> None:
    out = agora.json("validator", "propose-param", "--from", "node0", "--name",
                     "max_block_gas", "--value", "30000000", "--effective", "5000")
    pid = out["proposal_id"]
    for voter in ("node1", "node2", "node3"):
        agora.json("validator", "vote", "--from", voter, str(pid), "yes")
    text = agora.text("validator", "vote", "--from", "node5", str(pid), "yes")
    assert f"Proposal {pid} passed in block" in text
    assert "max_block_gas is 30000000 from height 5000 on." in text


def test_a_power_change_and_a_no_vote(agora: Agora) -> None:
    out = agora.json("validator", "propose-power", "--from", "node1", "--validator", "node4",
                     "--power", "12")
    pid = out["proposal_id"]
    assert out["status"] == "open"
    text = agora.text("validator", "vote", "--from", "node0", str(pid), "no")
    assert f"voted no on proposal {pid}" in text and "yes 10, no 10" in text


def test_evidence_is_listed_with_its_removal_proposal(agora: Agora) -> None:
    assert "0 double vote(s) recorded" in agora.text("validator", "evidence")
    key = NODES[2]
    pairs = []
    for tag in (b"a", b"b"):
        block_hash = sha256(b"cli" + tag)
        pairs.append((block_hash, Vote.create(key, CHAIN, VoteKind.PREPARE, 1, 0,
                                              block_hash).signature))
    record = DoubleSign.of(PREPARE, 1, 0, key.address, *pairs)
    with SyncClient(agora.net.url, timeout=20) as client:
        nonce = client.account(OUTSIDER.address)["pending_nonce"]
        tx = Transaction.create(OUTSIDER, CHAIN, nonce,
                                Call(EVIDENCE_ADDRESS, "submit",
                                     encode_args([record.encode()]), 0),
                                gas_limit=2_000_000, gas_price=1)
        done = client.broadcast_tx_commit(tx)
    assert done["receipt"]["status"] == "ok"
    out = agora.text("validator", "evidence", "--validator", "node2")
    assert (f"block {done['height']}: node2 ({address_to_text(key.address)}) signed two "
            f"prepares at height 1 view 0") in out
    assert "; removal proposal #" in out
    data = agora.json("validator", "evidence")
    pid = data["items"][0]["proposal_id"]
    listed = agora.text("validator", "proposals", "--state", "open")
    assert f"#{pid} remove node2 (" in listed
    assert "proposed by the evidence of a double vote" in listed
    assert agora.json("validator", "evidence", "--validator", "node0")["items"] == []


def test_help_has_an_example_for_every_command() -> None:
    runner = CliRunner()
    for command in ("propose-add", "propose-remove", "propose-power", "propose-param",
                    "vote", "proposals", "list", "evidence"):
        result = runner.invoke(main, ["validator", command, "--help"])
        assert result.exit_code == 0, result.output
        assert f"agora validator {command}" in result.output, command


def test_a_chain_without_governance_is_explained(tmp_path: Path,
                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("XDG_RUNTIME_DIR", str(tmp_path))
    monkeypatch.chdir(tmp_path)
    with GovNet(tmp_path / "net", governance=False) as net:
        said = Agora(net).fails(1, "validator", "vote", "--from", "node0", "1", "yes")
    assert "has no governance contract" in said and "fixed at genesis" in said
