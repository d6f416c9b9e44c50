"""One shared connection per database file and its transaction(): a failure rolls back every store's writes."""
from __future__ import annotations

import threading

import pytest

from lamina.control.versions import VersionService
from lamina.model.keys import FunctionKey
from lamina.store.attachments import SqliteAttachmentStore
from lamina.store.base import StoreConflict
from lamina.store.database import Database
from lamina.store.functions import SqliteFunctionStore
from lamina.store.versions import PublishMark, SqliteVersionStore
from tests.support.records import latest

F = FunctionKey("000000000000", "us-east-1", "f")


@pytest.fixture
def database(tmp_path):
    database = Database(tmp_path / "lamina.db")
    yield database
    database.close()


def test_a_failure_rolls_back_every_store_written_in_the_transaction(database):
    functions, attachments = SqliteFunctionStore(database), SqliteAttachmentStore(database)
    with pytest.raises(RuntimeError):
        with database.transaction():
            functions.create(latest())
            attachments.put_tags(F, {"a": "1"})
            raise RuntimeError("boom")
    assert functions.get(F, "$LATEST") is None
    assert attachments.all_tags() == {}
    with database.transaction():
        functions.create(latest())
        attachments.put_tags(F, {"a": "1"})
    assert functions.get(F, "$LATEST") is not None
    assert attachments.all_tags() == {F: {"a": "1"}}


def test_a_store_error_inside_rolls_back_the_earlier_writes_too(database):
    functions = SqliteFunctionStore(database)
    functions.create(latest())
    with pytest.raises(StoreConflict):
        with database.transaction():
            functions.replace(latest(revision_id="r1"), "r0")
            functions.create(latest())  # exists: IntegrityError -> StoreConflict
    assert functions.get(F, "$LATEST").revision_id == "r0"


def test_another_thread_waits_for_the_transaction_and_sees_only_its_result(database):
    functions = SqliteFunctionStore(database)
    inside, seen = threading.Event(), []

    def reader() -> None:
        inside.wait()
        seen.append(functions.get(F, "$LATEST"))

    thread = threading.Thread(target=reader)
    thread.start()
    with database.transaction():
        functions.create(latest())
        inside.set()
        thread.join(0.2)
        assert thread.is_alive(), "the reader waits for the commit"
    thread.join()
    assert seen and seen[0] is not None


def test_a_publish_cut_short_leaves_nothing_behind(database):
    """$LATEST's new revision, the version row and the mark are one transaction: no half publish to repair."""
    functions, marks = SqliteFunctionStore(database), SqliteVersionStore(database)
    functions.create(latest())
    versions = VersionService(functions, marks, database.transaction)
    versions.load(functions.list_versions(None, None))

    def failing_put_mark(key: FunctionKey, mark: PublishMark) -> None:
        raise OSError("disk gone")

    marks.put_mark = failing_put_mark  # type: ignore[method-assign]
    with pytest.raises(OSError):
        versions.publish(latest(), None)
    assert [c.version for c in functions.list_versions(None, None)] == ["$LATEST"]
    assert functions.get(F, "$LATEST").revision_id == "r0"
    del marks.put_mark
    reloaded = VersionService(functions, marks, database.transaction)
    reloaded.load(functions.list_versions(None, None))
    new_latest, version = reloaded.publish(latest(), None)
    assert version.version == "1" and marks.marks()[F].number == 1
    assert new_latest is not None and functions.get(F, "$LATEST").revision_id == new_latest.revision_id


def test_deleting_a_function_drops_its_rows_and_mark_together(database):
    functions, marks = SqliteFunctionStore(database), SqliteVersionStore(database)
    functions.create(latest())
    versions = VersionService(functions, marks, database.transaction)
    versions.publish(latest(), None)
    versions.delete_function(F)
    assert functions.list_versions(None, None) == [] and marks.marks() == {}


def test_stores_given_a_path_open_and_close_their_own_database(tmp_path):
    store = SqliteAttachmentStore(tmp_path / "own.db")
    store.put_tags(F, {"a": "1"})
    store.close()
    assert SqliteAttachmentStore(tmp_path / "own.db").all_tags() == {F: {"a": "1"}}
