"""What a resource policy can be attached to: the unqualified function, a published version or an alias.

The permission rules (lamina/control/permissions.py) need three things from a target: that it exists, its ARN, and
its RevisionId, which AWS replaces whenever the target's policy changes. This module is the seam between those rules
and whichever service owns the target.
"""
from __future__ import annotations

import contextlib
from dataclasses import dataclass
from typing import Iterator, Protocol

from lamina.model.arns import LATEST, FunctionRef, function_arn, is_version
from lamina.control.functions import FunctionService


@dataclass(frozen=True)
class TargetRevision:
    """A target held for a policy change: its ARN, its RevisionId now, and the one it gets if the change succeeds."""

    arn: str
    current: str
    new: str


@dataclass
class TargetMissing(Exception):
    """The target does not exist; `kind` says what is missing ("function", "version" or "alias")."""

    kind: str
    arn: str


class PolicyTargets(Protocol):
    def arn_of(self, region: str, ref: FunctionRef, qualifier: str | None) -> str:
        """The ARN the target's statements name as their Resource; TargetMissing when it does not exist."""
        ...

    def revising(
        self, region: str, ref: FunctionRef, qualifier: str | None
    ) -> contextlib.AbstractContextManager[TargetRevision]:
        """Hold the target's update slot for a policy change; TargetMissing when it does not exist."""
        ...


def is_alias_name(qualifier: str) -> bool:
    return not is_version(qualifier) and "$" not in qualifier


class FunctionPolicyTargets:
    """Targets as FunctionService knows them: $LATEST, published versions and aliases."""

    def __init__(self, functions: FunctionService, account: str) -> None:
        self._functions = functions
        self._account = account

    def arn_of(self, region: str, ref: FunctionRef, qualifier: str | None) -> str:
        scope_region = ref.region or region
        if scope_region != region or (ref.account or self._account) != self._account:
            raise TargetMissing("function", function_arn(scope_region, ref.account or self._account, ref.name))
        if not self._functions.exists(region, ref.name):
            raise TargetMissing("function", function_arn(region, self._account, ref.name))
        if qualifier is None or qualifier == LATEST:
            return function_arn(region, self._account, ref.name)
        arn = function_arn(region, self._account, ref.name, qualifier)
        if is_version(qualifier):
            if self._functions.version_config(region, ref.name, qualifier) is None:
                raise TargetMissing("version", arn)
        elif not is_alias_name(qualifier) or self._functions.aliases.get(region, ref.name, qualifier) is None:
            raise TargetMissing("alias" if is_alias_name(qualifier) else "version", arn)
        return arn

    @contextlib.contextmanager
    def revising(self, region: str, ref: FunctionRef, qualifier: str | None) -> Iterator[TargetRevision]:
        arn = self.arn_of(region, ref, qualifier)
        if qualifier is None or qualifier == LATEST:
            with self._functions.revising(region, FunctionRef(ref.name)) as (current, revision_id):
                yield TargetRevision(arn, current.revision_id, revision_id)
        else:
            with self._functions.revising_qualified(region, ref.name, qualifier) as (current_revision, revision_id):
                yield TargetRevision(arn, current_revision, revision_id)
