"""Resource policies, tags and function states end to end through boto3 and the aws CLI.

Expected documents and messages are AWS's, from shared/reference/aws-recorded/test_lambda_api.snapshot.json
(TestLambdaPermissions, TestLambdaTags, TestLambdaTag, TestLambdaRevisions).
"""
from __future__ import annotations

import json
import os
import subprocess
import sys
import time
import uuid

import pytest
from botocore.exceptions import ClientError
from conftest import PY_RUNTIME, ROLE, client_for, start_server, zip_files
from tests.support.client_errors import call_error

ACCOUNT = "000000000000"
FN_ARN_PREFIX = f"arn:aws:lambda:us-east-1:{ACCOUNT}:function:"
S3_BUCKET_ARN = "arn:aws:s3:::test-bucket"


def add(client, name: str, sid: str, principal: str = "s3.amazonaws.com", **extra):
    return client.add_permission(
        FunctionName=name, StatementId=sid, Action="lambda:InvokeFunction", Principal=principal, **extra
    )


# -- resource policies ------------------------------------------------------------------------------------------------
def test_statements_and_policy_document_are_aws_exact(lambda_client, make_function):
    name = make_function()
    arn = FN_ARN_PREFIX + name

    response = add(lambda_client, name, "s3", SourceArn=S3_BUCKET_ARN)
    assert response["ResponseMetadata"]["HTTPStatusCode"] == 201
    assert response["Statement"] == (
        '{"Sid":"s3","Effect":"Allow","Principal":{"Service":"s3.amazonaws.com"},"Action":"lambda:InvokeFunction",'
        f'"Resource":"{arn}","Condition":{{"ArnLike":{{"AWS:SourceArn":"{S3_BUCKET_ARN}"}}}}}}'
    )
    wildcard = json.loads(add(lambda_client, name, "wildcard", "*", SourceAccount=ACCOUNT)["Statement"])
    assert wildcard["Principal"] == "*" and wildcard["Condition"] == {"StringEquals": {"AWS:SourceAccount": ACCOUNT}}
    account = json.loads(add(lambda_client, name, "account-id", "111122223333")["Statement"])
    assert account["Principal"] == {"AWS": "arn:aws:iam::111122223333:root"} and "Condition" not in account
    user_arn = "arn:aws:iam::111122223333:user/alice"
    assert json.loads(add(lambda_client, name, "user-arn", user_arn)["Statement"])["Principal"] == {"AWS": user_arn}
    url = lambda_client.add_permission(
        FunctionName=name,
        StatementId="urlPermission",
        Action="lambda:InvokeFunctionUrl",
        Principal="*",
        SourceArn=S3_BUCKET_ARN,
        SourceAccount=ACCOUNT,
        PrincipalOrgID="o-1234567890",
        FunctionUrlAuthType="NONE",
    )
    assert json.loads(url["Statement"])["Condition"] == {
        "StringEquals": {
            "AWS:SourceAccount": ACCOUNT,
            "lambda:FunctionUrlAuthType": "NONE",
            "aws:PrincipalOrgID": "o-1234567890",
        },
        "ArnLike": {"AWS:SourceArn": S3_BUCKET_ARN},
    }
    token = "amzn1.ask.skill.xxxxxxxxx-xxxx-xxxx-xxxx-xxxxxxxxxxxx"
    alexa = json.loads(add(lambda_client, name, "alexaSkill", "*", EventSourceToken=token)["Statement"])
    assert alexa["Condition"] == {"StringEquals": {"lambda:EventSourceToken": token}}

    policy = lambda_client.get_policy(FunctionName=name)
    assert policy["Policy"].startswith('{"Version":"2012-10-17","Id":"default","Statement":[{"Sid":"s3",')
    document = json.loads(policy["Policy"])
    assert [s["Sid"] for s in document["Statement"]] == [
        "s3", "wildcard", "account-id", "user-arn", "urlPermission", "alexaSkill"
    ]
    assert json.loads(response["Statement"]) == document["Statement"][0]
    # An ARN, a partial ARN and `name:$LATEST` name the same (unqualified) policy.
    assert lambda_client.get_policy(FunctionName=arn)["Policy"] == policy["Policy"]
    assert lambda_client.get_policy(FunctionName=name, Qualifier="$LATEST")["Policy"] == policy["Policy"]


