"""Version operations: PublishVersion and ListVersionsByFunction."""
from __future__ import annotations

import asyncio

from lamina.services.lambda_.listing import listed_configuration, max_items, page
from lamina.services.lambda_.router import Router
from lamina.services.lambda_.wire import Call
from lamina.model.arns import LATEST, MAX_ARN_LENGTH, parse_function_name
from lamina.control.functions import FunctionService
from lamina.model.function import FunctionConfig
from lamina.model.keys import Scope
from lamina.http.messages import Response


def version_order(version: str) -> tuple[int, int]:
    """$LATEST first, then the published versions by number."""
    return (0, 0) if version == LATEST else (1, int(version) if version.isdigit() else -1)


class VersionOperations:
    def __init__(self, service: FunctionService) -> None:
        self._service = service

    def register(self, router: Router) -> None:
        router.operation("PublishVersion", self.publish_version)
        router.operation("ListVersionsByFunction", self.list_versions)

    async def publish_version(self, call: Call) -> Response:
        ref = parse_function_name(call.params["FunctionName"], max_length=MAX_ARN_LENGTH)
        version = await asyncio.to_thread(self._service.publish, call.scope, ref, call.json_body())
        return call.reply(version.to_aws())

    def list_versions(self, call: Call) -> Response:
        ref = parse_function_name(call.params["FunctionName"])
        latest = self._service.resolve(call.scope, ref, None)
        versions = [latest, *self._service.versions.of(latest.key)]
        chosen, next_marker = page(
            versions, lambda c: c.version, call.query("Marker"), max_items(call.query("MaxItems")), version_order
        )
        document: dict[str, object] = {"Versions": [listed_configuration(c, qualified=True) for c in chosen]}
        if next_marker is not None:
            document["NextMarker"] = next_marker
        return call.reply(document)


def list_all_versions(service: FunctionService, scope: Scope, marker: str | None, size: int) -> dict[str, object]:
    """ListFunctions with FunctionVersion=ALL: each function's $LATEST then its versions, every ARN qualified."""
    configs = [
        config
        for latest in service.list_latest(scope)
        for config in (latest, *service.versions.of(latest.key))
    ]
    chosen, next_marker = page(configs, _name_and_version, marker, size, _name_and_version_order)
    document: dict[str, object] = {"Functions": [listed_configuration(c, qualified=True) for c in chosen]}
    if next_marker is not None:
        document["NextMarker"] = next_marker
    return document


def _name_and_version(config: FunctionConfig) -> str:
    return f"{config.name}:{config.version}"


def _name_and_version_order(marker: str) -> tuple[str, tuple[int, int]]:
    name, _, version = marker.rpartition(":")
    return name, version_order(version)
