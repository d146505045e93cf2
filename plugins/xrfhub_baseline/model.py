"""The Lee et al. (2022) baseline as a small estimator: closure, NMF, RBF-SVR on ln(wt%).

A spectrum is divided by its total counts (closure), projected onto ``n_components``
non-negative spectral components learnt by NMF, and an RBF support-vector regressor maps the
component weights to ln(wt%) (a lab value of 0 becomes 0.01 first). Predictions are exp()'d
back to wt% and clipped to 0-100.

Persistence is plain arrays (``model.npz``, loaded with ``allow_pickle=False``) plus JSON: the
NMF components, the SVR's support vectors, dual coefficients and intercept, and the
parameters. Prediction never touches the fitted sklearn objects, only those arrays, so a
reloaded model predicts exactly (bit for bit) what the freshly fitted one did.
"""
from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np

from xrfhub.ml import modelfiles
from xrfhub.errors import InputError
from xrfhub.ml.modelfiles import ARRAYS_FILE, PARAMS_FILE  # noqa: F401 - the run folder's names

FORMAT = "xrfhub-baseline-nmf-svr/1"
FLOOR_WT = 0.01  # a lab value <= 0 is below detection; ln needs a positive number (as in Lee et al.)
_ARRAYS = ("components", "support_vectors", "dual_coef", "intercept")


# ---------------------------------------------------------------------------- transforms


def closure(counts) -> np.ndarray:
    """Each spectrum divided by its total counts (float64); an all-zero spectrum stays all zero."""
    x = np.asarray(counts, dtype=np.float64)
    if x.ndim != 2:
        raise ValueError(f"expected spectra as a 2-D array (spectra x channels), got shape {x.shape}")
    total = x.sum(axis=1, keepdims=True)
    return np.divide(x, total, out=np.zeros_like(x), where=total > 0)


def log_target(y) -> np.ndarray:
    """ln of lab values in wt%, values <= 0 replaced by 0.01 wt% first."""
    y = np.asarray(y, dtype=np.float64)
    return np.log(np.where(y > 0, y, FLOOR_WT))


def from_log(z) -> np.ndarray:
    """ln(wt%) back to wt%, clipped to the physical range 0-100."""
    return np.clip(np.exp(np.asarray(z, dtype=np.float64)), 0.0, 100.0)


def nmf_weights(closed: np.ndarray, components: np.ndarray) -> np.ndarray:
    """Non-negative weights of each (closed) spectrum on fixed NMF components, row by row.

    Exact non-negative least squares per spectrum rather than sklearn's iterative
    ``NMF.transform``: the same converged answer, but independent of which other spectra share
    the batch (its stopping rule looks at the whole batch), so predicting in batches of any size
    gives the same numbers.
    """
    from scipy.optimize import nnls

    basis = np.ascontiguousarray(components.T)
    out = np.zeros((closed.shape[0], components.shape[0]), dtype=np.float64)
    for i, row in enumerate(closed):
        if row.any():
            out[i] = nnls(basis, row)[0]
    return out


def rbf_decision(features: np.ndarray, support: np.ndarray, coef: np.ndarray, intercept: float,
                 gamma: float, block: int = 512) -> np.ndarray:
    """sum_i coef_i exp(-gamma |f - sv_i|^2) + intercept, the SVR's prediction, in blocks of rows.

    Squared distances from explicit differences, not |a|^2 + |b|^2 - 2ab: with gamma ~ 1e3 the
    cancellation error of the shortcut would be amplified into the kernel.
    """
    out = np.full(features.shape[0], float(intercept), dtype=np.float64)
    if support.shape[0] == 0:
        return out
    for start in range(0, features.shape[0], block):
        diff = features[start:start + block, None, :] - support[None, :, :]
        kernel = np.exp(-gamma * np.einsum("ijk,ijk->ij", diff, diff))
        out[start:start + block] += kernel @ coef
    return out


# ---------------------------------------------------------------------------- the estimator


