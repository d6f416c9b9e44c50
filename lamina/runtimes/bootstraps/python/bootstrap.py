"""Lamina's Python runtime: runs a `module.function` handler against the Lambda Runtime API 2018-06-01.

Lamina starts it as `<python> <runtime dir>/python/bootstrap.py` with cwd = LAMBDA_TASK_ROOT. Everything a function can
observe mirrors awslambdaric 4.2.2, the client behind AWS's managed Python runtimes: handler resolution with its init
error types and messages, the context object, JSON result encoding, error payloads and log formats.

It is one stdlib-only file on purpose: it must run unchanged on Python 3.9 to 3.13, and every module it imported from
beside itself would take a name in `sys.modules` that the function's own code might need.
"""
from __future__ import annotations

import importlib
import json
import logging
import math
import os
import socket
import sys
import time

# Every import here is paid on each cold start: typing is for annotations only, traceback only on errors.
TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any, Callable, NoReturn

_API_PREFIX = "/2018-06-01/runtime/"
_TRACE_ENV = "_X_AMZN_TRACE_ID"
_THIS_FILE = os.path.abspath(__file__)
_USER_AGENT = "aws-lambda-python/{}.{}.{}-lamina".format(*sys.version_info[:3])
_XRAY_CAUSE_LIMIT = 1024 * 1024
_JSON_LOGS = (os.environ.get("AWS_LAMBDA_LOG_FORMAT") or "").upper() == "JSON"  # LoggingConfig LogFormat
# awslambdaric keeps non-ASCII characters as they are only on these runtimes (its Encoder's ensure_ascii switch).
_UNESCAPED_RUNTIMES = {
    "AWS_Lambda_python3.12",
    "AWS_Lambda_python3.13",
    "AWS_Lambda_python3.14",
    "AWS_Lambda_python3.15",
}
_UNHANDLED_WARNING = (
    "LAMBDA_WARNING: Unhandled exception. The most likely cause is an issue in the function code. However, in rare "
    "cases, a Lambda runtime update can cause unexpected function behavior. For functions using managed runtimes, "
    "runtime updates can be triggered by a function change, or can be applied automatically. To determine if the "
    "runtime has been updated, check the runtime version in the INIT_START log entry. If this error correlates with a "
    "change in the runtime version, you may be able to mitigate this error by temporarily rolling back to the previous "
    "runtime version. For more information, see https://docs.aws.amazon.com/lambda/latest/dg/runtimes-update.html\r"
)

# The invocation being handled, read by the log filter; module globals because the loop is single-threaded.
_request_id: str | None = None
_tenant_id: str | None = None


# -- Runtime API client --------------------------------------------------------------------------------------------
class RuntimeApiError(Exception):
    """The Runtime API failed or went away; like awslambdaric, the runtime cannot go on and exits."""


