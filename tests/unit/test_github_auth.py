"""App credentials decoding and App JWT claims, with the network off."""

from __future__ import annotations

import base64

import jwt
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from hypothesis import given, settings
from hypothesis import strategies as st

from chalicelib.errors import ConfigError
from chalicelib.github.app_key import AppCredentials, app_jwt, decode_private_key
from chalicelib.github.auth import expiry_epoch

PARAMETER = "/ghr/app/key_base64"


def _pem(key: rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey,
         fmt: serialization.PrivateFormat = serialization.PrivateFormat.TraditionalOpenSSL) -> str:
    return key.private_bytes(serialization.Encoding.PEM, fmt,
                             serialization.NoEncryption()).decode()


@pytest.fixture(scope="module")
def rsa_key() -> rsa.RSAPrivateKey:
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


@pytest.fixture(scope="module")
def pem(rsa_key: rsa.RSAPrivateKey) -> str:
    return _pem(rsa_key)


def _same(key: rsa.RSAPrivateKey, other: rsa.RSAPrivateKey) -> bool:
    return key.private_numbers() == other.private_numbers()


def test_decode_private_key_when_base64_of_pkcs1_pem_then_key(
    pem: str, rsa_key: rsa.RSAPrivateKey
) -> None:
    assert _same(decode_private_key(base64.b64encode(pem.encode()).decode(), PARAMETER), rsa_key)


def test_decode_private_key_when_pkcs8_or_plain_pem_then_accepted(
    rsa_key: rsa.RSAPrivateKey,
) -> None:
    pkcs8 = _pem(rsa_key, serialization.PrivateFormat.PKCS8)
    assert _same(decode_private_key(base64.b64encode(pkcs8.encode()).decode(), PARAMETER), rsa_key)
    assert _same(decode_private_key(pkcs8, PARAMETER), rsa_key)


def test_decode_private_key_when_base64_holds_literal_backslash_n_then_still_loads(
    pem: str, rsa_key: rsa.RSAPrivateKey
) -> None:
    encoded = base64.encodebytes(pem.encode()).decode()  # wrapped every 76 characters
    escaped = encoded.replace("\n", "\\n")
    assert "\\n" in escaped
    assert _same(decode_private_key(escaped, PARAMETER), rsa_key)


def test_decode_private_key_when_pem_inside_has_literal_backslash_n_then_still_loads(
    pem: str, rsa_key: rsa.RSAPrivateKey
) -> None:
    flattened = pem.strip().replace("\n", "\\n")
    assert _same(decode_private_key(base64.b64encode(flattened.encode()).decode(), PARAMETER),
                 rsa_key)


@pytest.mark.parametrize("value", ["", "not base64 at all!", base64.b64encode(b"hello").decode(),
                                   base64.b64encode(b"-----BEGIN RSA PRIVATE KEY-----\nAAAA\n"
                                                    b"-----END RSA PRIVATE KEY-----").decode()])
def test_decode_private_key_when_malformed_then_config_error_naming_parameter_only(
    value: str,
) -> None:
    with pytest.raises(ConfigError) as raised:
        decode_private_key(value, PARAMETER)
    assert PARAMETER in str(raised.value)
    assert "expected base64 of a PEM key" in str(raised.value)
    if value:
        assert value not in str(raised.value)


def test_decode_private_key_when_not_rsa_then_config_error() -> None:
    ec_pem = _pem(ec.generate_private_key(ec.SECP256R1()), serialization.PrivateFormat.PKCS8)
    with pytest.raises(ConfigError, match="RSA"):
        decode_private_key(base64.b64encode(ec_pem.encode()).decode(), PARAMETER)


def test_app_credentials_repr_hides_the_key(rsa_key: rsa.RSAPrivateKey) -> None:
    assert repr(AppCredentials(app_id=1, private_key=rsa_key)) == "AppCredentials(app_id=1)"


@settings(max_examples=50, deadline=None)
@given(now=st.floats(min_value=1.6e9, max_value=4.0e9))
def test_app_jwt_claims_for_any_clock(now: float, rsa_key: rsa.RSAPrivateKey) -> None:
    token = app_jwt(AppCredentials(app_id=4242, private_key=rsa_key), now)
    assert jwt.get_unverified_header(token)["alg"] == "RS256"
    claims = jwt.decode(token, rsa_key.public_key(), algorithms=["RS256"],
                        options={"verify_exp": False, "verify_iat": False})
    assert claims["iss"] == "4242"
    assert claims["iat"] <= now - 59
    assert 0 < claims["exp"] - now <= 540
    assert claims["exp"] - claims["iat"] <= 600
    assert len(claims["jti"]) >= 16


def test_app_jwt_when_minted_in_same_second_then_tokens_differ(
    rsa_key: rsa.RSAPrivateKey,
) -> None:
    credentials = AppCredentials(app_id=1, private_key=rsa_key)
    tokens = {app_jwt(credentials, 1_700_000_000.0) for _ in range(200)}
    jtis = {jwt.decode(t, options={"verify_signature": False})["jti"] for t in tokens}
    assert len(tokens) == 200 and len(jtis) == 200


def test_expiry_epoch_parses_github_timestamps_and_falls_back() -> None:
    assert expiry_epoch("2016-07-11T22:14:10Z", 0.0) == 1468275250.0
    assert expiry_epoch("garbage", 5.0) == 5.0
