"""Start, watch and tear down one execution environment's process tree.

spawn() is synchronous and does the least possible work (one fork+exec of bwrap, a cgroup
and a few in-memory files, no disk writes) because it sits on the cold-start path.
"""
from __future__ import annotations

import logging
import os
import resource
import signal
import subprocess
import time
from contextlib import ExitStack, nullcontext
from dataclasses import dataclass
from pathlib import Path

from lamina.sandbox.bwrap import FilesystemView, TmpMount, build_options, command_line, encode_options, identity_files
from lamina.sandbox.cgroups import DESTROY_TIMEOUT_S, MIB, Cgroup, ResourceLimits
from lamina.sandbox.host import HostCapabilities
from lamina.sandbox.mounts import mount_tmpfs, mounts_under, unmount
from lamina.sandbox.network import EnvironmentNetwork
from lamina.store.fsutil import remove_tree

log = logging.getLogger(__name__)

#: AWS's file-descriptor quota.
NOFILE_LIMIT = 1024
#: bwrap exits with 128+N when the command dies of signal N (the shell convention), so a
#: runtime that itself exits with status 129-192 is reported as killed by that signal.
_SIGNAL_EXIT_BASE = 128
REAP_TIMEOUT_S = 5.0


@dataclass
class SandboxSpec:
    env_id: str                          # unique; names the cgroup and scratch dir
    argv: list[str]                      # command to run inside
    env: dict[str, str]                  # complete environment (nothing inherited from the server)
    code_dir: Path                       # bound read-only at /var/task
    runtime_dir: Path                    # Lamina's bootstraps, bound read-only at /var/runtime
    opt_dir: Path | None                 # layers, read-only at /opt (empty dir if None)
    ro_binds: list[tuple[str, str]]      # (host path, sandbox path)
    masks: list[str]                     # sandbox paths hidden under an empty read-only tmpfs
    memory_mb: int
    ephemeral_storage_mb: int            # size of the private writable /tmp
    uid: int | None                      # run as this uid/gid (root host only); distinct per environment
    network: EnvironmentNetwork | None = None  # the environment's own network namespace (None: the host's)