class RuntimeApi:
    """The Runtime API over one keep-alive TCP socket, with a minimal HTTP/1.1 client.

    Hot path: http.client would cost a connection object, an email-parser header parse and a separate round trip per
    request. Here a warm invoke is one sendall (the result plus the pipelined GET /next) and two reads. It relies on
    the Runtime API answering with Content-Length (never chunked) and accepting pipelined requests, as Lamina's does.
    """

    def __init__(self, address: str) -> None:
        host, _, port = address.rpartition(":")
        self._sock = socket.create_connection((host.strip("[]"), int(port)))
        self._sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self._address = address
        self._buffer = b""
        self._next_request = (
            f"GET {_API_PREFIX}invocation/next HTTP/1.1\r\nHost: {address}\r\nUser-Agent: {_USER_AGENT}\r\n\r\n"
        ).encode()

    def next_invocation(self) -> tuple[dict[str, str], bytes]:
        self._sock.sendall(self._next_request)
        return self._read_invocation()

    def complete(
        self, request_id: str, outcome: str, body: bytes, content_type: str, extra: str
    ) -> tuple[dict[str, str], bytes]:
        """Post the invocation's `response` or `error` and, in the same write, ask for the next invocation."""
        head = self._post_head(f"invocation/{request_id}/{outcome}", len(body), content_type, extra)
        self._sock.sendall(b"".join((head, body, self._next_request)))
        status, _, answer = self._read()
        # A 413 means Lamina already failed the invocation with Function.ResponseSizeTooLarge; the runtime is fine.
        if status != 202 and not (status == 413 and outcome == "response"):
            raise RuntimeApiError(f"POST {outcome} for {request_id} failed with {status}: {answer!r}")
        return self._read_invocation()

    def post_init_error(self, body: bytes, error_type: str) -> None:
        extra = f"Lambda-Runtime-Function-Error-Type: {error_type}\r\n"
        head = self._post_head("init/error", len(body), "application/json", extra)
        self._sock.sendall(head + body)
        status, _, answer = self._read()
        if status != 202:
            raise RuntimeApiError(f"POST init/error failed with {status}: {answer!r}")

    def _post_head(self, path: str, length: int, content_type: str, extra: str) -> bytes:
        return (
            f"POST {_API_PREFIX}{path} HTTP/1.1\r\nHost: {self._address}\r\nUser-Agent: {_USER_AGENT}\r\n"
            f"Content-Type: {content_type}\r\nContent-Length: {length}\r\n{extra}\r\n"
        ).encode("utf-8")

    def _read_invocation(self) -> tuple[dict[str, str], bytes]:
        status, headers, body = self._read()
        if status != 200:
            raise RuntimeApiError(f"GET next failed with {status}: {body!r}")
        if not headers.get("lambda-runtime-aws-request-id"):
            raise RuntimeApiError("GET next answered without Lambda-Runtime-Aws-Request-Id")
        return headers, body

    def _read(self) -> tuple[int, dict[str, str], bytes]:
        """Read one response; bytes of a following pipelined response stay buffered for the next call."""
        buffer = self._buffer
        end = buffer.find(b"\r\n\r\n")
        while end < 0:
            buffer += self._recv(65536)
            end = buffer.find(b"\r\n\r\n")
        lines = buffer[:end].decode("utf-8", "replace").split("\r\n")
        status = int(lines[0].split(" ", 2)[1])
        headers = {}
        for line in lines[1:]:
            name, _, value = line.partition(":")
            headers[name.strip().lower()] = value.strip()
        start = end + 4
        stop = start + int(headers.get("content-length", "0"))
        if len(buffer) < stop:
            buffer += self._recv_exactly(stop - len(buffer))
        self._buffer = buffer[stop:]
        return status, headers, buffer[start:stop]

    def _recv(self, size: int) -> bytes:
        chunk = self._sock.recv(size)
        if not chunk:
            raise RuntimeApiError("the Runtime API closed the connection")
        return chunk

    def _recv_exactly(self, size: int) -> bytearray:
        """The rest of a large body straight into one buffer (events can be megabytes)."""
        body = bytearray(size)
        view = memoryview(body)
        filled = 0
        while filled < size:
            received = self._sock.recv_into(view[filled:])
            if not received:
                raise RuntimeApiError("the Runtime API closed the connection")
            filled += received
        return body


# -- errors as awslambdaric reports them ---------------------------------------------------------------------------
class FaultException(Exception):
    """A failure the runtime itself diagnoses; `exception_type` becomes the errorType."""

    MARSHAL_ERROR = "Runtime.MarshalError"
    UNMARSHAL_ERROR = "Runtime.UnmarshalError"
    USER_CODE_SYNTAX_ERROR = "Runtime.UserCodeSyntaxError"
    HANDLER_NOT_FOUND = "Runtime.HandlerNotFound"
    IMPORT_MODULE_ERROR = "Runtime.ImportModuleError"
    BUILT_IN_MODULE_CONFLICT = "Runtime.BuiltInModuleConflict"
    MALFORMED_HANDLER_NAME = "Runtime.MalformedHandlerName"
    LAMBDA_CONTEXT_UNMARSHAL_ERROR = "Runtime.LambdaContextUnmarshalError"

    def __init__(self, exception_type: str, msg: str, trace: list[str] | None = None) -> None:
        super().__init__(msg)
        self.msg = msg
        self.exception_type = exception_type
        self.trace = trace


def make_error(message: str, error_type: str, stack_trace: list[str] | None, request_id: str = "") -> dict[str, Any]:
    return {
        "errorMessage": message or "",
        "errorType": error_type or "",
        "requestId": request_id,
        "stackTrace": stack_trace or [],
    }


def user_frames(tb: Any) -> list[tuple[str, int, str, str]]:
    """The traceback without this file's leading frames, as 4-tuples so format_list prints no column carets."""
    import traceback

    frames = [(frame.filename, frame.lineno, frame.name, frame.line) for frame in traceback.extract_tb(tb)]
    for index, frame in enumerate(frames):
        if frame[0] != _THIS_FILE:
            return frames[index:]
    return frames


