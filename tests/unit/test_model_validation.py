"""The model-driven constraint pass (`lamina.validation`): AWS's message forms, order, overrides, paging."""
from __future__ import annotations

from typing import Any

import botocore.session
import pytest

from lamina.control.validation import LAMBDA, LAMBDA_OVERRIDES
from lamina.errors import (
    InvalidRequestContentException,
    ValidationException,
    detected,
    java_text,
    validation_error,
    violation,
)
from lamina.validation.constraints import ModelValidator, Override
from lamina.validation.paging import page, page_size, query_integer

SESSION = botocore.session.get_session()
LAMBDA_MODEL = SESSION.get_service_model("lambda")


def message_of(operation: str, members: dict[str, Any], validator: ModelValidator = LAMBDA) -> str:
    with pytest.raises(ValidationException) as caught:
        validator.check(operation, members)
    return caught.value.message


# ---- message builder -------------------------------------------------------------------------------------------------
def test_one_and_many_errors() -> None:
    first = violation("x", "functionName", "Member must satisfy regular expression pattern: [a-z]+")
    assert detected([first]) == (
        "1 validation error detected: Value 'x' at 'functionName' failed to satisfy constraint: Member must satisfy "
        "regular expression pattern: [a-z]+"
    )
    second = violation(None, "role", "Member must not be null")
    assert detected([first, second]) == f"2 validation errors detected: {first}; {second}"


def test_values_print_as_java_prints_them() -> None:
    assert java_text([1, None, "a"]) == "[1, null, a]"
    assert java_text({"k": True}) == "{k=true}"
    assert violation({"A": "secret"}, "environment.variables", "c", sensitive=True) == (
        "Value at 'environment.variables' failed to satisfy constraint: c"
    )


def test_the_single_error_helper_uses_the_builder() -> None:
    assert validation_error("0", "maxItems", "c").message == detected([violation("0", "maxItems", "c")])


# ---- the pass over Lambda's model ---------------------------------------------------------------------------------
def test_members_are_reported_in_model_order_with_camel_case_fields() -> None:
    message = message_of("CreateFunction", {"FunctionName": "f", "Handler": "a b", "Timeout": 0, "Code": {}})
    assert message == (
        "3 validation errors detected: "
        "Value null at 'role' failed to satisfy constraint: Member must not be null; "
        "Value 'a b' at 'handler' failed to satisfy constraint: Member must satisfy regular expression pattern: "
        "[^\\s]+; "
        "Value '0' at 'timeout' failed to satisfy constraint: Member must have value greater than or equal to 1"
    )


def test_overrides_replace_the_published_bounds() -> None:
    assert LAMBDA_MODEL.shape_for("Timeout").metadata["max"] != 900
    assert message_of("UpdateFunctionConfiguration", {"Timeout": 901}).endswith(
        "Value '901' at 'timeout' failed to satisfy constraint: Member must have value less than or equal to 900"
    )
    LAMBDA.check("UpdateFunctionConfiguration", {"Timeout": 900})


def test_nested_members_lists_and_maps() -> None:
    assert message_of("UpdateFunctionConfiguration", {"EphemeralStorage": {}}) == (
        "1 validation error detected: Value null at 'ephemeralStorage.size' failed to satisfy constraint: "
        "Member must not be null"
    )
    assert message_of("UpdateFunctionCode", {"Architectures": []}).endswith(
        "Member must have length greater than or equal to 1"
    )
    weights = {"RoutingConfig": {"AdditionalVersionWeights": {"2": 2}}}
    assert message_of("UpdateAlias", {"Name": "live", **weights}) == (
        "1 validation error detected: Value '{2=2.0}' at 'routingConfig.additionalVersionWeights' failed to satisfy "
        "constraint: Map value must satisfy constraint: [Member must have value less than or equal to 1.0, Member "
        "must have value greater than or equal to 0.0, Member must not be null]"
    )


def test_query_members_share_one_message_with_the_body_order() -> None:
    message = message_of("ListLayers", {"CompatibleRuntime": "nope", "MaxItems": 0, "CompatibleArchitecture": "z"})
    assert message.startswith("3 validation errors detected: Value 'nope' at 'compatibleRuntime'")
    assert message.index("'maxItems'") < message.index("'compatibleArchitecture'")


def test_lengths_are_utf16_code_units() -> None:
    LAMBDA.check("PublishVersion", {"Description": "\U0001F600" * 128})
    assert "description" in message_of("PublishVersion", {"Description": "\U0001F600" * 129})


