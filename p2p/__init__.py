"""Peer-to-peer networking over TCP: the Noise XX handshake (``noise``) bound to node
keys with encrypted framing (``secure``, sans-I/O), one link's asyncio shell
(``connection``), wire messages (``messages``), the peer manager (``peers``: dialling,
HELLO, broadcast, request/response), and the pure rules it follows (``policy``:
addresses, backoff, bans, the address book; ``gossip``: who knows which
transaction)."""
