"""Create/update validation: AWS's error codes and exact messages, checked against AWS's recorded responses."""
from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from lamina.control import validation
from lamina.control.runtime_identifiers import (
    DEPRECATED_RUNTIMES,
    NEWER_SUPPORTED_RUNTIMES,
    SUPPORTED_RUNTIMES,
    runtime_status,
)
from lamina.errors import (
    InvalidParameterValueException,
    InvalidRequestContentException,
    LambdaError,
    ValidationException,
    validation_error,
)

RECORDINGS = Path(__file__).resolve().parents[3] / "shared" / "reference" / "aws-recorded"

# ---- AWS's recorded texts, copied verbatim ----------------------------------------------------------------------
ROLE_R1 = (
    "1 validation error detected: Value 'r1' at 'role' failed to satisfy constraint: Member must satisfy regular "
    "expression pattern: arn:(aws[a-zA-Z-]*)?:iam::\\d{12}:role/?[a-zA-Z_0-9+=,.@\\-_/]+"
)
RUNTIME_SET = (
    "[nodejs20.x, python3.14, provided.al2023, python3.12, python3.13, nodejs24.x, nodejs22.x, java25, python3.10, "
    "python3.11, java21, ruby3.3, ruby3.4, ruby3.2, python3.8, python3.9, java17, nodejs16.x, dotnet10, dotnet8, "
    "java11, dotnet6, nodejs18.x, provided.al2, java8.al2]"
)
UNKNOWN_RUNTIME = (
    "Value non-existent-runtime at 'runtime' failed to satisfy constraint: Member must satisfy enum value set: "
    f"{RUNTIME_SET} or be a valid ARN"
)
UPPERCASE_RUNTIME = (
    f"Value PYTHON3.9 at 'runtime' failed to satisfy constraint: Member must satisfy enum value set: {RUNTIME_SET} "
    "or be a valid ARN"
)
MULTIPLE_ARCHITECTURES = (
    "1 validation error detected: Value '[x86_64, arm64]' at 'architectures' failed to satisfy constraint: "
    "Member must have length less than or equal to 1"
)
UPPERCASE_ARCHITECTURE = (
    "1 validation error detected: Value '[X86_64]' at 'architectures' failed to satisfy constraint: Member must "
    "satisfy constraint: [Member must satisfy enum value set: [x86_64, arm64], Member must not be null]"
)
SIX_LAYERS = "Cannot reference more than 5 layers."
RECORDED_LAYER = "arn:<partition>:lambda:<region>:111111111111:layer:<resource:1>"
LAYER_WITHOUT_VERSION = (
    "1 validation error detected: Value '[arn:<partition>:lambda:<region>:111111111111:layer:<resource:1>]' at "
    "'layers' failed to satisfy constraint: Member must satisfy constraint: [Member must have length less than or "
    "equal to 2048, Member must have length greater than or equal to 1, Member must satisfy regular expression "
    "pattern: (arn:(aws[a-zA-Z-]*)?:lambda:(eusc-)?[a-z]{2}((-gov)|(-iso([a-z]?)))?-[a-z]+-\\d{1}:\\d{12}:layer:"
    "[a-zA-Z0-9-_]+:[0-9]+)|(arn:[a-zA-Z0-9-]+:lambda:::awslayer:[a-zA-Z0-9-_]+), Member must not be null]"
)
SAME_LAYER = (
    "Two different versions of the same layer are not allowed to be referenced in the same function. "
    "{0} and {1} are versions of the same layer."
)
SNAP_START = (
    "1 validation error detected: Value 'invalidOption' at 'snapStart.applyOn' failed to satisfy constraint: "
    "Member must satisfy enum value set: [PublishedVersions, None]"
)
IMAGE_URI_ON_ZIP_UPDATE = "Please don't provide ImageUri when updating a function with packageType Zip."
DEPRECATED = (
    "The runtime parameter of {} is no longer supported for creating or updating AWS Lambda functions. "
    "We recommend you use a supported runtime while creating or updating functions."
)
TOO_LARGE = (
    "Lambda was unable to configure your environment variables because the environment variables you have "
    "provided exceeded the 4KB limit. String measured: {}"
)
# The recorded 4 KB failures measured 4097 bytes; these are the same maps.
LARGE_ONE_KEY = {"LARGE_VAR": "x" * 4081}
LARGE_TWO_KEYS = {"SMALL_VAR": "ok", "LARGE_VAR": "x" * 4064}

