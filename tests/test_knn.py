"""The cosine kNN probe: against a from-scratch cosine vote, k chosen on validation, all K
columns, registered through the hook and run end to end by the runner."""
from __future__ import annotations

import re

import numpy as np
import pytest
from threadpoolctl import threadpool_limits

from skinbench.api import ConfigError, Part
from skinbench.calibration import macro_f1
from skinbench.configuration.registry import load_catalogue
from skinbench.execution.runner import run_suite


def make_knn(**params):
    return load_catalogue(autoload=False).create("head", "knn", params)


def clusters(n: int, labels: list[int], seed: int, flip: float = 0.0, dim: int = 8) -> Part:
    """Gaussian clusters around random directions, with a share ``flip`` of labels replaced at random
    (label noise is what makes a larger k pay off)."""
    rng = np.random.default_rng(seed)
    directions = np.random.default_rng(3).normal(size=(max(labels) + 1, dim))
    y = rng.choice(labels, size=n)
    x = (directions[y] + rng.normal(0, 0.9, size=(n, dim))) * rng.uniform(0.5, 3.0, size=(n, 1))  # norms vary
    noisy = rng.random(n) < flip
    y[noisy] = rng.choice(labels, size=noisy.sum())
    return Part(paths=[f"{seed}_{i}.png" for i in range(n)], y=y, groups=np.arange(n), x=x.astype(np.float32))


def reference_proba(train: Part, query: np.ndarray, k: int, weights: str, n_classes: int) -> np.ndarray:
    """The k most cosine-similar training rows vote for their class (weight 1, or 1 / cosine distance)."""
    unit = lambda x: x / np.linalg.norm(x, axis=1, keepdims=True)
    similarity = unit(query.astype(np.float64)) @ unit(train.x.astype(np.float64)).T
    proba = np.zeros((len(query), n_classes))
    for row, sims in enumerate(similarity):
        nearest = np.argsort(-sims)[:k]
        votes = np.ones(k) if weights == "uniform" else 1.0 / (1.0 - sims[nearest])
        np.add.at(proba[row], train.y[nearest], votes)
    return proba / proba.sum(axis=1, keepdims=True)


@pytest.mark.parametrize("weights", ["uniform", "distance"])
def test_knn_is_a_cosine_vote_over_all_classes(weights):
    train, test = clusters(120, [0, 1, 3], 0), clusters(40, [0, 1, 3], 1)  # class 2 never seen
    head = make_knn(k_grid=[7], weights=weights)
    head.fit(train, clusters(10, [0, 1, 3], 2), n_classes=4, seed=0)
    prediction = head.predict(test)
    np.testing.assert_allclose(prediction.proba, reference_proba(train, test.x, 7, weights, 4), atol=1e-6)
    assert (prediction.proba[:, 2] == 0).all()
    np.testing.assert_array_equal(prediction.labels, prediction.proba.argmax(axis=1))


def test_knn_chooses_k_on_validation_macro_f1():
    labels = [0, 1, 2]
    train, val = clusters(300, labels, 0, flip=0.4), clusters(90, labels, 1)
    k_grid = [1, 5, 25]
    scores = [macro_f1(val.y, reference_proba(train, val.x, k, "distance", 3).argmax(axis=1)) for k in k_grid]
    assert np.argmax(scores) > 0, "with label noise, k = 1 must not be the best"
    head = make_knn(k_grid=k_grid)
    head.fit(train, val, n_classes=3, seed=0)
    assert head.k == k_grid[int(np.argmax(scores))]


def test_knn_caps_k_at_the_training_size_and_needs_no_validation():
    train = clusters(6, [0, 1], 0)
    head = make_knn(k_grid=[3, 50])
    head.fit(train, Part(paths=[], y=np.zeros(0, np.int64), groups=np.zeros(0)), n_classes=2, seed=0)
    assert head.k == 3  # no validation: the smallest k
    head = make_knn(k_grid=[50])
    head.fit(train, clusters(4, [0, 1], 1), n_classes=2, seed=0)
    assert head.k == 6
    np.testing.assert_allclose(head.predict(clusters(5, [0, 1], 2)).proba.sum(axis=1), 1.0)


def test_knn_is_deterministic_whatever_the_callers_thread_settings():
    train, val, test = clusters(400, [0, 1, 2], 0, flip=0.3), clusters(60, [0, 1, 2], 1), clusters(60, [0, 1, 2], 2)

    def proba(threads: int) -> np.ndarray:
        head = make_knn()
        with threadpool_limits(limits=threads):
            head.fit(train, val, 3, seed=0)
            return head.predict(test).proba

    np.testing.assert_array_equal(proba(2), proba(1))


def test_knn_is_registered_with_typed_params_and_metadata():
    catalogue = load_catalogue(autoload=False)
    entry = catalogue.entries["head"]["knn"]
    assert entry.source == "skinbench.plugins.heads.knn"
    assert "Wu et al." in entry.cls.meta.citation and entry.cls.meta.license
    assert make_knn().identity.digest != make_knn(weights="uniform").identity.digest
    for params, key in (({"k_grid": [5, 0]}, "k_grid[1]"), ({"weights": "gaussian"}, "weights"),
                        ({"k": 5}, "k")):
        with pytest.raises(ConfigError, match=rf"head 'knn': .*'{re.escape(key)}'"):
            make_knn(**params)


@pytest.mark.slow  # about 20 s on the shared 2-core machine, mostly the tiny demo dataset and its embeddings
def test_knn_runs_in_a_suite(tmp_path, suite_factory):
    suite = suite_factory(heads=[{"name": "knn", "params": {"k_grid": [1, 3]}}],
                          protocol={"seeds": [0], "dummy_draws": 50})
    results = run_suite(suite, tmp_path / "run")
    knn = results[results["head"] == "knn"]
    assert len(knn) > 0 and (knn["status"] == "ok").all()
    assert knn["macro_f1"].between(0, 1).all()
