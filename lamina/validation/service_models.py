"""botocore's service models, the one source of each operation's HTTP binding and of each service's protocol
metadata (loaded once per service, without a botocore session)."""
from __future__ import annotations

import functools
from typing import Any


@functools.lru_cache(maxsize=None)
def service_model(name: str) -> dict[str, Any]:
    """botocore's `service-2` document of service `name` (botocore's name: lambda, logs, iam, sts, cloudwatch)."""
    return _loader().load_service_model(name, "service-2")


@functools.lru_cache(maxsize=1)
def _loader() -> Any:
    """One loader for every model: it caches the listing of botocore's data directories (~50 ms each time)."""
    from botocore.loaders import create_loader

    return create_loader()
