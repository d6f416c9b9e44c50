"""The keys every piece of state is filed under: a caller's scope (account, region) and a function in it.

The account is part of every key from the start, although one server serves one account today: authentication and
cross-account access will make the caller's account come from the request, and then no state may be shared by
accident between accounts.
"""
from __future__ import annotations

from typing import NamedTuple

from lamina.model.arns import function_arn

# Keys are made on the invoke path (a function's scope for the account's unreserved pool, the key a name resolves
# to): building the tuple directly skips the generated __new__'s argument handling (about half the cost).
_tuple_new = tuple.__new__


class FunctionKey(NamedTuple):
    """One function (all its versions and aliases) of one account in one region."""

    account: str
    region: str
    name: str

    @property
    def scope(self) -> "Scope":
        return _tuple_new(Scope, self[:2])

    def arn(self, qualifier: str | None = None) -> str:
        return function_arn(self.region, self.account, self.name, qualifier)


class Scope(NamedTuple):
    """Where a request acts: the caller's account and the region it addressed."""

    account: str
    region: str

    def function(self, name: str) -> FunctionKey:
        return _tuple_new(FunctionKey, (*self, name))
