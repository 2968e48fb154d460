"""Commerce: listings, orders, group deals, merchants, arbiters, reviews and contract
events, read from the commerce contracts' views and the node's index."""

from __future__ import annotations
