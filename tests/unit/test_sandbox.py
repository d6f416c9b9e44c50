"""lamina.sandbox with real bubblewrap, real cgroups and real processes (needs a root host with bwrap).

The cgroup v2 driver is tested against a temp dir laid out like a cgroup2 mount, since this
machine's cgroup2 mount offers no controllers.
"""
from __future__ import annotations

import dataclasses
import itertools
import os
import select
import shutil
import signal
import socket
import statistics
import subprocess
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from lamina.runtime_api.peer import loopback_socket_uid
from lamina.sandbox import (
    CgroupUnavailable,
    HostCapabilities,
    ResourceLimits,
    SandboxProcess,
    SandboxSpec,
    detect_host_capabilities,
    remove_stale_sandboxes,
)
from lamina.sandbox.cgroup_discovery import open_cgroup_driver
from lamina.sandbox.cgroup_v2 import V2CgroupDriver
from lamina.sandbox.cgroups import FREEZE_HOLD, MIB
from lamina.sandbox.mounts import mounts_under
from lamina.sandbox.teardown import TeardownThread
from tests.support.polling import wait_until

UID = 48_151
real_host = pytest.mark.skipif(os.geteuid() != 0 or shutil.which("bwrap") is None,
                               reason="needs root and bubblewrap")
_ids = itertools.count()


@pytest.fixture(scope="module")
def scratch_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("scratch")


@pytest.fixture(scope="module")
def caps(scratch_root: Path) -> Iterator[HostCapabilities]:
    if os.geteuid() != 0 or shutil.which("bwrap") is None:
        pytest.skip("needs root and bubblewrap")
    found = detect_host_capabilities(scratch_root, cgroup_parent=f"lamina-test-{os.getpid()}")
    yield found
    remove_stale_sandboxes(found, scratch_root)
    if found.cgroups is not None:
        found.cgroups.remove_parents()
        assert not any(parent.exists() for parent in found.cgroups.parent_dirs)


@pytest.fixture(scope="module")
def code_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    code = tmp_path_factory.mktemp("code")
    (code / "handler.py").write_text("print('handler')\n")
    (code / "handler.py").chmod(0o644)
    code.chmod(0o755)
    return code


def make_spec(code_dir: Path, argv: list[str], **changes: object) -> SandboxSpec:
    spec = SandboxSpec(
        env_id=f"env{next(_ids)}-{os.getpid()}", argv=argv,
        env={"PATH": "/usr/bin:/bin", "LAMINA_PROBE": "yes"},
        code_dir=code_dir, runtime_dir=code_dir, opt_dir=None, ro_binds=[], masks=[],
        memory_mb=128, ephemeral_storage_mb=8, uid=UID,
    )
    return dataclasses.replace(spec, **changes)


@contextmanager
def sandbox(caps: HostCapabilities, scratch_root: Path, spec: SandboxSpec) -> Iterator[SandboxProcess]:
    process = SandboxProcess.spawn(spec, caps, scratch_root)
    try:
        yield process
    finally:
        process.destroy()


def communicate(process: SandboxProcess, timeout: float = 10.0, until: str | None = None) -> str:
    """Output until the process exits and the pipe is drained (or until `until` appears)."""
    output = b""
    deadline = time.monotonic() + timeout
    exited = False
    while time.monotonic() < deadline:
        ready, _, _ = select.select([process.output_fd, process.exit_fd], [], [], 0.05)
        exited = exited or process.exit_fd in ready
        try:
            chunk = os.read(process.output_fd, 65536)
        except BlockingIOError:
            chunk = None
        if chunk:
            output += chunk
            if until is not None and until in output.decode():
                return output.decode()
        elif chunk == b"" or (exited and chunk is None):
            if exited:
                return output.decode()
    raise AssertionError(f"sandbox still running after {timeout}s; output so far: {output.decode()!r}")


def run(caps: HostCapabilities, scratch_root: Path, spec: SandboxSpec) -> tuple[int | None, str]:
    with sandbox(caps, scratch_root, spec) as process:
        output = communicate(process)
        return process.poll(), output


def sh(code_dir: Path, script: str, **changes: object) -> SandboxSpec:
    return make_spec(code_dir, ["/bin/sh", "-c", script], **changes)


