"""A small client for the AWS services Lamina sends to (SQS, SNS, EventBridge), without an SDK dependency."""
