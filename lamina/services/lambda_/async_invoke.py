"""Asynchronous invocation operations: the EventInvokeConfig family, the legacy InvokeAsync, and Lamina's queue view."""
from __future__ import annotations

import asyncio
import time
from pathlib import Path

from lamina.services.lambda_.invoke import MAX_EVENT_PAYLOAD, runtime_payload
from lamina.services.lambda_.listing import max_items
from lamina.services.lambda_.router import Router
from lamina.services.lambda_.wire import Call
from lamina.asyncinvoke.dispatcher import AsyncInvoker
from lamina.asyncinvoke.queue_store import read_stats
from lamina.model.arns import merge_qualifier, parse_function_name
from lamina.control.event_invoke import EventInvokeConfigService
from lamina.control.functions import FunctionService
from lamina.errors import RequestTooLargeException
from lamina.http.messages import Response



class AsyncInvokeOperations:
    def __init__(
        self,
        configs: EventInvokeConfigService,
        invoker: AsyncInvoker,
        functions: FunctionService,
        queue_path: Path,
    ) -> None:
        self._configs = configs
        self._invoker = invoker
        self._functions = functions
        self._queue_path = queue_path

    def register(self, router: Router) -> None:
        router.operation("PutFunctionEventInvokeConfig", self.put_config)
        router.operation("UpdateFunctionEventInvokeConfig", self.update_config)
        router.operation("GetFunctionEventInvokeConfig", self.get_config)
        router.operation("DeleteFunctionEventInvokeConfig", self.delete_config)
        router.operation("ListFunctionEventInvokeConfigs", self.list_configs)
        router.operation("InvokeAsync", self.invoke_async)
        router.lamina("GET", "/lamina/async-queue", self.queue_status, "LaminaAsyncQueue")

    async def put_config(self, call: Call) -> Response:
        ref = parse_function_name(call.params["FunctionName"])
        config = await asyncio.to_thread(
            self._configs.put, call.scope, ref, merge_qualifier(ref, call.query("Qualifier")), call.json_body()
        )
        return call.reply(config.to_aws())

    async def update_config(self, call: Call) -> Response:
        ref = parse_function_name(call.params["FunctionName"])
        config = await asyncio.to_thread(
            self._configs.update, call.scope, ref, merge_qualifier(ref, call.query("Qualifier")), call.json_body()
        )
        return call.reply(config.to_aws())

    def get_config(self, call: Call) -> Response:
        ref = parse_function_name(call.params["FunctionName"])
        config = self._configs.get(call.scope, ref, merge_qualifier(ref, call.query("Qualifier")))
        return call.reply(config.to_aws())

    async def delete_config(self, call: Call) -> Response:
        ref = parse_function_name(call.params["FunctionName"])
        await asyncio.to_thread(self._configs.delete, call.scope, ref, merge_qualifier(ref, call.query("Qualifier")))
        return call.reply()

    def list_configs(self, call: Call) -> Response:
        ref = parse_function_name(call.params["FunctionName"])
        size = max_items(call.query("MaxItems"), "ListFunctionEventInvokeConfigs")
        page, next_marker = self._configs.list(call.scope, ref, call.query("Marker"), size)
        document: dict[str, object] = {"FunctionEventInvokeConfigs": [config.to_aws() for config in page]}
        if next_marker is not None:
            document["NextMarker"] = next_marker
        return call.reply(document)

    async def invoke_async(self, call: Call) -> Response:
        """The deprecated InvokeAsync: an Event invoke answered with `{"Status": 202}`."""
        ref = parse_function_name(call.params["FunctionName"])
        config = self._functions.resolve(call.scope, ref, ref.qualifier)
        if len(call.request.body) > MAX_EVENT_PAYLOAD:
            raise RequestTooLargeException(
                f"Request must be smaller than {MAX_EVENT_PAYLOAD} bytes for the InvokeAsync operation"
            )
        payload = runtime_payload(config, call.request.body)
        await self._invoker.enqueue(config.key, ref.qualifier, call.request_id, payload)
        return call.reply({"Status": 202})

    async def queue_status(self, call: Call) -> Response:
        """Lamina's own view: queued events per function qualifier, with the oldest one's age."""
        stats = await asyncio.to_thread(read_stats, self._queue_path)
        now = time.time()
        return call.reply({"Queues": [entry.to_json(now) for entry in stats]})

