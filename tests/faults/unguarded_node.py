"""A validator with the double-sign guard forced off, for one control test only
(``test_control_the_trap_catches_a_validator_without_the_guard``): never a production
flag.

    python tests/faults/unguarded_node.py --home HOME

runs the ordinary node of ``HOME`` but builds its consensus core with
``double_sign_guard=False`` whatever the daemon asks, so a validator that lost its sign
log signs at once, as nodes did before the guard — the trap in test_faults.py must
then see it sign twice.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

import node.daemon as daemon  # noqa: E402 - after the path is set
from consensus.core import Core  # noqa: E402


class UnguardedCore(Core):
    def __init__(self, *args, **kwargs) -> None:
        kwargs["double_sign_guard"] = False
        super().__init__(*args, **kwargs)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--home", required=True, type=Path)
    args = parser.parse_args()
    daemon.Core = UnguardedCore  # type: ignore[misc]
    daemon.run_node(args.home)


if __name__ == "__main__":
    main()
