"""The bwrap command line that gives a runtime its Lambda-like view of the machine.

The sandbox sees read-only system directories, a minimal /etc, its code and runtime,
a private /tmp, and nothing else of the host (the network namespace is made by
sandbox/network.py, which starts bwrap inside it).
"""
from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

NAMESPACE_ARGS = (
    "--unshare-pid", "--unshare-ipc", "--unshare-uts", "--unshare-cgroup-try",
    "--die-with-parent", "--new-session", "--hostname", "localhost",
)
SYSTEM_DIRS = ("/usr", "/bin", "/sbin", "/lib", "/lib64", "/lib32", "/libx32")
#: A minimal /etc (certificates: ssl on Debian, pki on RHEL), plus the dynamic linker's cache,
#: Debian's alternatives (targets of /usr/bin links) and the services table (getaddrinfo
#: with a service name). Kept short: each bind costs bwrap ~0.3 ms of cold start.
ETC_ENTRIES = (
    "resolv.conf", "hosts", "nsswitch.conf", "ssl", "ca-certificates", "pki", "localtime",
    "ld.so.cache", "alternatives", "services",
)
#: Kernel details AWS's environments do not expose (the host's boot command line, symbols, key and timer
#: tables, kernel config, physical memory layout): each reads as empty inside (an existing one only).
PROC_MASKS = tuple(
    path for path in (
        "/proc/cmdline", "/proc/kallsyms", "/proc/modules", "/proc/keys", "/proc/key-users", "/proc/timer_list",
        "/proc/sched_debug", "/proc/config.gz", "/proc/kcore", "/proc/iomem", "/proc/ioports", "/proc/vmallocinfo",
        "/proc/kpageflags", "/proc/kpagecount", "/proc/sysrq-trigger",
    ) if os.path.exists(path)
)
#: The user name AWS gives the runtime's uid.
SANDBOX_USER = "sbx_user1051"


@dataclass(frozen=True)
class TmpMount:
    """How /tmp is provided: a host directory to bind (pre-mounted, sized tmpfs), or a
    tmpfs bwrap mounts itself, sized when `size_bytes` is set."""

    bind_source: Path | None = None
    size_bytes: int | None = None

    def args(self) -> list[str]:
        if self.bind_source is not None:
            return ["--bind", str(self.bind_source), "/tmp"]
        size = ["--size", str(self.size_bytes)] if self.size_bytes is not None else []
        return ["--perms", "1777", *size, "--tmpfs", "/tmp"]


@dataclass(frozen=True)
class FilesystemView:
    """Everything bwrap mounts, in the order it must mount it."""

    code_dir: Path
    runtime_dir: Path
    opt_dir: Path | None
    tmp: TmpMount
    #: (readable fd, sandbox path): small generated files (passwd, group) that bwrap copies
    #: into the sandbox's root tmpfs; cheaper than a bind mount. The fds go in pass_fds.
    files: tuple[tuple[int, str], ...] = ()
    ro_binds: tuple[tuple[str, str], ...] = ()
    masks: tuple[str, ...] = ()


def identity_files(uid: int, gid: int) -> tuple[str, str]:
    """/etc/passwd and /etc/group naming the runtime's uid like AWS does."""
    passwd = ["root:x:0:0:root:/root:/sbin/nologin"]
    group = ["root:x:0:"]
    if uid != 0:
        passwd.append(f"{SANDBOX_USER}:x:{uid}:{gid}::/home/{SANDBOX_USER}:/sbin/nologin")
        group.append(f"{SANDBOX_USER}:x:{gid}:")
    passwd.append("nobody:x:65534:65534:nobody:/nonexistent:/sbin/nologin")
    group.append("nogroup:x:65534:")
    return "\n".join(passwd) + "\n", "\n".join(group) + "\n"


def system_args() -> list[str]:
    """/usr read-only, and /bin, /lib... as the host has them (merged-/usr symlinks or directories)."""
    args: list[str] = []
    for path in SYSTEM_DIRS:
        if os.path.islink(path):
            args += ["--symlink", os.readlink(path), path]
        elif os.path.isdir(path):
            args += ["--ro-bind", path, path]
    return args


def build_options(view: FilesystemView) -> list[str]:
    """bwrap's options for `view`, to be handed over with `--args FD` (see command_line)."""
    args = [*NAMESPACE_ARGS, *system_args()]
    made: set[str] = set()

    def place(*op: str) -> None:
        """Add a mount/file/symlink op, first making its missing parents with `--dir`:
        bwrap makes the parents of binds mode 0700, which the runtime's uid
        could not traverse (e.g. /var of /var/task, /root of an interpreter prefix)."""
        destination = op[-1]
        for parent in reversed(Path(destination).parents[:-1]):
            if str(parent) not in made:
                args.extend(["--dir", str(parent)])
                made.add(str(parent))
        made.add(destination)
        args.extend(op)

    for entry in ETC_ENTRIES:
        place("--ro-bind-try", f"/etc/{entry}", f"/etc/{entry}")
    for fd, path in view.files:
        place("--perms", "0644", "--file", str(fd), path)
    args += ["--proc", "/proc", "--dev", "/dev", *view.tmp.args()]
    for path in PROC_MASKS:
        # A device bind: /proc is nodev, so a plain bind of /dev/null would be unreadable rather than empty.
        args += ["--dev-bind", "/dev/null", path]
    place("--ro-bind", str(view.code_dir), "/var/task")
    place("--ro-bind", str(view.runtime_dir), "/var/runtime")
    if view.opt_dir is not None:
        place("--ro-bind", str(view.opt_dir), "/opt")
    else:
        place("--dir", "/opt")
    for source, target in view.ro_binds:
        place("--ro-bind", source, target)
    for mask in view.masks:
        args += ["--tmpfs", mask, "--remount-ro", mask]
    # Last, so the directories and files bwrap created above are in place before / turns read-only.
    return [*args, "--remount-ro", "/", "--chdir", "/var/task"]


def encode_options(options: list[str]) -> bytes:
    """The NUL-separated form `--args FD` reads."""
    return b"".join(os.fsencode(option) + b"\0" for option in options)


def command_line(bwrap_path: str, options_fd: int, command: list[str]) -> list[str]:
    """Options go through an fd so that the sandbox's pid 1 (bwrap, whose /proc/1/cmdline any
    sandboxed process can read) does not show host paths such as the code directory."""
    return [bwrap_path, "--args", str(options_fd), "--", *command]
