"""AddPermission, GetPolicy and RemovePermission: parse the request, call PermissionService, serialise."""
from __future__ import annotations

import asyncio

from lamina.services.lambda_.router import Router
from lamina.services.lambda_.wire import Call
from lamina.control.permissions import PermissionService
from lamina.http.messages import Response



class PermissionOperations:
    def __init__(self, permissions: PermissionService) -> None:
        self._permissions = permissions

    def register(self, router: Router) -> None:
        router.operation("AddPermission", self.add_permission)
        router.operation("GetPolicy", self.get_policy)
        router.operation("RemovePermission", self.remove_permission)

    async def add_permission(self, call: Call) -> Response:
        document = await asyncio.to_thread(
            self._permissions.add, call.scope, call.params["FunctionName"], call.query("Qualifier"), call.json_body()
        )
        return call.reply(document)

    def get_policy(self, call: Call) -> Response:
        return call.reply(self._permissions.get(call.scope, call.params["FunctionName"], call.query("Qualifier")))

    async def remove_permission(self, call: Call) -> Response:
        await asyncio.to_thread(
            self._permissions.remove,
            call.scope,
            call.params["FunctionName"],
            call.params["StatementId"],
            call.query("Qualifier"),
            call.query("RevisionId"),
        )
        return call.reply()
