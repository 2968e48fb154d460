"""The node's config file: defaults, the TOML writer, and refusals that name the key."""

from __future__ import annotations

from pathlib import Path

import pytest

from node.config import (
    Config,
    ConfigError,
    ConsensusSection,
    LogSection,
    MempoolSection,
    MetricsSection,
    NodeSection,
    P2PSection,
    RPCSection,
    StorageSection,
    render,
)
from p2p.peers import P2PSettings

# DESIGN.md's sections, and [light] (issue 17: a light node's primary, witnesses, trust)
SECTIONS = ["node", "p2p", "rpc", "consensus", "mempool", "metrics", "explorer", "log",
            "storage", "light"]
PEER_ID = "ab" * 20


def refusal(text: str) -> str:
    """The ConfigError message for ``text`` (which must be refused)."""
    with pytest.raises(ConfigError) as info:
        Config.from_toml(text)
    return str(info.value)


def test_an_empty_file_is_the_default_full_node_config() -> None:
    config = Config.from_toml("")
    assert config == Config()
    assert config.node.mode == "full"
    assert config.rpc.enabled and not config.metrics.enabled
    assert config.consensus.block_interval_ms < config.consensus.idle_interval_ms


def test_the_config_covers_every_section_of_the_design() -> None:
    assert list(Config.model_fields) == SECTIONS


@pytest.mark.parametrize("config", [
    Config(),
    Config(
        node=NodeSection(mode="validator", moniker='quote " back \\ slash, ünïcode'),
        p2p=P2PSection(listen="[::1]:30000", external_address="node.example.org:30000",
                       persistent_peers=[f"{PEER_ID}@10.0.0.1:26656", f"{PEER_ID}@[::1]:1"],
                       max_inbound=0, pex=False, send_queue_bytes=1 << 20),
        rpc=RPCSection(enabled=False, listen="0.0.0.0:8080", max_body_bytes=1024),
        consensus=ConsensusSection(block_interval_ms=1, idle_interval_ms=3_600_000),
        mempool=MempoolSection(max_txs=1, max_bytes=1 << 32, max_nonce_ahead=0),
        metrics=MetricsSection(enabled=True, listen="localhost:9100"),
        log=LogSection(level="debug"),
        storage=StorageSection(history=1),
    ),
], ids=["defaults", "everything-changed"])
def test_render_round_trips(config: Config) -> None:
    text = render(config)
    assert Config.from_toml(text) == config
    for section in SECTIONS:  # every key is written out, for the user to edit
        assert f"[{section}]" in text
    assert text.count(" = ") == sum(len(type(model).model_fields) for _, model in config)


def test_the_p2p_section_defaults_are_the_networks_own() -> None:
    assert P2PSection().settings() == P2PSettings()


def test_the_p2p_section_maps_onto_the_network_settings() -> None:
    s = P2PSection(listen="[::1]:30000", ping_interval_ms=1_500, ban_seconds=5,
                   persistent_peers=[f"{PEER_ID}@10.0.0.1:26656"]).settings()
    assert (s.listen_host, s.listen_port) == ("::1", 30000)
    assert (s.ping_interval, s.ban_seconds) == (1.5, 5)
    assert s.persistent_peers == (f"{PEER_ID}@10.0.0.1:26656",)


def test_render_round_trips_a_moniker_with_control_characters() -> None:
    # A moniker read from TOML may hold any escaped character ("a\nb" is valid TOML);
    # writing it back must give valid TOML again, not a raw newline in a string.
    config = Config.from_toml('[node]\nmoniker = "line\\nbreak\\ttab\\u0001\\u007f"\n')
    assert config.node.moniker == "line\nbreak\ttab\x01\x7f"
    assert Config.from_toml(render(config)) == config


@pytest.mark.parametrize("section", SECTIONS)
def test_an_unknown_key_is_refused_naming_it(section: str) -> None:
    message = refusal(f"[{section}]\nfoo = 1\n")
    assert message == f"config.toml: {section}.foo: unknown key"


def test_an_unknown_section_is_refused_naming_it() -> None:
    assert refusal("[p2p]\npex = false\n[consensu]\nblock_interval_ms = 5\n") == \
        "config.toml: consensu: unknown key"