def test_permission_errors_are_aws_exact(lambda_client, unvalidated_client, make_function):
    name = make_function()
    s3 = {
        "Action": "lambda:InvokeFunction",
        "StatementId": "s3",
        "Principal": "s3.amazonaws.com",
        "SourceArn": S3_BUCKET_ARN,
    }
    assert call_error(unvalidated_client.add_permission, FunctionName=name, **{**s3, "StatementId": "example.com"}) == (
        400,
        "ValidationException",
        "1 validation error detected: Value 'example.com' at 'statementId' failed to satisfy constraint: "
        "Member must satisfy regular expression pattern: ([a-zA-Z0-9-_]+)",
    )
    assert call_error(lambda_client.add_permission, FunctionName=f"{name}:alias-not-42", Qualifier="42", **s3) == (
        400,
        "InvalidParameterValueException",
        "The derived qualifier from the function name does not match the specified qualifier.",
    )
    assert call_error(lambda_client.add_permission, FunctionName=f"{name}:$LATEST", Qualifier="$LATEST", **s3) == (
        400, "InvalidParameterValueException", "We currently do not support adding policies for $LATEST."
    )
    assert call_error(
        lambda_client.add_permission,
        FunctionName=name,
        Action="lambda:InvokeFunction",
        StatementId="lambda",
        Principal="invalid.nonaws.com",
        SourceAccount=ACCOUNT,
    ) == (
        400,
        "InvalidParameterValueException",
        "The provided principal was invalid. Please check the principal and try again.",
    )
    no_resource = (404, "ResourceNotFoundException", "The resource you requested does not exist.")
    assert call_error(lambda_client.get_policy, FunctionName="doesnotexist") == no_resource
    assert call_error(lambda_client.get_policy, FunctionName=name, Qualifier="77") == no_resource
    assert call_error(lambda_client.get_policy, FunctionName=name) == no_resource
    assert call_error(lambda_client.add_permission, FunctionName="doesnotexist", **s3) == (
        404, "ResourceNotFoundException", f"Function not found: {FN_ARN_PREFIX}doesnotexist"
    )
    assert call_error(lambda_client.remove_permission, FunctionName=name, StatementId="s3") == (
        404, "ResourceNotFoundException", "No policy is associated with the given resource."
    )
    assert call_error(lambda_client.add_permission, FunctionName=f"{name}:alias-doesnotexist", **s3) == (
        404, "ResourceNotFoundException", f"Cannot find alias arn: {FN_ARN_PREFIX}{name}:alias-doesnotexist"
    )
    assert call_error(lambda_client.add_permission, FunctionName=name, Qualifier="42", **s3) == (
        404, "ResourceNotFoundException", f"Function not found: {FN_ARN_PREFIX}{name}:42"
    )
    bad_qualifier = "invalid-qualifier-with-?-char"
    assert call_error(unvalidated_client.add_permission, FunctionName=name, Qualifier=bad_qualifier, **s3) == (
        400,
        "ValidationException",
        "1 validation error detected: Value 'invalid-qualifier-with-?-char' at 'qualifier' failed to satisfy "
        "constraint: Member must satisfy regular expression pattern: \\$(LATEST(\\.PUBLISHED)?)|[a-zA-Z0-9-_$]+",
    )
    dollar = "valid-with-$-but-doesnotexist"
    assert call_error(lambda_client.add_permission, FunctionName=name, Qualifier=dollar, **s3) == (
        404, "ResourceNotFoundException", f"Function not found: {FN_ARN_PREFIX}{name}:valid-with-$-but-doesnotexist"
    )
    lambda_client.add_permission(FunctionName=name, **s3)
    assert call_error(lambda_client.add_permission, FunctionName=name, **s3) == (
        409,
        "ResourceConflictException",
        "The statement id (s3) provided already exists. Please provide a new statement id, or remove the existing "
        "statement.",
    )
    assert call_error(lambda_client.remove_permission, FunctionName="doesnotexist", StatementId="s3") == (
        404, "ResourceNotFoundException", f"No policy found for: {FN_ARN_PREFIX}doesnotexist"
    )
    assert call_error(
        lambda_client.remove_permission, FunctionName=name, StatementId="s3", Qualifier="alias-doesnotexist"
    ) == (
        404, "ResourceNotFoundException", f"Cannot find alias arn: {FN_ARN_PREFIX}{name}:alias-doesnotexist"
    )
    assert call_error(lambda_client.remove_permission, FunctionName=name, StatementId="non-existent") == (
        404, "ResourceNotFoundException", "Statement non-existent is not found in resource policy."
    )
    with pytest.raises(ClientError) as caught:
        lambda_client.get_policy(FunctionName="doesnotexist")
    assert caught.value.response["ResponseMetadata"]["HTTPHeaders"]["x-amzn-errortype"] == "ResourceNotFoundException"


