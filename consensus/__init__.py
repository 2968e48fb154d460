"""Consensus: the PBFT-style protocol core (``core``, sans-I/O: events in, actions
out), its signed messages (``messages``), the write-ahead sign log (``signlog``) and
the asyncio driver that binds the core to the network, the clock and block sync
(``driver``). Validator sets and commit certificates are chain types
(``chain.validators``, ``chain.block``)."""
