"""What must hold after every fault run, read from the nodes over JSON-RPC only.

:func:`check` reads every node's chain and state and raises
:class:`InvariantViolation` (an AssertionError) naming the first thing that is wrong:

1. Agreement: every node holds the same block (hash) at every height both hold, the
   blocks link up (``prev_hash``, each block's ``last_commit`` certifies its parent),
   every node's commit certificate of a height is for that height's block, and the
   state root each node's own state tree has at a height is the root in the header.
2. Transactions: no transaction is in the chain twice; each sender's transactions carry
   nonces 0, 1, 2, ... in chain order; every transaction acknowledged by
   ``broadcast_tx_commit`` is in the chain exactly once, where the acknowledgement said,
   on every node.
3. Accounts: at the highest height all nodes hold, every account seen (genesis,
   contracts, validators, every sender, recipient and proposer in the chain) has the
   same nonce and balance on every node; its nonce is the count of its transactions.
4. Coin: the sum of those balances is the genesis supply (fees move coin from senders
   to proposers, nothing else mints or burns); when the chain holds only native
   transfers, every balance is exactly what replaying them from genesis gives —
   amounts moved, ``gas_used * gas_price`` paid by each sender and credited to the
   block's proposer.
5. Reward token: ``total_supply`` equals ``reserve`` (the coin the token contract
   holds) on every node, the nodes agree on both and on every account's token
   balance, and those balances add up to the supply.
6. Indexes: every node's ``account_history`` of every account seen is the same (up
   to the common height), lists only transactions that are in the chain where it
   says, and holds every transaction the account sent or received as a transfer.

Reads go as JSON-RPC batches (one HTTP request per hundred calls) on one session.
"""

from __future__ import annotations

import asyncio
from collections import Counter, defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import aiohttp

#: Most calls in one JSON-RPC batch (the node's default ``rpc.max_batch``).
BATCH = 100
#: A state key proved to read a node's own state root at a height (any key will do:
#: the proof of its absence carries the root).
_PROBE_KEY = "00"


class InvariantViolation(AssertionError):
    """An invariant does not hold; the message says which, where, on which node."""


@dataclass(frozen=True)
class Ack:
    """A transaction ``broadcast_tx_commit`` said was committed at (height, index)."""

    hash: str
    height: int
    index: int

    @classmethod
    def of(cls, result: Mapping[str, Any]) -> Ack:
        return cls(result["hash"], result["height"], result["index"])


@dataclass
class Report:
    """What a check saw (for the test's own assertions and its log)."""

    heights: dict[int, int]
    common_height: int
    reference: int
    blocks: int = 0
    txs: int = 0
    acknowledged: int = 0
    accounts: int = 0
    fees: int = 0
    supply: int = 0
    token_supply: int | None = None
    exact_replay: bool = False
    #: Height -> the validators whose COMMIT is in the reference node's certificate.
    signers: dict[int, set[str]] = field(default_factory=dict, repr=False)
    #: Height -> (proposer, view of its certificate).
    proposers: dict[int, tuple[str, int]] = field(default_factory=dict, repr=False)

    def signed_after(self, validator: str, height: int) -> list[int]:
        """Heights above ``height`` whose certificate carries ``validator``'s COMMIT."""
        return sorted(h for h, who in self.signers.items() if h > height and validator in who)


class RPC:
    """JSON-RPC batches to the nodes, on one aiohttp session."""

    def __init__(self, timeout: float = 60.0) -> None:
        self._session = aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=timeout))

    async def close(self) -> None:
        await self._session.close()

    async def __aenter__(self) -> RPC:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    async def call(self, url: str, method: str, **params: Any) -> Any:
        return (await self.batch(url, [(method, params)]))[0]

    async def batch(self, url: str, calls: Sequence[tuple[str, dict[str, Any]]],
                    size: int = BATCH) -> list[Any]:
        """The results of ``calls`` in order, ``size`` to a request; an error in any
        raises."""
        out: list[Any] = []
        for start in range(0, len(calls), size):
            chunk = calls[start:start + size]
            body = [{"jsonrpc": "2.0", "id": i, "method": m, "params": p}
                    for i, (m, p) in enumerate(chunk)]
            async with self._session.post(url, json=body) as response:
                if response.status != 200:
                    raise InvariantViolation(f"{url} answered HTTP {response.status}: "
                                             f"{(await response.text())[:300]}")
                answers = await response.json()
            if not isinstance(answers, list):
                raise InvariantViolation(f"{url} answered a batch with {answers!r:.300}")
            by_id = {a.get("id"): a for a in answers}
            for i, (method, params) in enumerate(chunk):
                answer = by_id.get(i)
                if answer is None or "error" in answer:
                    raise InvariantViolation(
                        f"{url}: {method}({params}) failed: "
                        f"{answer.get('error') if answer else 'no answer'}")
                out.append(answer["result"])
        return out


