"""TCP transport: Noise XX handshake, encrypted framing, peers, gossip."""
