"""Wires the parts together and owns the server's lifecycle (start, periodic upkeep, clean stop)."""
from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import hashlib
import logging
from pathlib import Path
from urllib.parse import urlsplit
from typing import Awaitable, Callable, ContextManager, Iterator

from lamina.services.lambda_.aliases import AliasOperations
from lamina.services.lambda_.app import LambdaApp
from lamina.services.lambda_.async_invoke import AsyncInvokeOperations
from lamina.services.lambda_.code import CodeDownloads
from lamina.services.lambda_.concurrency import ConcurrencyOperations
from lamina.services.lambda_.event_source_mappings import EventSourceMappingOperations
from lamina.services.lambda_.function_urls import FunctionUrlOperations
from lamina.services.lambda_.functions import FunctionOperations
from lamina.services.lambda_.invoke import InvokeOperations
from lamina.services.lambda_.layers import LayerOperations
from lamina.services.lambda_.permissions import PermissionOperations
from lamina.services.lambda_.router import Router
from lamina.services.lambda_.streaming_invoke import StreamingInvokeOperations
from lamina.services.lambda_.versions import VersionOperations
from lamina.services.lambda_.tags import TagOperations
from lamina.services.function_urls.app import FunctionUrlApp
from lamina.services.function_urls.backend import FunctionsDirectory, UrlBackend
from lamina.services.function_urls.ids import function_url
from lamina.asyncinvoke.wiring import AsyncInvocation
from lamina.eventsources.wiring import event_source_pollers
from lamina.config import ServerConfig
from lamina.executors import Executors
from lamina.supervisor import every, supervised
from lamina.control.concurrency import ConcurrencySettings
from lamina.control.event_source_mappings import EventSourceMappingService, function_targets
from lamina.control.code_sources import CodeSources
from lamina.control.function_urls import FunctionUrlService
from lamina.control.functions import FunctionService
from lamina.control.layers import LayerService
from lamina.model.function import FunctionConfig
from lamina.model.function_url import FunctionUrlConfig
from lamina.model.keys import FunctionKey
from lamina.control.permissions import PermissionService
from lamina.control.policy_targets import FunctionPolicyTargets
from lamina.control.tags import TagService
from lamina.gateway.dispatch import Gateway, api_limits
from lamina.gateway.unserved import unserved_services
from lamina.http.limits import ConnectionLimiter, raise_open_files_limit
from lamina.invoke.concurrency import ConcurrencyLimits
from lamina.invoke.environment import ExecutionEnvironment
from lamina.invoke.pool import EnvironmentPool, run_eviction
from lamina.invoke.provisioned import ProvisionedCapacity
from lamina.invoke.service import InvocationService, function_log_key, move_legacy_logs
from lamina.logs.store import LogStore
from lamina.runtimes.registry import BOOTSTRAPS_DIR, RuntimeCatalog
from lamina.sandbox.firewall import HostPort
from lamina.sandbox.host import HostCapabilities, detect_host_capabilities
from lamina.sandbox.host_slot import claim_host_slot
from lamina.sandbox.network import open_network_pool
from lamina.sandbox.opt import OptViews
from lamina.sandbox.launcher import BubblewrapLauncher
from lamina.sandbox.views import NeutralViews
from lamina.sandbox.process import remove_stale_sandboxes
from lamina.store.attachments import SqliteAttachmentStore
from lamina.store.blobs import CodeStore
from lamina.store.concurrency import SqliteConcurrencyStore
from lamina.store.event_source_mappings import SqliteEventSourceMappingStore
from lamina.store.data_dir_lock import DataDirLock
from lamina.store.database import Database
from lamina.store.layers import SqliteLayerStore
from lamina.store.space import SpaceReserve
from lamina.store.function_urls import SqliteFunctionUrlStore
from lamina.store.functions import SqliteFunctionStore
from lamina.store.versions import SqliteVersionStore

