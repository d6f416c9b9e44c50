"""Host-level isolation parts: host slots, the data-directory lock, the firewall's rules, neutral views and
where interpreters appear inside a sandbox."""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from lamina.runtimes.registry import Interpreter, RuntimeCatalog
from lamina.sandbox.firewall import HostPort, ruleset
from lamina.sandbox.host_slot import FIRST_UID, UIDS_PER_SLOT, NoFreeSlot, claim_host_slot
from lamina.sandbox.views import NeutralViews
from lamina.store.data_dir_lock import DataDirInUse, DataDirLock


def test_slots_are_exclusive_until_released(tmp_path: Path) -> None:
    first = claim_host_slot(tmp_path)
    second = claim_host_slot(tmp_path)
    assert first.index != second.index
    assert abs(first.first_uid - second.first_uid) >= UIDS_PER_SLOT
    assert first.subnet_prefix != second.subnet_prefix
    assert not first.interface_prefix.startswith(second.interface_prefix)
    first.release()
    again = claim_host_slot(tmp_path)
    assert again.index == first.index and again.first_uid == FIRST_UID + first.index * UIDS_PER_SLOT
    second.release()
    again.release()


def test_a_slot_held_by_another_process_is_skipped_and_freed_when_it_dies(tmp_path: Path) -> None:
    holder = subprocess.Popen(
        [sys.executable, "-c", "import sys, time; from lamina.sandbox.host_slot import claim_host_slot; "
         f"s = claim_host_slot(__import__('pathlib').Path({str(tmp_path)!r})); print(s.index, flush=True); "
         "time.sleep(60)"], stdout=subprocess.PIPE, text=True)
    assert holder.stdout is not None
    held = int(holder.stdout.readline())
    mine = claim_host_slot(tmp_path)
    assert mine.index != held
    holder.kill()
    holder.wait()
    freed = claim_host_slot(tmp_path)
    assert freed.index == held
    mine.release()
    freed.release()


def test_every_slot_taken_is_a_clear_error(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("lamina.sandbox.host_slot.SLOT_COUNT", 2)
    held = [claim_host_slot(tmp_path), claim_host_slot(tmp_path)]
    with pytest.raises(NoFreeSlot, match="in use"):
        claim_host_slot(tmp_path)
    for slot in held:
        slot.release()


def test_data_dir_lock_names_the_holder(tmp_path: Path) -> None:
    with DataDirLock(tmp_path):
        with pytest.raises(DataDirInUse, match=f"pid {os.getpid()}"):
            DataDirLock(tmp_path).acquire()
    with DataDirLock(tmp_path):
        pass


@pytest.mark.parametrize("text, expected", [
    ("127.0.0.1:5432", HostPort("127.0.0.1", 5432)),
    ("localhost:6379", HostPort("127.0.0.1", 6379)),
    ("192.0.2.10:9092", HostPort("192.0.2.10", 9092)),
])
def test_host_port_parsing(text: str, expected: HostPort) -> None:
    assert HostPort.parse(text) == expected


@pytest.mark.parametrize("text", ["5432", "db:5432", "127.0.0.1:0", "127.0.0.1:65536", "127.0.0.1:x"])
def test_host_port_rejects(text: str) -> None:
    with pytest.raises(ValueError):
        HostPort.parse(text)


def test_ruleset_confines_the_slots_interfaces() -> None:
    rules = ruleset(3, "lmn3x", "100.67.0.0/16", (HostPort("127.0.0.1", 5432), HostPort("192.0.2.10", 9092)))
    assert "table inet lamina_3 {" in rules
    # Host services: refused but for the allowed non-loopback one (loopback ones are forwarded, not opened).
    assert 'iifname "lmn3x*" ip daddr 192.0.2.10 tcp dport 9092 accept' in rules
    assert "5432" not in rules
    assert rules.index("tcp dport 9092 accept") < rules.index('iifname "lmn3x*" reject')
    # No environment reaches another one, of any slot; nothing on the host opens connections to them.
    assert 'iifname "lmn3x*" oifname "lmn*" reject' in rules
    assert 'oifname "lmn3x*" drop' in rules
    assert "ip saddr 100.67.0.0/16 ip daddr != 100.64.0.0/10 masquerade" in rules


@pytest.mark.skipif(os.geteuid() != 0, reason="mounting needs root")
def test_neutral_view_hides_the_source_path(tmp_path: Path) -> None:
    source = tmp_path / "secret-location" / "code"
    source.mkdir(parents=True)
    (source / "app.py").write_text("x = 1\n")
    views = NeutralViews(tmp_path / "views", can_mount=True)
    with views.view(source) as first, views.view(source) as second:
        assert first == second != source
        assert (first / "app.py").read_text() == "x = 1\n"
        line = next(line for line in Path("/proc/self/mountinfo").read_text().splitlines() if str(first) in line)
        assert "secret-location" not in line and "/proc/self/fd/" in line
        with pytest.raises(OSError):
            (first / "new").write_text("read-only")
    assert not first.exists()
    pinned = views.pin(source)
    assert (pinned / "app.py").exists()
    views.close()
    assert not pinned.exists()


def test_interpreters_outside_usr_appear_at_var_lang() -> None:
    pyenv = Interpreter("3.9", "/root/.pyenv/versions/3.9.18/bin/python3.9", "/root/.pyenv/versions/3.9.18")
    system = Interpreter("3.11", "/usr/bin/python3.11", "/usr")
    catalog = RuntimeCatalog({"3.9": pyenv, "3.11": system}, None)
    launch = catalog.launch("python3.9", task_root="/var/task", opt_root="/opt", sandboxed=True)
    assert launch.argv[0] == "/var/lang/bin/python3.9"
    assert launch.ro_binds == [("/root/.pyenv/versions/3.9.18", "/var/lang")]
    assert all(not mask.startswith("/root") for mask in launch.masks)
    assert catalog.launch("python3.11", task_root="/var/task", opt_root="/opt", sandboxed=True).ro_binds == []
    assert catalog.interpreter_prefixes() == [Path("/root/.pyenv/versions/3.9.18")]
    unsandboxed = catalog.launch("python3.9", task_root="/t", opt_root="/o", sandboxed=False)
    assert unsandboxed.argv[0] == pyenv.executable and unsandboxed.ro_binds == []
