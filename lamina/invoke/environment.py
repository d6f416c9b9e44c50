"""An execution environment: one sandboxed runtime process, its Runtime API endpoint and its lifecycle.

The lifecycle is explicit (EnvironmentState, moved only by `_transition`, which refuses a move the table does not
allow) because every path (init error, timeout, crash, OOM, eviction) must end with the process gone, the endpoint
closed and the pending invocation answered exactly once.

A streamed response (`invocation_stream`) hands the invocation its `ResponseStream` as soon as the runtime's request
head arrives, but the invocation goes on until the stream ended: the environment stays BUSY with its timer armed
(AWS's timeout covers the whole stream), a timeout, crash or stop aborts the stream with AWS's error type before the
invocation ends, and the report (REPORT's duration, the log) is taken when the stream's outcome is known.
"""
from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import time
from typing import Callable, Iterator

from lamina.errors import PlatformError
from lamina.http.messages import Response
from lamina.invoke.endings import exit_message, stream_result
from lamina.invoke.states import ALLOWED, USABLE, EnvironmentState, FreezerState, IllegalTransition
from lamina.model.invocation import Invocation, InvocationOutcome, InvocationReport, platform_error
from lamina.runtime_api.events import event_response
from lamina.runtime_api.server import MAX_RESPONSE_BYTES, RuntimeApiEndpoint
from lamina.runtime_api.streaming import ResponseStream, StreamOutcome
from lamina.runtimes.launch import EnvironmentPlan, missing_entrypoint, sandbox_spec
from lamina.runtimes.registry import RuntimeCatalog
from lamina.sandbox.launcher import SandboxHandle, SandboxLauncher
from lamina.sandbox.network import EnvironmentNetwork, NetworkPool
from lamina.sandbox.port_forward import PortForwarder
from lamina.sandbox.teardown import TeardownThread

log = logging.getLogger(__name__)

#: AWS gives the init phase 10 s; after that the environment is discarded.
INIT_TIMEOUT_SECONDS = 10.0
#: A runtime parked in /next with no work is frozen this long after it parked; an invoke within that time cancels
#: the freeze, so invokes in quick succession pay neither a freeze nor a thaw.
FREEZE_DELAY_SECONDS = 0.005


class EnvironmentStopped(PlatformError):
    """The environment was stopped before it finished starting (the server is stopping): retried later."""


@contextlib.contextmanager
def _logged(env_id: str, step: str) -> Iterator[None]:
    """Run one step of a stop: a failure is logged and the stop goes on."""
    try:
        yield
    except Exception:  # noqa: BLE001 - a stop must finish; every step is independent of the others
        log.exception("environment %s: %s failed during stop", env_id, step)