@pytest.mark.parametrize(
    ("members", "text"),
    [
        ({"Timeout": "3"}, "expected an integer for Timeout, got a string."),
        ({"Timeout": 2**31}, "Timeout is out of range for a 32-bit integer."),
        ({"Layers": "arn"}, "expected a list for Layers, got a string."),
        ({"Environment": {"Variables": {"A": 1}}}, "expected a string for Environment.Variables.A, got a number."),
        ({"TracingConfig": []}, "expected an object for TracingConfig, got a list."),
    ],
)
def test_wrong_types_are_unreadable(members: dict[str, Any], text: str) -> None:
    with pytest.raises(InvalidRequestContentException) as caught:
        LAMBDA.check("UpdateFunctionConfiguration", members)
    assert caught.value.message == f"Could not parse request body into json: {text}"


def test_skipped_members_are_the_services_own() -> None:
    LAMBDA.check("GetFunction", {})  # FunctionName: required, but `lamina.model.arns` parses it
    LAMBDA.check("CreateFunction", {"Role": "arn:aws:iam::123456789012:role/r", "Code": {}, "Runtime": "cobol"})


def test_every_override_names_a_shape_or_a_member_of_the_model() -> None:
    shapes = set(LAMBDA_MODEL.shape_names)
    for key in LAMBDA_OVERRIDES:
        if "." not in key:
            assert key in shapes, key
            continue
        operation, *path = key.split(".")
        shape = LAMBDA_MODEL.operation_model(operation).input_shape
        for member in path:
            shape = shape.members[member]


# ---- every operation ---------------------------------------------------------------------------------------------
def _too_long(shape: Any) -> Any:
    return "a" * (int(shape.metadata["max"]) + 1)


@pytest.mark.parametrize("operation", LAMBDA_MODEL.operation_names)
def test_every_lambda_operation_compiles_and_reports_in_aws_form(operation: str) -> None:
    """For each operation Lamina serves (and the model's others): an empty request reports exactly the required
    members the pass owns, in model order; an over-long string member is reported in AWS's form."""
    shape = LAMBDA_MODEL.operation_model(operation).input_shape
    owned = LAMBDA.member_names(operation)
    if shape is None:
        assert owned == []
        return
    assert sorted(owned) == sorted(shape.members)
    problems = LAMBDA.problems(operation, {})
    for problem in problems:
        assert problem.startswith("Value null at '") and problem.endswith("' failed to satisfy constraint: Member "
                                                                          "must not be null")
    for name in owned:
        member = shape.members[name]
        key = f"{operation}.{name}"
        override = LAMBDA_OVERRIDES.get(key) or LAMBDA_OVERRIDES.get(member.name) or Override()
        if member.type_name != "string" or "max" not in member.metadata or override.skip or override.max:
            continue
        value = _too_long(member)
        found = LAMBDA.problems(operation, {name: value})
        limit = f"Member must have length less than or equal to {int(member.metadata['max'])}"
        sensitive = bool(member.metadata.get("sensitive"))
        assert violation(value, name[0].lower() + name[1:], limit, sensitive=sensitive) in found, (operation, name)


@pytest.mark.parametrize("service", ["logs", "iam", "cloudwatch", "sts"])
def test_the_pass_is_generic_over_service_models(service: str) -> None:
    validator = ModelValidator(SESSION.get_service_model(service))
    assert validator.operations
    for operation in validator.operations:
        validator.problems(operation, {})


def test_cloudwatch_logs_messages() -> None:
    logs = ModelValidator(SESSION.get_service_model("logs"))
    message = message_of("CreateLogGroup", {"logGroupName": "bad name"}, logs)
    assert message.startswith("1 validation error detected: Value 'bad name' at 'logGroupName' failed to satisfy "
                              "constraint: Member must satisfy regular expression pattern: ")


# ---- paging ---------------------------------------------------------------------------------------------------------
def test_max_items_from_the_model() -> None:
    assert page_size(LAMBDA, "ListFunctions", None) == 50
    assert page_size(LAMBDA, "ListFunctions", "10000") == 10000
    with pytest.raises(ValidationException) as caught:
        page_size(LAMBDA, "ListLayers", "51")
    assert caught.value.message == (
        "1 validation error detected: Value '51' at 'maxItems' failed to satisfy constraint: Member must have value "
        "less than or equal to 50"
    )
    with pytest.raises(ValidationException) as caught:
        query_integer("1x", "MaxItems")
    assert caught.value.message.endswith("Value '1x' at 'maxItems' failed to satisfy constraint: Member must be an "
                                         "integer")