def cgroup_file(process: SandboxProcess, name: str) -> str:
    assert process.cgroup is not None
    for directory in process.cgroup.dirs:
        if (directory / name).exists():
            return (directory / name).read_text().strip()
    raise FileNotFoundError(name)


def test_limits_follow_aws_sizing() -> None:
    small, large = ResourceLimits.for_memory(128), ResourceLimits.for_memory(10240)
    assert (small.cpu_quota_us, small.cpu_shares, small.cpu_weight) == (1447, 74, 7)
    assert (large.cpu_quota_us, large.cpu_shares, large.cpu_weight) == (115772, 5928, 579)
    assert ResourceLimits(128, 0.01).cpu_quota_us == 1000  # the kernel's minimum quota


@real_host
def test_detect_on_this_host_is_fast_and_complete(scratch_root: Path, caps: HostCapabilities) -> None:
    timings = []
    for _ in range(3):
        started = time.perf_counter()
        again = detect_host_capabilities(scratch_root, cgroup_parent=f"lamina-test-{os.getpid()}")
        timings.append(time.perf_counter() - started)
    assert min(timings) < 0.05
    assert again.bwrap_path and again.setpriv_path and again.is_root and again.bwrap_tmpfs_size
    assert again.cgroups is not None and again.cgroups.controllers == {"memory", "cpu", "pids"}
    assert again.missing == ()


