"""The `agora` command: parses arguments and calls into node/ — no logic of its own."""

from __future__ import annotations

import functools
import json
import sys
from collections.abc import Callable
from typing import Any

import click

_FALLBACK_VERSION = "0.1.0"


def _print_version(ctx: click.Context) -> None:
    click.echo(f"agora {_version()}")
    ctx.exit()


def _version() -> str:
    """The installed distribution's version; the fallback covers running from a source tree."""
    from importlib import metadata

    try:
        return metadata.version("agora")
    except metadata.PackageNotFoundError:
        return _FALLBACK_VERSION


class _Agora(click.Group):
    """The top command. With ``--json`` anywhere in the arguments, every failure is one
    JSON object on stdout too (``{"ok": false, "error": ..., "exit_code": ...}``) —
    also those found while parsing (a missing argument, a bad option) and the keys
    commands' refusals — so a script reads one format whatever happened."""

    def main(self, args: Any = None, prog_name: str | None = None,
             complete_var: str | None = None, standalone_mode: bool = True,
             **extra: Any) -> Any:
        argv = list(sys.argv[1:] if args is None else args)
        if "--json" not in argv or not standalone_mode:
            return super().main(argv, prog_name, complete_var, standalone_mode, **extra)
        try:
            super().main(argv, prog_name, complete_var, standalone_mode=False, **extra)
        except click.ClickException as exc:
            _json_failure(exc.format_message(), exc.exit_code)
        except click.Abort:
            _json_failure("aborted", 1)
        sys.exit(0)


#: An id (a listing, an order, a group) or a height: what the API takes, 1 to 2**64 - 1.
_ID = click.IntRange(1, 2**64 - 1)


def _json_failure(message: str, code: int) -> None:
    click.echo(json.dumps({"ok": False, "error": message, "exit_code": code}, indent=2))
    sys.exit(code)


@click.group(cls=_Agora, context_settings={"help_option_names": ["-h", "--help"]})
@click.option("--version", is_flag=True, expose_value=False, is_eager=True,
              help="Show the version and exit.",
              # read only when asked: importlib.metadata costs a wallet command 50 ms
              callback=lambda ctx, _, on: _print_version(ctx) if on else None)
def main() -> None:
    """Agora: a peer-to-peer blockchain node for community e-commerce.

    Payments sit in an on-chain escrow until delivery is confirmed, reviews are tied
    to real purchases, and a small set of community validators orders transactions
    with a PBFT-style consensus, so a block is final the moment it is committed.
    """


@main.group()
def contract() -> None:
    """Compile contracts and try them out in a fresh in-memory state."""


@contract.command("compile")
@click.argument("file", type=click.Path(dir_okay=False))
@click.option("-o", "--out-dir", type=click.Path(file_okay=False),
              help="Write NAME.bin (hex) and NAME.abi.json here instead of printing them.")
def contract_compile(file: str, out_dir: str | None) -> None:
    """Compile FILE.agc: bytecode as hex and the ABI as JSON."""
    from node.contract_tool import compile_to
    from vm.compiler import CompileError

    try:
        compiled, written = compile_to(file, out_dir)
    except CompileError as exc:
        raise click.ClickException(str(exc)) from None
    if written:
        for path in written:
            click.echo(f"wrote {path}")
    else:
        click.echo(compiled.code.hex())
        click.echo(json.dumps(compiled.abi, indent=2))


@contract.command("run", context_settings={"ignore_unknown_options": False})
@click.argument("file", type=click.Path(dir_okay=False))
@click.argument("method", required=False)
@click.argument("args", nargs=-1)
@click.option("--sender", help="Caller address (agora1... or 0x hex); funded for the run.")
@click.option("--value", type=click.IntRange(min=0), default=0, show_default=True,
              help="Native coin sent with the call.")
@click.option("--gas", type=click.IntRange(min=1), default=None,
              help="Gas for each call [default: 10,000,000].")
@click.option("--calls", "calls_file", type=click.Path(dir_okay=False),
              help="A JSON list of {method, args, sender, value} calls, run in order.")
@click.option("--init", "init_args", multiple=True, metavar="ARG",
              help="A constructor argument (repeat, in order, for each one it takes).")
@click.option("--init-value", type=click.IntRange(min=0), default=0, show_default=True,
              help="Native coin sent to a @payable constructor.")
@click.option("--json", "as_json", is_flag=True, help="Print the outcome as JSON.")
def contract_run(file: str, method: str | None, args: tuple[str, ...], sender: str | None,
                 value: int, gas: int | None, calls_file: str | None,
                 init_args: tuple[str, ...], init_value: int, as_json: bool) -> None:
    """Deploy FILE.agc into a fresh in-memory state and call METHOD with ARGS.

    Arguments are read by the method's types: numbers, true/false, agora1...
    addresses, 0x-hex bytes, text. Put them after -- to pass negative numbers.
    A constructor's arguments go with --init, in order. Exits 1 when a call does not
    succeed. For example:

    \b
        agora contract run vm/contracts/reviews.agc review 1 \\
            --init agora1qqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqry2cu5
    """
    from node.contract_tool import ToolError, load_calls, parse_address, run
    from vm.compiler import CompileError
    from vm.testing import DEFAULT_SENDER

    if (method is None) == (calls_file is None):
        raise click.UsageError("give either METHOD [ARGS...] or --calls FILE.json")
    try:
        calls = (load_calls(calls_file) if calls_file is not None
                 else [{"method": method, "args": list(args), "value": value}])
        who = parse_address(sender) if sender is not None else DEFAULT_SENDER
        results = run(file, calls, sender=who, gas=gas, init_args=init_args,
                      init_value=init_value)
    except CompileError as exc:
        raise click.ClickException(str(exc)) from None
    except ToolError as exc:
        raise click.ClickException(str(exc)) from None
    if as_json:
        out = results if calls_file is not None else results[0]
        click.echo(json.dumps(out, indent=2))
    else:
        for r in results:
            click.echo(f"status: {r['status']}")
            if isinstance(r["return"], dict):  # a record: one field a line
                click.echo("return:")
                for name, field in r["return"].items():
                    click.echo(f"  {name}: {field}")
            elif r["return"] is not None:
                click.echo(f"return: {r['return']}")
            click.echo(f"gas used: {r['gas_used']:,}")
            for ev in r["events"]:
                fields = ", ".join(f"{k}={v}" for k, v in ev["args"].items())
                click.echo(f"event: {ev['name']}({fields})")
            if r["reason"]:
                click.echo(f"reason: {r['reason']}")
    if any(r["status"] != "ok" for r in results):
        sys.exit(1)


# ---------------------------------------------------------------------- nodes

HOME_HELP = "The node's home directory (config.toml, genesis.json, keys/, data/)."


@main.group()
def genesis() -> None:
    """Edit a genesis file before a chain starts."""


