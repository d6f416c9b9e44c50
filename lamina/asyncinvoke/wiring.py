"""The asynchronous-invocation subsystem wired together: its settings, queue, dispatcher and AWS client, built,
started and stopped in one place (the server holds one `AsyncInvocation`)."""
from __future__ import annotations

from concurrent.futures import Executor
from pathlib import Path
from typing import Callable

from lamina.model.keys import FunctionKey

from lamina.asyncinvoke.dispatcher import AsyncInvoker
from lamina.asyncinvoke.queue_store import QUEUE_FILE, EventQueueStore
from lamina.aws.client import AwsClient
from lamina.control.event_invoke import EventInvokeConfigService
from lamina.control.functions import FunctionService
from lamina.invoke.service import InvocationService
from lamina.store.database import Database
from lamina.store.event_invoke_configs import SqliteEventInvokeConfigStore


class AsyncInvocation:
    def __init__(
        self,
        data_dir: Path,
        database: Database,
        functions: FunctionService,
        invocations: InvocationService,
        *,
        legacy_account: str,
        retry_base_seconds: float,
        aws_endpoint_url: str | None,
        max_workers_per_function: int,
        reserved_concurrency: Callable[[FunctionKey], int | None],
        destination_executor: Executor | None = None,
    ) -> None:
        """`legacy_account`: the account of events queued before events carried one (the server's configured one)."""
        self._config_store = SqliteEventInvokeConfigStore(database)
        self.configs = EventInvokeConfigService(self._config_store, functions)
        self.configs.load()
        functions.on_delete(self.configs.forget_function)
        self.queue_path = data_dir / QUEUE_FILE
        self.invoker = AsyncInvoker(
            EventQueueStore(self.queue_path, legacy_account=legacy_account),
            functions,
            invocations,
            self.configs,
            AwsClient(aws_endpoint_url),
            retry_base_seconds=retry_base_seconds,
            max_workers_per_function=max_workers_per_function,
            reserved_concurrency=reserved_concurrency,
            destination_executor=destination_executor,
        )

    async def start(self) -> None:
        await self.invoker.start()

    async def stop(self) -> None:
        await self.invoker.stop()
        self._config_store.close()
