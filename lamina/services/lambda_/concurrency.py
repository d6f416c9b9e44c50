"""Concurrency operations: reserved concurrency and provisioned-concurrency configs."""
from __future__ import annotations

from lamina.services.lambda_.router import Router
from lamina.services.lambda_.wire import Call
from lamina.model.arns import MAX_ARN_LENGTH, FunctionRef, merge_qualifier, parse_function_name
from lamina.control.concurrency import ConcurrencySettings
from lamina.services.lambda_.listing import max_items, page
from lamina.http.messages import Response

class ConcurrencyOperations:
    def __init__(self, settings: ConcurrencySettings) -> None:
        self._settings = settings

    def register(self, router: Router) -> None:
        router.operation("PutFunctionConcurrency", self.put_function_concurrency)
        router.operation("GetFunctionConcurrency", self.get_function_concurrency)
        router.operation("DeleteFunctionConcurrency", self.delete_function_concurrency)
        router.operation("PutProvisionedConcurrencyConfig", self.put_provisioned_concurrency_config)
        router.operation("GetProvisionedConcurrencyConfig", self.get_provisioned_concurrency_config)
        # The same handler: it tells the two apart by `?List=ALL`, as the model's URI does.
        router.operation("ListProvisionedConcurrencyConfigs", self.get_provisioned_concurrency_config)
        router.operation("DeleteProvisionedConcurrencyConfig", self.delete_provisioned_concurrency_config)

    async def put_function_concurrency(self, call: Call) -> Response:
        ref = parse_function_name(call.params["FunctionName"], max_length=MAX_ARN_LENGTH)
        reserved = await self._settings.put_reserved(call.scope, ref, call.json_body())
        return call.reply({"ReservedConcurrentExecutions": reserved})

    def get_function_concurrency(self, call: Call) -> Response:
        ref = parse_function_name(call.params["FunctionName"], max_length=MAX_ARN_LENGTH)
        reserved = self._settings.get_reserved(call.scope, ref)
        return call.reply({} if reserved is None else {"ReservedConcurrentExecutions": reserved})

    async def delete_function_concurrency(self, call: Call) -> Response:
        ref = parse_function_name(call.params["FunctionName"], max_length=MAX_ARN_LENGTH)
        await self._settings.delete_reserved(call.scope, ref)
        return call.reply()

    async def put_provisioned_concurrency_config(self, call: Call) -> Response:
        ref = parse_function_name(call.params["FunctionName"], max_length=MAX_ARN_LENGTH)
        qualifier = merge_qualifier(ref, call.query("Qualifier"))
        view = await self._settings.put_provisioned(call.scope, ref, qualifier, call.json_body())
        return call.reply(view.to_aws())

    def get_provisioned_concurrency_config(self, call: Call) -> Response:
        """GET serves both GetProvisionedConcurrencyConfig and, with `?List=ALL`, the list operation."""
        ref = parse_function_name(call.params["FunctionName"], max_length=MAX_ARN_LENGTH)
        if call.query("List") is not None:
            return self._list(call, ref)
        qualifier = merge_qualifier(ref, call.query("Qualifier"))
        return call.reply(self._settings.get_provisioned(call.scope, ref, qualifier).to_aws())

    async def delete_provisioned_concurrency_config(self, call: Call) -> Response:
        ref = parse_function_name(call.params["FunctionName"], max_length=MAX_ARN_LENGTH)
        qualifier = merge_qualifier(ref, call.query("Qualifier"))
        await self._settings.delete_provisioned(call.scope, ref, qualifier)
        return call.reply()

    def _list(self, call: Call, ref: FunctionRef) -> Response:
        size = max_items(call.query("MaxItems"), "ListProvisionedConcurrencyConfigs")
        views = self._settings.list_provisioned(call.scope, ref)
        chosen, next_marker = page(views, lambda view: view.arn, call.query("Marker"), size)
        document: dict[str, object] = {"ProvisionedConcurrencyConfigs": [view.to_aws(with_arn=True) for view in chosen]}
        if next_marker is not None:
            document["NextMarker"] = next_marker
        return call.reply(document)

