"""Layer operations: parse the request, call LayerService, serialise the AWS response."""
from __future__ import annotations

import asyncio
import json
import re
from typing import Any, Callable

from lamina.services.lambda_.router import Router
from lamina.services.lambda_.wire import Call
from lamina.model.arns import parse_layer_name
from lamina.model.layer import LayerVersion
from lamina.control.layer_validation import validate_list_filters
from lamina.control.layers import LayerService
from lamina.errors import validation_error
from lamina.http.messages import Response



class LayerOperations:
    def __init__(self, service: LayerService, endpoint: Callable[[], str]) -> None:
        self._service = service
        self._endpoint = endpoint

    def register(self, router: Router) -> None:
        router.operation("ListLayers", self.list_layers)
        # The same handler: it tells the two apart by `?find=LayerVersion`, as the model's URI does.
        router.operation("GetLayerVersionByArn", self.list_layers)
        router.operation("PublishLayerVersion", self.publish_layer_version)
        router.operation("ListLayerVersions", self.list_layer_versions)
        router.operation("GetLayerVersion", self.get_layer_version)
        router.operation("DeleteLayerVersion", self.delete_layer_version)
        router.operation("AddLayerVersionPermission", self.add_layer_version_permission)
        router.operation("GetLayerVersionPolicy", self.get_layer_version_policy)
        router.operation("RemoveLayerVersionPermission", self.remove_layer_version_permission)

    def _document(self, layer: LayerVersion) -> dict[str, Any]:
        return layer.to_aws(f"{self._endpoint()}/lamina/code/{layer.code_sha256_hex}.zip")

    async def publish_layer_version(self, call: Call) -> Response:
        ref = parse_layer_name(call.params["LayerName"])
        layer = await asyncio.to_thread(self._service.publish, call.scope, ref, call.json_body())
        return call.reply(self._document(layer))

    def get_layer_version(self, call: Call) -> Response:
        layer = self._service.get(call.scope, parse_layer_name(call.params["LayerName"]), _version_number(call))
        return call.reply(self._document(layer))

    def list_layers(self, call: Call) -> Response:
        """ListLayers, and GetLayerVersionByArn, which AWS serves on the same path with `?find=LayerVersion`."""
        if call.query("find") == "LayerVersion":
            return call.reply(self._document(self._service.get_by_arn(call.scope, call.query("Arn"))))
        runtime, architecture = call.query("CompatibleRuntime"), call.query("CompatibleArchitecture")
        size = validate_list_filters(runtime, architecture, call.query("MaxItems"))
        page = self._service.list_layers(call.scope, runtime, architecture, call.query("Marker"), size)
        document: dict[str, Any] = {
            "Layers": [
                {"LayerName": layer.name, "LayerArn": layer.layer_arn, "LatestMatchingVersion": layer.list_item()}
                for layer in page.items
            ]
        }
        if page.next_marker is not None:
            document["NextMarker"] = page.next_marker
        return call.reply(document)

    def list_layer_versions(self, call: Call) -> Response:
        ref = parse_layer_name(call.params["LayerName"])
        runtime, architecture = call.query("CompatibleRuntime"), call.query("CompatibleArchitecture")
        size = validate_list_filters(runtime, architecture, call.query("MaxItems"))
        page = self._service.list_versions(call.scope, ref, runtime, architecture, call.query("Marker"), size)
        document: dict[str, Any] = {"LayerVersions": [layer.list_item() for layer in page.items]}
        if page.next_marker is not None:
            document["NextMarker"] = page.next_marker
        return call.reply(document)

    async def delete_layer_version(self, call: Call) -> Response:
        await asyncio.to_thread(
            self._service.delete, call.scope, parse_layer_name(call.params["LayerName"]), _version_number(call)
        )
        return call.reply()

    async def add_layer_version_permission(self, call: Call) -> Response:
        ref = parse_layer_name(call.params["LayerName"])
        statement, revision_id = await asyncio.to_thread(
            self._service.add_permission,
            call.scope, ref, _version_number(call), call.json_body(), call.query("RevisionId"),
        )
        return call.reply({"Statement": json.dumps(statement, separators=(",", ":")), "RevisionId": revision_id})

    def get_layer_version_policy(self, call: Call) -> Response:
        layer = self._service.get_policy(call.scope, parse_layer_name(call.params["LayerName"]), _version_number(call))
        return call.reply({"Policy": layer.policy_document(), "RevisionId": layer.policy_revision_id})

    async def remove_layer_version_permission(self, call: Call) -> Response:
        ref = parse_layer_name(call.params["LayerName"])
        await asyncio.to_thread(
            self._service.remove_permission,
            call.scope, ref, _version_number(call), call.params["StatementId"], call.query("RevisionId")
        )
        return call.reply()


def _version_number(call: Call) -> int:
    """The `VersionNumber` path parameter, a long in the model."""
    raw = call.params["VersionNumber"]
    if re.fullmatch(r"-?\d{1,18}", raw) is None:
        raise validation_error(raw, "versionNumber", "Member must be a number")
    return int(raw)
