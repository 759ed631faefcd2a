"""Shared fixtures: an isolated cache per test session and tiny demo suites."""
from __future__ import annotations

import os

import pytest


@pytest.fixture(scope="session", autouse=True)
def isolated_cache(tmp_path_factory):
    """Keep tests away from the user's ~/.cache/skinbench; one cache shared by the session."""
    path = tmp_path_factory.mktemp("skinbench-cache")
    old = os.environ.get("SKINBENCH_CACHE")
    os.environ["SKINBENCH_CACHE"] = str(path)
    yield path
    if old is None:
        os.environ.pop("SKINBENCH_CACHE", None)
    else:
        os.environ["SKINBENCH_CACHE"] = old


def tiny_suite(**overrides) -> dict:
    """A demo suite small enough for unit tests (16 patients, 32 px patches, 2 seeds)."""
    suite = {
        "name": "tiny",
        "datasets": [{"name": "demo", "params": {"n_patients": 16, "image_size": 32}}],
        "backbones": [{"name": "handcrafted", "params": {"size": 32}}],
        "augmenters": [{"name": "none"}],
        "heads": [{"name": "logreg"}],
        "protocol": {"seeds": [0, 1], "dummy_draws": 200},
    }
    suite.update(overrides)
    return suite


@pytest.fixture
def suite_factory():
    return tiny_suite


@pytest.fixture
def connections(monkeypatch):
    """Every address a socket of this process tries to connect to during the test (the attempt still happens):
    what 'fails fast' means, checked without a clock, is no network call when offline and no retry."""
    import socket

    attempts = []
    original = socket.socket.connect

    def connect(self, address):
        attempts.append(address)
        return original(self, address)

    monkeypatch.setattr(socket.socket, "connect", connect)
    return attempts
