"""Doctest settings: the examples run with the same strict rank promotion as the tests."""

import jax

jax.config.update("jax_numpy_rank_promotion", "raise")