def exception_error(exc: BaseException, request_id: str = "") -> tuple[dict[str, Any], list[tuple[str, int, str, str]]]:
    frames = user_frames(exc.__traceback__)
    import traceback

    return make_error(str(exc), type(exc).__name__, traceback.format_list(frames), request_id), frames


def xray_cause(error_type: str, message: str, frames: list[tuple[str, int, str, str]]) -> str:
    """The Lambda-Runtime-Function-XRay-Error-Cause header line awslambdaric sends with invocation errors."""
    cause = {
        "working_directory": os.getcwd(),
        "exceptions": [
            {
                "message": message,
                "type": error_type,
                "stack": [{"label": name, "path": path, "line": line} for path, line, name, _ in frames],
            }
        ],
        "paths": list({path for path, _, _, _ in frames}),
    }
    encoded = json.dumps(cause)
    return f"Lambda-Runtime-Function-XRay-Error-Cause: {encoded}\r\n" if len(encoded) < _XRAY_CAUSE_LIMIT else ""


# -- JSON as awslambdaric's simplejson Encoder writes it -------------------------------------------------------------
class _RawDecimal(Exception):
    """A Decimal needs writing as a bare JSON number, which the stdlib encoder cannot do in one pass."""


def _json_default(value: Any) -> Any:
    from decimal import Decimal

    if isinstance(value, Decimal):
        if value.is_nan():
            return math.nan
        raise _RawDecimal
    if isinstance(value, bytes):
        return value.decode("utf-8")  # simplejson decodes bytes with its default encoding
    raise TypeError(f"Object of type {value.__class__.__name__} is not JSON serializable")


_ENCODER = json.JSONEncoder(
    ensure_ascii=os.environ.get("AWS_EXECUTION_ENV") not in _UNESCAPED_RUNTIMES, default=_json_default
)


def to_json(value: Any) -> str:
    try:
        return _ENCODER.encode(value)
    except _RawDecimal:
        return _to_json_with_decimals(value)


def _to_json_with_decimals(value: Any) -> str:
    """Encode Decimals as placeholder strings, then splice their digits in (simplejson writes them as raw numbers)."""
    import re
    from decimal import Decimal

    marker = os.urandom(8).hex()
    numbers: list[str] = []

    def default(item: Any) -> Any:
        if isinstance(item, Decimal) and not item.is_nan():
            numbers.append(str(item))
            return f"{marker}:{len(numbers) - 1}"
        return _json_default(item)

    encoder = json.JSONEncoder(ensure_ascii=_ENCODER.ensure_ascii, default=default)
    return re.sub(f'"{marker}:(\\d+)"', lambda match: numbers[int(match.group(1))], encoder.encode(value))


def marshal(result: Any) -> tuple[bytes, str]:
    if isinstance(result, bytes):
        return result, "application/unknown"
    try:
        return to_json(result).encode("utf-8"), "application/json"
    except Exception as exc:
        raise FaultException(FaultException.MARSHAL_ERROR, f"Unable to marshal response: {exc}") from None


def unmarshal(body: bytes, content_type: str | None) -> Any:
    if content_type != "application/json":
        return body
    try:
        return json.loads(body)
    except Exception as exc:
        raise FaultException(FaultException.UNMARSHAL_ERROR, f"Unable to unmarshal input: {exc}") from None


# -- the context object ----------------------------------------------------------------------------------------------
_W3C_FIELDS = ("traceparent", "tracestate", "baggage")


class CognitoIdentity:
    __slots__ = ["cognito_identity_id", "cognito_identity_pool_id"]

    def __repr__(self) -> str:
        return (
            f"{self.__class__.__name__}([cognito_identity_id={self.cognito_identity_id},"
            f"cognito_identity_pool_id={self.cognito_identity_pool_id}])"
        )


class Client:
    __slots__ = ["installation_id", "app_title", "app_version_name", "app_version_code", "app_package_name"]

    def __repr__(self) -> str:
        return (
            f"{self.__class__.__name__}([installation_id={self.installation_id},app_title={self.app_title},"
            f"app_version_name={self.app_version_name},app_version_code={self.app_version_code},"
            f"app_package_name={self.app_package_name}])"
        )


class ClientContext:
    __slots__ = ["custom", "env", "client"]

    def __repr__(self) -> str:
        return f"{self.__class__.__name__}([custom={self.custom},env={self.env},client={self.client}])"