# ---- AWS's texts known from its documentation and from third-party transcripts, not from the recording ----------
RESERVED = (
    "Lambda was unable to configure your environment variables because the environment variables you have "
    "provided contains reserved keys that are currently not supported for modification. Reserved keys used in this "
    "request: {}"
)
ENV_KEY_PATTERN = (
    "1 validation error detected: Value at 'environment.variables' failed to satisfy constraint: Map keys must "
    "satisfy constraint: [Member must satisfy regular expression pattern: [a-zA-Z]([a-zA-Z0-9_])+]"
)
MEMORY_QUOTA = "'MemorySize' value failed to satisfy constraint: Member must have value less than or equal to 10240"
RUNTIME_AND_HANDLER = "Runtime and Handler are mandatory parameters for functions created with deployment packages."
NO_SOURCE = "Please provide a source for function code."
ZIP_NOT_ALONE = "Please do not provide other FunctionCode parameters when providing a ZipFile."

ROLE = "arn:aws:iam::123456789012:role/lambda-role"
ZIP = "UEsFBgAAAAAAAAAAAAAAAAAAAAAAAA=="
DROP = object()


def layer(name: str, version: int) -> str:
    return f"arn:aws:lambda:us-east-1:123456789012:layer:{name}:{version}"


def create_body(**changes: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "FunctionName": "fn",
        "Role": ROLE,
        "Runtime": "python3.12",
        "Handler": "app.handler",
        "Code": {"ZipFile": ZIP},
    }
    body.update(changes)
    return {key: value for key, value in body.items() if value is not DROP}


def problem(value: str, field: str, constraint: str) -> str:
    return f"Value {value} at '{field}' failed to satisfy constraint: {constraint}"


def one(value: str, field: str, constraint: str) -> str:
    return f"1 validation error detected: {problem(value, field, constraint)}"


def raised(call: Any, body: Any) -> LambdaError:
    with pytest.raises(LambdaError) as caught:
        call(body)
    return caught.value


