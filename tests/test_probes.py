"""PCA baseline and linear probe, against hand-computed values."""

from __future__ import annotations

import numpy as np
import pytest

from sae_mnist.params import ProbeParams
from sae_mnist.probes import choose_C_on_validation, pca_basis, pca_codes, pca_fvu, probe, probe_accuracy


def test_pca_fvu_by_hand():
    # Training data: variance along x (4 * 1^2 ... sum of squares 2) exceeds variance along y (0.5): e1 first.
    train = np.array([[1.0, 0.0], [-1.0, 0.0], [0.0, 0.5], [0.0, -0.5]])
    mean, components = pca_basis(train)
    assert mean == pytest.approx([0, 0]) and np.abs(components) == pytest.approx(np.eye(2))
    # Test set [[2, 1], [0, -1]]: its own mean (1, 0), total variance 1+1+1+1 = 4.
    # k = 1 keeps x exactly; the y errors 1 and -1 remain: FVU = 2 / 4. k = 2 is exact.
    test = np.array([[2.0, 1.0], [0.0, -1.0]])
    assert pca_fvu(test, mean, components) == pytest.approx([0.5, 0.0])
    assert np.abs(pca_codes(test, mean, components, 1)[:, 0]) == pytest.approx([2.0, 0.0])


def test_pca_signs_are_fixed():
    rng = np.random.default_rng(0)
    x = rng.normal(size=(200, 5))
    _, a = pca_basis(x)
    _, b = pca_basis(x[::-1].copy())  # same data, another order: same basis, same signs
    assert a == pytest.approx(b, abs=1e-8)
    assert (a.sum(1) >= 0).all()


def blobs(n=300, seed=0):
    rng = np.random.default_rng(seed)
    centres = np.array([[0.0, 0.0], [5.0, 5.0], [-5.0, 5.0]])
    labels = rng.integers(0, 3, n)
    return centres[labels] + rng.normal(scale=0.3, size=(n, 2)), labels, rng


def test_probe_on_separable_data():
    x, labels, rng = blobs()
    result = probe_accuracy(x[:200], labels[:200], x[200:], labels[200:], C=1.0, max_iter=200)
    assert result["probe_accuracy"] == 1.0 and result["probe_converged"] == 1.0 and result["probe_C"] == 1.0
    assert 1 <= result["probe_iterations"] < 200
    # Shuffled labels: a linear probe cannot beat chance by much.
    shuffled = probe_accuracy(x[:200], rng.permutation(labels[:200]), x[200:], labels[200:], C=1.0, max_iter=200)
    assert shuffled["probe_accuracy"] < 0.6


def test_a_probe_stopped_by_its_iteration_limit_says_so():
    x, labels, _ = blobs()
    assert probe_accuracy(x, labels, x, labels, C=1e4, max_iter=1)["probe_converged"] == 0.0


def test_max_samples_fits_on_the_first_training_images_only():
    x, labels, _ = blobs(400)
    scrambled = labels.copy()
    scrambled[200:300] = (labels[200:300] + 1) % 3  # wrong labels on images 200-299: a probe that saw them would err
    first = probe_accuracy(x[:300], scrambled[:300], x[300:], labels[300:], C=1.0, max_iter=500, max_samples=200)
    assert first == probe_accuracy(x[:200], labels[:200], x[300:], labels[300:], C=1.0, max_iter=500)


def test_C_is_chosen_on_the_validation_split():
    x, labels, _ = blobs(500)
    params = ProbeParams(C=[1e-6, 1.0], max_iter=500, pca_components=1, max_samples=200)
    scrambled = labels.copy()
    scrambled[200:300] = (labels[200:300] + 1) % 3  # beyond max_samples: a probe that fitted them would err
    C, scores = choose_C_on_validation(x[:300], scrambled[:300], x[300:400], labels[300:400], params)
    assert C == 1.0 and scores["1"] == 1.0 > scores["1e-06"]
    # the validation split decides: labels there that only a near-constant classifier gets "right" pick the tiny C
    constant = np.full(100, np.bincount(labels[:200]).argmax())
    C, scores = choose_C_on_validation(x[:200], labels[:200], x[300:400], constant, params)
    assert C == 1e-6 and scores["1e-06"] > scores["1"]
    # ties go to the smaller C
    tie = ProbeParams(C=[10.0, 1.0], max_iter=500, pca_components=1)
    assert choose_C_on_validation(x[:200], labels[:200], x[300:400], labels[300:400], tie)[0] == 1.0


def test_a_probe_is_fitted_on_fit_chosen_on_validation_and_scored_on_test():
    x, labels, _ = blobs(500)
    params = ProbeParams(C=[1e-6, 1.0], max_iter=500, pca_components=1)
    constant = np.full(100, np.bincount(labels[:300]).argmax())
    # validation labels that only a near-constant classifier gets "right" choose the tiny C, which then scores badly
    # on the test rows: the choice is validation's, the score test's
    result = probe(x[:300], labels[:300], x[300:400], constant, x[400:], labels[400:], params)
    assert result["probe_C"] == 1e-6 and result["probe_validation"]["1e-06"] > result["probe_validation"]["1"]
    assert result["probe_accuracy"] == probe_accuracy(x[:300], labels[:300], x[400:], labels[400:], 1e-6, 500)[
        "probe_accuracy"] < 1.0
    honest = probe(x[:300], labels[:300], x[300:400], labels[300:400], x[400:], labels[400:], params)
    assert honest["probe_C"] == 1.0 and honest["probe_accuracy"] == 1.0
