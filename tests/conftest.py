"""Strict settings shared by every test: implicit rank promotion is an error.

Property tests draw the same examples on every run (the ``ci`` hypothesis profile, the default),
so a test run is reproducible. ``pytest --hypothesis-profile=explore`` draws fresh random examples
on each run to search for new failures; add any it finds to its test as an ``@example``.
"""

import jax
from hypothesis import settings

jax.config.update("jax_numpy_rank_promotion", "raise")

settings.register_profile("ci", derandomize=True, database=None, print_blob=True)
settings.register_profile("explore", derandomize=False, print_blob=True)
settings.load_profile("ci")