# ---- CreateFunction ------------------------------------------------------------------------------------------------
CREATE_FAILURES = [
    # recorded
    ("role", {"Role": "r1"}, ValidationException, ROLE_R1),
    ("unknown runtime", {"Runtime": "non-existent-runtime"}, InvalidParameterValueException, UNKNOWN_RUNTIME),
    ("runtime is case-sensitive", {"Runtime": "PYTHON3.9"}, InvalidParameterValueException, UPPERCASE_RUNTIME),
    ("two architectures", {"Architectures": ["x86_64", "arm64"]}, ValidationException, MULTIPLE_ARCHITECTURES),
    ("architecture case", {"Architectures": ["X86_64"]}, ValidationException, UPPERCASE_ARCHITECTURE),
    ("six layers", {"Layers": [layer(f"l{i}", 1) for i in range(6)]}, InvalidParameterValueException, SIX_LAYERS),
    ("layer without version", {"Layers": [RECORDED_LAYER]}, ValidationException, LAYER_WITHOUT_VERSION),
    (
        "two versions of a layer",
        {"Layers": [layer("a", 1), layer("b", 1), layer("a", 2)]},
        InvalidParameterValueException,
        SAME_LAYER.format(layer("a", 1), layer("a", 2)),
    ),
    (
        "the same layer version twice",
        {"Layers": [layer("a", 1), layer("a", 1)]},
        InvalidParameterValueException,
        SAME_LAYER.format(layer("a", 1), layer("a", 1)),
    ),
    ("snap start", {"SnapStart": {"ApplyOn": "invalidOption"}}, ValidationException, SNAP_START),
    (
        "environment over 4 KB",
        {"Environment": {"Variables": LARGE_ONE_KEY}},
        InvalidParameterValueException,
        TOO_LARGE.format(json.dumps(LARGE_ONE_KEY, separators=(",", ":"))),
    ),
    (
        "environment over 4 KB, measured in request order",
        {"Environment": {"Variables": LARGE_TWO_KEYS}},
        InvalidParameterValueException,
        TOO_LARGE.format('{"SMALL_VAR":"ok","LARGE_VAR":"' + "x" * 4064 + '"}'),
    ),
    # documented or transcribed AWS texts
    ("memory quota", {"MemorySize": 10241}, InvalidParameterValueException, MEMORY_QUOTA),
    (
        "reserved key",
        {"Environment": {"Variables": {"GREETING": "hi", "AWS_REGION": "eu-west-1"}}},
        InvalidParameterValueException,
        RESERVED.format("AWS_REGION"),
    ),
    (
        "reserved keys in the documentation's order",
        {"Environment": {"Variables": {"AWS_SECRET_ACCESS_KEY": "s", "AWS_ACCESS_KEY_ID": "a", "AWS_REGION": "r"}}},
        InvalidParameterValueException,
        RESERVED.format("AWS_REGION, AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY"),
    ),
    ("environment key pattern", {"Environment": {"Variables": {"my-var": "1"}}}, ValidationException, ENV_KEY_PATTERN),
    ("one-letter environment key", {"Environment": {"Variables": {"A": "1"}}}, ValidationException, ENV_KEY_PATTERN),
    ("no runtime", {"Runtime": DROP}, InvalidParameterValueException, RUNTIME_AND_HANDLER),
    ("no handler", {"Handler": DROP}, InvalidParameterValueException, RUNTIME_AND_HANDLER),
    ("deprecated runtime", {"Runtime": "nodejs4.3"}, InvalidParameterValueException, DEPRECATED.format("nodejs4.3")),
    ("empty code", {"Code": {}}, InvalidParameterValueException, NO_SOURCE),
    ("bucket without key", {"Code": {"S3Bucket": "my-bucket"}}, InvalidParameterValueException, NO_SOURCE),
    ("zip and s3", {"Code": {"ZipFile": ZIP, "S3Bucket": "b-1"}}, InvalidParameterValueException, ZIP_NOT_ALONE),
    ("zip and image", {"Code": {"ZipFile": ZIP, "ImageUri": "img"}}, InvalidParameterValueException, ZIP_NOT_ALONE),
    (
        "image uri on a zip function",
        {"Code": {"ImageUri": "123456789012.dkr.ecr.us-east-1.amazonaws.com/fn:latest"}},
        InvalidParameterValueException,
        "Please don't provide ImageUri when creating a function with packageType Zip.",
    ),
    # the model's constraints in AWS's standard form
    ("handler with a space", {"Handler": "app handler"}, ValidationException,
     one("'app handler'", "handler", "Member must satisfy regular expression pattern: [^\\s]+")),
    ("empty handler", {"Handler": ""}, ValidationException,
     one("''", "handler", "Member must satisfy regular expression pattern: [^\\s]+")),
    ("long handler", {"Handler": "h" * 129}, ValidationException,
     one(f"'{'h' * 129}'", "handler", "Member must have length less than or equal to 128")),
    ("long description", {"Description": "d" * 257}, ValidationException,
     one(f"'{'d' * 257}'", "description", "Member must have length less than or equal to 256")),
    ("description counted in UTF-16 units", {"Description": "\U0001F600" * 129}, ValidationException,
     one(f"'{chr(0x1F600) * 129}'", "description", "Member must have length less than or equal to 256")),
    ("timeout 0", {"Timeout": 0}, ValidationException,
     one("'0'", "timeout", "Member must have value greater than or equal to 1")),
    ("timeout 901", {"Timeout": 901}, ValidationException,
     one("'901'", "timeout", "Member must have value less than or equal to 900")),
    ("memory 127", {"MemorySize": 127}, ValidationException,
     one("'127'", "memorySize", "Member must have value greater than or equal to 128")),
    ("memory above the model", {"MemorySize": 32769}, ValidationException,
     one("'32769'", "memorySize", "Member must have value less than or equal to 32768")),
    ("ephemeral 511", {"EphemeralStorage": {"Size": 511}}, ValidationException,
     one("'511'", "ephemeralStorage.size", "Member must have value greater than or equal to 512")),
    ("ephemeral 10241", {"EphemeralStorage": {"Size": 10241}}, ValidationException,
     one("'10241'", "ephemeralStorage.size", "Member must have value less than or equal to 10240")),
    ("ephemeral without size", {"EphemeralStorage": {}}, ValidationException,
     one("null", "ephemeralStorage.size", "Member must not be null")),
    ("no architectures", {"Architectures": []}, ValidationException,
     one("'[]'", "architectures", "Member must have length greater than or equal to 1")),
    ("package type case", {"PackageType": "zip"}, ValidationException,
     one("'zip'", "packageType", "Member must satisfy enum value set: [Zip, Image]")),
    ("tracing mode", {"TracingConfig": {"Mode": "active"}}, ValidationException,
     one("'active'", "tracingConfig.mode", "Member must satisfy enum value set: [Active, PassThrough]")),
    ("log format", {"LoggingConfig": {"LogFormat": "json"}}, ValidationException,
     one("'json'", "loggingConfig.logFormat", "Member must satisfy enum value set: [JSON, Text]")),
    ("application log level", {"LoggingConfig": {"ApplicationLogLevel": "info"}}, ValidationException,
     one("'info'", "loggingConfig.applicationLogLevel",
         "Member must satisfy enum value set: [TRACE, DEBUG, INFO, WARN, ERROR, FATAL]")),
    ("system log level", {"LoggingConfig": {"SystemLogLevel": "TRACE"}}, ValidationException,
     one("'TRACE'", "loggingConfig.systemLogLevel", "Member must satisfy enum value set: [DEBUG, INFO, WARN]")),
    ("log group", {"LoggingConfig": {"LogGroup": "my group"}}, ValidationException,
     one("'my group'", "loggingConfig.logGroup",
         "Member must satisfy regular expression pattern: [\\.\\-_/#A-Za-z0-9]+")),
    ("short bucket name", {"Code": {"S3Bucket": "ab", "S3Key": "k"}}, ValidationException,
     one("'ab'", "code.s3Bucket", "Member must have length greater than or equal to 3")),
    ("bucket name ending in a dot", {"Code": {"S3Bucket": "bucket.", "S3Key": "k"}}, ValidationException,
     one("'bucket.'", "code.s3Bucket", "Member must satisfy regular expression pattern: [0-9A-Za-z\\.\\-_]*(?<!\\.)")),
    ("dead letter target", {"DeadLetterConfig": {"TargetArn": "queue"}}, ValidationException,
     one("'queue'", "deadLetterConfig.targetArn",
         "Member must satisfy regular expression pattern: (arn:(aws[a-zA-Z-]*)?:[a-z0-9-.]+:.*)|()")),
    ("required members", {"Role": DROP, "Code": None}, ValidationException,
     "2 validation errors detected: " + problem("null", "role", "Member must not be null") + "; "
     + problem("null", "code", "Member must not be null")),
    (
        "every model error at once, in the model's member order",
        {"Architectures": ["arm64", "x86_64"], "MemorySize": 64, "Role": "r1"},
        ValidationException,
        "3 validation errors detected: "
        + ROLE_R1.removeprefix("1 validation error detected: ") + "; "
        + problem("'64'", "memorySize", "Member must have value greater than or equal to 128") + "; "
        + problem("'[arm64, x86_64]'", "architectures", "Member must have length less than or equal to 1"),
    ),
    ("lamina runs zip packages only", {"PackageType": "Image"}, InvalidParameterValueException,
     "Lamina does not support PackageType Image (container images): package the function as a .zip archive with "
     "PackageType Zip."),
]


