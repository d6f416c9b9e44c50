"""botocore's service models, the one source of each operation's HTTP binding and of each service's protocol
metadata (loaded once per service, without a botocore session)."""
from __future__ import annotations

import functools
from typing import Any


@functools.lru_cache(maxsize=None)
def service_model(name: str) -> dict[str, Any]:
    """botocore's `service-2` document of service `name` (botocore's name: lambda, logs, iam, sts, cloudwatch)."""
    from botocore.loaders import create_loader

    return create_loader().load_service_model(name, "service-2")
