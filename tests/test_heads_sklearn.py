"""The logreg probe against the straightforward scikit-learn pipeline it replaces, its optional
temperature, its typed parameters and its independence from thread settings."""
from __future__ import annotations

import re

import numpy as np
import pytest
from sklearn.decomposition import PCA
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler
from threadpoolctl import threadpool_limits

from skinbench.api import ConfigError, Part
from skinbench.calibration import fit_temperature, macro_f1, softmax, tune_binary_threshold
from skinbench.configuration.registry import load_catalogue


def make_head(name: str, **params):
    return load_catalogue(autoload=False).create("head", name, params)


def noisy_part(n: int, labels: list[int], seed: int, dim: int = 64) -> Part:
    """Overlapping Gaussian classes: the C values give different fits and validation scores."""
    rng = np.random.default_rng(seed)
    centres = np.random.default_rng(7).normal(0, 0.1, size=(max(labels) + 1, dim))
    y = rng.choice(labels, size=n)
    x = (centres[y] + rng.normal(0, 1, size=(n, dim))).astype(np.float32)
    return Part(paths=[f"{seed}_{i}.png" for i in range(n)], y=y, groups=np.arange(n), x=x)


def pipeline_per_C(train: Part, C: float, seed: int, max_pca: int = 256):
    """Today's recipe written out: one scaler + whitened PCA + balanced LR pipeline per C
    (on one BLAS thread: with two on the busy 2-core machine it took 4.3 s instead of about 0.2 s)."""
    n_components = min(train.x.shape[1], len(train) - 1, max_pca)
    with threadpool_limits(limits=1):
        return make_pipeline(StandardScaler(), PCA(n_components=n_components, whiten=True, random_state=seed),
                             LogisticRegression(C=C, max_iter=300, class_weight="balanced", random_state=seed)
                             ).fit(train.x, train.y)


def expected_proba(pipeline, x: np.ndarray, n_classes: int) -> np.ndarray:
    proba = np.zeros((len(x), n_classes))
    proba[:, pipeline.classes_] = pipeline.predict_proba(x)
    return proba


@pytest.mark.parametrize("labels, n_classes", [([0, 1, 2], 3), ([0, 1], 2), ([0, 1, 3], 4)],
                         ids=["3 classes", "binary", "class 2 absent from every part"])
def test_logreg_equals_one_pipeline_per_C_with_the_best_on_validation(labels, n_classes):
    train, val, test = noisy_part(300, labels, 0), noisy_part(60, labels, 1), noisy_part(80, labels, 2)
    C_grid = [0.01, 0.1, 1.0]
    pipelines = [pipeline_per_C(train, C, seed=3) for C in C_grid]
    val_scores = [macro_f1(val.y, expected_proba(p, val.x, n_classes).argmax(1)) for p in pipelines]
    assert np.argmax(val_scores) > 0, "the data must make the choice of C matter"
    best = pipelines[int(np.argmax(val_scores))]

    head = make_head("logreg", C_grid=C_grid)
    head.fit(train, val, n_classes=n_classes, seed=3)
    prediction = head.predict(test)

    assert head.classifier.C == best[-1].C
    np.testing.assert_allclose(prediction.proba, expected_proba(best, test.x, n_classes), rtol=0, atol=1e-6)
    absent = sorted(set(range(n_classes)) - set(labels))
    assert (prediction.proba[:, absent] == 0).all()
    if n_classes == 2:  # threshold tuned on validation, as before
        threshold = tune_binary_threshold(best.predict_proba(val.x)[:, 1], val.y)
        assert head.decision.threshold == threshold
        np.testing.assert_array_equal(prediction.labels, (prediction.proba[:, 1] >= threshold).astype(int))
    else:
        np.testing.assert_array_equal(prediction.labels, expected_proba(best, test.x, n_classes).argmax(1))


