"""Baselines that need no sparse autoencoder: linear probes and PCA.

A linear probe is a multinomial logistic regression trained on a representation of
the fit split's images (codes, raw pixels or PCA codes), its C chosen on the validation split, and scored on
the test images: how much of the digit label the representation makes linearly readable.
PCA at k components is the best k-dimensional linear code in squared error, so its
FVU at k is the reference line that a sparse code with L0 = k is compared against.
"""

from __future__ import annotations

import warnings

import numpy as np

from .params import ProbeParams


def fit_probe(train_x: np.ndarray, train_y: np.ndarray, C: float, max_iter: int):
    """A logistic regression on standardised features (scikit-learn, lbfgs) fitted to the training rows, and
    whether lbfgs converged (its gradient tolerance reached before `max_iter` iterations)."""
    from sklearn.exceptions import ConvergenceWarning
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    classifier = make_pipeline(StandardScaler(), LogisticRegression(C=C, max_iter=max_iter))
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", ConvergenceWarning)
        classifier.fit(train_x, train_y)
    return classifier, not any(issubclass(w.category, ConvergenceWarning) for w in caught)


def probe_accuracy(train_x: np.ndarray, train_y: np.ndarray, test_x: np.ndarray, test_y: np.ndarray,
                   C: float, max_iter: int, max_samples: int | None = None) -> dict[str, float]:
    """Test accuracy of fit_probe on the first `max_samples` training rows (None: all), with its convergence."""
    classifier, converged = fit_probe(train_x[:max_samples], train_y[:max_samples], C, max_iter)
    return {
        "probe_accuracy": float(np.mean(classifier.predict(test_x) == test_y)),
        "probe_converged": float(converged),
        "probe_iterations": float(classifier[-1].n_iter_.max()),
        "probe_C": float(C),
    }


def choose_C_on_validation(fit_x: np.ndarray, fit_y: np.ndarray, val_x: np.ndarray, val_y: np.ndarray,
                           params: ProbeParams) -> tuple[float, dict[str, float]]:
    """The C in params.C whose probe, fitted on the fit split's rows (the first params.max_samples), is the most
    accurate on the validation split, and every candidate's validation accuracy (ties: the smaller C, the stronger
    regularisation). One fit per C; the probes then reported are fitted on the same rows at that C
    (probe_accuracy), so a choice made once per variant costs one fit per point after it
    (docs/design/verdict-protocol.md)."""
    fit_x, fit_y = fit_x[: params.max_samples], fit_y[: params.max_samples]
    scores = {C: float(np.mean(fit_probe(fit_x, fit_y, C, params.max_iter)[0].predict(val_x) == val_y))
              for C in sorted(params.C)}
    best = max(scores, key=lambda C: (scores[C], -C))
    return best, {f"{C:g}": a for C, a in scores.items()}


def probe(fit_x: np.ndarray, fit_y: np.ndarray, val_x: np.ndarray, val_y: np.ndarray, test_x: np.ndarray,
          test_y: np.ndarray, params: ProbeParams) -> dict:
    """C chosen on the validation split (choose_C_on_validation), the probe fitted on the fit split at that C and
    scored on the test split, with every candidate's validation accuracy."""
    C, validation = choose_C_on_validation(fit_x, fit_y, val_x, val_y, params)
    return {**probe_accuracy(fit_x, fit_y, test_x, test_y, C, params.max_iter, params.max_samples),
            "probe_validation": validation}


def pca_basis(train_x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Training mean and principal directions (rows, by decreasing variance), in float64."""
    x = train_x.reshape(len(train_x), -1).astype(np.float64)
    mean = x.mean(0)
    centred = x - mean
    eigenvalues, eigenvectors = np.linalg.eigh(centred.T @ centred)
    order = np.argsort(eigenvalues, kind="stable")[::-1]
    components = eigenvectors[:, order].T
    components *= np.where(components.sum(1, keepdims=True) < 0, -1.0, 1.0)  # fix the sign: deterministic codes
    return mean, components


def pca_fvu(test_x: np.ndarray, mean: np.ndarray, components: np.ndarray) -> np.ndarray:
    """FVU on the test set of the reconstruction from the top k components, for k = 1 .. n_components.

    Same definition as metrics.reconstruction_metrics: squared error over the test set's own variance.
    """
    x = test_x.reshape(len(test_x), -1).astype(np.float64)
    total_variance = ((x - x.mean(0)) ** 2).sum()
    centred = x - mean
    captured = np.cumsum(((centred @ components.T) ** 2).sum(0))  # orthonormal rows: error = |x|^2 - captured
    return ((centred**2).sum() - captured) / total_variance


def pca_codes(x: np.ndarray, mean: np.ndarray, components: np.ndarray, k: int) -> np.ndarray:
    return (x.reshape(len(x), -1).astype(np.float64) - mean) @ components[:k].T
