"""The node's config file (``HOME/config.toml``), read with ``tomllib`` and checked
with pydantic: an unknown key or a bad value stops the node at start, with a message
naming the key (``p2p.max_inbound: ...``), never halfway through running.

Sections: ``[node]`` (mode, moniker), ``[p2p]``, ``[rpc]`` (with its WebSocket
limits), ``[consensus]`` (timeouts, block interval, empty blocks), ``[mempool]``,
``[metrics]``, ``[log]``, ``[storage]``, ``[light]``. Every key has a default, so an empty file is
a valid (full-node) config; the ``[p2p]`` defaults are the network's own
(:class:`p2p.peers.P2PSettings`), and :meth:`P2PSection.settings` maps the section onto
them.
"""

from __future__ import annotations

import tomllib
from pathlib import Path
from typing import Annotated, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    StrictBool,
    StrictInt,
    StrictStr,
    ValidationError,
    field_validator,
    model_validator,
)

from p2p.errors import LocalError as P2PLocalError
from p2p.peers import P2PSettings
from p2p.policy import PeerAddress, split_host_port


class ConfigError(Exception):
    """The config file is missing, not TOML, or has an unknown key or a bad value."""


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


def _host_port(value: str) -> str:
    try:
        split_host_port(value)
    except P2PLocalError as exc:
        raise ValueError(str(exc)) from None
    return value


HostPort = Annotated[StrictStr, Field(min_length=3)]
Millis = Annotated[StrictInt, Field(gt=0, le=3_600_000)]


class NodeSection(_Section):
    mode: Literal["validator", "full", "light"] = "full"
    moniker: Annotated[StrictStr, Field(max_length=64)] = ""


#: The network's own defaults: the ``[p2p]`` section's defaults are read from here, so
#: each is written once.
_P2P = P2PSettings()


def _ms(seconds: float) -> int:
    return round(seconds * 1000)


class P2PSection(_Section):
    listen: HostPort = f"{_P2P.listen_host}:{_P2P.listen_port}"
    #: host:port announced to peers; empty: the listen address.
    external_address: StrictStr = _P2P.external_address
    persistent_peers: list[StrictStr] = list(_P2P.persistent_peers)
    max_inbound: Annotated[StrictInt, Field(ge=0, le=10_000)] = _P2P.max_inbound
    max_outbound: Annotated[StrictInt, Field(ge=0, le=1_000)] = _P2P.max_outbound
    pex: StrictBool = _P2P.pex
    handshake_timeout_ms: Millis = _ms(_P2P.handshake_timeout)
    ping_interval_ms: Millis = _ms(_P2P.ping_interval)
    peer_timeout_ms: Millis = _ms(_P2P.peer_timeout)
    ban_seconds: Annotated[StrictInt, Field(ge=0, le=86_400 * 30)] = round(_P2P.ban_seconds)
    send_queue_bytes: Annotated[StrictInt, Field(ge=1 << 20, le=1 << 30)] = \
        _P2P.send_queue_bytes
    #: Transactions to gossip are gathered this long, then sent as one batch per peer:
    #: fewer, larger writes and wake-ups on every node under load, for a few ms.
    gossip_delay_ms: Annotated[StrictInt, Field(ge=0, le=1_000)] = _ms(_P2P.gossip_delay)

    _listen = field_validator("listen")(_host_port)

    @field_validator("external_address")
    @classmethod
    def _external(cls, value: str) -> str:
        return _host_port(value) if value else value

    @field_validator("persistent_peers")
    @classmethod
    def _peers(cls, value: list[str]) -> list[str]:
        for i, text in enumerate(value):
            try:
                PeerAddress.parse(text)
            except P2PLocalError as exc:
                raise ValueError(f"entry {i}: {exc}") from None
        return value

    def settings(self) -> P2PSettings:
        """This section as the network's settings (the one place they are mapped)."""
        host, port = split_host_port(self.listen)
        return P2PSettings(
            listen_host=host, listen_port=port,
            external_address=self.external_address,
            persistent_peers=tuple(self.persistent_peers),
            max_inbound=self.max_inbound, max_outbound=self.max_outbound, pex=self.pex,
            handshake_timeout=self.handshake_timeout_ms / 1000,
            ping_interval=self.ping_interval_ms / 1000,
            peer_timeout=self.peer_timeout_ms / 1000, ban_seconds=self.ban_seconds,
            send_queue_bytes=self.send_queue_bytes,
            gossip_delay=self.gossip_delay_ms / 1000,
        )