@genesis.command("set-validators")
@click.argument("file", type=click.Path(dir_okay=False, exists=True))
@click.argument("public_keys", nargs=-1, required=True, metavar="PUBKEY...")
@click.option("--power", type=click.IntRange(1, 2**60 - 1), default=10, show_default=True,
              help="Each validator's voting power.")
@click.option("--proposal-ttl", type=click.IntRange(1, 2**32), default=1_000,
              show_default=True, help="Heights a governance proposal stays open.")
def genesis_set_validators(file: str, public_keys: tuple[str, ...], power: int,
                           proposal_ttl: int) -> None:
    """Make FILE the genesis of these validators (ed25519 public keys, hex, in order,
    named validator-0, validator-1, ...): its validator set and its governance
    contract's members. Everything else in it is kept.

    \b
        agora genesis set-validators ~/agora/genesis.json PUBKEY0 PUBKEY1 PUBKEY2 PUBKEY3
    """
    import json
    from pathlib import Path

    from chain.errors import InvalidGenesis
    from chain.genesis import Genesis
    from node.genesis import GenesisValidator, set_validators

    keys = []
    for text in public_keys:
        try:
            key = bytes.fromhex(text)
        except ValueError:
            key = b""
        if len(key) != 32:
            raise click.BadParameter(f"{text!r} is not an ed25519 public key (64 hex digits)",
                                     param_hint="PUBKEY")
        keys.append(key)
    path = Path(file)
    try:
        document = set_validators(json.loads(path.read_text()),
                                  [GenesisValidator(k, power, f"validator-{i}")
                                   for i, k in enumerate(keys)], proposal_ttl=proposal_ttl)
        Genesis.from_dict(document)
    except (ValueError, InvalidGenesis) as exc:
        raise click.ClickException(f"{file}: {exc}") from None
    path.write_text(json.dumps(document, indent=2) + "\n")
    click.echo(f"{file}: {len(keys)} validators, power {power} each")


@main.command()
@click.option("--home", required=True, type=click.Path(file_okay=False), help=HOME_HELP)
@click.option("--chain-id", default="agora-local", show_default=True,
              help="Chain id of the single-validator genesis written when --validator "
                   "is given.")
@click.option("--validator", is_flag=True,
              help="Make a validator key, and a genesis in which it is the only validator.")
@click.option("--dev", is_flag=True,
              help="With --validator: also a funded passphrase-free key named 'dev' in "
                   "the home's keys/, for trying the wallet on a one-node chain.")
def init(home: str, chain_id: str, validator: bool, dev: bool) -> None:
    """Create a node home: config, keys (mode 0600) and, with --validator, a genesis.

    A full node needs the chain's genesis.json copied into the home before
    `agora start`. For example, a one-node chain to try the wallet on:

    \b
        agora init --home ./devnet --validator --dev
        agora start --home ./devnet
    """
    from node.home import HomeError, init_home

    try:
        lines = init_home(home, chain_id=chain_id, validator=validator, dev=dev)
    except HomeError as exc:
        raise click.ClickException(str(exc)) from None
    for line in lines:
        click.echo(line)


@main.command()
@click.option("--home", required=True, type=click.Path(file_okay=False, exists=True),
              help=HOME_HELP)
def start(home: str) -> None:
    """Run the node until Ctrl-C or SIGTERM (then it stops cleanly)."""
    from node.daemon import run_node

    run_node(home)


@main.command()
@click.option("--home", required=True, type=click.Path(file_okay=False),
              help="The light node's home: genesis.json, config.toml (optional), and "
                   "data/ with the verified headers.")
@click.option("--primary", metavar="URL", help="The full node to fetch headers and proofs "
              "from [default: the home's config.toml light.primary].")
@click.option("--witness", "witnesses", multiple=True, metavar="URL",
              help="A full node to cross-check every new header with (repeatable).")
@click.option("--rpc-listen", metavar="HOST:PORT",
              help="Where to answer verified queries [default: 127.0.0.1:26670].")
@click.option("--watch", multiple=True, metavar="ADDRESS",
              help="A merchant whose open orders are printed as they change (repeatable).")
@click.option("--genesis", "genesis_file", type=click.Path(dir_okay=False, exists=True),
              help="The chain's genesis file, from a source you trust (copied into the "
                   "home).")
@click.option("--trust-height", type=click.IntRange(min=1), help="Start from this height "
              "instead of the genesis (with --trust-hash).")
@click.option("--trust-hash", metavar="HEX", help="The header hash of --trust-height, from a "
              "source you trust.")
@click.option("--trusting-period", metavar="PERIOD",
              help="A trusted header older than this vouches for nothing: 7d, 36h "
                   "[default: 7d].")
@click.option("--sequential", is_flag=True, default=None,
              help="Verify every height instead of skipping ahead.")
@click.option("--report-key", type=click.Path(dir_okay=False, exists=True),
              help="A key file whose funded account signs the evidence of a fork found "
                   "(e.g. localnet/keys/arbiter.json); without one, evidence is shown in "
                   "light_status, not submitted.")
def light(home: str, primary: str | None, witnesses: tuple[str, ...], rpc_listen: str | None,
          watch: tuple[str, ...], genesis_file: str | None, trust_height: int | None,
          trust_hash: str | None, trusting_period: str | None, sequential: bool | None,
          report_key: str | None) -> None:
    """Run a light node: verify headers from a full node, cross-check them with
    witnesses, and answer queries only with values proven against them.

    \b
        agora light --home ./light --genesis localnet/node0/genesis.json \\
            --primary http://127.0.0.1:26601 --witness http://127.0.0.1:26603 \\
            --watch merchant
        agora --node http://127.0.0.1:26670 order show 12
    """
    from node.light.service import run_light

    run_light(home, primary=primary, witnesses=witnesses, rpc_listen=rpc_listen,
              watch=watch, trust_height=trust_height, trust_hash=trust_hash,
              trusting_period=trusting_period, sequential=sequential,
              genesis_file=genesis_file, report_key=report_key, out=click.echo)


@main.command()
@click.option("--node", metavar="URL", help="The node to read (a full node or a light node): "
              "its JSON-RPC URL [default: $AGORA_NODE, else http://127.0.0.1:26657].")
@click.option("--listen", metavar="HOST:PORT", default="127.0.0.1:8080", show_default=True,
              help="Where to serve the pages.")
@click.option("--home", type=click.Path(file_okay=False), default=None,
              help="A home (or a localnet) whose account names the search box knows.")
def explorer(node: str | None, listen: str, home: str | None) -> None:
    """Serve the block explorer's pages for any node, in English and Chinese.

    Every node serves them at /explorer/ already (off with [explorer] enabled = false);
    this serves them elsewhere, over the node's public API only.

    \b
        agora explorer --node http://127.0.0.1:26601 --listen 127.0.0.1:8080
        (then open http://127.0.0.1:8080/explorer/)
    """
    from node.explorer.server import run_explorer

    run_explorer(node, listen, home=home, echo=click.echo)


