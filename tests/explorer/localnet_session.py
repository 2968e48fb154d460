"""A real localnet with a scripted commerce session on it, for the explorer's tests.

:func:`scripted_localnet` initialises and starts ``agora localnet`` (four validators on
free ports, the fast consensus timeouts of the governance e2e test), then plays a
session through the ``agora`` wallet, each step a real ``agora ... --json`` subprocess
as a shopper, a merchant or an arbiter would type it. Steps that wait on nobody run at
the same time; steps of one key run one after another (as the wallet would make them
anyway). It yields :class:`SessionFacts`, what the session left on chain, for tests to
look for in the explorer's pages. Every wait is bounded; every process is stopped at
the end, whatever happened.

The session (ORDERS, REVIEWS, ... below): a new shopper, ``carol`` (``agora keys new``,
an encrypted key, funded by ``buyer`` with a transfer); the merchant's new listing
"Tea set"; orders on it that end completed (A, bought by ``buyer`` on ``referrer``'s
referral), returned and refunded (B, ``referrer``), disputed and resolved by the
arbiter (C, ``buyer``), declined (D, ``referrer``), and one left paid, waiting for the
merchant to ship (E, ``buyer``, two units: its deadline runs); a group deal on the
genesis tea listing that ``buyer`` starts and ``referrer`` and ``carol`` fill (their
orders paid, waiting to ship); reviews of A (English), B (Chinese) and C, the merchant
replying to A and B. (A declined order cannot be reviewed: it was never shipped.)

Async tests::

    async with scripted_localnet(tmp_path) as facts:
        ...

Sync tests (Selenium is sync), one chain for a whole module::

    @pytest.fixture(scope="module")
    def chain(tmp_path_factory):
        with scripted_localnet_in_thread(tmp_path_factory.mktemp("chain")) as facts:
            yield facts
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import heapq
import json
import os
import subprocess
import sys
import threading
import time
from collections import defaultdict
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from test_governance_localnet import FAST, REPO, WAIT, Localnet, cli_ok

from node import localnet
from node.home import Home

#: The new shopper's key is encrypted like anyone's; the wallet reads this from
#: AGORA_PASSPHRASE (the localnet's demo keys need none).
PASSPHRASE = "oolong-at-dawn"
LISTING_TITLE = "Tea set"
LISTING_DESCRIPTION = "A porcelain tea set: a teapot, six cups and a tray. 白瓷茶具一套。"
LISTING_PRICE = "12.5"
#: The genesis demo listing with a group deal (node/localnet.py, vm.contracts.publish_demo).
GROUP_LISTING = 2
#: The most the whole session may take once the chain runs (each step is bounded by WAIT).
SESSION_LIMIT = 240.0


@dataclass(frozen=True)
class Tx:
    """A committed transaction."""

    hash: str
    height: int


@dataclass(frozen=True)
class OrderFact:
    """One order of the session and what should be true of it at the end."""

    #: completed, returned, disputed, declined, open, or group-<member>
    role: str
    order_id: int
    listing_id: int
    buyer: str  # key name (SessionFacts.addresses has its address)
    quantity: int
    #: its final state, as the RPC method ``order`` says it ("completed", "paid", ...)
    state: str
    #: each step's transaction, in the order they happened ("place", "ship", ...)
    txs: dict[str, Tx]
    referrer: str | None = None
    tracking: str = ""
    return_tracking: str = ""
    #: the deadline running at the end (ms since the epoch; 0 for an ended order)
    deadline_ms: int = 0
    group_id: int = 0


@dataclass(frozen=True)
class ReviewFact:
    order_id: int
    author: str  # key name
    rating: int
    text: str
    tx: Tx
    reply: str | None = None
    reply_tx: Tx | None = None


@dataclass
class SessionFacts:
    """What the scripted session left on chain (names are key names; ``addresses``
    maps each to its ``agora1...`` address)."""

    home: Path
    chain_id: str
    rpc_urls: list[str]
    addresses: dict[str, str]
    listing_id: int
    listing_title: str
    listing_description: str
    listing_price: str  # in AGO, as typed ("12.5")
    listing_txs: list[Tx]  # create, then set_commissions
    group_listing_id: int
    group_listing_title: str
    group_id: int
    group_state: str  # "filled"
    #: by role: completed, returned, disputed, declined, open, group-buyer, group-...
    orders: dict[str, OrderFact]
    #: by order id
    reviews: dict[int, ReviewFact]
    #: the place-order transaction of the completed order (A)
    place_tx: Tx
    #: buyer's transfer of 500 AGO to the new shopper (carol), with its memo
    transfer_tx: Tx
    transfer_memo: str
    #: the arbiter's ruling on the disputed order: the buyer's share ("60%")
    dispute_to_buyer: str
    #: the chain's height when the session ended (every node has reached it)
    height: int
    #: seconds: init, start (to the first block), session, total
    timings: dict[str, float]
    #: each step's start and end, in seconds from the session's start
    step_spans: dict[str, tuple[float, float]] = field(repr=False)
    #: each step's --json answer, by step name ("A.place", "B.ship", "fund.carol", ...)
    outputs: dict[str, dict[str, Any]] = field(repr=False)
    #: the running localnet (its logs; its RPC clients belong to the event loop that
    #: started it: in a sync test make your own); closed by the context manager
    net: Localnet = field(repr=False, compare=False)

    @property
    def names(self) -> dict[str, str]:
        """Address -> key name."""
        return {a: n for n, a in self.addresses.items()}

    @property
    def order_states(self) -> dict[int, str]:
        """Every order of the session (group members' too) -> its final state."""
        return {o.order_id: o.state for o in self.orders.values()}

    def explorer_url(self, node: int = 0, path: str = "") -> str:
        """The explorer as node ``node`` serves it (``/explorer/`` on its RPC port)."""
        return f"{self.rpc_urls[node]}/explorer/{path.lstrip('/')}"


class SessionFailed(AssertionError):
    """A step of the session did not do what it should."""


# ---------------------------------------------------------------------- the script


#: the --json answers of the steps done so far, by step name
Answers = dict[str, dict[str, Any]]
#: a step's command line, made from the answers of the steps before it
Args = Callable[[Answers], list[str]]


@dataclass(frozen=True)
class Step:
    name: str
    actor: str  # whose key signs: steps of one actor run one at a time
    after: tuple[str, ...]
    args: Args
    chain: bool = True  # talks to the node (--node); False: a local keystore command


#: A new shopper: `agora keys new` (encrypted, as every real key is), funded by buyer.
NEW_SHOPPER = "carol"
TRANSFER_MEMO = "for the tea party"
TRACKING = {"A": "SF1234567890", "B": "YT9876543210", "C": "ZTO5550001"}
RETURN_TRACKING = "EMS RR123456789CN"
DISPUTE_TO_BUYER = "60%"
#: order -> (role, buyer, final state, its steps in order)
ORDERS = {
    "A": ("completed", "buyer", "completed", ("place", "ship", "confirm")),
    "B": ("returned", "referrer", "refunded",
          ("place", "ship", "confirm", "return", "accept-return", "ship-back",
           "confirm-receipt")),
    "C": ("disputed", "buyer", "resolved", ("place", "ship", "dispute", "resolve")),
    "D": ("declined", "referrer", "declined", ("place", "decline")),
    "E": ("open", "buyer", "paid", ("place",)),
}
#: more options of an order's placement
EXTRA_PLACE = {"A": ("--referrer", "referrer"), "E": ("--quantity", "2")}
#: order -> (author, rating, text); only an order that was shipped can be reviewed
REVIEWS = {
    "A": ("buyer", 5, "Beautiful tea set, carefully packed; it arrived in two days."),
    "B": ("referrer", 3, "茶具很漂亮，但颜色和图片不一样，退货很顺利。"),
    "C": ("buyer", 2, "One cup arrived chipped; the arbiter split it fairly."),
}
REPLIES = {"A": "Thank you, enjoy your tea!", "B": "谢谢您的反馈，欢迎再来！"}
#: the group deal's members in the order they join: the first starts it (its leader)
GROUP_MEMBERS = ("buyer", "referrer", NEW_SHOPPER)


def _script() -> list[Step]:
    """The session's steps. Of the steps of one actor that are ready at once, the one
    listed first goes first: the longest chains (B's) come first."""
    def oid(x: str) -> Callable[[Answers], str]:
        return lambda r: str(r[f"{x}.place"]["order_id"])

    def listing(r: Answers) -> str:
        return str(r["listing"]["listing_id"])

    def group(r: Answers) -> str:
        return str(r["group.start"]["group_id"])

    A, B, C, D, _ = (oid(x) for x in "ABCDE")
    who = {x: ORDERS[x][1] for x in ORDERS}
    new = NEW_SHOPPER
    funded = f"fund.{new}"

    def needs(buyer: str, *steps: str) -> tuple[str, ...]:
        return (*steps, funded) if buyer == new else steps

    def place(x: str) -> Args:
        return lambda r: ["order", "place", listing(r), "--from", who[x],
                          *EXTRA_PLACE.get(x, ())]

    def join(member: str) -> Args:
        return lambda r: ["group", "join", group(r), "--from", member]

    def review(x: str) -> Args:
        author, rating, text = REVIEWS[x]
        return lambda r: ["review", "post", oid(x)(r), "--from", author, "--rating",
                          str(rating), "--text", text]

    def reply(x: str) -> Args:
        return lambda r: ["review", "reply", oid(x)(r), "--from", "merchant", "--text",
                          REPLIES[x]]

    leader, *joiners = GROUP_MEMBERS
    steps = [
        # -- a new shopper and the merchant's new listing, at once
        Step(f"keys.{new}", new, (), lambda r: ["keys", "new", new], chain=False),
        Step("listing", "merchant", (), lambda r: [
            "listing", "create", "--from", "merchant", "--title", LISTING_TITLE,
            "--price", LISTING_PRICE, "--stock", "50", "--description", LISTING_DESCRIPTION,
            "--arbiter", "arbiter", "--referral", "2%", "--cashback", "1%", "--bounty", "1%"]),
        Step(funded, "buyer", (f"keys.{new}",), lambda r: [
            "transfer", "--from", "buyer", "--to", new, "--amount", "500",
            "--memo", TRANSFER_MEMO]),
        # -- orders on the new listing
        *(Step(f"{x}.place", who[x], needs(who[x], "listing"), place(x)) for x in ORDERS),
        # -- B: shipped, confirmed, returned, shipped back, refunded
        Step("B.ship", "merchant", ("B.place",), lambda r: [
            "order", "ship", B(r), "--from", "merchant", "--tracking", TRACKING["B"]]),
        Step("B.confirm", who["B"], ("B.ship",), lambda r: [
            "order", "confirm", B(r), "--from", who["B"]]),
        Step("B.return", who["B"], ("B.confirm",), lambda r: [
            "order", "return", B(r), "--from", who["B"]]),
        Step("B.accept-return", "merchant", ("B.return",), lambda r: [
            "order", "accept-return", B(r), "--from", "merchant"]),
        Step("B.ship-back", who["B"], ("B.accept-return",), lambda r: [
            "order", "ship-back", B(r), "--from", who["B"], "--tracking", RETURN_TRACKING]),
        Step("B.confirm-receipt", "merchant", ("B.ship-back",), lambda r: [
            "order", "confirm-receipt", B(r), "--from", "merchant"]),
        # -- C: shipped, disputed by its buyer, resolved by the arbiter
        Step("C.ship", "merchant", ("C.place",), lambda r: [
            "order", "ship", C(r), "--from", "merchant", "--tracking", TRACKING["C"]]),
        Step("C.dispute", who["C"], ("C.ship",), lambda r: [
            "order", "dispute", C(r), "--from", who["C"]]),
        Step("C.resolve", "arbiter", ("C.dispute",), lambda r: [
            "order", "resolve", C(r), "--from", "arbiter", "--to-buyer", DISPUTE_TO_BUYER]),
        # -- A: shipped, confirmed with the return window waived: completed at once
        Step("A.ship", "merchant", ("A.place",), lambda r: [
            "order", "ship", A(r), "--from", "merchant", "--tracking", TRACKING["A"]]),
        Step("A.confirm", who["A"], ("A.ship",), lambda r: [
            "order", "confirm", A(r), "--from", who["A"], "--waive-return"]),
        # -- D: declined; E stays paid, waiting for the merchant to ship
        Step("D.decline", "merchant", ("D.place",), lambda r: [
            "order", "decline", D(r), "--from", "merchant"]),
        # -- the group deal on the genesis tea listing: started, then filled
        Step("group.start", leader, needs(leader), lambda r: [
            "group", "join", "--listing", str(GROUP_LISTING), "--from", leader]),
        *(Step(f"group.{m}", m, needs(m, "group.start"), join(m)) for m in joiners),
    ]
    ended = {"A": "A.confirm", "B": "B.confirm-receipt", "C": "C.resolve"}
    steps += [Step(f"{x}.review", REVIEWS[x][0], (ended[x],), review(x)) for x in REVIEWS]
    steps += [Step(f"{x}.reply", "merchant", (f"{x}.review",), reply(x)) for x in REPLIES]
    return steps


class _Turns:
    """One step at a time for one actor (its key's nonce); of the steps waiting, the
    one of the lowest rank goes next."""

    def __init__(self) -> None:
        self.busy = False
        self.waiting: list[tuple[int, asyncio.Future[None]]] = []

    async def take(self, rank: int) -> None:
        if not self.busy:
            self.busy = True
            return
        turn: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        heapq.heappush(self.waiting, (rank, turn))
        try:
            await turn
        except asyncio.CancelledError:
            if turn.done() and not turn.cancelled():  # handed the turn as we were cancelled
                self.release()
            raise

    def release(self) -> None:
        while self.waiting:
            _, turn = heapq.heappop(self.waiting)
            if not turn.done():
                turn.set_result(None)  # still busy: it is that step's turn
                return
        self.busy = False


class _Runner:
    """Runs the script's steps as `agora` subprocesses, each as soon as the steps it
    waits for are done and its actor is free."""

    def __init__(self, net: Localnet, node: int = 0) -> None:
        self.net = net
        self.url = net.infos[node].rpc
        self.env = {**net.env, "AGORA_PASSPHRASE": PASSPHRASE}
        self.turns: defaultdict[str, _Turns] = defaultdict(_Turns)
        self.results: dict[str, dict[str, Any]] = {}
        self.done: dict[str, asyncio.Event] = {}
        self.t0 = time.monotonic()
        #: each step's start and end, in seconds from the session's start
        self.spans: dict[str, tuple[float, float]] = {}

    async def agora(self, step: Step) -> dict[str, Any]:
        args = step.args(self.results)
        command = [sys.executable, "-m", "cli", *args, "--home", str(self.net.home), "--json"]
        if step.chain:
            command += ["--node", self.url]
        started = time.monotonic()
        proc = await asyncio.create_subprocess_exec(
            *command, cwd=REPO, env=self.env, stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        try:
            async with asyncio.timeout(WAIT):
                out, err = await proc.communicate()
        except TimeoutError:
            raise SessionFailed(f"step {step.name}: `agora {' '.join(args)}` took more than "
                                f"{WAIT:g} s") from None
        finally:
            if proc.returncode is None:  # timed out or cancelled: it goes too
                proc.kill()
                await proc.wait()
        self.spans[step.name] = (started - self.t0, time.monotonic() - self.t0)
        result = subprocess.CompletedProcess(command, proc.returncode or 0,
                                             out.decode(errors="replace"),
                                             err.decode(errors="replace"))
        try:
            return cli_ok(result)
        except (AssertionError, ValueError) as exc:  # a refusal, or no JSON
            raise SessionFailed(f"step {step.name}: `agora {' '.join(args)}` failed: "
                                f"{exc}") from None

    async def run(self, step: Step, rank: int) -> None:
        for name in step.after:
            await self.done[name].wait()
        turns = self.turns[step.actor]
        await turns.take(rank)
        try:
            self.results[step.name] = await self.agora(step)
        finally:
            turns.release()
        self.done[step.name].set()

    async def run_all(self, steps: list[Step]) -> None:
        self.done = {s.name: asyncio.Event() for s in steps}
        try:
            async with asyncio.timeout(SESSION_LIMIT), asyncio.TaskGroup() as group:
                for rank, step in enumerate(steps):
                    group.create_task(self.run(step, rank), name=step.name)
        except* SessionFailed as failed:
            raise failed.exceptions[0] from None
        except* TimeoutError:
            waiting = [s.name for s in steps if not self.done[s.name].is_set()]
            raise SessionFailed(f"the session took more than {SESSION_LIMIT:g} s; steps "
                                f"not done: {', '.join(waiting)}") from None


def _option(args: tuple[str, ...], name: str) -> str | None:
    return args[args.index(name) + 1] if name in args else None


def _tx(answer: dict[str, Any]) -> Tx:
    return Tx(answer["tx"]["hash"], int(answer["tx"]["height"]))


def _facts(net: Localnet, runner: _Runner, height: int, group_title: str,
           timings: dict[str, float]) -> SessionFacts:
    r = runner.results
    manifest = json.loads((net.home / "localnet.json").read_text())
    addresses = {a["name"]: a["address"] for a in manifest["accounts"]}
    addresses[NEW_SHOPPER] = r[f"keys.{NEW_SHOPPER}"]["address"]
    listing_id = int(r["listing"]["listing_id"])
    orders: dict[str, OrderFact] = {}
    for key, (role, buyer, state, steps) in ORDERS.items():
        placed = r[f"{key}.place"]
        last = r[f"{key}.{steps[-1]}"]["order"]
        orders[role] = OrderFact(
            role=role, order_id=int(placed["order_id"]), listing_id=listing_id, buyer=buyer,
            quantity=int(placed["order"]["quantity"]), state=state,
            txs={s: _tx(r[f"{key}.{s}"]) for s in steps},
            referrer=_option(EXTRA_PLACE.get(key, ()), "--referrer"),
            tracking=TRACKING.get(key, ""),
            return_tracking=RETURN_TRACKING if key == "B" else "",
            deadline_ms=int(last["deadline"]) if state == "paid" else 0)
    group_id = int(r["group.start"]["group_id"])
    joins = [r["group.start"]] + [r[f"group.{m}"] for m in GROUP_MEMBERS[1:]]
    for member, joined in zip(GROUP_MEMBERS, joins, strict=True):
        orders[f"group-{member}"] = OrderFact(
            role=f"group-{member}", order_id=int(joined["order_id"]),
            listing_id=GROUP_LISTING, buyer=member, quantity=1, state="paid",
            txs={"join": _tx(joined)}, group_id=group_id)
    reviews = {}
    for key, (author, rating, text) in REVIEWS.items():
        oid = orders[ORDERS[key][0]].order_id
        reviews[oid] = ReviewFact(
            order_id=oid, author=author, rating=rating, text=text,
            tx=_tx(r[f"{key}.review"]), reply=REPLIES.get(key),
            reply_tx=_tx(r[f"{key}.reply"]) if key in REPLIES else None)
    last_join = max(joins, key=lambda j: _tx(j).height)
    return SessionFacts(
        home=net.home, chain_id=manifest["chain_id"], rpc_urls=[i.rpc for i in net.infos],
        addresses=addresses, listing_id=listing_id, listing_title=LISTING_TITLE,
        listing_description=LISTING_DESCRIPTION, listing_price=LISTING_PRICE,
        listing_txs=[Tx(t["hash"], int(t["height"])) for t in r["listing"]["txs"]],
        group_listing_id=GROUP_LISTING,
        group_listing_title=group_title,
        group_id=group_id, group_state=last_join["state"], orders=orders, reviews=reviews,
        place_tx=orders["completed"].txs["place"], transfer_tx=_tx(r[f"fund.{NEW_SHOPPER}"]),
        transfer_memo=TRANSFER_MEMO, dispute_to_buyer=DISPUTE_TO_BUYER, height=height,
        timings=timings,
        step_spans=dict(runner.spans),
        outputs=dict(r), net=net)


# ---------------------------------------------------------------------- the chain


#: Run in the localnet's runner before it becomes `agora localnet`: the kernel sends it
#: SIGTERM (it then stops its nodes) if the test process dies without stopping it, even
#: by SIGKILL; it stops at once if that has already happened (Linux; elsewhere it only
#: execs). Set here, not in a preexec_fn, which is unsafe in a process with threads.
_LAUNCHER = """
import ctypes, os, signal, sys
if sys.platform.startswith("linux"):
    ctypes.CDLL(None, use_errno=True).prctl(1, int(signal.SIGTERM), 0, 0, 0)  # PDEATHSIG
    if os.getppid() != int(sys.argv[1]):
        sys.exit(0)
os.execv(sys.executable, [sys.executable, *sys.argv[2:]])
"""


class _Localnet(Localnet):
    """The governance test's localnet, whose runner dies with the test process."""

    def start(self) -> None:
        with open(self.home / "runner.log", "a") as log:  # the child has its own copy
            self.proc = subprocess.Popen(
                [sys.executable, "-c", _LAUNCHER, str(os.getpid()), "-m", "cli", "localnet",
                 "--home", str(self.home)],
                cwd=REPO, env=self.env, stdout=log, stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL)


async def _wait_started(net: Localnet) -> None:
    """Until every node has committed a block (at most WAIT seconds); at once, with the
    logs, if a node exits instead (`agora localnet` says so in its log)."""
    runner_log = net.home / "runner.log"

    async def started() -> bool:
        said = runner_log.read_text(errors="replace") if runner_log.exists() else ""
        if "exited with code" in said or (net.proc is not None and net.proc.poll() is not None):
            logs = "\n".join(f"--- node{i.index}\n{net.log(i.index)}" for i in net.infos
                             if (i.home / "node.log").exists())
            raise SessionFailed(f"the localnet did not start:\n{said[-3_000:]}\n{logs}")
        return all([await net.height(i.index) >= 1 for i in net.infos])
    await net.until("every node commits a block", started)


@contextlib.asynccontextmanager
async def scripted_localnet(tmp_path: Path) -> AsyncIterator[SessionFacts]:
    """A running 4-validator localnet in ``tmp_path/localnet`` after the scripted
    session (see the module's docstring); stopped on the way out, whatever happened."""
    t0 = time.monotonic()
    home = tmp_path / "localnet"
    base = localnet.free_base_port(8)
    init = await asyncio.to_thread(
        subprocess.run, [sys.executable, "-m", "cli", "localnet", "init", "--validators", "4",
                         "--home", str(home), "--base-port", str(base)],
        cwd=REPO, capture_output=True, text=True, timeout=WAIT)
    if init.returncode != 0:
        raise SessionFailed(f"agora localnet init failed:\n{init.stdout}\n{init.stderr}")
    for info in localnet.node_infos(home):  # quick heights, quick failure detection
        node_home = Home(info.home)
        node_home.write_config(node_home.config().model_copy(update={"consensus": FAST}))
    timings = {"init": time.monotonic() - t0}
    net = _Localnet(home)
    try:
        net.start()
        await _wait_started(net)
        timings["start"] = time.monotonic() - t0 - timings["init"]
        t1 = time.monotonic()
        runner = _Runner(net)
        try:
            await runner.run_all(_script())
        except SessionFailed as exc:
            said = "\n".join(f"  node{i.index}: {localnet.last_line(i.home / 'node.log')}"
                             for i in net.infos)
            raise SessionFailed(f"{exc}\nthe nodes' logs end with:\n{said}") from None
        # Every node has every block of the session before anyone looks.
        top = await net.height(0)
        await net.wait_heights(range(len(net.infos)), top)
        group_title = (await net.clients[0].listing(GROUP_LISTING))["listing"]["title"]
        timings["session"] = time.monotonic() - t1
        timings["total"] = time.monotonic() - t0
        facts = _facts(net, runner, top, group_title, timings)
        yield facts
    finally:
        await net.close()


@contextlib.contextmanager
def scripted_localnet_in_thread(tmp_path: Path, limit: float = SESSION_LIMIT + 3 * WAIT
                                ) -> Iterator[SessionFacts]:
    """:func:`scripted_localnet` for sync code (Selenium tests): its event loop runs in
    a thread of its own until the ``with`` block ends, then the localnet is stopped
    (within ``WAIT`` seconds). ``limit``: the most the start and the session may take."""
    ready: concurrent.futures.Future[SessionFacts] = concurrent.futures.Future()
    loop_ready = threading.Event()
    holder: dict[str, Any] = {}

    async def hold() -> None:
        async with scripted_localnet(tmp_path) as facts:
            ready.set_result(facts)
            await asyncio.Event().wait()  # until cancelled

    def main() -> None:
        async def go() -> None:
            holder["loop"] = asyncio.get_running_loop()
            holder["task"] = asyncio.current_task()
            loop_ready.set()
            await hold()
        try:
            asyncio.run(go())
        except asyncio.CancelledError:
            pass
        except BaseException as exc:  # noqa: BLE001 - handed to the waiting thread
            if not ready.done():
                ready.set_exception(exc)
            else:
                holder["error"] = exc
        finally:
            loop_ready.set()
            if not ready.done():
                ready.set_exception(SessionFailed("the localnet's thread ended early"))

    thread = threading.Thread(target=main, name="scripted-localnet", daemon=True)
    thread.start()
    try:
        try:
            facts = ready.result(timeout=limit)
        except concurrent.futures.TimeoutError:
            raise SessionFailed(f"the scripted localnet was not ready within {limit:g} s"
                                ) from None
        yield facts
    finally:
        loop_ready.wait(WAIT)
        loop, task = holder.get("loop"), holder.get("task")
        if loop is not None and task is not None and thread.is_alive():
            with contextlib.suppress(RuntimeError):  # the loop closed meanwhile
                loop.call_soon_threadsafe(task.cancel)
        thread.join(2 * WAIT)
        if thread.is_alive():
            raise SessionFailed(f"the localnet did not stop within {2 * WAIT:g} s")
        if "error" in holder:
            raise holder["error"]
