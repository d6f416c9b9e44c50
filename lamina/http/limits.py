"""What one connection may hold (`HttpLimits`) and how many connections a listener takes in total and per peer
(`ConnectionLimiter`, sized from the open-files limit that `raise_open_files_limit` raises).

These are the policy knobs of the HTTP layer, kept apart from the protocol that enforces them so that the wiring can
size them without importing the parser.
"""
from __future__ import annotations

import resource
from dataclasses import dataclass

#: "No limit" for sizes: an int, so the checks per header need no None test.
UNLIMITED = 1 << 62
#: What the open-files limit keeps free of API connections: environments (pipes, Runtime API sockets), databases,
#: logs. A quarter of the limit, at least 1024 but never more than half.
_MIN_FD_RESERVE = 1024


@dataclass(frozen=True)
class HttpLimits:
    """What one connection may hold; the defaults limit nothing (the Runtime API: a runtime parks `next` for minutes).

    Sizes are bytes: request line and headers (431 above), distinct headers (431), the request target (414).
    Timeouts are seconds (None: none). The header timeout runs from a request's first byte (a new connection's first
    request: from the connection's opening); a body is refused once a whole body-timeout period passes with nothing
    received (checked once a period, not per read); the idle timeout closes a keep-alive connection between requests.
    """

    max_head: int = UNLIMITED
    max_headers: int = UNLIMITED
    max_url: int = UNLIMITED
    header_timeout: float | None = None
    body_timeout: float | None = None
    idle_timeout: float | None = None


class ConnectionLimiter:
    """Caps one listener's connections in total and per peer address, so that no client can use up the server's file
    descriptors or crowd the others out; a connection over either cap is closed as soon as it is accepted."""

    __slots__ = ("total", "per_peer", "_open", "_by_peer")

    def __init__(self, total: int, per_peer: int) -> None:
        self.total = total
        self.per_peer = per_peer
        self._open = 0
        self._by_peer: dict[str, int] = {}

    @classmethod
    def within(cls, open_files: int, total: int = 0, per_peer: int = 0) -> ConnectionLimiter:
        """Caps for a process allowed `open_files` descriptors: by default all but a reserve, half of it per peer."""
        total = total or open_files - min(max(open_files // 4, _MIN_FD_RESERVE), open_files // 2)
        return cls(total, per_peer or max(1, total // 2))

    def admit(self, peer: str) -> bool:
        held = self._by_peer.get(peer, 0)
        if held >= self.per_peer or self._open >= self.total:
            return False
        self._by_peer[peer] = held + 1
        self._open += 1
        return True

    def release(self, peer: str) -> None:
        self._open -= 1
        held = self._by_peer.pop(peer) - 1
        if held:
            self._by_peer[peer] = held


def raise_open_files_limit() -> int:
    """Raises RLIMIT_NOFILE's soft limit to the hard one and returns it (sandboxes set their own 1,024)."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < hard:
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
            soft = hard
        except (ValueError, OSError):
            pass
    return soft
