"""Event source mappings' pollers: Lamina reads queues and streams and invokes functions with batches, as Lambda does.

`manager.py` runs one supervised asyncio task per Enabled mapping and starts or stops it as the mapping changes;
`invoker.py` runs one batch through the invocation service (throttles and platform errors retried, not counted as
the batch's failure); `batch_response.py` reads a ReportBatchItemFailures answer by AWS's rules; `results.py` keeps
LastProcessingResult; `wiring.py` builds it all for server.py. One module per
source: `sqs.py` (the poller), `sqs_client.py` (its blocking boto3 calls, on their own executor), `sqs_event.py` (the
event as AWS builds it).
"""
