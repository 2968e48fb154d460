"""What a transaction costs before its action runs (the executor's rule, importable
without the executor: the wallet prices its transactions with it).

Gas: :data:`TX_GAS` per transaction plus :data:`TX_BYTE_GAS` per encoded byte, plus
:data:`DEPLOY_BYTE_GAS` per byte of deployed code; a call's instructions use the rest
of the gas limit.
"""

from __future__ import annotations

from chain.codec import packb_plain
from chain.tx import Deploy, Transaction

TX_GAS = 2_000
TX_BYTE_GAS = 10
DEPLOY_BYTE_GAS = 200


def intrinsic_gas(tx: Transaction) -> int:
    """Gas a transaction costs before its action runs."""
    gas = TX_GAS + TX_BYTE_GAS * len(tx.encode())
    if type(tx.action) is Deploy:
        gas += DEPLOY_BYTE_GAS * len(tx.action.code)
    return gas


def encode_args(args: list[bytes]) -> bytes:
    """The ``args`` bytes of a call or deploy: a msgpack array of byte strings."""
    return packb_plain(list(args))