@pytest.mark.parametrize(("changes", "error", "message"), [case[1:] for case in CREATE_FAILURES],
                         ids=[case[0] for case in CREATE_FAILURES])
def test_create_function_refusals(changes: dict[str, Any], error: type[LambdaError], message: str) -> None:
    caught = raised(validation.validate_create_function, create_body(**changes))
    assert (type(caught), caught.message) == (error, message)


@pytest.mark.parametrize(
    "runtime", ["java8", "go1.x", "provided", "ruby2.7", "nodejs14.x", "python3.7", "dotnetcore3.1", "nodejs12.x"]
)
def test_recorded_deprecated_runtimes_are_refused(runtime: str) -> None:
    caught = raised(validation.validate_create_function, create_body(Runtime=runtime))
    assert (type(caught), caught.message) == (InvalidParameterValueException, DEPRECATED.format(runtime))


def test_a_complete_valid_request_passes() -> None:
    near_limit = {"BIG": "v" * (4096 - len('{"BIG":"","TZ":"UTC"}')), "TZ": "UTC"}
    validation.validate_create_function(
        create_body(
            Runtime="nodejs22.x",
            Handler="index.handler",
            Code={"S3Bucket": "my.code-bucket_1", "S3Key": "fn.zip", "S3ObjectVersion": "3"},
            Description="d" * 256,
            Timeout=900,
            MemorySize=10240,
            Publish=True,
            PackageType="Zip",
            DeadLetterConfig={"TargetArn": "arn:aws:sqs:us-east-1:123456789012:dlq"},
            Environment={"Variables": near_limit},
            TracingConfig={"Mode": "Active"},
            Tags={"team": "core"},
            Layers=[layer(f"l{i}", i + 1) for i in range(5)],
            Architectures=["arm64"],
            EphemeralStorage={"Size": 10240},
            SnapStart={"ApplyOn": "None"},
            LoggingConfig={"LogFormat": "JSON", "ApplicationLogLevel": "WARN", "SystemLogLevel": "DEBUG",
                           "LogGroup": "/aws/lambda/custom#1"},
            SomethingNew={"ignored": True},
        )
    )


