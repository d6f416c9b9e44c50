"""An execution environment: one sandboxed runtime process, its Runtime API endpoint and its lifecycle.

The lifecycle is explicit (EnvironmentState) because every path (init error, timeout, crash, OOM, eviction)
must end with the process gone, the endpoint closed and the pending invocation answered exactly once.
"""
from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import enum
import json
import logging
import os
import signal
import time
from pathlib import Path
from typing import Callable, Iterator

from lamina.model.function import FunctionConfig
from lamina.http.server import Response
from lamina.model.invocation import Invocation, InvocationOutcome, InvocationReport, platform_error
from lamina.runtime_api.server import MAX_RESPONSE_BYTES, RuntimeApiEndpoint
from lamina.runtimes.registry import (
    BASE_LD_LIBRARY_PATH,
    BASE_PATH,
    RUNTIME_ROOT,
    BOOTSTRAPS_DIR,
    TASK_ROOT,
    RuntimeCatalog,
)
from lamina.sandbox.host import HostCapabilities
from lamina.sandbox.network import EnvironmentNetwork, NetworkPool
from lamina.sandbox.port_forward import PortForwarder
from lamina.sandbox.process import SandboxProcess, SandboxSpec
from lamina.sandbox.teardown import TeardownThread

log = logging.getLogger(__name__)

#: AWS gives the init phase 10 s; after that the environment is discarded.
INIT_TIMEOUT_SECONDS = 10.0
#: A runtime parked in /next with no work is frozen this long after it parked; an invoke within that time cancels
#: the freeze, so invokes in quick succession pay neither a freeze nor a thaw.
FREEZE_DELAY_SECONDS = 0.005
_SIGNAL_NAMES = {
    signal.SIGKILL: "killed",
    signal.SIGSEGV: "segmentation fault",
    signal.SIGABRT: "aborted",
    signal.SIGTERM: "terminated",
    signal.SIGBUS: "bus error",
    signal.SIGILL: "illegal instruction",
    signal.SIGFPE: "floating point exception",
}


class EnvironmentStopped(Exception):
    """The environment was stopped before it finished starting."""


class EnvironmentState(enum.Enum):
    STARTING = "starting"  # sandbox being created
    INITIALIZING = "initializing"  # runtime started, has not asked for its first event yet
    IDLE = "idle"  # runtime waiting in /next, no invocation
    BUSY = "busy"  # an invocation is with the runtime
    STOPPED = "stopped"  # never used again; its sandbox is torn down on the teardown thread


class FreezerState(enum.Enum):
    """Whether the environment's processes may run: AWS freezes an environment between invocations, so background
    threads and processes of the function do nothing while it is idle (and write nothing into the next log)."""

    RUNNING = "running"  # working, or parked only moments ago
    FREEZE_DUE = "freeze due"  # parked in /next with no work; frozen when FREEZE_DELAY_SECONDS have passed
    FROZEN = "frozen"  # the cgroup is frozen until the next event (or the stop's kill, which thaws it)


@contextlib.contextmanager
def _logged(env_id: str, step: str) -> Iterator[None]:
    """Run one step of a stop: a failure is logged and the stop goes on."""
    try:
        yield
    except Exception:  # noqa: BLE001 - a stop must finish; every step is independent of the others
        log.exception("environment %s: %s failed during stop", env_id, step)


def exit_message(request_id: str, returncode: int) -> str:
    """AWS's (RAPID's) wording for a runtime that exited during an invocation."""
    if returncode == 0:
        reason = "Runtime exited without providing a reason"
    elif returncode < 0:
        name = _SIGNAL_NAMES.get(signal.Signals(-returncode), signal.Signals(-returncode).name.lower())
        reason = f"Runtime exited with error: signal: {name}"
    else:
        reason = f"Runtime exited with error: exit status {returncode}"
    return f"RequestId: {request_id} Error: {reason}"


