"""Where a deployment package comes from: inline (`ZipFile`, base64 in the JSON body) or an S3 object.

S3 objects are fetched from the S3-compatible endpoint the server was configured with (`--s3-endpoint-url`: AWS S3,
MinIO, Ceph...), with the standard AWS credential chain, unsigned when there are no credentials. Reads block, so
callers run them in a worker thread, as every code-ingesting operation already does; in the server the GetObject
itself runs on the bounded `s3` executor (lamina/executors.py), so slow reads (a 120 s timeout) cannot take every
control-plane thread.
"""
from __future__ import annotations

import base64
import binascii
import threading
from concurrent.futures import Executor
from dataclasses import dataclass
from typing import Any

from lamina.errors import InvalidParameterValueException, RequestEntityTooLargeException, ServiceException
from lamina.store.codezip import MAX_UNZIPPED, MAX_ZIPPED

_CORRUPT = "Could not unzip uploaded file. Please check your file, then try to upload again."


@dataclass(frozen=True)
class CodePackage:
    data: bytes
    #: The zipped-size limit for this source: 50 MB inline; from S3 only the unzipped limit applies (as on AWS).
    max_zipped: int


class CodeSources:
    def __init__(self, s3_endpoint_url: str | None, region: str, *, executor: Executor | None = None) -> None:
        """`executor`: where S3 reads run (the caller's thread waits); None runs them on the caller's thread."""
        self.s3_endpoint_url = s3_endpoint_url
        self._executor = executor
        self._region = region
        self._client: Any = None
        self._client_lock = threading.Lock()

    def read(self, code: dict[str, Any]) -> CodePackage:
        """The package a validated `Code` (CreateFunction), UpdateFunctionCode body or layer `Content` names."""
        if code.get("ZipFile") is not None:
            try:
                return CodePackage(base64.b64decode(code["ZipFile"], validate=True), MAX_ZIPPED)
            except (binascii.Error, TypeError, ValueError) as error:
                raise InvalidParameterValueException(_CORRUPT) from error
        arguments = (code["S3Bucket"], code["S3Key"], code.get("S3ObjectVersion"))
        if self._executor is None:
            return CodePackage(self._get_object(*arguments), MAX_UNZIPPED)
        return CodePackage(self._executor.submit(self._get_object, *arguments).result(), MAX_UNZIPPED)

    def _get_object(self, bucket: str, key: str, version: str | None) -> bytes:
        from botocore.exceptions import BotoCoreError, ClientError

        arguments = {"Bucket": bucket, "Key": key}
        if version is not None:
            arguments["VersionId"] = version
        try:
            response = self._s3().get_object(**arguments)
            if response.get("ContentLength", 0) > MAX_UNZIPPED:
                response["Body"].close()
                raise RequestEntityTooLargeException(f"Zipped size must be smaller than {MAX_UNZIPPED} bytes")
            return response["Body"].read()
        except ClientError as error:
            details = error.response.get("Error", {})
            raise InvalidParameterValueException(
                f"Error occurred while GetObject. S3 Error Code: {details.get('Code')}. "
                f"S3 Error Message: {details.get('Message')}"
            ) from error
        except BotoCoreError as error:
            message = f"Lamina could not read from its S3 endpoint {self.s3_endpoint_url}: {error}"
            raise ServiceException(message) from error

    def _s3(self) -> Any:
        if self.s3_endpoint_url is None:
            raise InvalidParameterValueException(
                "Code from S3 (S3Bucket/S3Key) needs an S3 endpoint, and this Lamina server has none configured "
                "(lamina serve --s3-endpoint-url)."
            )
        with self._client_lock:
            if self._client is None:
                self._client = _make_client(self.s3_endpoint_url, self._region)
            return self._client


def _make_client(endpoint_url: str, region: str) -> Any:
    """Path-style addressing (MinIO and most self-hosted stores need it), unsigned without credentials."""
    import boto3
    from botocore import UNSIGNED
    from botocore.config import Config

    session = boto3.session.Session()
    config = Config(
        s3={"addressing_style": "path"},
        connect_timeout=10,
        read_timeout=120,
        retries={"max_attempts": 3, "mode": "standard"},
    )
    if session.get_credentials() is None:
        config = config.merge(Config(signature_version=UNSIGNED))
    return session.client("s3", endpoint_url=endpoint_url, region_name=session.region_name or region, config=config)
