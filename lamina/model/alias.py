"""The alias record every layer shares, and its AWS wire form (AliasConfiguration)."""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any

from lamina.model.arns import function_arn
from lamina.model.keys import FunctionKey


@dataclass(frozen=True)
class AliasConfig:
    """A named pointer to a version, optionally sending a share of invocations to one more version."""

    region: str
    account: str
    function_name: str
    name: str
    function_version: str
    description: str = ""
    #: AdditionalVersionWeights: version -> share of invocations (0.0-1.0); AWS allows one entry.
    additional_weights: dict[str, float] = field(default_factory=dict)
    revision_id: str = ""

    @property
    def key(self) -> FunctionKey:
        """The function the alias belongs to."""
        return FunctionKey(self.account, self.region, self.function_name)

    @property
    def arn(self) -> str:
        return function_arn(self.region, self.account, self.function_name, self.name)

    @property
    def versions(self) -> set[str]:
        """Every version this alias can run."""
        return {self.function_version, *self.additional_weights}

    def to_record(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_record(cls, record: dict[str, Any]) -> "AliasConfig":
        known = {f.name for f in dataclasses.fields(cls)}
        return cls(**{key: value for key, value in record.items() if key in known})

    def to_aws(self) -> dict[str, Any]:
        document: dict[str, Any] = {
            "AliasArn": self.arn,
            "Name": self.name,
            "FunctionVersion": self.function_version,
            "Description": self.description,
            "RevisionId": self.revision_id,
        }
        if self.additional_weights:
            document["RoutingConfig"] = {"AdditionalVersionWeights": dict(self.additional_weights)}
        return document