def _is_executable(path: Path) -> bool:
    return path.is_file() and os.access(path, os.X_OK)


class ExecutionEnvironment:
    """Runs invocations of one function version, one at a time, in a sandbox."""

    def __init__(
        self,
        env_id: str,
        config: FunctionConfig,
        code_dir: Path,
        catalog: RuntimeCatalog,
        caps: HostCapabilities,
        scratch_root: Path,
        uid: int | None,
        log_stream: str,
        on_stopped: Callable[["ExecutionEnvironment"], None],
        on_torn_down: Callable[["ExecutionEnvironment"], None],
        teardowns: TeardownThread,
        initialization_type: str = "on-demand",
        opt_dir: Path | None = None,
        networks: NetworkPool | None = None,
    ) -> None:
        self.env_id = env_id
        self.config = config
        self.uid = uid
        self.log_stream = log_stream
        self.state = EnvironmentState.STARTING
        self.last_used = time.monotonic()
        self._code_dir = code_dir
        #: The function's layers, merged (see sandbox/opt.py), bound read-only at /opt.
        self._opt_dir = opt_dir
        self._catalog = catalog
        self._caps = caps
        self._scratch_root = scratch_root
        self._on_stopped = on_stopped
        self._on_torn_down = on_torn_down
        self._teardowns = teardowns
        #: AWS_LAMBDA_INITIALIZATION_TYPE: "on-demand", or "provisioned-concurrency" for pre-initialised ones.
        self.initialization_type = initialization_type
        #: Each environment's own network namespace; without one, the Runtime API checks the peer's uid instead.
        self._networks = networks
        self._network: EnvironmentNetwork | None = None
        self._forwarder: PortForwarder | None = None
        self._endpoint = RuntimeApiEndpoint(self, None if networks is not None else uid)
        self._process: SandboxProcess | None = None
        self._loop = asyncio.get_running_loop()
        self._parked_next: asyncio.Future[Response] | None = None
        self._current: Invocation | None = None
        self._delivered = False
        self._started_at = 0.0
        self._delivered_at = 0.0
        self._init_duration_ms: float | None = None
        self._init_reported = False
        self._init_error: tuple[bytes, str] | None = None
        self._output: list[bytes] = []
        self._timer: asyncio.TimerHandle | None = None
        self._freezer = FreezerState.RUNNING
        self._freeze_timer: asyncio.TimerHandle | None = None
        self._cpu_limited = False

    # -- lifecycle ---------------------------------------------------------------------------------------------
    async def start(self) -> None:
        """Raises EnvironmentStopped if stop() came while it waited (the server stopping): nothing is left running."""
        if self._networks is not None:
            network = await self._networks.take()
            if self.state is EnvironmentState.STOPPED:
                network.delete()
                raise EnvironmentStopped(self.env_id)
            self._network = network
            self._forwarder = PortForwarder(network.forward_sockets)
            await self._forwarder.start()
        port = await self._endpoint.start(self._network.runtime_api_socket if self._network is not None else None)
        if self.state is EnvironmentState.STOPPED:
            self._endpoint.close()
            raise EnvironmentStopped(self.env_id)
        sandboxed = self._caps.bwrap_path is not None
        task_root = TASK_ROOT if sandboxed else str(self._code_dir)
        runtime_root = RUNTIME_ROOT if sandboxed else str(BOOTSTRAPS_DIR)
        opt_root = "/opt" if sandboxed or self._opt_dir is None else str(self._opt_dir)
        launch = self._catalog.launch(self.config.runtime or "", task_root=task_root, opt_root=opt_root, sandboxed=sandboxed)
        if self._runs_layer_bootstrap():
            launch = dataclasses.replace(launch, argv=[f"{opt_root}/bootstrap"])
        spec = SandboxSpec(
            env_id=self.env_id,
            argv=launch.argv,
            env=self._environment(port, task_root, runtime_root, launch.env),
            code_dir=self._code_dir,
            runtime_dir=BOOTSTRAPS_DIR,
            opt_dir=self._opt_dir,
            ro_binds=launch.ro_binds,
            masks=launch.masks,
            memory_mb=self.config.memory_size,
            ephemeral_storage_mb=self.config.ephemeral_storage,
            uid=self.uid,
            network=self._network,
        )
        self._started_at = time.monotonic()
        missing = self._missing_entrypoint()
        if missing is not None:
            self._init_error = (missing, "Runtime.InvalidEntrypoint")
            self.state = EnvironmentState.INITIALIZING
            return
        self._network = None  # from here on the process's teardown deletes it, even if spawn fails
        self._process = SandboxProcess.spawn(spec, self._caps, self._scratch_root)
        self._loop.add_reader(self._process.output_fd, self._read_output)
        self._loop.add_reader(self._process.exit_fd, self._on_exit)
        self.state = EnvironmentState.INITIALIZING

    def _missing_entrypoint(self) -> bytes | None:
        if not (self.config.runtime or "").startswith("provided"):
            return None
        if _is_executable(self._code_dir / "bootstrap") or self._runs_layer_bootstrap():
            return None
        message = "Couldn't find valid bootstrap(s): [/var/task/bootstrap /opt/bootstrap]"
        return json.dumps({"errorType": "Runtime.InvalidEntrypoint", "errorMessage": message}).encode()

    def _runs_layer_bootstrap(self) -> bool:
        """A custom runtime without /var/task/bootstrap runs a layer's /opt/bootstrap (AWS looks in that order)."""
        return (
            (self.config.runtime or "").startswith("provided")
            and self._opt_dir is not None
            and not _is_executable(self._code_dir / "bootstrap")
            and _is_executable(self._opt_dir / "bootstrap")
        )

    def _environment(self, port: int, task_root: str, runtime_root: str, runtime_env: dict[str, str]) -> dict[str, str]:
        config = self.config
        reserved = {
            "AWS_LAMBDA_FUNCTION_NAME": config.name,
            "AWS_LAMBDA_FUNCTION_VERSION": config.version,
            "AWS_LAMBDA_FUNCTION_MEMORY_SIZE": str(config.memory_size),
            "AWS_LAMBDA_LOG_GROUP_NAME": config.log_group,
            "AWS_LAMBDA_LOG_STREAM_NAME": self.log_stream,
            "AWS_LAMBDA_INITIALIZATION_TYPE": self.initialization_type,
            "AWS_LAMBDA_RUNTIME_API": f"127.0.0.1:{port}",
            "AWS_REGION": config.region,
            "AWS_DEFAULT_REGION": config.region,
            "_HANDLER": config.handler or "",
            "LAMBDA_TASK_ROOT": task_root,
            "LAMBDA_RUNTIME_DIR": runtime_root,
            "TZ": ":UTC",
            "LANG": "en_US.UTF-8",
            "PATH": BASE_PATH,
            "LD_LIBRARY_PATH": BASE_LD_LIBRARY_PATH,
            **runtime_env,
        }
        return {**(config.environment or {}), **reserved}

    def stop(self) -> None:
        """Tear everything down; safe to call from any state, any number of times, and it never raises.

        The event loop only detaches the sandbox; its teardown (kill, reap, cgroup, mounts) runs on the teardown
        thread, and on_torn_down follows once it finished. A failing step is logged and the others still run, so a
        stop never fails an invocation that succeeded, and on_stopped always frees the pool's slot.
        """
        if self.state is EnvironmentState.STOPPED:
            return
        self.state = EnvironmentState.STOPPED
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
                with _logged(self.env_id, "reading the last output"):
                    self._drain_output()
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
        return self.state in (EnvironmentState.IDLE, EnvironmentState.INITIALIZING) and self._current is None

    # -- invoking ------------------------------------------------------------------------------------------------
    def invoke(self, invocation: Invocation) -> None:
        """Hand an invocation to the runtime; its future resolves exactly once with the outcome."""
        assert self._current is None and self.state is not EnvironmentState.STOPPED
        self._current = invocation
        self._delivered = False
        if self._init_error is not None:
            self._finish_with_init_error()
            return
        if self.state is EnvironmentState.INITIALIZING:
            self._timer = self._loop.call_later(
                INIT_TIMEOUT_SECONDS + self.config.timeout, self._on_timeout
            )
        self.state = EnvironmentState.BUSY
        if self._freezer is not FreezerState.RUNNING:
            self._thaw()
        parked = self._parked_next
        if parked is not None and not parked.done():
            self._parked_next = None
            parked.set_result(self._deliver(invocation))

    def _deliver(self, invocation: Invocation) -> Response:
        self._cancel_timer()
        self._delivered = True
        self._delivered_at = time.monotonic()
        deadline_ms = int(time.time() * 1000) + self.config.timeout * 1000
        self._timer = self._loop.call_later(self.config.timeout, self._on_timeout)
        headers = [
            ("Content-Type", "application/json"),
            ("Lambda-Runtime-Aws-Request-Id", invocation.request_id),
            ("Lambda-Runtime-Deadline-Ms", str(deadline_ms)),
            ("Lambda-Runtime-Invoked-Function-Arn", invocation.invoked_arn),
            ("Lambda-Runtime-Trace-Id", invocation.trace_id),
        ]
        if invocation.client_context is not None:
            headers.append(("Lambda-Runtime-Client-Context", invocation.client_context))
        if invocation.cognito_identity is not None:
            headers.append(("Lambda-Runtime-Cognito-Identity", invocation.cognito_identity))
        return Response(200, invocation.payload, headers)

    # -- RuntimeApiTarget ------------------------------------------------------------------------------------------
    def next_invocation(self) -> Response | asyncio.Future[Response]:
        if not self._init_reported:
            self._init_reported = True
            self._init_duration_ms = (time.monotonic() - self._started_at) * 1000
            if self._process is not None:
                # AWS lets init burst; the memory-proportional CPU quota applies from the first event on.
                self._process.apply_cpu_limit()
        current = self._current
        if current is not None and not self._delivered and self.state is EnvironmentState.BUSY:
            return self._deliver(current)
        if self.state is EnvironmentState.INITIALIZING:
            self.state = EnvironmentState.IDLE
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
        if self._init_reported:
            return False
        self._init_error = (body, error_type)
        return True

    def _is_current(self, request_id: str) -> bool:
        current = self._current
        return current is not None and self._delivered and current.request_id == request_id

    # -- completion paths ----------------------------------------------------------------------------------------
    def _complete(self, outcome: InvocationOutcome, *, timed_out: bool = False) -> None:
        invocation = self._current
        if invocation is None:
            return
        self._cancel_timer()
        self._current = None
        self._drain_output()
        report = InvocationReport(
            duration_ms=(time.monotonic() - self._delivered_at) * 1000 if self._delivered else 0.0,
            init_duration_ms=self._take_init_duration(),
            max_memory_mb=self._process.peak_memory_mb() if self._process is not None else None,
            output=b"".join(self._output),
            timed_out=timed_out,
        )
        self._output.clear()
        self.last_used = time.monotonic()
        if self.state is EnvironmentState.BUSY:
            self.state = EnvironmentState.IDLE
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
        self._complete(
            platform_error("Sandbox.Timedout", f"RequestId: {invocation.request_id} Error: Task timed out after {seconds} seconds"),
            timed_out=True,
        )
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
            if self._init_error is not None:
                self._finish_with_init_error()
                return
            self._complete(platform_error("Runtime.ExitError", exit_message(invocation.request_id, returncode)))
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

    def take_pending_output(self) -> bytes:
        """Output written outside any invocation (e.g. by a process that died idle)."""
        self._drain_output()
        data = b"".join(self._output)
        self._output.clear()
        return data