class RPCSection(_Section):
    enabled: StrictBool = True
    listen: HostPort = "127.0.0.1:26657"
    #: broadcast_tx_commit gives up waiting after this long.
    commit_timeout_ms: Millis = 30_000
    max_body_bytes: Annotated[StrictInt, Field(ge=1024, le=64 << 20)] = 1 << 20
    #: Most requests in one JSON-RPC batch.
    max_batch: Annotated[StrictInt, Field(ge=1, le=10_000)] = 100
    #: Largest page of a paged method (account_history, orders, events, ...).
    max_page: Annotated[StrictInt, Field(ge=1, le=10_000)] = 100
    #: Widest height range one ``events`` query may scan.
    max_event_range: Annotated[StrictInt, Field(ge=1, le=10_000_000)] = 10_000
    #: The most one answer may hold (a batch's included); beyond it the client is
    #: told to ask for less.
    max_response_bytes: Annotated[StrictInt, Field(ge=64 * 1024, le=1 << 30)] = 8 << 20
    #: RPC connections at once (HTTP and WebSocket), and from one address (loopback,
    #: the operator's own tools, is not capped per address).
    max_connections: Annotated[StrictInt, Field(ge=1, le=100_000)] = 1_000
    max_connections_per_ip: Annotated[StrictInt, Field(ge=1, le=100_000)] = 64
    #: A connection with no request in progress for this long is closed (this also
    #: ends one that dribbles its headers).
    idle_timeout_ms: Millis = 15_000
    #: An answer a client has not taken in this long is cut.
    write_timeout_ms: Millis = 10_000
    #: Answer bytes waiting on slow clients, node-wide, before new answers are refused.
    max_unsent_bytes: Annotated[StrictInt, Field(ge=1 << 20, le=1 << 34)] = 256 << 20
    #: Most transactions in one ``broadcast_txs``.
    max_broadcast_txs: Annotated[StrictInt, Field(ge=1, le=100_000)] = 5_000
    #: Origins a browser may call from (``*`` for any); empty: CORS off.
    cors_origins: list[Annotated[StrictStr, Field(min_length=1, max_length=200)]] = []
    #: WebSocket clients at once, subscriptions per client, notifications waiting
    #: unsent to one client before it is dropped as too slow, and the ping interval.
    ws_max_clients: Annotated[StrictInt, Field(ge=0, le=100_000)] = 500
    ws_max_subscriptions: Annotated[StrictInt, Field(ge=1, le=10_000)] = 20
    ws_queue: Annotated[StrictInt, Field(ge=1, le=1_000_000)] = 1_000
    ws_ping_interval_ms: Millis = 20_000
    #: Subscriptions of all clients together; WebSocket clients from one address
    #: (loopback — the operator's own tools, tests and benchmarks — is not capped);
    #: a client with no subscriptions that sends no request this long is closed.
    ws_max_total_subscriptions: Annotated[StrictInt, Field(ge=1, le=1_000_000)] = 10_000
    ws_max_clients_per_ip: Annotated[StrictInt, Field(ge=1, le=100_000)] = 32
    ws_idle_timeout_ms: Millis = 60_000

    _listen = field_validator("listen")(_host_port)


class ConsensusSection(_Section):
    #: With transactions waiting, propose this long after the previous block.
    block_interval_ms: Millis = 50
    #: With none, propose an empty block after this long.
    idle_interval_ms: Millis = 1_000
    #: A proposal takes at most this many transactions (genesis' max_block_txs is
    #: what the chain accepts): with more waiting than one height carries, smaller
    #: blocks keep each height short and the rest goes in the next ones.
    proposal_max_txs: Annotated[StrictInt, Field(gt=0, le=65_536)] = 1_000
    #: How long view 0 may take (doubling with each view change), and the cap.
    view_timeout_ms: Millis = 2_000
    max_view_timeout_ms: Millis = 60_000


class MempoolSection(_Section):
    max_txs: Annotated[StrictInt, Field(gt=0, le=1_000_000)] = 5_000
    max_bytes: Annotated[StrictInt, Field(gt=0, le=1 << 32)] = 64 << 20
    max_per_sender: Annotated[StrictInt, Field(gt=0, le=100_000)] = 64
    max_nonce_ahead: Annotated[StrictInt, Field(ge=0, le=10_000)] = 16


class MetricsSection(_Section):
    enabled: StrictBool = False
    #: Where /metrics is served; empty: on the RPC listener (which must be enabled).
    listen: StrictStr = "127.0.0.1:26660"

    @field_validator("listen")
    @classmethod
    def _listen(cls, v: str) -> str:
        return v if v == "" else _host_port(v)


class ExplorerSection(_Section):
    """The block explorer's pages at ``/explorer/`` on the RPC listener: they read the
    node's public API only. Off here, the API stays; ``agora explorer`` can serve them
    elsewhere."""

    enabled: StrictBool = True


class LogSection(_Section):
    level: Literal["debug", "info", "warning", "error"] = "info"


