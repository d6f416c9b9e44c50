"""Wires the parts together and owns the server's lifecycle (start, periodic upkeep, clean stop)."""
from __future__ import annotations

import asyncio
import contextlib
import hashlib
from pathlib import Path

from lamina.api.app import MAX_REQUEST_BODY, ApiApp
from lamina.api.code import CodeDownloads
from lamina.api.functions import FunctionOperations
from lamina.api.invoke import InvokeOperations
from lamina.api.router import Router
from lamina.config import ServerConfig
from lamina.control.functions import FunctionService
from lamina.control.models import FunctionConfig
from lamina.http.server import HttpProtocol
from lamina.invoke.pool import EnvironmentPool, run_eviction
from lamina.invoke.service import InvocationService
from lamina.logs.store import LogStore
from lamina.runtimes.registry import RuntimeCatalog
from lamina.sandbox.host import HostCapabilities, detect_host_capabilities
from lamina.sandbox.process import remove_stale_sandboxes
from lamina.store.blobs import CodeStore
from lamina.store.sqlite import SqliteFunctionStore

EVICTION_INTERVAL_SECONDS = 1.0
LOG_FLUSH_INTERVAL_SECONDS = 0.2


def host_memory_low() -> bool:
    """True when less than 10% of the host's memory is available: idle environments should go."""
    values: dict[str, int] = {}
    with open("/proc/meminfo") as meminfo:
        for line in meminfo:
            name, _, rest = line.partition(":")
            values[name] = int(rest.split()[0])
    return values.get("MemAvailable", 0) < values.get("MemTotal", 0) // 10


class LaminaServer:
    def __init__(self, config: ServerConfig) -> None:
        self.config = config
        data_dir = config.data_dir
        data_dir.mkdir(parents=True, exist_ok=True)
        self._scratch_root = data_dir / "sandboxes"
        self._scratch_root.mkdir(exist_ok=True)
        # Each data directory gets its own cgroup parent, so stale-sandbox clean-up never touches another server's.
        cgroup_parent = "lamina-" + hashlib.sha256(str(data_dir.resolve()).encode()).hexdigest()[:12]
        self.capabilities: HostCapabilities = detect_host_capabilities(self._scratch_root, cgroup_parent=cgroup_parent)
        remove_stale_sandboxes(self.capabilities, self._scratch_root)
        self._store = SqliteFunctionStore(data_dir / "lamina.db")
        self._code = CodeStore(data_dir / "code")
        self._code.collect_garbage(self._store.referenced_code())
        self.logs = LogStore(data_dir / "logs")
        self.catalog = RuntimeCatalog.discover()
        self.pool = EnvironmentPool(
            self.catalog,
            self.capabilities,
            self._code_dir,
            self._scratch_root,
            keep_alive_seconds=config.keep_alive_seconds,
            max_idle_memory_mb=config.max_idle_memory_mb,
            max_environments=config.max_environments,
        )
        self.functions = FunctionService(self._store, self._code, self.catalog, config.account_id, self._on_function_change)
        self.functions.load()
        self.invocations = InvocationService(self.pool, self.logs)
        router = Router()
        InvokeOperations(self.functions, self.invocations, config.account_id).register(router)
        FunctionOperations(self.functions, self.endpoint).register(router)
        CodeDownloads(self._code).register(router)
        self._app = ApiApp(router, config.default_region)
        self._server: asyncio.base_events.Server | None = None
        self._tasks: list[asyncio.Task[None]] = []
        self._loop: asyncio.AbstractEventLoop | None = None

    def _code_dir(self, config: FunctionConfig) -> Path:
        return self._code.tree(config.code_sha256_hex)

    def _on_function_change(self, region: str, name: str) -> None:
        """Called by the control plane (from a worker thread) after a function changed or went away."""
        assert self._loop is not None
        self._loop.call_soon_threadsafe(self.pool.retire, region, name)

    async def start(self) -> None:
        self._loop = asyncio.get_running_loop()
        self._server = await self._loop.create_server(
            lambda: HttpProtocol(self._app.handle, max_body=MAX_REQUEST_BODY, on_error=self._app.on_error),
            self.config.host,
            self.config.port,
            reuse_address=True,
        )
        self._tasks = [
            asyncio.create_task(run_eviction(self.pool, EVICTION_INTERVAL_SECONDS, host_memory_low)),
            asyncio.create_task(self._flush_logs()),
        ]

    @property
    def port(self) -> int:
        assert self._server is not None
        return self._server.sockets[0].getsockname()[1]

    def endpoint(self) -> str:
        """The URL clients use to reach this server (the bound port, unless a public URL is configured)."""
        return self.config.public_url or f"http://{self.config.host}:{self.port}"

    async def _flush_logs(self) -> None:
        while True:
            await asyncio.sleep(LOG_FLUSH_INTERVAL_SECONDS)
            self.logs.flush()

    async def stop(self) -> None:
        if self._server is not None:
            self._server.close()
        for task in self._tasks:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        self.pool.stop_all()
        if self.capabilities.cgroups is not None:
            self.capabilities.cgroups.remove_parents()
        self.logs.close()
        self._store.close()
