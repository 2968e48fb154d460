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

import asyncio
import contextlib
import threading

from chain.keys import PrivateKey
from consensus.driver import BLOCK_REQUEST
from p2p.errors import RequestFailed
from p2p.peers import P2PSettings, PeerManager
from p2p.policy import PeerAddress


class RedialingRelay:
    def __init__(self, chain_id: str, upstream: str, target: str, height: int) -> None:
        self.chain_id = chain_id
        self.upstream = PeerAddress.parse(upstream)
        self.target = PeerAddress.parse(target)
        self.height = height
        self.requests = 0
        self.redialled = False
        self.served = 0
        self._settings = P2PSettings(
            listen_host="127.0.0.1", listen_port=0,
            persistent_peers=(upstream, target), pex=False, ping_interval=1.0,
            peer_timeout=5.0, backoff_base=0.1, backoff_max=0.3)
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, name="relay-peer",
                                        daemon=True)
        self._network: PeerManager | None = None

    def start(self) -> None:
        self._thread.start()
        asyncio.run_coroutine_threadsafe(self._start(), self._loop).result(10)

    async def _start(self) -> None:
        network = PeerManager(PrivateKey.generate(), self.chain_id, self._settings,
                              height=lambda: self.height)
        network.request_handlers[BLOCK_REQUEST] = self._serve_block
        self._network = network
        await network.start()

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

    def close(self) -> None:
        if not self._thread.is_alive():
            return
        if self._network is not None:
            with contextlib.suppress(Exception):
                asyncio.run_coroutine_threadsafe(self._network.stop(), self._loop).result(10)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(5)