class StorageSection(_Section):
    #: Past state versions kept readable (for proofs at recent heights).
    history: Annotated[StrictInt, Field(ge=1, le=1_000_000)] = 100


class LightSection(_Section):
    """A light node (``mode = "light"``, or ``agora light``): the full nodes it asks
    and where it answers. Every answer it gives is proven; these say whom to ask."""

    #: The full node headers and proofs are fetched from (its JSON-RPC URL).
    primary: StrictStr = ""
    #: Full nodes each new header is cross-checked with.
    witnesses: list[Annotated[StrictStr, Field(min_length=1, max_length=300)]] = []
    #: Where the light node's own JSON-RPC and WebSocket listen.
    rpc_listen: HostPort = "127.0.0.1:26670"
    #: Start from this height and header hash instead of the genesis (0: genesis).
    trust_height: Annotated[StrictInt, Field(ge=0, lt=1 << 63)] = 0
    trust_hash: Annotated[StrictStr, Field(pattern="^([0-9a-f]{64})?$")] = ""
    #: A trusted header older than this vouches for nothing (default: 7 days).
    trusting_period_ms: Annotated[StrictInt, Field(ge=60_000, le=365 * 86_400_000)] = \
        7 * 86_400_000
    #: Verify every height instead of skipping ahead where a trusted set allows it.
    sequential: StrictBool = False
    #: Newest verified headers kept on disk.
    keep_headers: Annotated[StrictInt, Field(ge=2, le=10_000_000)] = 10_000
    #: How often the primary is asked for a new head.
    poll_interval_ms: Annotated[StrictInt, Field(ge=50, le=600_000)] = 500
    #: Merchants whose open orders are printed as they change.
    watch: list[Annotated[StrictStr, Field(min_length=1, max_length=90)]] = []
    #: A key file (unencrypted, as localnet's keys/) whose funded account signs the
    #: evidence of a fork this light node finds; empty: evidence is shown, not sent.
    report_key: StrictStr = ""

    _listen = field_validator("rpc_listen")(_host_port)


class Config(_Section):
    node: NodeSection = NodeSection()
    p2p: P2PSection = P2PSection()
    rpc: RPCSection = RPCSection()
    consensus: ConsensusSection = ConsensusSection()
    mempool: MempoolSection = MempoolSection()
    metrics: MetricsSection = MetricsSection()
    explorer: ExplorerSection = ExplorerSection()
    log: LogSection = LogSection()
    storage: StorageSection = StorageSection()
    light: LightSection = LightSection()

    @model_validator(mode="after")
    def _metrics_somewhere(self) -> Config:
        if self.metrics.enabled and not self.metrics.listen and not self.rpc.enabled:
            raise ValueError("metrics.listen: empty means on the RPC listener, but "
                             "rpc.enabled is false: give metrics a listen address")
        return self

    @classmethod
    def from_toml(cls, text: str, source: str = "config.toml") -> Config:
        try:
            data = tomllib.loads(text)
        except tomllib.TOMLDecodeError as exc:
            raise ConfigError(f"{source}: not valid TOML: {exc}") from None
        try:
            return cls.model_validate(data)
        except ValidationError as exc:
            raise ConfigError(describe(exc, source)) from None

    @classmethod
    def load(cls, path: Path) -> Config:
        try:
            text = path.read_text()
        except OSError as exc:
            raise ConfigError(f"cannot read {path}: {exc.strerror}") from None
        return cls.from_toml(text, str(path))


def describe(exc: ValidationError, source: str) -> str:
    """One line per problem, each naming its key the way the file spells it."""
    lines = []
    for error in exc.errors():
        key = ".".join(str(part) for part in error["loc"]) or "(top level)"
        message = error["msg"]
        if error["type"] == "extra_forbidden":
            message = "unknown key"
        message = message.removeprefix("Value error, ")
        lines.append(f"{source}: {key}: {message}")
    return "\n".join(lines)


def render(config: Config) -> str:
    """The config as TOML text, every key written out (for ``agora init``)."""
    out = []
    for section, model in config:
        out.append(f"[{section}]")
        for key, value in model:
            out.append(f"{key} = {_toml_value(value)}")
        out.append("")
    return "\n".join(out)


def _toml_value(value: object) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, str):
        out = []
        for ch in value:
            if ch in ('"', "\\"):
                out.append("\\" + ch)
            elif ch < " " or ch == "\x7f":  # control characters: TOML wants them escaped
                out.append(f"\\u{ord(ch):04x}")
            else:
                out.append(ch)
        return '"' + "".join(out) + '"'
    if isinstance(value, list):
        return "[" + ", ".join(_toml_value(v) for v in value) + "]"
    raise TypeError(f"cannot write {type(value).__name__} to TOML")