@main.group(invoke_without_command=True)
@click.option("--validators", type=click.IntRange(1, 64), default=None,
              help="Validators of a new localnet [default: 4; an existing one keeps its "
                   "own].")
@click.option("--home", type=click.Path(file_okay=False), default="./localnet",
              show_default=True, help="Where the localnet lives (HOME/nodeN are node homes).")
@click.option("--base-port", type=click.IntRange(1024, 65000), default=None,
              help="Node i listens on BASE+2i (p2p) and BASE+2i+1 (rpc) [default: 26600, "
                   "or what an existing localnet was made with].")
@click.option("--standby", type=click.IntRange(0, 16), default=None,
              help="Full nodes with a validator key outside the genesis set, for the "
                   "validators to vote in [default: 0; an existing one keeps its own].")
@click.pass_context
def localnet(ctx: click.Context, validators: int | None, home: str,
             base_port: int | None, standby: int | None) -> None:
    """Run N validators on 127.0.0.1 until Ctrl-C (creating them on first use).

    Prints where each node listens, then a status line every few seconds.

    \b
        agora localnet
        agora localnet --validators 4 --standby 1 --home ./gov-net
    """
    if ctx.invoked_subcommand is not None:
        return
    from pathlib import Path

    from node import localnet as ln
    from node.home import HomeError

    try:
        ln.run(Path(home), validators, base_port, click.echo, standby=standby)
    except HomeError as exc:
        raise click.ClickException(str(exc)) from None


@localnet.command("init")
@click.option("--validators", type=click.IntRange(1, 64), default=4, show_default=True)
@click.option("--home", type=click.Path(file_okay=False), default="./localnet",
              show_default=True)
@click.option("--base-port", type=click.IntRange(1024, 65000), default=None,
              help="Node i listens on BASE+2i (p2p) and BASE+2i+1 (rpc) [default: 26600].")
@click.option("--standby", type=click.IntRange(0, 16), default=0, show_default=True,
              help="Full nodes with a validator key outside the genesis set.")
def localnet_init(validators: int, home: str, base_port: int | None, standby: int) -> None:
    """Generate the localnet's keys, genesis and node homes, without starting it."""
    from pathlib import Path

    from node import localnet as ln
    from node.home import HomeError

    try:
        infos = ln.init(Path(home), validators, base_port, standby=standby)
    except HomeError as exc:
        raise click.ClickException(str(exc)) from None
    for info in infos:
        click.echo(f"node{info.index}: home {info.home}  rpc {info.rpc}  p2p {info.p2p}")
    click.echo(f"wrote {Path(home) / 'localnet.json'}")


@main.command()
@click.option("--validators", type=click.IntRange(1, 16), default=4, show_default=True)
@click.option("--txs", type=click.IntRange(min=1),
              help="Transactions to submit [default: 10,000].")
@click.option("--duration", type=click.FloatRange(min=0, min_open=True), metavar="SECONDS",
              help="Submit for this long instead (escrow, mixed: size the run to it).")
@click.option("--rate", type=click.FloatRange(min=0, min_open=True), metavar="TX/S",
              help="Offered rate, open loop [default: as fast as accepted].")
@click.option("--workload", type=click.Choice(["transfer", "escrow", "mixed"]),
              default="transfer", show_default=True)
@click.option("--json", "as_json", is_flag=True,
              help="Print one JSON object (progress goes to stderr).")
@click.option("--profile", is_flag=True, help="Profile the nodes; print the busiest one's.")
@click.option("--generators", type=click.IntRange(min=1), default=2, show_default=True,
              help="Load-generator processes.")
@click.option("--senders", type=click.IntRange(min=1),
              help="Transfer senders [default: a tenth of the transfers, 50 to 2,000].")
@click.option("--drain-timeout", type=click.FloatRange(min=0, min_open=True), default=60,
              show_default=True, metavar="SECONDS",
              help="After sending, wait for every admitted transaction to commit; "
                   "give up once this long passes with none committing.")
@click.option("--keep", is_flag=True, help="Keep the localnet's directory.")
@click.option("--stop-validator", is_flag=True,
              help="Run with the last validator stopped throughout (load starts once the "
                   "proposer rotation has dropped it).")
def bench(validators: int, txs: int | None, duration: float | None, rate: float | None,
          workload: str, as_json: bool, profile: bool, generators: int, senders: int | None,
          drain_timeout: float, keep: bool, stop_validator: bool) -> None:
    """Start a localnet in a temporary home and measure committed transactions/s and
    submit-to-commit latency against this machine's ed25519 ceiling (bench/localnet.py
    says how)."""
    from bench.localnet import main as bench_main

    if txs is not None and duration is not None:
        raise click.UsageError("give --txs or --duration, not both")
    argv = ["--validators", str(validators), "--workload", workload,
            "--generators", str(generators), "--drain-timeout", str(drain_timeout)]
    for flag, value in (("--txs", txs), ("--duration", duration), ("--rate", rate),
                        ("--senders", senders)):
        if value is not None:
            argv += [flag, str(value)]
    for flag, on in (("--json", as_json), ("--profile", profile), ("--keep", keep),
                     ("--stop-validator", stop_validator)):
        if on:
            argv.append(flag)
    sys.exit(bench_main(argv))


# ---------------------------------------------------------------------- wallet
#
# Every command below parses its arguments and names the node.wallet function that
# does the work (node/wallet/actions.py, query.py); node/wallet/runner.py runs it.

_WALLET_EPILOG = ("The node is --node URL, else $AGORA_NODE, else the localnet in (or in "
                  "./localnet under) the current directory or at --home, else the --home "
                  "node's RPC listener, else http://127.0.0.1:26657. Exit codes: 0 done, 1 refused "
                  "or reverted, 2 usage.")


def _wallet_command(group: click.Group, name: str, *, signing: bool = False,
                    amounts: bool = False) -> Callable[[Callable[..., Any]], click.Command]:
    """A wallet command: the shared options, and a body that returns the Invocation
    to run (``node.wallet.runner.invoke``)."""

    def decorate(body: Callable[..., Any]) -> click.Command:
        @functools.wraps(body)
        def command(**kw: Any) -> None:
            from node.wallet.runner import run

            shared = {k: kw.pop(k) for k in ("node", "home", "keystore", "as_json",
                                            "passphrase_file", "timeout") if k in kw}
            code = run(body(**kw), prompt=_hidden_prompt,
                       echo=click.echo, err=lambda t: click.echo(t, err=True), **shared)
            sys.exit(code)

        f: Any = command
        f = click.option("--json", "as_json", is_flag=True,
                         help="Print one JSON object instead of sentences.")(f)
        f = click.option("--keystore", type=click.Path(file_okay=False),
                         help="The keystore directory [default: HOME/keys].")(f)
        f = click.option("--home", type=click.Path(file_okay=False),
                         help="Home whose keys/ is the keystore [default: $AGORA_HOME, "
                              "else ~/.agora].")(f)
        f = click.option("--node", metavar="URL", help="The node's JSON-RPC URL.")(f)
        f = click.option("--timeout", type=click.FloatRange(1, 3600), default=60,
                         show_default=True, metavar="SECONDS",
                         help="The most any one request to the node may take, its "
                              "whole answer included (a commit is waited for up to the "
                              "node's own limit, 30 s by default).")(f)
        if amounts:
            f = click.option("--raw", is_flag=True,
                             help="Amounts are whole base units, not decimals.")(f)
        if signing:
            f = click.option("--passphrase-file", type=click.Path(dir_okay=False),
                             help="Read the key's passphrase from this file's first line "
                                  "[default: $AGORA_PASSPHRASE, else a prompt].")(f)
            f = click.option("--from", "sender", required=True, metavar="KEY",
                             help="The name of the key that signs (and pays).")(f)
        return group.command(name, epilog=_WALLET_EPILOG)(f)

    return decorate


