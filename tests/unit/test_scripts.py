"""scripts/install.sh installs only what is missing, and the README documents every option `lamina serve` takes.

install.sh runs on every scripts/run.sh and scripts/test.sh, so its no-change path must not reach pip or apt. Each
test runs a copy of it in a checkout of its own, with dpkg-query, apt-get and the venv's python replaced by
stand-ins that record how they were called, so nothing on the host is installed or touched.
"""
from __future__ import annotations

import hashlib
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]

#: Answers for the packages named in INSTALLED (space-separated), nothing for the rest, as dpkg-query does.
FAKE_DPKG_QUERY = """#!/bin/sh
printf 'dpkg-query %s\\n' "$*" >>"$CALLS"
for pkg; do
    case " $INSTALLED " in *" $pkg "*) printf 'install ok installed\\t%s\\n' "$pkg" ;; esac
done
"""
FAKE_TOOL = """#!/bin/sh
printf '%s %s\\n' "$(basename "$0")" "$*" >>"$CALLS"
"""


@pytest.fixture
def checkout(tmp_path: Path) -> Path:
    """A checkout with install.sh, a pyproject.toml and a venv whose python and lamina are stand-ins."""
    root = tmp_path / "checkout"
    (root / "scripts").mkdir(parents=True)
    shutil.copy(REPO / "scripts" / "install.sh", root / "scripts" / "install.sh")
    (root / "pyproject.toml").write_text('[project]\nname = "lamina"\n')
    tools = tmp_path / "tools"
    tools.mkdir()
    for path, text in [(tools / "dpkg-query", FAKE_DPKG_QUERY), (tools / "apt-get", FAKE_TOOL),
                       (root / ".venv" / "bin" / "python", FAKE_TOOL), (root / ".venv" / "bin" / "lamina", FAKE_TOOL)]:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
        path.chmod(0o755)
    return root


def install(checkout: Path, *args: str, installed: str = "") -> tuple[subprocess.CompletedProcess[str], list[str]]:
    calls = checkout.parent / "calls"
    calls.write_text("")
    env = {
        "PATH": f"{checkout.parent / 'tools'}:{os.environ['PATH']}",
        "CALLS": str(calls),
        "INSTALLED": installed,
        "HOME": str(checkout.parent),
    }
    done = subprocess.run(["bash", str(checkout / "scripts" / "install.sh"), *args], env=env, capture_output=True,
                          text=True, timeout=60, stdin=subprocess.DEVNULL)
    return done, calls.read_text().splitlines()


def stamp(checkout: Path, name: str = ".lamina-install-stamp") -> None:
    """Write the stamp install.sh leaves after a successful install of this checkout."""
    digest = hashlib.sha256((checkout / "pyproject.toml").read_bytes()).hexdigest()
    python = os.path.realpath(checkout / ".venv" / "bin" / "python")
    (checkout / ".venv" / name).write_text(f"{digest} {python} {checkout}\n")


ALL_PACKAGES = ("bubblewrap nftables python3 python3-venv ca-certificates "
                "iproute2 g++ make cmake autoconf automake libtool xz-utils unzip")


@pytest.mark.parametrize("args", [(), ("--test",)], ids=["run", "test"])
def test_nothing_changed_means_one_dpkg_query_and_no_install(checkout: Path, args: tuple[str, ...]) -> None:
    stamp(checkout)
    stamp(checkout, ".lamina-install-stamp-test")
    done, calls = install(checkout, *args, installed=ALL_PACKAGES)
    assert done.returncode == 0, done.stderr
    assert [call.split()[0] for call in calls] == ["dpkg-query"]


def test_a_changed_pyproject_reinstalls_and_a_test_install_also_serves_a_plain_one(checkout: Path) -> None:
    stamp(checkout)
    stamp(checkout, ".lamina-install-stamp-test")
    (checkout / "pyproject.toml").write_text('[project]\nname = "lamina"\nversion = "2"\n')
    done, calls = install(checkout, "--test", installed=ALL_PACKAGES)
    assert done.returncode == 0, done.stderr
    pip = [call for call in calls if call.startswith("python -m pip install")]
    assert len(pip) == 1 and pip[0].endswith(f"-e {checkout}[test]")
    for args in [("--test",), ()]:  # both stamps now match
        assert [call.split()[0] for call in install(checkout, *args, installed=ALL_PACKAGES)[1]] == ["dpkg-query"]


def test_a_plain_install_does_not_serve_the_tests(checkout: Path) -> None:
    stamp(checkout)
    done, calls = install(checkout, "--test", installed=ALL_PACKAGES)
    assert done.returncode == 0, done.stderr
    assert any(call.endswith(f"-e {checkout}[test]") for call in calls)


@pytest.mark.skipif(os.geteuid() != 0, reason="installs Debian packages only as root")
def test_only_missing_debian_packages_are_installed_and_the_run_needs_no_toolchain(checkout: Path) -> None:
    stamp(checkout)
    done, calls = install(checkout, installed="bubblewrap python3 python3-venv ca-certificates")
    assert done.returncode == 0, done.stderr
    assert [call for call in calls if call.startswith("apt-get")] == [
        "apt-get update -qq", "apt-get install -y -qq --no-install-recommends nftables"]


def test_readme_documents_every_serve_option() -> None:
    usage = subprocess.run([sys.executable, "-m", "lamina.cli", "serve", "--help"], capture_output=True, text=True,
                           check=True, cwd=REPO).stdout
    options = set(re.findall(r"\[(--[a-z][a-z0-9-]*)", usage))
    documented = re.findall(r"^\| `(--[a-z][a-z0-9-]*)` \|", (REPO / "README.md").read_text(), re.MULTILINE)
    assert len(options) > 10
    assert sorted(set(documented)) == sorted(options)
    assert len(documented) == len(set(documented))
