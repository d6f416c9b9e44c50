"""The log text of one invocation, kept for the `X-Amz-Log-Result` tail."""
from __future__ import annotations

import base64

TAIL_BYTES = 4096


class InvocationLog:
    """Platform lines and the function's raw output, in arrival order.

    Output chunks are stored as they come (one list append each; this is on the invoke hot path) and joined only
    when the tail is asked for.
    """

    __slots__ = ("_chunks",)

    def __init__(self) -> None:
        self._chunks: list[bytes] = []

    def write(self, data: bytes) -> None:
        """Raw output from the runtime, as-is."""
        self._chunks.append(data)

    def line(self, text: str) -> None:
        """A platform line (START, END, REPORT, ...), which always starts on a line of its own."""
        chunks = self._chunks
        for chunk in reversed(chunks):
            if chunk:
                if not chunk.endswith(b"\n"):
                    chunks.append(b"\n")
                break
        chunks.append(text.encode("utf-8") + b"\n")

    def getvalue(self) -> bytes:
        return b"".join(self._chunks)

    def tail(self, limit: int = TAIL_BYTES) -> bytes:
        """The last `limit` bytes, joining only the chunks that reach into them."""
        taken: list[bytes] = []
        size = 0
        for chunk in reversed(self._chunks):
            taken.append(chunk)
            size += len(chunk)
            if size >= limit:
                break
        text = b"".join(reversed(taken))
        return text[-limit:] if limit > 0 else b""

    def tail_base64(self, limit: int = TAIL_BYTES) -> str:
        """What `X-Amz-Log-Result` carries: base64 of the last 4 KB of the invocation's log."""
        return base64.b64encode(self.tail(limit)).decode("ascii")
