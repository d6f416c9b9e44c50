"""Concurrency operations: reserved concurrency and provisioned-concurrency configs."""
from __future__ import annotations

from lamina.services.lambda_.router import Router
from lamina.services.lambda_.wire import Call
from lamina.model.arns import MAX_ARN_LENGTH, FunctionRef, merge_qualifier, parse_function_name
from lamina.control.concurrency import ConcurrencySettings
from lamina.errors import validation_error
from lamina.http.server import Response

MAX_PROVISIONED_PAGE = 50


class ConcurrencyOperations:
    def __init__(self, settings: ConcurrencySettings) -> None:
        self._settings = settings

    def register(self, router: Router) -> None:
        router.add("PUT", "/2017-10-31/functions/{FunctionName}/concurrency", self.put_function_concurrency)
        router.add("GET", "/2019-09-30/functions/{FunctionName}/concurrency", self.get_function_concurrency)
        router.add("DELETE", "/2017-10-31/functions/{FunctionName}/concurrency", self.delete_function_concurrency)
        provisioned = "/2019-09-30/functions/{FunctionName}/provisioned-concurrency"
        router.add("PUT", provisioned, self.put_provisioned_concurrency_config)
        router.add("GET", provisioned, self.get_provisioned_concurrency_config)
        router.add("DELETE", provisioned, self.delete_provisioned_concurrency_config)

    def put_function_concurrency(self, call: Call) -> Response:
        ref = parse_function_name(call.params["FunctionName"], max_length=MAX_ARN_LENGTH)
        reserved = self._settings.put_reserved(call.region, ref, call.json_body())
        return call.reply(200, {"ReservedConcurrentExecutions": reserved})

    def get_function_concurrency(self, call: Call) -> Response:
        ref = parse_function_name(call.params["FunctionName"], max_length=MAX_ARN_LENGTH)
        reserved = self._settings.get_reserved(call.region, ref)
        return call.reply(200, {} if reserved is None else {"ReservedConcurrentExecutions": reserved})

    def delete_function_concurrency(self, call: Call) -> Response:
        ref = parse_function_name(call.params["FunctionName"], max_length=MAX_ARN_LENGTH)
        self._settings.delete_reserved(call.region, ref)
        return call.reply(204)

    def put_provisioned_concurrency_config(self, call: Call) -> Response:
        ref = parse_function_name(call.params["FunctionName"], max_length=MAX_ARN_LENGTH)
        qualifier = merge_qualifier(ref, call.query("Qualifier"))
        view = self._settings.put_provisioned(call.region, ref, qualifier, call.json_body())
        return call.reply(202, view.to_aws())

    def get_provisioned_concurrency_config(self, call: Call) -> Response:
        """GET serves both GetProvisionedConcurrencyConfig and, with `?List=ALL`, the list operation."""
        ref = parse_function_name(call.params["FunctionName"], max_length=MAX_ARN_LENGTH)
        if call.query("List") is not None:
            return self._list(call, ref)
        qualifier = merge_qualifier(ref, call.query("Qualifier"))
        return call.reply(200, self._settings.get_provisioned(call.region, ref, qualifier).to_aws())

    def delete_provisioned_concurrency_config(self, call: Call) -> Response:
        ref = parse_function_name(call.params["FunctionName"], max_length=MAX_ARN_LENGTH)
        qualifier = merge_qualifier(ref, call.query("Qualifier"))
        self._settings.delete_provisioned(call.region, ref, qualifier)
        return call.reply(204)

    def _list(self, call: Call, ref: FunctionRef) -> Response:
        max_items = _max_items(call.query("MaxItems"))
        views = self._settings.list_provisioned(call.region, ref)
        marker = call.query("Marker")
        if marker:
            views = [view for view in views if view.arn > marker]
        page = views[:max_items]
        document: dict[str, object] = {"ProvisionedConcurrencyConfigs": [view.to_aws(with_arn=True) for view in page]}
        if len(views) > max_items:
            document["NextMarker"] = page[-1].arn
        return call.reply(200, document)


def _max_items(raw: str | None) -> int:
    if raw is None:
        return MAX_PROVISIONED_PAGE
    if not raw.lstrip("-").isdigit():
        raise validation_error(raw, "maxItems", "Member must be an integer")
    value = int(raw)
    if value < 1:
        raise validation_error(raw, "maxItems", "Member must have value greater than or equal to 1")
    if value > MAX_PROVISIONED_PAGE:
        raise validation_error(raw, "maxItems", f"Member must have value less than or equal to {MAX_PROVISIONED_PAGE}")
    return value