class NmfSvr:
    """closure -> NMF(n_components) -> SVR(rbf, C, gamma) on ln(wt%); ``fit``/``predict``/``save``/``load``."""

    def __init__(self, n_components: int, C: float, gamma: float, *, epsilon: float = 0.1,
                 max_iter: int = 10000, tol: float = 1e-4, seed: int = 0):
        self.n_components, self.C, self.gamma, self.epsilon = int(n_components), float(C), float(gamma), float(epsilon)
        self.max_iter, self.tol, self.seed = int(max_iter), float(tol), int(seed)
        self.components: np.ndarray | None = None
        self.support_vectors: np.ndarray | None = None
        self.dual_coef: np.ndarray | None = None
        self.intercept: float | None = None
        self.info: dict = {}

    # -- fitting

    def fit_components(self, counts) -> "NmfSvr":
        """Learn the NMF components from training spectra (the SVR is fitted by :meth:`fit_regressor`)."""
        from sklearn.decomposition import NMF
        from sklearn.exceptions import ConvergenceWarning

        nmf = NMF(n_components=self.n_components, max_iter=self.max_iter, tol=self.tol, random_state=self.seed)
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always", ConvergenceWarning)
            nmf.fit(closure(counts))
        self.components = np.ascontiguousarray(nmf.components_, dtype=np.float64)
        self.info = {"nmf_n_iter": int(nmf.n_iter_), "nmf_reconstruction_err": float(nmf.reconstruction_err_),
                     "nmf_converged": not any(issubclass(w.category, ConvergenceWarning) for w in caught)}
        return self

    def fit_regressor(self, features: np.ndarray, y) -> "NmfSvr":
        """Fit the SVR on NMF weights (from :meth:`features`) and lab values in wt%."""
        from sklearn.svm import SVR

        svr = SVR(kernel="rbf", C=self.C, gamma=self.gamma, epsilon=self.epsilon)
        svr.fit(features, log_target(y))
        self.support_vectors = np.ascontiguousarray(svr.support_vectors_, dtype=np.float64)
        self.dual_coef = np.ascontiguousarray(svr.dual_coef_.ravel(), dtype=np.float64)
        self.intercept = float(svr.intercept_[0])
        self.info["n_support_vectors"] = int(len(self.dual_coef))
        return self

    def fit(self, counts, y) -> "NmfSvr":
        """Fit on raw counts (spectra x channels) and lab values in wt%.

        The SVR learns from the same NNLS weights it will see at prediction time (not NMF's
        joint-optimisation weights), so training and prediction features come from one code path.
        """
        self.fit_components(counts)
        return self.fit_regressor(self.features(counts), y)

    # -- using

    def _check_fitted(self) -> None:
        if self.components is None or self.dual_coef is None:
            raise RuntimeError("this NmfSvr is not fitted: call fit() or load() first")

    def features(self, counts) -> np.ndarray:
        """NMF weights of raw spectra (closure first)."""
        if self.components is None:
            raise RuntimeError("NMF components not fitted: call fit() or fit_components() first")
        x = np.asarray(counts)
        if x.ndim != 2 or x.shape[1] != self.components.shape[1]:
            raise ValueError(f"spectra of {self.components.shape[1]} channels expected, got shape {x.shape}")
        return nmf_weights(closure(x), self.components)

    def predict_log(self, counts) -> np.ndarray:
        """ln(wt%) predicted for raw spectra."""
        self._check_fitted()
        return rbf_decision(self.features(counts), self.support_vectors, self.dual_coef, self.intercept,
                            self.gamma)

    def predict(self, counts) -> np.ndarray:
        """wt% predicted for raw spectra, clipped to 0-100."""
        return from_log(self.predict_log(counts))

    # -- persistence (no pickle)

    def params(self) -> dict:
        return {"format": FORMAT, "n_components": self.n_components, "C": self.C, "gamma": self.gamma,
                "epsilon": self.epsilon, "max_iter": self.max_iter, "tol": self.tol, "seed": self.seed,
                "channels": None if self.components is None else int(self.components.shape[1]), **self.info}

    def save(self, folder) -> Path:
        """Write ``model.npz`` (arrays) and ``model.json`` (parameters, the arrays' sha256)."""
        self._check_fitted()
        return modelfiles.save(folder, self.params(), {
            "components": self.components, "support_vectors": self.support_vectors, "dual_coef": self.dual_coef,
            "intercept": np.array([self.intercept], dtype=np.float64)})

    @classmethod
    def load(cls, folder) -> "NmfSvr":
        """Rebuild a fitted model from ``save``'s files; damaged or mismatched files are refused."""
        params, arrays, arrays_path = modelfiles.load(folder, format=FORMAT, names=_ARRAYS, what="baseline")
        model = cls(params["n_components"], params["C"], params["gamma"], epsilon=params["epsilon"],
                    max_iter=params["max_iter"], tol=params["tol"], seed=params["seed"])
        k = arrays["components"].shape
        sv, coef = arrays["support_vectors"], arrays["dual_coef"]
        if len(k) != 2 or k[0] != model.n_components or sv.ndim != 2 or sv.shape[1] != k[0] \
                or coef.shape != (sv.shape[0],) or arrays["intercept"].shape != (1,):
            raise InputError(arrays_path, f"inconsistent shapes: components {k}, support vectors {sv.shape}, "
                             f"dual coefficients {coef.shape} for {model.n_components} components")
        model.components, model.support_vectors, model.dual_coef = arrays["components"], sv, coef
        model.intercept = float(arrays["intercept"][0])
        model.info = {key: params[key] for key in params if key.startswith(("nmf_", "n_support"))}
        return model
