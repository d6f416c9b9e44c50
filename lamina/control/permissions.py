"""Function resource policies: AddPermission, RemovePermission and GetPolicy, producing AWS's exact documents.

Each target (the unqualified function, a version, an alias) has its own policy. The unqualified policy is also the
$LATEST one: AWS refuses AddPermission with Qualifier=$LATEST. A policy carries its own RevisionId: every change gives
the policy and its target one new RevisionId together, and a RevisionId precondition is checked against the policy's
(against the target's when it has no policy yet). Recorded from AWS: after PublishVersion changes $LATEST's RevisionId,
GetPolicy still reports, and AddPermission still accepts, the policy's.

Policies are kept in memory and written through to the attachment store. Nothing enforces them yet (that comes with
authentication); the documents are what AWS would show.
"""
from __future__ import annotations

import json
import re
import threading
from typing import Any

from lamina.model.arns import LATEST, FunctionRef, merge_qualifier, parse_function_name
from lamina.model.keys import FunctionKey, Scope
from lamina.control.policy_targets import PolicyTargets, TargetMissing
from lamina.control.validation import LAMBDA
from lamina.errors import (
    InvalidParameterValueException,
    PolicyLengthExceededException,
    PreconditionFailedException,
    ResourceConflictException,
    ResourceNotFoundException,
)
from lamina.store.attachments import AttachmentStore, StoredPolicy

MAX_POLICY_BYTES = 20480
POLICY_VERSION = "2012-10-17"
URL_ACTION = "lambda:InvokeFunctionUrl"
URL_AUTH_TYPE_KEY = "lambda:FunctionUrlAuthType"

_ACCOUNT_RE = re.compile(r"\d{12}", re.ASCII)
_IAM_ARN_RE = re.compile(r"arn:aws[a-zA-Z-]*:iam::\d{12}:\S+", re.ASCII)
# Service principals are domain-style names AWS defines: `s3.amazonaws.com`, `logs.eu-west-1.amazonaws.com`,
# `alexa-appkit.amazon.com`.
_SERVICE_RE = re.compile(r"[a-z0-9][a-z0-9.-]*\.(amazonaws\.com|amazon\.com)", re.ASCII)

_NO_LATEST = "We currently do not support adding policies for $LATEST."
_BAD_PRINCIPAL = "The provided principal was invalid. Please check the principal and try again."
_URL_AUTH_ACTION = "FunctionUrlAuthType is only supported for lambda:InvokeFunctionUrl action"
_NO_RESOURCE = "The resource you requested does not exist."
_NO_POLICY = "No policy is associated with the given resource."
_ADD_REVISION = (
    "The Revision Id provided does not match the latest Revision Id. Call the GetPolicy API to retrieve the latest "
    "Revision Id"
)
_REMOVE_REVISION = (
    "The Revision Id provided does not match the latest Revision Id. Call the GetFunction/GetAlias API to retrieve "
    "the latest Revision Id"
)

PolicyKey = tuple[FunctionKey, str]  # (function, qualifier or "" for the unqualified function)


