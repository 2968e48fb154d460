"""``agora light``: the light node's lifecycle. It opens the store of verified headers,
starts the light client from the genesis file (or a trusted height and hash), follows
the primary's head, serves the light JSON-RPC methods (node/light/methods.py) over HTTP
and WebSocket, tells subscribers of verified headers and of transactions and events
proven against them, and, with ``--watch``, prints a merchant's open orders as they
change (node/light/watch.py).

Subscriptions: each new verified head is filled in height by height back to the last
one told (headers linked by their hashes down from the verified head, so none is
skipped and none is taken on trust); where a subscription wants transactions or events,
the block's transactions and receipts are fetched (``block_results``) and told only if
they hash to the header's ``tx_root`` and ``receipts_root``.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from chain.address import address_to_text
from chain.block import Block, Receipt, receipts_root, tx_root
from chain.errors import DecodeError
from chain.evidence import DoubleSign
from chain.genesis import Genesis
from chain.keys import PrivateKey
from chain.tx import Transaction
from storage.kv import KVStore, LevelDBKV
from vm.world import CODE

from ..events import EventBus
from ..evidence import EVIDENCE_GAS_LIMIT, evidence_tx
from ..rpc.client import RPCFailed
from ..rpc.protocol import Dispatcher, collect
from ..rpc.server import RPCServer, ServerSettings
from ..rpc.subscriptions import Hub
from . import methods
from .client import LightClient, Options
from .errors import BadProof, InvalidLightBlock, LightError, NoHonestNode, Unreachable
from .provider import Provider, decode_header
from .store import KEEP_HEADERS, LightStore
from .verifier import LightBlock

log = logging.getLogger("agora.light")

#: Heights filled in for subscribers at most per new head (beyond: they get the head).
MAX_FILL = 1_000
#: Evidence transactions sent for one fork (one per double signer).
MAX_EVIDENCE_TXS = 64


@dataclass
class LightSettings:
    primary: str
    witnesses: list[str] = field(default_factory=list)
    rpc_listen: str = "127.0.0.1:26670"
    trust_height: int | None = None
    trust_hash: bytes | None = None
    options: Options = field(default_factory=Options)
    keep_headers: int = KEEP_HEADERS
    poll_interval_ms: int = 500
    watch: list[bytes] = field(default_factory=list)
    moniker: str = "light"
    #: Signs the evidence of a fork the light node finds (a funded account's key);
    #: without one the evidence is shown in light_status and the log, not submitted.
    report_key: PrivateKey | None = None
    #: Serve the block explorer's pages at /explorer/ on the RPC listener (they read
    #: this light node's verified API, so they show only what it proved).
    explorer: bool = True


def subscription_methods() -> dict[str, Any]:
    from ..rpc import subscriptions

    table = collect(methods)
    for name, spec in collect(subscriptions).items():
        table[name] = spec
    return table


class LightNode:
    def __init__(self, genesis: Genesis, kv: KVStore, settings: LightSettings, *,
                 clock: Callable[[], int] | None = None,
                 out: Callable[[str], None] | None = None) -> None:
        self.settings = settings
        self.kv = kv
        self.store = LightStore(kv, keep=settings.keep_headers)
        primary = Provider(settings.primary)
        witnesses = [Provider(u) for u in settings.witnesses]
        kwargs: dict[str, Any] = {"clock": clock} if clock is not None else {}
        self.client = LightClient(genesis, self.store, primary, witnesses,
                                  options=settings.options, report_evidence=self._report,
                                  **kwargs)
        self.ctx = methods.LightContext(self.client, settings.moniker)
        self.events = EventBus()
        self.hub = Hub(self.events, self.ctx.chain)
        self.server: RPCServer | None = None
        self.out = out or (lambda line: print(line, flush=True))
        self.watcher: Any = None
        self._told = -1
        self._task: asyncio.Task | None = None
        self._stopped = asyncio.Event()

    async def start(self) -> None:
        await self.client.start(self.settings.trust_height, self.settings.trust_hash)
        try:
            await self.client.sync()
        except Unreachable as exc:
            log.warning("the primary did not answer yet: %s", exc)
        self._told = self.client.height
        await self._prove_code()
        dispatcher = Dispatcher(subscription_methods(), max_batch=100)
        self.server = RPCServer(self.ctx, dispatcher, self.hub,  # type: ignore[arg-type]
                                ServerSettings(listen=self.settings.rpc_listen))
        if self.settings.explorer:
            from ..explorer.server import mount_on_node

            ctx = self.ctx
            mount_on_node(self.server.mount, lambda text: dispatcher.handle_text(text, ctx),
                          label=self.settings.moniker)
        await self.server.start()
        if self.settings.watch:
            from .watch import Watcher
            self.watcher = Watcher(self.ctx, self.settings.watch, self.out)
            await self.watcher.refresh()
        self._task = asyncio.create_task(self._follow(), name="light-follow")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await self._task
        if self.server is not None:
            await self.server.stop()
        self.hub.close()
        for p in self.client.nodes() + self.client.dropped:
            await p.close()
        self.kv.close()
        self._stopped.set()

    async def _follow(self) -> None:
        interval = self.settings.poll_interval_ms / 1000
        last_problem = ""
        while True:
            try:
                head = await self.client.sync()
                latest = self.client.latest
                if latest is not None and self._told < latest.height:
                    # also after a failed telling: the heights not told are told now
                    await self._tell(latest)
                if head is not None and self.watcher is not None:
                    await self.watcher.refresh()
                last_problem = ""
            except NoHonestNode as exc:
                if str(exc) != last_problem:
                    log.error("%s", exc)
                    last_problem = str(exc)
            except (LightError, RPCFailed) as exc:
                if str(exc) != last_problem:
                    log.warning("light sync: %s", exc)
                    last_problem = str(exc)
            except Exception as exc:  # noqa: BLE001 - a bug must not stop the following
                if repr(exc) != last_problem:
                    log.exception("light sync failed")
                    last_problem = repr(exc)
            await asyncio.sleep(interval)

    async def _prove_code(self) -> None:
        """Prove the known contracts' code once (it never changes): the first query
        then costs what every other does."""
        if self.client.latest is None:
            return
        keys = [CODE + address for address in self.ctx.chain.contracts]
        try:
            codes = await self.ctx.proven.values(keys)
        except (LightError, RPCFailed) as exc:
            log.warning("could not prove the contracts' code yet: %s", exc)
            return
        for key, code in codes.items():
            if code is not None:
                self.ctx.proven._program(key[len(CODE):], code)  # decoded once, kept

    # ------------------------------------------------------------ evidence

    async def _report(self, evidence: list[DoubleSign], honest: Provider) -> None:
        """Submit fork evidence to the node that stood by the honest chain, one
        transaction per double signer, signed with the report key."""
        key = self.settings.report_key
        if key is None:
            log.warning("%d piece(s) of double-sign evidence found and not submitted (no "
                        "report key: --report-key FILE); they are in light_status",
                        len(evidence))
            return
        account = await honest.call("account", address=address_to_text(key.address))
        nonce = int(account["pending_nonce"])
        params = self.client.genesis.consensus
        for record in evidence[:MAX_EVIDENCE_TXS]:
            tx = evidence_tx(key, self.client.chain_id, nonce, record,
                             gas_price=params.min_gas_price,
                             gas_limit=min(EVIDENCE_GAS_LIMIT, params.max_block_gas))
            await honest.call("broadcast_tx_sync", tx=tx.encode().hex())
            log.warning("submitted evidence that %s signed two blocks at height %d to %s "
                        "(tx %s)", address_to_text(record.validator), record.height,
                        honest.url, tx.hash.hex())
            nonce += 1

    # ------------------------------------------------------------ subscribers

    async def _tell(self, head: LightBlock) -> None:
        if not len(self.hub):
            self._told = head.height
            return
        start = max(self._told + 1, head.height - MAX_FILL + 1, 1)
        headers = await self._linked_headers(start, head)
        want_bodies = bool(self.hub._txs_all or self.hub._txs_by_account
                           or self.hub._event_groups)
        for header in headers:
            txs: list[Transaction] = []
            receipts: list[Receipt] = []
            if want_bodies and header.tx_count:
                txs, receipts = await self._bodies(header)
            self.events.block_committed(Block(header, tuple(txs), None), receipts)
            self._told = header.height

    async def _linked_headers(self, start: int, head: LightBlock) -> list[Any]:
        """Headers start..head, each the parent its successor names (down from the
        verified head): none skipped, none taken on trust."""
        heights = list(range(start, head.height))
        if not heights:
            return [head.header]
        primary = self.client.need_primary()
        results = await primary.batch([("header", {"height": h}) for h in heights])
        headers = []
        for h, r in zip(heights, results, strict=True):
            if isinstance(r, RPCFailed):
                raise r
            try:
                headers.append(decode_header(r))
            except (KeyError, TypeError, DecodeError, BadProof) as exc:
                self.client.caught(primary, "invalid header", f"header {h}: {exc}", h)
                raise InvalidLightBlock(str(exc)) from None
        expected = head.header.prev_hash
        for header in reversed(headers):
            if header.hash != expected:
                self.client.caught(primary, "invalid header",
                                   f"header {header.height} is not the parent the verified "
                                   f"header {header.height + 1} names", header.height)
                raise InvalidLightBlock("broken hash link")
            expected = header.prev_hash
        return headers + [head.header]

    async def _bodies(self, header: Any) -> tuple[list[Transaction], list[Receipt]]:
        primary = self.client.need_primary()
        answer = await primary.call("block_results", height=header.height)
        try:
            txs = [Transaction.decode(bytes.fromhex(t)) for t in answer["txs"]]
            receipts = [Receipt.decode(bytes.fromhex(r)) for r in answer["receipts"]]
        except (KeyError, TypeError, ValueError, DecodeError) as exc:
            self.client.caught(primary, "invalid block", f"block {header.height}: {exc}",
                               header.height)
            raise BadProof(str(exc)) from None
        if (len(txs) != header.tx_count or len(receipts) != len(txs)
                or tx_root(txs) != header.tx_root
                or receipts_root(receipts) != header.receipts_root):
            self.client.caught(primary, "invalid block",
                               f"the transactions or receipts of block {header.height} do not "
                               "hash to its verified header's roots", header.height)
            raise BadProof("roots do not match")
        return txs, receipts


def open_store(home: Path) -> KVStore:
    data = home / "data"
    data.mkdir(parents=True, exist_ok=True)
    # A small memtable: the log it flushes from counts against the disk a light node
    # promises to keep small (under 1 KB a header), and its writes are small.
    return LevelDBKV(data / "light", cache_mb=8, write_buffer_mb=1)


async def serve(genesis: Genesis, home: Path, settings: LightSettings,
                ready: Callable[[LightNode], None] | None = None) -> None:
    """Run a light node until SIGINT/SIGTERM."""
    node = LightNode(genesis, open_store(home), settings)
    try:
        await node.start()
    except BaseException:
        node.kv.close()
        raise
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        with contextlib.suppress(NotImplementedError, RuntimeError):
            loop.add_signal_handler(sig, stop.set)
    if ready is not None:
        ready(node)
    try:
        await stop.wait()
    finally:
        await node.stop()


def _watched(text: str, genesis_file: str | None) -> bytes:
    """An address to watch: ``agora1...``, or the name of a localnet's demo account
    (from the localnet.json beside --genesis, or in ./localnet)."""
    from chain.address import address_from_text
    from chain.errors import InvalidAddress

    try:
        return address_from_text(text)
    except InvalidAddress:
        pass
    from ..localnet import manifest_accounts

    places = [Path(genesis_file).parent] if genesis_file else []
    for place in places + [Path("localnet")]:
        address = manifest_accounts(place).get(text)
        if address is not None:
            return address_from_text(address)
    raise ValueError(f"--watch {text!r}: give the merchant's address (agora1...) or the name "
                     "of a localnet demo account (merchant)")


def parse_period(text: str) -> int:
    """``7d``, ``36h``, ``90m``, ``30s`` -> milliseconds (ValueError with a sentence)."""
    units = {"d": 86_400_000, "h": 3_600_000, "m": 60_000, "s": 1_000}
    text = text.strip().lower()
    if len(text) < 2 or text[-1] not in units or not text[:-1].isdigit():
        raise ValueError(f"{text!r} is not a period: write it as 7d, 36h or 90m")
    ms = int(text[:-1]) * units[text[-1]]
    if not 1_000 <= ms <= 365 * 86_400_000:
        raise ValueError(f"a trusting period of {text} is outside 1s..365d")
    return ms


def run_light(home_path: Path | str, *, primary: str | None = None,
              witnesses: tuple[str, ...] = (), rpc_listen: str | None = None,
              watch: tuple[str, ...] = (), trust_height: int | None = None,
              trust_hash: str | None = None, trusting_period: str | None = None,
              sequential: bool | None = None, genesis_file: str | None = None,
              report_key: str | None = None,
              out: Callable[[str], None] = print) -> None:
    """``agora light`` (and ``agora start`` of a home whose mode is light): settings
    from HOME/config.toml's ``[light]`` (if there is one), the command line's over
    them; the genesis from ``--genesis`` (copied into the home) or HOME/genesis.json.
    Mistakes end it with ``error: ...`` and exit code 1."""
    import shutil

    from chain.errors import InvalidAddress, InvalidGenesis

    from ..config import Config, ConfigError

    home = Path(home_path)
    try:
        home.mkdir(parents=True, exist_ok=True)
        config_path = home / "config.toml"
        config = Config.load(config_path) if config_path.exists() else Config()
        section = config.light
        if genesis_file is not None and \
                Path(genesis_file).resolve() != (home / "genesis.json").resolve():
            shutil.copyfile(genesis_file, home / "genesis.json")
        if not (home / "genesis.json").exists():
            raise SystemExit(f"error: {home / 'genesis.json'} is missing: the light node trusts "
                             "the chain's genesis file; pass --genesis FILE (from a source you "
                             "trust, e.g. localnet/node0/genesis.json)")
        genesis = Genesis.load(home / "genesis.json")
        primary = primary or section.primary
        if not primary:
            raise SystemExit("error: name the full node to ask: --primary URL (e.g. "
                             "http://127.0.0.1:26601)")
        period = (parse_period(trusting_period) if trusting_period is not None
                  else section.trusting_period_ms)
        height = trust_height if trust_height is not None else (section.trust_height or None)
        hash_text = trust_hash if trust_hash is not None else (section.trust_hash or None)
        if (height is None) != (hash_text is None):
            raise SystemExit("error: --trust-height and --trust-hash go together (the hash of "
                             "that height's header, from a source you trust)")
        try:
            hash_bytes = bytes.fromhex(hash_text) if hash_text else None
        except ValueError:
            raise SystemExit("error: --trust-hash is 64 hex digits") from None
        if hash_bytes is not None and len(hash_bytes) != 32:
            raise SystemExit("error: --trust-hash is 64 hex digits")
        watched = [_watched(a, genesis_file) for a in (watch or tuple(section.watch))]
        key_file = report_key or section.report_key
        reporter = None
        if key_file:
            from ..home import HomeError, read_key
            try:
                reporter = read_key(Path(key_file))
            except HomeError as exc:
                raise SystemExit(f"error: --report-key: {exc}") from None
        settings = LightSettings(
            primary=primary, witnesses=list(witnesses or section.witnesses),
            rpc_listen=rpc_listen or section.rpc_listen, trust_height=height,
            trust_hash=hash_bytes,
            options=Options(trusting_period_ms=period,
                            sequential=section.sequential if sequential is None else sequential),
            keep_headers=section.keep_headers, poll_interval_ms=section.poll_interval_ms,
            watch=watched, moniker="light", report_key=reporter,
            explorer=config.explorer.enabled)
    except (ConfigError, InvalidGenesis, ValueError, InvalidAddress, OSError) as exc:
        raise SystemExit(f"error: {exc}") from None
    logging.basicConfig(level=logging.INFO,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")

    def ready(node: LightNode) -> None:
        c = node.client
        out(f"Light node for chain {genesis.chain_id}: verified height {c.height} "
            f"({c.trusted().hash.hex()[:16]}…), {len(node.store)} header(s) kept in {home}")
        out(f"  primary  {c.primary.url if c.primary else '(none)'}")
        for w in c.witnesses:
            out(f"  witness  {w.url}")
        if not c.witnesses:
            out("  no witnesses: add --witness URL so a lying primary is caught by "
                "comparison too")
        out(f"  answering verified queries on http://{settings.rpc_listen} "
            f"(agora --node http://{settings.rpc_listen} ...)")

    try:
        asyncio.run(serve(genesis, home, settings, ready))
    except KeyboardInterrupt:
        pass
    except LightError as exc:
        raise SystemExit(f"error: {exc}") from None
    except OSError as exc:
        raise SystemExit(f"error: {exc.strerror or exc} ({settings.rpc_listen}): another "
                         "program listens there; choose another --rpc-listen") from None
