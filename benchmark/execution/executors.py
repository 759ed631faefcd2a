"""Where tasks run: in this process (``local``, the default) or on a Dask cluster (``dask``).

Both expose the same three calls the runner uses: ``submit`` a task, iterate ``completed()``
futures (tasks may be submitted while iterating), and ``close``. The runner's driver loop is
therefore identical for both, and so are the results.
"""
from __future__ import annotations

import logging
import os
import warnings
from collections import deque
from typing import Any, Callable, Iterator

from skinbench.api import ConfigError
from skinbench.configuration.suite import Executor as ExecutorConfig

logger = logging.getLogger("skinbench.execution.executors")


class LocalFuture:
    """A task of the local executor, run when the driver asks for it."""

    def __init__(self, fn: Callable, args: tuple, kwargs: dict):
        self.fn, self.args, self.kwargs = fn, args, kwargs
        self._done = False
        self._result: Any = None
        self._error: BaseException | None = None

    def run(self) -> None:
        try:
            self._result = self.fn(*self.args, **self.kwargs)
        except Exception as exc:  # noqa: BLE001 - handed to the driver, as a Dask future would
            self._error = exc
        self._done = True
        self.fn = self.args = self.kwargs = None  # free inputs (images, embeddings) once used

    def result(self) -> Any:
        if self._error is not None:
            raise self._error
        return self._result

    def cancel(self) -> None:
        self._done = True


class LocalExecutor:
    """Runs tasks one at a time in submission order, in this process."""

    name = "local"
    portable = False  # tasks see this machine's files and caches
    dashboard = None

    def __init__(self) -> None:
        self.queue: deque[LocalFuture] = deque()

    def submit(self, fn: Callable, *args: Any, resources: dict | None = None, **kwargs: Any) -> LocalFuture:
        future = LocalFuture(fn, args, kwargs)
        self.queue.append(future)
        return future

    def completed(self) -> Iterator[LocalFuture]:
        while self.queue:
            future = self.queue.popleft()
            future.run()
            yield future

    def share(self, obj: Any) -> Any:
        return obj

    def cancel_all(self) -> None:
        self.queue.clear()

    def close(self) -> None:
        self.queue.clear()


class DaskExecutor:
    """Tasks on a ``dask.distributed`` cluster: an existing scheduler, or a LocalCluster of worker processes.

    The driver (this process) keeps the results store and the caches; workers get plugins and
    data as task arguments and return results. Embedding tasks of CUDA backbones ask for one
    ``GPU`` resource, so they only run on workers that advertise it."""

    name = "dask"

    def __init__(self, config: ExecutorConfig):
        from dask.distributed import Client, LocalCluster, as_completed

        self.config = config
        self.portable = not config.shared_cache
        if config.scheduler:
            self.cluster = None
            try:
                self.client = Client(config.scheduler, timeout="10s")
            except OSError as exc:
                raise ConfigError(f"executor: cannot reach the Dask scheduler at {config.scheduler} ({exc}); "
                                  "start it (dask scheduler) or drop --scheduler to use a local cluster") from None
        else:
            workers = config.workers or os.cpu_count() or 1
            resources = {"GPU": config.gpus_per_worker} if config.gpus_per_worker else None
            self.cluster = LocalCluster(n_workers=workers, threads_per_worker=config.threads_per_worker,
                                        processes=True, resources=resources, dashboard_address=_dashboard_address(),
                                        silence_logs=logging.ERROR)
            self.client = Client(self.cluster)
        self.dashboard = self.client.dashboard_link if _has_bokeh() else None
        self._completed = as_completed([], with_results=False)
        self._futures: set = set()  # held until the run ends, so shared inputs are not released early

    def submit(self, fn: Callable, *args: Any, resources: dict | None = None, **kwargs: Any):
        future = self.client.submit(fn, *args, resources=resources, pure=False, **kwargs)
        self._futures.add(future)
        self._completed.add(future)
        return future

    def share(self, obj: Any) -> Any:
        """Send an object once for many tasks (a plugin, the parts of one fold). A task holding it rather
        than ``scatter``: the scheduler can recompute it when the worker that kept it is lost."""
        with warnings.catch_warnings():
            # the warning suggests scatter, whose data a lost worker takes with it: the graph is the point here
            warnings.filterwarnings("ignore", message="Sending large graph", category=UserWarning)
            future = self.client.submit(_same, obj, pure=False)
        self._futures.add(future)
        return future

    def completed(self) -> Iterator[Any]:
        for future in self._completed:
            yield future

    def cancel_all(self) -> None:
        if self._futures:
            self.client.cancel(list(self._futures))
        self._futures.clear()

    def close(self) -> None:
        self.cancel_all()
        self.client.close()
        if self.cluster is not None:
            self.cluster.close()


def _same(obj: Any) -> Any:
    return obj


def make_executor(config: ExecutorConfig) -> LocalExecutor | DaskExecutor:
    return DaskExecutor(config) if config.kind == "dask" else LocalExecutor()


def _has_bokeh() -> bool:
    try:
        import bokeh  # noqa: F401 - the dashboard needs it; it is optional
    except ImportError:
        return False
    return True


def _dashboard_address() -> str | None:
    return ":0" if _has_bokeh() else None
