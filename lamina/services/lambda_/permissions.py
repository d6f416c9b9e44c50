"""AddPermission, GetPolicy and RemovePermission: parse the request, call PermissionService, serialise."""
from __future__ import annotations

from lamina.services.lambda_.router import Router
from lamina.services.lambda_.wire import Call
from lamina.control.permissions import PermissionService
from lamina.http.server import Response



class PermissionOperations:
    def __init__(self, permissions: PermissionService) -> None:
        self._permissions = permissions

    def register(self, router: Router) -> None:
        router.operation("AddPermission", self.add_permission)
        router.operation("GetPolicy", self.get_policy)
        router.operation("RemovePermission", self.remove_permission)

    def add_permission(self, call: Call) -> Response:
        document = self._permissions.add(
            call.region, call.params["FunctionName"], call.query("Qualifier"), call.json_body()
        )
        return call.reply(201, document)

    def get_policy(self, call: Call) -> Response:
        return call.reply(200, self._permissions.get(call.region, call.params["FunctionName"], call.query("Qualifier")))

    def remove_permission(self, call: Call) -> Response:
        self._permissions.remove(
            call.region,
            call.params["FunctionName"],
            call.params["StatementId"],
            call.query("Qualifier"),
            call.query("RevisionId"),
        )
        return call.reply(204)