def test_null_members_count_as_absent() -> None:
    validation.validate_create_function(create_body(MemorySize=None, Environment=None, Layers=None, Description=None))


@pytest.mark.parametrize(
    ("body", "message"),
    [
        (None, "expected an object for the request body, got null."),
        ([], "expected an object for the request body, got a list."),
        (create_body(MemorySize="256"), "expected an integer for MemorySize, got a string."),
        (create_body(Timeout=True), "expected an integer for Timeout, got a boolean."),
        (create_body(Timeout=3.5), "expected an integer for Timeout, got a number."),
        (create_body(Timeout=2**31), "Timeout is out of range for a 32-bit integer."),
        (create_body(Code="UEsFBg=="), "expected an object for Code, got a string."),
        (create_body(Layers=layer("a", 1)), "expected a list for Layers, got a string."),
        (create_body(Layers=[7]), "expected a string for Layers[0], got a number."),
        (
            create_body(Environment={"Variables": {"N": 5}}),
            "expected a string for Environment.Variables.N, got a number.",
        ),
        (create_body(Publish="yes"), "expected a boolean for Publish, got a string."),
        (create_body(EphemeralStorage={"Size": "1"}), "expected an integer for EphemeralStorage.Size, got a string."),
    ],
    ids=["null body", "list body", "string memory", "bool timeout", "float timeout", "int32 overflow", "string code",
         "string layers", "number layer", "number env value", "string publish", "string ephemeral size"],
)
def test_wrong_json_types_are_a_clean_400(body: Any, message: str) -> None:
    caught = raised(validation.validate_create_function, body)
    assert type(caught) is InvalidRequestContentException
    assert caught.status == 400
    assert caught.message == f"Could not parse request body into json: {message}"