def _from_dict(cls: type, values: dict[str, Any] | None) -> Any:
    if values is None:
        return None
    obj = cls()
    for name in cls.__slots__:
        setattr(obj, name, values.get(name))
    return obj


class LambdaContext:
    """The handler's second argument, with awslambdaric's attributes, types (memory is a str) and repr."""

    def __init__(
        self,
        invoke_id: str,
        client_context: dict[str, Any] | None,
        cognito_identity: dict[str, Any] | None,
        epoch_deadline_time_in_ms: int,
        invoked_function_arn: str | None = None,
        tenant_id: str | None = None,
    ) -> None:
        environ = os.environ
        self.aws_request_id = invoke_id
        self.log_group_name = environ.get("AWS_LAMBDA_LOG_GROUP_NAME")
        self.log_stream_name = environ.get("AWS_LAMBDA_LOG_STREAM_NAME")
        self.function_name = environ.get("AWS_LAMBDA_FUNCTION_NAME")
        self.memory_limit_in_mb = environ.get("AWS_LAMBDA_FUNCTION_MEMORY_SIZE")
        self.function_version = environ.get("AWS_LAMBDA_FUNCTION_VERSION")
        self.invoked_function_arn = invoked_function_arn
        self.tenant_id = tenant_id
        self._w3c_fields = self._pop_w3c(client_context)
        self.client_context = _from_dict(ClientContext, client_context)
        if self.client_context is not None:
            self.client_context.client = _from_dict(Client, self.client_context.client)
        self.identity = _from_dict(CognitoIdentity, {})
        if cognito_identity is not None:
            self.identity.cognito_identity_id = cognito_identity.get("cognitoIdentityId")
            self.identity.cognito_identity_pool_id = cognito_identity.get("cognitoIdentityPoolId")
        self._epoch_deadline_time_in_ms = epoch_deadline_time_in_ms

    def get_remaining_time_in_millis(self) -> int:
        remaining = self._epoch_deadline_time_in_ms - int(time.time() * 1000)
        return remaining if remaining > 0 else 0

    def w3c(self) -> dict[str, str]:
        """The W3C trace context the caller sent under the client context's `w3c` key."""
        return dict(self._w3c_fields)

    @staticmethod
    def _pop_w3c(client_context: dict[str, Any] | None) -> dict[str, str]:
        if not isinstance(client_context, dict) or "w3c" not in client_context:
            return {}
        raw = client_context.pop("w3c")
        if not isinstance(raw, dict):
            return {}
        return {key: raw[key] for key in _W3C_FIELDS if isinstance(raw.get(key), str)}

    def log(self, msg: Any) -> None:
        sys.stdout.write(str(msg))

    def __repr__(self) -> str:
        return (
            f"{self.__class__.__name__}([aws_request_id={self.aws_request_id},log_group_name={self.log_group_name},"
            f"log_stream_name={self.log_stream_name},function_name={self.function_name},"
            f"memory_limit_in_mb={self.memory_limit_in_mb},function_version={self.function_version},"
            f"invoked_function_arn={self.invoked_function_arn},client_context={self.client_context},"
            f"identity={self.identity},tenant_id={self.tenant_id}])"
        )


def _parse_json_header(value: str, name: str) -> Any:
    try:
        return json.loads(value)
    except Exception as exc:
        raise FaultException(
            FaultException.LAMBDA_CONTEXT_UNMARSHAL_ERROR, f"Unable to parse {name} JSON: {exc}"
        ) from None


def make_context(request_id: str, headers: dict[str, str]) -> LambdaContext:
    client_context = headers.get("lambda-runtime-client-context")
    identity = headers.get("lambda-runtime-cognito-identity")
    return LambdaContext(
        request_id,
        _parse_json_header(client_context, "Client Context") if client_context else None,
        _parse_json_header(identity, "Cognito Identity") if identity else None,
        int(headers.get("lambda-runtime-deadline-ms") or 0),
        headers.get("lambda-runtime-invoked-function-arn"),
        headers.get("lambda-runtime-aws-tenant-id"),
    )


# -- logging ---------------------------------------------------------------------------------------------------------
class Unbuffered:
    """Flushes on every write, so the log holds everything printed before the result is posted (or the process dies)."""

    def __init__(self, stream: Any) -> None:
        self.stream = stream

    def __getattr__(self, attr: str) -> Any:
        return getattr(self.stream, attr)

    def write(self, msg: str) -> None:
        self.stream.write(msg)
        self.stream.flush()

    def writelines(self, msgs: Any) -> None:
        self.stream.writelines(msgs)
        self.stream.flush()


