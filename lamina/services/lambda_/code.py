"""Code.Location downloads (GetFunction hands out a Lamina URL that serves the stored zip), and Lamina's own view of
its code storage for operators."""
from __future__ import annotations

import asyncio
import re

from lamina.services.lambda_.router import Router
from lamina.services.lambda_.wire import Call
from lamina.errors import ResourceNotFoundException
from lamina.http.messages import Response
from lamina.store.blobs import CodeStore

_ADDRESS = re.compile(r"([0-9a-f]{64})\.zip")


class CodeDownloads:
    def __init__(self, code: CodeStore) -> None:
        self._code = code

    def register(self, router: Router) -> None:
        router.lamina("GET", "/lamina/code/{Blob}", self.download, "LaminaCodeDownload")
        router.lamina("GET", "/lamina/code-storage", self.storage, "LaminaCodeStorage")

    async def download(self, call: Call) -> Response:
        match = _ADDRESS.fullmatch(call.params["Blob"])
        path = self._code.blob_path(match.group(1)) if match else None
        if path is None or not path.is_file():
            raise ResourceNotFoundException("The resource you requested does not exist.")
        body = await asyncio.to_thread(path.read_bytes)  # up to 50 MB: off the event loop
        return Response(call.status, body, [("x-amzn-RequestId", call.request_id), ("Content-Type", "application/zip")])

    async def storage(self, call: Call) -> Response:
        """Extracted code stored (what --code-storage-limit applies to), the limit, and the number of trees."""
        return call.reply(await asyncio.to_thread(self._code.usage))