def test_policy_revisions_follow_aws(lambda_client, make_function):
    """AddPermission/RemovePermission give the policy and the function one new RevisionId; a precondition is
    checked against the policy's (the function's while there is none). Recorded: test_function_revisions_permissions."""
    name = make_function()
    before = lambda_client.get_function(FunctionName=name)["Configuration"]["RevisionId"]
    assert call_error(add, client=lambda_client, name=name, sid="s3", RevisionId="wrong") == (
        412,
        "PreconditionFailedException",
        "The Revision Id provided does not match the latest Revision Id. Call the GetPolicy API to retrieve the "
        "latest Revision Id",
    )
    add(lambda_client, name, "s3", RevisionId=before)
    policy_revision = lambda_client.get_policy(FunctionName=name)["RevisionId"]
    assert policy_revision != before
    assert lambda_client.get_function(FunctionName=name)["Configuration"]["RevisionId"] == policy_revision
    add(lambda_client, name, "s3_2", RevisionId=policy_revision)

    current = lambda_client.get_policy(FunctionName=name)["RevisionId"]
    assert call_error(lambda_client.remove_permission, FunctionName=name, StatementId="s3", RevisionId="wrong") == (
        412,
        "PreconditionFailedException",
        "The Revision Id provided does not match the latest Revision Id. Call the GetFunction/GetAlias API to "
        "retrieve the latest Revision Id",
    )
    lambda_client.remove_permission(FunctionName=name, StatementId="s3", RevisionId=current)
    after_remove = lambda_client.get_function(FunctionName=name)["Configuration"]["RevisionId"]
    assert after_remove != current
    remaining = json.loads(lambda_client.get_policy(FunctionName=name)["Policy"])["Statement"]
    assert [statement["Sid"] for statement in remaining] == ["s3_2"]
    lambda_client.remove_permission(FunctionName=name, StatementId="s3_2")
    assert call_error(lambda_client.get_policy, FunctionName=name)[2] == "The resource you requested does not exist."