class SandboxProcess:
    """A running environment: its process (bwrap, or the argv itself when reduced), cgroup and scratch."""

    def __init__(self, popen: subprocess.Popen[bytes], cgroup: Cgroup | None, uid: int | None,
                 output_fd: int, exit_fd: int, wrapped: bool, teardown: ExitStack) -> None:
        self.pid = popen.pid
        self.uid = uid
        self.output_fd = output_fd
        self.exit_fd = exit_fd
        self.cgroup = cgroup
        self._popen = popen
        self._wrapped = wrapped
        self._teardown = teardown
        self._killed = False

    @classmethod
    def spawn(cls, spec: SandboxSpec, caps: HostCapabilities, scratch_root: Path) -> SandboxProcess:
        """Create the cgroup and /tmp, then start the process already inside the cgroup.

        Call from a long-lived thread: bwrap's --die-with-parent fires when the forking
        *thread* exits.
        """
        _check_env_id(spec.env_id)
        uid = spec.uid if spec.uid is not None and caps.is_root and caps.setpriv_path else None
        command = _identity_prefix(caps.setpriv_path, uid) + list(spec.argv)
        with ExitStack() as teardown:
            if spec.network is not None:
                # First in, so last out: the namespace goes once every process in it is gone.
                teardown.callback(spec.network.delete)
            cgroup = None
            if caps.cgroups is not None:
                cgroup = caps.cgroups.create(spec.env_id, ResourceLimits.for_memory(spec.memory_mb))
                teardown.callback(cgroup.destroy)
            read_fd, write_fd = os.pipe2(os.O_CLOEXEC)
            teardown.callback(os.close, read_fd)
            with ExitStack() as handed_over:  # fds only the child keeps
                handed_over.callback(os.close, write_fd)
                pass_fds: tuple[int, ...] = ()
                if caps.bwrap_path is not None:
                    view = _prepare_view(spec, caps, scratch_root, uid, teardown, handed_over)
                    options_fd = _memfd("bwrap-args", encode_options(build_options(view)), handed_over)
                    argv = command_line(caps.bwrap_path, options_fd, command)
                    pass_fds = (options_fd, *(fd for fd, _path in view.files))
                    cwd: Path | None = None
                else:
                    argv, cwd = command, spec.code_dir
                with spec.network.entered() if spec.network is not None else nullcontext():
                    popen = subprocess.Popen(
                        _join_then_exec(cgroup.procs_paths if cgroup else (), _nofile_limit()) + argv,
                        stdin=subprocess.DEVNULL, stdout=write_fd, stderr=write_fd, env=spec.env,
                        cwd=cwd, start_new_session=True, pass_fds=pass_fds)
            teardown.callback(_kill_and_reap, popen, cgroup)
            exit_fd = os.pidfd_open(popen.pid)
            teardown.callback(os.close, exit_fd)
            os.set_blocking(read_fd, False)
            return cls(popen, cgroup, uid, read_fd, exit_fd, caps.bwrap_path is not None, teardown.pop_all())

    def poll(self) -> int | None:
        """Non-blocking reap; negative = killed by that signal, like subprocess."""
        code = self._popen.poll()
        if code is not None and self._wrapped and _SIGNAL_EXIT_BASE < code <= _SIGNAL_EXIT_BASE + 64:
            return _SIGNAL_EXIT_BASE - code
        return code

    def kill(self) -> None:
        """SIGKILL everything in the sandbox."""
        _kill(self._popen, self.cgroup)

    def peak_memory_mb(self) -> int | None:
        peak = self.cgroup.peak_memory_bytes() if self.cgroup is not None else None
        return None if peak is None else -(-peak // MIB)

    def apply_cpu_limit(self) -> None:
        if self.cgroup is not None:
            self.cgroup.apply_cpu_limit()

    def freeze(self) -> None:
        """Stop every process of the sandbox where it is (idle between invocations); no-op without a freezer."""
        if self.cgroup is not None:
            self.cgroup.freeze()

    def thaw(self) -> None:
        if self.cgroup is not None:
            self.cgroup.thaw()

    def try_destroy(self) -> bool:
        """One step of destroy() that never waits, for the teardown thread: kill, reap, and once every process is
        gone and the cgroup removed, run the rest of the teardown (fds, /tmp mount, scratch dir, network), in order.

        False while processes are still exiting: call again later. A failing step of the rest is logged, not raised:
        the processes are gone by then, so the environment's uid is free either way.
        """
        if not self._killed:
            _kill(self._popen, self.cgroup)
            self._killed = True
        if self._popen.poll() is None:
            return False
        if self.cgroup is not None and not self.cgroup.try_destroy():
            return False
        try:
            self._teardown.close()
        except Exception:  # noqa: BLE001 - every callback ran; the failure is reported, the teardown is over
            log.exception("sandbox %d: a teardown step failed", self.pid)
        return True

    def destroy(self, timeout: float = DESTROY_TIMEOUT_S) -> None:
        """try_destroy() until done, blocking: for callers without a teardown thread. Idempotent.

        Remove output_fd and exit_fd from any event loop first: they are closed here. A cgroup that will not empty
        within `timeout` is left for remove_stale_sandboxes(); the rest is torn down regardless.
        """
        deadline = time.monotonic() + timeout
        while not self.try_destroy():
            if time.monotonic() > deadline:
                self._teardown.close()
                return
            time.sleep(0.001)


def remove_stale_sandboxes(caps: HostCapabilities, scratch_root: Path) -> None:
    """Clean up after a server that died without destroying its environments (kill -9)."""
    if caps.cgroups is not None:
        caps.cgroups.remove_stale()
    if not scratch_root.is_dir():
        return
    for mount in mounts_under(scratch_root):
        unmount(mount)
    for entry in scratch_root.iterdir():
        if entry.is_dir() and not entry.is_symlink():
            _remove_quietly(entry)
        else:
            entry.unlink(missing_ok=True)


def _remove_quietly(path: Path) -> None:
    """A scratch tree a function filled (of any depth: it may hold its /tmp); what cannot go is left for the
    next start's clean-up."""
    try:
        remove_tree(path)
    except OSError as error:
        log.warning("cannot remove %s: %s", path, error)


def _check_env_id(env_id: str) -> None:
    if not env_id or env_id.startswith(".") or "/" in env_id or "\0" in env_id:
        raise ValueError(f"invalid environment id {env_id!r}")


def _identity_prefix(setpriv_path: str | None, uid: int | None) -> list[str]:
    if setpriv_path is None or uid is None:
        return []
    return [setpriv_path, f"--reuid={uid}", f"--regid={uid}", "--clear-groups",
            "--inh-caps=-all", "--bounding-set=-all", "--no-new-privs", "--"]


def _prepare_view(spec: SandboxSpec, caps: HostCapabilities, scratch_root: Path, uid: int | None,
                  teardown: ExitStack, handed_over: ExitStack) -> FilesystemView:
    """Make /tmp (mounting a sized tmpfs in the scratch dir if bwrap cannot size one) and
    the passwd/group files, and describe the mounts."""
    if caps.bwrap_tmpfs_size:
        tmp = TmpMount(size_bytes=spec.ephemeral_storage_mb * MIB)
    elif caps.is_root:
        scratch_root.mkdir(mode=0o700, parents=True, exist_ok=True)
        scratch = scratch_root / spec.env_id
        scratch.mkdir(mode=0o700)
        teardown.callback(_remove_quietly, scratch)
        tmp_dir = scratch / "tmp"
        tmp_dir.mkdir()
        mount_tmpfs(tmp_dir, spec.ephemeral_storage_mb)
        teardown.callback(unmount, tmp_dir)
        tmp = TmpMount(bind_source=tmp_dir)
    else:
        tmp = TmpMount()
    inside_uid = uid if uid is not None else os.geteuid()
    passwd, group = identity_files(inside_uid, inside_uid)
    files = ((_memfd("passwd", passwd.encode(), handed_over), "/etc/passwd"),
             (_memfd("group", group.encode(), handed_over), "/etc/group"))
    neutral = caps.neutral_paths
    return FilesystemView(
        code_dir=spec.code_dir, runtime_dir=Path(neutral.get(str(spec.runtime_dir), spec.runtime_dir)),
        opt_dir=spec.opt_dir, tmp=tmp, files=files,
        ro_binds=tuple((neutral.get(source, source), target) for source, target in spec.ro_binds),
        masks=tuple(spec.masks))


def _memfd(name: str, content: bytes, owner: ExitStack) -> int:
    """An in-memory file holding `content`, rewound for bwrap to read; `owner` closes it."""
    fd = os.memfd_create(name)
    owner.callback(os.close, fd)
    os.write(fd, content)
    os.lseek(fd, 0, os.SEEK_SET)
    return fd


def _nofile_limit() -> tuple[int, int]:
    """AWS's 1,024, or less if the server's own hard limit is lower (it cannot be raised)."""
    _soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    limit = NOFILE_LIMIT if hard == resource.RLIM_INFINITY else min(NOFILE_LIMIT, hard)
    return limit, limit


#: Joins the cgroups given as arguments, sets the fd limit, then execs the rest of argv in the same process.
_JOIN_SCRIPT = 'n=$1; shift; while [ "$n" -gt 0 ]; do echo $$ > "$1"; shift; n=$((n-1)); done; ' \
    'ulimit -n "$1"; shift; exec "$@"'


def _join_then_exec(procs_paths: tuple[str, ...], nofile: tuple[int, int]) -> list[str]:
    """A /bin/sh prefix that puts the process in its cgroups and sets RLIMIT_NOFILE before exec'ing the sandbox.

    Doing this in the child with `preexec_fn` forces Python to fork() the whole server, which blocked the event
    loop for ~20 ms per cold start; without it subprocess uses vfork(). Nothing runs unlimited: the shell joins the
    cgroups before it execs anything.
    """
    return ["/bin/sh", "-c", _JOIN_SCRIPT, "lamina-join", str(len(procs_paths)), *procs_paths, str(nofile[0])]


def _kill(popen: subprocess.Popen[bytes], cgroup: Cgroup | None) -> None:
    if cgroup is not None:
        cgroup.kill_all()
    if popen.returncode is None:
        # Not reaped yet, so the pid (and its session's process group) is still ours.
        try:
            os.killpg(popen.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass


def _kill_and_reap(popen: subprocess.Popen[bytes], cgroup: Cgroup | None) -> None:
    _kill(popen, cgroup)
    try:
        popen.wait(timeout=REAP_TIMEOUT_S)
    except subprocess.TimeoutExpired:
        log.warning("sandbox process %d did not exit after SIGKILL", popen.pid)