def _hidden_prompt(text: str) -> str:
    return str(click.prompt(text, hide_input=True))


def _invoke(function: str, *args: Any, **kwargs: Any) -> Any:
    from node.wallet.runner import invoke

    return invoke(function, *args, **kwargs)


@_wallet_command(main, "balance")
@click.argument("who", metavar="ADDRESS|NAME")
def balance(who: str) -> Any:
    """Coin and reward-token balances of an address or a key.

    \b
        agora balance buyer
        agora balance agora1jhxx03dcuzgyhu796y9cqglaa33ca4jfyktdmx --json
    """
    return _invoke("balance", who)


@_wallet_command(main, "transfer", signing=True, amounts=True)
@click.option("--to", "to", required=True, metavar="ADDRESS|NAME", help="Who receives.")
@click.option("--amount", required=True, help="How much, in decimals (12.5).")
@click.option("--token", is_flag=True, help="Send reward tokens instead of coin.")
@click.option("--memo", default="", help="A note carried by the transaction.")
def transfer_cmd(sender: str, to: str, amount: str, token: bool, memo: str, raw: bool) -> Any:
    """Send coin (or reward tokens with --token) and wait until it is committed.

    \b
        agora transfer --from buyer --to merchant --amount 12.5
        agora transfer --from buyer --to referrer --amount 3 --token
    """
    return _invoke("transfer", sender, to, amount, token=token, raw=raw, memo=memo)


@main.group()
def token() -> None:
    """The reward token: backed one to one by coin, redeemable at any time."""


@_wallet_command(token, "redeem", signing=True, amounts=True)
@click.option("--amount", required=True, help="Tokens to redeem for coin (or 'all').")
def token_redeem(sender: str, amount: str, raw: bool) -> Any:
    """Turn reward tokens back into the coin that backs them.

    \b
        agora token redeem --from buyer --amount 2.5
    """
    return _invoke("token_redeem", sender, amount, raw=raw)


@main.group()
def listing() -> None:
    """The catalog: merchants publish, edit and pause listings; anyone reads them."""


def _terms_options(f: Any) -> Any:
    for opt in reversed([
        click.option("--ship-window", metavar="DURATION",
                     help="Time to ship after an order (3d, 36h, 90m) [default: 3d]."),
        click.option("--confirm-window", metavar="DURATION",
                     help="Time for the buyer to confirm delivery [default: 14d]."),
        click.option("--return-window", metavar="DURATION",
                     help="No-reason return window, at least 7d [default: 7d]."),
        click.option("--answer-window", metavar="DURATION",
                     help="Time to answer a return [default: 2d]."),
        click.option("--final-sale", is_flag=True,
                     help="No returns (perishables and the like); shown plainly."),
        click.option("--arbiter", "arbiters", multiple=True, metavar="ADDRESS|NAME",
                     help="An arbiter buyers may pick (repeat, up to 3)."),
        click.option("--no-arbiter-ok/--arbiter-required", default=None,
                     help="Whether an order may name no arbiter."),
        click.option("--default-refund", metavar="PERCENT",
                     help="What a silent arbiter's case gives back to the buyer [50%]."),
        click.option("--referral", metavar="PERCENT", help="Commission to referrers."),
        click.option("--cashback", metavar="PERCENT", help="Cashback to buyers."),
        click.option("--bounty", metavar="PERCENT", help="Review bounty to reviewers."),
        click.option("--group-price", help="Per-unit price of a group deal."),
        click.option("--group-size", type=click.IntRange(min=1), help="Buyers it needs."),
        click.option("--group-window", metavar="DURATION", help="Time the group has to fill."),
    ]):
        f = opt(f)
    return f


def _terms(kw: dict[str, Any]) -> Any:
    from node.wallet.actions import Terms

    return Terms(ship=kw.pop("ship_window"), confirm=kw.pop("confirm_window"),
                 return_window=kw.pop("return_window"), answer=kw.pop("answer_window"),
                 final_sale=kw.pop("final_sale"), arbiters=kw.pop("arbiters"),
                 no_arbiter_ok=kw.pop("no_arbiter_ok"),
                 default_refund=kw.pop("default_refund"))


@_wallet_command(listing, "create", signing=True, amounts=True)
@click.option("--title", required=True, help="A short title (at most 120 bytes).")
@click.option("--price", help="Price per unit in coin.")
@click.option("--token-price", help="Price per unit in reward tokens.")
@click.option("--stock", type=click.IntRange(min=0), required=True, help="Units for sale.")
@click.option("--description", default="", help="The full description; its SHA-256 goes "
              "on chain, the text stays with you.")
@_terms_options
def listing_create(sender: str, title: str, price: str | None, token_price: str | None,
                   stock: int, description: str, raw: bool, **kw: Any) -> Any:
    """Publish a listing with its price, stock and terms.

    \b
        agora listing create --from merchant --title "Linen apron" --price 18 \\
            --stock 30 --arbiter arbiter --referral 2% --bounty 1%
    """
    terms = _terms(kw)
    return _invoke("listing_create", sender, title=title, price=price,
                   token_price=token_price, stock=stock, description=description,
                   terms=terms, raw=raw, **kw)


@_wallet_command(listing, "edit", signing=True, amounts=True)
@click.argument("listing_id", type=_ID, metavar="LISTING")
@click.option("--price", help="New price per unit in coin.")
@click.option("--token-price", help="New price per unit in reward tokens.")
@click.option("--stock", type=click.IntRange(min=0), help="New stock.")
@click.option("--resume", is_flag=True, help="Take orders again after a pause.")
@_terms_options
def listing_edit(sender: str, listing_id: int, price: str | None, token_price: str | None,
                 stock: int | None, resume: bool, raw: bool, **kw: Any) -> Any:
    """Change a listing's price, stock, terms, commissions or group deal; orders
    already placed keep theirs.

    \b
        agora listing edit 3 --from merchant --price 20 --stock 25
    """
    terms = _terms(kw)
    return _invoke("listing_edit", sender, listing_id, price=price, token_price=token_price,
                   stock=stock, terms=terms, resume=resume, raw=raw, **kw)