class LambdaLoggerHandler(logging.Handler):
    def emit(self, record: logging.LogRecord) -> None:
        sys.stdout.write(self.format(record))


class LambdaLoggerFilter(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        record.aws_request_id = _request_id or ""
        record.tenant_id = _tenant_id
        return True


_JSON_RESERVED = {
    "name", "msg", "args", "levelname", "levelno", "pathname", "filename", "module", "exc_info", "exc_text",
    "stack_info", "lineno", "funcName", "created", "msecs", "relativeCreated", "thread", "threadName",
    "processName", "process", "aws_request_id", "tenant_id", "_frame_type",
}  # fmt: skip


class JsonFormatter(logging.Formatter):
    """awslambdaric's formatter for LoggingConfig LogFormat=JSON."""

    _encode = json.JSONEncoder(ensure_ascii=False, default=str).encode

    def __init__(self) -> None:
        super().__init__(datefmt="%Y-%m-%dT%H:%M:%SZ")

    def format(self, record: logging.LogRecord) -> str:
        import traceback

        record.levelno = min(50, max(0, record.levelno)) // 10 * 10
        record.levelname = logging.getLevelName(record.levelno)
        # `exc_info=True` outside an except block gives (None, None, None), which awslambdaric trips over.
        exc_info = record.exc_info if record.exc_info and record.exc_info[0] is not None else None
        message = record.msg if isinstance(record.msg, dict) and not record.args else record.getMessage()
        result = {
            "timestamp": self.formatTime(record, self.datefmt),
            "level": record.levelname,
            "message": message,
            "logger": record.name,
            "stackTrace": traceback.format_tb(exc_info[2]) if exc_info else None,
            "errorType": exc_info[0].__name__ if exc_info else None,
            "errorMessage": str(exc_info[1]) if exc_info else None,
            "requestId": getattr(record, "aws_request_id", None),
            "location": f"{record.pathname}:{record.funcName}:{record.lineno}" if exc_info else None,
        }
        if getattr(record, "tenant_id", None) is not None:
            result["tenantId"] = record.tenant_id
        result.update(
            (key, value) for key, value in record.__dict__.items() if key not in _JSON_RESERVED and key not in result
        )
        return self._encode({key: value for key, value in result.items() if value is not None}) + "\n"


def setup_logging() -> None:
    sys.stdout = Unbuffered(sys.stdout)
    sys.stderr = Unbuffered(sys.stderr)
    logging.Formatter.converter = time.gmtime
    handler = LambdaLoggerHandler()
    if _JSON_LOGS:
        handler.setFormatter(JsonFormatter())
    else:
        handler.setFormatter(
            logging.Formatter(
                "[%(levelname)s]\t%(asctime)s.%(msecs)03dZ\t%(aws_request_id)s\t%(message)s\n", "%Y-%m-%dT%H:%M:%S"
            )
        )
    level = os.environ.get("AWS_LAMBDA_LOG_LEVEL")
    level = {None: "", "TRACE": "DEBUG"}.get(level, level).upper()
    root = logging.getLogger()
    if isinstance(logging.getLevelName(level), int):  # a known level name; anything else is ignored
        root.setLevel(level)
    handler.addFilter(LambdaLoggerFilter())
    root.addHandler(handler)


def _indent(line: str) -> str:
    """Swap leading spaces for NO-BREAK SPACEs, as awslambdaric does, so log viewers keep the traceback indent."""
    stripped = line.lstrip(" ")
    return "\u00a0" * (len(line) - len(stripped)) + stripped


def log_error(error: dict[str, Any]) -> None:
    if _JSON_LOGS:
        stamped = {"timestamp": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()), "level": "ERROR", **error}
        sys.stdout.write(to_json(stamped) + "\n")
        return
    description = "[ERROR]"
    if error["errorType"]:
        description += " " + error["errorType"]
    if error["errorMessage"]:
        if error["errorType"]:
            description += ":"
        description += " " + error["errorMessage"]
    lines = [description, "Traceback (most recent call last):"]
    for element in error["stackTrace"]:
        lines.extend([_indent(line) for line in element.splitlines()] if element else [""])
    sys.stdout.write("\r".join(lines) + "\n")


