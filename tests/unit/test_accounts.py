"""The account in every state key: two accounts' functions of one name and region are independent, and a data
directory written before rows carried their account (the old schema, made here by hand) is read under the configured
account, its logs included."""
from __future__ import annotations

import asyncio
import base64
import io
import json
import sqlite3
import zipfile
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from lamina.asyncinvoke.queue_store import EventQueueStore, read_stats
from lamina.control.concurrency import ConcurrencySettings
from lamina.control.event_invoke import EventInvokeConfigService
from lamina.control.functions import FunctionService
from lamina.control.layers import LayerService
from lamina.control.code_sources import CodeSources
from lamina.control.permissions import PermissionService
from lamina.control.policy_targets import FunctionPolicyTargets
from lamina.control.tags import TagService
from lamina.errors import ResourceNotFoundException
from lamina.invoke.concurrency import ConcurrencyLimits
from lamina.invoke.provisioned import ProvisionedCapacity
from lamina.invoke.service import function_log_key, move_legacy_logs
from lamina.logs.store import LogStore
from lamina.model.arns import FunctionRef, LayerRef, parse_function_name
from lamina.model.keys import FunctionKey, Scope
from lamina.store.attachments import SqliteAttachmentStore
from lamina.store.blobs import CodeStore
from lamina.store.concurrency import SqliteConcurrencyStore
from lamina.store.database import Database, LegacySchema
from lamina.store.event_invoke_configs import SqliteEventInvokeConfigStore
from lamina.store.functions import SqliteFunctionStore
from lamina.store.layers import SqliteLayerStore
from lamina.store.versions import SqliteVersionStore
from tests.support.records import latest

REGION = "us-east-1"
ALICE, BOB = Scope("111111111111", REGION), Scope("222222222222", REGION)
CONFIGURED = "000000000000"  # the server's --account-id when the old data directory was written


class _Catalog:
    """Every runtime is available (the runtime catalog needs a host; these tests need none)."""

    def check(self, runtime: str) -> None:
        pass


def _zip() -> str:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("app.py", "def handler(event, context):\n    return event\n")
    return base64.b64encode(buffer.getvalue()).decode()


def _create_body(description: str) -> dict:
    return {
        "FunctionName": "f", "Role": "arn:aws:iam::000000000000:role/r", "Runtime": "python3.12",
        "Handler": "app.handler", "Code": {"ZipFile": _zip()}, "Description": description,
    }


def _functions(database: Database, tmp_path: Path) -> FunctionService:
    service = FunctionService(
        SqliteFunctionStore(database), CodeStore(tmp_path / "code"), _Catalog(),  # type: ignore[arg-type]
        lambda function, version: None, version_store=SqliteVersionStore(database),
        sources=CodeSources(None, REGION), transaction=database.transaction,
    )
    service.load()
    return service


# -- two accounts, one name ------------------------------------------------------------------------------------------
def test_two_accounts_functions_of_one_name_and_region_are_independent(tmp_path: Path):
    database = Database(tmp_path / "lamina.db")
    functions = _functions(database, tmp_path)
    tags = TagService(SqliteAttachmentStore(database), functions)
    functions.on_delete(tags.forget)
    ref = parse_function_name("f")
    for scope in (ALICE, BOB):
        functions.create(scope, ref, _create_body(f"of {scope.account}"))
        tags.attach_initial(scope.function("f"), {"owner": scope.account})
        functions.aliases.create(scope.function("f"), {"Name": "live", "FunctionVersion": "$LATEST"})

    alice, bob = functions.resolve(ALICE, ref, None), functions.resolve(BOB, ref, None)
    assert (alice.description, alice.arn) == ("of 111111111111", "arn:aws:lambda:us-east-1:111111111111:function:f")
    assert (bob.description, bob.arn) == ("of 222222222222", "arn:aws:lambda:us-east-1:222222222222:function:f")
    assert [c.name for c in functions.list_latest(ALICE)] == ["f"] and functions.usage(BOB)[0] == 1
    assert functions.aliases.require(BOB.function("f"), "live").arn.endswith(":222222222222:function:f:live")
    assert tags.list(ALICE, alice.arn) == {"owner": "111111111111"}
    # An ARN of the other account is not the caller's function, whatever it names.
    with pytest.raises(ResourceNotFoundException, match="^Function not found: " + bob.arn + "$"):
        tags.list(ALICE, bob.arn)
    with pytest.raises(ResourceNotFoundException, match="^Function not found: " + bob.arn + "$"):
        functions.resolve(ALICE, parse_function_name(bob.arn), None)

    tags.tag(BOB, bob.arn, {"team": "b"})
    assert tags.tags_of(ALICE.function("f")) == {"owner": "111111111111"}
    functions.delete(ALICE, ref, None)
    with pytest.raises(ResourceNotFoundException, match="^Function not found: " + alice.arn + "$"):
        functions.resolve(ALICE, ref, None)
    assert functions.aliases.get(ALICE.function("f"), "live") is None
    assert tags.tags_of(ALICE.function("f")) == {}
    assert functions.resolve(BOB, ref, "live").description == "of 222222222222"
    assert tags.tags_of(BOB.function("f")) == {"owner": "222222222222", "team": "b"}

    # What is stored says the same after a restart.
    reloaded = _functions(database, tmp_path)
    assert not reloaded.exists(ALICE.function("f")) and reloaded.exists(BOB.function("f"))
    assert reloaded.aliases.get(BOB.function("f"), "live") is not None
    database.close()


