"""One accepted asynchronous event and its lifecycle."""
from __future__ import annotations

import enum
from dataclasses import dataclass

from lamina.model.keys import FunctionKey


class EventState(enum.Enum):
    COMMITTING = "committing"  # handed to the queue's writer; not acknowledged yet
    READY = "ready"  # durable, waiting for a delivery worker
    RUNNING = "running"  # with the function
    WAITING = "waiting"  # waiting for its retry time
    FINISHING = "finishing"  # its invocation record is on the way to a destination
    DONE = "done"  # removed from the queue


@dataclass(frozen=True)
class AttemptResult:
    """What the last attempt returned: the invocation record's responseContext and responsePayload."""

    executed_version: str
    function_error: str | None
    payload: bytes


@dataclass(eq=False)
class QueuedEvent:
    id: int
    account: str
    region: str
    name: str
    qualifier: str | None
    request_id: str
    payload: bytes
    #: Wall-clock acceptance time (epoch seconds): event age survives a restart.
    enqueued_at: float
    #: Attempts that reached the function (throttles and platform errors do not count).
    attempts: int = 0
    #: Epoch seconds before which the event must not run (its retry time).
    not_before: float = 0.0
    last_result: AttemptResult | None = None
    state: EventState = EventState.COMMITTING
    #: Monotonic time it last became ready (for scaling decisions).
    ready_since: float = 0.0
    #: Consecutive platform failures (for their back-off; not persisted).
    platform_failures: int = 0

    @property
    def key(self) -> FunctionKey:
        """The function the event was sent to."""
        return FunctionKey(self.account, self.region, self.name)
