"""A wallet session: which node, which keys, and how a transaction is made.

:func:`open_session` finds the node (``--node``, ``$AGORA_NODE``, the localnet whose
``localnet.json`` is in (or under ``localnet/`` of) the working directory or is the
``--home`` itself, the ``--home``'s own RPC listener, or the default
``http://127.0.0.1:26657``) and the keys (the keystore, then the localnet's
passphrase-free demo keys).

:meth:`Session.send` is the one way a wallet command changes the chain: the
arguments are encoded by the contract's ABI as the node publishes it; the call is first
run read-only against the latest state at our clock (with the coin it sends), so a
revert is reported before anything is signed or paid; the gas limit is what that run
used plus a margin (unused gas is refunded); then the transaction is signed, submitted
and waited for until it is committed, which is final.
"""

from __future__ import annotations

import contextlib
import json
import os
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from chain.address import address_from_text, address_to_text
from chain.errors import InvalidAddress
from chain.keys import PrivateKey
from chain.system import COIN_DECIMALS, COIN_SYMBOL, SYSTEM_CONTRACTS
from chain.tx import Call, Transaction, Transfer

from ..rpc.client import TRANSFER_GAS, NodeUnreachable, RPCFailed, SyncClient
from .amounts import format_amount
from .errors import BadInput, Refused
from .keystore import (
    KeyInfo,
    Keystore,
    KeystoreError,
    KeystoreUsageError,
    PassphraseNeeded,
    UnknownKey,
    keystore_dir,
)
from .text import one_line

DEFAULT_NODE = "http://127.0.0.1:26657"
#: Gas a call may use beyond what its read-only run used (state it writes may differ
#: by then), as a share and a floor; what is not used is refunded.
GAS_MARGIN = 0.25
GAS_FLOOR = 20_000
GAS_PRICE = 1


def now_ms() -> int:
    return time.time_ns() // 1_000_000


def find_localnet(start: Path) -> Path | None:
    """The localnet home at ``start`` or at ``start/localnet`` (``agora localnet``'s
    default home), if there is one."""
    for candidate in (start, start / "localnet"):
        if (candidate / "localnet.json").is_file():
            return candidate
    return None


def _home_rpc_url(home: Path) -> str | None:
    """The RPC URL a node home's config listens on (read without validating the rest)."""
    import tomllib

    try:
        with open(home / "config.toml", "rb") as f:
            listen = tomllib.load(f).get("rpc", {}).get("listen")
    except (OSError, ValueError):
        return None
    if not isinstance(listen, str) or not listen:
        return None
    host, _, port = listen.rpartition(":")
    if host in ("0.0.0.0", "", "[::]", "::"):
        host = "127.0.0.1"
    return f"http://{host}:{port}"


@dataclass
class Sent:
    """A committed transaction: its hash, block, fee and receipt (decoded events)."""

    hash: str
    height: int
    fee: int
    gas_used: int
    status: str
    return_value: Any
    events: list[dict[str, Any]]

    def events_named(self, name: str) -> list[dict[str, Any]]:
        return [e["fields"] or {} for e in self.events if e["name"] == name]

    def json(self) -> dict[str, Any]:
        return {"hash": self.hash, "height": self.height, "fee": str(self.fee),
                "gas_used": self.gas_used}