def test_environment_key_errors_never_echo_the_variables() -> None:
    caught = raised(validation.validate_create_function,
                    create_body(Environment={"Variables": {"bad-key": "s3cr3t", "OK_KEY": "hunter2"}}))
    assert "bad-key" not in caught.message and "s3cr3t" not in caught.message and "hunter2" not in caught.message


# ---- UpdateFunctionConfiguration ----------------------------------------------------------------------------------
UPDATE_CONFIGURATION_FAILURES = [
    ("role", {"Role": "r1"}, ValidationException, ROLE_R1),
    ("unknown runtime", {"Runtime": "non-existent-runtime"}, InvalidParameterValueException, UNKNOWN_RUNTIME),
    ("runtime is case-sensitive", {"Runtime": "PYTHON3.9"}, InvalidParameterValueException, UPPERCASE_RUNTIME),
    ("deprecated runtime", {"Runtime": "python3.7"}, InvalidParameterValueException, DEPRECATED.format("python3.7")),
    ("memory quota", {"MemorySize": 20000}, InvalidParameterValueException, MEMORY_QUOTA),
    ("six layers", {"Layers": [layer(f"l{i}", 1) for i in range(6)]}, InvalidParameterValueException, SIX_LAYERS),
    ("reserved key", {"Environment": {"Variables": {"LAMBDA_TASK_ROOT": "x"}}}, InvalidParameterValueException,
     RESERVED.format("LAMBDA_TASK_ROOT")),
    # `_HANDLER` is reserved too, but a leading underscore already breaks the key pattern
    ("underscore key", {"Environment": {"Variables": {"_HANDLER": "x"}}}, ValidationException, ENV_KEY_PATTERN),
    ("environment over 4 KB", {"Environment": {"Variables": LARGE_TWO_KEYS}}, InvalidParameterValueException,
     TOO_LARGE.format(json.dumps(LARGE_TWO_KEYS, separators=(",", ":")))),
    ("timeout 901", {"Timeout": 901}, ValidationException,
     one("'901'", "timeout", "Member must have value less than or equal to 900")),
    ("empty handler", {"Handler": ""}, ValidationException,
     one("''", "handler", "Member must satisfy regular expression pattern: [^\\s]+")),
]


@pytest.mark.parametrize(("changes", "error", "message"), [case[1:] for case in UPDATE_CONFIGURATION_FAILURES],
                         ids=[case[0] for case in UPDATE_CONFIGURATION_FAILURES])
def test_update_configuration_refusals(changes: dict[str, Any], error: type[LambdaError], message: str) -> None:
    caught = raised(validation.validate_update_configuration, changes)
    assert (type(caught), caught.message) == (error, message)


@pytest.mark.parametrize(
    "body",
    [
        {},
        {"Runtime": "ruby4.0"},
        {"Handler": "main.handler", "MemorySize": 1769, "Timeout": 1, "Environment": {"Variables": {}}},
        {"Environment": {"Variables": {"TZ": "Europe/Paris", "LANG": "C.UTF-8", "AWS_LAMBDA_EXEC_WRAPPER": "/opt/w",
                                       "AWS_XRAY_CONTEXT_MISSING": "IGNORE_ERROR", "PATH": "/opt/bin:/usr/bin"}}},
        {"Architectures": ["sparc"]},  # not a member of UpdateFunctionConfiguration: ignored, as AWS does
    ],
    ids=["empty", "newest runtime", "settings", "settable variables", "unknown member"],
)
def test_valid_configuration_updates_pass(body: dict[str, Any]) -> None:
    validation.validate_update_configuration(body)


