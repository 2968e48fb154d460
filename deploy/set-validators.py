#!/usr/bin/env python3
"""Make a genesis.json the genesis of several validators: its ``validators`` become
the given ed25519 public keys (hex), in order, each with voting power 10 and named
validator-0, validator-1, ... Everything else in the file (chain id, time, balances,
contracts) is kept. Standard library only, so it runs wherever Python does.

    python3 deploy/set-validators.py genesis.json PUBKEY0 PUBKEY1 PUBKEY2 PUBKEY3

Each validator's public key is the ``public_key`` of its home's
``keys/validator_key.json`` (never share the ``seed`` beside it).
"""

import json
import re
import sys

POWER = 10


def main(argv: list[str]) -> int:
    if len(argv) < 2:
        print(__doc__.strip(), file=sys.stderr)
        return 2
    path, keys = argv[0], [k.lower() for k in argv[1:]]
    for key in keys:
        if not re.fullmatch(r"[0-9a-f]{64}", key):
            print(f"{key!r} is not an ed25519 public key (64 hex digits)", file=sys.stderr)
            return 2
    if len(set(keys)) != len(keys):
        print("a public key is given twice", file=sys.stderr)
        return 2
    with open(path, encoding="utf-8") as f:
        genesis = json.load(f)
    genesis["validators"] = [{"name": f"validator-{i}", "public_key": key, "power": POWER}
                             for i, key in enumerate(keys)]
    with open(path, "w", encoding="utf-8") as f:
        f.write(json.dumps(genesis, indent=2) + "\n")
    print(f"{path}: {len(keys)} validators, power {POWER} each")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
