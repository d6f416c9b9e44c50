"""Function URL operations: Create/Get/Update/Delete/ListFunctionUrlConfigs, and their AWS wire forms."""
from __future__ import annotations

import asyncio
from typing import Any, Callable

from lamina.control.function_urls import FunctionUrlService
from lamina.http.messages import Response
from lamina.model.function_url import FunctionUrlConfig
from lamina.services.lambda_.router import Router
from lamina.services.lambda_.wire import Call

UrlOf = Callable[[FunctionUrlConfig], str]


def url_config_to_aws(
    config: FunctionUrlConfig, url: str, *, written: bool = False, created: bool = False
) -> dict[str, Any]:
    """FunctionUrlConfig as AWS shows it. `written`: an answer to Create or Update, which leaves out an InvokeMode never
    set (recorded); `created`: Create's, which has no LastModifiedTime (the model's output shape)."""
    document: dict[str, Any] = {
        "FunctionUrl": url,
        "FunctionArn": config.function_arn,
        "AuthType": config.auth_type.value,
    }
    if config.cors is not None:
        document["Cors"] = config.cors
    document["CreationTime"] = config.creation_time
    if not created:
        document["LastModifiedTime"] = config.last_modified_time
    if not written or config.invoke_mode is not None:
        document["InvokeMode"] = config.effective_invoke_mode.value
    return document


class FunctionUrlOperations:
    def __init__(self, service: FunctionUrlService, url_of: UrlOf) -> None:
        self._service = service
        self._url_of = url_of

    def register(self, router: Router) -> None:
        router.operation("CreateFunctionUrlConfig", self.create_config)
        router.operation("GetFunctionUrlConfig", self.get_config)
        router.operation("UpdateFunctionUrlConfig", self.update_config)
        router.operation("DeleteFunctionUrlConfig", self.delete_config)
        router.operation("ListFunctionUrlConfigs", self.list_configs)

    async def create_config(self, call: Call) -> Response:
        config = await asyncio.to_thread(
            self._service.create, call.scope, call.params["FunctionName"], call.query("Qualifier"), call.json_body()
        )
        return call.reply(url_config_to_aws(config, self._url_of(config), written=True, created=True))

    def get_config(self, call: Call) -> Response:
        config = self._service.get(call.scope, call.params["FunctionName"], call.query("Qualifier"))
        return call.reply(url_config_to_aws(config, self._url_of(config)))

    async def update_config(self, call: Call) -> Response:
        config = await asyncio.to_thread(
            self._service.update, call.scope, call.params["FunctionName"], call.query("Qualifier"), call.json_body()
        )
        return call.reply(url_config_to_aws(config, self._url_of(config), written=True))

    async def delete_config(self, call: Call) -> Response:
        await asyncio.to_thread(
            self._service.delete, call.scope, call.params["FunctionName"], call.query("Qualifier")
        )
        return call.reply()

    def list_configs(self, call: Call) -> Response:
        configs, next_marker = self._service.list(
            call.scope, call.params["FunctionName"], call.query("Marker"), call.query("MaxItems")
        )
        document: dict[str, Any] = {
            "FunctionUrlConfigs": [url_config_to_aws(config, self._url_of(config)) for config in configs]
        }
        if next_marker is not None:
            document["NextMarker"] = next_marker
        return call.reply(document)
