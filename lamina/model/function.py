"""The function record every layer shares, and its AWS wire form (FunctionConfiguration)."""
from __future__ import annotations

import dataclasses
import functools
import hashlib
import json
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any

from lamina.model.arns import LATEST, function_arn
from lamina.model.keys import FunctionKey


#: Record fields that change without changing what a version runs.
BOOKKEEPING_FIELDS = ("revision_id", "last_modified", "state", "last_update_status")


def content_digest(config: "FunctionConfig", *, ignore: tuple[str, ...]) -> str:
    """A SHA-256 over the record's fields except `ignore`."""
    record = {key: value for key, value in config.to_record().items() if key not in ignore}
    return hashlib.sha256(json.dumps(record, sort_keys=True, default=str).encode()).hexdigest()


def aws_timestamp(moment: datetime | None = None) -> str:
    """FunctionConfiguration.LastModified is a string like `2024-05-01T12:34:56.789+0000`."""
    moment = moment or datetime.now(timezone.utc)
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}+0000"


@dataclass
class FunctionConfig:
    """One version of a function ($LATEST or a published number): code reference plus configuration."""

    region: str
    account: str
    name: str
    role: str
    runtime: str | None
    handler: str | None
    code_sha256_hex: str
    code_sha256_b64: str
    code_size: int
    version: str = LATEST
    description: str = ""
    timeout: int = 3
    memory_size: int = 128
    ephemeral_storage: int = 512
    environment: dict[str, str] | None = None
    architectures: list[str] = field(default_factory=lambda: ["x86_64"])
    package_type: str = "Zip"
    tracing_mode: str = "PassThrough"
    logging_config: dict[str, Any] = field(default_factory=dict)
    revision_id: str = ""
    last_modified: str = ""
    state: str = "Active"
    last_update_status: str = "Successful"
    #: The layer versions, in /opt order: {"arn", "code_size", "code_sha256_hex", "unzipped_size"} each.
    layers: list[dict[str, Any]] = field(default_factory=list)
    #: DeadLetterConfig.TargetArn: where failed asynchronous events go (an SQS queue or SNS topic ARN).
    dead_letter_target: str | None = None

    @functools.cached_property
    def key(self) -> FunctionKey:
        """The function this version belongs to (cached: the invoke path files leases and counts under it)."""
        return FunctionKey(self.account, self.region, self.name)

    @property
    def arn(self) -> str:
        return function_arn(self.region, self.account, self.name)

    @property
    def qualified_arn(self) -> str:
        return function_arn(self.region, self.account, self.name, self.version)

    @property
    def log_group(self) -> str:
        return self.logging_config.get("LogGroup") or f"/aws/lambda/{self.name}"

    @functools.cached_property
    def environment_fingerprint(self) -> str:
        """What a warm environment is bound to: the code and configuration it runs, not the revision or timestamps,
        so tag or permission changes (which only move the RevisionId) keep environments warm."""
        return content_digest(self, ignore=BOOKKEEPING_FIELDS)

    def to_record(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_record(cls, record: dict[str, Any]) -> "FunctionConfig":
        known = {f.name for f in dataclasses.fields(cls)}
        return cls(**{key: value for key, value in record.items() if key in known})

    def to_aws(self) -> dict[str, Any]:
        """FunctionConfiguration exactly as AWS returns it."""
        config: dict[str, Any] = {
            "FunctionName": self.name,
            "FunctionArn": self.arn if self.version == LATEST else self.qualified_arn,
            "Runtime": self.runtime,
            "Role": self.role,
            "Handler": self.handler,
            "CodeSize": self.code_size,
            "Description": self.description,
            "Timeout": self.timeout,
            "MemorySize": self.memory_size,
            "LastModified": self.last_modified,
            "CodeSha256": self.code_sha256_b64,
            "Version": self.version,
            "TracingConfig": {"Mode": self.tracing_mode},
            "RevisionId": self.revision_id,
            "State": self.state,
            "LastUpdateStatus": self.last_update_status,
            "PackageType": self.package_type,
            "Architectures": list(self.architectures),
            "EphemeralStorage": {"Size": self.ephemeral_storage},
            "SnapStart": {"ApplyOn": "None", "OptimizationStatus": "Off"},
            "RuntimeVersionConfig": {
                "RuntimeVersionArn": f"arn:aws:lambda:{self.region}::runtime:lamina-{self.runtime or 'none'}"
            },
            "LoggingConfig": {"LogFormat": "Text", **self.logging_config, "LogGroup": self.log_group},
            "Environment": {"Variables": dict(self.environment or {})},
        }
        if self.dead_letter_target:
            config["DeadLetterConfig"] = {"TargetArn": self.dead_letter_target}
        if self.layers:
            config["Layers"] = [{"Arn": layer["arn"], "CodeSize": layer["code_size"]} for layer in self.layers]
        if self.runtime is None:
            del config["Runtime"]
        if self.handler is None:
            del config["Handler"]
        return config

    def to_aws_listed(self) -> dict[str, Any]:
        """The form ListFunctions and ListVersionsByFunction return (recorded): no state, no runtime version."""
        config = self.to_aws()
        for key in ("State", "LastUpdateStatus", "RuntimeVersionConfig"):
            del config[key]
        return config