def test_versions_and_aliases_have_their_own_policies(lambda_client, make_function):
    """Recorded: test_lambda_permission_fn_versioning (AWS, 2025)."""
    name = make_function()
    arn = FN_ARN_PREFIX + name
    add(lambda_client, name, "s3", SourceArn=S3_BUCKET_ARN)
    unqualified = lambda_client.get_policy(FunctionName=name)

    version = lambda_client.publish_version(FunctionName=name)["Version"]
    # Publishing changed $LATEST's RevisionId, not the policy's.
    assert lambda_client.get_function(FunctionName=name)["Configuration"]["RevisionId"] != unqualified["RevisionId"]
    again = lambda_client.get_policy(FunctionName=name)
    assert (again["Policy"], again["RevisionId"]) == (unqualified["Policy"], unqualified["RevisionId"])
    assert call_error(lambda_client.get_policy, FunctionName=name, Qualifier=version)[2] == (
        "The resource you requested does not exist."
    )
    version_revision = lambda_client.get_function(FunctionName=name, Qualifier=version)["Configuration"]["RevisionId"]
    add(lambda_client, f"{name}:{version}", "s3", SourceArn=S3_BUCKET_ARN, Qualifier=version)
    on_version = lambda_client.get_policy(FunctionName=name, Qualifier=version)
    assert json.loads(on_version["Policy"])["Statement"][0]["Resource"] == f"{arn}:{version}"
    after = lambda_client.get_function(FunctionName=name, Qualifier=version)["Configuration"]["RevisionId"]
    assert on_version["RevisionId"] == after != version_revision

    alias = lambda_client.create_alias(FunctionName=name, Name="permission-alias", FunctionVersion=version)
    assert call_error(
        add, client=lambda_client, name=name, sid="s3", Qualifier="permission-alias", RevisionId="wrong"
    ) == (
        412,
        "PreconditionFailedException",
        "The Revision Id provided does not match the latest Revision Id. Call the GetPolicy API to retrieve the "
        "latest Revision Id",
    )
    add(lambda_client, f"{name}:permission-alias", "s3", Qualifier="permission-alias", RevisionId=alias["RevisionId"])
    on_alias = lambda_client.get_policy(FunctionName=name, Qualifier="permission-alias")
    assert json.loads(on_alias["Policy"])["Statement"][0]["Resource"] == f"{arn}:permission-alias"
    alias_now = lambda_client.get_alias(FunctionName=name, Name="permission-alias")["RevisionId"]
    assert on_alias["RevisionId"] == alias_now != alias["RevisionId"]

    # The unqualified policy is untouched, and its RevisionId (not $LATEST's) is the precondition.
    assert lambda_client.get_policy(FunctionName=name)["Policy"] == unqualified["Policy"]
    add(lambda_client, name, "s3_2", SourceArn=S3_BUCKET_ARN, RevisionId=unqualified["RevisionId"])
    assert len(json.loads(lambda_client.get_policy(FunctionName=name)["Policy"])["Statement"]) == 2

    # A deleted alias or version takes its policy with it.
    lambda_client.delete_alias(FunctionName=name, Name="permission-alias")
    lambda_client.create_alias(FunctionName=name, Name="permission-alias", FunctionVersion=version)
    assert call_error(lambda_client.get_policy, FunctionName=name, Qualifier="permission-alias")[0] == 404
    lambda_client.delete_alias(FunctionName=name, Name="permission-alias")
    lambda_client.delete_function(FunctionName=name, Qualifier=version)
    assert call_error(lambda_client.get_policy, FunctionName=name, Qualifier=version)[0] == 404
    assert call_error(lambda_client.remove_permission, FunctionName=name, StatementId="s3", Qualifier=version) == (
        404, "ResourceNotFoundException", f"Function not found: {arn}:{version}"
    )


def test_policy_over_20_kb_is_refused(lambda_client, make_function):
    name = make_function()
    source = "arn:aws:s3:::" + "b" * 400
    with pytest.raises(ClientError) as caught:
        for index in range(60):
            add(lambda_client, name, f"statement-{index}", SourceArn=source)
    error = caught.value.response
    assert error["Error"]["Code"] == "PolicyLengthExceededException"
    assert error["ResponseMetadata"]["HTTPStatusCode"] == 400
    document = json.loads(lambda_client.get_policy(FunctionName=name)["Policy"])
    assert len(document["Statement"]) == index  # the refused statement was not added
    refused = {**document["Statement"][-1], "Sid": f"statement-{index}"}
    document["Statement"].append(refused)
    final_size = len(json.dumps(document, separators=(",", ":")))
    assert final_size > 20480
    assert error["Error"]["Message"] == f"The final policy size ({final_size}) is bigger than the limit (20480)."


