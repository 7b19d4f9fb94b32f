"""Ray plumbing shared by the Ray engines: start or join Ray, and stream work items through actors.

Work goes through Ray Data: ``map_batches`` with a callable class and a fixed ``concurrency``
gives a pool of stateful actors (each builds its model once) that restart when their process
dies, with the block they held retried on a live one. Results stream back to the driver one work
item at a time, in completion order. A work item that fails for a data reason does not fail the
dataset: the actor returns an error row naming it, and the caller reports it.
"""
from __future__ import annotations

import contextlib
import logging
import os
import pickle
import socket
import time
from collections import defaultdict
from dataclasses import dataclass, field
from typing import Any, Iterator

from resegzoo.engines.options import EngineError, EngineOptions
from resegzoo.engines.ray_cluster import actor_count
from resegzoo.errors import ResegzooError

INSTALL_HINT = 'pip install "resegzoo[ray]"'
#: environment variables handed to every actor, so workers on other nodes use the same model
#: cache (shared storage), offline mode and fault-injection settings as the driver
FORWARDED_ENV_PREFIXES = ("RESEGZOO_", "HF_", "TORCH_HOME", "XDG_CACHE_HOME")
#: test hook: "N:MARKER" makes the first actor that reaches its N-th work item while MARKER does
#: not exist create MARKER and kill its own process mid-item (a worker dying mid-block, once)
FAULT_ENV = "RESEGZOO_FAULT_KILL_AT"


def import_ray() -> Any:
    try:
        import ray
        import ray.data  # noqa: F401  (Ray Data is part of the extra)
    except ImportError:
        raise EngineError(f"--engine ray needs Ray with Ray Data: {INSTALL_HINT}") from None
    return ray


@contextlib.contextmanager
def ray_session(options: EngineOptions) -> Iterator[Any]:
    """Ray, started inside this process (no --address) or joined to a cluster within
    ``options.connect_timeout``; a Ray that is already initialised in this process (a notebook, a
    test) is used as it is and left running. With ``options.log_file``, Ray's own messages go
    there (:mod:`resegzoo.engines.ray_logs`) once this process starts or joins Ray."""
    from resegzoo.engines.ray_cluster import bounded_ray_retries, connect_error, probe

    ray = import_ray()
    started = False
    if not ray.is_initialized():
        if options.address:
            probe(options.address, options.connect_timeout)  # before Ray's minutes of retries
        if options.log_file is not None:
            from resegzoo.engines.ray_logs import ray_noise_to

            ray_noise_to(options.log_file)
        kwargs: dict[str, Any] = {"include_dashboard": False, "log_to_driver": False,
                                  "logging_level": logging.WARNING, "configure_logging": True}
        try:
            with bounded_ray_retries(options.connect_timeout):
                ray.init(address=options.address, **kwargs)
        except (ConnectionError, RuntimeError, ValueError) as exc:
            raise connect_error(options.address, exc) from None
        started = True
    try:
        # every actor asked for must fit on a node before any work: Ray would wait for it forever
        actor_count(ray, options, options.actors or 1)
    except EngineError:
        if started:
            ray.shutdown()
        raise
    context = ray.data.DataContext.get_current()
    context.enable_progress_bars = False  # resegzoo draws one bar over all work items
    context.print_on_execution_start = False
    data_logger = logging.getLogger("ray.data")
    level = data_logger.level
    data_logger.setLevel(logging.ERROR)  # Ray Data's per-run INFO/WARNING lines would break the bar
    try:
        yield ray
    finally:
        data_logger.setLevel(level)
        if started:
            ray.shutdown()


def forwarded_env() -> dict[str, str]:
    return {k: v for k, v in os.environ.items() if k.startswith(FORWARDED_ENV_PREFIXES)}


