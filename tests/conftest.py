"""Shared pytest set-up.

Hypothesis profiles: "ci" (the default) derandomizes every property test, so each run
draws the same examples and a failure reproduces on any machine; "dev" does the same
with fewer examples for quick local runs. Pick one with HYPOTHESIS_PROFILE=dev.
"""

from __future__ import annotations

import os

from hypothesis import settings

# derandomize=True fixes the seed per test; the example database is off so that a
# failure found on one machine cannot change which examples another machine runs.
settings.register_profile(
    "ci",
    deadline=None,
    derandomize=True,
    print_blob=True,
    database=None,
)
settings.register_profile(
    "dev",
    max_examples=20,
    deadline=None,
    derandomize=True,
    print_blob=True,
    database=None,
)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "ci"))