class ExecutionEnvironment:
    """Runs invocations of one function version, one at a time, in a sandbox."""

    def __init__(
        self,
        plan: EnvironmentPlan,
        catalog: RuntimeCatalog,
        launcher: SandboxLauncher,
        on_stopped: Callable[["ExecutionEnvironment"], None],
        on_torn_down: Callable[["ExecutionEnvironment"], None],
        teardowns: TeardownThread,
        networks: NetworkPool | None = None,
        on_idle_output: Callable[["ExecutionEnvironment", bytes], None] | None = None,
    ) -> None:
        """`on_idle_output` receives what the runtime wrote outside any invocation (e.g. before dying idle)."""
        self._plan = plan
        self.env_id = plan.env_id
        self.config = plan.config
        self.uid = plan.uid
        self.log_stream = plan.log_stream
        #: AWS_LAMBDA_INITIALIZATION_TYPE: "on-demand", or "provisioned-concurrency" for pre-initialised ones.
        self.initialization_type = plan.initialization_type
        self.state = EnvironmentState.STARTING
        self.last_used = time.monotonic()
        self._catalog = catalog
        self._launcher = launcher
        self._on_stopped = on_stopped
        self._on_torn_down = on_torn_down
        self._teardowns = teardowns
        self._on_idle_output = on_idle_output
        #: Each environment's own network namespace; without one, the Runtime API checks the peer's uid instead.
        self._networks = networks
        self._network: EnvironmentNetwork | None = None
        self._forwarder: PortForwarder | None = None
        self._endpoint = RuntimeApiEndpoint(self, None if networks is not None else plan.uid)
        self._process: SandboxHandle | None = None
        self._loop = asyncio.get_running_loop()
        self._parked_next: asyncio.Future[Response] | None = None
        self._current: Invocation | None = None
        #: The current invocation's streamed response, from its head to its end.
        self._stream: ResponseStream | None = None
        self._started_at = 0.0
        self._delivered_at = 0.0
        self._init_duration_ms: float | None = None
        self._init_reported = False
        self._init_error: tuple[bytes, str] | None = None
        self._output: list[bytes] = []
        self._timer: asyncio.TimerHandle | None = None
        self._freezer = FreezerState.RUNNING
        self._freeze_timer: asyncio.TimerHandle | None = None

    def _transition(self, target: EnvironmentState) -> None:
        if target not in ALLOWED[self.state]:
            raise IllegalTransition(f"environment {self.env_id}: {self.state.value} -> {target.value}")
        self.state = target

    # -- lifecycle ---------------------------------------------------------------------------------------------
    async def start(self) -> None:
        """Raises EnvironmentStopped if stop() came while it waited (the server stopping): nothing is left running."""
        if self._networks is not None:
            network = await self._networks.take()
            if self.state is EnvironmentState.STOPPED:
                network.delete()
                raise EnvironmentStopped(f"environment {self.env_id} was stopped while starting")
            self._network = network
            self._forwarder = PortForwarder(network.forward_sockets)
            await self._forwarder.start()
        port = await self._endpoint.start(self._network.runtime_api_socket if self._network is not None else None)
        if self.state is EnvironmentState.STOPPED:
            self._endpoint.close()
            raise EnvironmentStopped(f"environment {self.env_id} was stopped while starting")
        self._started_at = time.monotonic()
        missing = missing_entrypoint(self._plan)
        if missing is not None:
            self._init_error = (missing, "Runtime.InvalidEntrypoint")
            self._transition(EnvironmentState.INIT_FAILED)
            return
        spec = sandbox_spec(self._plan, self._catalog, f"127.0.0.1:{port}", self._network)
        self._network = None  # from here on the sandbox's teardown deletes it, even if spawn fails
        self._process = self._launcher.spawn(spec)
        self._loop.add_reader(self._process.output_fd, self._read_output)
        self._loop.add_reader(self._process.exit_fd, self._on_exit)
        self._transition(EnvironmentState.INITIALIZING)

    def stop(self) -> None:
        """Tear everything down; safe to call from any state, any number of times, and it never raises.

        The event loop only detaches the sandbox; its teardown (kill, reap, cgroup, mounts) runs on the teardown
        thread, and on_torn_down follows once it finished. A failing step is logged and the others still run, so a
        stop never fails an invocation that succeeded, and on_stopped always frees the pool's slot.
        """
        if self.state is EnvironmentState.STOPPED:
            return
        if self._stream is not None and self._current is not None:
            self._end_stream("Runtime.ExitError", f"RequestId: {self._current.request_id} Error: Runtime stopped")
        self._transition(EnvironmentState.STOPPED)
        try:
            with _logged(self.env_id, "cancelling timers"):
                self._cancel_timer()
                self._cancel_freeze()  # a frozen sandbox stays so: the kill freezes, signals, then thaws it
            with _logged(self.env_id, "closing the Runtime API"):
                self._endpoint.close()
            with _logged(self.env_id, "closing the network"):
                if self._forwarder is not None:
                    self._forwarder.close()
                if self._network is not None:
                    # Never handed to a process (no entrypoint, or start failed before the spawn).
                    network, self._network = self._network, None
                    self._loop.run_in_executor(None, network.delete)
            with _logged(self.env_id, "answering the parked /next"):
                if self._parked_next is not None and not self._parked_next.done():
                    self._parked_next.cancel()
            if self._process is not None:
                with _logged(self.env_id, "keeping the last output"):
                    self._drain_output()
                    if self._output and self._current is None and self._on_idle_output is not None:
                        self._on_idle_output(self, b"".join(self._output))
                    self._output.clear()
                with _logged(self.env_id, "detaching the sandbox"):
                    self._loop.remove_reader(self._process.output_fd)
                    self._loop.remove_reader(self._process.exit_fd)
        finally:
            self._on_stopped(self)
            self._hand_over_teardown()

    def _hand_over_teardown(self) -> None:
        process = self._process
        if process is None:
            self._on_torn_down(self)
            return
        with _logged(self.env_id, "scheduling the teardown"):
            self._teardowns.submit(
                self.env_id, process.try_destroy, lambda: self._loop.call_soon_threadsafe(self._on_torn_down, self)
            )

    @property
    def usable(self) -> bool:
        return self.state in USABLE and self._current is None

    # -- invoking ------------------------------------------------------------------------------------------------
    def invoke(self, invocation: Invocation) -> None:
        """Hand an invocation to the runtime; its future resolves exactly once with the outcome."""
        assert self._current is None and self.usable
        self._current = invocation
        if self.state is EnvironmentState.INIT_FAILED:
            self._finish_with_init_error()
            return
        if self.state is EnvironmentState.INITIALIZING:
            self._timer = self._loop.call_later(INIT_TIMEOUT_SECONDS + self.config.timeout, self._on_timeout)
        if self._freezer is not FreezerState.RUNNING:
            self._thaw()
        parked = self._parked_next
        if parked is not None and not parked.done() and self.state is EnvironmentState.IDLE:
            self._parked_next = None
            parked.set_result(self._deliver(invocation))
        else:
            self._transition(EnvironmentState.AWAITING_RUNTIME)

    def _deliver(self, invocation: Invocation) -> Response:
        self._transition(EnvironmentState.BUSY)
        self._cancel_timer()
        self._delivered_at = time.monotonic()
        self._timer = self._loop.call_later(self.config.timeout, self._on_timeout)
        return event_response(invocation, int(time.time() * 1000) + self.config.timeout * 1000)

    # -- RuntimeApiTarget ------------------------------------------------------------------------------------------
    def next_invocation(self) -> Response | asyncio.Future[Response]:
        if not self._init_reported:
            self._init_reported = True
            self._init_duration_ms = (time.monotonic() - self._started_at) * 1000
            if self._process is not None:
                # AWS lets init burst; the memory-proportional CPU quota applies from the first event on.
                self._process.apply_cpu_limit()
        current = self._current
        if current is not None and self.state is EnvironmentState.AWAITING_RUNTIME:
            return self._deliver(current)
        if self.state is EnvironmentState.INITIALIZING:
            self._transition(EnvironmentState.IDLE)
        future: asyncio.Future[Response] = self._loop.create_future()
        self._parked_next = future
        if current is None and self._process is not None:
            self._schedule_freeze()
        return future

    def invocation_response(self, request_id: str, body: bytes, content_type: str) -> bool:
        if not self._is_current(request_id):
            return False
        self._complete(InvocationOutcome(body, content_type))
        return True

    def invocation_error(self, request_id: str, body: bytes) -> bool:
        if not self._is_current(request_id):
            return False
        self._complete(InvocationOutcome(body, "application/json", "Unhandled"))
        return True

    def response_too_large(self, request_id: str) -> bool:
        if not self._is_current(request_id):
            return False
        self._complete(
            platform_error(
                "Function.ResponseSizeTooLarge",
                f"Response payload size exceeded maximum allowed payload size ({MAX_RESPONSE_BYTES} bytes).",
            )
        )
        return True

    def init_error(self, body: bytes, error_type: str) -> bool:
        if self._init_reported or self.state not in (EnvironmentState.INITIALIZING, EnvironmentState.AWAITING_RUNTIME):
            return False
        self._init_error = (body, error_type)
        self._transition(EnvironmentState.INIT_FAILED)
        return True

    def invocation_stream(self, request_id: str, stream: ResponseStream) -> bool:
        if not self._is_current(request_id):
            return False
        assert self._current is not None
        self._stream = stream
        stream.on_finished(self._stream_finished)
        self._current.begin_stream(stream)
        return True

    def response_started(self, request_id: str) -> bool:
        current = self._current
        return self._stream is not None and current is not None and current.request_id == request_id

    def _is_current(self, request_id: str) -> bool:
        current = self._current
        return (
            current is not None
            and self.state is EnvironmentState.BUSY
            and current.request_id == request_id
            and self._stream is None
        )

    def _stream_finished(self, stream: ResponseStream, outcome: StreamOutcome) -> None:
        """The runtime's streamed response is over (completed, its error in the trailers, oversized, cut): so is the
        invocation."""
        if stream is self._stream:
            self._complete(stream_result(stream, outcome))

    def _end_stream(self, error_type: str, message: str, *, timed_out: bool = False) -> None:
        """The invocation ends before its stream did (timeout, crash, stop): the stream ends now with the error."""
        stream = self._stream
        assert stream is not None
        error = platform_error(error_type, message)
        stream.abort(error_type, error.payload)
        error.stream = stream
        self._complete(error, timed_out=timed_out)

    # -- completion paths ----------------------------------------------------------------------------------------
    def _complete(self, outcome: InvocationOutcome, *, timed_out: bool = False) -> None:
        invocation = self._current
        if invocation is None:
            return
        self._cancel_timer()
        self._current = None
        self._stream = None
        self._drain_output()
        delivered = self.state is EnvironmentState.BUSY
        report = InvocationReport(
            duration_ms=(time.monotonic() - self._delivered_at) * 1000 if delivered else 0.0,
            init_duration_ms=self._take_init_duration(),
            max_memory_mb=self._process.peak_memory_mb() if self._process is not None else None,
            output=b"".join(self._output),
            timed_out=timed_out,
        )
        self._output.clear()
        self.last_used = time.monotonic()
        if self.state is EnvironmentState.BUSY:
            self._transition(EnvironmentState.IDLE)
        invocation.report = report
        invocation.finish(outcome)

    def _take_init_duration(self) -> float | None:
        duration, self._init_duration_ms = self._init_duration_ms, None
        return duration

    def _finish_with_init_error(self) -> None:
        assert self._init_error is not None
        body, _error_type = self._init_error
        self._complete(InvocationOutcome(body, "application/json", "Unhandled"))
        self.stop()

    def _on_timeout(self) -> None:
        invocation = self._current
        if invocation is None:
            return
        seconds = f"{self.config.timeout:.2f}"
        message = f"RequestId: {invocation.request_id} Error: Task timed out after {seconds} seconds"
        if self._stream is not None:
            self._end_stream("Sandbox.Timedout", message, timed_out=True)
        else:
            self._complete(platform_error("Sandbox.Timedout", message), timed_out=True)
        self.stop()

    def _on_exit(self) -> None:
        process = self._process
        if process is None:
            return
        returncode = process.poll()
        if returncode is None:
            return
        invocation = self._current
        if invocation is not None:
            if self.state is EnvironmentState.INIT_FAILED:
                self._finish_with_init_error()
                return
            message = exit_message(invocation.request_id, returncode)
            if self._stream is not None:
                self._end_stream("Runtime.ExitError", message)
            else:
                self._complete(platform_error("Runtime.ExitError", message))
        self.stop()

    def _cancel_timer(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None

    # -- freezer (between invocations) -----------------------------------------------------------------------------
    def _schedule_freeze(self) -> None:
        self._cancel_freeze()
        self._freezer = FreezerState.FREEZE_DUE
        self._freeze_timer = self._loop.call_later(FREEZE_DELAY_SECONDS, self._freeze)

    def _freeze(self) -> None:
        assert self._process is not None
        self._freeze_timer = None
        self._freezer = FreezerState.FROZEN
        self._process.freeze()

    def _thaw(self) -> None:
        """Let the processes run again, right before the runtime gets its next event."""
        if self._freezer is FreezerState.FROZEN:
            assert self._process is not None
            self._process.thaw()
        self._cancel_freeze()

    def _cancel_freeze(self) -> None:
        if self._freeze_timer is not None:
            self._freeze_timer.cancel()
            self._freeze_timer = None
        self._freezer = FreezerState.RUNNING

    # -- output ----------------------------------------------------------------------------------------------------
    def _read_output(self) -> None:
        assert self._process is not None
        try:
            chunk = os.read(self._process.output_fd, 65536)
        except BlockingIOError:
            return
        except OSError:
            chunk = b""
        if chunk:
            self._output.append(chunk)
        else:
            self._loop.remove_reader(self._process.output_fd)

    def _drain_output(self) -> None:
        """Read what the runtime wrote before it answered, so the invocation's log is complete."""
        if self._process is None:
            return
        while True:
            try:
                chunk = os.read(self._process.output_fd, 65536)
            except (BlockingIOError, OSError):
                return
            if not chunk:
                return
            self._output.append(chunk)