# -- handler resolution and the invoke loop --------------------------------------------------------------------------
def load_handler(handler: str) -> Callable[[Any, LambdaContext], Any]:
    try:
        module_name, function_name = handler.rsplit(".", 1)
    except ValueError as exc:
        raise FaultException(FaultException.MALFORMED_HANDLER_NAME, f"Bad handler '{handler}': {exc}") from None
    try:
        if module_name.split(".")[0] in sys.builtin_module_names:
            raise FaultException(
                FaultException.BUILT_IN_MODULE_CONFLICT,
                f"Cannot use built-in module {module_name} as a handler module",
            )
        module = importlib.import_module(module_name.replace("/", "."))
    except ImportError as exc:
        raise FaultException(
            FaultException.IMPORT_MODULE_ERROR, f"Unable to import module '{module_name}': {exc}"
        ) from None
    except SyntaxError as exc:
        trace = [f'  File "{exc.filename}" Line {exc.lineno}\n    {exc.text}']
        raise FaultException(
            FaultException.USER_CODE_SYNTAX_ERROR, f"Syntax error in module '{module_name}': {exc}", trace
        ) from None
    try:
        return getattr(module, function_name)
    except AttributeError:
        raise FaultException(
            FaultException.HANDLER_NOT_FOUND, f"Handler '{function_name}' missing on module '{module_name}'"
        ) from None


def invoke(
    handler: Callable[[Any, LambdaContext], Any], request_id: str, headers: dict[str, str], body: bytes
) -> tuple[str, bytes, str, str]:
    """Run one invocation; returns (outcome, payload, content type, extra header lines) for the Runtime API."""
    try:
        context = make_context(request_id, headers)
        result = handler(unmarshal(body, headers.get("content-type")), context)
        payload, content_type = marshal(result)
        return "response", payload, content_type, ""
    except FaultException as fault:
        error = make_error(fault.msg, fault.exception_type, fault.trace, request_id)
        cause = xray_cause("LambdaValidationError", fault.msg, [])
    except Exception as exc:
        error, frames = exception_error(exc, request_id)
        cause = xray_cause(error["errorType"], error["errorMessage"], frames)
    log_error(error)
    return "error", to_json(error).encode("utf-8", "replace"), "application/json", cause


def serve(api: RuntimeApi, handler: Callable[[Any, LambdaContext], Any]) -> NoReturn:
    global _request_id, _tenant_id
    environ = os.environ
    headers, body = api.next_invocation()
    while True:
        request_id = headers["lambda-runtime-aws-request-id"]
        _request_id = request_id
        _tenant_id = headers.get("lambda-runtime-aws-tenant-id")
        trace_id = headers.get("lambda-runtime-trace-id")
        if trace_id is not None:
            environ[_TRACE_ENV] = trace_id
        elif _TRACE_ENV in environ:
            del environ[_TRACE_ENV]
        outcome, payload, content_type, extra = invoke(handler, request_id, headers, body)
        headers, body = api.complete(request_id, outcome, payload, content_type, extra)


def setup_sys_path() -> None:
    """Function code first, then layers and the runtime dir, as on AWS; never this script's own directory."""
    version = "{}.{}".format(*sys.version_info[:2])
    task_root = os.environ.get("LAMBDA_TASK_ROOT") or os.getcwd()
    first = [task_root, f"/opt/python/lib/python{version}/site-packages", "/opt/python"]
    runtime_dir = os.environ.get("LAMBDA_RUNTIME_DIR")
    if runtime_dir:
        first.append(runtime_dir)
    own_dir = os.path.dirname(_THIS_FILE)
    sys.path[:] = first + [entry for entry in sys.path if entry not in first and entry != own_dir]


def fail_init(address: str, error: dict[str, Any]) -> NoReturn:
    logging.warning(_UNHANDLED_WARNING)
    log_error(error)
    RuntimeApi(address).post_init_error(to_json(error).encode("utf-8", "replace"), error["errorType"])
    sys.exit(1)


def main() -> None:
    setup_logging()
    setup_sys_path()
    address = os.environ["AWS_LAMBDA_RUNTIME_API"]
    try:
        handler = load_handler(os.environ.get("_HANDLER", ""))
    except FaultException as fault:
        fail_init(address, make_error(fault.msg, fault.exception_type, fault.trace))
    except Exception as exc:
        fail_init(address, exception_error(exc)[0])
    try:
        serve(RuntimeApi(address), handler)
    except (OSError, RuntimeApiError) as exc:
        sys.stderr.write(f"Lamina runtime: lost the Runtime API: {exc}\n")
        sys.exit(1)


if __name__ == "__main__":
    main()
