"""Resource-policy statements, tag rules, tag-resource ARNs and the attachment store, without a server."""
from __future__ import annotations

import json

import pytest

from lamina.model.arns import parse_taggable_arn
from lamina.control.permissions import PermissionService, build_statement, policy_json
from lamina.control.policy_targets import TargetMissing
from lamina.control.tags import check_tags
from lamina.errors import InvalidParameterValueException, ValidationException
from lamina.model.keys import FunctionKey, Scope
from lamina.store.attachments import SqliteAttachmentStore, StoredPolicy

FN = "arn:aws:lambda:us-east-1:000000000000:function:f"
ACCOUNT = "000000000000"
SCOPE = Scope(ACCOUNT, "us-east-1")


def statement(**fields: object) -> dict:
    body = {"StatementId": "sid", "Action": "lambda:InvokeFunction", **fields}
    return build_statement(body, FN)


@pytest.mark.parametrize(
    "principal, expected",
    [
        ("*", "*"),
        ("111122223333", {"AWS": "arn:aws:iam::111122223333:root"}),
        ("arn:aws:iam::111122223333:user/alice", {"AWS": "arn:aws:iam::111122223333:user/alice"}),
        ("s3.amazonaws.com", {"Service": "s3.amazonaws.com"}),
        ("logs.eu-west-1.amazonaws.com", {"Service": "logs.eu-west-1.amazonaws.com"}),
        ("alexa-appkit.amazon.com", {"Service": "alexa-appkit.amazon.com"}),
    ],
)
def test_principal_forms(principal, expected):
    assert statement(Principal=principal)["Principal"] == expected


@pytest.mark.parametrize("principal", ["invalid.nonaws.com", "1234", "arn:aws:s3:::bucket", "amazonaws.com"])
def test_invalid_principals_are_refused_with_aws_message(principal):
    with pytest.raises(InvalidParameterValueException, match="The provided principal was invalid"):
        statement(Principal=principal)


def test_statement_key_and_condition_order_match_aws():
    """Recorded (add_permission_optional_fields): StringEquals before ArnLike, keys in this order."""
    document = statement(
        Principal="*",
        Action="lambda:InvokeFunctionUrl",
        SourceArn="arn:aws:s3:::bucket",
        SourceAccount="111122223333",
        PrincipalOrgID="o-1234567890",
        FunctionUrlAuthType="NONE",
    )
    assert json.dumps(document, separators=(",", ":")) == (
        '{"Sid":"sid","Effect":"Allow","Principal":"*","Action":"lambda:InvokeFunctionUrl","Resource":"' + FN + '",'
        '"Condition":{"StringEquals":{"AWS:SourceAccount":"111122223333","lambda:FunctionUrlAuthType":"NONE",'
        '"aws:PrincipalOrgID":"o-1234567890"},"ArnLike":{"AWS:SourceArn":"arn:aws:s3:::bucket"}}}'
    )


def test_no_condition_without_optional_fields_and_url_auth_type_needs_url_action():
    assert "Condition" not in statement(Principal="s3.amazonaws.com")
    with pytest.raises(InvalidParameterValueException, match="FunctionUrlAuthType"):
        statement(Principal="*", FunctionUrlAuthType="NONE")


def test_policy_document_is_compact_with_default_id():
    policy = StoredPolicy(ACCOUNT, "us-east-1", "f", "", "rev", (statement(Principal="*"),))
    assert policy_json(policy).startswith('{"Version":"2012-10-17","Id":"default","Statement":[{"Sid":"sid"')


def test_tag_limits():
    assert check_tags({f"k{i}": "v" for i in range(50)})
    with pytest.raises(InvalidParameterValueException, match="Number of tags exceeds resource tag limit."):
        check_tags({f"k{i}": "v" for i in range(51)})
    for bad in ({"k" * 129: "v"}, {"": "v"}, {"AWS:key": "v"}, {"k": "v" * 257}):
        with pytest.raises(InvalidParameterValueException):
            check_tags(bad)
    assert check_tags({"k" * 128: "v" * 256, "awsome": ""})


def test_taggable_arns():
    ref = parse_taggable_arn(FN + ":live")
    assert (ref.kind, ref.name, ref.qualifier) == ("function", "f", "live")
    assert (ref.region, ref.account) == ("us-east-1", "000000000000")
    assert parse_taggable_arn("arn:aws:lambda:us-east-1:000000000000:capacity-provider:cp").kind == "capacity-provider"
    for bad in ("arn:aws:something", "arn:aws:lambda:us-east-1:000000000000:foobar:f", FN + ":a:b", "x" * 257):
        with pytest.raises(ValidationException, match="at 'resource' failed to satisfy constraint"):
            parse_taggable_arn(bad)


def test_attachment_store_round_trip_and_forget(tmp_path):
    f, g = FunctionKey(ACCOUNT, "r", "f"), FunctionKey(ACCOUNT, "r", "g")
    other = FunctionKey("111122223333", "r", "f")  # another account's function of the same name
    store = SqliteAttachmentStore(tmp_path / "lamina.db")
    store.put_tags(f, {"a": "1"})
    store.put_tags(g, {"b": "2"})
    store.put_tags(other, {"c": "3"})
    first = StoredPolicy(*f, "", "rev1", ({"Sid": "a"},))
    alias = StoredPolicy(*f, "live", "rev2", ({"Sid": "b"}, {"Sid": "c"}))
    store.put_policy(first)
    store.put_policy(alias)
    store.close()

    reopened = SqliteAttachmentStore(tmp_path / "lamina.db")
    assert reopened.all_tags() == {f: {"a": "1"}, g: {"b": "2"}, other: {"c": "3"}}
    assert sorted(reopened.all_policies(), key=lambda p: p.qualifier) == [first, alias]
    reopened.forget(f, "live")
    assert reopened.all_policies() == [first]
    reopened.put_policy(StoredPolicy(*g, "", "rev3", ()))  # no statements: nothing stored
    reopened.forget(f)
    assert reopened.all_tags() == {g: {"b": "2"}, other: {"c": "3"}}
    assert reopened.all_policies() == []
    reopened.close()


class _Targets:
    """Policy targets where only the unqualified function `f` exists."""

    def arn_of(self, scope, ref, qualifier):
        if ref.name != "f" or qualifier is not None:
            raise TargetMissing("alias", f"{FN}:{qualifier}")
        return FN


def test_policies_of_targets_gone_before_a_crash_are_dropped_at_load(tmp_path):
    store = SqliteAttachmentStore(tmp_path / "lamina.db")
    kept = StoredPolicy(*SCOPE, "f", "", "rev1", ({"Sid": "a"},))
    store.put_policy(kept)
    store.put_policy(StoredPolicy(*SCOPE, "f", "gone", "rev2", ({"Sid": "b"},)))
    store.put_policy(StoredPolicy(*SCOPE, "deleted", "", "rev3", ({"Sid": "c"},)))
    service = PermissionService(store, _Targets())
    service.load()
    assert json.loads(service.get(SCOPE, "f", None)["Policy"])["Statement"] == [{"Sid": "a"}]
    assert store.all_policies() == [kept]
    store.close()
