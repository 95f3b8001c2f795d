"""Token and session id formats, and their digests."""

from __future__ import annotations

from junction.plugins.users import credentials


def test_tokens_are_random_recognisable_and_hashed() -> None:
    first, second = credentials.new_token(), credentials.new_token()
    assert first != second
    assert credentials.looks_like_token(first)
    assert not credentials.looks_like_token("jct_short")
    assert not credentials.looks_like_token("x" * len(first))
    assert credentials.digest(first) != first
    assert len(credentials.digest(first)) == 64
    assert credentials.same_digest(credentials.digest(first), credentials.digest(first))
    assert not credentials.same_digest(credentials.digest(first), credentials.digest(second))


def test_a_hint_shows_only_the_beginning() -> None:
    token = credentials.new_token()
    hint = credentials.hint(token)
    assert token.startswith(hint.rstrip("…"))
    assert len(hint) < 10


def test_session_ids_carry_256_bits() -> None:
    session = credentials.new_session_id()
    assert len(session) >= 43
    assert session != credentials.new_session_id()
