"""The freezer and the kill on cgroup v1 and v2 (against temp dirs laid out like cgroupfs), the teardown thread, and
the environment's freeze/thaw and stop around them."""
from __future__ import annotations

import asyncio
import logging
import os
import signal
import subprocess
import threading
from pathlib import Path

import pytest

from lamina.model.invocation import Invocation
from lamina.sandbox import cgroups
from lamina.sandbox.cgroup_v1 import V1CgroupDriver
from lamina.sandbox.cgroup_v2 import V2CgroupDriver
from lamina.sandbox.cgroups import FREEZE_HOLD, ResourceLimits
from lamina.runtimes.launch import EnvironmentPlan
from lamina.invoke.environment import ExecutionEnvironment
from lamina.invoke.states import EnvironmentState, FreezerState
from lamina.sandbox.teardown import TeardownThread
from tests.support.polling import async_wait_until, wait_until

LIMITS = ResourceLimits.for_memory(128)


def _fake_v1(root: Path, *, freezer: bool = True) -> dict[str, Path]:
    names = ("memory", "cpu", "pids", "freezer") if freezer else ("memory", "cpu", "pids")
    hierarchies = {name: root / name for name in names}
    for path in hierarchies.values():
        path.mkdir()
    return hierarchies


def _fake_v2(root: Path, *, freeze: bool = True) -> Path:
    (root / "cgroup.controllers").write_text("cpu memory pids\n")
    (root / "cgroup.subtree_control").write_text("")
    (root / "lamina").mkdir()
    if freeze:
        (root / "lamina" / "cgroup.freeze").write_text("0")
    return root


def _member() -> subprocess.Popen[bytes]:
    return subprocess.Popen(["sleep", "60"])


def _record_kills(monkeypatch: pytest.MonkeyPatch, freeze_file: Path) -> list[tuple[int, str]]:
    """SIGKILLs sent by the cgroup code, each with what the freeze file said at that moment."""
    sent: list[tuple[int, str]] = []
    real_kill = os.kill

    def kill(pid: int, sig: int) -> None:
        sent.append((pid, freeze_file.read_text()))
        real_kill(pid, sig)

    monkeypatch.setattr(cgroups.os, "kill", kill)
    return sent


def test_v1_freezer_is_a_hierarchy_not_a_limit_and_holds_the_fast_path(tmp_path: Path) -> None:
    driver = V1CgroupDriver(_fake_v1(tmp_path), "lamina")
    assert driver.controllers == {"memory", "cpu", "pids"} and driver.freezes
    assert tmp_path / "freezer" / "lamina" in driver.parent_dirs
    assert (tmp_path / "freezer" / "lamina" / FREEZE_HOLD / "freezer.state").read_text() == "FROZEN"
    group = driver.create("env1", LIMITS)
    assert str(tmp_path / "freezer" / "lamina" / "env1" / "cgroup.procs") in group.procs_paths
    state = tmp_path / "freezer" / "lamina" / "env1" / "freezer.state"
    state.write_text("THAWED")
    group.freeze()
    assert state.read_text() == "FROZEN" and group.is_frozen()
    group.thaw()
    group.freeze()
    group.thaw()
    assert state.read_text() == "THAWED" and not group.is_frozen()
    open_on_it = [fd for fd in os.listdir("/proc/self/fd") if os.path.realpath(f"/proc/self/fd/{fd}") == str(state)]
    assert len(open_on_it) == 1  # one kept descriptor: each freeze or thaw is a single pwrite


