"""The SQS calls a poller makes (GetQueueUrl, GetQueueAttributes, ReceiveMessage, DeleteMessageBatch,
ChangeMessageVisibilityBatch), blocking, through boto3 to `--aws-endpoint-url` or AWS.

Why its own module: these calls block (a long poll up to 20 s), so the poller runs them on the `event_sources`
executor and nothing here touches the event loop; and a refusal becomes one `SqsError` carrying AWS's
LastProcessingResult text for it.
"""
from __future__ import annotations

import logging
from typing import Any, Sequence

from botocore.exceptions import BotoCoreError, ClientError

from lamina.aws.client import Arn, AwsClient

#: The most messages one ReceiveMessage, DeleteMessageBatch or ChangeMessageVisibilityBatch takes (SQS's limit).
SQS_BATCH_LIMIT = 10
#: The longest long poll SQS allows.
MAX_WAIT_SECONDS = 20
#: A client's read timeout must outlast the longest long poll.
READ_TIMEOUT_SECONDS = MAX_WAIT_SECONDS + 10.0
_log = logging.getLogger("lamina.eventsources.sqs")


class SqsError(Exception):
    """SQS refused a call or could not be reached; `problem` is the text LastProcessingResult shows after PROBLEM:."""

    def __init__(self, operation: str, code: str, message: str) -> None:
        super().__init__(f"{operation}: {code}: {message}")
        self.problem = (
            f"Error occurred while {operation}. SQS Error Code: {code}. SQS Error Message: {message}"
        )


def _sqs_error(operation: str, error: Exception) -> SqsError:
    if isinstance(error, ClientError):
        details = error.response.get("Error", {})
        return SqsError(operation, str(details.get("Code", "Unknown")), str(details.get("Message", error)))
    return SqsError(operation, "ServiceUnavailable", str(error))


class SqsQueue:
    """One queue, named by its ARN, and the calls a poller makes on it (each blocks)."""

    def __init__(self, aws: AwsClient, queue_arn: str) -> None:
        self.arn = queue_arn
        parsed = Arn.parse(queue_arn)
        self.region = parsed.region
        self._account = parsed.account
        self._name = parsed.resource
        self._aws = aws
        self._url: str | None = None

    def _call(self, operation: str, method: str, **params: Any) -> Any:
        try:
            return getattr(self._aws.client("sqs", self.region), method)(**params)
        except (ClientError, BotoCoreError) as error:
            raise _sqs_error(operation, error) from error

    def url(self) -> str:
        if self._url is None:
            answer = self._call(
                "ReceiveMessage", "get_queue_url", QueueName=self._name, QueueOwnerAWSAccountId=self._account
            )
            self._url = str(answer["QueueUrl"])
        return self._url

    def visibility_timeout(self) -> int:
        answer = self._call(
            "GetQueueAttributes", "get_queue_attributes", QueueUrl=self.url(), AttributeNames=["VisibilityTimeout"]
        )
        return int(answer.get("Attributes", {}).get("VisibilityTimeout", 30))

    def receive(self, max_messages: int, wait_seconds: int) -> list[dict[str, Any]]:
        """Up to `max_messages` (1-10) messages, waiting up to `wait_seconds` (0-20) for the first."""
        answer = self._call(
            "ReceiveMessage", "receive_message",
            QueueUrl=self.url(),
            MaxNumberOfMessages=max(1, min(SQS_BATCH_LIMIT, max_messages)),
            WaitTimeSeconds=max(0, min(MAX_WAIT_SECONDS, wait_seconds)),
            AttributeNames=["All"],
            MessageAttributeNames=["All"],
        )
        return list(answer.get("Messages") or [])

    def delete(self, messages: Sequence[dict[str, Any]]) -> int:
        """Delete the messages (by receipt handle); returns how many SQS refused (logged: they come back)."""
        refused = 0
        for start in range(0, len(messages), SQS_BATCH_LIMIT):
            chunk = messages[start:start + SQS_BATCH_LIMIT]
            entries = [{"Id": str(index), "ReceiptHandle": message["ReceiptHandle"]} for index, message in enumerate(chunk)]
            answer = self._call("DeleteMessageBatch", "delete_message_batch", QueueUrl=self.url(), Entries=entries)
            for failure in answer.get("Failed") or []:
                refused += 1
                _log.warning("%s: SQS did not delete a message: %s", self.arn, failure)
        return refused

    def release(self, messages: Sequence[dict[str, Any]]) -> None:
        """Make received messages visible again at once (a poller stopping with messages it will not process)."""
        for start in range(0, len(messages), SQS_BATCH_LIMIT):
            chunk = messages[start:start + SQS_BATCH_LIMIT]
            entries = [
                {"Id": str(index), "ReceiptHandle": message["ReceiptHandle"], "VisibilityTimeout": 0}
                for index, message in enumerate(chunk)
            ]
            self._call(
                "ChangeMessageVisibilityBatch", "change_message_visibility_batch", QueueUrl=self.url(), Entries=entries
            )
