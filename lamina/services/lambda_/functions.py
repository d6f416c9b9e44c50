"""Function operations: parse the request, call FunctionService, serialise the AWS response."""
from __future__ import annotations

import asyncio
from typing import Any, Callable

from lamina.services.lambda_ import listing
from lamina.services.lambda_.router import Router
from lamina.services.lambda_.wire import Call
from lamina.services.lambda_.versions import list_all_versions
from lamina.model.arns import LATEST, MAX_ARN_LENGTH, merge_qualifier, parse_function_name
from lamina.control.concurrency import ConcurrencySettings
from lamina.control.functions import FunctionService
from lamina.model.function import FunctionConfig
from lamina.control.tags import TagService, check_create_tags
from lamina.errors import validation_error
from lamina.http.messages import Response



class FunctionOperations:
    def __init__(
        self, service: FunctionService, endpoint: Callable[[], str], concurrency: ConcurrencySettings, tags: TagService
    ) -> None:
        self._service = service
        self._endpoint = endpoint
        self._concurrency = concurrency
        self._tags = tags

    def register(self, router: Router) -> None:
        router.operation("CreateFunction", self.create_function)
        router.operation("ListFunctions", self.list_functions)
        router.operation("GetFunction", self.get_function)
        router.operation("DeleteFunction", self.delete_function)
        router.operation("GetFunctionConfiguration", self.get_function_configuration)
        router.operation("UpdateFunctionConfiguration", self.update_function_configuration)
        router.operation("UpdateFunctionCode", self.update_function_code)
        router.operation("GetAccountSettings", self.get_account_settings)

    def _resolve(self, call: Call) -> tuple[FunctionConfig, dict[str, Any]]:
        """The version named, and its FunctionConfiguration with the ARN as called (`...:f:$LATEST`, `...:f:live`)."""
        ref = parse_function_name(call.params["FunctionName"])
        qualifier = merge_qualifier(ref, call.query("Qualifier"))
        config = self._service.resolve(call.scope, ref, qualifier)
        document = config.to_aws()
        if qualifier is not None:
            document["FunctionArn"] = config.key.arn(qualifier)
        return config, document

    async def create_function(self, call: Call) -> Response:
        body = call.json_body()
        if not isinstance(body.get("FunctionName"), str):
            raise validation_error(None, "functionName", "Member must not be null")
        ref = parse_function_name(body["FunctionName"], max_length=MAX_ARN_LENGTH, creating=True)
        tags = check_create_tags(body.get("Tags"))
        config = await asyncio.to_thread(self._service.create, call.scope, ref, body)
        self._tags.attach_initial(config.key, tags)
        document = _creating_view(config)
        document["FunctionArn"] = config.arn  # unqualified even when `Publish` made version 1 (recorded)
        return call.reply(document)

    def get_function(self, call: Call) -> Response:
        config, configuration = self._resolve(call)
        document: dict[str, Any] = {
            "Configuration": configuration,
            "Code": {
                "RepositoryType": "S3",
                "Location": f"{self._endpoint()}/lamina/code/{config.code_sha256_hex}.zip",
            },
        }
        tags = self._tags.tags_of(config.key)
        if tags:
            document["Tags"] = tags
        reserved = self._concurrency.reserved(config.key)
        if reserved is not None:
            document["Concurrency"] = {"ReservedConcurrentExecutions": reserved}
        return call.reply(document)

    def get_function_configuration(self, call: Call) -> Response:
        return call.reply(self._resolve(call)[1])

    async def update_function_code(self, call: Call) -> Response:
        ref = parse_function_name(call.params["FunctionName"], max_length=MAX_ARN_LENGTH)
        config = await asyncio.to_thread(self._service.update_code, call.scope, ref, call.json_body())
        # With `Publish` the answer is the new version, still being created (recorded).
        return call.reply(_updating_view(config) if config.version == LATEST else _creating_view(config))

    async def update_function_configuration(self, call: Call) -> Response:
        ref = parse_function_name(call.params["FunctionName"], max_length=MAX_ARN_LENGTH)
        config = await asyncio.to_thread(self._service.update_configuration, call.scope, ref, call.json_body())
        return call.reply(_updating_view(config))

    async def delete_function(self, call: Call) -> Response:
        ref = parse_function_name(call.params["FunctionName"])
        await asyncio.to_thread(self._service.delete, call.scope, ref, merge_qualifier(ref, call.query("Qualifier")))
        # The model's responseCode is 200, but AWS answers DeleteFunction with 204 No Content.
        return call.reply(status=204)

    def list_functions(self, call: Call) -> Response:
        function_version = call.query("FunctionVersion")
        max_items = listing.max_items(
            call.query("MaxItems"), "ListFunctions",
            FunctionVersion=function_version, MasterRegion=call.query("MasterRegion"),
        )
        if function_version == "ALL":
            return call.reply(list_all_versions(self._service, call.scope, call.query("Marker"), max_items))
        functions = self._service.list_latest(call.scope)
        chosen, next_marker = listing.page(functions, lambda config: config.name, call.query("Marker"), max_items)
        document: dict[str, Any] = {"Functions": [config.to_aws_listed() for config in chosen]}
        if next_marker is not None:
            document["NextMarker"] = next_marker
        return call.reply(document)

    def get_account_settings(self, call: Call) -> Response:
        count, code_size = self._service.usage(call.scope)
        return call.reply(
            {
                "AccountLimit": {
                    "TotalCodeSize": 80530636800,
                    "CodeSizeUnzipped": 262144000,
                    "CodeSizeZipped": 52428800,
                    **self._concurrency.account_limit(call.scope),
                },
                "AccountUsage": {"TotalCodeSize": code_size, "FunctionCount": count},
            },
        )



def _creating_view(config: FunctionConfig) -> dict[str, Any]:
    """CreateFunction answers while the function is still Pending (boto3's waiters rely on this shape)."""
    document = config.to_aws()
    document.pop("LastUpdateStatus", None)
    document.update(State="Pending", StateReason="The function is being created.", StateReasonCode="Creating")
    return document


def _updating_view(config: FunctionConfig) -> dict[str, Any]:
    document = config.to_aws()
    document.update(
        LastUpdateStatus="InProgress",
        LastUpdateStatusReason="The function is being created.",
        LastUpdateStatusReasonCode="Creating",
    )
    return document
