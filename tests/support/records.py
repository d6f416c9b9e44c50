"""Records for unit tests that need a stored function without a server."""
from __future__ import annotations

import dataclasses

from lamina.model.function import FunctionConfig


def latest(**changes: object) -> FunctionConfig:
    """A minimal `$LATEST` of function `f`, with `changes` applied."""
    config = FunctionConfig(
        region="us-east-1", account="000000000000", name="f", role="arn:aws:iam::000000000000:role/r",
        runtime="python3.12", handler="app.handler", code_sha256_hex="ab" * 32, code_sha256_b64="q83vEjRWeJA=",
        code_size=10, revision_id="r0", last_modified="2024-01-01T00:00:00.000+0000",
    )
    return dataclasses.replace(config, **changes)
