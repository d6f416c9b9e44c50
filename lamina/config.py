"""Server settings, with the defaults `lamina serve` documents."""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

DEFAULT_HOST = "127.0.0.1"
DEFAULT_PORT = 9000
DEFAULT_DATA_DIR = Path.home() / ".lamina"
DEFAULT_ACCOUNT_ID = "000000000000"
DEFAULT_REGION = "us-east-1"


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
    #: S3-compatible endpoint that code and layer packages given as S3Bucket/S3Key are read from (default: aws_endpoint_url).
    s3_endpoint_url: str | None = None
    #: The account's concurrent executions per region (AWS's default quota); 100 of them always stay unreserved.
    concurrency_limit: int = 1000
    #: Asynchronous retries of a function error wait this long, then twice this long (AWS: about 1 and 2 minutes).
    async_retry_base_seconds: float = 60.0
    #: AWS-compatible endpoint for SQS/SNS/EventBridge destinations and dead-letter queues (None: AWS itself).
    aws_endpoint_url: str | None = None
