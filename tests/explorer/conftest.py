"""Fixtures of the explorer tests.

``big_chain`` (session-scoped): a node home holding a 10,000-block market history
(tests/explorer/bigchain.py), built once per run in a few seconds and shared by every
test that asks for it. Run a node on it with ``async with bigchain.serve(big_chain) as
n:`` (``n.client`` an RPCClient, ``n.url``, ``n.node``); a node adds blocks to the
home, so later tests see a height of at least ``big_chain.height``, never less.
``AGORA_BIGCHAIN_BLOCKS`` builds another size (at least 200) for a quick local run.
"""

from __future__ import annotations

import os

import pytest
from bigchain import BigChain, build_big_chain


@pytest.fixture(scope="session")
def big_chain(tmp_path_factory: pytest.TempPathFactory) -> BigChain:
    blocks = int(os.environ.get("AGORA_BIGCHAIN_BLOCKS", "10000"))
    return build_big_chain(tmp_path_factory.mktemp("bigchain") / "home", blocks)