# -- tags -------------------------------------------------------------------------------------------------------------
def test_tag_lifecycle_and_revisions(lambda_client, make_function):
    name = make_function(Tags={"key_a": "value_a"})
    arn = FN_ARN_PREFIX + name
    got = lambda_client.get_function(FunctionName=name)
    assert got["Tags"] == {"key_a": "value_a"}
    revision = got["Configuration"]["RevisionId"]

    response = lambda_client.tag_resource(Resource=arn, Tags={"key_b": "value_b", "key_c": "value_c"})
    assert response["ResponseMetadata"]["HTTPStatusCode"] == 204
    lambda_client.tag_resource(Resource=arn, Tags={"key_c": "value_x", "key_d": "value_d"})
    assert lambda_client.list_tags(Resource=arn)["Tags"] == {
        "key_a": "value_a", "key_b": "value_b", "key_c": "value_x", "key_d": "value_d"
    }
    got = lambda_client.get_function(FunctionName=name)
    assert got["Tags"]["key_c"] == "value_x"
    assert got["Configuration"]["RevisionId"] != revision  # recorded: every tag change is a new revision

    lambda_client.untag_resource(Resource=arn, TagKeys=["key_c", "key_d", "not-there"])
    assert lambda_client.list_tags(Resource=arn)["Tags"] == {"key_a": "value_a", "key_b": "value_b"}
    lambda_client.untag_resource(Resource=arn, TagKeys=["key_a", "key_b"])
    assert lambda_client.list_tags(Resource=arn)["Tags"] == {}
    assert "Tags" not in lambda_client.get_function(FunctionName=name)  # recorded: absent, not empty

    lambda_client.delete_function(FunctionName=name)
    assert call_error(lambda_client.list_tags, Resource=arn) == (
        404, "ResourceNotFoundException", f"Function not found: {arn}"
    )


def test_tag_errors_and_limits(lambda_client, unvalidated_client, make_function):
    name = make_function()
    arn = FN_ARN_PREFIX + name
    pattern_error = call_error(unvalidated_client.tag_resource, Resource="arn:aws:something", Tags={"k": "v"})
    assert pattern_error[:2] == (400, "ValidationException")
    assert pattern_error[2].startswith(
        "1 validation error detected: Value 'arn:aws:something' at 'resource' failed to satisfy constraint: Member "
        "must satisfy regular expression pattern: arn:(aws[a-zA-Z-]*):lambda:"
    )
    assert call_error(lambda_client.tag_resource, Resource=FN_ARN_PREFIX + "doesnotexist", Tags={"k": "v"}) == (
        404, "ResourceNotFoundException", f"Function not found: {FN_ARN_PREFIX}doesnotexist"
    )
    qualified = (
        400,
        "InvalidParameterValueException",
        "Tags on function aliases and versions are not supported. Please specify a function ARN.",
    )
    assert call_error(lambda_client.tag_resource, Resource=f"{arn}:v1", Tags={"k": "v"}) == qualified
    assert call_error(lambda_client.tag_resource, Resource=f"{arn}:$LATEST", Tags={"k": "v"}) == qualified
    assert call_error(lambda_client.untag_resource, Resource=arn, TagKeys=[]) == (
        400,
        "ValidationException",
        "1 validation error detected: Value null at 'tagKeys' failed to satisfy constraint: Member must not be null",
    )
    assert call_error(lambda_client.tag_resource, Resource=arn, Tags={}) == (
        400, "InvalidParameterValueException", "An error occurred and the request cannot be processed."
    )
    esm = f"arn:aws:lambda:us-east-1:{ACCOUNT}:event-source-mapping:{uuid.uuid4()}"
    assert call_error(lambda_client.list_tags, Resource=esm) == (
        404, "ResourceNotFoundException", f"Event source mapping not found: {esm}"
    )

    too_many = (400, "InvalidParameterValueException", "Number of tags exceeds resource tag limit.")
    fifty_one = {f"{k}_key": f"{k}_value" for k in range(51)}
    assert call_error(lambda_client.tag_resource, Resource=arn, Tags=fifty_one) == too_many
    lambda_client.tag_resource(Resource=arn, Tags={f"{k}_key": f"{k}_value" for k in range(50)})
    assert len(lambda_client.get_function(FunctionName=name)["Tags"]) == 50
    assert call_error(lambda_client.tag_resource, Resource=arn, Tags={"a_key": "a_value"}) == too_many
    lambda_client.tag_resource(Resource=arn, Tags={"0_key": "overwritten"})  # still 50: fine
    for invalid in ({"aws:reserved": "v"}, {"k" * 129: "v"}, {"k": "v" * 257}):  # AWS's messages are not recorded
        assert call_error(lambda_client.tag_resource, Resource=arn, Tags=invalid)[1] == "InvalidParameterValueException"

    created = call_error(
        lambda_client.create_function,
        FunctionName=f"fn-{uuid.uuid4().hex[:12]}",
        Runtime=PY_RUNTIME,
        Role=ROLE,
        Handler="app.handler",
        Code={"ZipFile": zip_files({"app.py": "def handler(e, c):\n    return e\n"})},
        Tags=fifty_one,
    )
    assert created == too_many


