"""Server settings, with the defaults `lamina serve` documents."""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

DEFAULT_HOST = "127.0.0.1"
DEFAULT_PORT = 9000
DEFAULT_DATA_DIR = Path.home() / ".lamina"
DEFAULT_ACCOUNT_ID = "000000000000"
DEFAULT_REGION = "us-east-1"
#: AWS's code storage quota per region (75 GB); Lamina applies it to the extracted code it stores.
DEFAULT_CODE_STORAGE_LIMIT = 75 << 30
_SIZE_SUFFIXES = {"": 1, "K": 1 << 10, "M": 1 << 20, "G": 1 << 30, "T": 1 << 40}


def parse_size(text: str) -> int:
    """`75G`, `512M`, `100k` or plain bytes (binary multiples, as AWS's 75 GB quota is 75 * 2**30 bytes)."""
    digits, suffix = text.strip(), ""
    if digits[-1:].isalpha():
        digits, suffix = digits[:-1], digits[-1].upper()
    if not digits.isdigit() or suffix not in _SIZE_SUFFIXES:
        raise ValueError(f"not a size: {text!r} (bytes, or a number with K, M, G or T)")
    return int(digits) * _SIZE_SUFFIXES[suffix]


@dataclass(frozen=True)
class ServerConfig:
    host: str = DEFAULT_HOST
    port: int = DEFAULT_PORT
    data_dir: Path = DEFAULT_DATA_DIR
    account_id: str = DEFAULT_ACCOUNT_ID
    default_region: str = DEFAULT_REGION
    #: Idle warm environments are stopped after this many seconds (AWS keeps them for minutes).
    keep_alive_seconds: float = 600.0
    #: Stop idle environments when their total memory limits exceed this (memory pressure).
    max_idle_memory_mb: int = 8192
    #: Total environments (busy or idle) the host will run at once.
    max_environments: int = 256
    #: Public base URL for links such as GetFunction's Code.Location; defaults to the listening address.
    public_url: str | None = None
    #: Function URLs are `http://<id>.lambda-url.<region>.<url_domain>:<port>/` (`localhost`: curl and browsers resolve
    #: every *.localhost name to loopback, RFC 6761; a wildcard DNS name the operator owns works for every client).
    url_domain: str = "localhost"
    #: S3-compatible endpoint that code and layer packages given as S3Bucket/S3Key are read from (default: aws_endpoint_url).
    s3_endpoint_url: str | None = None
    #: The account's concurrent executions per region (AWS's default quota); 100 of them always stay unreserved.
    concurrency_limit: int = 1000
    #: Asynchronous retries of a function error wait this long, then twice this long (AWS: about 1 and 2 minutes).
    async_retry_base_seconds: float = 60.0
    #: AWS-compatible endpoint for SQS/SNS/EventBridge destinations and dead-letter queues (None: AWS itself).
    aws_endpoint_url: str | None = None
    #: HOST:PORT services on the host that functions may connect to (everything else on the host is unreachable).
    allowed_host_ports: tuple[str, ...] = ()
    #: Bytes of extracted code (function code and layers, each stored tree once) uploads may take in total.
    code_storage_limit: int = DEFAULT_CODE_STORAGE_LIMIT
    #: API connections: seconds for a request's headers to arrive, the longest a body may stall, and the longest a
    #: keep-alive connection may sit idle between requests (0: no limit).
    http_header_timeout: float = 20.0
    http_body_timeout: float = 20.0
    http_idle_timeout: float = 60.0
    #: API connections open at once, in total and per client address (0: all but a reserve of the open-files limit,
    #: and half of that per address).
    max_connections: int = 0
    max_connections_per_peer: int = 0
