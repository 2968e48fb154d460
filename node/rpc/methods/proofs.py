"""Proofs for light nodes: ``proof`` — state values with Merkle proofs against a
height's ``state_root``, and a transaction's (and its receipt's) inclusion proofs
against its block's ``tx_root`` and ``receipts_root``, with the header they hang from.
A light node checks the header against a commit certificate it verified, then each
proof against the header, and believes nothing else."""

from __future__ import annotations

from typing import Annotated

from pydantic import Field

from ...chainview import ViewError
from ..context import RPCContext
from ..protocol import Params, cannot_answer, rpc_method
from ..views import HeaderView, InclusionProofView, StateProofView, View
from .common import Hash, Height, HexBytes, answering


class ProofParams(Params):
    keys: Annotated[list[HexBytes], Field(max_length=64)] = Field(
        default_factory=list, description="Raw state keys (hex) to prove, at most 64.")
    height: Height | None = Field(None, description="The state of this height (latest "
                                                    "when omitted); must still be kept.")
    tx: Hash | None = Field(None, description="A committed transaction to prove.")


class TxProofView(View):
    hash: str
    height: int
    index: int
    tx: str
    receipt: str
    tx_proof: InclusionProofView
    receipt_proof: InclusionProofView
    header: HeaderView


class ProofView(View):
    height: int
    header: HeaderView | None = Field(None, description="The header whose state_root the "
                                                        "state proofs are against.")
    state: list[StateProofView]
    tx: TxProofView | None = None


@rpc_method("proof", ProofParams, ProofView)
async def proof(ctx: RPCContext, p: ProofParams) -> ProofView:
    """State proofs of raw keys at a height, and the inclusion proofs of a transaction
    and its receipt, each with the header to check them against."""
    chain = ctx.chain
    if not p.keys and p.tx is None:
        raise cannot_answer("ask for keys, a tx, or both")
    with answering():
        height = chain.height if p.height is None else p.height
        header = HeaderView.of(chain.header(height)) if height else None
        states = []
        for key in p.keys:
            if len(key) > 600:
                raise ViewError("a state key is at most 600 bytes")
            value, state_proof, h = chain.prove(key, height)  # type: ignore[arg-type]
            states.append(StateProofView.of(key, value, h, chain.state_root(h),  # type: ignore[arg-type]
                                            state_proof))
        tx_view = None
        if p.tx is not None:
            record = chain.tx(p.tx)  # type: ignore[arg-type]
            head, inclusion = chain.tx_proof(record)
            tx_view = TxProofView(
                hash=record.tx.hash.hex(), height=record.height, index=record.index,
                tx=record.tx.encode().hex(), receipt=record.receipt.encode().hex(),
                tx_proof=InclusionProofView.of(inclusion),
                receipt_proof=InclusionProofView.of(chain.receipt_proof(record)),
                header=HeaderView.of(head))
    return ProofView(height=height, header=header, state=states, tx=tx_view)
