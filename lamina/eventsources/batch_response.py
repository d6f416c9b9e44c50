"""A function's answer under ReportBatchItemFailures, read by AWS's rules.

Why here and not in each source: the rules are the same for SQS, Kinesis and DynamoDB Streams. A batch is a complete
success when the answer is empty, null, or an object whose `batchItemFailures` is missing, null or empty; it is a
complete failure when the answer is not JSON, or any entry is not an object with a non-empty string `itemIdentifier`
naming a record of the batch (AWS's documented list: invalid JSON, empty or null itemIdentifier, a bad key name, an
unknown id).
"""
from __future__ import annotations

import json
from collections.abc import Collection
from dataclasses import dataclass


@dataclass(frozen=True)
class BatchVerdict:
    """`failed`: the ids to keep (retry); None means the whole batch failed."""

    failed: frozenset[str] | None

    @property
    def whole_batch_failed(self) -> bool:
        return self.failed is None


WHOLE_BATCH_FAILED = BatchVerdict(None)
ALL_SUCCEEDED = BatchVerdict(frozenset())


def read_batch_item_failures(payload: bytes, batch_ids: Collection[str]) -> BatchVerdict:
    """Which records of a batch (by id) failed, per the function's `batchItemFailures` answer."""
    if not payload.strip():
        return ALL_SUCCEEDED
    try:
        answer = json.loads(payload)
    except (ValueError, UnicodeDecodeError):
        return WHOLE_BATCH_FAILED
    if answer is None or not isinstance(answer, dict):
        # null is success; another JSON value (a string, a number) carries no failures either
        return ALL_SUCCEEDED
    failures = answer.get("batchItemFailures")
    if failures is None:
        return ALL_SUCCEEDED
    if not isinstance(failures, list):
        return WHOLE_BATCH_FAILED
    failed: set[str] = set()
    for entry in failures:
        identifier = entry.get("itemIdentifier") if isinstance(entry, dict) else None
        if not isinstance(identifier, str) or not identifier or identifier not in batch_ids:
            return WHOLE_BATCH_FAILED
        failed.add(identifier)
    return BatchVerdict(frozenset(failed))