@dataclass
class Session:
    """One command's connection to a node and its keys."""

    client: SyncClient
    keystore: Keystore
    localnet: Path | None = None
    passphrase: Callable[[str], str | None] = lambda name: None  # noqa: E731
    _names: dict[bytes, str] = field(default_factory=dict)
    _cache: dict[str, Any] = field(default_factory=dict)
    #: Hashes of the transactions this session handed to the node.
    submitted: list[str] = field(default_factory=list)
    #: The --home given (None: none), for what a command reads from a node or localnet
    #: home (its localnet.json).
    home: Path | None = None

    @property
    def node_url(self) -> str:
        return self.client.url

    def close(self) -> None:
        self.client.close()

    # ------------------------------------------------------------ talking to the node

    def rpc(self, method: str, /, **params: Any) -> Any:
        """A JSON-RPC call; a node that cannot be reached, or an error, as a sentence."""
        try:
            return self.client.call(method, **params)
        except NodeUnreachable as exc:
            raise Refused(unreachable_message(self.node_url, str(exc)),
                          node=self.node_url) from None
        except RPCFailed as exc:
            reason = _reason(exc)
            message = one_line(str(exc.message))
            said = message if reason in ("", message) else f"{message}: {reason}"
            raise Refused(f"The node refused {method}: {said}", code=exc.code,
                          data=_bounded(exc.data)) from None

    def status(self) -> dict[str, Any]:
        if "status" not in self._cache:
            self._cache["status"] = self.rpc("status")
        return self._cache["status"]

    @property
    def chain_id(self) -> str:
        return str(self.status()["chain_id"])

    def contracts(self) -> dict[str, dict[str, Any]]:
        """The node's known contracts by name: address and ABI."""
        if "contracts" not in self._cache:
            self._cache["contracts"] = {c["name"]: c for c in self.rpc("contracts")}
        return self._cache["contracts"]

    def contract(self, name: str) -> dict[str, Any]:
        """A commerce contract as the node describes it. Its address is Agora's fixed
        one (chain.system): a node that names another is not believed, so no node can
        make the wallet sign a payment to a contract of its choosing."""
        known = self.contracts()
        if name not in known:
            raise Refused(f"the node at {self.node_url} has no {name} contract: is it an "
                          "Agora chain with the commerce contracts?")
        fixed = SYSTEM_CONTRACTS.get(name)
        if fixed is not None and known[name]["address"] != address_to_text(fixed):
            raise Refused(f"the node at {self.node_url} says the {name} contract is at "
                          f"{known[name]['address']}, but Agora's {name} contract is at "
                          f"{address_to_text(fixed)}: refusing to sign anything through "
                          "this node.")
        return known[name]

    def token_unit(self) -> tuple[str, int]:
        """The reward token's symbol and decimals (read from the token once)."""
        if "token" not in self._cache:
            symbol = self.view("token", "symbol")
            decimals = int(self.view("token", "decimals"))
            self._cache["token"] = (str(symbol), decimals)
        return self._cache["token"]

    def view(self, contract: str, method: str, *args: Any) -> Any:
        """A view's decoded value (None when it reverts)."""
        out = self.rpc("call", contract=contract, method=method, args=[_json(a) for a in args])
        return out["value"] if out["status"] == "ok" else None

    # ------------------------------------------------------------ names and keys

    def address(self, text: str, what: str = "address") -> bytes:
        """An ``agora1...`` address, 20 bytes of hex, or the name of a key we hold."""
        text = text.strip()
        if text.lower().startswith("agora1"):
            try:
                return address_from_text(text)
            except InvalidAddress as exc:
                raise BadInput(f"{what} {text!r} is not a valid address: {exc} "
                               "(check it for a typing mistake)") from None
        body = text[2:] if text[:2].lower() == "0x" else text
        if len(body) == 40:
            try:
                return bytes.fromhex(body)
            except ValueError:
                pass
        try:
            return self._key_address(text)
        except UnknownKey as exc:
            raise BadInput(f"{what} {text!r} is neither an agora1... address nor a key "
                           f"name. {exc}") from None
        except KeystoreUsageError as exc:
            raise BadInput(f"{what} {text!r} is neither an agora1... address nor a key "
                           f"name: {exc}") from None
        except KeystoreError as exc:
            raise Refused(str(exc)) from None

    def _stores(self) -> list[Keystore]:
        stores = [self.keystore]
        if self.localnet is not None:
            stores.append(Keystore(self.localnet / "keys"))
        return stores

    def _key_address(self, name: str) -> bytes:
        last: UnknownKey | None = None
        for store in self._stores():
            try:
                return store.address(name)
            except UnknownKey as exc:
                last = last or exc
        assert last is not None
        raise self._unknown(name, last)

    def _unknown(self, name: str, first: UnknownKey) -> UnknownKey:
        if self.localnet is None:
            return first
        names = sorted({k.name for s in self._stores() for k in _safe_list(s)})
        known = ", ".join(names) if names else "none"
        return UnknownKey(f"There is no key named {name!r} (keys here: {known}). Create "
                          f"one with `agora keys new {name}`.")

    def key(self, name: str) -> PrivateKey:
        """The private key ``name``, unlocked (asking for its passphrase if it has one)."""
        last: UnknownKey | None = None
        for store in self._stores():
            try:
                info = store.info(name)
            except UnknownKey as exc:
                last = last or exc
                continue
            except KeystoreUsageError as exc:
                raise BadInput(str(exc)) from None
            except KeystoreError as exc:
                raise Refused(str(exc)) from None
            try:
                passphrase = self.passphrase(name) if info.encrypted else None
                return store.unlock(name, passphrase)
            except PassphraseNeeded as exc:
                raise Refused(str(exc)) from None
            except KeystoreError as exc:
                raise Refused(str(exc)) from None
        assert last is not None
        raise BadInput(str(self._unknown(name, last)))

    def key_info(self, name: str) -> KeyInfo:
        """What the keystore (or the localnet's) knows of key ``name`` without unlocking
        it: its address and public key."""
        last: UnknownKey | None = None
        for store in self._stores():
            try:
                return store.info(name)
            except UnknownKey as exc:
                last = last or exc
            except KeystoreUsageError as exc:
                raise BadInput(str(exc)) from None
            except KeystoreError as exc:
                raise Refused(str(exc)) from None
        assert last is not None
        raise BadInput(str(self._unknown(name, last)))

    def held_keys(self) -> list[KeyInfo]:
        """Every key this session can sign with (the keystore's, then the localnet's)."""
        return [info for store in self._stores() for info in _safe_list(store)]

    def name_of(self, address: bytes) -> str | None:
        """The key name (or localnet account) an address belongs to, if we know it."""
        if not self._names:
            for store in self._stores():
                for info in _safe_list(store):
                    self._names.setdefault(info.address, info.name)
            for contract, known in SYSTEM_CONTRACTS.items():
                self._names.setdefault(known, f"{contract} contract")
        return self._names.get(address)

    def who(self, address: bytes | str) -> str:
        """An address for a sentence: ``agora1... (buyer)``."""
        raw = address_from_text(address) if isinstance(address, str) else address
        if raw == bytes(20):
            return "nobody"
        name = self.name_of(raw)
        text = address_to_text(raw)
        return f"{text} ({name})" if name else text

    # ------------------------------------------------------------ amounts

    def coin(self, value: int) -> str:
        return f"{format_amount(value, COIN_DECIMALS)} {COIN_SYMBOL}"

    def tokens(self, value: int) -> str:
        symbol, decimals = self.token_unit()
        return f"{format_amount(value, decimals)} {symbol}"

    def balances(self, address: bytes) -> dict[str, int]:
        coin = int(self.rpc("account", address=address_to_text(address))["balance"])
        tokens = int(self.rpc("token_balance", address=address_to_text(address))["balance"])
        return {"coin": coin, "tokens": tokens}

    # ------------------------------------------------------------ transactions

    def try_call(self, sender: bytes, contract: str, method: str, args: Sequence[Any],
                 value: int = 0) -> dict[str, Any]:
        """Run the call read-only, as the next block would (at our clock)."""
        return self.rpc("call", contract=contract, method=method,
                        args=[_json(a) for a in args], sender=address_to_text(sender),
                        value=str(value), time_ms=max(now_ms(), self.status()
                                                      ["latest_block_time_ms"] + 1))

    def send(self, key: PrivateKey, contract: str, method: str, args: Sequence[Any], *,
             value: int = 0, explain: Callable[[str], str] | None = None,
             memo: str = "") -> Sent:
        """Try, sign, submit and wait for the commit of ``contract.method(args)``.

        A read-only run that reverts raises :class:`Refused` with ``explain(reason)``
        (default: the contract's reason), before anything is signed."""
        from vm.compiler.abi import AbiError, encode_value
        from vm.gas import encode_args

        known = self.contract(contract)
        spec = next((m for m in known["abi"]["methods"] if m["name"] == method), None)
        if spec is None:
            raise Refused(f"the {contract} contract has no method {method!r}")
        if len(spec["inputs"]) != len(args):
            raise BadInput(f"{contract}.{method} takes {len(spec['inputs'])} arguments")
        try:
            encoded = [encode_value(i["type"], a) for i, a in zip(spec["inputs"], args,
                                                                     strict=True)]
        except AbiError as exc:
            raise BadInput(f"{contract}.{method}: {exc}") from None
        sender = key.address
        self.check_funds(sender, value, 0)
        tried = self.try_call(sender, contract, method, args, value)
        if tried["status"] != "ok":
            reason = one_line(str(tried.get("reason") or tried["status"]))
            raise Refused(explain(reason) if explain else _sentence(reason),
                          reason=reason, status=tried["status"])
        action = Call(address_from_text(known["address"]), method, encode_args(encoded), value)
        gas = int(tried["gas_used"] * (1 + GAS_MARGIN)) + GAS_FLOOR
        return self._submit(key, action, gas, value, explain, memo)

    def send_transfer(self, key: PrivateKey, to: bytes, amount: int, memo: str = "") -> Sent:
        """A native coin transfer (fixed gas), committed."""
        return self._submit(key, Transfer(to, amount), 0, amount, None, memo)

    def check_funds(self, sender: bytes, value: int, gas: int) -> None:
        have = int(self.rpc("account", address=address_to_text(sender))["balance"])
        need = value + gas * GAS_PRICE
        if have < need:
            raise Refused(f"Insufficient funds: {self.who(sender)} has {self.coin(have)}, "
                          f"this needs {self.coin(need)} ({self.coin(need - have)} more).",
                          balance=str(have), needed=str(need))

    def _submit(self, key: PrivateKey, action: Call | Transfer, call_gas: int, value: int,
                explain: Callable[[str], str] | None, memo: str) -> Sent:
        """Sign with the sender's next nonce, submit, wait for the commit.

        Two agora commands from one key at once would read the same nonce: a lock per
        sender (a file in the user's runtime directory) makes them take turns, from the
        nonce read to the commit. A nonce another wallet took meanwhile is read again
        (a few times) rather than reported."""
        _check_memo(memo)
        with sender_lock(key.address):
            for attempt in range(1, _NONCE_TRIES + 1):
                try:
                    return self._submit_once(key, action, call_gas, value, explain, memo)
                except _NonceTaken as exc:
                    if attempt == _NONCE_TRIES:
                        raise Refused(f"The node refused the transaction: {exc.reason}. "
                                      "Another wallet is sending from this key at the same "
                                      "time; try again when it is done.",
                                      code=exc.code) from None
        raise AssertionError("unreachable")

    def _submit_once(self, key: PrivateKey, action: Call | Transfer, call_gas: int,
                     value: int, explain: Callable[[str], str] | None, memo: str) -> Sent:
        from vm.gas import intrinsic_gas

        sender = key.address
        nonce = _uint(self.rpc("account", address=address_to_text(sender))["pending_nonce"],
                      "pending_nonce")

        def build(limit: int) -> Transaction:
            return Transaction.create(key, self.chain_id, nonce, action, gas_limit=limit,
                                      gas_price=GAS_PRICE, memo=memo)

        if type(action) is Transfer:
            tx = build(TRANSFER_GAS)
        else:
            limit = call_gas + intrinsic_gas(build(call_gas + 100_000))
            tx = build(limit)
        self.check_funds(sender, value, tx.gas_limit)
        tx_hash = tx.hash.hex()
        check = f"check it with `agora query tx {tx_hash}`"
        self.submitted.append(tx_hash)
        try:
            result = self.client.broadcast_tx_commit(tx)
        except NodeUnreachable as exc:
            raise Refused(unreachable_message(self.node_url, str(exc)) + " The transaction "
                          f"{tx_hash} may still commit: {check}.", hash=tx_hash) from None
        except RPCFailed as exc:
            if exc.code == -32002:  # timed out waiting for the commit
                raise Refused(f"The transaction {tx_hash} was accepted but not committed "
                              f"within the node's wait; it may still commit: {check}.",
                              hash=tx_hash) from None
            self.submitted.remove(tx_hash)  # refused: it is not in any pool
            code = exc.data.get("code") if isinstance(exc.data, dict) else None
            reason = _reason(exc) or one_line(str(exc.message))
            if code in _NONCE_CODES:
                raise _NonceTaken(reason, code) from None
            raise Refused(f"The node refused the transaction: {reason}", code=exc.code,
                          data=_bounded(exc.data)) from None
        sent = _sent(result, tx_hash, tx.gas_price, self.node_url)
        if sent.status != "ok":
            reason = one_line(str(result["receipt"].get("reason") or sent.status))
            raise Refused((explain(reason) if explain else _sentence(reason)) +
                          f" (transaction {sent.hash} in block {sent.height} {sent.status}; "
                          f"the fee of {self.coin(sent.fee)} was paid)",
                          hash=sent.hash, height=sent.height, reason=reason)
        self._cache.pop("status", None)
        return sent


