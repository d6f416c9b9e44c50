"""Wires the parts together and owns the server's lifecycle (start, periodic upkeep, clean stop)."""
from __future__ import annotations

import asyncio
import contextlib
import hashlib
from pathlib import Path
from typing import ContextManager

from lamina.api.aliases import AliasOperations
from lamina.api.app import MAX_REQUEST_BODY, ApiApp
from lamina.api.async_invoke import AsyncInvokeOperations
from lamina.api.code import CodeDownloads
from lamina.api.concurrency import ConcurrencyOperations
from lamina.api.functions import FunctionOperations
from lamina.api.invoke import InvokeOperations
from lamina.api.layers import LayerOperations
from lamina.api.permissions import PermissionOperations
from lamina.api.router import Router
from lamina.api.versions import VersionOperations
from lamina.api.tags import TagOperations
from lamina.asyncinvoke.component import AsyncInvocation
from lamina.config import ServerConfig
from lamina.control.concurrency import ConcurrencySettings
from lamina.control.code_sources import CodeSources
from lamina.control.functions import FunctionService
from lamina.control.layers import LayerService
from lamina.control.models import FunctionConfig
from lamina.control.permissions import PermissionService
from lamina.control.policy_targets import FunctionPolicyTargets
from lamina.control.tags import TagService
from lamina.http.server import HttpProtocol
from lamina.invoke.concurrency import ConcurrencyLimits
from lamina.invoke.pool import EnvironmentPool, run_eviction
from lamina.invoke.provisioned import ProvisionedCapacity
from lamina.invoke.service import InvocationService
from lamina.logs.store import LogStore
from lamina.runtimes.registry import RuntimeCatalog
from lamina.sandbox.host import HostCapabilities, detect_host_capabilities
from lamina.sandbox.opt import OptViews
from lamina.sandbox.process import remove_stale_sandboxes
from lamina.store.attachments import SqliteAttachmentStore
from lamina.store.blobs import CodeStore
from lamina.store.concurrency import SqliteConcurrencyStore
from lamina.store.layers import SqliteLayerStore
from lamina.store.sqlite import SqliteFunctionStore
from lamina.store.versions import SqliteVersionStore

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
        self.code_sources = CodeSources(config.s3_endpoint_url or config.aws_endpoint_url, config.default_region)
        self._layer_store = SqliteLayerStore(data_dir / "lamina.db")
        self.layers = LayerService(self._layer_store, self._code, self.code_sources, config.account_id)
        self._code.collect_garbage(
            self._store.referenced_code() | self.layers.referenced_code(self._store.list_versions(None, None))
        )
        self._opt_views = OptViews(data_dir / "opt", can_mount=self.capabilities.is_root)
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
            opt_view_for=self._opt_view,
        )
        self._version_store = SqliteVersionStore(data_dir / "lamina.db")
        self.functions = FunctionService(
            self._store, self._code, self.catalog, config.account_id, self._on_function_change,
            sources=self.code_sources, layers=self.layers, version_store=self._version_store,
        )
        self.functions.load()
        self.provisioned = ProvisionedCapacity(self.pool)
        self.concurrency_limits = ConcurrencyLimits(config.concurrency_limit, self.provisioned)
        self._concurrency_store = SqliteConcurrencyStore(data_dir / "lamina.db")
        self.concurrency = ConcurrencySettings(
            self._concurrency_store, self.functions, self.concurrency_limits, self.provisioned, config.account_id
        )
        self.concurrency.load()
        self._attachments = SqliteAttachmentStore(data_dir / "lamina.db")
        self.tags = TagService(self._attachments, self.functions, config.account_id)
        self.tags.load()
        policy_targets = FunctionPolicyTargets(self.functions, config.account_id)
        self.permissions = PermissionService(self._attachments, policy_targets)
        self.permissions.load()
        self.functions.on_delete(self._forget_attachments)
        self.functions.on_qualifier_delete(self.permissions.forget)
        self.invocations = InvocationService(self.pool, self.logs, self.concurrency_limits)
        self.async_invocation = AsyncInvocation(
            data_dir,
            self.functions,
            self.invocations,
            account=config.account_id,
            retry_base_seconds=config.async_retry_base_seconds,
            aws_endpoint_url=config.aws_endpoint_url,
            max_workers_per_function=config.max_environments,
            reserved_concurrency=self.concurrency_limits.reserved,
        )
        router = Router()
        InvokeOperations(self.functions, self.invocations, self.async_invocation.invoker, config.account_id).register(
            router
        )
        AsyncInvokeOperations(
            self.async_invocation.configs,
            self.async_invocation.invoker,
            self.functions,
            self.async_invocation.queue_path,
            config.account_id,
        ).register(router)
        FunctionOperations(self.functions, self.endpoint, self.concurrency, self.tags).register(router)
        TagOperations(self.tags).register(router)
        PermissionOperations(self.permissions).register(router)
        ConcurrencyOperations(self.concurrency).register(router)
        LayerOperations(self.layers, self.endpoint).register(router)
        VersionOperations(self.functions).register(router)
        AliasOperations(self.functions).register(router)
        CodeDownloads(self._code).register(router)
        self._app = ApiApp(router, config.default_region)
        self._server: asyncio.base_events.Server | None = None
        self._tasks: list[asyncio.Task[None]] = []
        self._loop: asyncio.AbstractEventLoop | None = None

    def _code_dir(self, config: FunctionConfig) -> Path:
        return self._code.tree(config.code_sha256_hex)

    def _opt_view(self, config: FunctionConfig) -> ContextManager[Path | None]:
        return self._opt_views.view([self._code.tree(layer["code_sha256_hex"]) for layer in config.layers])

    def _forget_attachments(self, region: str, name: str) -> None:
        """A deleted function's tags and resource policies go with it."""
        self.tags.forget(region, name)
        self.permissions.forget(region, name)

    def _on_function_change(self, region: str, name: str, version: str | None = None) -> None:
        """Called by the control plane (from a worker thread) after a version (None: the whole function) changed or
        went away."""
        assert self._loop is not None
        self._loop.call_soon_threadsafe(self.pool.retire, region, name, version)
        self._loop.call_soon_threadsafe(self.concurrency.reconcile, region, name)

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
        self.concurrency.start()
        await self.async_invocation.start()

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
        await self.async_invocation.stop()
        await self.concurrency.close()
        self.pool.stop_all()
        if self.capabilities.cgroups is not None:
            self.capabilities.cgroups.remove_parents()
        self.logs.close()
        self._concurrency_store.close()
        self._attachments.close()
        self._layer_store.close()
        self._version_store.close()
        self._store.close()