@real_host
def test_detect_names_what_is_missing(scratch_root: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PATH", str(tmp_path))  # neither bwrap nor setpriv can be found
    found = detect_host_capabilities(scratch_root, cgroup_parent=f"lamina-test-{os.getpid()}")
    assert found.bwrap_path is None and found.setpriv_path is None
    assert any(line.startswith("bubblewrap (bwrap) not found") and "host's filesystem" in line
               for line in found.missing)
    assert any(line.startswith("setpriv (util-linux) not found") for line in found.missing)


@real_host
def test_sandbox_sees_its_code_and_nothing_of_the_host(
        caps: HostCapabilities, scratch_root: Path, code_dir: Path, tmp_path: Path) -> None:
    data_dir = tmp_path / "data"
    data_dir.mkdir()
    host_tmp_marker = Path(f"/tmp/lamina-test-marker-{os.getpid()}")
    host_tmp_marker.write_text("host")
    lang = tmp_path / "lang"
    (lang / "hidden").mkdir(parents=True)
    (lang / "bin.txt").write_text("interpreter\n")
    (lang / "hidden" / "site.txt").write_text("host site-packages\n")
    script = f"""
        cat /var/task/handler.py
        touch /var/task/new 2>/dev/null || echo task-read-only
        touch /new 2>/dev/null || echo root-read-only
        for path in /root /work {data_dir} {host_tmp_marker} {scratch_root} /etc/shadow /sys/fs; do
            test -e "$path" && echo "SEES $path"
        done
        echo private > /tmp/file && cat /tmp/file && stat -c 'tmp-mode %a' /tmp
        ls -A /opt | wc -l | sed 's/^/opt-entries /'
        cat /var/lang/bin.txt
        ls -A /lang/prefix/hidden | wc -l | sed 's/^/masked-entries /'
        touch /lang/prefix/hidden/x 2>/dev/null || echo mask-read-only
        env
    """
    spec = sh(code_dir, script, ro_binds=[(str(lang), "/lang/prefix"), (str(lang), "/var/lang")],
              masks=["/lang/prefix/hidden"])
    try:
        code, output = run(caps, scratch_root, spec)
    finally:
        host_tmp_marker.unlink()
    assert code == 0, output
    assert "handler" in output and "task-read-only" in output and "root-read-only" in output
    assert "SEES" not in output
    assert "private" in output and "tmp-mode 1777" in output
    assert "opt-entries 0" in output
    assert "interpreter" in output and "masked-entries 0" in output and "mask-read-only" in output
    assert "LAMINA_PROBE=yes" in output and "PYTEST_CURRENT_TEST" not in output


@real_host
def test_runs_as_the_uid_in_its_own_pid_namespace(caps: HostCapabilities, scratch_root: Path, code_dir: Path) -> None:
    script = """
        echo "uid $(id -u) gid $(id -g) groups $(id -G) name $(id -un)"
        echo "pid $$"
        set -- /proc/[0-9]*; echo "procs $#"
        cat /proc/[0-9]*/cmdline | tr '\\0' ' '; echo
        grep CapEff /proc/self/status
        echo "nofile $(ulimit -n)"
        echo "fds $(ls /proc/self/fd | tr '\n' ' ')"
    """
    with sandbox(caps, scratch_root, sh(code_dir, script)) as process:
        output = communicate(process)
        assert process.poll() == 0, output
        assert process.uid == UID
        assert f"uid {UID} gid {UID} groups {UID} name sbx_user1051" in output
        assert "pid 2" in output  # bwrap's reaper is pid 1
        assert "procs 2\n" in output  # bwrap's reaper and this shell: no host process
        assert "pytest" not in output
        assert "CapEff:\t0000000000000000" in output
        assert "nofile 1024" in output
        assert "fds 0 1 2 3 \n" in output  # 3 is ls's own; nothing of the server's leaks in


@real_host
def test_cgroup_limits_are_set_and_cpu_quota_waits_for_init(
        caps: HostCapabilities, scratch_root: Path, code_dir: Path) -> None:
    with sandbox(caps, scratch_root, sh(code_dir, "while :; do :; done")) as process:
        assert cgroup_file(process, "memory.limit_in_bytes") == str(128 * MIB)
        assert cgroup_file(process, "memory.memsw.limit_in_bytes") == str(128 * MIB)
        assert cgroup_file(process, "pids.max") == "1024"
        assert cgroup_file(process, "cpu.shares") == "74"
        assert cgroup_file(process, "cpu.cfs_quota_us") == "-1"  # init bursts, as on AWS
        # The launcher joins the cgroup itself, just before it execs bwrap.
        wait_until(lambda: process.pid in process.cgroup.pids(), timeout=2, interval=0.001)
        process.apply_cpu_limit()
        assert cgroup_file(process, "cpu.cfs_period_us") == "20000"
        assert cgroup_file(process, "cpu.cfs_quota_us") == "1447"

        def throttled() -> int:
            return int(dict(line.split() for line in cgroup_file(process, "cpu.stat").splitlines())["nr_throttled"])

        wait_until(lambda: throttled() > 0, timeout=5, what="CPU throttling")


@real_host
@pytest.mark.parametrize("bwrap_sizes_tmp", [True, False], ids=["bwrap-size", "root-mount"])
def test_tmp_is_capped_and_cleaned_up(
        caps: HostCapabilities, scratch_root: Path, code_dir: Path, bwrap_sizes_tmp: bool) -> None:
    caps = dataclasses.replace(caps, bwrap_tmpfs_size=bwrap_sizes_tmp)
    script = "dd if=/dev/zero of=/tmp/fill bs=1M count=8; du -k /tmp/fill; echo filled; exec sleep 60"
    spec = sh(code_dir, script, ephemeral_storage_mb=4)
    process = SandboxProcess.spawn(spec, caps, scratch_root)
    try:
        output = communicate(process, until="filled")
        assert "No space left on device" in output
        du_line = next(line for line in output.splitlines() if line.endswith("/tmp/fill"))
        assert int(du_line.split()[0]) <= 4096
        assert bool(mounts_under(scratch_root)) is not bwrap_sizes_tmp
    finally:
        process.destroy()
    assert mounts_under(scratch_root) == []
    assert list(scratch_root.iterdir()) == []


@real_host
def test_memory_limit_kills_with_sigkill(caps: HostCapabilities, scratch_root: Path, code_dir: Path) -> None:
    spec = make_spec(code_dir, ["/usr/bin/python3", "-c", "b = b'x' * (256 << 20); print('survived')"],
                     memory_mb=64)
    with sandbox(caps, scratch_root, spec) as process:
        output = communicate(process)
        assert process.poll() == -signal.SIGKILL, output
        assert "survived" not in output
        assert 48 <= (process.peak_memory_mb() or 0) <= 64


@real_host
def test_kill_then_destroy_leaves_nothing(caps: HostCapabilities, scratch_root: Path, code_dir: Path) -> None:
    process = SandboxProcess.spawn(sh(code_dir, "sleep 60 & sleep 60"), caps, scratch_root)
    assert process.poll() is None
    group_dirs = process.cgroup.dirs
    process.kill()
    communicate(process)
    assert process.poll() == -signal.SIGKILL
    process.destroy()
    process.destroy()
    assert not any(path.exists() for path in group_dirs)
    assert list(scratch_root.iterdir()) == []
    for fd in (process.output_fd, process.exit_fd):
        with pytest.raises(OSError):
            os.fstat(fd)


@real_host
def test_remove_stale_cleans_up_after_a_crashed_server(
        caps: HostCapabilities, scratch_root: Path, code_dir: Path) -> None:
    assert caps.cgroups is not None
    sized = SandboxProcess.spawn(sh(code_dir, "exec sleep 60"), caps, scratch_root)
    mounted = SandboxProcess.spawn(sh(code_dir, "exec sleep 60"),
                                   dataclasses.replace(caps, bwrap_tmpfs_size=False), scratch_root)
    # A group whose owner is gone, holding an orphan that never went through spawn().
    stray = caps.cgroups.create("stray", ResourceLimits.for_memory(128))
    orphan = subprocess.Popen(["sleep", "60"], preexec_fn=lambda: [Path(p).write_text("0") for p in stray.procs_paths])
    (scratch_root / "leftover-file").write_text("x")
    assert mounts_under(scratch_root)
    sized.freeze()  # a crashed server may leave an idle environment frozen

    remove_stale_sandboxes(caps, scratch_root)

    assert orphan.wait(timeout=5) == -signal.SIGKILL
    for process in (sized, mounted):
        communicate(process)
        assert process.poll() == -signal.SIGKILL
    assert [path for parent in caps.cgroups.parent_dirs for path in parent.iterdir()
            if path.is_dir() and path.name != FREEZE_HOLD] == []
    assert mounts_under(scratch_root) == []
    assert list(scratch_root.iterdir()) == []
    for process in (sized, mounted):
        process.destroy()  # still safe after the clean-up took its resources


@real_host
def test_outbound_tcp_works_and_shows_the_uid(caps: HostCapabilities, scratch_root: Path, code_dir: Path) -> None:
    listener = socket.create_server(("127.0.0.1", 0))
    port = listener.getsockname()[1]
    seen: dict[str, object] = {}

    def serve() -> None:
        connection, peer = listener.accept()
        with connection:
            seen["data"] = connection.recv(100)
            seen["uid"] = loopback_socket_uid(peer, listener.getsockname())
            connection.sendall(b"pong")

    server = threading.Thread(target=serve, daemon=True)
    server.start()
    client = ("import socket; c = socket.create_connection(('127.0.0.1', %d), timeout=5); "
              "c.sendall(b'ping'); print(c.recv(10).decode())" % port)
    try:
        code, output = run(caps, scratch_root, make_spec(code_dir, ["/usr/bin/python3", "-c", client]))
    finally:
        server.join(timeout=5)
        listener.close()
    assert code == 0, output
    assert "pong" in output and seen == {"data": b"ping", "uid": UID}


@real_host
def test_output_is_one_non_blocking_pipe(caps: HostCapabilities, scratch_root: Path, code_dir: Path) -> None:
    with sandbox(caps, scratch_root, sh(code_dir, "sleep 0.2; echo out; echo err >&2")) as process:
        with pytest.raises(BlockingIOError):
            os.read(process.output_fd, 100)
        assert communicate(process) == "out\nerr\n"


@real_host
def test_reduced_isolation_runs_directly_but_still_limited(
        caps: HostCapabilities, scratch_root: Path, code_dir: Path) -> None:
    reduced = dataclasses.replace(caps, bwrap_path=None)
    script = "pwd; id -u; cat /proc/self/cgroup; echo nofile $(ulimit -n); sleep 60 & echo child $!; wait"
    spec = sh(code_dir, script)
    with sandbox(reduced, scratch_root, spec) as process:
        output = communicate(process, until="child ")
        assert output.startswith(f"{code_dir}\n{UID}\n")
        assert f"memory:/lamina-test-{os.getpid()}/{spec.env_id}" in output and "nofile 1024" in output
        process.kill()
        communicate(process)
        assert process.poll() == -signal.SIGKILL
    child = int(output.split("child ")[1].split()[0])
    assert not Path(f"/proc/{child}").exists() or "Z" in Path(f"/proc/{child}/stat").read_text().split()[2]


@real_host
def test_without_cgroups_kill_reaches_the_whole_sandbox(
        caps: HostCapabilities, scratch_root: Path, code_dir: Path) -> None:
    no_cgroups = dataclasses.replace(caps, cgroups=None)
    with sandbox(no_cgroups, scratch_root, sh(code_dir, "echo started; sleep 60")) as process:
        communicate(process, until="started")
        process.kill()
        communicate(process)
        assert process.poll() == -signal.SIGKILL
        assert process.peak_memory_mb() is None


@real_host
def test_spawn_time(caps: HostCapabilities, scratch_root: Path, code_dir: Path) -> None:
    """Cold-start cost of the sandbox alone: spawn() until `/bin/true` has run and exited."""
    timings = []
    for _ in range(10):
        started = time.perf_counter()
        with sandbox(caps, scratch_root, make_spec(code_dir, ["/bin/true"])) as process:
            select.select([process.exit_fd], [], [], 5)
            timings.append(time.perf_counter() - started)
            assert process.poll() == 0
    print(f"\nsandbox spawn-to-exit of /bin/true: median {statistics.median(timings) * 1000:.1f} ms, "
          f"min {min(timings) * 1000:.1f} ms, max {max(timings) * 1000:.1f} ms")
    assert statistics.median(timings) < 0.2


def _fake_cgroup2(root: Path, controllers: str = "cpuset cpu io memory hugetlb pids") -> Path:
    (root / "cgroup.controllers").write_text(controllers + "\n")
    (root / "cgroup.subtree_control").write_text("")
    (root / "lamina").mkdir()
    for name in ("memory.swap.max", "memory.oom.group"):  # present in the parent when the kernel has them
        (root / "lamina" / name).write_text("")
    return root


def test_v2_driver_enables_controllers_and_writes_limits(tmp_path: Path) -> None:
    driver = V2CgroupDriver(_fake_cgroup2(tmp_path), "lamina")
    assert driver.version == 2 and driver.controllers == {"memory", "cpu", "pids"}
    assert (tmp_path / "cgroup.subtree_control").read_text() == "+cpu +memory +pids"
    assert (tmp_path / "lamina" / "cgroup.subtree_control").read_text() == "+cpu +memory +pids"
    group = driver.create("env1", ResourceLimits.for_memory(1769))
    files = {path.name: path.read_text() for path in (tmp_path / "lamina" / "env1").iterdir()}
    assert files == {"memory.max": str(1769 * MIB), "memory.swap.max": "0", "memory.oom.group": "1",
                     "pids.max": "1024", "cpu.weight": "100"}
    assert group.procs_paths == (str(tmp_path / "lamina" / "env1" / "cgroup.procs"),)
    group.apply_cpu_limit()
    assert (tmp_path / "lamina" / "env1" / "cpu.max").read_text() == "20000 20000"
    assert group.peak_memory_bytes() is None
    (tmp_path / "lamina" / "env1" / "memory.peak").write_text("52428800\n")
    assert group.peak_memory_bytes() == 50 * MIB


def test_v2_driver_keeps_enabled_controllers_and_needs_memory(tmp_path: Path) -> None:
    (tmp_path / "a").mkdir()
    root = _fake_cgroup2(tmp_path / "a", controllers="cpu memory")
    (root / "cgroup.subtree_control").write_text("cpu memory\n")
    driver = V2CgroupDriver(root, "lamina")
    assert driver.controllers == {"memory", "cpu"}
    assert (root / "cgroup.subtree_control").read_text() == "cpu memory\n"
    (tmp_path / "b").mkdir()
    with pytest.raises(CgroupUnavailable, match="no memory controller"):
        V2CgroupDriver(_fake_cgroup2(tmp_path / "b", controllers="cpu pids"), "lamina")


def test_v2_kill_all_uses_cgroup_kill_else_signals_members(tmp_path: Path) -> None:
    group = V2CgroupDriver(_fake_cgroup2(tmp_path), "lamina").create("env1", ResourceLimits.for_memory(128))
    kill_file = tmp_path / "lamina" / "env1" / "cgroup.kill"
    kill_file.write_text("")
    group.kill_all()
    assert kill_file.read_text() == "1"
    kill_file.unlink()
    member = subprocess.Popen(["sleep", "60"])
    Path(group.procs_paths[0]).write_text(f"{member.pid}\n")
    group.kill_all()
    assert member.wait(timeout=5) == -signal.SIGKILL


def test_driver_choice_from_mountinfo(tmp_path: Path) -> None:
    v1 = {name: tmp_path / name for name in ("memory", "cpu,cpuacct", "pids")}
    for path in v1.values():
        path.mkdir()
        (path / "cgroup.procs").write_text("")
    (tmp_path / "unified").mkdir()
    (tmp_path / "unified" / "cgroup.controllers").write_text("\n")
    mountinfo = tmp_path / "mountinfo"
    mountinfo.write_text(
        f"41 31 0:38 / {tmp_path}/unified rw,relatime - cgroup2 cgroup2 rw\n"
        + "".join(f"3{i} 31 0:3{i} / {path} rw,relatime - cgroup cgroup rw,{path.name}\n"
                  for i, path in enumerate(v1.values())))
    driver = open_cgroup_driver("lamina", mountinfo)
    assert driver.version == 1 and driver.controllers == {"memory", "cpu", "pids"}
    assert set(driver.parent_dirs) == {path / "lamina" for path in v1.values()}
    mountinfo.write_text(f"41 31 0:38 / {tmp_path}/unified rw,relatime - cgroup2 cgroup2 rw\n")
    with pytest.raises(CgroupUnavailable, match="offers no memory controller"):
        open_cgroup_driver("lamina", mountinfo)


@real_host
def test_frozen_sandbox_stops_where_it_is_and_continues_after_thaw(
        caps: HostCapabilities, scratch_root: Path, code_dir: Path) -> None:
    assert caps.cgroups is not None and caps.cgroups.freezes
    script = "i=0; while :; do i=$((i+1)); echo $i; sleep 0.01; done"
    with sandbox(caps, scratch_root, sh(code_dir, script)) as process:
        seen = communicate(process, until="\n5\n")
        process.freeze()
        wait_until(process.cgroup.is_frozen, timeout=2, interval=0.001)
        assert cgroup_file(process, "freezer.state") == "FROZEN"
        time.sleep(0.05)
        seen += _drain(process)
        time.sleep(0.3)
        assert _drain(process) == ""  # 30 lines' worth of time, not one
        process.thaw()
        resumed = communicate(process, until="\n", timeout=2)
        assert int(resumed.split()[0]) == int(seen.split()[-1]) + 1


def _drain(process: SandboxProcess) -> str:
    try:
        return os.read(process.output_fd, 65536).decode()
    except BlockingIOError:
        return ""


@real_host
def test_fork_bomb_is_torn_down_on_the_teardown_thread(
        caps: HostCapabilities, scratch_root: Path, code_dir: Path) -> None:
    process = SandboxProcess.spawn(sh(code_dir, "bomb() { bomb & bomb & wait; }; bomb"), caps, scratch_root)
    assert process.cgroup is not None
    # pids.max (1024) is what stops it.
    wait_until(lambda: int(cgroup_file(process, "pids.current")) >= 1000, timeout=5, interval=0.01)
    process.apply_cpu_limit()  # 128 MB's quota: throttled, 1,000 dying processes would take seconds to exit
    group_dirs = process.cgroup.dirs
    teardowns, running, done = TeardownThread(), threading.Event(), threading.Event()
    teardowns.submit("warm-up", lambda: True, running.set)  # starts the thread
    assert running.wait(timeout=5)
    started = time.perf_counter()
    teardowns.submit("bomb", process.try_destroy, done.set)
    handed_over = time.perf_counter() - started
    assert done.wait(timeout=5)
    took = time.perf_counter() - started
    print(f"\nfork bomb of 1,000+ processes: handed over in {handed_over * 1e6:.0f} us, gone after {took * 1000:.0f} ms")
    assert handed_over < 0.005 and took < 1.0
    assert not any(path.exists() for path in group_dirs)
    assert list(scratch_root.iterdir()) == []
