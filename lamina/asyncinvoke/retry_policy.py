"""When an asynchronous event is tried again, as on AWS, and which failures are the platform's.

- a throttle (429) or a platform failure puts the event back with exponential back-off; it is not an attempt;
- a function error is retried up to MaximumRetryAttempts, after `retry_base` then 2 x `retry_base` seconds;
- an event older than MaximumEventAgeInSeconds, or whose next retry would be, goes to the failure path.

A platform failure is a narrow set of exception types (`PLATFORM_FAILURES`): Lamina's own `PlatformError` and
the service errors and OS errors an invocation can raise when the host fails it. Anything else escaping an
invocation is a bug: retrying would repeat it for ever, so the event goes to the failure path and the traceback
to the log.
"""
from __future__ import annotations

from lamina.errors import LambdaError, PlatformError

#: Throttle/platform back-off starts at retry_base / 60 (1 s by default) and stops doubling at 300 times that.
THROTTLE_BACKOFF_FRACTION = 1 / 60
THROTTLE_BACKOFF_CAP = 300
PLATFORM_FAILURES: tuple[type[BaseException], ...] = (PlatformError, LambdaError, OSError)


class RetryPolicy:
    def __init__(self, retry_base_seconds: float) -> None:
        self.retry_base = retry_base_seconds
        self.throttle_base = retry_base_seconds * THROTTLE_BACKOFF_FRACTION

    def throttle_backoff(self, previous: float) -> float:
        """The function's next pause after a throttle: doubled, from throttle_base up to its cap."""
        return min(max(self.throttle_base, previous * 2), self.throttle_base * THROTTLE_BACKOFF_CAP)

    def platform_delay(self, failures: int) -> float:
        """The wait before trying an event again after its `failures`-th platform failure in a row."""
        return self.throttle_base * min(2 ** (failures - 1), THROTTLE_BACKOFF_CAP)

    def function_error_due(self, attempts: int, now: float) -> float:
        """When the retry after the `attempts`-th failed attempt is due (1 x, then 2 x retry_base)."""
        return now + self.retry_base * 2 ** (attempts - 1)

    @staticmethod
    def too_old(enqueued_at: float, at: float, max_age_seconds: float) -> bool:
        return at - enqueued_at >= max_age_seconds
