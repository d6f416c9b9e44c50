"""Asynchronous invocation: a durable event queue, delivery workers with retries, destinations and DLQs."""