def test_v1_kill_freezes_signals_every_member_then_thaws(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    group = V1CgroupDriver(_fake_v1(tmp_path), "lamina").create("env1", LIMITS)
    state = tmp_path / "freezer" / "lamina" / "env1" / "freezer.state"
    state.write_text("THAWED")
    members = [_member(), _member()]
    for path in group.procs_paths:
        Path(path).write_text("".join(f"{member.pid}\n" for member in members))
    sent = _record_kills(monkeypatch, state)
    group.kill_all()
    assert sorted(sent) == sorted((member.pid, "FROZEN") for member in members)  # one pass, all while frozen
    assert state.read_text() == "THAWED"
    assert (tmp_path / "cpu" / "lamina" / "env1" / "cpu.cfs_quota_us").read_text() == "-1"  # so they can exit
    assert [member.wait(timeout=5) for member in members] == [-signal.SIGKILL] * 2


def test_v1_without_a_freezer_still_kills_and_never_freezes(tmp_path: Path) -> None:
    driver = V1CgroupDriver(_fake_v1(tmp_path, freezer=False), "lamina")
    assert not driver.freezes
    group = driver.create("env1", LIMITS)
    group.freeze()  # no-op
    member = _member()
    Path(group.procs_paths[0]).write_text(f"{member.pid}\n")
    group.kill_all()
    assert member.wait(timeout=5) == -signal.SIGKILL


def test_v2_freeze_and_cgroup_kill(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    driver = V2CgroupDriver(_fake_v2(tmp_path), "lamina")
    assert driver.freezes
    group = driver.create("env1", LIMITS)
    env = tmp_path / "lamina" / "env1"
    (env / "cgroup.freeze").write_text("0")
    (env / "cgroup.events").write_text("populated 1\nfrozen 0\n")
    group.freeze()
    assert (env / "cgroup.freeze").read_text() == "1"
    assert not group.is_frozen()  # the kernel says when every task has stopped
    (env / "cgroup.events").write_text("populated 1\nfrozen 1\n")
    assert group.is_frozen()
    (env / "cgroup.kill").write_text("")
    sent = _record_kills(monkeypatch, env / "cgroup.freeze")
    group.kill_all()
    assert (env / "cgroup.kill").read_text() == "1" and sent == []
    assert (env / "cgroup.freeze").read_text() == "0"
    assert (env / "cpu.max").read_text() == "max 20000"


def test_v2_without_cgroup_kill_freezes_signals_then_thaws(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    group = V2CgroupDriver(_fake_v2(tmp_path), "lamina").create("env1", LIMITS)
    env = tmp_path / "lamina" / "env1"
    (env / "cgroup.freeze").write_text("0")
    (env / "cgroup.events").write_text("populated 1\nfrozen 1\n")
    member = _member()
    Path(group.procs_paths[0]).write_text(f"{member.pid}\n")
    sent = _record_kills(monkeypatch, env / "cgroup.freeze")
    group.kill_all()
    assert sent == [(member.pid, "1")]
    assert (env / "cgroup.freeze").read_text() == "0"
    assert member.wait(timeout=5) == -signal.SIGKILL


def test_v2_without_cgroup_freeze_does_not_freeze(tmp_path: Path) -> None:
    driver = V2CgroupDriver(_fake_v2(tmp_path, freeze=False), "lamina")
    assert not driver.freezes
    group = driver.create("env1", LIMITS)
    group.freeze()
    assert not (tmp_path / "lamina" / "env1" / "cgroup.freeze").exists()


def test_teardown_thread_retries_without_holding_up_others(caplog: pytest.LogCaptureFixture) -> None:
    teardowns = TeardownThread()
    done: list[str] = []
    slow_attempts = [0]
    release = threading.Event()

    def slow() -> bool:
        slow_attempts[0] += 1
        if slow_attempts[0] == 1:
            raise OSError("transient")
        return release.is_set()

    teardowns.submit("slow", slow, lambda: done.append("slow"))
    teardowns.submit("quick", lambda: True, lambda: done.append("quick"))
    wait_until(lambda: done == ["quick"] and slow_attempts[0] >= 3, timeout=5, interval=0.001)
    release.set()
    wait_until(lambda: done == ["quick", "slow"], timeout=5, interval=0.001)
    assert [record.getMessage() for record in caplog.records if record.levelno >= logging.ERROR] == [
        "teardown of slow failed; retrying"
    ]


class _FakeProcess:
    """Stands in for SandboxProcess: records freezer calls; teardown succeeds on the second attempt."""

    def __init__(self) -> None:
        self.output_fd, self.exit_fd = os.pipe2(os.O_NONBLOCK)
        self.calls: list[str] = []
        self.attempts = 0

    def freeze(self) -> None:
        self.calls.append("freeze")

    def thaw(self) -> None:
        self.calls.append("thaw")

    def apply_cpu_limit(self) -> None:
        pass

    def peak_memory_mb(self) -> int | None:
        return None

    def try_destroy(self) -> bool:
        self.attempts += 1
        return self.attempts > 1


class _Config:
    timeout = 3
    memory_size = 128


def _environment(events: list[str], teardowns: TeardownThread) -> tuple[ExecutionEnvironment, _FakeProcess]:
    plan = EnvironmentPlan("env1", _Config(), Path("/nonexistent"), None, None, "stream",  # type: ignore[arg-type]
                           "on-demand", sandboxed=True)
    environment = ExecutionEnvironment(
        plan, None, None,  # type: ignore[arg-type]
        on_stopped=lambda env: events.append("stopped"), on_torn_down=lambda env: events.append("torn down"),
        teardowns=teardowns,
    )
    process = _FakeProcess()
    environment._process = process  # type: ignore[assignment]
    environment._init_reported = True
    environment.state = EnvironmentState.INITIALIZING
    return environment, process


def test_idle_environment_freezes_after_the_delay_and_thaws_before_its_next_event() -> None:
    async def scenario() -> None:
        environment, process = _environment([], TeardownThread())
        parked = environment.next_invocation()
        assert isinstance(parked, asyncio.Future) and environment._freezer is FreezerState.FREEZE_DUE
        await async_wait_until(lambda: environment._freezer is FreezerState.FROZEN, what="the freeze")
        assert process.calls == ["freeze"]
        parked.add_done_callback(lambda _: process.calls.append("event delivered"))
        environment.invoke(Invocation("req-1", b"{}", "arn", "trace"))
        await asyncio.sleep(0)
        assert process.calls == ["freeze", "thaw", "event delivered"]
        environment.invocation_response("req-1", b"{}", "application/json")
        # Back to back: the next invoke comes before the delay and cancels the freeze.
        parked = environment.next_invocation()
        environment.invoke(Invocation("req-2", b"{}", "arn", "trace"))
        await asyncio.sleep(0.02)  # past the freeze delay: the freeze it would have made must not come
        assert process.calls == ["freeze", "thaw", "event delivered"]
        assert environment._freezer is FreezerState.RUNNING and parked.done()

    asyncio.run(scenario())


def test_stop_never_raises_and_frees_the_slot_before_the_teardown_ends() -> None:
    async def scenario() -> None:
        events: list[str] = []
        environment, process = _environment(events, TeardownThread())
        environment.next_invocation()

        def broken() -> None:
            raise RuntimeError("endpoint close failed")

        environment._endpoint.close = broken  # type: ignore[method-assign]
        environment.stop()
        environment.stop()
        assert events == ["stopped"] and environment.state is EnvironmentState.STOPPED
        await async_wait_until(lambda: events == ["stopped", "torn down"], what="the teardown")
        assert process.attempts == 2
        assert process.calls == []  # a pending freeze is cancelled; the kill (in try_destroy) thaws a frozen one

    asyncio.run(scenario())