class ActorWork:
    """Base of the callable classes Ray Data runs: ``setup()`` once per actor, ``work(item)`` per
    work item. Subclasses define both; this class does the row format, timing and error rows."""

    def __init__(self, context: Any, threads: int | None = None) -> None:
        self.worker = f"{socket.gethostname()}:{os.getpid()}"
        self.done = 0
        #: a user error while setting up (a model that cannot be loaded): every item reports it, and
        #: the driver stops at the first (Ray would otherwise restart the actor forever or bury it)
        self.setup_error: str | None = None
        if threads:  # torch uses as many threads as the CPUs Ray reserved for this actor
            import torch

            torch.set_num_threads(threads)
        try:
            self.setup(context)
        except ResegzooError as exc:
            self.setup_error = str(exc)

    def setup(self, context: Any) -> None:  # pragma: no cover - overridden
        raise NotImplementedError

    def work(self, item: Any) -> Any:  # pragma: no cover - overridden
        raise NotImplementedError

    def _fault_hook(self) -> None:
        spec = os.environ.get(FAULT_ENV)
        if not spec:
            return
        count, marker = spec.split(":", 1)
        if self.done + 1 == int(count) and not os.path.exists(marker):
            with open(marker, "x"):
                pass
            os._exit(1)

    def __call__(self, batch: dict[str, Any]) -> dict[str, Any]:
        import numpy as np

        out: dict[str, list[Any]] = {"key": [], "ok": [], "fatal": [], "payload": [], "worker": [], "seconds": []}
        for key, item in zip(batch["key"], batch["item"]):
            start = time.perf_counter()
            self._fault_hook()
            if self.setup_error is not None:
                result, ok = self.setup_error, False
            else:
                try:
                    result, ok = self.work(pickle.loads(item)), True
                except Exception as exc:  # reported to the driver with its work item, never dropped
                    result, ok = f"{type(exc).__name__}: {exc}", False
            self.done += 1
            out["key"].append(key)
            out["ok"].append(ok)
            out["fatal"].append(self.setup_error is not None)
            out["payload"].append(pickle.dumps(result, protocol=pickle.HIGHEST_PROTOCOL))
            out["worker"].append(self.worker)
            out["seconds"].append(time.perf_counter() - start)
        return {name: np.array(values, dtype=object if name in ("payload", "key", "worker") else None)
                for name, values in out.items()}


@dataclass
class Outcome:
    """One finished work item, as the driver receives it."""

    key: str
    ok: bool
    #: the work's return value, or the error message when not ok
    value: Any
    worker: str
    seconds: float


@dataclass
class Throughput:
    """Per-worker counts and busy seconds, printed at the end of a run."""

    items: dict[str, int] = field(default_factory=lambda: defaultdict(int))
    busy: dict[str, float] = field(default_factory=lambda: defaultdict(float))
    started: float = field(default_factory=time.perf_counter)

    def add(self, outcome: Outcome) -> None:
        self.items[outcome.worker] += 1
        self.busy[outcome.worker] += outcome.seconds

    def lines(self, unit: str) -> list[str]:
        wall = time.perf_counter() - self.started
        total = sum(self.items.values())
        rows = [f"{total} {unit}(s) in {wall:.1f} s on {len(self.items)} worker(s): "
                f"{total / max(wall, 1e-9):.2f} {unit}/s overall"]
        for worker in sorted(self.items):
            n, busy = self.items[worker], self.busy[worker]
            rows.append(f"  {worker}: {n} {unit}(s), {busy:.1f} s busy, {n / max(busy, 1e-9):.2f} {unit}/s")
        return rows


def stream(ray: Any, work_class: type, context: Any, items: dict[str, Any],
           options: EngineOptions) -> Iterator[Outcome]:
    """Run ``work_class`` actors over ``items`` (key -> picklable work item); yield each outcome as it
    arrives. ``context`` is what every actor's ``setup`` receives (Ray ships it once per actor).

    Work items and results cross between resegzoo's own driver and actors as pickled bytes in Ray
    Data rows (Ray pickles whatever it moves anyway); nothing read from disk is ever unpickled."""
    if not items:
        return
    rows = [{"key": key, "item": pickle.dumps(item, protocol=pickle.HIGHEST_PROTOCOL)} for key, item in items.items()]
    remote: dict[str, Any] = {"num_cpus": options.cpus_per_actor,
                              "runtime_env": {"env_vars": forwarded_env()}}
    if options.gpus_per_actor:
        remote["num_gpus"] = options.gpus_per_actor
    dataset = ray.data.from_items(rows, override_num_blocks=len(rows))
    pool = ray.data.ActorPoolStrategy(size=actor_count(ray, options, len(rows)))
    results = dataset.map_batches(
        work_class, batch_size=1, compute=pool,
        fn_constructor_kwargs={"context": context, "threads": max(1, int(options.cpus_per_actor))},
        **remote)
    for row in results.iter_rows():
        if row["fatal"]:
            # e.g. an actor that cannot build its model: the user's message, not Ray's traceback
            raise EngineError(f"on Ray worker {row['worker']}: {pickle.loads(row['payload'])}")
        yield Outcome(str(row["key"]), bool(row["ok"]), pickle.loads(row["payload"]), str(row["worker"]),
                      float(row["seconds"]))
