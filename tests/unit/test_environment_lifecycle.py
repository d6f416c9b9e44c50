"""The execution environment's lifecycle: every move goes through the state table, and what a runtime writes
outside an invocation reaches the function's log. A launcher stands in for the sandbox, so no process runs."""
from __future__ import annotations

import asyncio
import os
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from lamina.invoke.environment import ExecutionEnvironment
from lamina.invoke.states import EnvironmentState, IllegalTransition
from lamina.model.invocation import Invocation
from lamina.runtimes.launch import EnvironmentPlan
from lamina.runtimes.registry import Interpreter, RuntimeCatalog
from lamina.sandbox.process import SandboxSpec
from lamina.sandbox.teardown import TeardownThread


@dataclass
class _Config:
    runtime: str = "python3.11"
    name: str = "fn"
    version: str = "$LATEST"
    region: str = "us-east-1"
    memory_size: int = 128
    ephemeral_storage: int = 512
    timeout: int = 3
    log_group: str = "/aws/lambda/fn"
    handler: str = "app.handler"
    environment: dict[str, str] = field(default_factory=dict)


class _Handle:
    def __init__(self) -> None:
        self.pid = 1
        self.output_fd, self._write_fd = os.pipe2(os.O_NONBLOCK)
        self.exit_fd, self._exit_write = os.pipe2(os.O_NONBLOCK)

    def write(self, data: bytes) -> None:
        os.write(self._write_fd, data)

    def poll(self) -> int | None:
        return None

    def peak_memory_mb(self) -> int | None:
        return 10

    def apply_cpu_limit(self) -> None:
        pass

    def freeze(self) -> None:
        pass

    def thaw(self) -> None:
        pass

    def try_destroy(self) -> bool:
        return True


class _Launcher:
    sandboxed = True

    def __init__(self) -> None:
        self.specs: list[SandboxSpec] = []
        self.handle = _Handle()

    def spawn(self, spec: SandboxSpec) -> _Handle:
        self.specs.append(spec)
        return self.handle


def _environment(tmp_path: Path, idle_output: list[bytes], runtime: str = "python3.11") -> tuple[ExecutionEnvironment, _Launcher]:
    catalog = RuntimeCatalog({"3.11": Interpreter("3.11", "/usr/bin/python3.11", "/usr")}, None)
    plan = EnvironmentPlan("env1", _Config(runtime=runtime), tmp_path, None, None, "stream", "on-demand",  # type: ignore[arg-type]
                           sandboxed=True)
    launcher = _Launcher()
    environment = ExecutionEnvironment(
        plan, catalog, launcher, on_stopped=lambda env: None, on_torn_down=lambda env: None,  # type: ignore[arg-type]
        teardowns=TeardownThread(), on_idle_output=lambda env, data: idle_output.append(data),
    )
    return environment, launcher


def test_a_cold_invocation_moves_through_the_table_and_idle_output_is_kept(tmp_path: Path) -> None:
    async def scenario() -> None:
        idle: list[bytes] = []
        environment, launcher = _environment(tmp_path, idle)
        await environment.start()
        assert environment.state is EnvironmentState.INITIALIZING
        assert launcher.specs[0].env["AWS_LAMBDA_RUNTIME_API"].startswith("127.0.0.1:")
        invocation = Invocation("req-1", b"{}", "arn", "trace")
        environment.invoke(invocation)
        assert environment.state is EnvironmentState.AWAITING_RUNTIME
        event = environment.next_invocation()
        assert environment.state is EnvironmentState.BUSY
        assert not isinstance(event, asyncio.Future)
        assert dict(event.headers)["Lambda-Runtime-Aws-Request-Id"] == "req-1"
        assert environment.invocation_response("req-1", b'"ok"', "application/json")
        assert environment.state is EnvironmentState.IDLE and invocation.future.done()
        with pytest.raises(IllegalTransition):
            environment._transition(EnvironmentState.INIT_FAILED)
        launcher.handle.write(b"written while idle\n")
        environment.stop()
        assert environment.state is EnvironmentState.STOPPED and idle == [b"written while idle\n"]
        with pytest.raises(IllegalTransition):
            environment._transition(EnvironmentState.IDLE)

    asyncio.run(scenario())


def test_a_missing_bootstrap_is_an_init_failure_answered_to_the_first_invoke(tmp_path: Path) -> None:
    async def scenario() -> None:
        environment, launcher = _environment(tmp_path, [], runtime="provided.al2023")
        await environment.start()
        assert environment.state is EnvironmentState.INIT_FAILED and environment.usable
        assert launcher.specs == []  # nothing to start
        invocation = Invocation("req-1", b"{}", "arn", "trace")
        environment.invoke(invocation)
        outcome = await invocation.future
        assert outcome.function_error == "Unhandled" and b"Runtime.InvalidEntrypoint" in outcome.payload
        assert environment.state is EnvironmentState.STOPPED

    asyncio.run(scenario())


def test_an_init_error_while_an_invocation_waits_fails_it(tmp_path: Path) -> None:
    async def scenario() -> None:
        environment, _launcher = _environment(tmp_path, [])
        await environment.start()
        environment.invoke(Invocation("req-1", b"{}", "arn", "trace"))
        assert environment.init_error(b'{"errorType": "Runtime.ImportModuleError"}', "Runtime.ImportModuleError")
        assert environment.state is EnvironmentState.INIT_FAILED
        assert not environment.init_error(b"{}", "again")  # reported once
        environment.stop()

    asyncio.run(scenario())