EVICTION_INTERVAL_SECONDS = 1.0
#: The space reserve is checked often (a statvfs); unreferenced code is collected less so (it reads every record).
RESERVE_INTERVAL_SECONDS = 5.0
CODE_COLLECTION_INTERVAL_SECONDS = 60.0
_log = logging.getLogger("lamina.server")
#: A clean stop waits this long for the environments' teardowns; remove_parents() then takes what is left.
STOP_TEARDOWN_TIMEOUT_SECONDS = 5.0


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
        # Before anything in the directory, or any cgroup or sandbox it names, is touched (DataDirInUse otherwise).
        self._data_dir_lock = DataDirLock(data_dir)
        self._data_dir_lock.acquire()
        self._slot = claim_host_slot()
        self._scratch_root = data_dir / "sandboxes"
        self._scratch_root.mkdir(exist_ok=True)
        # Each data directory gets its own cgroup parent, so stale-sandbox clean-up never touches another server's.
        cgroup_parent = "lamina-" + hashlib.sha256(str(data_dir.resolve()).encode()).hexdigest()[:12]
        self.capabilities: HostCapabilities = detect_host_capabilities(self._scratch_root, cgroup_parent=cgroup_parent)
        remove_stale_sandboxes(self.capabilities, self._scratch_root)
        missing = list(self.capabilities.missing)
        self.networks = open_network_pool(
            self._slot, tuple(HostPort.parse(entry) for entry in config.allowed_host_ports), missing
        )
        self.capabilities = dataclasses.replace(self.capabilities, missing=tuple(missing))
        # One connection to lamina.db, shared by every store with tables there (one transaction() for all). Tables an
        # earlier Lamina wrote without accounts are rebuilt as the stores open them: their rows are the served account's.
        self._database = Database(data_dir / "lamina.db", legacy_account=config.account_id)
        self._store = SqliteFunctionStore(self._database)
        self.executors = Executors()
        self._code = CodeStore(data_dir / "code", limit=config.code_storage_limit, referenced=self._referenced_code)
        self._reserve = SpaceReserve(data_dir)
        self._reserve.replenish()
        self.code_sources = CodeSources(
            config.s3_endpoint_url or config.aws_endpoint_url, config.default_region, executor=self.executors.s3
        )
        self._layer_store = SqliteLayerStore(self._database)
        self.layers = LayerService(self._layer_store, self._code, self.code_sources, reserve=self._reserve)
        self._code.collect_garbage(grace=0.0)
        _log.info("code storage: %(ExtractedCodeSize)d bytes of extracted code in %(Trees)d trees, limit "
                  "%(CodeStorageLimit)d", self._code.usage())
        self._opt_views = OptViews(data_dir / "opt", can_mount=self.capabilities.is_root)
        self._views = NeutralViews(data_dir / "views", can_mount=self.capabilities.is_root)
        self.catalog = RuntimeCatalog.discover()
        self.capabilities = dataclasses.replace(self.capabilities, neutral_paths={
            str(path): str(self._views.pin(path)) for path in [BOOTSTRAPS_DIR, *self.catalog.interpreter_prefixes()]
        })
        self.logs = LogStore(data_dir / "logs")
        move_legacy_logs(self.logs, config.account_id)  # logs an earlier Lamina filed without the account
        self.pool = EnvironmentPool(
            self.catalog,
            self.capabilities,
            self._code_view,
            BubblewrapLauncher(self.capabilities, self._scratch_root),
            keep_alive_seconds=config.keep_alive_seconds,
            max_idle_memory_mb=config.max_idle_memory_mb,
            max_environments=config.max_environments,
            opt_view_for=self._opt_view,
            slot=self._slot,
            networks=self.networks,
            on_idle_output=self._keep_idle_output,
        )
        self._version_store = SqliteVersionStore(self._database)
        self.functions = FunctionService(
            self._store, self._code, self.catalog, self._on_function_change,
            sources=self.code_sources, layers=self.layers, version_store=self._version_store, reserve=self._reserve,
            transaction=self._database.transaction,
        )
        self.functions.load()
        self.provisioned = ProvisionedCapacity(self.pool)
        self.pool.serve_provisioned_from(self.provisioned)
        self.concurrency_limits = ConcurrencyLimits(config.concurrency_limit, self.provisioned)
        self._concurrency_store = SqliteConcurrencyStore(self._database)
        self.concurrency = ConcurrencySettings(
            self._concurrency_store, self.functions, self.concurrency_limits, self.provisioned, self.executors.settings
        )
        self.concurrency.load()
        self._mapping_store = SqliteEventSourceMappingStore(self._database)
        self.event_source_mappings = EventSourceMappingService(
            self._mapping_store, function_targets(self.functions), self._after
        )
        self.event_source_mappings.load()
        self._attachments = SqliteAttachmentStore(self._database)
        self.tags = TagService(
            self._attachments, self.functions, others={"event-source-mapping": self.event_source_mappings}
        )
        self.tags.load()
        policy_targets = FunctionPolicyTargets(self.functions)
        self.permissions = PermissionService(self._attachments, policy_targets)
        self.permissions.load()
        self._url_store = SqliteFunctionUrlStore(self._database)
        self.function_urls = FunctionUrlService(self._url_store, FunctionsDirectory(self.functions))
        self.function_urls.load()
        self.functions.on_delete(self._forget_attachments)
        self.functions.on_delete(self.event_source_mappings.function_deleted)
        self.functions.on_qualifier_delete(self.permissions.forget)
        self.invocations = InvocationService(self.pool, self.logs, self.concurrency_limits)
        self.async_invocation = AsyncInvocation(
            data_dir,
            self._database,
            self.functions,
            self.invocations,
            legacy_account=config.account_id,
            retry_base_seconds=config.async_retry_base_seconds,
            aws_endpoint_url=config.aws_endpoint_url,
            max_workers_per_function=config.max_environments,
            reserved_concurrency=self.concurrency_limits.reserved,
            destination_executor=self.executors.destinations,
        )
        self.event_sources = event_source_pollers(
            self.event_source_mappings, self.functions, self.invocations,
            aws_endpoint_url=config.aws_endpoint_url, executor=self.executors.event_sources,
        )
        router = Router()
        InvokeOperations(self.functions, self.invocations, self.async_invocation.invoker).register(router)
        StreamingInvokeOperations(self.functions, self.invocations).register(router)
        AsyncInvokeOperations(
            self.async_invocation.configs,
            self.async_invocation.invoker,
            self.functions,
            self.async_invocation.queue_path,
        ).register(router)
        FunctionOperations(self.functions, self.endpoint, self.concurrency, self.tags).register(router)
        TagOperations(self.tags).register(router)
        PermissionOperations(self.permissions).register(router)
        ConcurrencyOperations(self.concurrency).register(router)
        LayerOperations(self.layers, self.endpoint).register(router)
        VersionOperations(self.functions).register(router)
        AliasOperations(self.functions).register(router)
        FunctionUrlOperations(self.function_urls, self._function_url_of).register(router)
        EventSourceMappingOperations(self.event_source_mappings).register(router)
        CodeDownloads(self._code).register(router)
        # The front door: Lambda's app, and the services the next issues serve on the same port (until then each
        # answers in its own protocol that the operation is not served).
        url_app = FunctionUrlApp(
            UrlBackend(self.function_urls, self.functions, self.permissions, self.invocations),
            config.url_domain,
            lambda: self.port,
        )
        self._gateway = Gateway(
            LambdaApp(router), unserved_services(), account=config.account_id, default_region=config.default_region,
            function_urls=url_app,
        )
        self._server: asyncio.base_events.Server | None = None
        self._tasks: list[asyncio.Task[None]] = []
        self._loop: asyncio.AbstractEventLoop | None = None

    def _referenced_code(self) -> set[str]:
        """Content addresses any function version or layer refers to (a deleted layer's, while functions use it)."""
        return self._store.referenced_code() | self.layers.referenced_code(self._store.list_versions(None, None))

    def _keep_idle_output(self, environment: ExecutionEnvironment, output: bytes) -> None:
        """What a runtime wrote outside any invocation (before dying idle, say) goes to its function's log."""
        config = environment.config
        self.logs.append(function_log_key(config.key), environment.log_stream, output)

    def _code_view(self, config: FunctionConfig) -> ContextManager[Path]:
        return self._views.view(self._code.tree(config.code_sha256_hex))

    @contextlib.contextmanager
    def _opt_view(self, config: FunctionConfig) -> Iterator[Path | None]:
        trees = [self._code.tree(layer["code_sha256_hex"]) for layer in config.layers]
        with self._opt_views.view(trees) as opt:
            if opt not in trees:
                yield opt  # none, or an overlay of several layers, which shows no host path either
                return
            with self._views.view(opt) as neutral:
                yield neutral

    def _forget_attachments(self, function: FunctionKey) -> None:
        """A deleted function's tags, resource policies and URLs go with it."""
        self.tags.forget(function)
        self.permissions.forget(function)
        self.function_urls.forget_function(function)

    def _after(self, delay: float, work: Callable[[], None]) -> None:
        """Run `work` on a control thread `delay` seconds from now (callable from any thread, once started)."""
        loop = self._loop
        assert loop is not None

        def start() -> None:
            with contextlib.suppress(RuntimeError):  # stopping: the executors are gone, the next start settles it
                loop.run_in_executor(None, work)

        loop.call_soon_threadsafe(loop.call_later, delay, start)

    def _function_url_of(self, config: FunctionUrlConfig) -> str:
        """`http://<id>.lambda-url.<region>.<url-domain>:<port>/`: the listening port, or a public URL's scheme and
        port (behind a proxy)."""
        public = urlsplit(self.config.public_url) if self.config.public_url else None
        scheme = public.scheme if public is not None else "http"
        port = public.port if public is not None else self.port
        return function_url(config.url_id, config.function.region, self.config.url_domain, port, scheme)

    def _on_function_change(self, function: FunctionKey, version: str | None = None) -> None:
        """Called by the control plane (from a worker thread) after a version (None: the whole function) changed or
        went away."""
        assert self._loop is not None
        self._loop.call_soon_threadsafe(self.pool.retire, function, version)
        self._loop.call_soon_threadsafe(self.concurrency.reconcile, function)

    async def start(self) -> None:
        self._loop = asyncio.get_running_loop()
        config = self.config
        limits = api_limits(config.http_header_timeout, config.http_body_timeout, config.http_idle_timeout)
        # Connections are capped below the open-files limit, so that no client can use up the descriptors.
        connections = ConnectionLimiter.within(
            raise_open_files_limit(), config.max_connections, config.max_connections_per_peer
        )
        self._server = await self._loop.create_server(
            lambda: self._gateway.protocol(limits, connections),
            self.config.host,
            self.config.port,
            reuse_address=True,
        )
        # Blocking work runs on named, bounded executors (lamina/executors.py); asyncio.to_thread lands on `control`.
        self._loop.set_default_executor(self.executors.control)
        self.logs.start()  # the lamina-log-writer thread
        self._tasks = [
            asyncio.create_task(supervised(
                "pool eviction", lambda: run_eviction(self.pool, EVICTION_INTERVAL_SECONDS, host_memory_low)
            )),
            asyncio.create_task(every("space reserve", RESERVE_INTERVAL_SECONDS, self._upkeep(self._reserve.replenish))),
            asyncio.create_task(every(
                "code garbage collection", CODE_COLLECTION_INTERVAL_SECONDS, self._upkeep(self._code.collect_garbage)
            )),
        ]
        self.concurrency.start()
        await self.async_invocation.start()
        self.event_sources.start()

    @property
    def port(self) -> int:
        assert self._server is not None
        return self._server.sockets[0].getsockname()[1]

    def endpoint(self) -> str:
        """The URL clients use to reach this server (the bound port, unless a public URL is configured)."""
        return self.config.public_url or f"http://{self.config.host}:{self.port}"

    def _upkeep(self, work: Callable[[], None]) -> Callable[[], Awaitable[None]]:
        """`work` as a round of storage upkeep on the upkeep executor."""
        assert self._loop is not None
        loop, executor = self._loop, self.executors.upkeep
        return lambda: loop.run_in_executor(executor, work)

    async def stop(self) -> None:
        if self._server is not None:
            self._server.close()
        for task in self._tasks:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        await self.event_sources.stop()
        await self.async_invocation.stop()
        await self.concurrency.close()
        await self.pool.stop_all(STOP_TEARDOWN_TIMEOUT_SECONDS)
        if self.capabilities.cgroups is not None:
            self.capabilities.cgroups.remove_parents()
        self.logs.close()
        self._concurrency_store.close()
        self._url_store.close()
        self._mapping_store.close()
        self._attachments.close()
        self._layer_store.close()
        self._version_store.close()
        self._store.close()
        self._database.close()
        if self.networks is not None:
            self.networks.close()
        self._views.close()
        self.executors.close()
        self._slot.release()
        self._data_dir_lock.release()