def test_pages_and_markers() -> None:
    items = ["a", "b", "c", "d", "e"]
    assert page(items, str, None, 2) == (["a", "b"], "b")
    assert page(items, str, "b", 2) == (["c", "d"], "d")
    assert page(items, str, "d", 2) == (["e"], None)
    assert page(items, str, "bb", 10) == (["c", "d", "e"], None)  # the marker's item went away meanwhile
    versions = ["$LATEST", "1", "2", "10"]
    order = lambda v: (0, 0) if v == "$LATEST" else (1, int(v))  # noqa: E731
    assert page(versions, str, "2", 1, order) == (["10"], None)


def served_operations() -> list[str]:
    """The AWS operations Lamina's Lambda front registers (its own /lamina/ endpoints left out)."""
    import importlib
    import inspect
    import pkgutil

    import lamina.services.lambda_ as package
    from lamina.services.lambda_.router import Router

    router = Router()
    for info in pkgutil.iter_modules(package.__path__):
        module = importlib.import_module(f"{package.__name__}.{info.name}")
        for _, cls in inspect.getmembers(module, inspect.isclass):
            if cls.__module__ == module.__name__ and callable(getattr(cls, "register", None)):
                cls.register(object.__new__(cls), router)  # register only names bound methods
    return sorted({route.operation for route in router.routes if not route.template.startswith("/lamina/")})


def test_every_operation_lamina_serves_goes_through_the_pass() -> None:
    served = served_operations()
    assert len(served) > 30 and "CreateFunction" in served and "ListLayers" in served
    for operation in served:
        assert operation in LAMBDA.operations
        LAMBDA.problems(operation, {})  # compiled at start-up, walkable with nothing given


# ---- the pass alone reproduces AWS's recorded messages --------------------------------------------------------------
RECORDED_CASES = [
    ("CreateFunction", {"Role": "r1", "Code": {}}),
    ("UpdateFunctionConfiguration", {"VpcConfig": {"SecurityGroupIds": ["<security_group_id_2>"]}}),
    ("UpdateFunctionConfiguration", {"VpcConfig": {"SubnetIds": ["<subnet_id_2>"]}}),
    ("UpdateFunctionConfiguration", {"SnapStart": {"ApplyOn": "invalidOption"}}),
    ("UpdateFunctionConfiguration", {"Layers": ["arn:<partition>:lambda:<region>:111111111111:layer:<resource:1>"]}),
    ("UpdateFunctionCode", {"Architectures": ["X86_64"]}),
    ("UpdateFunctionCode", {"Architectures": ["x86_64", "arm64"]}),
    ("PutFunctionRecursionConfig", {"RecursiveLoop": "InvalidValue"}),
    ("CreateFunctionUrlConfig", {"AuthType": "NONE", "InvokeMode": "UNKNOWN"}),
    ("ListFunctions", {"FunctionVersion": "invalid"}),
    ("AddPermission", {"StatementId": "example.com", "Action": "lambda:InvokeFunction", "Principal": "*"}),
    ("GetPolicy", {"Qualifier": "invalid-qualifier-with-?-char"}),
    ("AddLayerVersionPermission", {"StatementId": "s", "Action": "*", "Principal": "*"}),
    ("ListLayers", {"CompatibleArchitecture": "archdoesnotexist"}),
    ("ListLayers", {"CompatibleRuntime": "runtimedoesnotexist"}),
    ("PublishLayerVersion", {"Content": {}, "CompatibleRuntimes": ["invalidruntime"],
                             "CompatibleArchitectures": ["invalidarch"]}),
    ("PutProvisionedConcurrencyConfig", {"Qualifier": "1", "ProvisionedConcurrentExecutions": 0}),
    ("CreateAlias", {"Name": "2024", "FunctionVersion": "1"}),
    ("UpdateAlias", {"Name": "a", "RoutingConfig": {"AdditionalVersionWeights": {"$LATEST": 0.5}}}),
    ("UpdateAlias", {"Name": "a", "RoutingConfig": {"AdditionalVersionWeights": {"2": -1}}}),
    ("PutFunctionEventInvokeConfig", {"DestinationConfig": {"OnFailure": {
        "Destination": "arn:<partition>:_-/!lambda:<region>:111111111111:function:<function-name:1>"}}}),
]


@pytest.mark.parametrize(("operation", "members"), RECORDED_CASES, ids=[f"{op}-{i}" for i, (op, _) in
                                                                         enumerate(RECORDED_CASES)])
def test_recorded_messages(operation: str, members: dict[str, Any]) -> None:
    from tests.unit.test_validation import RECORDINGS, recorded_messages

    if not RECORDINGS.is_dir():
        pytest.skip(f"no AWS recordings at {RECORDINGS}")
    recorded = _RECORDED.setdefault("messages", recorded_messages())
    assert message_of(operation, members) in recorded


_RECORDED: dict[str, set[str]] = {}
