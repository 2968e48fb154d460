"""A p2p peer of the test's own — the node's :class:`p2p.peers.PeerManager` with a
fresh node key, not a validator — running on an event loop in its own thread, so a
synchronous test or fixture can start it, read it and close it. The wire spy and the
redialling relay are built on it; each says what it does with the network in
:meth:`SidePeer.configure`."""

from __future__ import annotations

import asyncio
import contextlib
import threading
from collections.abc import Callable, Iterable

from chain.keys import PrivateKey
from p2p.peers import P2PSettings, PeerManager


class SidePeer:
    def __init__(self, chain_id: str, peers: Iterable[str], name: str,
                 height: Callable[[], int] | None = None) -> None:
        self.chain_id = chain_id
        self._height = height
        # Redial a restarted node at once: its first messages matter most here.
        self._settings = P2PSettings(
            listen_host="127.0.0.1", listen_port=0, persistent_peers=tuple(peers),
            pex=False, ping_interval=1.0, peer_timeout=5.0, backoff_base=0.1,
            backoff_max=0.3)
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, name=name,
                                        daemon=True)
        self._network: PeerManager | None = None

    def configure(self, network: PeerManager) -> None:
        """Hook handlers onto the network before it starts."""

    def start(self) -> None:
        self._thread.start()
        asyncio.run_coroutine_threadsafe(self._start(), self._loop).result(10)

    async def _start(self) -> None:
        network = (PeerManager(PrivateKey.generate(), self.chain_id, self._settings)
                   if self._height is None else
                   PeerManager(PrivateKey.generate(), self.chain_id, self._settings,
                               height=self._height))
        self.configure(network)
        self._network = network
        await network.start()

    def close(self) -> None:
        if not self._thread.is_alive():
            return
        if self._network is not None:
            with contextlib.suppress(Exception):
                asyncio.run_coroutine_threadsafe(self._network.stop(), self._loop).result(10)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(5)
