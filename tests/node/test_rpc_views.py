"""The fast JSON builders of blocks and transactions give exactly what their pydantic
views dump (the views also give the OpenRPC schemas, so the two must not drift)."""

from __future__ import annotations

from chain.keys import PrivateKey
from chain.system import CATALOG_ADDRESS, ESCROW_ADDRESS
from chain.tx import Call, Deploy, Transaction, Transfer
from node.rpc.views import TxView, tx_json
from vm.contracts import encode_call

KEY = PrivateKey.from_seed_text("views")


class FakeChain:
    """Only what tx_json reads of a chain view: the known contracts."""

    def __init__(self) -> None:
        from node.chainview import KnownContract
        from vm.contracts import compiled

        self.contracts = {ESCROW_ADDRESS: KnownContract("escrow", ESCROW_ADDRESS,
                                                        compiled("escrow").abi)}


def txs() -> list[Transaction]:
    actions = [
        Transfer(bytes(range(20)), 12_345),
        Call(ESCROW_ADDRESS, "ship", encode_call("escrow", "ship", 7, "DHL 123"), 0),
        Call(ESCROW_ADDRESS, "ship", b"\xc1", 0),  # args that do not decode
        Call(CATALOG_ADDRESS, "pause", encode_call("catalog", "pause", 1), 5),  # ABI unknown here
        Deploy(b"\x00" * 40, b"", 9),
    ]
    return [Transaction.create(KEY, "views", n, a, gas_limit=100_000, gas_price=2,
                               memo="m") for n, a in enumerate(actions)]


def test_tx_json_is_what_the_view_dumps() -> None:
    chain = FakeChain()
    for tx in txs():
        for view_chain in (chain, None):
            fast = tx_json(tx, view_chain)  # type: ignore[arg-type]
            assert fast == TxView.model_validate(fast).model_dump(mode="json")
            assert fast == TxView.of(tx, view_chain).model_dump(mode="json")  # type: ignore[arg-type]
    shipped = tx_json(txs()[1], chain)  # type: ignore[arg-type]
    assert shipped["action"]["decoded_args"] == {"order_id": "7", "tracking": "DHL 123"}
    assert shipped["action"]["contract_name"] == "escrow"
