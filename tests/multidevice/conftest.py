"""The meshes the 8-device tests share: an Auto and an Explicit (2, 4) mesh over axes x and y."""

import jax
import pytest


@pytest.fixture(scope="module", params=["auto", "explicit"])
def typed_mesh(request):
    """A (2, 4) mesh with Auto or Explicit axes (``jax.make_mesh`` defaults to Explicit)."""
    if len(jax.devices()) < 8:
        pytest.fail(
            f"needs 8 devices, found {len(jax.devices())}: run with "
            "XLA_FLAGS=--xla_force_host_platform_device_count=8"
        )
    kind = {"auto": jax.sharding.AxisType.Auto, "explicit": jax.sharding.AxisType.Explicit}
    return jax.make_mesh((2, 4), ("x", "y"), axis_types=(kind[request.param],) * 2)
