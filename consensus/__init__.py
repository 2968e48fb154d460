"""PBFT-style consensus core (events in, actions out), validator sets, sign log, block sync."""
