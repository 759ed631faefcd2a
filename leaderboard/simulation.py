"""Is the cross-validated interval honest? A simulation with a known truth.

Under patient-grouped cross-validation every patient is predicted once, by a model trained on the
other folds, and the leaderboard's interval comes from a bootstrap over all patients of those
out-of-fold predictions. That bootstrap treats the K fitted models as fixed, yet what a user wants
to know is how well *the procedure* (this backbone, augmenter and head trained on that many
patients) does: Bates, Hastie & Tibshirani ("Cross-validation: what does it estimate and how well
does it do it?", JASA 2023) show that naive cross-validation intervals under-cover that target,
because the folds' errors are correlated through their shared training data.

:func:`cv_coverage` measures it. Patients come from a known population (skewed classes, a patient
effect, images that share it); the procedure is a linear classifier fitted on embeddings-like
features (scikit-learn's LogisticRegression, the ``logreg`` head's model). The truth is the
procedure's expected confusion matrix on the population, averaged over many training sets of the
size a fold trains on; its macro-F1 is what the interval should cover.
"""
from __future__ import annotations

import warnings
from dataclasses import dataclass

import numpy as np
import pandas as pd
from sklearn.linear_model import LogisticRegression

from skinbench.data.protocol import patient_folds

from .stats import ResamplePlan, StoredPrediction, TaskPredictions, bootstrap_task, leaderboard_metrics

PRIOR = np.array([0.55, 0.3, 0.15])


@dataclass(frozen=True)
class Population:
    """Skewed 3-class patients; each image is its patient's class centre + a patient offset + noise."""

    dim: int = 8
    separation: float = 0.9
    patient_sd: float = 0.8
    image_sd: float = 1.0
    seed: int = 0

    def centres(self) -> np.ndarray:
        return np.random.default_rng(self.seed).normal(0, self.separation, (len(PRIOR), self.dim))

    def draw(self, n_patients: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(patient index per image, class per image, features): 1–3 images per patient, one class each."""
        sizes = rng.integers(1, 4, n_patients)
        patient = np.repeat(np.arange(n_patients), sizes)
        label = rng.choice(len(PRIOR), n_patients, p=PRIOR)
        offset = rng.normal(0, self.patient_sd, (n_patients, self.dim))
        x = self.centres()[label[patient]] + offset[patient] + rng.normal(0, self.image_sd, (len(patient), self.dim))
        return patient, label[patient], x


def fit_predict(x_train: np.ndarray, y_train: np.ndarray, x_test: np.ndarray) -> np.ndarray:
    """The simulated procedure: balanced logistic regression (a class absent from training is never predicted)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        model = LogisticRegression(C=1.0, class_weight="balanced", max_iter=500).fit(x_train, y_train)
    return model.predict(x_test)


def true_macro_f1(population: Population, n_train_patients: int, n_models: int = 200,
                  n_population: int = 20_000, seed: int = 0) -> float:
    """Macro-F1 of the procedure's expected population confusion matrix over ``n_models`` training sets."""
    rng = np.random.default_rng([seed, n_train_patients])
    _, y_pop, x_pop = population.draw(n_population, rng)
    k = len(PRIOR)
    confusion = np.zeros((k, k))
    for _ in range(n_models):
        _, y, x = population.draw(n_train_patients, rng)
        pred = fit_predict(x, y, x_pop)
        confusion += np.bincount(y_pop * k + pred, minlength=k * k).reshape(k, k) / len(y_pop)
    confusion /= n_models
    f1 = 2 * np.diag(confusion) / (confusion.sum(0) + confusion.sum(1))
    return float(f1.mean())


def out_of_fold(population: Population, n_patients: int, folds: int, rng: np.random.Generator,
                seed: int, repeats: int = 1) -> tuple[np.ndarray, np.ndarray, list[np.ndarray]]:
    """One simulated dataset under patient-grouped cv: patient and true class per image, and one out-of-fold
    prediction per image for each repeat (folds redrawn with seeds ``seed``, ``seed + 1``, ...)."""
    patient, y, x = population.draw(n_patients, rng)
    table = pd.DataFrame({"group": patient.astype(str), "task": "t", "stratum": y})
    predictions = []
    for repeat in range(repeats):
        pred = np.full(len(y), -1)
        for test_groups in patient_folds(table, folds, seed + 10_000 * repeat):
            test = np.isin(patient.astype(str), test_groups)
            pred[test] = fit_predict(x[~test], y[~test], x[test])
        predictions.append(pred)
    return patient, y, predictions


def cv_coverage(n_patients: int, n_sets: int = 200, folds: int = 5, n_boot: int = 500, seed: int = 0,
                population: Population = Population(), truth: float | None = None,
                repeats: int = 1) -> dict[str, float]:
    """Share of ``n_sets`` simulated datasets whose cross-validated 95% macro-F1 interval covers the truth.

    Returns the coverage of the leaderboard's interval (with the cv variance inflation) and of the plain
    patient bootstrap, the truth, the mean estimate and the mean interval width, so a reader sees
    whether a miss comes from bias or from too narrow an interval.
    """
    truth = true_macro_f1(population, n_patients * (folds - 1) // folds, seed=seed) if truth is None else truth
    rng = np.random.default_rng([seed, n_patients, 1])
    covered, plain, values, widths = [], [], [], []
    for index in range(n_sets):
        patient, y, predictions = out_of_fold(population, n_patients, folds, rng, seed + index, repeats)
        image = {"image": np.arange(len(y)).astype(str)}
        files = {r: {("c", 0): StoredPrediction(patient, y, pred, None, image)} for r, pred in enumerate(predictions)}
        everyone = pd.Index(range(n_patients))
        task = TaskPredictions("sim", "t", [str(c) for c in range(len(PRIOR))], False,
                               {r: everyone for r in files}, files, [], folds)
        plan = ResamplePlan.draw({r: n_patients for r in files}, n_boot, seed + index, "sim", shared=True)
        draws = bootstrap_task(task, plan, leaderboard_metrics(False))["c"]
        interval = draws.estimate("macro_f1")
        covered.append(interval.low <= truth <= interval.high)
        draws.inflation = 1.0  # the plain patient bootstrap, for comparison
        uncorrected = draws.estimate("macro_f1")
        plain.append(uncorrected.low <= truth <= uncorrected.high)
        values.append(interval.value)
        widths.append(interval.high - interval.low)
    return {"n_patients": n_patients, "folds": folds, "repeats": repeats, "coverage": float(np.mean(covered)),
            "coverage_plain_bootstrap": float(np.mean(plain)), "truth": truth, "mean_estimate": float(np.mean(values)),
            "mean_width": float(np.mean(widths)), "n_sets": n_sets}