def test_layers_of_two_accounts_number_their_versions_apart(tmp_path: Path):
    service = LayerService(SqliteLayerStore(tmp_path / "lamina.db"), CodeStore(tmp_path / "code"), CodeSources(None, REGION))
    content = {"Content": {"ZipFile": _zip()}}
    assert service.publish(ALICE, LayerRef("lib"), content).arn == "arn:aws:lambda:us-east-1:111111111111:layer:lib:1"
    assert service.publish(ALICE, LayerRef("lib"), content).version == 2
    bob = service.publish(BOB, LayerRef("lib"), content)
    assert (bob.version, bob.account) == (1, "222222222222")
    assert [layer.version for layer in service.list_versions(BOB, LayerRef("lib"), None, None, None, 50).items] == [1]
    with pytest.raises(ResourceNotFoundException):  # Alice's ARN of version 2, asked by Bob
        service.get_by_arn(BOB, "arn:aws:lambda:us-east-1:111111111111:layer:lib:2")
    assert service.resolve_for_function(BOB, [bob.arn])[0]["arn"] == bob.arn


# -- a data directory of the old schema ------------------------------------------------------------------------------
# The tables as Lamina created them before every key carried the account, and one row each, as it wrote them.
_OLD_SCHEMA = """
CREATE TABLE functions (region TEXT NOT NULL, name TEXT NOT NULL, version TEXT NOT NULL, code TEXT NOT NULL,
    record TEXT NOT NULL, PRIMARY KEY (region, name, version));
CREATE TABLE function_publish_marks (region TEXT NOT NULL, name TEXT NOT NULL, number INTEGER NOT NULL,
    fingerprint TEXT NOT NULL, PRIMARY KEY (region, name));
CREATE TABLE function_aliases (region TEXT NOT NULL, name TEXT NOT NULL, alias TEXT NOT NULL, record TEXT NOT NULL,
    PRIMARY KEY (region, name, alias));
CREATE TABLE function_tags (region TEXT NOT NULL, name TEXT NOT NULL, tags TEXT NOT NULL, PRIMARY KEY (region, name));
CREATE TABLE function_policies (region TEXT NOT NULL, name TEXT NOT NULL, qualifier TEXT NOT NULL,
    revision_id TEXT NOT NULL, statements TEXT NOT NULL, PRIMARY KEY (region, name, qualifier));
CREATE TABLE function_concurrency (region TEXT NOT NULL, name TEXT NOT NULL, reserved INTEGER NOT NULL,
    PRIMARY KEY (region, name));
CREATE TABLE provisioned_concurrency (region TEXT NOT NULL, name TEXT NOT NULL, qualifier TEXT NOT NULL,
    requested INTEGER NOT NULL, last_modified TEXT NOT NULL, PRIMARY KEY (region, name, qualifier));
CREATE TABLE event_invoke_configs (region TEXT NOT NULL, name TEXT NOT NULL, qualifier TEXT NOT NULL,
    record TEXT NOT NULL, PRIMARY KEY (region, name, qualifier));
CREATE TABLE layers (region TEXT NOT NULL, name TEXT NOT NULL, last_version INTEGER NOT NULL,
    PRIMARY KEY (region, name));
CREATE TABLE layer_versions (region TEXT NOT NULL, name TEXT NOT NULL, version INTEGER NOT NULL, code TEXT NOT NULL,
    record TEXT NOT NULL, PRIMARY KEY (region, name, version));
"""
_OLD_QUEUE = """
CREATE TABLE events (id INTEGER PRIMARY KEY, region TEXT NOT NULL, name TEXT NOT NULL, qualifier TEXT,
    request_id TEXT NOT NULL, payload BLOB NOT NULL, enqueued_at REAL NOT NULL, attempts INTEGER NOT NULL DEFAULT 0,
    not_before REAL NOT NULL DEFAULT 0, last_version TEXT, last_error TEXT, last_payload BLOB);
"""