@_wallet_command(listing, "pause", signing=True)
@click.argument("listing_id", type=_ID, metavar="LISTING")
def listing_pause(sender: str, listing_id: int) -> Any:
    """Stop taking orders (`listing edit --resume` takes them again).

    \b
        agora listing pause 3 --from merchant
    """
    return _invoke("listing_pause", sender, listing_id)


@_wallet_command(listing, "show")
@click.argument("listing_id", type=_ID, metavar="LISTING")
def listing_show(listing_id: int) -> Any:
    """A listing: price, stock, terms, commissions and its record.

    \b
        agora listing show 1
    """
    return _invoke("listing_show", listing_id)


@_wallet_command(listing, "list")
@click.option("--merchant", required=True, metavar="ADDRESS|NAME")
@click.option("--limit", type=click.IntRange(1, 1000), default=50, show_default=True)
def listing_list(merchant: str, limit: int) -> Any:
    """A merchant's listings, newest first.

    \b
        agora listing list --merchant merchant
    """
    return _invoke("listing_list", merchant, limit)


@main.group()
def arbiter() -> None:
    """Arbiters rule disputes for a fee; merchants name the ones they accept."""


@_wallet_command(arbiter, "register", signing=True)
@click.option("--name", "arbiter_name", required=True, help="The name buyers see.")
@click.option("--fee", required=True, metavar="PERCENT", help="Fee of a disputed order.")
@click.option("--ruling-window", default="3d", show_default=True, metavar="DURATION",
              help="Time to rule once a case opens.")
def arbiter_register(sender: str, arbiter_name: str, fee: str, ruling_window: str) -> Any:
    """Register the --from key as an arbiter.

    \b
        agora arbiter register --from arbiter --name "Fair Hands" --fee 2%
    """
    return _invoke("arbiter_register", sender, arbiter_name, fee, ruling_window)


@_wallet_command(arbiter, "show")
@click.argument("who", metavar="ADDRESS|NAME")
def arbiter_show(who: str) -> Any:
    """An arbiter's registration and record.

    \b
        agora arbiter show arbiter
    """
    return _invoke("arbiter_show", who)


@main.group()
def order() -> None:
    """Escrow orders, from payment to payout: every step of the order lifecycle.

    \b
    paid -> shipped -> delivered -> completed, with declined, cancelled,
    return_requested, return_shipped, refunded, disputed and resolved.
    `agora order show ID` says what each party can do next.
    """


@_wallet_command(order, "place", signing=True, amounts=True)
@click.argument("listing_id", type=_ID, metavar="LISTING")
@click.option("--quantity", type=click.IntRange(min=1), default=1, show_default=True)
@click.option("--arbiter", metavar="ADDRESS|NAME",
              help="One of the listing's arbiters [default: its first].")
@click.option("--no-arbiter", is_flag=True, help="No arbiter (where the listing allows).")
@click.option("--referrer", metavar="ADDRESS|NAME", help="Who referred you.")
@click.option("--max-total", help="Refuse if the order would cost more than this.")
@click.option("--tokens", is_flag=True, help="Pay in reward tokens.")
def order_place(sender: str, listing_id: int, quantity: int, arbiter: str | None,
                no_arbiter: bool, referrer: str | None, max_total: str | None, tokens: bool,
                raw: bool) -> Any:
    """Order from a listing: the payment is held in escrow until the order ends.

    \b
        agora order place 1 --from buyer --quantity 2 --referrer referrer
    """
    return _invoke("order_place", sender, listing_id, quantity=quantity, arbiter=arbiter,
                   no_arbiter=no_arbiter, referrer=referrer, max_total=max_total,
                   tokens=tokens, raw=raw)


#: order transitions: (command, help, example options, extra options)
_ORDER_STEPS: list[tuple[str, str, str, list[Any]]] = [
    ("ship", "Merchant: ship the order (with a tracking reference).",
     "--from merchant --tracking 'POST 123'",
     [click.option("--tracking", default="", help="Tracking reference (128 bytes max).")]),
    ("decline", "Merchant: decline the order; the buyer is refunded in full.",
     "--from merchant", []),
    ("cancel", "Buyer: cancel before shipping (or after the ship deadline): full refund.",
     "--from buyer", []),
    ("confirm", "Buyer: confirm delivery; --waive-return pays the merchant at once.",
     "--from buyer --waive-return",
     [click.option("--waive-return", is_flag=True, help="Give up the return window.")]),
    ("release", "Merchant: take back an unclaimed review bounty after the review window.",
     "--from merchant", []),
    ("claim", "Anyone: end a step whose deadline passed, as the silence decides.",
     "--from buyer", []),
    ("return", "Buyer: ask to return the goods within the return window (no reason).",
     "--from buyer", []),
    ("accept-return", "Merchant: accept a return.", "--from merchant", []),
    ("ship-back", "Buyer: ship the goods back once the return is accepted.",
     "--from buyer --tracking 'POST 456'",
     [click.option("--tracking", default="", help="Tracking reference (128 bytes max).")]),
    ("confirm-receipt", "Merchant: confirm the goods came back; the buyer is refunded.",
     "--from merchant", []),
    ("contest", "Merchant: contest a return before the order's arbiter (deposits its fee).",
     "--from merchant", []),
    ("refund", "Merchant: refund part (--amount) or all (--amount all) before the end.",
     "--from merchant --amount 5",
     [click.option("--amount", required=True, help="Amount, 'all' or a share like 50%.")]),
    ("settle", "Buyer or merchant: offer a settlement; it holds once both name the same.",
     "--from buyer --to-buyer 10",
     [click.option("--to-buyer", "amount", required=True,
                   help="What goes back to the buyer: amount, 'all' or 40%.")]),
    ("dispute", "Buyer: open a dispute before the arbiter (deposits its fee).",
     "--from buyer", []),
    ("resolve", "Arbiter: rule how the held amount is split.",
     "--from arbiter --to-buyer 60%",
     [click.option("--to-buyer", "amount", required=True,
                   help="What goes back to the buyer: amount, 'all' or 60%.")]),
]


def _order_step(step: str, help_text: str, example: str, extra: list[Any]) -> None:
    def body(sender: str, order_id: int, raw: bool, **kw: Any) -> Any:
        return _invoke("order_act", step, sender, order_id, raw=raw, **kw)

    body.__name__ = f"order_{step.replace('-', '_')}"
    body.__doc__ = f"{help_text}\n\n    \b\n        agora order {step} 7 {example}\n    "
    f: Any = click.argument("order_id", type=_ID, metavar="ORDER")(body)
    for opt in extra:
        f = opt(f)
    _wallet_command(order, step, signing=True, amounts=True)(f)


