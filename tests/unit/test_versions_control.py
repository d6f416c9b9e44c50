"""Version numbering, publish idempotence, weighted routing and the alias request rules, without a server."""
from __future__ import annotations

import dataclasses
import random

import pytest

from lamina.services.lambda_.listing import page
from lamina.services.lambda_.versions import version_order
from lamina.model.alias import AliasConfig
from lamina.model.function import FunctionConfig
from lamina.control.routing import choose_version
from lamina.control.version_validation import check_alias_request, check_publish_request, check_routing
from lamina.control.versions import VersionService, content_fingerprint
from lamina.errors import InvalidParameterValueException, InvalidRequestContentException, ValidationException
from lamina.model.keys import FunctionKey
from lamina.store.versions import PublishMark
from tests.support.records import latest

F = FunctionKey("000000000000", "us-east-1", "f")


class MemoryFunctions:
    """The part of FunctionStore that VersionService writes."""

    def __init__(self) -> None:
        self.rows: dict[tuple[FunctionKey, str], FunctionConfig] = {}

    def create(self, config: FunctionConfig) -> None:
        self.rows[(config.key, config.version)] = config

    def replace(self, config: FunctionConfig, expected_revision: str) -> None:
        assert self.rows[(config.key, config.version)].revision_id == expected_revision
        self.rows[(config.key, config.version)] = config

    def delete_version(self, key: FunctionKey, version: str) -> bool:
        return self.rows.pop((key, version), None) is not None


class MemoryMarks:
    def __init__(self) -> None:
        self.stored: dict[FunctionKey, PublishMark] = {}

    def marks(self) -> dict[FunctionKey, PublishMark]:
        return dict(self.stored)

    def put_mark(self, key: FunctionKey, mark: PublishMark) -> None:
        self.stored[key] = mark

    def forget(self, key: FunctionKey) -> None:
        self.stored.pop(key, None)


@pytest.fixture
def service() -> tuple[VersionService, MemoryFunctions, MemoryMarks]:
    functions, marks = MemoryFunctions(), MemoryMarks()
    functions.create(latest())
    return VersionService(functions, marks), functions, marks  # type: ignore[arg-type]


def test_weighted_choice_over_10000_seeded_draws_lands_within_one_point() -> None:
    draw = random.Random(20240501).random
    picks = [choose_version("1", {"2": 0.1}, draw) for _ in range(10_000)]
    assert abs(picks.count("2") / 10_000 - 0.1) <= 0.01
    assert set(picks) == {"1", "2"}


def test_weighted_choice_extremes() -> None:
    draw = random.Random(7).random
    assert {choose_version("1", {"2": 0.0}, draw) for _ in range(1000)} == {"1"}
    assert {choose_version("1", {"2": 1.0}, draw) for _ in range(1000)} == {"2"}
    assert choose_version("3", {}, draw) == "3"


def test_publish_numbers_idempotence_and_no_reuse(service) -> None:
    versions, functions, marks = service
    current = functions.rows[(F, "$LATEST")]
    new_latest, first = versions.publish(current, "first")
    assert (first.version, first.description, first.state) == ("1", "first", "Active")
    assert new_latest is not None and new_latest.revision_id not in ("r0", first.revision_id)
    assert versions.publish(new_latest, "ignored") == (None, first)

    changed = dataclasses.replace(new_latest, timeout=9)
    functions.replace(changed, new_latest.revision_id)
    after_change, second = versions.publish(changed, None)
    assert (second.version, second.timeout, second.description) == ("2", 9, "")
    assert versions.remove(F, "2") and not versions.remove(F, "2")
    assert after_change is not None
    changed_again = dataclasses.replace(after_change, timeout=10)
    functions.replace(changed_again, after_change.revision_id)
    assert versions.publish(changed_again, None)[1].version == "3"
    assert [c.version for c in versions.of(F)] == ["1", "3"]
    assert marks.stored[F].number == 3