def test_deleting_a_function_deletes_its_tags_and_policy(lambda_client, make_function):
    code = {"ZipFile": zip_files({"app.py": "def handler(e, c):\n    return e\n"})}
    name = make_function(Tags={"team": "a"})
    add(lambda_client, name, "s3")
    lambda_client.delete_function(FunctionName=name)
    lambda_client.create_function(FunctionName=name, Runtime=PY_RUNTIME, Role=ROLE, Handler="app.handler", Code=code)
    try:
        assert lambda_client.list_tags(Resource=FN_ARN_PREFIX + name)["Tags"] == {}
        assert call_error(lambda_client.get_policy, FunctionName=name)[0] == 404
    finally:
        lambda_client.delete_function(FunctionName=name)


def test_tags_and_policies_survive_a_restart(tmp_path):
    server = start_server(tmp_path / "data")
    name = "persisted"
    try:
        client = client_for(server.endpoint)
        client.create_function(
            FunctionName=name,
            Runtime=PY_RUNTIME,
            Role=ROLE,
            Handler="app.handler",
            Code={"ZipFile": zip_files({"app.py": "def handler(e, c):\n    return e\n"})},
            Tags={"team": "a"},
        )
        add(client, name, "s3", SourceArn=S3_BUCKET_ARN)
        policy = client.get_policy(FunctionName=name)
    finally:
        server.stop()
    restarted = start_server(tmp_path / "data")
    try:
        client = client_for(restarted.endpoint)
        assert client.list_tags(Resource=FN_ARN_PREFIX + name)["Tags"] == {"team": "a"}
        again = client.get_policy(FunctionName=name)
        assert (again["Policy"], again["RevisionId"]) == (policy["Policy"], policy["RevisionId"])
    finally:
        restarted.stop()


# -- states and waiters ---------------------------------------------------------------------------------------------
def test_states_as_aws_reports_them_and_waiters_return_at_once(lambda_client, make_function):
    code = {"ZipFile": zip_files({"app.py": "def handler(e, c):\n    return e\n"})}
    name = f"fn-{uuid.uuid4().hex[:12]}"
    created = lambda_client.create_function(
        FunctionName=name, Runtime=PY_RUNTIME, Role=ROLE, Handler="app.handler", Code=code
    )
    try:
        assert (created["State"], created["StateReason"], created["StateReasonCode"]) == (
            "Pending", "The function is being created.", "Creating"
        )
        assert "LastUpdateStatus" not in created
        started = time.monotonic()
        lambda_client.get_waiter("function_active_v2").wait(FunctionName=name)
        lambda_client.get_waiter("function_active").wait(FunctionName=name)
        configuration = lambda_client.get_function(FunctionName=name)["Configuration"]
        assert (configuration["State"], configuration["LastUpdateStatus"]) == ("Active", "Successful")
        assert "StateReason" not in configuration and "LastUpdateStatusReason" not in configuration

        updated = lambda_client.update_function_configuration(FunctionName=name, Description="v2")
        assert (updated["State"], updated["LastUpdateStatus"]) == ("Active", "InProgress")
        assert (updated["LastUpdateStatusReason"], updated["LastUpdateStatusReasonCode"]) == (
            "The function is being created.", "Creating"
        )
        lambda_client.get_waiter("function_updated_v2").wait(FunctionName=name)
        updated = lambda_client.update_function_code(FunctionName=name, ZipFile=code["ZipFile"])
        assert updated["LastUpdateStatus"] == "InProgress"
        lambda_client.get_waiter("function_updated_v2").wait(FunctionName=name)
        lambda_client.get_waiter("function_updated").wait(FunctionName=name)
        # Every waiter succeeded on its first call: a second one would come 1-5 s later.
        assert time.monotonic() - started < 1.0

        listed = next(f for f in lambda_client.list_functions()["Functions"] if f["FunctionName"] == name)
        assert not {"State", "LastUpdateStatus", "RuntimeVersionConfig"} & set(listed)  # recorded list form
    finally:
        lambda_client.delete_function(FunctionName=name)