def genesis_supply(genesis: Mapping[str, Any]) -> tuple[dict[str, int], int]:
    """(address -> coin at genesis, total) from a genesis document: the funded
    accounts and the contracts' own balances."""
    balances: dict[str, int] = defaultdict(int)
    for entry in genesis.get("balances", []):
        balances[entry["address"]] += int(entry["amount"])
    for contract in genesis.get("contracts", []):
        balances[contract["address"]] += int(contract.get("balance", "0"))
    return dict(balances), sum(balances.values())


async def check(urls: Mapping[int, str], genesis: Mapping[str, Any], *,
                acknowledged: Iterable[Ack] = (), accounts: Iterable[str] = (),
                min_height: int = 1, state_roots: bool = True) -> Report:
    """Check every invariant over the nodes at ``urls`` (index -> RPC URL), all of
    which must answer. ``genesis`` is the genesis document (genesis.json);
    ``accounts`` more addresses (agora1...) to check beyond those the chain shows.
    ``state_roots``: also read each node's own state root at every height (a proof
    per height per node)."""
    async with RPC() as rpc:
        return await _check(rpc, dict(urls), genesis, list(acknowledged), set(accounts),
                            min_height, state_roots)


def _fail(message: str) -> InvariantViolation:
    return InvariantViolation(message)


