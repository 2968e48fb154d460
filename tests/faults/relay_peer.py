"""A peer that serves block sync by relaying, and redials once in the middle of it.

:class:`RedialingRelay` is a p2p peer (its own node key, not a validator, the node's own
:class:`p2p.peers.PeerManager`) linked to two nodes: ``upstream``, a node that holds
the chain, and ``target``, a node that is behind. Its HELLO claims ``upstream``'s
height, so ``target`` starts a block sync from it; each ``consensus/block`` request is
answered with ``upstream``'s own answer. On the first request only, before answering,
it dials ``target`` a second time — what an honest peer does when it finds its link
half-open or restarts — so ``target`` replaces the link the request is waiting on
(``p2p.policy.keeps_new_connection``: the same direction twice, the newer link is the
live one). Everything after that is served normally, on the new link.
"""

from __future__ import annotations

from side_peer import SidePeer

from consensus.driver import BLOCK_REQUEST
from p2p.errors import RequestFailed
from p2p.peers import PeerManager
from p2p.policy import PeerAddress


class RedialingRelay(SidePeer):
    def __init__(self, chain_id: str, upstream: str, target: str, height: int) -> None:
        super().__init__(chain_id, (upstream, target), "relay-peer",
                         height=lambda: self.height)
        self.upstream = PeerAddress.parse(upstream)
        self.target = PeerAddress.parse(target)
        self.height = height
        self.requests = 0
        self.redialled = False
        self.served = 0

    def configure(self, network: PeerManager) -> None:
        network.request_handlers[BLOCK_REQUEST] = self._serve_block

    async def _serve_block(self, peer: bytes, body: bytes) -> bytes:
        network = self._network
        assert network is not None
        self.requests += 1
        if peer == self.target.node_id and not self.redialled:
            self.redialled = True
            await network.dial(self.target)  # the target drops the link this rides on
        try:
            answer = await network.request(self.upstream.node_id, BLOCK_REQUEST, body, 5.0)
        except RequestFailed as exc:
            raise RequestFailed(f"relay: {exc}") from None
        self.served += 1
        return answer
