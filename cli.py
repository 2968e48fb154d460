"""The `agora` command: parses arguments and calls into node/ — no logic of its own."""

from __future__ import annotations

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


if __name__ == "__main__":
    main()
