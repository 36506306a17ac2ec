"""Webhook signatures (RELIABILITY R-WH-01/02, P7): GitHub's vector, bit flips, never a raise."""

from __future__ import annotations

import hmac

import pytest
from hypothesis import given
from hypothesis import strategies as st

from chalicelib.rules import signature as webhook_signature
from chalicelib.rules.signature import sign, verify

# From GitHub's "Validating webhook deliveries".
GITHUB_SECRET = "It's a Secret to Everybody"
GITHUB_BODY = b"Hello, World!"
GITHUB_SIGNATURE = "sha256=757107ea0eb2509fc211221cce984b8a37570b6d7586c22c46f4379c8b043e17"

secrets_ = st.text(min_size=1, max_size=64).filter(lambda s: "," not in s)
bodies = st.binary(min_size=1, max_size=2048)


def test_sign_matches_githubs_published_test_vector() -> None:
    assert sign(GITHUB_SECRET, GITHUB_BODY) == GITHUB_SIGNATURE


def test_verify_accepts_githubs_published_test_vector() -> None:
    assert verify([GITHUB_SECRET], GITHUB_BODY, GITHUB_SIGNATURE)


def test_verify_accepts_upper_case_hex_digits() -> None:
    upper = "sha256=" + GITHUB_SIGNATURE.removeprefix("sha256=").upper()
    assert verify([GITHUB_SECRET], GITHUB_BODY, upper)


def test_verify_accepts_any_one_of_rotated_secrets() -> None:
    assert verify(["new-secret", GITHUB_SECRET], GITHUB_BODY, GITHUB_SIGNATURE)
    assert verify([GITHUB_SECRET, "new-secret"], GITHUB_BODY, GITHUB_SIGNATURE)


def test_verify_rejects_another_secret() -> None:
    assert not verify(["It's a Secret to Nobody"], GITHUB_BODY, GITHUB_SIGNATURE)


def test_verify_rejects_when_no_secret_is_configured() -> None:
    assert not verify([], GITHUB_BODY, GITHUB_SIGNATURE)
    assert not verify([""], GITHUB_BODY, sign("", GITHUB_BODY))


def test_verify_rejects_reserialised_body_with_original_signature() -> None:
    body = b'{"a": 1, "b": 2}'
    signature = sign(GITHUB_SECRET, body)
    assert not verify([GITHUB_SECRET], b'{"b":2,"a":1}', signature)


@pytest.mark.parametrize("header", [
    None,
    "",
    "sha256=",
    GITHUB_SIGNATURE.removeprefix("sha256="),                     # no prefix
    "sha1=" + "0" * 40,                                           # legacy X-Hub-Signature form
    "SHA256=" + GITHUB_SIGNATURE.removeprefix("sha256="),         # prefix is case-sensitive
    GITHUB_SIGNATURE[:-1],                                        # odd length
    GITHUB_SIGNATURE + "0",                                       # too long
    GITHUB_SIGNATURE[:-2] + "zz",                                 # not hex
    GITHUB_SIGNATURE[:-2] + "é1",                                 # non-ASCII
    "sha256=" + "a" * 10_000,                                     # 10 KB header
    " " + GITHUB_SIGNATURE,
])
def test_verify_rejects_malformed_header_without_raising(header: str | None) -> None:
    assert not webhook_signature.is_well_formed(header)
    assert not verify([GITHUB_SECRET], GITHUB_BODY, header)


def test_verify_uses_constant_time_comparison(monkeypatch: pytest.MonkeyPatch) -> None:
    calls: list[tuple[bytes, bytes]] = []
    real = hmac.compare_digest

    def spy(a: bytes, b: bytes) -> bool:
        calls.append((a, b))
        return real(a, b)

    monkeypatch.setattr(webhook_signature.hmac, "compare_digest", spy)
    assert verify([GITHUB_SECRET], GITHUB_BODY, GITHUB_SIGNATURE)
    assert len(calls) == 1


@given(secret=secrets_, body=bodies)
def test_verify_accepts_what_sign_produced(secret: str, body: bytes) -> None:
    assert verify([secret], body, sign(secret, body))


@given(secret=secrets_, body=bodies, data=st.data())
def test_verify_rejects_any_single_bit_flip_of_the_body(secret: str, body: bytes,
                                                        data: st.DataObject) -> None:
    bit = data.draw(st.integers(min_value=0, max_value=len(body) * 8 - 1))
    flipped = bytearray(body)
    flipped[bit // 8] ^= 1 << (bit % 8)
    assert not verify([secret], bytes(flipped), sign(secret, body))


@given(secret=secrets_, body=bodies, data=st.data())
def test_verify_rejects_any_single_bit_flip_of_the_signature(secret: str, body: bytes,
                                                             data: st.DataObject) -> None:
    signature = bytearray(sign(secret, body).encode("ascii"))
    bit = data.draw(st.integers(min_value=0, max_value=len(signature) * 8 - 1))
    signature[bit // 8] ^= 1 << (bit % 8)
    header = signature.decode("latin-1")
    # A flip that only changes the case of a hex letter names the same digest.
    assume_same = header.lower() == sign(secret, body) and header.startswith("sha256=")
    assert verify([secret], body, header) is assume_same


@given(secrets=st.lists(st.text(max_size=20), max_size=3), body=st.binary(max_size=256),
       header=st.one_of(st.none(), st.text(max_size=200)))
def test_verify_never_raises_on_arbitrary_input(secrets: list[str], body: bytes,
                                                header: str | None) -> None:
    assert verify(secrets, body, header) in (True, False)
