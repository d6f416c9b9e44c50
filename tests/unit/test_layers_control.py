"""Layers below the API: ARN parsing, validation messages, the layer service and store, merged /opt views."""
from __future__ import annotations

import base64
import io
import json
import os
import zipfile
from pathlib import Path

import pytest

from lamina.model.arns import layer_arn, parse_layer_name, parse_layer_version_arn
from lamina.control.code_sources import CodeSources
from lamina.model.layer import layer_statement
from lamina.control.layer_validation import validate_add_permission, validate_list_filters, validate_publish
from lamina.control.layers import LayerService
from lamina.model.function import FunctionConfig
from lamina.model.keys import Scope
from lamina.errors import (
    InvalidParameterValueException,
    InvalidRequestContentException,
    PreconditionFailedException,
    ResourceConflictException,
    ResourceNotFoundException,
    ValidationException,
)
from lamina.sandbox.mounts import mounts_under
from lamina.sandbox.opt import OptViews
from lamina.store.blobs import CodeStore
from lamina.store.layers import SqliteLayerStore

REGION, ACCOUNT = "us-east-1", "000000000000"
SCOPE = Scope(ACCOUNT, REGION)


def zip_of(files: dict[str, str]) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        for name, content in files.items():
            archive.writestr(name, content)
    return buffer.getvalue()


def content(files: dict[str, str]) -> dict[str, str]:
    return {"ZipFile": base64.b64encode(zip_of(files)).decode()}


@pytest.fixture
def service(tmp_path: Path) -> LayerService:
    store = SqliteLayerStore(tmp_path / "lamina.db")
    return LayerService(store, CodeStore(tmp_path / "code"), CodeSources(None, REGION))


# -- ARNs ---------------------------------------------------------------------------------------------------------
def test_layer_names_and_arns_parse():
    assert parse_layer_name("my-layer").name == "my-layer"
    ref = parse_layer_name(f"arn:aws:lambda:eu-west-1:{ACCOUNT}:layer:my-layer")
    assert (ref.name, ref.region, ref.account) == ("my-layer", "eu-west-1", ACCOUNT)
    parsed = parse_layer_version_arn(layer_arn(REGION, ACCOUNT, "x", 7))
    assert parsed is not None and parsed[0].name == "x" and parsed[1] == 7
    assert parse_layer_version_arn("arn:aws:lambda:::awslayer:AmazonLinux1803") is None


def test_invalid_layer_names_and_arns_get_aws_messages():
    with pytest.raises(ValidationException) as error:
        parse_layer_name("bad name")
    assert error.value.message.startswith("1 validation error detected: Value 'bad name' at 'layerName'")
    with pytest.raises(ValidationException) as error:
        parse_layer_version_arn(layer_arn(REGION, ACCOUNT, "x"))
    assert "at 'arn' failed to satisfy constraint: Member must satisfy regular expression pattern: (arn:(aws" in (
        error.value.message
    )


# -- validation ---------------------------------------------------------------------------------------------------
def test_publish_validation_reports_runtimes_and_architectures_together():
    with pytest.raises(ValidationException) as error:
        validate_publish({"Content": content({"a": "b"}), "CompatibleRuntimes": ["x", "nodejs20.x"],
                          "CompatibleArchitectures": ["y", "x86_64"]})
    message = error.value.message
    assert message.startswith("2 validation errors detected: Value '[x, nodejs20.x]' at 'compatibleRuntimes'")
    assert "Member must satisfy enum value set: [nodejs20.x, python3.14, provided.al2023," in message
    assert message.endswith(
        "Value '[y, x86_64]' at 'compatibleArchitectures' failed to satisfy constraint: Member must satisfy "
        "constraint: [Member must satisfy enum value set: [x86_64, arm64], Member must not be null]"
    )


def test_publish_accepts_deprecated_runtimes_and_empty_lists():
    validate_publish({"Content": content({"a": "b"}), "CompatibleRuntimes": ["java8", "python3.7", "provided"],
                      "CompatibleArchitectures": []})


