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
from lamina.model.keys import Scope
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
    def arn_of(self, scope: Scope, ref: FunctionRef, qualifier: str | None) -> str:
        """The ARN the target's statements name as their Resource; TargetMissing when it does not exist (in the
        caller's scope)."""
        ...

    def revising(
        self, scope: Scope, ref: FunctionRef, qualifier: str | None
    ) -> contextlib.AbstractContextManager[TargetRevision]:
        """Hold the target's update slot for a policy change; TargetMissing when it does not exist."""
        ...


def is_alias_name(qualifier: str) -> bool:
    return not is_version(qualifier) and "$" not in qualifier


class FunctionPolicyTargets:
    """Targets as FunctionService knows them: $LATEST, published versions and aliases."""

    def __init__(self, functions: FunctionService) -> None:
        self._functions = functions

    def arn_of(self, scope: Scope, ref: FunctionRef, qualifier: str | None) -> str:
        arn_region, arn_account = ref.region or scope.region, ref.account or scope.account
        if arn_region != scope.region or arn_account != scope.account:
            raise TargetMissing("function", function_arn(arn_region, arn_account, ref.name))
        key = scope.function(ref.name)
        if not self._functions.exists(key):
            raise TargetMissing("function", key.arn())
        if qualifier is None or qualifier == LATEST:
            return key.arn()
        arn = key.arn(qualifier)
        if is_version(qualifier):
            if self._functions.version_config(key, qualifier) is None:
                raise TargetMissing("version", arn)
        elif not is_alias_name(qualifier) or self._functions.aliases.get(key, qualifier) is None:
            raise TargetMissing("alias" if is_alias_name(qualifier) else "version", arn)
        return arn

    @contextlib.contextmanager
    def revising(self, scope: Scope, ref: FunctionRef, qualifier: str | None) -> Iterator[TargetRevision]:
        arn = self.arn_of(scope, ref, qualifier)
        if qualifier is None or qualifier == LATEST:
            with self._functions.revising(scope, FunctionRef(ref.name)) as (current, revision_id):
                yield TargetRevision(arn, current.revision_id, revision_id)
        else:
            key = scope.function(ref.name)
            with self._functions.revising_qualified(key, qualifier) as (current_revision, revision_id):
                yield TargetRevision(arn, current_revision, revision_id)
