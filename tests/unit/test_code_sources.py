"""Where packages come from: inline zips, S3 errors in AWS's words, the S3 endpoint setting."""
from __future__ import annotations

import base64
import io

import pytest
from botocore.exceptions import ClientError

from lamina.cli import build_parser
from lamina.control.code_sources import CodeSources
from lamina.errors import InvalidParameterValueException, RequestEntityTooLargeException
from lamina.store.codezip import MAX_UNZIPPED, MAX_ZIPPED


class FakeS3:
    def __init__(self, error: ClientError | None = None, body: bytes = b"zip", length: int | None = None) -> None:
        self.error, self.body, self.length, self.calls = error, body, length, []

    def get_object(self, **arguments: str) -> dict:
        self.calls.append(arguments)
        if self.error is not None:
            raise self.error
        return {"Body": io.BytesIO(self.body), "ContentLength": self.length or len(self.body)}


def sources_with(fake: FakeS3) -> CodeSources:
    sources = CodeSources("http://s3.example", "us-east-1")
    sources._client = fake  # the client is made lazily; a test hands in its own
    return sources


def test_inline_zip_files_keep_the_50_mb_limit():
    package = CodeSources(None, "us-east-1").read({"ZipFile": base64.b64encode(b"PK").decode()})
    assert package.data == b"PK" and package.max_zipped == MAX_ZIPPED
    with pytest.raises(InvalidParameterValueException, match="^Could not unzip uploaded file"):
        CodeSources(None, "us-east-1").read({"ZipFile": "not base64!"})


def test_s3_objects_pass_version_and_allow_the_unzipped_limit():
    fake = FakeS3()
    package = sources_with(fake).read({"S3Bucket": "b", "S3Key": "k", "S3ObjectVersion": "v1"})
    assert package.data == b"zip" and package.max_zipped == MAX_UNZIPPED
    assert fake.calls == [{"Bucket": "b", "Key": "k", "VersionId": "v1"}]
    with pytest.raises(RequestEntityTooLargeException):
        sources_with(FakeS3(length=MAX_UNZIPPED + 1)).read({"S3Bucket": "b", "S3Key": "k"})


def test_s3_errors_are_reported_as_aws_does():
    error = ClientError({"Error": {"Code": "NoSuchVersion", "Message": "The specified version does not exist."}},
                        "GetObject")
    with pytest.raises(InvalidParameterValueException) as raised:
        sources_with(FakeS3(error)).read({"S3Bucket": "b", "S3Key": "k", "S3ObjectVersion": "nope"})
    assert raised.value.message == (
        "Error occurred while GetObject. S3 Error Code: NoSuchVersion. "
        "S3 Error Message: The specified version does not exist."
    )


def test_without_an_endpoint_s3_code_is_refused_with_the_option_named():
    with pytest.raises(InvalidParameterValueException, match="--s3-endpoint-url"):
        CodeSources(None, "us-east-1").read({"S3Bucket": "b", "S3Key": "k"})


def test_the_endpoint_can_come_from_the_environment(monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setenv("LAMINA_S3_ENDPOINT_URL", "http://minio:9000")
    assert build_parser().parse_args(["serve"]).s3_endpoint_url == "http://minio:9000"
    assert build_parser().parse_args(["serve", "--s3-endpoint-url", "http://other"]).s3_endpoint_url == "http://other"