def test_publish_needs_content_of_the_right_shape():
    with pytest.raises(ValidationException, match="Value null at 'content'"):
        validate_publish({})
    with pytest.raises(InvalidRequestContentException):
        validate_publish({"Content": {"ZipFile": 5}})
    with pytest.raises(InvalidParameterValueException, match="Please provide a source"):
        validate_publish({"Content": {"S3Bucket": "bucket"}})


def test_list_filter_validation():
    assert validate_list_filters(None, None, None) == 50
    assert validate_list_filters("python3.12", "arm64", "3") == 3
    with pytest.raises(ValidationException, match="at 'compatibleRuntime' .* enum value set: \\[ruby3.5, ruby2.6,"):
        validate_list_filters("nope", None, None)
    with pytest.raises(ValidationException, match="^2 validation errors detected: .*maxItems.*compatibleArchitecture"):
        validate_list_filters(None, "nope", "51")


def test_permission_validation_uses_the_model_patterns():
    with pytest.raises(ValidationException) as error:
        validate_add_permission({"StatementId": "s1", "Action": "*", "Principal": "*"})
    assert error.value.message == (
        "1 validation error detected: Value '*' at 'action' failed to satisfy constraint: Member must satisfy "
        "regular expression pattern: lambda:GetLayerVersion"
    )


def test_statements_name_account_principals_by_root_arn():
    resource = layer_arn(REGION, ACCOUNT, "x", 1)
    assert layer_statement("s", "*", resource, None)["Principal"] == "*"
    account = layer_statement("s", "123456789012", resource, None)
    assert account["Principal"] == {"AWS": "arn:aws:iam::123456789012:root"}
    with_org = layer_statement("s", "*", resource, "o-abcdefghij")
    assert with_org["Condition"] == {"StringEquals": {"aws:PrincipalOrgID": "o-abcdefghij"}}


# -- service and store ----------------------------------------------------------------------------------------------
def test_version_numbers_are_never_reused(service: LayerService, tmp_path: Path):
    ref = parse_layer_name("lib")
    assert [service.publish(SCOPE, ref, {"Content": content({"a": str(n)})}).version for n in range(2)] == [1, 2]
    service.delete(SCOPE, ref, 1)
    service.delete(SCOPE, ref, 2)
    service.delete(SCOPE, ref, 2)  # idempotent
    assert service.list_versions(SCOPE, ref, None, None, None, 50).items == []
    assert service.publish(SCOPE, ref, {"Content": content({"a": "3"})}).version == 3
    reopened = LayerService(SqliteLayerStore(tmp_path / "lamina.db"), CodeStore(tmp_path / "code"),
                            CodeSources(None, REGION))
    assert reopened.publish(SCOPE, ref, {"Content": content({"a": "4"})}).version == 4


def test_publish_extracts_the_layer_once(service: LayerService, tmp_path: Path):
    layer = service.publish(SCOPE, parse_layer_name("lib"), {"Content": content({"python/m.py": "X = 1"})})
    assert (tmp_path / "code" / "trees" / layer.code_sha256_hex / "python" / "m.py").read_text() == "X = 1"
    assert layer.unzipped_size == 5


def test_lists_filter_and_page(service: LayerService):
    ref = parse_layer_name("lib")
    service.publish(SCOPE, ref, {"Content": content({"a": "1"}), "CompatibleRuntimes": ["python3.12"]})
    service.publish(SCOPE, ref, {"Content": content({"a": "2"}), "CompatibleRuntimes": ["nodejs20.x"]})
    service.publish(SCOPE, ref, {"Content": content({"a": "3"}), "CompatibleRuntimes": ["python3.12"]})
    service.publish(SCOPE, parse_layer_name("other"), {"Content": content({"a": "4"})})
    first = service.list_versions(SCOPE, ref, None, None, None, 2)
    assert [v.version for v in first.items] == [3, 2] and first.next_marker == "2"
    rest = service.list_versions(SCOPE, ref, None, None, first.next_marker, 2)
    assert [v.version for v in rest.items] == [1] and rest.next_marker is None
    assert [v.version for v in service.list_versions(SCOPE, ref, "python3.12", None, None, 50).items] == [3, 1]
    matching = service.list_layers(SCOPE, "nodejs20.x", None, None, 50).items
    assert [(v.name, v.version) for v in matching] == [("lib", 2)]
    everything = service.list_layers(SCOPE, None, None, None, 1)
    assert [(v.name, v.version) for v in everything.items] == [("lib", 3)] and everything.next_marker == "lib"
    assert [v.name for v in service.list_layers(SCOPE, None, None, "lib", 1).items] == ["other"]
    assert service.list_layers(Scope(ACCOUNT, "eu-west-1"), None, None, None, 50).items == []
    assert service.list_layers(Scope("111122223333", REGION), None, None, None, 50).items == []


