"""The governance API (``proposals``, ``evidence``) of the node's real RPC stack over a
chain of five validators (gov_helpers.GovNet: real executor, index, dispatcher and HTTP
server; blocks certified by the test's validator keys), every step a signed transaction
through broadcast_tx_commit (one block each).

The story, one module-scoped chain (proposal ttl 6 heights):

* #1 add the standby (node5): node0 proposes, node1 yes, node2 no, node3 yes (still
  open: 30 of 50), node4 yes: passed, the set of six in force two heights later;
* #2 node4's power, proposed before #1 passed: void (the set changed since);
* #3 remove node3: two no votes of six validators hold a third: rejected;
* #4 node0's power: left alone past its ttl: expired;
* #5 max_block_gas from a far height: open;
* evidence of node2's double PREPARE and node3's double COMMIT: recorded, each opening
  a removal proposal (#6, #7) proposed by the evidence address.

Then the answers are checked field by field (status, tallies, expiry, votes still
needed), the status filters and paging, a proposal read straight from the state against
the contract's ``proposal`` view, every answer against its OpenRPC result schema, and a
chain without the governance contract answers a clear error.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from gov_helpers import CHAIN, NODES, OUTSIDER, POWER, STANDBY, GovNet
from jsonschema import Draft202012Validator

from chain.address import address_to_text
from chain.block import Vote, VoteKind
from chain.evidence import COMMIT, PREPARE, DoubleSign
from chain.hashing import sha256
from chain.keys import PrivateKey
from chain.system import EVIDENCE_ADDRESS, GOVERNANCE_ADDRESS
from chain.tx import Call, Transaction
from node.rpc import openrpc
from node.rpc.client import RPCFailed, SyncClient
from node.rpc.methods import method_table
from node.rpc.protocol import Codes
from vm.contracts import encode_call
from vm.executor import encode_args

TTL = 6
EVIDENCE_GAS = 2_000_000


def text(key: PrivateKey) -> str:
    return address_to_text(key.address)


class Chain:
    """The client, and a signed call to governance or the evidence address per step."""

    def __init__(self, net: GovNet) -> None:
        self.net = net
        self.client = SyncClient(net.url, timeout=20)
        document = openrpc.document(method_table())
        self.schemas = {m["name"]: Draft202012Validator(
            {**m["result"]["schema"], "components": document["components"]})
            for m in document["methods"]}

    def send(self, key: PrivateKey, action: Call, gas: int = 1_000_000) -> dict[str, Any]:
        nonce = self.client.account(key.address)["pending_nonce"]
        tx = Transaction.create(key, CHAIN, nonce, action, gas_limit=gas, gas_price=1)
        return self.client.broadcast_tx_commit(tx)

    def gov(self, key: PrivateKey, method: str, *args: object) -> dict[str, Any]:
        answer = self.send(key, Call(GOVERNANCE_ADDRESS, method,
                                     encode_call("governance", method, *args), 0))
        receipt = answer["receipt"]
        assert receipt["status"] == "ok", f"{method}: {receipt['reason']}"
        return answer

    def double_sign(self, key: PrivateKey, kind: int, height: int) -> dict[str, Any]:
        """Evidence that ``key`` signed two blocks as ``kind`` at (height, view 0), sent
        by the outsider."""
        pairs = []
        for tag in (b"a", b"b"):
            block_hash = sha256(b"conflict" + tag + key.address)
            vote_kind = VoteKind.PREPARE if kind == PREPARE else VoteKind.COMMIT
            pairs.append((block_hash, Vote.create(key, CHAIN, vote_kind, height, 0,
                                                  block_hash).signature))
        record = DoubleSign.of(kind, height, 0, key.address, *pairs)
        answer = self.send(OUTSIDER, Call(EVIDENCE_ADDRESS, "submit",
                                          encode_args([record.encode()]), 0), EVIDENCE_GAS)
        assert answer["receipt"]["status"] == "ok", answer["receipt"]["reason"]
        return answer

    def rpc(self, method: str, /, **params: Any) -> Any:
        """``method``'s answer, which must match its result schema."""
        answer = self.client.call(method, **params)
        errors = [f"{'/'.join(map(str, e.absolute_path))}: {e.message[:200]}"
                  for e in self.schemas[method].iter_errors(answer)]
        assert errors == [], f"{method}: the answer does not match its schema: {errors}"
        return answer

    def proposal(self, proposal_id: int) -> dict[str, Any]:
        page = self.rpc("proposals", before=str(proposal_id + 1), limit=1)
        assert page["items"][0]["id"] == proposal_id
        return page["items"][0]


