"""The examples run end to end and their measurements are sane."""

from pathlib import Path

import numpy as np


def test_deterministic_annealing(tmp_path):
    from examples.deterministic_annealing import main

    result = main(out_dir=tmp_path, steps=600, quiet=True)
    png = Path(result["png"])
    assert png.parent == tmp_path and png.is_file() and png.stat().st_size > 10_000
    assert result["n_centres_found"] == 6
    # From the same poor initial centres, Lloyd's algorithm gets stuck and annealing does not.
    assert result["distortion_annealed"] <= result["distortion_kmeans"]
    assert result["distortion_kmeans"] > 2.0 * result["distortion_annealed"]
    # The annealed centres are the blob means: within sampling error of the true centres, and
    # no worse in distortion than the true centres themselves.
    assert result["max_centre_error_annealed"] < 0.4
    assert result["distortion_annealed"] <= result["distortion_true_centres"] + 1e-6
    # F at beta = +inf is the hard distortion (float32 against float64).
    np.testing.assert_allclose(result["free_energy_at_inf"], result["distortion_annealed"], 1e-5)
    # The first split happens at or after Rose's critical beta, within a factor of 2.
    assert 1.0 <= result["beta_first_split"] / result["beta_critical_predicted"] < 2.0


def test_optax_beta():
    from examples.optax_beta import main

    steps = 120
    result = main(steps=steps, quiet=True)
    betas = result["betas_scheduled"]
    # No lag: the β used at step k is the schedule's value at k, from 1 up towards 50.
    np.testing.assert_allclose(betas[0], 1.0)
    np.testing.assert_allclose(betas[steps // 2], 50.0**0.5, rtol=1e-5)
    assert np.all(np.diff(betas) > 0)
    assert result["betas_controlled"][0] == 1.0
    # Both runs learn the blobs (the Bayes error of the data is about 6%).
    assert result["error_scheduled"] < 0.15
    assert result["error_controlled"] < 0.15
    assert abs(result["entropy_controlled"] - result["target_entropy"]) < 0.05