def test_get_errors(service: LayerService):
    ref = parse_layer_name("lib")
    service.publish(SCOPE, ref, {"Content": content({"a": "1"})})
    with pytest.raises(InvalidParameterValueException, match="^Layer Version Cannot be less than 1$"):
        service.get(SCOPE, ref, 0)
    with pytest.raises(ResourceNotFoundException, match="^The resource you requested does not exist.$"):
        service.get(SCOPE, ref, 2)
    with pytest.raises(ResourceNotFoundException):
        service.get(SCOPE, parse_layer_name(f"arn:aws:lambda:eu-west-1:{ACCOUNT}:layer:lib"), 1)
    assert service.get_by_arn(SCOPE, layer_arn(REGION, ACCOUNT, "lib", 1)).version == 1


def test_policy_lifecycle_and_errors(service: LayerService):
    ref = parse_layer_name("lib")
    service.publish(SCOPE, ref, {"Content": content({"a": "1"})})
    with pytest.raises(ResourceNotFoundException, match="^No policy is associated with the given resource.$"):
        service.get_policy(SCOPE, ref, 1)
    body = {"StatementId": "s1", "Action": "lambda:GetLayerVersion", "Principal": "*"}
    statement, revision = service.add_permission(SCOPE, ref, 1, body, None)
    assert statement["Resource"] == layer_arn(REGION, ACCOUNT, "lib", 1)
    with pytest.raises(ResourceConflictException, match=r"^The statement id \(s1\) provided already exists"):
        service.add_permission(SCOPE, ref, 1, body, None)
    with pytest.raises(PreconditionFailedException, match="GetLayerPolicy API"):
        service.add_permission(SCOPE, ref, 1, {**body, "StatementId": "s2"}, "wrong")
    _, revision2 = service.add_permission(SCOPE, ref, 1, {**body, "StatementId": "s2"}, revision)
    policy = json.loads(service.get_policy(SCOPE, ref, 1).policy_document())
    assert [s["Sid"] for s in policy["Statement"]] == ["s1", "s2"] and policy["Id"] == "default"
    with pytest.raises(ResourceNotFoundException, match="^Statement nope is not found in resource policy.$"):
        service.remove_permission(SCOPE, ref, 1, "nope", None)
    service.remove_permission(SCOPE, ref, 1, "s2", revision2)
    assert service.get_policy(SCOPE, ref, 1).policy_revision_id not in (revision, revision2)
    with pytest.raises(ResourceNotFoundException, match=f"^Layer version {layer_arn(REGION, ACCOUNT, 'lib', 2)} "):
        service.get_policy(SCOPE, ref, 2)


def test_functions_resolve_layers_and_keep_deleted_ones(service: LayerService):
    ref = parse_layer_name("lib")
    layer = service.publish(SCOPE, ref, {"Content": content({"python/m.py": "X = 1"})})
    resolved = service.resolve_for_function(SCOPE, [layer.arn])
    assert resolved[0]["arn"] == layer.arn and resolved[0]["code_size"] == layer.code_size
    with pytest.raises(InvalidParameterValueException, match="^Layers are not in the same region as the function. "
                                                             "Layers are expected to be in region us-east-1.$"):
        service.resolve_for_function(SCOPE, [layer_arn("eu-west-1", ACCOUNT, "lib", 1)])
    missing = layer_arn(REGION, ACCOUNT, "lib", 9)
    with pytest.raises(InvalidParameterValueException, match=f"^Layer version {missing} does not exist.$"):
        service.resolve_for_function(SCOPE, [missing])
    service.delete(SCOPE, ref, 1)
    config = FunctionConfig(REGION, ACCOUNT, "f", "role", "python3.12", "h", "c" * 64, "x", 1, layers=resolved)
    assert layer.code_sha256_hex in service.referenced_code([config])
    assert layer.code_sha256_hex not in service.referenced_code([])


