"""TagResource, UntagResource and ListTags: parse the request, call TagService, serialise AWS's response."""
from __future__ import annotations

import asyncio

from urllib.parse import parse_qs

from lamina.services.lambda_.router import Router
from lamina.services.lambda_.wire import Call
from lamina.control.tags import TagService
from lamina.http.messages import Response



class TagOperations:
    def __init__(self, tags: TagService) -> None:
        self._tags = tags

    def register(self, router: Router) -> None:
        router.operation("TagResource", self.tag_resource)
        router.operation("UntagResource", self.untag_resource)
        router.operation("ListTags", self.list_tags)

    async def tag_resource(self, call: Call) -> Response:
        await asyncio.to_thread(self._tags.tag, call.scope, call.params["Resource"], call.json_body().get("Tags"))
        return call.reply()

    async def untag_resource(self, call: Call) -> Response:
        keys = parse_qs(call.request.query, keep_blank_values=True).get("tagKeys")
        await asyncio.to_thread(self._tags.untag, call.scope, call.params["Resource"], keys)
        return call.reply()

    def list_tags(self, call: Call) -> Response:
        return call.reply({"Tags": self._tags.list(call.scope, call.params["Resource"])})
