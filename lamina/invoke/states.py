"""The lifecycle states of an execution environment and the moves between them (`environment.py` moves only through
`ALLOWED`), and whether its processes may run (the freezer between invocations)."""
from __future__ import annotations

import enum


class IllegalTransition(Exception):
    """A lifecycle move the state table does not allow: a bug, never a function's doing."""


class EnvironmentState(enum.Enum):
    STARTING = "starting"  # sandbox being created
    INITIALIZING = "initializing"  # runtime started, has not asked for its first event yet
    INIT_FAILED = "init failed"  # no entrypoint, or the runtime reported an init error: the next invoke gets it
    IDLE = "idle"  # no invocation (the runtime is parked in /next, or about to be)
    AWAITING_RUNTIME = "awaiting runtime"  # an invocation is assigned; the runtime has not asked for it yet
    BUSY = "busy"  # the runtime has the invocation
    STOPPED = "stopped"  # never used again; its sandbox is torn down on the teardown thread


_State = EnvironmentState
ALLOWED: dict[EnvironmentState, frozenset[EnvironmentState]] = {
    _State.STARTING: frozenset({_State.INITIALIZING, _State.INIT_FAILED, _State.STOPPED}),
    _State.INITIALIZING: frozenset({_State.IDLE, _State.AWAITING_RUNTIME, _State.INIT_FAILED, _State.STOPPED}),
    _State.INIT_FAILED: frozenset({_State.STOPPED}),
    _State.IDLE: frozenset({_State.AWAITING_RUNTIME, _State.BUSY, _State.STOPPED}),
    _State.AWAITING_RUNTIME: frozenset({_State.BUSY, _State.INIT_FAILED, _State.STOPPED}),
    _State.BUSY: frozenset({_State.IDLE, _State.STOPPED}),
    _State.STOPPED: frozenset(),
}
#: States in which an environment can take an invocation (an INIT_FAILED one answers it with its init error).
USABLE = frozenset({_State.IDLE, _State.INITIALIZING, _State.INIT_FAILED})


class FreezerState(enum.Enum):
    """Whether the environment's processes may run: AWS freezes an environment between invocations, so background
    threads and processes of the function do nothing while it is idle (and write nothing into the next log)."""

    RUNNING = "running"  # working, or parked only moments ago
    FREEZE_DUE = "freeze due"  # parked in /next with no work; frozen when the freeze delay has passed
    FROZEN = "frozen"  # the cgroup is frozen until the next event (or the stop's kill, which thaws it)
