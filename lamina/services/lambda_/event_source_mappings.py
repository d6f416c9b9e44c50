"""Event source mapping operations: Create/Get/Update/Delete/ListEventSourceMappings, and their AWS wire form."""
from __future__ import annotations

import asyncio
from typing import Any

from lamina.control.event_source_mappings import EventSourceMappingService
from lamina.http.messages import Response
from lamina.model.event_source_mapping import SETTINGS, EventSourceMapping
from lamina.services.lambda_.router import Router
from lamina.services.lambda_.wire import Call


def mapping_to_aws(mapping: EventSourceMapping) -> dict[str, Any]:
    """EventSourceMappingConfiguration as AWS shows it: every setting the mapping has for its source (the rules left
    the others unset), and LastModified as epoch seconds."""
    document: dict[str, Any] = {"UUID": mapping.uuid}
    for member, attribute in SETTINGS.items():
        value = getattr(mapping, attribute)
        if value is not None:
            document[member] = value
    document["FunctionArn"] = mapping.function_arn
    document["LastModified"] = mapping.last_modified
    if mapping.last_processing_result is not None:
        document["LastProcessingResult"] = mapping.last_processing_result
    document["State"] = mapping.state.value
    document["StateTransitionReason"] = mapping.state_transition_reason
    document["EventSourceMappingArn"] = mapping.arn
    return document


class EventSourceMappingOperations:
    def __init__(self, service: EventSourceMappingService) -> None:
        self._service = service

    def register(self, router: Router) -> None:
        router.operation("CreateEventSourceMapping", self.create_mapping)
        router.operation("GetEventSourceMapping", self.get_mapping)
        router.operation("UpdateEventSourceMapping", self.update_mapping)
        router.operation("DeleteEventSourceMapping", self.delete_mapping)
        router.operation("ListEventSourceMappings", self.list_mappings)

    async def create_mapping(self, call: Call) -> Response:
        mapping = await asyncio.to_thread(self._service.create, call.scope, call.json_body())
        return call.reply(mapping_to_aws(mapping))

    def get_mapping(self, call: Call) -> Response:
        return call.reply(mapping_to_aws(self._service.get(call.scope, call.params["UUID"])))

    async def update_mapping(self, call: Call) -> Response:
        mapping = await asyncio.to_thread(self._service.update, call.scope, call.params["UUID"], call.json_body())
        return call.reply(mapping_to_aws(mapping))

    async def delete_mapping(self, call: Call) -> Response:
        mapping = await asyncio.to_thread(self._service.delete, call.scope, call.params["UUID"])
        return call.reply(mapping_to_aws(mapping))

    def list_mappings(self, call: Call) -> Response:
        mappings, next_marker = self._service.list(
            call.scope, call.query("FunctionName"), call.query("EventSourceArn"), call.query("Marker"),
            call.query("MaxItems"),
        )
        document: dict[str, Any] = {"EventSourceMappings": [mapping_to_aws(mapping) for mapping in mappings]}
        if next_marker is not None:
            document["NextMarker"] = next_marker
        return call.reply(document)