def test_code_and_layers_share_the_unzipped_limit(service: LayerService, tmp_path: Path):
    code = CodeStore(tmp_path / "code")
    data = zip_of({"app.py": "x" * 1000})
    code.put("f" * 64, data)
    service.check_total_size("f" * 64, [{"unzipped_size": 262_144_000 - 1000}])
    with pytest.raises(InvalidParameterValueException) as error:
        service.check_total_size("f" * 64, [{"unzipped_size": 262_144_000 - 999}])
    assert error.value.message == (
        "Function code combined with layers exceeds the maximum allowed size of 262144000 bytes. "
        "The actual size is 262144001 bytes."
    )
    with pytest.raises(InvalidParameterValueException, match="^Layers consume more than the available size"):
        service.check_total_size("f" * 64, [{"unzipped_size": 262_144_001}])


# -- /opt views ------------------------------------------------------------------------------------------------------
def make_layers(root: Path) -> list[Path]:
    first, second = root / "first", root / "second"
    for layer, files in (
        (first, {"python/shared.py": "first", "python/only_first.py": "1", "bin/tool": "first", "dir_or_file": "f"}),
        (second, {"python/shared.py": "second", "lib/only_second.so": "2", "dir_or_file/inner": "d"}),
    ):
        for name, text in files.items():
            (layer / name).parent.mkdir(parents=True, exist_ok=True)
            (layer / name).write_text(text)
    return [first, second]


def assert_merged(view: Path) -> None:
    assert (view / "python" / "shared.py").read_text() == "second"  # the later layer wins
    assert (view / "python" / "only_first.py").read_text() == "1"
    assert (view / "lib" / "only_second.so").read_text() == "2"
    assert (view / "bin" / "tool").read_text() == "first"
    assert (view / "dir_or_file" / "inner").read_text() == "d"


def test_no_layer_or_one_layer_needs_no_merge(tmp_path: Path):
    views = OptViews(tmp_path / "opt", can_mount=False)
    layers = make_layers(tmp_path)
    with views.view([]) as view:
        assert view is None
    with views.view(layers[:1]) as view:
        assert view == layers[0]


def test_linked_merge_shares_the_extracted_files(tmp_path: Path):
    views = OptViews(tmp_path / "opt", can_mount=False)
    layers = make_layers(tmp_path)
    with views.view(layers) as view:
        assert view is not None
        assert_merged(view)
        assert os.stat(view / "bin" / "tool").st_ino == os.stat(layers[0] / "bin" / "tool").st_ino
    with views.view(layers) as again:
        assert again == view


@pytest.mark.skipif(os.geteuid() != 0, reason="mounting overlayfs needs root")
def test_overlay_is_mounted_while_used_and_removed_after(tmp_path: Path):
    views = OptViews(tmp_path / "opt", can_mount=True)
    layers = make_layers(tmp_path)
    with views.view(layers) as view, views.view(layers) as shared:
        assert view == shared and view in mounts_under(tmp_path / "opt")
        assert_merged(view)
        with pytest.raises(OSError):
            (view / "python" / "new.py").write_text("read-only")
    assert mounts_under(tmp_path / "opt") == [] and not view.exists()


@pytest.mark.skipif(os.geteuid() != 0, reason="mounting overlayfs needs root")
def test_stale_overlays_are_removed_at_start(tmp_path: Path):
    views = OptViews(tmp_path / "opt", can_mount=True)
    context = views.view(make_layers(tmp_path))
    context.__enter__()  # a server killed while an environment used it
    OptViews(tmp_path / "opt", can_mount=True)
    assert mounts_under(tmp_path / "opt") == [] and list((tmp_path / "opt").iterdir()) == []


def test_a_layer_listed_twice_counts_once_at_its_last_place(tmp_path: Path):
    views = OptViews(tmp_path / "opt", can_mount=os.geteuid() == 0)
    first, second = make_layers(tmp_path)
    with views.view([first, first]) as view:
        assert view == first
    with views.view([second, first, second]) as view:
        assert view is not None
        assert_merged(view)