class PermissionService:
    def __init__(self, store: AttachmentStore, targets: PolicyTargets) -> None:
        self._store = store
        self._targets = targets
        self._policies: dict[PolicyKey, StoredPolicy] = {}
        self._guard = threading.Lock()

    def load(self) -> None:
        """Read every policy; one whose target went away just before a crash is dropped (a new alias or function of
        the same name must not inherit it)."""
        for policy in self._store.all_policies():
            try:
                self._targets.arn_of(policy.key.scope, FunctionRef(policy.name), policy.qualifier or None)
            except TargetMissing:
                self._store.forget(policy.key, policy.qualifier)
                continue
            self._policies[(policy.key, policy.qualifier)] = policy

    # -- operations ------------------------------------------------------------------------------------------------
    def add(self, scope: Scope, function_name: str, query_qualifier: str | None, body: dict[str, Any]) -> dict[str, Any]:
        """AddPermission: the statement added, as AWS returns it."""
        LAMBDA.check("AddPermission", {**body, "Qualifier": query_qualifier})
        ref = parse_function_name(function_name)
        qualifier = merge_qualifier(ref, query_qualifier)
        if qualifier == LATEST:
            raise InvalidParameterValueException(_NO_LATEST)
        function = scope.function(ref.name)
        key = (function, qualifier or "")
        try:
            with self._targets.revising(scope, ref, qualifier) as target:
                with self._guard:
                    policy = self._policies.get(key)
                    expected = policy.revision_id if policy is not None else target.current
                    if body.get("RevisionId") is not None and body["RevisionId"] != expected:
                        raise PreconditionFailedException(_ADD_REVISION)
                    statements = policy.statements if policy is not None else ()
                    sid = body["StatementId"]
                    if any(statement["Sid"] == sid for statement in statements):
                        raise ResourceConflictException(
                            f"The statement id ({sid}) provided already exists. Please provide a new statement id, "
                            "or remove the existing statement."
                        )
                    statement = build_statement(body, target.arn)
                    updated = StoredPolicy(*function, key[1], target.new, (*statements, statement))
                    size = len(policy_json(updated).encode())
                    if size > MAX_POLICY_BYTES:
                        raise PolicyLengthExceededException(
                            f"The final policy size ({size}) is bigger than the limit ({MAX_POLICY_BYTES})."
                        )
                    self._save(key, updated)
        except TargetMissing as missing:
            raise _add_not_found(missing) from missing
        return {"Statement": _compact(statement)}

    def get(self, scope: Scope, function_name: str, query_qualifier: str | None) -> dict[str, Any]:
        """GetPolicy: the whole document as a JSON string, and the policy's RevisionId."""
        LAMBDA.check("GetPolicy", {"Qualifier": query_qualifier})
        ref = parse_function_name(function_name)
        qualifier = _unqualified_if_latest(merge_qualifier(ref, query_qualifier))
        try:
            self._targets.arn_of(scope, ref, qualifier)
        except TargetMissing as missing:
            raise ResourceNotFoundException(_NO_RESOURCE) from missing
        policy = self._policies.get((scope.function(ref.name), qualifier or ""))
        if policy is None:
            raise ResourceNotFoundException(_NO_RESOURCE)
        return {"Policy": policy_json(policy), "RevisionId": policy.revision_id}

    def remove(
        self, scope: Scope, function_name: str, statement_id: str, query_qualifier: str | None, revision_id: str | None
    ) -> None:
        """RemovePermission; the policy goes away with its last statement."""
        LAMBDA.check("RemovePermission", {"StatementId": statement_id, "Qualifier": query_qualifier})
        ref = parse_function_name(function_name)
        qualifier = _unqualified_if_latest(merge_qualifier(ref, query_qualifier))
        function = scope.function(ref.name)
        key = (function, qualifier or "")
        try:
            with self._targets.revising(scope, ref, qualifier) as target:
                with self._guard:
                    policy = self._policies.get(key)
                    if policy is None:
                        raise ResourceNotFoundException(_NO_POLICY)
                    remaining = tuple(statement for statement in policy.statements if statement["Sid"] != statement_id)
                    if len(remaining) == len(policy.statements):
                        raise ResourceNotFoundException(f"Statement {statement_id} is not found in resource policy.")
                    if revision_id is not None and revision_id != policy.revision_id:
                        raise PreconditionFailedException(_REMOVE_REVISION)
                    self._save(key, StoredPolicy(*function, key[1], target.new, remaining))
        except TargetMissing as missing:
            if missing.kind == "function":
                raise ResourceNotFoundException(f"No policy found for: {missing.arn}") from missing
            raise _add_not_found(missing) from missing

    def forget(self, function: FunctionKey, qualifier: str | None = None) -> None:
        """Drop the policies of a deleted function (qualifier None) or of one deleted version or alias."""
        with self._guard:
            if qualifier is None:
                for key in [key for key in self._policies if key[0] == function]:
                    del self._policies[key]
            else:
                self._policies.pop((function, qualifier), None)
        self._store.forget(function, qualifier)

    def opens_url_to_public(self, function: FunctionKey, qualifier: str | None, auth_type: str) -> bool:
        """Whether the policy of a function URL's target (the unqualified function, or the alias) lets anyone call
        it: a statement allowing lambda:InvokeFunctionUrl to `*`, unconditionally or on this URL's auth type only
        (AWS's rule for NONE URLs; AddPermission's FunctionUrlAuthType writes that condition)."""
        policy = self._policies.get((function, qualifier or ""))
        return policy is not None and any(_opens_url(statement, auth_type) for statement in policy.statements)

    # -- helpers ---------------------------------------------------------------------------------------------------
    def _save(self, key: PolicyKey, policy: StoredPolicy) -> None:
        self._store.put_policy(policy)
        if policy.statements:
            self._policies[key] = policy
        else:
            self._policies.pop(key, None)