@pytest.fixture(scope="module")
def chain(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Chain]:
    with GovNet(tmp_path_factory.mktemp("governance"), ttl=TTL) as net:
        c = Chain(net)
        try:
            yield c
        finally:
            c.client.close()


@pytest.fixture(scope="module")
def story(chain: Chain) -> dict[str, Any]:
    """Run the module docstring's story once; what the tests look back at."""
    c, n = chain, NODES
    out: dict[str, Any] = {}
    fresh = c.rpc("proposals")
    out["fresh"] = fresh
    out["add"] = c.gov(n[0], "propose_add", STANDBY.public_key, POWER, "node5",
                       "cd" * 20 + "@127.0.0.1:9")
    c.gov(n[1], "propose_power", n[4].address, 12)
    c.gov(n[1], "vote", 1, True)
    c.gov(n[2], "vote", 1, False)
    c.gov(n[3], "vote", 1, True)
    out["open_1"] = c.proposal(1)
    out["passing"] = c.gov(n[4], "vote", 1, True)
    c.gov(n[0], "propose_remove", n[3].address)
    c.gov(n[1], "vote", 3, False)
    out["rejecting"] = c.gov(n[2], "vote", 3, False)
    out["expiring"] = c.gov(STANDBY, "propose_power", n[0].address, 12)
    c.net.blocks(TTL + 1)
    out["param"] = c.gov(n[0], "propose_param", "max_block_gas", 5_000_000, 10_000)
    out["evidence_1"] = c.double_sign(n[2], PREPARE, 1)
    out["evidence_2"] = c.double_sign(n[3], COMMIT, 2)
    return out


# ---------------------------------------------------------------------- proposals


def test_a_fresh_chain_has_no_proposals(story: dict[str, Any]) -> None:
    fresh = story["fresh"]
    assert fresh["items"] == [] and fresh["next"] is None
    assert (fresh["count"], fresh["members"], fresh["total_power"], fresh["epoch"],
            fresh["ttl"]) == (0, 5, 5 * POWER, 0, TTL)


def test_an_open_proposal_says_its_tallies_expiry_and_what_it_needs(
        story: dict[str, Any]) -> None:
    p = story["open_1"]
    created = story["add"]["height"]
    assert p == {
        "id": 1, "kind": "add", "status": "open", "validator": text(STANDBY),
        "validator_name": "node5", "public_key": STANDBY.public_key.hex(), "power": POWER,
        "name": "node5", "p2p": "cd" * 20 + "@127.0.0.1:9", "param": "", "value": "0",
        "effective": 0, "proposer": text(NODES[0]), "created": created,
        "expires": created + TTL, "epoch": 0, "yes_power": 30, "no_power": 10,
        "total_power": 50,
        # the least P with 3 x (30 + P) > 2 x 50
        "votes_needed_power": 4}


def test_the_last_yes_vote_passes_it_and_the_set_changes_two_heights_later(
        chain: Chain, story: dict[str, Any]) -> None:
    passing = story["passing"]
    names = [e["name"] for e in passing["receipt"]["events"]]
    assert names == ["Voted", "Passed", "ValidatorUpdate"]
    at = passing["height"]
    p = chain.proposal(1)
    assert (p["status"], p["yes_power"], p["votes_needed_power"]) == ("passed", 40, 0)
    before = chain.rpc("validators", height=at + 1)
    after = chain.rpc("validators", height=at + 2)
    assert text(STANDBY) not in {v["address"] for v in before["validators"]}
    new = next(v for v in after["validators"] if v["address"] == text(STANDBY))
    assert (new["name"], new["power"], new["p2p"]) == ("node5", POWER, "cd" * 20 + "@127.0.0.1:9")
    assert after["since"] == at + 2 and after["total_power"] == 60


