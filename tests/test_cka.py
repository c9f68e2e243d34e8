"""Linear CKA and ensemble CKA (SPEC §6) on cases with known answers."""

from __future__ import annotations

import itertools
import statistics

import pytest
import torch

from hepfm_models import ensemble_cka, linear_cka


def _rep(seed: int, n: int = 200, p: int = 64) -> torch.Tensor:
    return torch.randn(n, p, generator=torch.Generator().manual_seed(seed), dtype=torch.float64)


def _kernel_cka(x: torch.Tensor, y: torch.Tensor) -> float:
    """Reference: HSIC form with Gram matrices and the centering matrix H = I - 11^T/n."""
    n = x.shape[0]
    h = torch.eye(n, dtype=torch.float64) - 1.0 / n
    k, l_ = h @ (x @ x.t()) @ h, h @ (y @ y.t()) @ h
    return float((k * l_).sum() / torch.sqrt((k * k).sum() * (l_ * l_).sum()))


def test_identity_gives_one_and_matches_the_gram_matrix_definition():
    """CKA(X, X) = 1, and the feature-space formula equals the n x n Gram-matrix (HSIC) form."""
    x, y = _rep(0), _rep(1, p=20) @ torch.randn(20, 64, generator=torch.Generator().manual_seed(2),
                                                  dtype=torch.float64) + 0.3 * _rep(0)
    assert linear_cka(x, x) == pytest.approx(1.0, abs=1e-12)
    assert linear_cka(x, y) == pytest.approx(_kernel_cka(x, y), rel=1e-10)
    assert linear_cka(x, y) == pytest.approx(linear_cka(y, x), rel=1e-12)


def test_invariances_column_permutation_rotation_scaling_translation():
    """CKA is 1 under a column permutation, an orthogonal rotation, isotropic scaling and a
    constant shift of one representation; float32 inputs are handled in float64."""
    x = _rep(3)
    perm = torch.randperm(64, generator=torch.Generator().manual_seed(0))
    q, _ = torch.linalg.qr(torch.randn(64, 64, generator=torch.Generator().manual_seed(1), dtype=torch.float64))
    for y in (x[:, perm], x @ q, 7.5 * x, x + 3.0, (x @ q * 0.01).float()):
        assert linear_cka(x, y) == pytest.approx(1.0, abs=1e-6)
    # a different number of features is fine: [x, x] spans the same space
    assert linear_cka(x, torch.cat([x, x], 1)) == pytest.approx(1.0, abs=1e-12)


def test_not_invariant_to_anisotropic_scaling_and_noise_lowers_it():
    """Stretching one direction lowers CKA; adding more noise lowers it monotonically;
    independent representations give a value near p/n, far below 1."""
    x = _rep(4, n=500, p=16)
    stretch = torch.ones(16, dtype=torch.float64)
    stretch[0] = 30.0
    assert linear_cka(x, x * stretch) < 0.5
    noise = _rep(5, n=500, p=16)
    values = [linear_cka(x, x + s * noise) for s in (0.0, 0.3, 1.0, 3.0)]
    assert values[0] == pytest.approx(1.0) and all(a > b for a, b in zip(values, values[1:]))
    assert linear_cka(x, noise) < 0.1


def test_ensemble_cka_is_mean_and_std_over_model_pairs():
    """Within one ensemble: all i < j pairs; between two ensembles: all (i, j) pairs;
    std is the population standard deviation over those pairs."""
    base = _rep(6, n=100, p=8)
    reps = [base + s * _rep(10 + k, n=100, p=8) for k, s in enumerate((0.1, 0.5, 1.0))]
    within = [linear_cka(a, b) for a, b in itertools.combinations(reps, 2)]
    mean, std = ensemble_cka(reps)
    assert mean == pytest.approx(statistics.fmean(within)) and std == pytest.approx(statistics.pstdev(within))
    other = [_rep(20, n=100, p=8), base]
    between = [linear_cka(a, b) for a, b in itertools.product(reps, other)]
    mean, std = ensemble_cka(reps, other)
    assert mean == pytest.approx(statistics.fmean(between)) and std == pytest.approx(statistics.pstdev(between))
    assert ensemble_cka([base, base]) == pytest.approx((1.0, 0.0))


def test_bad_inputs_raise_clear_errors():
    """Mismatched event counts, constant representations and a single model are rejected."""
    with pytest.raises(ValueError, match="same n"):
        linear_cka(_rep(0, n=10), _rep(1, n=11))
    with pytest.raises(ValueError, match="constant"):
        linear_cka(_rep(0, n=10), torch.ones(10, 4))
    with pytest.raises(ValueError, match="two models"):
        ensemble_cka([_rep(0)])