def _opens_url(statement: dict[str, Any], auth_type: str) -> bool:
    """A statement that allows any caller lambda:InvokeFunctionUrl, unless a condition it carries does not hold for
    an anonymous URL request of `auth_type` (only the auth-type condition can: a URL request has no source ARN or
    account, so statements conditioned on those never match)."""
    if statement.get("Effect") != "Allow" or statement.get("Action") not in (URL_ACTION, "lambda:*", "*"):
        return False
    if statement.get("Principal") not in ("*", {"AWS": "*"}):
        return False
    condition = statement.get("Condition") or {}
    if set(condition) - {"StringEquals"} or set(condition.get("StringEquals", {})) - {URL_AUTH_TYPE_KEY}:
        return False
    return condition.get("StringEquals", {}).get(URL_AUTH_TYPE_KEY, auth_type) == auth_type


def build_statement(body: dict[str, Any], resource: str) -> dict[str, Any]:
    """One statement in AWS's key order; conditions are added in the order AWS prints them."""
    statement: dict[str, Any] = {
        "Sid": body["StatementId"],
        "Effect": "Allow",
        "Principal": _principal(body["Principal"]),
        "Action": body["Action"],
        "Resource": resource,
    }
    if body.get("FunctionUrlAuthType") is not None and body["Action"] != URL_ACTION:
        raise InvalidParameterValueException(_URL_AUTH_ACTION)
    string_equals = {
        name: body[member]
        for member, name in (
            ("SourceAccount", "AWS:SourceAccount"),
            ("FunctionUrlAuthType", URL_AUTH_TYPE_KEY),
            ("PrincipalOrgID", "aws:PrincipalOrgID"),
            ("EventSourceToken", "lambda:EventSourceToken"),
        )
        if body.get(member) is not None
    }
    condition: dict[str, Any] = {}
    if string_equals:
        condition["StringEquals"] = string_equals
    if body.get("SourceArn") is not None:
        condition["ArnLike"] = {"AWS:SourceArn": body["SourceArn"]}
    if body.get("InvokedViaFunctionUrl"):
        condition["Bool"] = {"lambda:InvokedViaFunctionUrl": "true"}
    if condition:
        statement["Condition"] = condition
    return statement


def policy_json(policy: StoredPolicy) -> str:
    return _compact({"Version": POLICY_VERSION, "Id": "default", "Statement": list(policy.statements)})


def _principal(principal: str) -> str | dict[str, str]:
    if principal == "*":
        return "*"
    if _ACCOUNT_RE.fullmatch(principal):
        return {"AWS": f"arn:aws:iam::{principal}:root"}
    if _IAM_ARN_RE.fullmatch(principal):
        return {"AWS": principal}
    if _SERVICE_RE.fullmatch(principal):
        return {"Service": principal}
    raise InvalidParameterValueException(_BAD_PRINCIPAL)


def _compact(document: Any) -> str:
    return json.dumps(document, separators=(",", ":"))


def _unqualified_if_latest(qualifier: str | None) -> str | None:
    return None if qualifier == LATEST else qualifier


def _add_not_found(missing: TargetMissing) -> ResourceNotFoundException:
    if missing.kind == "alias":
        return ResourceNotFoundException(f"Cannot find alias arn: {missing.arn}")
    return ResourceNotFoundException(f"Function not found: {missing.arn}")
