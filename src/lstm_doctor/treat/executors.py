"""Executors run independent trials: in this process, a local process pool, or on Ray.

All share one method, ``run(specs, source, on_done)``, returning results in the
order of ``specs``. A Ctrl-C stops the remaining trials; finished ones are kept
(missing ones are None).
"""

from __future__ import annotations

import os
from concurrent.futures import FIRST_COMPLETED, ProcessPoolExecutor, wait
from typing import Any, Callable, Protocol, Sequence

from lstm_doctor.errors import InputError
from lstm_doctor.treat.trials import TrialSpec, run_trial

OnDone = Callable[[int, dict[str, Any]], None]


class Executor(Protocol):
    def run(self, specs: Sequence[TrialSpec], source: Any, on_done: OnDone | None = None) -> list[dict[str, Any] | None]: ...


class LocalExecutor:
    """Trials on this machine: one after another (``workers=1``), or a process pool
    whose workers share the cores (torch threads = cores / workers)."""

    def __init__(self, workers: int = 1):
        self.workers = max(1, workers)

    def run(self, specs: Sequence[TrialSpec], source: Any, on_done: OnDone | None = None) -> list[dict[str, Any] | None]:
        results: list[dict[str, Any] | None] = [None] * len(specs)
        if self.workers == 1:
            for i, spec in enumerate(specs):
                results[i] = run_trial(spec, source)
                if on_done:
                    on_done(i, results[i])
            return results
        threads = max(1, (os.cpu_count() or 1) // self.workers)
        with ProcessPoolExecutor(self.workers, initializer=_init_worker, initargs=(source, threads)) as pool:
            futures = {pool.submit(_run_in_worker, spec): i for i, spec in enumerate(specs)}
            try:
                pending = set(futures)
                while pending:
                    done, pending = wait(pending, return_when=FIRST_COMPLETED)
                    for f in done:
                        results[futures[f]] = f.result()
                        if on_done:
                            on_done(futures[f], results[futures[f]])
            except KeyboardInterrupt:
                for f in futures:
                    f.cancel()
                raise
        return results


_WORKER_SOURCE: Any = None


def _init_worker(source: Any, threads: int) -> None:
    import torch

    global _WORKER_SOURCE
    _WORKER_SOURCE = source
    torch.set_num_threads(threads)


def _run_in_worker(spec: TrialSpec) -> dict[str, Any]:
    return run_trial(spec, _WORKER_SOURCE)


class RayExecutor:
    """Trials as Ray tasks, one CPU each, on a local Ray or the cluster at ``address``.

    The source travels once through Ray's object store, never as a file path that
    exists only on the driver.
    """

    def __init__(self, address: str | None = None, **init_kwargs: Any):
        try:
            import ray
        except ImportError:
            raise InputError("--executor ray needs Ray: pip install 'lstm-doctor[ray]'.") from None
        self.ray = ray
        if not ray.is_initialized():
            ray.init(address=address, ignore_reinit_error=True, log_to_driver=False, **init_kwargs)
        self._task = ray.remote(num_cpus=1)(run_trial)

    def run(self, specs: Sequence[TrialSpec], source: Any, on_done: OnDone | None = None) -> list[dict[str, Any] | None]:
        ray = self.ray
        ref = ray.put(source)
        refs = [self._task.remote(spec, ref) for spec in specs]
        index = {r: i for i, r in enumerate(refs)}
        results: list[dict[str, Any] | None] = [None] * len(specs)
        pending = list(refs)
        try:
            while pending:
                done, pending = ray.wait(pending, num_returns=1)
                i = index[done[0]]
                results[i] = ray.get(done[0])
                if on_done:
                    on_done(i, results[i])
        except KeyboardInterrupt:
            for r in pending:
                ray.cancel(r, force=True)
            raise
        return results


def make_executor(kind: str = "local", *, workers: int = 1, address: str | None = None) -> Executor:
    if kind == "local":
        return LocalExecutor(workers)
    if kind == "ray":
        return RayExecutor(address)
    raise InputError(f"Unknown executor {kind!r}; choose local or ray.")
