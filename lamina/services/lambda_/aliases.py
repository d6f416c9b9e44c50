"""Alias operations: CreateAlias, GetAlias, UpdateAlias, DeleteAlias, ListAliases."""
from __future__ import annotations

import asyncio

from lamina.services.lambda_.listing import max_items, page
from lamina.services.lambda_.router import Router
from lamina.services.lambda_.wire import Call
from lamina.model.arns import MAX_ARN_LENGTH, parse_function_name
from lamina.model.keys import FunctionKey
from lamina.control.functions import FunctionService
from lamina.http.messages import Response



class AliasOperations:
    def __init__(self, service: FunctionService) -> None:
        self._service = service
        self._aliases = service.aliases

    def register(self, router: Router) -> None:
        router.operation("CreateAlias", self.create_alias)
        router.operation("ListAliases", self.list_aliases)
        router.operation("GetAlias", self.get_alias)
        router.operation("UpdateAlias", self.update_alias)
        router.operation("DeleteAlias", self.delete_alias)

    def _function(self, call: Call) -> FunctionKey:
        ref = parse_function_name(call.params["FunctionName"], max_length=MAX_ARN_LENGTH)
        return self._service.check_scope(call.scope, ref)

    async def create_alias(self, call: Call) -> Response:
        function = self._function(call)
        alias = await asyncio.to_thread(self._aliases.create, function, call.json_body())
        return call.reply(alias.to_aws())

    def get_alias(self, call: Call) -> Response:
        function = self._function(call)
        return call.reply(self._aliases.require(function, call.params["Name"]).to_aws())

    async def update_alias(self, call: Call) -> Response:
        function = self._function(call)
        alias = await asyncio.to_thread(self._aliases.update, function, call.params["Name"], call.json_body())
        return call.reply(alias.to_aws())

    async def delete_alias(self, call: Call) -> Response:
        function = self._function(call)
        await asyncio.to_thread(self._aliases.delete, function, call.params["Name"])
        return call.reply()

    def list_aliases(self, call: Call) -> Response:
        function = self._function(call)
        function_version = call.query("FunctionVersion")
        size = max_items(call.query("MaxItems"), "ListAliases", FunctionVersion=function_version)
        aliases = self._aliases.list(function, function_version)
        chosen, next_marker = page(aliases, lambda a: a.name, call.query("Marker"), size, str)
        document: dict[str, object] = {"Aliases": [alias.to_aws() for alias in chosen]}
        if next_marker is not None:
            document["NextMarker"] = next_marker
        return call.reply(document)