#: How often a nonce taken by another wallet is read again before giving up.
_NONCE_TRIES = 3
_NONCE_CODES = frozenset({"nonce_too_low", "underpriced_replacement", "already_known"})


class _NonceTaken(Exception):
    def __init__(self, reason: str, code: str) -> None:
        super().__init__(reason)
        self.reason, self.code = reason, code


def _uint(value: Any, what: str) -> int:
    """A non-negative integer from a node's answer (a string or a number)."""
    if isinstance(value, bool) or not isinstance(value, (int, str)):
        raise ValueError(f"{what} is not a number")
    number = int(value)
    if not 0 <= number < 1 << 256:
        raise ValueError(f"{what} is out of range")
    return number


def _sent(result: Any, tx_hash: str, gas_price: int, url: str) -> Sent:
    """The node's word that our transaction committed, checked for what we can check:
    that it speaks of our transaction, and that every field is what it should be. (Whether
    it really committed, only a light client verifying the block can tell.)"""
    check = f"check it with `agora query tx {tx_hash}` (or ask another node)"
    try:
        if result["hash"] != tx_hash:
            raise Refused(f"The node at {url} answered about transaction "
                          f"{one_line(str(result['hash']), 80)} when asked about {tx_hash}: "
                          f"it is not to be trusted; {check}.", hash=tx_hash)
        receipt = result["receipt"]
        gas_used = _uint(receipt["gas_used"], "gas_used")
        height = _uint(result["height"], "height")
        status = receipt["status"]
        events = receipt["events"]
        if not isinstance(status, str) or not isinstance(events, list) or height == 0:
            raise ValueError("malformed receipt")
        if not all(isinstance(e, dict) and isinstance(e.get("name"), str) for e in events):
            raise ValueError("malformed event")
    except (KeyError, TypeError, ValueError, AttributeError) as exc:
        raise Refused(f"The transaction {tx_hash} was submitted, but the node's answer about "
                      f"it cannot be read ({exc}); {check}.", hash=tx_hash) from None
    return Sent(tx_hash, height, gas_used * gas_price, gas_used, status,
                receipt.get("return_value"), events)