for _step in _ORDER_STEPS:
    _order_step(*_step)


@_wallet_command(order, "show")
@click.argument("order_id", type=_ID, metavar="ORDER")
def order_show(order_id: int) -> Any:
    """An order: its state, terms, parties, history and what each can do next.

    \b
        agora order show 7
    """
    return _invoke("order_show", order_id)


@_wallet_command(order, "list")
@click.option("--buyer", metavar="ADDRESS|NAME")
@click.option("--merchant", metavar="ADDRESS|NAME")
@click.option("--state", help="Only orders in this state (paid, shipped, ...).")
@click.option("--limit", type=click.IntRange(1, 1000), default=50, show_default=True)
def order_list(buyer: str | None, merchant: str | None, state: str | None,
               limit: int) -> Any:
    """A buyer's or a merchant's orders, newest first.

    \b
        agora order list --buyer buyer --state shipped
    """
    return _invoke("order_list", buyer=buyer, merchant=merchant, state=state, limit=limit)


@main.group()
def group() -> None:
    """Group deals: a lower price once enough buyers join before a deadline."""


@_wallet_command(group, "join", signing=True)
@click.argument("group_id", type=_ID, metavar="[GROUP]", required=False)
@click.option("--listing", "listing_id", type=_ID,
              help="Start a new group of this listing instead.")
@click.option("--quantity", type=click.IntRange(min=1), default=1, show_default=True)
@click.option("--arbiter", metavar="ADDRESS|NAME",
              help="One of the listing's arbiters [default: its first].")
@click.option("--no-arbiter", is_flag=True, help="No arbiter (where the listing allows).")
@click.option("--referrer", metavar="ADDRESS|NAME", help="Who referred you [default: the "
              "group's leader].")
def group_join(sender: str, group_id: int | None, listing_id: int | None, quantity: int,
               arbiter: str | None, no_arbiter: bool, referrer: str | None) -> Any:
    """Join a group (paying the group price into escrow), or start one with --listing.

    \b
        agora group join --listing 2 --from buyer
        agora group join 1 --from referrer
    """
    return _invoke("group_join", sender, group_id=group_id, listing_id=listing_id,
                   quantity=quantity, arbiter=arbiter, no_arbiter=no_arbiter,
                   referrer=referrer)


@_wallet_command(group, "leave", signing=True)
@click.argument("group_id", type=_ID, metavar="GROUP")
def group_leave(sender: str, group_id: int) -> Any:
    """Leave an open group: your payment comes back.

    \b
        agora group leave 1 --from buyer
    """
    return _invoke("group_leave", sender, group_id)


@_wallet_command(group, "close", signing=True)
@click.argument("group_id", type=_ID, metavar="GROUP")
@click.option("--no-refunds", is_flag=True, help="Only close; members claim their refunds.")
def group_close(sender: str, group_id: int, no_refunds: bool) -> Any:
    """Close a group that did not fill by its deadline and refund every member.

    \b
        agora group close 1 --from buyer
    """
    return _invoke("group_close", sender, group_id, refunds=not no_refunds, progress=True)


@_wallet_command(group, "show")
@click.argument("group_id", type=_ID, metavar="GROUP")
def group_show(group_id: int) -> Any:
    """A group deal: its members, price and deadline.

    \b
        agora group show 1
    """
    return _invoke("group_show", group_id)


@main.group()
def review() -> None:
    """Reviews: only the buyer of an ended order, once; one reply from the merchant."""


@_wallet_command(review, "post", signing=True)
@click.argument("order_id", type=_ID, metavar="ORDER")
@click.option("--rating", type=click.IntRange(1, 5), required=True, help="1 to 5 stars.")
@click.option("--text", default="", help="What you thought (a few hundred bytes).")
def review_post(sender: str, order_id: int, rating: int, text: str) -> Any:
    """Review an order that has ended (its bounty, if any, is paid to you).

    \b
        agora review post 7 --from buyer --rating 5 --text "Lovely mug"
    """
    return _invoke("review_post", sender, order_id, rating, text)


@_wallet_command(review, "reply", signing=True)
@click.argument("order_id", type=_ID, metavar="ORDER")
@click.option("--text", required=True, help="The merchant's one reply.")
def review_reply(sender: str, order_id: int, text: str) -> Any:
    """Merchant: reply once to the review of an order.

    \b
        agora review reply 7 --from merchant --text "Thank you!"
    """
    return _invoke("review_reply", sender, order_id, text)


@_wallet_command(review, "list")
@click.option("--merchant", metavar="ADDRESS|NAME")
@click.option("--listing", "listing_id", type=_ID)
@click.option("--order", "order_id", type=_ID)
@click.option("--limit", type=click.IntRange(1, 1000), default=50, show_default=True)
def review_list(merchant: str | None, listing_id: int | None, order_id: int | None,
                limit: int) -> Any:
    """Reviews of a merchant (with its reputation), a listing or an order.

    \b
        agora review list --merchant merchant
    """
    return _invoke("review_list", merchant=merchant, listing_id=listing_id,
                   order_id=order_id, limit=limit)


@main.group()
def query() -> None:
    """Read the chain: status, blocks, transactions, accounts, merchants, events."""


def _query(function: str, *args: Any, **kwargs: Any) -> Any:
    return _invoke(function, *args, module="query", **kwargs)


@_wallet_command(query, "status")
def query_status() -> Any:
    """The node, its chain and height, and the commerce contracts' addresses.

    \b
        agora query status
    """
    return _query("status")


@_wallet_command(query, "block")
@click.argument("height", type=_ID, required=False)
def query_block(height: int | None) -> Any:
    """A block (the latest without HEIGHT).

    \b
        agora query block 12
    """
    return _query("block", height)


@_wallet_command(query, "tx")
@click.argument("tx_hash", metavar="HASH")
def query_tx(tx_hash: str) -> Any:
    """A committed transaction, its receipt and decoded events.

    \b
        agora query tx 5f3a...
    """
    return _query("tx", tx_hash)


@_wallet_command(query, "account")
@click.argument("who", metavar="ADDRESS|NAME")
def query_account(who: str) -> Any:
    """An account: balances and nonce.

    \b
        agora query account merchant
    """
    return _query("account", who)


@_wallet_command(query, "history")
@click.argument("who", metavar="ADDRESS|NAME")
@click.option("--limit", type=click.IntRange(1, 1000), default=20, show_default=True)
def query_history(who: str, limit: int) -> Any:
    """An account's latest transactions.

    \b
        agora query history buyer
    """
    return _query("history", who, limit)


@_wallet_command(query, "merchant")
@click.argument("who", metavar="ADDRESS|NAME")
def query_merchant(who: str) -> Any:
    """A merchant's reputation and order record.

    \b
        agora query merchant merchant
    """
    return _query("merchant", who)


