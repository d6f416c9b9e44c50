"""The layer version record, its policy, and their AWS wire forms."""
from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass, field
from typing import Any

from lamina.model.arns import layer_arn
from lamina.model.keys import Scope


@dataclass
class LayerVersion:
    """One immutable published version of a layer; only its policy changes after publishing."""

    region: str
    account: str
    name: str
    version: int
    code_sha256_hex: str
    code_sha256_b64: str
    code_size: int
    unzipped_size: int
    created_date: str
    description: str = ""
    license_info: str | None = None
    #: None when the caller sent no list: AWS then leaves the member out, while an empty list is echoed.
    compatible_runtimes: list[str] | None = None
    compatible_architectures: list[str] | None = None
    policy: list[dict[str, Any]] = field(default_factory=list)
    policy_revision_id: str | None = None

    @property
    def scope(self) -> Scope:
        """The account and region the layer belongs to."""
        return Scope(self.account, self.region)

    @property
    def layer_arn(self) -> str:
        return layer_arn(self.region, self.account, self.name)

    @property
    def arn(self) -> str:
        return layer_arn(self.region, self.account, self.name, self.version)

    def matches(self, runtime: str | None, architecture: str | None) -> bool:
        """ListLayers / ListLayerVersions filters: a filter only matches versions that list the value."""
        if runtime is not None and runtime not in (self.compatible_runtimes or ()):
            return False
        return architecture is None or architecture in (self.compatible_architectures or ())

    def to_record(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_record(cls, record: dict[str, Any]) -> "LayerVersion":
        known = {f.name for f in dataclasses.fields(cls)}
        return cls(**{key: value for key, value in record.items() if key in known})

    def to_aws(self, location: str) -> dict[str, Any]:
        """PublishLayerVersion / GetLayerVersion / GetLayerVersionByArn."""
        return {
            "Content": {"Location": location, "CodeSha256": self.code_sha256_b64, "CodeSize": self.code_size},
            "LayerArn": self.layer_arn,
            **self.list_item(),
        }

    def list_item(self) -> dict[str, Any]:
        """ListLayerVersions' LayerVersions[] and ListLayers' LatestMatchingVersion."""
        document: dict[str, Any] = {
            "LayerVersionArn": self.arn,
            "Version": self.version,
            "Description": self.description,
            "CreatedDate": self.created_date,
        }
        if self.compatible_runtimes is not None:
            document["CompatibleRuntimes"] = list(self.compatible_runtimes)
        if self.license_info is not None:
            document["LicenseInfo"] = self.license_info
        if self.compatible_architectures is not None:
            document["CompatibleArchitectures"] = list(self.compatible_architectures)
        return document

    def policy_document(self) -> str:
        """GetLayerVersionPolicy's `Policy`: a JSON string, compact like AWS's."""
        return json.dumps({"Version": "2012-10-17", "Id": "default", "Statement": self.policy}, separators=(",", ":"))


def layer_statement(
    statement_id: str, principal: str, resource: str, organization_id: str | None
) -> dict[str, Any]:
    """A layer policy statement as AWS writes it: an account id becomes its root ARN, `*` stays."""
    shown: str | dict[str, str] = principal
    if principal != "*":
        shown = {"AWS": principal if principal.startswith("arn:") else f"arn:aws:iam::{principal}:root"}
    statement: dict[str, Any] = {
        "Sid": statement_id,
        "Effect": "Allow",
        "Principal": shown,
        "Action": "lambda:GetLayerVersion",
        "Resource": resource,
    }
    if organization_id is not None:
        statement["Condition"] = {"StringEquals": {"aws:PrincipalOrgID": organization_id}}
    return statement