def _check_memo(memo: str) -> None:
    from chain.tx import MAX_MEMO

    try:
        size = len(memo.encode())
    except UnicodeEncodeError:
        raise BadInput("the memo holds bytes that are not UTF-8 text") from None
    if size > MAX_MEMO:
        raise BadInput(f"the memo is {size} bytes; it may be at most {MAX_MEMO}")


@contextlib.contextmanager
def sender_lock(address: bytes, wait: float = 120.0) -> Iterator[None]:
    """Hold the lock of ``address``'s nonce for this user (one agora command at a time
    sends from one key on this machine); refuse after ``wait`` seconds."""
    import fcntl
    import tempfile

    base = Path(os.environ.get("XDG_RUNTIME_DIR") or tempfile.gettempdir())
    folder = base / f"agora-wallet-{os.getuid()}"
    folder.mkdir(mode=0o700, exist_ok=True)
    fd = os.open(folder / f"{address.hex()}.lock", os.O_RDWR | os.O_CREAT, 0o600)
    try:
        until = time.monotonic() + wait
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if time.monotonic() > until:
                    raise Refused(f"Another agora command has been sending from "
                                  f"{address_to_text(address)} for {wait:g} s; try again "
                                  "when it is done.") from None
                time.sleep(0.05)
        yield
    finally:
        os.close(fd)  # closing the descriptor releases the lock