async def _check(rpc: RPC, urls: dict[int, str], genesis: Mapping[str, Any], acks: list[Ack],
                 extra: set[str], min_height: int, state_roots: bool) -> Report:
    statuses = dict(zip(urls, await asyncio.gather(*(rpc.call(u, "status") for u in urls.values())),
                        strict=True))
    heights = {i: s["height"] for i, s in statuses.items()}
    for i, s in statuses.items():
        first = next(iter(statuses.values()))
        if (s["chain_id"], s["genesis_hash"]) != (first["chain_id"], first["genesis_hash"]):
            raise _fail(f"node{i} runs chain {s['chain_id']} genesis {s['genesis_hash']}, "
                        f"not {first['chain_id']} {first['genesis_hash']}")
    genesis_hash = next(iter(statuses.values()))["genesis_hash"]
    ref = max(heights, key=lambda i: heights[i])
    top, common = heights[ref], min(heights.values())
    if common < min_height:
        raise _fail(f"the nodes are at heights {heights}: below {min_height}")
    report = Report(heights, common, ref)

    # 1. The reference chain links up, and every node holds the same blocks.
    # Whole blocks: a few to a request, so a page of full blocks stays under the node's
    # answer size limit.
    blocks = await rpc.batch(urls[ref], [("block", {"height": h}) for h in range(1, top + 1)],
                             size=10)
    report.blocks = len(blocks)
    hashes = {0: genesis_hash}
    for h, block in enumerate(blocks, start=1):
        header = block["header"]
        if header["height"] != h or block["hash"] != header["hash"]:
            raise _fail(f"node{ref}: block {h} is {header['height']} / {block['hash']}")
        if header["prev_hash"] != hashes[h - 1]:
            raise _fail(f"node{ref}: block {h} does not link to block {h - 1}")
        last = block["last_commit"]
        if h > 1 and (last is None or last["height"] != h - 1
                      or last["block_hash"] != hashes[h - 1]):
            raise _fail(f"node{ref}: block {h} does not carry block {h - 1}'s certificate")
        hashes[h] = block["hash"]
    roots = {h: b["header"]["state_root"] for h, b in enumerate(blocks, start=1)}

    async def same_chain(i: int) -> None:
        span = range(1, heights[i] + 1)
        headers = await rpc.batch(urls[i], [("header", {"height": h}) for h in span])
        for h, header in zip(span, headers, strict=True):
            if (header["hash"], header["state_root"]) != (hashes[h], roots[h]):
                raise _fail(f"node{i} and node{ref} disagree at height {h}: "
                            f"{header['hash']} / {hashes[h]} (state roots "
                            f"{header['state_root']} / {roots[h]})")
        commits = await rpc.batch(urls[i], [("commit", {"height": h}) for h in span])
        for h, commit in zip(span, commits, strict=True):
            if commit["height"] != h or commit["block_hash"] != hashes[h]:
                raise _fail(f"node{i}'s certificate of height {h} is for "
                            f"{commit['block_hash']}, the block is {hashes[h]}")
            if i == ref:
                report.signers[h] = {s["validator"] for s in commit["signatures"]}
                report.proposers[h] = (blocks[h - 1]["header"]["proposer"], commit["view"])
        if state_roots:
            proofs = await rpc.batch(urls[i], [("proof", {"keys": [_PROBE_KEY], "height": h})
                                              for h in span])
            for h, proof in zip(span, proofs, strict=True):
                own = proof["state"][0]["state_root"]
                if own != roots[h]:
                    raise _fail(f"node{i}'s state tree at height {h} has root {own}, its "
                                f"block says {roots[h]}")

    await asyncio.gather(*(same_chain(i) for i in urls))

    # 2. Transactions: once each, nonces in order, acknowledged ones where promised.
    position: dict[str, tuple[int, int]] = {}
    count: Counter[str] = Counter()
    txs: list[tuple[int, dict[str, Any]]] = []
    next_nonce: dict[str, int] = defaultdict(int)
    for h, block in enumerate(blocks, start=1):
        for index, tx in enumerate(block["txs"]):
            count[tx["hash"]] += 1
            position[tx["hash"]] = (h, index)
            txs.append((h, tx))
            if tx["nonce"] != next_nonce[tx["sender"]]:
                raise _fail(f"block {h} tx {index}: {tx['sender']} nonce {tx['nonce']}, "
                            f"expected {next_nonce[tx['sender']]}")
            next_nonce[tx["sender"]] += 1
    report.txs = len(txs)
    twice = [h for h, n in count.items() if n > 1]
    if twice:
        raise _fail(f"transactions in the chain more than once: {twice[:5]}")
    for ack in acks:
        if count[ack.hash] != 1:
            raise _fail(f"acknowledged tx {ack.hash} (height {ack.height}) is in the chain "
                        f"{count[ack.hash]} times")
        if position[ack.hash] != (ack.height, ack.index):
            raise _fail(f"acknowledged tx {ack.hash} was promised at {ack.height}:{ack.index}, "
                        f"the chain has it at {position[ack.hash]}")
    report.acknowledged = len(acks)
    for i in urls:
        mine = [a for a in acks if a.height <= heights[i]]
        found = await rpc.batch(urls[i], [("tx", {"hash": a.hash}) for a in mine])
        for ack, result in zip(mine, found, strict=True):
            if (result["height"], result["index"]) != (ack.height, ack.index):
                raise _fail(f"node{i} has acknowledged tx {ack.hash} at "
                            f"{result['height']}:{result['index']}, not "
                            f"{ack.height}:{ack.index}")

    # 3 and 4. Accounts agree and add up at the common height.
    validators = await rpc.call(urls[ref], "validators")
    start, supply = genesis_supply(genesis)
    seen: set[str] = set(start) | {v["address"] for v in validators["validators"]} | extra
    for block in blocks:
        seen.add(block["header"]["proposer"])
        for tx in block["txs"]:
            seen.add(tx["sender"])
            if tx["action"]["type"] == "transfer":
                seen.add(tx["action"]["to"])
            elif tx["action"]["type"] == "call":
                seen.add(tx["action"]["contract"])
                for value in (tx["action"].get("decoded_args") or {}).values():
                    if isinstance(value, str) and value.startswith("agora1"):
                        seen.add(value)
    addresses = sorted(seen)
    states: dict[int, dict[str, tuple[int, int]]] = {}
    for i in urls:
        answers = await rpc.batch(urls[i], [("account", {"address": a, "height": common})
                                           for a in addresses])
        states[i] = {a: (r["nonce"], int(r["balance"]))
                     for a, r in zip(addresses, answers, strict=True)}
    for i, state in states.items():
        if state != states[ref]:
            diff = [(a, state[a], states[ref][a]) for a in addresses if state[a] != states[ref][a]]
            raise _fail(f"node{i} and node{ref} disagree on accounts at height {common}: "
                        f"{diff[:5]}")
    report.accounts = len(addresses)
    state = states[ref]
    total = sum(balance for _, balance in state.values())
    report.supply = total
    if total != supply:
        raise _fail(f"coin at height {common} is {total}, genesis made {supply} "
                    f"(difference {total - supply})")
    committed = [(h, tx) for h, tx in txs if h <= common]
    sent = Counter(tx["sender"] for _, tx in committed)
    for address, (nonce, _) in state.items():
        if nonce != sent[address]:
            raise _fail(f"{address} has nonce {nonce} at height {common}, the chain holds "
                        f"{sent[address]} of its transactions")
    receipts = await rpc.batch(urls[ref], [("tx", {"hash": tx["hash"]}) for _, tx in committed])
    fees = [r["receipt"]["gas_used"] * tx["gas_price"]
            for (_, tx), r in zip(committed, receipts, strict=True)]
    report.fees = sum(fees)
    if all(tx["action"]["type"] == "transfer" for _, tx in committed):
        expected: dict[str, int] = defaultdict(int, start)
        for (h, tx), receipt, fee in zip(committed, receipts, fees, strict=True):
            expected[tx["sender"]] -= fee
            expected[blocks[h - 1]["header"]["proposer"]] += fee
            if receipt["receipt"]["status"] == "ok":
                amount = int(tx["action"]["amount"])
                expected[tx["sender"]] -= amount
                expected[tx["action"]["to"]] += amount
        wrong = [(a, state[a][1], expected[a]) for a in addresses if state[a][1] != expected[a]]
        if wrong:
            raise _fail(f"balances at height {common} are not what the chain's transfers "
                        f"and fees make them (address, node's, replayed): {wrong[:5]}")
        report.exact_replay = True

    # 5. The reward token is backed one to one, on every node.
    token = {}
    for i in urls:
        supply_call, reserve_call = await rpc.batch(urls[i], [
            ("call", {"contract": "token", "method": "total_supply", "height": common}),
            ("call", {"contract": "token", "method": "reserve", "height": common})])
        for call in (supply_call, reserve_call):
            if call["status"] != "ok":
                raise _fail(f"node{i}: token.{call['method']} at {common}: {call['reason']}")
        token[i] = (int(supply_call["value"]), int(reserve_call["value"]),
                    supply_call["contract"])
    token_supply, reserve, token_address = token[ref]
    for i, values in token.items():
        if values != token[ref]:
            raise _fail(f"node{i} and node{ref} disagree on the token at {common}: "
                        f"{values} / {token[ref]}")
    if token_supply != reserve:
        raise _fail(f"token supply {token_supply} != reserve {reserve} at height {common}")
    if token_address in state and state[token_address][1] != reserve:
        raise _fail(f"the token's reserve {reserve} is not its coin balance "
                    f"{state[token_address][1]}")
    holdings: dict[int, list[int]] = {}
    for i in urls:
        answers = await rpc.batch(urls[i], [("token_balance", {"address": a, "height": common})
                                           for a in addresses])
        holdings[i] = [int(r["balance"]) for r in answers]
    for i, held in holdings.items():
        if held != holdings[ref]:
            diff = [(a, x, y) for a, x, y in zip(addresses, held, holdings[ref], strict=True)
                    if x != y]
            raise _fail(f"node{i} and node{ref} disagree on token balances at {common}: "
                        f"{diff[:5]}")
    if sum(holdings[ref]) != token_supply:
        raise _fail(f"token balances of every account seen add up to {sum(holdings[ref])}, "
                    f"the supply is {token_supply}")
    report.token_supply = token_supply

    # 6. The account history index: the same on every node, only chain transactions,
    # and every one an account sent or received as a native transfer.
    touched: dict[str, set[tuple[str, int, int]]] = defaultdict(set)
    for _, tx in committed:
        entry = (tx["hash"], *position[tx["hash"]])
        touched[tx["sender"]].add(entry)
        if tx["action"]["type"] == "transfer":
            touched[tx["action"]["to"]].add(entry)
    histories: dict[int, dict[str, list[tuple[str, int, int]]]] = {}
    for i in urls:
        histories[i] = {a: await _history(rpc, urls[i], a, common) for a in addresses}
    for i, history in histories.items():
        for a in addresses:
            if history[a] != histories[ref][a]:
                raise _fail(f"node{i} and node{ref} disagree on the history of {a} up to "
                            f"{common}: {len(history[a])} / {len(histories[ref][a])} entries")
            for tx_hash, h, index in history[a]:
                if position.get(tx_hash) != (h, index):
                    raise _fail(f"node{i}'s history of {a} lists {tx_hash} at {h}:{index}, "
                                f"the chain has it at {position.get(tx_hash)}")
            missing = touched[a] - set(history[a])
            if missing:
                raise _fail(f"node{i}'s history of {a} lacks {len(missing)} of its "
                            f"transactions, e.g. {sorted(missing)[:3]}")
    return report


async def _history(rpc: RPC, url: str, address: str, upto: int) -> list[tuple[str, int, int]]:
    """An account's history up to height ``upto``, newest first, every page."""
    out: list[tuple[str, int, int]] = []
    params: dict[str, Any] = {"address": address, "limit": 100}
    while True:
        page = await rpc.call(url, "account_history", **params)
        out += [(e["hash"], e["height"], e["index"]) for e in page["items"]
                if e["height"] <= upto]
        if not page.get("next"):
            return out
        params["before"] = page["next"]