def test_logreg_temperature_is_fitted_on_validation_and_keeps_the_decisions():
    train, val, test = noisy_part(300, [0, 1, 2], 0), noisy_part(80, [0, 1, 2], 1), noisy_part(80, [0, 1, 2], 2)
    plain, tempered = make_head("logreg"), make_head("logreg", temperature=True)
    plain.fit(train, val, 3, seed=0)
    tempered.fit(train, val, 3, seed=0)
    features, classifier = tempered.features, tempered.classifier
    temperature = fit_temperature(classifier.decision_function(features.transform(val.x)), val.y)

    assert plain.decision.temperature == 1.0
    assert tempered.decision.temperature == pytest.approx(temperature) and abs(temperature - 1.0) > 0.05
    proba = tempered.predict(test).proba
    np.testing.assert_allclose(proba, softmax(classifier.decision_function(features.transform(test.x)), temperature))
    np.testing.assert_array_equal(tempered.predict(test).labels, plain.predict(test).labels)
    assert not np.allclose(proba, plain.predict(test).proba)


def test_logreg_is_deterministic_whatever_the_callers_thread_settings():
    """Randomized PCA and LBFGS give different bits with 1 and 2 BLAS threads at this size; the head pins one."""
    train, val, test = noisy_part(400, [0, 1, 2], 0), noisy_part(60, [0, 1, 2], 1), noisy_part(50, [0, 1, 2], 2)

    def proba(threads: int) -> np.ndarray:
        head = make_head("logreg")
        with threadpool_limits(limits=threads):
            head.fit(train, val, 3, seed=5)
            return head.predict(test).proba

    np.testing.assert_array_equal(proba(2), proba(1))
    np.testing.assert_array_equal(proba(2), proba(2))


@pytest.mark.parametrize("params, key", [
    ({"C_grid": [1.0, -2.0]}, "C_grid[1]"), ({"C_grid": []}, "C_grid"), ({"class_weight": "inverse"}, "class_weight"),
    ({"max_pca": 2.5}, "max_pca"), ({"temperature": "yes"}, "temperature"), ({"max_iters": 10}, "max_iters"),
])
def test_logreg_bad_params_name_the_key(params, key):
    with pytest.raises(ConfigError, match=rf"head 'logreg': .*'{re.escape(key)}'"):
        make_head("logreg", **params)


def test_logreg_identity_covers_temperature_and_sklearn():
    default, tempered = make_head("logreg"), make_head("logreg", temperature=True)
    assert default.identity.digest != tempered.identity.digest
    assert "scikit-learn" in default.identity.artefacts
    assert make_head("logreg", C_grid=1.0).config["C_grid"] == [1.0]


def test_the_permuted_label_control_learns_nothing_and_leaves_the_shared_labels_alone():
    """The parts are shared by a suite's heads: the null control must permute copies. On a
    separable problem the real probe is near perfect while the control is not."""
    rng = np.random.default_rng(0)
    y = np.repeat([0, 1], 100)
    x = rng.normal(size=(200, 8)) + 3.0 * y[:, None]
    order = rng.permutation(200)
    x, y = x[order], y[order]
    train, val, test = (Part(paths=[f"{i}" for i in s], y=y[s].copy(), groups=np.array([f"{i}" for i in s]), x=x[s])
                        for s in (np.arange(0, 120), np.arange(120, 150), np.arange(150, 200)))
    labels_before = train.y.copy(), val.y.copy()
    catalogue = load_catalogue(autoload=False)
    control = catalogue.create("head", "logreg-permuted", {"permutation": 3})
    control.fit(train, val, 2, seed=0)
    np.testing.assert_array_equal(train.y, labels_before[0])
    np.testing.assert_array_equal(val.y, labels_before[1])
    real = catalogue.create("head", "logreg", {})
    real.fit(train, val, 2, seed=0)
    assert macro_f1(test.y, real.predict(test).labels) > 0.95
    assert macro_f1(test.y, control.predict(test).labels) < 0.8