def _safe_list(store: Keystore) -> list[Any]:
    try:
        return list(store.list())
    except KeystoreError:
        return []


def _json(value: Any) -> Any:
    """A Python argument in the API's JSON conventions."""
    if isinstance(value, bool):
        return value
    if isinstance(value, int):
        return str(value)
    if isinstance(value, bytes):
        return address_to_text(value) if len(value) == 20 else value.hex()
    return value


def _reason(exc: RPCFailed) -> str:
    """The reason a node gave with an error, as one line: the API puts it in ``data``
    (a string, or an object with a ``reason``)."""
    data = exc.data
    if isinstance(data, dict):
        data = data.get("reason") or data.get("message") or ""
    return one_line(data) if isinstance(data, str) else ""


def _bounded(data: Any) -> Any:
    """A node's error data for --json output, cut short if it is large."""
    text = json.dumps(data, default=str)
    return data if len(text) <= 2_000 else text[:2_000] + "..."


def _sentence(reason: str) -> str:
    text = one_line(str(reason)).strip() or "the contract refused"
    return text[0].upper() + text[1:] + ("" if text.endswith(".") else ".")


def unreachable_message(url: str, detail: str) -> str:
    why = detail.split(": ", 1)[1] if ": " in detail else detail
    return (f"Cannot reach an Agora node at {url} ({why}). Start one with `agora localnet` "
            "(run wallet commands from its directory to use it) or `agora start --home "
            "DIR`, or point --node (or AGORA_NODE) at a running node.")