@pytest.mark.parametrize(("text", "key"), [
    # negative or out-of-range limits
    ("[p2p]\nmax_inbound = -1", "p2p.max_inbound"),
    ("[p2p]\nmax_outbound = 1001", "p2p.max_outbound"),
    ("[p2p]\nsend_queue_bytes = 1024", "p2p.send_queue_bytes"),
    ("[p2p]\nban_seconds = -5", "p2p.ban_seconds"),
    ("[mempool]\nmax_txs = 0", "mempool.max_txs"),
    ("[mempool]\nmax_nonce_ahead = -1", "mempool.max_nonce_ahead"),
    ("[consensus]\nblock_interval_ms = -200", "consensus.block_interval_ms"),
    ("[consensus]\nview_timeout_ms = 0", "consensus.view_timeout_ms"),
    ("[rpc]\nmax_body_bytes = 10", "rpc.max_body_bytes"),
    ("[storage]\nhistory = 0", "storage.history"),
    ("[node]\nmoniker = \"" + "m" * 65 + "\"", "node.moniker"),
    # host:port
    ('[p2p]\nlisten = "localhost"', "p2p.listen"),
    ('[p2p]\nlisten = ":26656"', "p2p.listen"),
    ('[p2p]\nlisten = "127.0.0.1:0"', "p2p.listen"),
    ('[p2p]\nlisten = "127.0.0.1:65536"', "p2p.listen"),
    ('[p2p]\nlisten = "127.0.0.1:http"', "p2p.listen"),
    ('[p2p]\nlisten = ""', "p2p.listen"),
    ('[p2p]\nexternal_address = "example.org"', "p2p.external_address"),
    ('[p2p]\nexternal_address = "example.org:-1"', "p2p.external_address"),
    ('[rpc]\nlisten = "127.0.0.1"', "rpc.listen"),
    ('[rpc]\nlisten = "127.0.0.1:99999"', "rpc.listen"),
    ('[metrics]\nlisten = "0.0.0.0:"', "metrics.listen"),
    # persistent peers
    ('[p2p]\npersistent_peers = ["127.0.0.1:26656"]', "p2p.persistent_peers"),
    ('[p2p]\npersistent_peers = ["abcd@127.0.0.1:26656"]', "p2p.persistent_peers"),
    (f'[p2p]\npersistent_peers = ["{PEER_ID}@127.0.0.1"]', "p2p.persistent_peers"),
    (f'[p2p]\npersistent_peers = ["{"zz" * 20}@127.0.0.1:1"]', "p2p.persistent_peers"),
    ("[p2p]\npersistent_peers = [1]", "p2p.persistent_peers.0"),
    ('[p2p]\npersistent_peers = "a@b:1"', "p2p.persistent_peers"),
    # strict types: no coercion of strings, floats or booleans
    ('[p2p]\nmax_inbound = "40"', "p2p.max_inbound"),
    ("[p2p]\nmax_inbound = 40.0", "p2p.max_inbound"),
    ("[p2p]\nmax_inbound = true", "p2p.max_inbound"),
    ('[consensus]\nidle_interval_ms = "1000"', "consensus.idle_interval_ms"),
    ('[mempool]\nmax_bytes = "64MB"', "mempool.max_bytes"),
    ('[p2p]\npex = "yes"', "p2p.pex"),
    ("[rpc]\nenabled = 1", "rpc.enabled"),
    ("[node]\nmoniker = 5", "node.moniker"),
    ("[p2p]\nlisten = 26656", "p2p.listen"),
    # literals
    ('[node]\nmode = "archive"', "node.mode"),
    ('[node]\nmode = "Validator"', "node.mode"),
    ('[log]\nlevel = "verbose"', "log.level"),
    ("[log]\nlevel = 10", "log.level"),
    # a section that is not a table
    ("p2p = 5", "p2p"),
])
def test_a_bad_value_is_refused_naming_the_key(text: str, key: str) -> None:
    message = refusal(text + "\n")
    assert message.startswith(f"config.toml: {key}: "), message
    assert "\n" not in message  # one problem, one line


def test_a_bad_persistent_peer_names_its_entry() -> None:
    message = refusal(f'[p2p]\npersistent_peers = ["{PEER_ID}@h:1", "nonsense"]\n')
    assert message.startswith("config.toml: p2p.persistent_peers: entry 1: ")
    assert "nodeid@host:port" in message


def test_every_problem_gets_its_own_line() -> None:
    message = refusal('[p2p]\nmax_inbound = -1\nbogus = 1\n[log]\nlevel = "loud"\n')
    lines = message.splitlines()
    assert len(lines) == 3
    assert {line.split(": ")[1] for line in lines} == {"p2p.max_inbound", "p2p.bogus",
                                                       "log.level"}


def test_text_that_is_not_toml_is_refused() -> None:
    for text in ("[p2p\nlisten = 1", "max_inbound = ", "\x00"):
        assert refusal(text).startswith("config.toml: not valid TOML: ")


def test_load_names_the_file(tmp_path: Path) -> None:
    path = tmp_path / "config.toml"
    path.write_text("[rpc]\nmax_body_bytes = 0\n")
    with pytest.raises(ConfigError, match=f"^{path}: rpc.max_body_bytes: "):
        Config.load(path)
    path.write_text(render(Config(log=LogSection(level="error"))))
    assert Config.load(path).log.level == "error"


def test_a_missing_file_is_refused_with_a_readable_message(tmp_path: Path) -> None:
    path = tmp_path / "nowhere" / "config.toml"
    with pytest.raises(ConfigError) as info:
        Config.load(path)
    assert str(info.value) == f"cannot read {path}: No such file or directory"


@pytest.mark.parametrize("path", sorted((Path(__file__).parents[2] / "configs").glob("*.toml")),
                         ids=lambda p: p.name)
def test_the_example_configs_load(path: Path) -> None:
    config = Config.load(path)
    assert config.node.mode in ("validator", "full", "light")
    if config.node.mode == "light":
        assert config.light.primary.startswith("http://")
