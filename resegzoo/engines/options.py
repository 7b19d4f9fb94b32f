"""The ``--engine`` options of ``resegzoo segment`` and ``resegzoo eval``, as one :class:`EngineOptions`
(:class:`SegmenterSpec`, what every worker builds its segmenter from, lives in the segmenter layer)."""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

import click

from resegzoo.errors import ResegzooError
from resegzoo.segmenter.spec import SegmenterSpec

__all__ = ["DEFAULT_CONNECT_TIMEOUT", "ENGINES", "RAY_LOG_NAME", "EngineError", "EngineOptions", "SegmenterSpec",
           "engine_options"]

ENGINES = ("local", "ray")
#: Ray's log in the output folder of segment and eval
RAY_LOG_NAME = ".resegzoo-ray.log"
#: how long --address waits for the cluster to answer, by default (seconds)
DEFAULT_CONNECT_TIMEOUT = 60.0


class EngineError(ResegzooError):
    """An engine that cannot run as asked (Ray missing, a cluster that cannot be reached, bad sizes)."""


@dataclass(frozen=True)
class EngineOptions:
    """The ``--engine`` family of options, as given on the command line."""

    name: str = "local"
    #: a Ray cluster to join (``ray://host:10001``, ``host:6379`` or ``auto``); None: start Ray here
    address: str | None = None
    #: how many actors (model copies) work at once; None: as many as the CPUs/GPUs allow
    actors: int | None = None
    gpus_per_actor: float = 0.0
    cpus_per_actor: float = 1.0
    #: seconds to wait for the cluster at ``address`` to answer before giving up
    connect_timeout: float = DEFAULT_CONNECT_TIMEOUT
    #: where Ray's own messages go (its C++ log lines, its Python loggers) instead of the terminal;
    #: commands with an output folder set it there (:data:`RAY_LOG_NAME`); None: left where Ray puts them
    log_file: Path | None = None

    def check(self) -> "EngineOptions":
        if self.name not in ENGINES:
            raise EngineError(f"engine {self.name!r}: use {' or '.join(ENGINES)}")
        if self.name == "local":
            given = [flag for flag, value in (("--address", self.address), ("--actors", self.actors))
                     if value is not None]
            if self.connect_timeout != DEFAULT_CONNECT_TIMEOUT:
                given.append("--connect-timeout")
            if self.gpus_per_actor or self.cpus_per_actor != 1.0:
                given.append("--gpus-per-actor/--cpus-per-actor")
            if given:
                raise EngineError(f"{', '.join(given)} go with --engine ray (the local engine runs in this process)")
        if self.actors is not None and self.actors < 1:
            raise EngineError(f"--actors {self.actors}: give at least 1")
        if self.gpus_per_actor < 0 or self.cpus_per_actor <= 0:
            raise EngineError("--gpus-per-actor must be >= 0 and --cpus-per-actor > 0")
        if not self.connect_timeout > 0:
            raise EngineError(f"--connect-timeout {self.connect_timeout:g}: give a number of seconds > 0")
        return self

    @property
    def is_local(self) -> bool:
        return self.name == "local"

    def logging_into(self, folder: str | Path) -> "EngineOptions":
        """These options with Ray's own messages sent to ``folder``/:data:`RAY_LOG_NAME`."""
        import dataclasses

        return self if self.is_local else dataclasses.replace(self, log_file=Path(folder) / RAY_LOG_NAME)


def engine_options(command: Callable[..., Any]) -> Callable[..., Any]:
    """Add --engine, --address, --actors, --gpus-per-actor, --cpus-per-actor to a click command;
    the command receives them as one ``engine`` keyword (an :class:`EngineOptions`)."""
    import functools

    @functools.wraps(command)
    def wrapper(*args: Any, engine: str, address: str | None, actors: int | None, gpus_per_actor: float,
                cpus_per_actor: float, connect_timeout: float, **kwargs: Any) -> Any:
        options = EngineOptions(engine, address, actors, gpus_per_actor, cpus_per_actor, connect_timeout).check()
        return command(*args, engine=options, **kwargs)

    decorators = [
        click.option("--engine", type=click.Choice(ENGINES), default="local", show_default=True,
                     help="Where the work runs: this process, or Ray actors (pip install \"resegzoo[ray]\"; "
                          "see docs/cluster.md)."),
        click.option("--address", default=None, metavar="ADDR",
                     help="--engine ray: join this Ray cluster (e.g. ray://head:10001, or auto) instead of "
                          "starting Ray inside this process."),
        click.option("--actors", type=int, default=None, metavar="N",
                     help="--engine ray: number of actors, each holding one copy of the model "
                          "(default: as many as the cluster's CPUs/GPUs allow)."),
        click.option("--gpus-per-actor", type=float, default=0.0, show_default=True, metavar="G",
                     help="--engine ray: GPUs per actor (fractions share a GPU); actors then run on cuda."),
        click.option("--cpus-per-actor", type=float, default=1.0, show_default=True, metavar="C",
                     help="--engine ray: CPUs per actor (also its torch thread count)."),
        click.option("--connect-timeout", type=float, default=DEFAULT_CONNECT_TIMEOUT, show_default=True,
                     metavar="S", help="--engine ray --address: seconds to wait for the cluster to answer "
                                       "before giving up."),
    ]
    for decorate in reversed(decorators):
        wrapper = decorate(wrapper)
    return wrapper