def test_statuses_void_rejected_expired_and_open(chain: Chain, story: dict[str, Any]) -> None:
    void, rejected, expired, param = (chain.proposal(i) for i in (2, 3, 4, 5))
    assert (void["kind"], void["status"], void["epoch"]) == ("power", "void", 0)
    assert void["validator"] == text(NODES[4]) and void["validator_name"] == "node4"
    assert void["votes_needed_power"] is None
    assert (rejected["kind"], rejected["status"], rejected["no_power"],
            rejected["validator_name"]) == ("remove", "rejected", 20, "node3")
    assert rejected["votes_needed_power"] is None and rejected["total_power"] == 60
    assert "Rejected" in [e["name"] for e in story["rejecting"]["receipt"]["events"]]
    assert (expired["status"], expired["proposer"]) == ("expired", text(STANDBY))
    assert expired["expires"] == story["expiring"]["height"] + TTL < chain.net.height
    assert param["status"] == "open" and param["kind"] == "param"
    assert (param["validator"], param["param"], param["value"], param["effective"]) == \
        (None, "max_block_gas", "5000000", 10_000)
    assert param["votes_needed_power"] == 41 - 10 and param["epoch"] == 1


def test_filters_by_status(chain: Chain, story: dict[str, Any]) -> None:
    ids = {state: [p["id"] for p in chain.rpc("proposals", state=state)["items"]]
           for state in ("open", "passed", "rejected", "expired", "void")}
    # #6 and #7: the removals the evidence proposed, open
    assert ids == {"open": [7, 6, 5], "passed": [1], "rejected": [3], "expired": [4],
                   "void": [2]}
    page = chain.rpc("proposals", state="open", limit=2)
    assert [p["id"] for p in page["items"]] == [7, 6] and page["next"] == "6"
    page = chain.rpc("proposals", state="open", limit=2, before=page["next"])
    assert [p["id"] for p in page["items"]] == [5]


def test_pages_newest_first(chain: Chain, story: dict[str, Any]) -> None:
    seen, before = [], None
    while True:
        page = chain.rpc("proposals", limit=3, **({"before": before} if before else {}))
        seen.append([p["id"] for p in page["items"]])
        before = page["next"]
        if before is None:
            break
    assert seen == [[7, 6, 5], [4, 3, 2], [1]]
    assert page["count"] == 7 and page["epoch"] == 1 and page["members"] == 6
    assert chain.rpc("proposals", before="1")["items"] == []
    assert [p["id"] for p in chain.rpc("proposals", before="99")["items"]][:1] == [7]


def test_bad_paging_is_refused(chain: Chain) -> None:
    for params, code in (({"limit": 101}, Codes.INVALID_PARAMS),
                         ({"before": "0"}, Codes.INVALID_PARAMS),
                         ({"state": "closed"}, Codes.INVALID_PARAMS)):
        with pytest.raises(RPCFailed) as failed:
            chain.client.call("proposals", **params)
        assert failed.value.code == code, params


def test_proposals_read_from_the_state_are_what_the_view_returns(
        chain: Chain, story: dict[str, Any]) -> None:
    items = {p["id"]: p for p in chain.rpc("proposals", limit=100)["items"]}
    for pid, p in items.items():
        view = chain.rpc("call", contract="governance", method="proposal", args=[str(pid)])
        v = view["value"]
        assert (p["kind"], int(v["kind"])) in {("add", 1), ("remove", 2), ("power", 3),
                                               ("param", 4)}
        assert p["public_key"] == v["public_key"]
        assert (p["validator"] or "agora1qqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqry2cu5") == \
            v["validator"]
        for field in ("power", "effective", "created", "epoch"):
            assert p[field] == int(v[field]), (pid, field)
        assert (p["yes_power"], p["no_power"]) == (int(v["yes"]), int(v["no"]))
        assert (p["name"], p["p2p"], p["param"], p["value"], p["proposer"]) == \
            (v["name"], v["p2p"], v["param"], v["value"], v["proposer"])
        status = chain.rpc("call", contract="governance", method="status", args=[str(pid)])
        assert ["open", "passed", "rejected", "expired", "void"][int(status["value"])] == \
            p["status"], pid