def test_published_version_active_waiter_returns_at_once(lambda_client, make_function):
    name = make_function()
    version = lambda_client.publish_version(FunctionName=name)
    assert (version["State"], version["LastUpdateStatus"]) == ("Active", "Successful")
    started = time.monotonic()
    lambda_client.get_waiter("published_version_active").wait(FunctionName=name, Qualifier=version["Version"])
    code = zip_files({"app.py": "def handler(e, c):\n    return 2\n"})
    published = lambda_client.update_function_code(FunctionName=name, ZipFile=code, Publish=True)
    assert (published["Version"], published["State"], published["StateReasonCode"]) == ("2", "Pending", "Creating")
    lambda_client.get_waiter("published_version_active").wait(FunctionName=name, Qualifier="2")
    assert time.monotonic() - started < 1.0


# -- the aws CLI ------------------------------------------------------------------------------------------------------
def aws_cli(endpoint: str, *args: str) -> subprocess.CompletedProcess[str]:
    environment = {
        **os.environ,
        "AWS_ACCESS_KEY_ID": "test",
        "AWS_SECRET_ACCESS_KEY": "test",
        "AWS_DEFAULT_REGION": "us-east-1",
        "AWS_MAX_ATTEMPTS": "1",
    }
    return subprocess.run(
        [sys.executable, "-m", "awscli", "--endpoint-url", endpoint, "--output", "json", "lambda", *args],
        capture_output=True,
        text=True,
        env=environment,
        timeout=60,
    )


def test_aws_cli_permissions_and_tags(lamina, make_function):
    name = make_function()
    arn = FN_ARN_PREFIX + name
    added = aws_cli(
        lamina.endpoint, "add-permission", "--function-name", name, "--statement-id", "sns",
        "--action", "lambda:InvokeFunction", "--principal", "sns.amazonaws.com",
    )
    assert added.returncode == 0, added.stderr
    assert json.loads(json.loads(added.stdout)["Statement"])["Principal"] == {"Service": "sns.amazonaws.com"}
    policy = aws_cli(lamina.endpoint, "get-policy", "--function-name", name)
    assert json.loads(json.loads(policy.stdout)["Policy"])["Statement"][0]["Sid"] == "sns"
    removed = aws_cli(lamina.endpoint, "remove-permission", "--function-name", name, "--statement-id", "sns")
    assert removed.returncode == 0, removed.stderr
    missing = aws_cli(lamina.endpoint, "get-policy", "--function-name", name)
    assert missing.returncode != 0 and "(ResourceNotFoundException)" in missing.stderr

    assert aws_cli(lamina.endpoint, "tag-resource", "--resource", arn, "--tags", "team=a,env=dev").returncode == 0
    assert aws_cli(lamina.endpoint, "untag-resource", "--resource", arn, "--tag-keys", "env").returncode == 0
    listed = aws_cli(lamina.endpoint, "list-tags", "--resource", arn)
    assert json.loads(listed.stdout) == {"Tags": {"team": "a"}}
    refused = aws_cli(lamina.endpoint, "tag-resource", "--resource", f"{arn}:1", "--tags", "a=b")
    assert "(InvalidParameterValueException)" in refused.stderr