def open_session(*, node: str | None, home: str | None, keystore: str | None,
                 passphrase: Callable[[str], str | None], cwd: Path | None = None,
                 timeout: float = 60.0) -> Session:
    """The session a command runs in (see the module's docstring for what is found
    where)."""
    here = cwd or Path.cwd()
    if home and (Path(home).expanduser() / "localnet.json").is_file():
        # --home names a localnet's home (its own hint for the operator commands): it
        # wins over one found in the current directory
        localnet: Path | None = Path(home).expanduser()
    else:
        localnet = find_localnet(here)
    url = node or os.environ.get("AGORA_NODE")
    if not url and localnet is not None:
        try:
            nodes = json.loads((localnet / "localnet.json").read_text())["nodes"]
            url = nodes[0]["rpc"]
            if not isinstance(url, str):
                raise TypeError("rpc is not a URL")
        except (OSError, ValueError, KeyError, IndexError, TypeError):
            raise Refused(f"{localnet / 'localnet.json'} cannot be read; give --node URL"
                          ) from None
    if not url and home:
        url = _home_rpc_url(Path(home).expanduser())
    url = url or DEFAULT_NODE
    if "://" not in url:
        url = "http://" + url
    try:
        client = SyncClient(url, timeout=timeout)
    except NodeUnreachable as exc:
        raise BadInput(str(exc)) from None
    return Session(client, Keystore(keystore_dir(keystore, home)), localnet, passphrase,
                   home=Path(home).expanduser() if home else None)
