"""A function URL's configuration: the record the store keeps and the URL front door routes by (its id)."""
from __future__ import annotations

import dataclasses
import re
import secrets
from dataclasses import dataclass
from enum import Enum
from typing import Any

from lamina.model.keys import FunctionKey

#: AWS's URL ids are 32 characters of [a-z0-9] (recorded FunctionUrls). Lamina draws them at random: AWS derives them
#: from the account, which lets anyone read the account back; a random id does not.
URL_ID_LENGTH = 32
URL_ID_ALPHABET = "abcdefghijklmnopqrstuvwxyz0123456789"
_URL_ID = re.compile(r"[a-z0-9]{32}")


def new_url_id() -> str:
    """A fresh URL id from the system's CSPRNG (the caller checks it is unused)."""
    return "".join(secrets.choice(URL_ID_ALPHABET) for _ in range(URL_ID_LENGTH))


def is_url_id(value: str) -> bool:
    return _URL_ID.fullmatch(value) is not None


class AuthType(str, Enum):
    NONE = "NONE"
    AWS_IAM = "AWS_IAM"


class InvokeMode(str, Enum):
    BUFFERED = "BUFFERED"
    RESPONSE_STREAM = "RESPONSE_STREAM"


@dataclass(frozen=True)
class FunctionUrlConfig:
    """One URL of a function: of the unqualified function (`qualifier` None, which runs $LATEST) or of an alias.

    `invoke_mode` is None until a request sets it: AWS then runs BUFFERED, shows InvokeMode in Get and List, and leaves
    it out of the Create and Update answers (recorded).
    """

    function: FunctionKey
    qualifier: str | None
    url_id: str
    auth_type: AuthType
    creation_time: str
    last_modified_time: str
    cors: dict[str, Any] | None = None
    invoke_mode: InvokeMode | None = None

    @property
    def effective_invoke_mode(self) -> InvokeMode:
        return self.invoke_mode or InvokeMode.BUFFERED

    @property
    def function_arn(self) -> str:
        return self.function.arn(self.qualifier)

    def to_record(self) -> dict[str, Any]:
        return {
            "account": self.function.account,
            "region": self.function.region,
            "name": self.function.name,
            "qualifier": self.qualifier,
            "url_id": self.url_id,
            "auth_type": self.auth_type.value,
            "creation_time": self.creation_time,
            "last_modified_time": self.last_modified_time,
            "cors": self.cors,
            "invoke_mode": self.invoke_mode.value if self.invoke_mode else None,
        }

    @classmethod
    def from_record(cls, record: dict[str, Any]) -> "FunctionUrlConfig":
        return cls(
            function=FunctionKey(record["account"], record["region"], record["name"]),
            qualifier=record["qualifier"],
            url_id=record["url_id"],
            auth_type=AuthType(record["auth_type"]),
            creation_time=record["creation_time"],
            last_modified_time=record["last_modified_time"],
            cors=record.get("cors"),
            invoke_mode=InvokeMode(record["invoke_mode"]) if record.get("invoke_mode") else None,
        )

    def replace(self, **changes: Any) -> "FunctionUrlConfig":
        return dataclasses.replace(self, **changes)