def test_load_takes_the_stored_mark_which_a_publish_writes_with_its_version() -> None:
    functions, marks = MemoryFunctions(), MemoryMarks()
    marks.put_mark(F, PublishMark(7, "x"))  # versions 6 and 7 were deleted: numbers are not reused
    rows = [latest(), latest(version="1"), latest(version="5")]
    versions = VersionService(functions, marks)  # type: ignore[arg-type]
    versions.load(rows)
    current = dataclasses.replace(latest(), timeout=30)
    functions.create(current)
    assert versions.publish(current, None)[1].version == "8"


def test_fingerprint_sees_code_and_configuration_not_revisions() -> None:
    base = latest()
    assert content_fingerprint(base) == content_fingerprint(
        dataclasses.replace(base, revision_id="other", last_modified="later", version="7")
    )
    assert content_fingerprint(base) != content_fingerprint(dataclasses.replace(base, description="new"))
    assert content_fingerprint(base) != content_fingerprint(dataclasses.replace(base, code_sha256_hex="cd" * 32))


def test_routing_rules_and_their_order() -> None:
    with pytest.raises(InvalidParameterValueException, match="cannot be greater than 1"):
        check_routing("1", {"1": 0.5, "2": 0.5})
    with pytest.raises(InvalidParameterValueException, match="Function version 1 is already included"):
        check_routing("1", {"1": 0.5})
    with pytest.raises(InvalidParameterValueException) as caught:
        check_routing("$LATEST", {"1": 0.5})
    assert "Type" not in caught.value.body()
    check_routing("$LATEST", {})


def test_alias_request_model_errors_are_reported_together() -> None:
    with pytest.raises(ValidationException) as caught:
        check_alias_request({"Name": "2024", "FunctionVersion": "latest", "Description": "d" * 257}, name=None, creating=True)
    message = caught.value.message
    assert message.startswith("3 validation errors detected: Value '2024' at 'name'")
    assert "Value 'latest' at 'functionVersion' failed to satisfy constraint: Member must satisfy regular expression " \
           "pattern: (\\$LATEST(\\.PUBLISHED)?|[0-9]+)" in message
    assert "at 'description' failed to satisfy constraint: Member must have length less than or equal to 256" in message
    with pytest.raises(ValidationException, match="Value null at 'functionVersion'"):
        check_alias_request({"Name": "live"}, name=None, creating=True)
    check_alias_request({}, name="live", creating=False)
    with pytest.raises(InvalidRequestContentException):
        check_alias_request({"RoutingConfig": {"AdditionalVersionWeights": {"2": "half"}}}, name="live", creating=False)
    with pytest.raises(ValidationException, match=r"Value '\{2=null\}'"):
        check_alias_request({"RoutingConfig": {"AdditionalVersionWeights": {"2": None}}}, name="live", creating=False)


def test_publish_request_checks_the_code_hash() -> None:
    check_publish_request({"CodeSha256": "abc"}, "abc")
    with pytest.raises(InvalidParameterValueException, match=r"CodeSHA256 \(x\) is different from current CodeSHA256"):
        check_publish_request({"CodeSha256": "x"}, "abc")


def test_paging_continues_after_a_deleted_marker() -> None:
    versions = ["$LATEST", "1", "2", "4", "5"]
    first, marker = page(versions, str, None, 2, version_order)
    assert (first, marker) == (["$LATEST", "1"], "1")
    assert page(versions, str, "3", 2, version_order) == (["4", "5"], None)
    assert page(versions, str, "2", 1, version_order) == (["4"], "4")


def test_alias_wire_form() -> None:
    alias = AliasConfig("us-east-1", "000000000000", "f", "live", "1", additional_weights={"2": 0.1}, revision_id="r")
    assert alias.to_aws() == {
        "AliasArn": "arn:aws:lambda:us-east-1:000000000000:function:f:live", "Name": "live", "FunctionVersion": "1",
        "Description": "", "RevisionId": "r", "RoutingConfig": {"AdditionalVersionWeights": {"2": 0.1}},
    }
    assert AliasConfig.from_record(alias.to_record()) == alias
    assert alias.versions == {"1", "2"}