def _write_old_data_directory(data_dir: Path) -> None:
    function = latest(account=CONFIGURED)
    version = latest(account=CONFIGURED, version="1", revision_id="r1")
    alias = {"region": REGION, "account": CONFIGURED, "function_name": "f", "name": "live", "function_version": "1",
             "description": "", "additional_weights": {}, "revision_id": "ra"}
    settings = {"region": REGION, "name": "f", "qualifier": "$LATEST", "maximum_retry_attempts": 1,
                "maximum_event_age_seconds": None, "on_success": None, "on_failure": None, "last_modified": 1.5}
    layer = {"region": REGION, "account": CONFIGURED, "name": "lib", "version": 3, "code_sha256_hex": "cd" * 32,
             "code_sha256_b64": "x", "code_size": 1, "unzipped_size": 1, "created_date": "2024-01-01T00:00:00.000+0000",
             "description": "", "license_info": None, "compatible_runtimes": None, "compatible_architectures": None,
             "policy": [], "policy_revision_id": None}
    db = sqlite3.connect(data_dir / "lamina.db")
    db.executescript(_OLD_SCHEMA)
    for config in (function, version):
        db.execute("INSERT INTO functions VALUES (?, ?, ?, ?, ?)",
                   (REGION, "f", config.version, config.code_sha256_hex, json.dumps(config.to_record())))
    db.execute("INSERT INTO function_publish_marks VALUES (?, ?, ?, ?)", (REGION, "f", 1, "fingerprint"))
    db.execute("INSERT INTO function_aliases VALUES (?, ?, ?, ?)", (REGION, "f", "live", json.dumps(alias)))
    db.execute("INSERT INTO function_tags VALUES (?, ?, ?)", (REGION, "f", json.dumps({"team": "a"})))
    db.execute("INSERT INTO function_policies VALUES (?, ?, ?, ?, ?)",
               (REGION, "f", "", "rp", json.dumps([{"Sid": "s1", "Effect": "Allow"}])))
    db.execute("INSERT INTO function_concurrency VALUES (?, ?, ?)", (REGION, "f", 5))
    db.execute("INSERT INTO provisioned_concurrency VALUES (?, ?, ?, ?, ?)", (REGION, "f", "1", 2, "then"))
    db.execute("INSERT INTO event_invoke_configs VALUES (?, ?, ?, ?)", (REGION, "f", "$LATEST", json.dumps(settings)))
    db.execute("INSERT INTO layers VALUES (?, ?, ?)", (REGION, "lib", 3))
    db.execute("INSERT INTO layer_versions VALUES (?, ?, ?, ?, ?)", (REGION, "lib", 3, "cd" * 32, json.dumps(layer)))
    db.commit()
    db.close()
    queue = sqlite3.connect(data_dir / "queue.db")
    queue.executescript(_OLD_QUEUE)
    queue.execute("INSERT INTO events (id, region, name, qualifier, request_id, payload, enqueued_at, attempts) "
                  "VALUES (7, ?, 'f', NULL, 'queued-before', ?, 12.5, 1)", (REGION, b'{"k": 1}'))
    queue.commit()
    queue.close()


def test_a_data_directory_of_the_old_schema_is_read_under_the_configured_account(tmp_path: Path):
    _write_old_data_directory(tmp_path)
    scope = Scope(CONFIGURED, REGION)
    key = scope.function("f")
    with pytest.raises(LegacySchema, match="table functions was written before rows carried their account"):
        SqliteFunctionStore(Database(tmp_path / "lamina.db"))  # no account to give the rows: nothing is guessed

    database = Database(tmp_path / "lamina.db", legacy_account=CONFIGURED)
    functions = _functions(database, tmp_path)
    assert functions.resolve(scope, FunctionRef("f"), None).arn == f"arn:aws:lambda:us-east-1:{CONFIGURED}:function:f"
    assert functions.resolve(scope, FunctionRef("f"), "live").version == "1"
    assert not functions.exists(Scope("111111111111", REGION).function("f"))
    attachments = SqliteAttachmentStore(database)
    tags = TagService(attachments, functions)
    tags.load()
    assert tags.tags_of(key) == {"team": "a"}
    permissions = PermissionService(attachments, FunctionPolicyTargets(functions))
    permissions.load()
    assert json.loads(permissions.get(scope, "f", None)["Policy"])["Statement"] == [{"Sid": "s1", "Effect": "Allow"}]
    concurrency_store = SqliteConcurrencyStore(database)
    limits = ConcurrencyLimits(1000)
    ConcurrencySettings(concurrency_store, functions, limits, ProvisionedCapacity(None), ThreadPoolExecutor(1)).load()  # type: ignore[arg-type]
    assert limits.reserved(key) == 5 and limits.provisioned_total(key) == 2
    [provisioned] = concurrency_store.provisioned()
    assert (provisioned.key, provisioned.qualifier, provisioned.requested) == (key, "1", 2)
    settings = EventInvokeConfigService(SqliteEventInvokeConfigStore(database), functions)
    settings.load()
    assert settings.settings(key, None).retry_attempts == 1
    assert settings.settings(key, None).to_aws()["FunctionArn"] == key.arn("$LATEST")
    layers = LayerService(SqliteLayerStore(database), CodeStore(tmp_path / "code"), CodeSources(None, REGION))
    assert layers.get(scope, LayerRef("lib"), 3).arn == f"arn:aws:lambda:us-east-1:{CONFIGURED}:layer:lib:3"
    assert layers.publish(scope, LayerRef("lib"), {"Content": {"ZipFile": _zip()}}).version == 4  # the counter too
    assert functions.publish(scope, FunctionRef("f"), {}).version == "2"  # and the publish mark
    with database.reading() as db:
        primary_key = [row[1] for row in db.execute("PRAGMA table_info(functions)") if row[5]]
    assert primary_key == ["account", "region", "name", "version"]
    database.close()

    queue = EventQueueStore(tmp_path / "queue.db", legacy_account=CONFIGURED)
    assert queue.last_id == 7
    [stats] = read_stats(tmp_path / "queue.db")
    assert (stats.account, stats.name, stats.depth, stats.retrying) == (CONFIGURED, "f", 1, 1)

    async def read_back() -> list:
        queue.start(asyncio.get_running_loop())
        events = await queue.read_after(0, 10)
        queue.close()
        return events

    [event] = asyncio.run(read_back())
    assert (event.key, event.request_id, event.payload, event.attempts) == (key, "queued-before", b'{"k": 1}', 1)

    # Opening again changes nothing: the tables are in the new form now.
    again = Database(tmp_path / "lamina.db")
    assert SqliteFunctionStore(again).get(key, "$LATEST") is not None
    again.close()


