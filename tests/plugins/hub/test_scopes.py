"""Access scopes: which Hub scopes let a user into a server (as the Hub's check_scopes)."""

from __future__ import annotations

import pytest

from junction.plugins.hub.hubapi import has_access

REQUIRED = ["access:servers!server=ana/", "access:servers!user=ana"]


@pytest.mark.parametrize(
    "held",
    [
        ["access:servers!server=ana/"],
        ["access:servers!user=ana"],
        ["access:servers"],
        ["read:users", "access:servers!server=ana/"],
    ],
)
def test_granted(held: list[str]) -> None:
    """The owner's scopes, a share of this very server, an admin's unfiltered scope."""
    assert has_access(REQUIRED, held)


@pytest.mark.parametrize(
    "held",
    [
        [],
        ["access:servers!server=bob/"],
        ["access:servers!user=bob"],
        ["access:services!service=ana"],
        ["read:users!user=ana", "self"],
        ["access:servers!group=staff"],
    ],
)
def test_refused(held: list[str]) -> None:
    """Another user's server, another kind of scope, group filters (not resolved here)."""
    assert not has_access(REQUIRED, held)


def test_named_server_covered_by_user_filter() -> None:
    """access:servers!user=ana covers ana's named servers."""
    assert has_access(["access:servers!server=ana/gpu"], ["access:servers!user=ana"])
    assert not has_access(["access:servers!server=ana/gpu"], ["access:servers!server=ana/"])
