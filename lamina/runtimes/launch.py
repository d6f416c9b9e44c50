"""What an execution environment starts: the runtime's command, its AWS environment variables and its mounts,
composed from the function's configuration and the runtime catalog."""
from __future__ import annotations

import dataclasses
import json
import os
from dataclasses import dataclass
from pathlib import Path

from lamina.model.function import FunctionConfig
from lamina.runtimes.registry import (
    BASE_LD_LIBRARY_PATH,
    BASE_PATH,
    BOOTSTRAPS_DIR,
    RUNTIME_ROOT,
    TASK_ROOT,
    RuntimeCatalog,
)
from lamina.sandbox.network import EnvironmentNetwork
from lamina.sandbox.process import SandboxSpec

MISSING_BOOTSTRAP = "Couldn't find valid bootstrap(s): [/var/task/bootstrap /opt/bootstrap]"


@dataclass(frozen=True)
class EnvironmentPlan:
    """One environment-to-be: its function, code and layers on the host, and who it runs as."""

    env_id: str
    config: FunctionConfig
    code_dir: Path
    opt_dir: Path | None
    uid: int | None
    log_stream: str
    initialization_type: str
    sandboxed: bool


def missing_entrypoint(plan: EnvironmentPlan) -> bytes | None:
    """AWS's init error for a custom runtime with no bootstrap, in /var/task or a layer's /opt."""
    if not (plan.config.runtime or "").startswith("provided"):
        return None
    if _is_executable(plan.code_dir / "bootstrap") or _runs_layer_bootstrap(plan):
        return None
    return json.dumps({"errorType": "Runtime.InvalidEntrypoint", "errorMessage": MISSING_BOOTSTRAP}).encode()


def sandbox_spec(plan: EnvironmentPlan, catalog: RuntimeCatalog, runtime_api: str,
                 network: EnvironmentNetwork | None) -> SandboxSpec:
    """The sandbox that runs `plan`'s runtime, talking to the Runtime API at `runtime_api` (host:port)."""
    task_root = TASK_ROOT if plan.sandboxed else str(plan.code_dir)
    runtime_root = RUNTIME_ROOT if plan.sandboxed else str(BOOTSTRAPS_DIR)
    opt_root = "/opt" if plan.sandboxed or plan.opt_dir is None else str(plan.opt_dir)
    launch = catalog.launch(plan.config.runtime or "", task_root=task_root, opt_root=opt_root,
                            sandboxed=plan.sandboxed)
    if _runs_layer_bootstrap(plan):
        launch = dataclasses.replace(launch, argv=[f"{opt_root}/bootstrap"])
    return SandboxSpec(
        env_id=plan.env_id,
        argv=launch.argv,
        env=_environment(plan, runtime_api, task_root, runtime_root, launch.env),
        code_dir=plan.code_dir,
        runtime_dir=BOOTSTRAPS_DIR,
        opt_dir=plan.opt_dir,
        ro_binds=launch.ro_binds,
        masks=launch.masks,
        memory_mb=plan.config.memory_size,
        ephemeral_storage_mb=plan.config.ephemeral_storage,
        uid=plan.uid,
        network=network,
    )


def _environment(plan: EnvironmentPlan, runtime_api: str, task_root: str, runtime_root: str,
                 runtime_env: dict[str, str]) -> dict[str, str]:
    """The function's variables, then AWS's reserved ones (which a function cannot override)."""
    config = plan.config
    reserved = {
        "AWS_LAMBDA_FUNCTION_NAME": config.name,
        "AWS_LAMBDA_FUNCTION_VERSION": config.version,
        "AWS_LAMBDA_FUNCTION_MEMORY_SIZE": str(config.memory_size),
        "AWS_LAMBDA_LOG_GROUP_NAME": config.log_group,
        "AWS_LAMBDA_LOG_STREAM_NAME": plan.log_stream,
        "AWS_LAMBDA_INITIALIZATION_TYPE": plan.initialization_type,
        "AWS_LAMBDA_RUNTIME_API": runtime_api,
        "AWS_REGION": config.region,
        "AWS_DEFAULT_REGION": config.region,
        "_HANDLER": config.handler or "",
        "LAMBDA_TASK_ROOT": task_root,
        "LAMBDA_RUNTIME_DIR": runtime_root,
        "TZ": ":UTC",
        "LANG": "en_US.UTF-8",
        "PATH": BASE_PATH,
        "LD_LIBRARY_PATH": BASE_LD_LIBRARY_PATH,
        **runtime_env,
    }
    return {**(config.environment or {}), **reserved}


def _runs_layer_bootstrap(plan: EnvironmentPlan) -> bool:
    """A custom runtime without /var/task/bootstrap runs a layer's /opt/bootstrap (AWS looks in that order)."""
    return (
        (plan.config.runtime or "").startswith("provided")
        and plan.opt_dir is not None
        and not _is_executable(plan.code_dir / "bootstrap")
        and _is_executable(plan.opt_dir / "bootstrap")
    )


def _is_executable(path: Path) -> bool:
    return path.is_file() and os.access(path, os.X_OK)