# ---------------------------------------------------------------------- evidence


def test_evidence_lists_double_votes_with_the_removals_they_proposed(
        chain: Chain, story: dict[str, Any]) -> None:
    page = chain.rpc("evidence")
    assert page["next"] is None and page["validator"] is None
    second, first = page["items"]
    recorded = story["evidence_1"]
    assert [e["name"] for e in recorded["receipt"]["events"]][:2] == ["Equivocation",
                                                                      "Proposed"]
    assert first["height"] == recorded["height"] and first["tx_hash"] == recorded["hash"]
    assert (first["validator"], first["validator_name"], first["signed_height"],
            first["view"], first["kind"], first["proposal_id"]) == \
        (text(NODES[2]), "node2", 1, 0, "prepare", 6)
    assert first["hash_a"] < first["hash_b"]
    record = DoubleSign.decode(bytes.fromhex(first["raw"]))
    assert (record.hash_a.hex(), record.hash_b.hex()) == (first["hash_a"], first["hash_b"])
    assert (second["validator_name"], second["kind"], second["signed_height"],
            second["proposal_id"]) == ("node3", "commit", 2, 7)
    removal = chain.proposal(6)
    assert (removal["kind"], removal["validator"], removal["proposer"], removal["yes_power"]) \
        == ("remove", text(NODES[2]), address_to_text(EVIDENCE_ADDRESS), 0)


def test_evidence_filters_and_pages(chain: Chain, story: dict[str, Any]) -> None:
    only = chain.rpc("evidence", validator=text(NODES[2]))
    assert [e["validator_name"] for e in only["items"]] == ["node2"]
    assert only["validator"] == text(NODES[2])
    assert chain.rpc("evidence", validator=text(NODES[0]))["items"] == []
    page = chain.rpc("evidence", limit=1)
    assert [e["validator_name"] for e in page["items"]] == ["node3"] and page["next"]
    rest = chain.rpc("evidence", limit=1, before=page["next"])
    assert [e["validator_name"] for e in rest["items"]] == ["node2"] and rest["next"] is None
    h = story["evidence_1"]["height"]
    ranged = chain.rpc("evidence", from_height=h, to_height=h)
    assert [e["validator_name"] for e in ranged["items"]] == ["node2"]
    assert (ranged["from_height"], ranged["to_height"]) == (h, h)
    assert chain.rpc("evidence", to_height=h - 1)["items"] == []
    with pytest.raises(RPCFailed) as failed:
        chain.client.call("evidence", from_height=h, to_height=h - 1)
    assert failed.value.code == Codes.NOT_ANSWERABLE


def test_client_helpers(chain: Chain, story: dict[str, Any]) -> None:
    assert [p["id"] for p in chain.client.proposals(state="passed")["items"]] == [1]
    assert len(chain.client.evidence(validator=NODES[3].address)["items"]) == 1
    assert [e["proposal_id"] for e in chain.client.pages("evidence", limit=1)] == [7, 6]


# ---------------------------------------------------------------------- no governance


def test_a_chain_without_governance_says_so(tmp_path: Path) -> None:
    with GovNet(tmp_path, governance=False) as net:
        client = SyncClient(net.url, timeout=20)
        with pytest.raises(RPCFailed) as failed:
            client.proposals()
        assert failed.value.code == Codes.NOT_ANSWERABLE
        assert "no governance contract" in str(failed.value.data)
        assert client.evidence()["items"] == []
        client.close()