def test_a_failed_rebuild_leaves_the_old_table_as_it_was(tmp_path: Path):
    _write_old_data_directory(tmp_path)
    database = Database(tmp_path / "lamina.db", legacy_account=CONFIGURED)
    with database.reading() as db:
        db.execute("CREATE TABLE function_tags__with_account (x)")  # in the way of the rebuild's new table
    with pytest.raises(sqlite3.OperationalError):
        SqliteAttachmentStore(database)
    with database.reading() as db:
        assert [row[1] for row in db.execute("PRAGMA table_info(function_tags)")] == ["region", "name", "tags"]
        assert [row[1] for row in db.execute("PRAGMA table_info(function_policies)")][0] == "region"
        db.execute("DROP TABLE function_tags__with_account")
    assert SqliteAttachmentStore(database).all_tags() == {FunctionKey(CONFIGURED, REGION, "f"): {"team": "a"}}
    database.close()


# -- logs ------------------------------------------------------------------------------------------------------------
def test_logs_filed_without_the_account_move_to_the_configured_accounts_key_once(tmp_path: Path):
    root = tmp_path / "logs"
    old = LogStore(root)
    old.append("us-east-1/my-func", "2024/05/01/[$LATEST]aaaa", b"before the upgrade\n")
    old.append("us-east-1/other", "2024/05/01/[$LATEST]bbbb", b"another function\n")
    old.close()
    key = FunctionKey(CONFIGURED, REGION, "my-func")
    assert function_log_key(key) == f"{CONFIGURED}/us-east-1/my-func"

    store = LogStore(root)
    store.append(function_log_key(FunctionKey("111111111111", REGION, "my-func")), "s", b"already keyed\n")
    store.flush()
    assert move_legacy_logs(store, CONFIGURED) == 2
    assert [event.message for event in store.read(function_log_key(key))] == ["before the upgrade"]
    assert [event.message for event in store.read(f"{CONFIGURED}/us-east-1/other")] == ["another function"]
    assert list(store.read("us-east-1/my-func")) == []
    assert [e.message for e in store.read("111111111111/us-east-1/my-func")] == ["already keyed"]  # left alone
    assert move_legacy_logs(store, CONFIGURED) == 0
    store.append(function_log_key(key), "2024/05/02/[$LATEST]cccc", b"after\n")
    assert [event.message for event in store.read(function_log_key(key))] == ["before the upgrade", "after"]
    store.close()


def test_moved_logs_join_a_directory_the_new_key_has_already(tmp_path: Path):
    root = tmp_path / "logs"
    store = LogStore(root)
    store.append("us-east-1/f", "old-stream", b"old\n")
    store.append(f"{CONFIGURED}/us-east-1/f", "new-stream", b"new\n")
    store.flush()
    assert move_legacy_logs(store, CONFIGURED) == 1
    assert sorted(event.message for event in store.read(f"{CONFIGURED}/us-east-1/f")) == ["new", "old"]
    assert not (root / "us-east-1%2Ff").exists()
    store.close()