@_wallet_command(query, "events")
@click.argument("contract", metavar="CONTRACT")
@click.option("--name", help="Only events of this name (OrderPlaced, Payout, ...).")
@click.option("--from-height", type=click.IntRange(min=0))
@click.option("--to-height", type=click.IntRange(min=0))
@click.option("--limit", type=click.IntRange(1, 1000), default=50, show_default=True)
def query_events(contract: str, name: str | None, from_height: int | None,
                 to_height: int | None, limit: int) -> Any:
    """Contract events (token, catalog, escrow, reviews or an address), newest first.

    \b
        agora query events escrow --name Payout
    """
    return _query("events", contract, name=name, from_height=from_height,
                  to_height=to_height, limit=limit)


# ---------------------------------------------------------------------- validators


@main.group("validator")
def validator_group() -> None:
    """Validator-set governance: propose adding, removing or re-weighting a validator
    (or a chain parameter), vote, and read the set, the proposals and the evidence of
    double votes.

    Only validators propose and vote, each with its power. A proposal passes when
    validators holding more than two thirds of the power have voted yes; the change
    takes effect two heights after the block that passed it.

    \b
        agora validator propose-add --from node0 --validator node4 --power 10
        agora validator vote --from node1 1 yes
    """


def _gov(function: str, *args: Any, **kwargs: Any) -> Any:
    return _invoke(function, *args, module="governance", **kwargs)


#: A validator's voting power (governance.agc: 1 to below 2**60).
_POWER = click.IntRange(1, 2**60 - 1)


@_wallet_command(validator_group, "propose-add", signing=True)
@click.option("--validator", "--key", "validator", required=True,
              metavar="PUBKEY_HEX|KEYNAME",
              help="The new validator: its public key (64 hex digits), or the name (or "
                   "address) of a key held here.")
@click.option("--power", type=_POWER, required=True, help="Its voting power.")
@click.option("--name", help="Its name in the set [default: the key's name].")
@click.option("--p2p", metavar="NODEID@HOST:PORT",
              help="Where its node is reached [default in a localnet: its node's].")
def validator_propose_add(sender: str, validator: str, power: int, name: str | None,
                          p2p: str | None) -> Any:
    """Propose adding a validator (your own yes vote is counted with it).

    \b
        agora validator propose-add --from node0 --validator node4 --power 10
        agora validator propose-add --from node0 --power 5 --name carol \\
            --validator 3b6a27bcceb6a42d62a3a8d02a6f0d73653215771de243a63ac048a18b59da29 \\
            --p2p 9f86d081884c7d659a2feaa0c55ad015a3bf4f1b@10.0.0.7:26656
    """
    return _gov("propose_add", sender, validator, power, name=name, p2p=p2p)


@_wallet_command(validator_group, "propose-remove", signing=True)
@click.option("--validator", required=True, metavar="ADDRESS|KEYNAME",
              help="The validator to remove: its address, a key's name or its name in "
                   "the set.")
def validator_propose_remove(sender: str, validator: str) -> Any:
    """Propose removing a validator (the set keeps at least 4).

    \b
        agora validator propose-remove --from node0 --validator node3
    """
    return _gov("propose_remove", sender, validator)


@_wallet_command(validator_group, "propose-power", signing=True)
@click.option("--validator", required=True, metavar="ADDRESS|KEYNAME",
              help="The validator: its address, a key's name or its name in the set.")
@click.option("--power", type=_POWER, required=True, help="Its new voting power.")
def validator_propose_power(sender: str, validator: str, power: int) -> Any:
    """Propose giving a validator another voting power (less than a third of the total
    power may move in one step).

    \b
        agora validator propose-power --from node0 --validator node2 --power 12
    """
    return _gov("propose_power", sender, validator, power)


@_wallet_command(validator_group, "propose-param", signing=True)
@click.option("--name", required=True, type=click.Choice(["min_gas_price", "max_block_gas"]),
              help="The chain parameter.")
@click.option("--value", required=True, type=click.IntRange(0, 2**63 - 1),
              help="Its new value.")
@click.option("--effective", type=_ID, metavar="HEIGHT",
              help="The height it takes effect at (at least two blocks after the "
                   "proposal's) [default: the earliest].")
def validator_propose_param(sender: str, name: str, value: int, effective: int | None) -> Any:
    """Propose changing a chain parameter from a height on.

    \b
        agora validator propose-param --from node0 --name min_gas_price --value 2 \\
            --effective 500
    """
    return _gov("propose_param", sender, name, value, effective)


@_wallet_command(validator_group, "vote", signing=True)
@click.argument("proposal_id", type=_ID, metavar="PROPOSAL")
@click.argument("choice", type=click.Choice(["yes", "no"], case_sensitive=False),
                metavar="yes|no")
def validator_vote(sender: str, proposal_id: int, choice: str) -> Any:
    """Vote on a proposal with all your power; says whether it passed and from which
    height the change holds.

    \b
        agora validator vote --from node1 3 yes
    """
    return _gov("vote", sender, proposal_id, choice)


@_wallet_command(validator_group, "proposals")
@click.option("--state", type=click.Choice(["open", "passed", "rejected", "expired", "void"]),
              help="Only proposals of this status.")
@click.option("--limit", type=click.IntRange(1, 100), default=20, show_default=True)
def validator_proposals(state: str | None, limit: int) -> Any:
    """The governance proposals, newest first, with their votes and what they need.

    \b
        agora validator proposals --state open
    """
    return _gov("proposals", state=state, limit=limit)


@_wallet_command(validator_group, "list")
@click.option("--height", type=_ID, help="The set of this height [default: the latest].")
def validator_list(height: int | None) -> Any:
    """The validator set: names, addresses, power and share, since when, node addresses.

    \b
        agora validator list
        agora validator list --height 120 --json
    """
    return _gov("validators", height=height)


@_wallet_command(validator_group, "evidence")
@click.option("--validator", metavar="ADDRESS|KEYNAME", help="Only this validator's.")
@click.option("--limit", type=click.IntRange(1, 100), default=20, show_default=True)
def validator_evidence(validator: str | None, limit: int) -> Any:
    """Double votes recorded on chain, and the removals they proposed.

    \b
        agora validator evidence --validator node2
    """
    return _gov("evidence", validator=validator, limit=limit)


# ---------------------------------------------------------------------- keys

def _keys_options(f: click.decorators.FC) -> click.decorators.FC:
    """--keystore, --home and --json, shared by every `agora keys` command."""
    f = click.option("--json", "as_json", is_flag=True, help="Print one JSON object.")(f)
    f = click.option("--home", type=click.Path(file_okay=False),
                     help="A node home; its keys/ is the keystore [default: $AGORA_HOME, "
                          "else ~/.agora].")(f)
    return click.option("--keystore", type=click.Path(file_okay=False),
                        help="The keystore directory [default: HOME/keys].")(f)


_PASSPHRASE_FILE_HELP = ("the passphrase is this file's first line [default: "
                         "$AGORA_PASSPHRASE, else a hidden prompt].")