# ---- UpdateFunctionCode ---------------------------------------------------------------------------------------------
UPDATE_CODE_FAILURES = [
    ("image uri", {"ImageUri": "123456789012.dkr.ecr.us-east-1.amazonaws.com/fn:1"}, InvalidParameterValueException,
     IMAGE_URI_ON_ZIP_UPDATE),
    ("no source", {"Publish": True}, InvalidParameterValueException, NO_SOURCE),
    ("key without bucket", {"S3Key": "fn.zip"}, InvalidParameterValueException, NO_SOURCE),
    ("zip and s3", {"ZipFile": ZIP, "S3Key": "fn.zip"}, InvalidParameterValueException, ZIP_NOT_ALONE),
    ("two architectures", {"ZipFile": ZIP, "Architectures": ["x86_64", "arm64"]}, ValidationException,
     MULTIPLE_ARCHITECTURES),
    ("short bucket name", {"S3Bucket": "ab", "S3Key": "k"}, ValidationException,
     one("'ab'", "s3Bucket", "Member must have length greater than or equal to 3")),
    ("empty key", {"S3Bucket": "bucket", "S3Key": ""}, ValidationException,
     one("''", "s3Key", "Member must have length greater than or equal to 1")),
    ("string dry run", {"ZipFile": ZIP, "DryRun": "yes"}, InvalidRequestContentException,
     "Could not parse request body into json: expected a boolean for DryRun, got a string."),
]


@pytest.mark.parametrize(("body", "error", "message"), [case[1:] for case in UPDATE_CODE_FAILURES],
                         ids=[case[0] for case in UPDATE_CODE_FAILURES])
def test_update_code_refusals(body: dict[str, Any], error: type[LambdaError], message: str) -> None:
    caught = raised(validation.validate_update_code, body)
    assert (type(caught), caught.message) == (error, message)


@pytest.mark.parametrize(
    "body",
    [{"ZipFile": ZIP, "Publish": True, "Architectures": ["arm64"]}, {"S3Bucket": "bucket", "S3Key": "a/b.zip"}],
    ids=["zip", "s3"],
)
def test_valid_code_updates_pass(body: dict[str, Any]) -> None:
    validation.validate_update_code(body)


# ---- environment ----------------------------------------------------------------------------------------------------
def test_environment_limit_is_4096_bytes_of_compact_json() -> None:
    fits = {"KEY": "x" * (4096 - len('{"KEY":""}'))}
    validation.validate_environment(fits)
    over = {"KEY": fits["KEY"] + "x"}
    caught = raised(validation.validate_environment, over)
    assert caught.message == TOO_LARGE.format(json.dumps(over, separators=(",", ":")))


def test_environment_limit_counts_utf8_bytes() -> None:
    two_byte = {"KEY": "é" * 2043}  # 2043 characters, 4086 bytes: 4096 with the JSON around them
    validation.validate_environment(two_byte)
    caught = raised(validation.validate_environment, {"KEY": "é" * 2044})
    assert caught.message == TOO_LARGE.format('{"KEY":"' + "é" * 2044 + '"}')


def test_environment_key_pattern_comes_first() -> None:
    caught = raised(validation.validate_environment, {"1ST": "x", "AWS_REGION": "y"})
    assert (type(caught), caught.message) == (ValidationException, ENV_KEY_PATTERN)


