"""Storage runs out: the code storage quota on extracted code (zip bombs), and a really full disk."""
from __future__ import annotations

import errno
import io
import json
import os
import shutil
import subprocess
import uuid
import zipfile
from pathlib import Path
from typing import Iterator

import pytest
from botocore.exceptions import ClientError

from conftest import PY_RUNTIME, ROLE, client_for, invoke_json, start_server, zip_files
from test_bad_input import raw
from tests.support.client_errors import error_of
from tests.support.polling import wait_until

ECHO = {"app.py": "def handler(event, context):\n    return event\n"}
FAILING = {"app.py": "def handler(event, context):\n    raise RuntimeError('retry me later')\n"}
STORAGE_EXCEEDED = (400, "CodeStorageExceededException", "Code storage limit exceeded.")
MB = 1 << 20


def bomb(member: str, size: int) -> bytes:
    """A zip of a few hundred bytes that extracts to `size` bytes (bzip2 reaches 100000:1 on zeros), plus a handler."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_BZIP2) as archive:
        archive.writestr("app.py", ECHO["app.py"])
        archive.writestr(member, bytes(size))
    return buffer.getvalue()


def create(client, name: str, package: bytes) -> dict:
    return client.create_function(FunctionName=name, Runtime=PY_RUNTIME, Role=ROLE, Handler="app.handler",
                                  Code={"ZipFile": package})


def test_code_storage_limit_bounds_extracted_code_and_counts_shared_trees_once(tmp_path: Path):
    data_dir = tmp_path / "data"
    server = start_server(data_dir, "--code-storage-limit", "40M")
    try:
        client = client_for(server.endpoint)
        first, second, third = bomb("a.bin", 15 * MB), bomb("b.bin", 15 * MB), bomb("c.bin", 15 * MB)
        assert len(first) < 1000
        sizes = [create(client, name, package)["CodeSize"]
                 for name, package in (("f1", first), ("f2", first), ("f3", second))]  # f1 and f2 share a tree
        with pytest.raises(ClientError) as caught:
            create(client, "f4", third)
        assert error_of(caught) == STORAGE_EXCEEDED
        assert {f["FunctionName"] for f in client.list_functions()["Functions"]} == {"f1", "f2", "f3"}
        assert len(list((data_dir / "code/trees").iterdir())) == 2  # nothing half-written
        assert sorted(path.suffix for path in (data_dir / "code/blobs").iterdir()) == [".zip", ".zip"]
        status, _, usage = raw(server, "GET", "/lamina/code-storage")
        assert status == 200
        assert usage == {"ExtractedCodeSize": 2 * (15 * MB + len(ECHO["app.py"])), "CodeStorageLimit": 40 * MB,
                         "Trees": 2}
        # AccountUsage keeps AWS's meaning: the zipped packages, per function.
        assert client.get_account_settings()["AccountUsage"]["TotalCodeSize"] == sum(sizes)

        with pytest.raises(ClientError) as caught:
            client.update_function_code(FunctionName="f1", ZipFile=third)
        assert error_of(caught) == STORAGE_EXCEEDED
        with pytest.raises(ClientError) as caught:
            client.publish_layer_version(LayerName="bomb", Content={"ZipFile": third})
        assert error_of(caught) == STORAGE_EXCEEDED

        client.delete_function(FunctionName="f3")  # frees its share of the quota at once
        create(client, "f4", third)
        assert invoke_json(client, "f4", {"ok": True}) == {"ok": True}
    finally:
        server.stop()


@pytest.fixture
def small_disk(tmp_path: Path) -> Iterator[Path]:
    """A 64 MB tmpfs, to run a data directory out of space for real."""
    if os.geteuid() != 0 or shutil.which("mount") is None:
        pytest.skip("needs root to mount a tmpfs")
    disk = tmp_path / "disk"
    disk.mkdir()
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=64m", "tmpfs", str(disk)], check=True)
    try:
        yield disk
    finally:
        subprocess.run(["umount", "--lazy", str(disk)], check=False)


def fill(disk: Path) -> Path:
    """Take every free byte of `disk` with one file."""
    filler = disk / "filler"
    fd = os.open(filler, os.O_WRONLY | os.O_CREAT, 0o600)
    try:
        chunk = MB
        while chunk >= 512:
            try:
                os.write(fd, bytes(chunk))
            except OSError as error:
                assert error.errno == errno.ENOSPC
                chunk //= 2
    finally:
        os.close(fd)
    info = os.statvfs(disk)
    assert info.f_bavail == 0
    return filler


def queue_depth(server) -> tuple[int, int]:
    status, _, body = raw(server, "GET", "/lamina/async-queue")
    assert status == 200
    entries = [entry for entry in body["Queues"] if entry["FunctionName"] == "failing"]
    return (entries[0]["Depth"], entries[0]["Retrying"]) if entries else (0, 0)


def storage_exhausted(caught: pytest.ExceptionInfo[ClientError]) -> None:
    status, code, message = error_of(caught)
    assert (status, code) == (500, "ServiceException")
    assert message.startswith("Lamina's storage is exhausted: the file system holding its data directory is full")


def test_a_full_disk_refuses_writes_plainly_deletes_still_work_and_recovery_needs_no_restart(small_disk: Path):
    data_dir = small_disk  # the server's log goes next to it, off the full disk
    options = ("--async-retry-base-seconds", "3600")  # failed events wait in the queue for their retry
    server = start_server(data_dir, *options)
    try:
        client = client_for(server.endpoint)
        kept_arn = create(client, "kept", zip_files(ECHO))["FunctionArn"]
        client.tag_resource(Resource=kept_arn, Tags={"before": "full"})
        create(client, "victim", zip_files({"app.py": "# victim\n" + ECHO["app.py"]}))
        create(client, "failing", zip_files(FAILING))
        client.publish_layer_version(LayerName="doomed", Content={"ZipFile": zip_files({"python/doomed.py": "X = 1\n"})})
        for number in range(3):
            client.invoke(FunctionName="failing", InvocationType="Event", Payload=json.dumps({"n": number}))
        wait_until(lambda: queue_depth(server) == (3, 3), timeout=30)

        filler = fill(small_disk)
        with pytest.raises(ClientError) as caught:
            create(client, "new", zip_files({"app.py": "def handler(event, context):\n    return 'new'\n"}))
        assert error_of(caught) == STORAGE_EXCEEDED
        with pytest.raises(ClientError) as caught:
            client.update_function_code(FunctionName="kept", ZipFile=zip_files({"app.py": "# v2\n" + ECHO["app.py"]}))
        assert error_of(caught) == STORAGE_EXCEEDED
        writes = [
            lambda: client.tag_resource(Resource=kept_arn, Tags={"during": "full"}),
            lambda: client.publish_version(FunctionName="kept"),
            lambda: client.update_function_configuration(FunctionName="kept", Description="during"),
            lambda: client.invoke(FunctionName="kept", InvocationType="Event", Payload=b"{}"),
        ]
        for write in writes:
            with pytest.raises(ClientError) as caught:
                write()
            storage_exhausted(caught)
        assert [path.suffix for path in (data_dir / "code/blobs").iterdir()] == [".zip"] * 4  # no partial blob
        assert len(list((data_dir / "code/trees").iterdir())) == 4
        client.delete_layer_version(LayerName="doomed", VersionNumber=1)  # deletes work on a full disk
        with pytest.raises(ClientError):
            client.get_layer_version(LayerName="doomed", VersionNumber=1)
        client.delete_function(FunctionName="victim")
        with pytest.raises(ClientError):
            client.get_function(FunctionName="victim")

        filler.unlink()  # space comes back: the same writes go through, without a restart
        create(client, "new", zip_files({"app.py": "def handler(event, context):\n    return 'new'\n"}))
        client.update_function_code(FunctionName="kept", ZipFile=zip_files({"app.py": "# v2\n" + ECHO["app.py"]}))
        client.get_waiter("function_updated_v2").wait(FunctionName="kept", WaiterConfig={"Delay": 1})
        client.tag_resource(Resource=kept_arn, Tags={"after": "full"})
        assert client.publish_version(FunctionName="kept")["Version"] == "1"
        client.invoke(FunctionName="failing", InvocationType="Event", Payload=b'{"n": 3}')
        wait_until(lambda: queue_depth(server) == (4, 4), timeout=30)
        assert invoke_json(client, "new") == "new"
        assert invoke_json(client, "kept", {"echo": 1}) == {"echo": 1}
        wait_until(lambda: (data_dir / "storage-reserve").exists(), timeout=15)  # taken again for the next time
    finally:
        server.stop()
    log = server.stderr_path.read_text()
    assert "Traceback" not in log and "storage exhausted" in log

    server = start_server(data_dir, *options)  # nothing acknowledged was lost
    try:
        client = client_for(server.endpoint)
        assert {f["FunctionName"] for f in client.list_functions()["Functions"]} == {"failing", "kept", "new"}
        assert client.list_tags(Resource=kept_arn)["Tags"] == {"before": "full", "after": "full"}
        assert [v["Version"] for v in client.list_versions_by_function(FunctionName="kept")["Versions"]] == [
            "$LATEST", "1"]
        assert queue_depth(server) == (4, 4)
    finally:
        server.stop()
