"""The `agora` command: parses arguments and calls into node/ — no logic of its own."""

from __future__ import annotations

import json
import sys
from importlib import metadata

import click

_FALLBACK_VERSION = "0.1.0"


def _version() -> str:
    """The installed distribution's version; the fallback covers running from a source tree."""
    try:
        return metadata.version("agora")
    except metadata.PackageNotFoundError:
        return _FALLBACK_VERSION


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(_version(), "--version", prog_name="agora", message="%(prog)s %(version)s")
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


@main.group(invoke_without_command=True)
@click.option("--validators", type=click.IntRange(1, 64), default=4, show_default=True)
@click.option("--home", type=click.Path(file_okay=False), default="./localnet",
              show_default=True, help="Where the localnet lives (HOME/nodeN are node homes).")
@click.option("--base-port", type=click.IntRange(1024, 65000), default=None,
              help="Node i listens on BASE+2i (p2p) and BASE+2i+1 (rpc) [default: 26600, "
                   "or what an existing localnet was made with].")
@click.pass_context
def localnet(ctx: click.Context, validators: int, home: str, base_port: int | None) -> None:
    """Run N validators on 127.0.0.1 until Ctrl-C (creating them on first use).

    Prints where each node listens, then a status line every few seconds.
    """
    if ctx.invoked_subcommand is not None:
        return
    from pathlib import Path

    from node import localnet as ln
    from node.home import HomeError

    try:
        ln.run(Path(home), validators, base_port, click.echo)
    except HomeError as exc:
        raise click.ClickException(str(exc)) from None


@localnet.command("init")
@click.option("--validators", type=click.IntRange(1, 64), default=4, show_default=True)
@click.option("--home", type=click.Path(file_okay=False), default="./localnet",
              show_default=True)
@click.option("--base-port", type=click.IntRange(1024, 65000), default=None,
              help="Node i listens on BASE+2i (p2p) and BASE+2i+1 (rpc) [default: 26600].")
def localnet_init(validators: int, home: str, base_port: int | None) -> None:
    """Generate the localnet's keys, genesis and node homes, without starting it."""
    from pathlib import Path

    from node import localnet as ln
    from node.home import HomeError

    try:
        infos = ln.init(Path(home), validators, base_port)
    except HomeError as exc:
        raise click.ClickException(str(exc)) from None
    for info in infos:
        click.echo(f"node{info.index}: home {info.home}  rpc {info.rpc}  p2p {info.p2p}")
    click.echo(f"wrote {Path(home) / 'localnet.json'}")


@main.command()
@click.option("--validators", type=click.IntRange(1, 16), default=4, show_default=True)
@click.option("--txs", type=click.IntRange(min=1), default=5_000, show_default=True,
              help="Transfers for the throughput run.")
@click.option("--senders", type=click.IntRange(min=1), default=200, show_default=True)
@click.option("--finality-txs", type=click.IntRange(min=1), default=100, show_default=True)
@click.option("--profile", is_flag=True, help="Profile the nodes; print the busiest one's.")
def bench(validators: int, txs: int, senders: int, finality_txs: int,
          profile: bool) -> None:
    """Start a localnet here and measure finality and committed transactions/s."""
    from bench.localnet import main as bench_main

    argv = ["--validators", str(validators), "--txs", str(txs), "--senders", str(senders),
            "--finality-txs", str(finality_txs)]
    sys.exit(bench_main(argv + (["--profile"] if profile else [])))


if __name__ == "__main__":
    main()