def test_reserved_keys_are_the_documented_ones() -> None:
    documented = {
        "_HANDLER", "_X_AMZN_TRACE_ID", "AWS_DEFAULT_REGION", "AWS_REGION", "AWS_EXECUTION_ENV",
        "AWS_LAMBDA_FUNCTION_NAME", "AWS_LAMBDA_FUNCTION_MEMORY_SIZE", "AWS_LAMBDA_FUNCTION_VERSION",
        "AWS_LAMBDA_INITIALIZATION_TYPE", "AWS_LAMBDA_LOG_GROUP_NAME", "AWS_LAMBDA_LOG_STREAM_NAME", "AWS_ACCESS_KEY",
        "AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "AWS_LAMBDA_RUNTIME_API",
        "LAMBDA_TASK_ROOT", "LAMBDA_RUNTIME_DIR",
    }
    assert validation.RESERVED_ENVIRONMENT_KEYS == documented
    for key in sorted(documented):
        caught = raised(validation.validate_environment, {key: "v"})
        # `_HANDLER` and `_X_AMZN_TRACE_ID` fail the key pattern before the reserved-key rule is reached
        assert caught.message == (ENV_KEY_PATTERN if key.startswith("_") else RESERVED.format(key))


# ---- runtimes -------------------------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("runtime", "status"),
    [("python3.12", "supported"), ("nodejs22.x", "supported"), ("provided.al2023", "supported"),
     ("ruby4.0", "supported"), ("python3.7", "deprecated"), ("go1.x", "deprecated"), ("nodejs", "deprecated"),
     ("PYTHON3.9", "unknown"), ("python3.99", "unknown"), ("", "unknown")],
)
def test_runtime_status(runtime: str, status: str) -> None:
    assert runtime_status(runtime) == status
    assert validation.runtime_status(runtime) == status


def test_catalog_runtimes_are_all_known_to_the_service_model() -> None:
    """Newer botocore releases add runtimes, so the model may know more than the catalog, never less."""
    session = pytest.importorskip("botocore.session")
    model = session.get_session().get_service_model("lambda")
    assert set(SUPPORTED_RUNTIMES + NEWER_SUPPORTED_RUNTIMES + DEPRECATED_RUNTIMES) <= set(model.shape_for("Runtime").enum)
    assert not set(SUPPORTED_RUNTIMES + NEWER_SUPPORTED_RUNTIMES) & set(DEPRECATED_RUNTIMES)


def test_single_errors_use_the_shared_format() -> None:
    caught = raised(validation.validate_update_configuration, {"Timeout": 0})
    assert caught.message == validation_error(0, "timeout", "Member must have value greater than or equal to 1").message


# ---- the texts above are AWS's -----------------------------------------------------------------------------------
def recorded_messages() -> set[str]:
    messages: set[str] = set()

    def walk(node: Any) -> None:
        if isinstance(node, dict):
            error = node.get("Error")
            if isinstance(error, dict) and isinstance(error.get("Message"), str):
                messages.add(error["Message"])
            for child in node.values():
                walk(child)
        elif isinstance(node, list):
            for child in node:
                walk(child)

    for path in RECORDINGS.glob("*.snapshot.json"):
        walk(json.loads(path.read_text()))
    return messages


def test_embedded_texts_are_the_recorded_ones() -> None:
    if not RECORDINGS.is_dir():
        pytest.skip(f"no AWS recordings at {RECORDINGS}")
    recorded = recorded_messages()
    placeholder = "arn:<partition>:lambda:<region>:111111111111:layer:<resource:1>"
    expected = [
        ROLE_R1, UNKNOWN_RUNTIME, UPPERCASE_RUNTIME, MULTIPLE_ARCHITECTURES, UPPERCASE_ARCHITECTURE, SIX_LAYERS,
        LAYER_WITHOUT_VERSION, SNAP_START, IMAGE_URI_ON_ZIP_UPDATE,
        SAME_LAYER.format(f"{placeholder}:1", f"{placeholder}:2"),
        SAME_LAYER.format(f"{placeholder}:1", f"{placeholder}:1"),
        TOO_LARGE.format(json.dumps(LARGE_ONE_KEY, separators=(",", ":"))),
        TOO_LARGE.format(json.dumps(LARGE_TWO_KEYS, separators=(",", ":"))),
        *(DEPRECATED.format(runtime) for runtime in ("java8", "go1.x", "provided", "python3.7", "nodejs12.x")),
    ]
    assert [text for text in expected if text not in recorded] == []