def _keys_prompt(text: str) -> str:
    return str(click.prompt(text, hide_input=True))


def _keys_warn(message: str) -> None:
    click.echo(message, err=True)


def _keys_yes(question: str) -> bool:
    return True


def _keys_ask(question: str) -> bool:
    return click.confirm(question, default=False)


def _keys_error(exc: Exception) -> click.ClickException:
    """A name that cannot be used is a usage error (exit 2); a refusal exits 1."""
    from node.wallet.keystore import KeystoreUsageError

    if isinstance(exc, KeystoreUsageError):
        return click.UsageError(str(exc))
    return click.ClickException(str(exc))


def _keys_echo(text: str, warnings: tuple[str, ...]) -> None:
    for warning in warnings:
        click.echo(warning, err=True)
    click.echo(text)


@main.group()
def keys() -> None:
    """Wallet keys: one passphrase-encrypted file (mode 0600) per key.

    Scripts give the passphrase with AGORA_PASSPHRASE or --passphrase-file.
    """


@keys.command("new")
@click.argument("name")
@click.option("--passphrase-file", type=click.Path(dir_okay=False),
              help="The new key's passphrase is this file's first line [default: "
                   "$AGORA_PASSPHRASE, else a hidden prompt, asked twice].")
@_keys_options
def keys_new(name: str, passphrase_file: str | None, keystore: str | None, home: str | None,
             as_json: bool) -> None:
    """Create a key NAME, encrypted with a passphrase (asked twice).

    \b
        agora keys new alice
        AGORA_PASSPHRASE=... agora keys new alice --home ./devnet --json
    """
    from node.wallet import keys as k
    from node.wallet.keystore import KeystoreError

    source = k.passphrase_source(passphrase_file, warn=_keys_warn,
                                 prompt=_keys_prompt if sys.stdin.isatty() else None)
    try:
        report = k.new_key(k.open_keystore(keystore, home), name, source)
    except KeystoreError as exc:
        raise _keys_error(exc) from None
    _keys_echo(report.render(as_json), report.warnings)


@keys.command("list")
@_keys_options
def keys_list(keystore: str | None, home: str | None, as_json: bool) -> None:
    """List the keys: name, address, encrypted or not.

    \b
        agora keys list --home ./localnet
    """
    from node.wallet import keys as k

    report = k.list_keys(k.open_keystore(keystore, home))
    _keys_echo(report.render(as_json), report.warnings)


@keys.command("show")
@click.argument("name")
@_keys_options
def keys_show(name: str, keystore: str | None, home: str | None, as_json: bool) -> None:
    """Show key NAME: address, public key, encryption and KDF parameters, file.

    \b
        agora keys show alice --json
    """
    from node.wallet import keys as k
    from node.wallet.keystore import KeystoreError

    try:
        report = k.show_key(k.open_keystore(keystore, home), name)
    except KeystoreError as exc:
        raise _keys_error(exc) from None
    _keys_echo(report.render(as_json), report.warnings)


@keys.command("import")
@click.argument("name")
@click.option("--file", "key_file", type=click.Path(dir_okay=False), metavar="EXPORTED.json",
              help="A key file from `agora keys export` (it stays encrypted as it is).")
@click.option("--seed-file", type=click.Path(dir_okay=False),
              help="A file whose first line is the 32-byte seed in hex [default: a hidden "
                   "prompt].")
@click.option("--passphrase-file", type=click.Path(dir_okay=False),
              help="With a seed: " + _PASSPHRASE_FILE_HELP)
@_keys_options
def keys_import(name: str, key_file: str | None, seed_file: str | None,
                passphrase_file: str | None, keystore: str | None, home: str | None,
                as_json: bool) -> None:
    """Import a key as NAME: an exported key file, or a seed to encrypt.

    \b
        agora keys export alice > alice.json   # on the old machine
        agora keys import alice --file alice.json
        agora keys import bob --seed-file bob.seed --passphrase-file pass.txt
    """
    from node.wallet import keys as k
    from node.wallet.keystore import KeystoreError

    if key_file is not None and seed_file is not None:
        raise click.UsageError("give either --file EXPORTED.json or --seed-file FILE")
    interactive = sys.stdin.isatty()
    source = k.passphrase_source(passphrase_file, warn=_keys_warn,
                                 prompt=_keys_prompt if interactive else None)
    try:
        report = k.import_key(k.open_keystore(keystore, home), name, file=key_file,
                              seed_file=seed_file, passphrase=source,
                              seed_prompt=_keys_prompt if interactive else None)
    except KeystoreError as exc:
        raise _keys_error(exc) from None
    _keys_echo(report.render(as_json), report.warnings)


@keys.command("export")
@click.argument("name")
@click.option("--unsafe-plaintext", is_flag=True,
              help="Print the seed in hex, in clear, instead of the encrypted file.")
@click.option("--yes", is_flag=True, help="With --unsafe-plaintext: do not ask to confirm.")
@click.option("--passphrase-file", type=click.Path(dir_okay=False),
              help="With --unsafe-plaintext: " + _PASSPHRASE_FILE_HELP)
@_keys_options
def keys_export(name: str, unsafe_plaintext: bool, yes: bool, passphrase_file: str | None,
                keystore: str | None, home: str | None, as_json: bool) -> None:
    """Print key NAME's encrypted file (or, on request, its seed in clear).

    \b
        agora keys export alice > alice.json
        agora keys export alice --unsafe-plaintext --yes --passphrase-file pass.txt
    """
    from node.wallet import keys as k
    from node.wallet.keystore import KeystoreError

    interactive = sys.stdin.isatty()
    store = k.open_keystore(keystore, home)
    try:
        if unsafe_plaintext:
            source = k.passphrase_source(passphrase_file, warn=_keys_warn,
                                         prompt=_keys_prompt if interactive else None)
            confirm = _keys_yes if yes else (_keys_ask if interactive else None)
            report = k.export_seed(store, name, source, confirm)
        else:
            report = k.export_key(store, name)
    except KeystoreError as exc:
        raise _keys_error(exc) from None
    _keys_echo(report.render(as_json), report.warnings)


@keys.command("delete")
@click.argument("name")
@click.option("--yes", is_flag=True, help="Do not ask to confirm.")
@_keys_options
def keys_delete(name: str, yes: bool, keystore: str | None, home: str | None,
                as_json: bool) -> None:
    """Delete key NAME (asks first; back it up with `agora keys export`).

    \b
        agora keys delete alice --yes
    """
    from node.wallet import keys as k
    from node.wallet.keystore import KeystoreError

    confirm = _keys_yes if yes else (_keys_ask if sys.stdin.isatty() else None)
    try:
        report = k.delete_key(k.open_keystore(keystore, home), name, confirm)
    except KeystoreError as exc:
        raise _keys_error(exc) from None
    _keys_echo(report.render(as_json), report.warnings)


if __name__ == "__main__":
    main()
