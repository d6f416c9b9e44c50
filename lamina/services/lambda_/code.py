"""Code.Location downloads (GetFunction hands out a Lamina URL that serves the stored zip), and Lamina's own view of
its code storage for operators."""
from __future__ import annotations

import asyncio
import re

from lamina.services.lambda_.router import Router
from lamina.services.lambda_.wire import Call
from lamina.errors import ResourceNotFoundException
from lamina.http.server import Response
from lamina.store.blobs import CodeStore

_ADDRESS = re.compile(r"([0-9a-f]{64})\.zip")


class CodeDownloads:
    def __init__(self, code: CodeStore) -> None:
        self._code = code

    def register(self, router: Router) -> None:
        router.add("GET", "/lamina/code/{Blob}", self.download)
        router.add("GET", "/lamina/code-storage", self.storage)

    def download(self, call: Call) -> Response:
        match = _ADDRESS.fullmatch(call.params["Blob"])
        path = self._code.blob_path(match.group(1)) if match else None
        if path is None or not path.is_file():
            raise ResourceNotFoundException("The resource you requested does not exist.")
        return Response(200, path.read_bytes(), [("x-amzn-RequestId", call.request_id), ("Content-Type", "application/zip")])

    async def storage(self, call: Call) -> Response:
        """Extracted code stored (what --code-storage-limit applies to), the limit, and the number of trees."""
        return call.reply(200, await asyncio.to_thread(self._code.usage))
