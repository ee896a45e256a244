"""Mints the tokens the gateway's JWT tests check, with PyJWT and `cryptography`.

Usage: python3 mint.py OUT_DIR

Writes into OUT_DIR:
  keys.pem           every public key, PEM (SubjectPublicKeyInfo)
  jwks.json          every public key as a JWKS (kid and alg set)
  jwks-rotated.json  the same plus one new key, `es256-new`
and prints one JSON object of tokens on stdout:
  {"valid": {ALG: token, ...}, "cases": {name: token, ...}}
"""

import base64
import hashlib
import hmac
import json
import os
import sys
import time

import jwt
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa

ISSUER = "https://id.example.test"
AUDIENCE = "ashi"


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def public_pem(private) -> bytes:
    return private.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )


def new_key(alg: str):
    if alg.startswith("ES"):
        curve = {"ES256": ec.SECP256R1, "ES384": ec.SECP384R1, "ES512": ec.SECP521R1}[alg]
        return ec.generate_private_key(curve())
    if alg == "EdDSA":
        return ed25519.Ed25519PrivateKey.generate()
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


def jwk(private, kid: str, alg: str) -> dict:
    algorithm = jwt.algorithms.get_default_algorithms()[alg]
    key = json.loads(algorithm.to_jwk(private.public_key()))
    key.update({"kid": kid, "alg": alg, "use": "sig"})
    return key


def claims(**changes) -> dict:
    now = int(time.time())
    body = {
        "iss": ISSUER,
        "aud": AUDIENCE,
        "sub": "user-42",
        "role": "admin",
        "groups": ["staff", "ops"],
        "iat": now,
        "exp": now + 3600,
    }
    body.update(changes)
    return {k: v for k, v in body.items() if v is not None}


def main() -> None:
    out = sys.argv[1]
    algs = ["ES256", "ES384", "ES512", "RS256", "RS384", "RS512", "PS256", "PS384", "PS512", "EdDSA"]
    keys = {alg: new_key(alg) for alg in algs}
    other_es256 = new_key("ES256")
    rotated = new_key("ES256")

    entries = [jwk(keys[alg], alg.lower(), alg) for alg in algs]
    entries.append(jwk(other_es256, "es256-b", "ES256"))
    with open(os.path.join(out, "jwks.json"), "w") as f:
        json.dump({"keys": entries}, f)
    with open(os.path.join(out, "jwks-rotated.json"), "w") as f:
        json.dump({"keys": entries + [jwk(rotated, "es256-new", "ES256")]}, f)
    with open(os.path.join(out, "keys.pem"), "wb") as f:
        for alg in algs:
            f.write(public_pem(keys[alg]))

    def sign(alg: str, kid=None, key=None, **changes) -> str:
        headers = {"kid": kid if kid is not None else alg.lower()}
        return jwt.encode(claims(**changes), key or keys[alg], algorithm=alg, headers=headers)

    valid = {alg: sign(alg) for alg in algs}

    header, payload, signature = valid["ES256"].split(".")
    forged_payload = b64url(json.dumps(claims(sub="someone-else")).encode())

    # An unsigned token, written by hand: `alg: none` and an empty signature.
    none_header = b64url(json.dumps({"alg": "none", "typ": "JWT"}).encode())
    none_token = f"{none_header}.{b64url(json.dumps(claims()).encode())}."

    # The RS256 public key (PEM text, as a verifier would hold it) used as an HS256 secret.
    confusion_header = b64url(json.dumps({"alg": "HS256", "typ": "JWT", "kid": "rs256"}).encode())
    confusion_input = f"{confusion_header}.{b64url(json.dumps(claims()).encode())}"
    confusion_mac = hmac.new(public_pem(keys["RS256"]), confusion_input.encode(), hashlib.sha256)
    confusion_token = f"{confusion_input}.{b64url(confusion_mac.digest())}"

    now = int(time.time())
    cases = {
        "tampered": f"{header}.{forged_payload}.{signature}",
        "wrong_kid": sign("ES256", kid="es256-b"),
        "unknown_kid": sign("ES256", kid="nope"),
        "kid_of_an_rsa_key": sign("ES256", kid="rs256"),
        "expired": sign("ES256", exp=now - 3600, iat=now - 7200),
        "within_leeway": sign("ES256", exp=now - 5),
        "not_yet_valid": sign("ES256", nbf=now + 3600),
        "wrong_audience": sign("ES256", aud="someone-else"),
        "wrong_issuer": sign("ES256", iss="https://evil.example.test"),
        "no_exp": sign("ES256", exp=None),
        "alg_none": none_token,
        "hs256_with_public_key": confusion_token,
        "role_user": sign("ES256", role="user"),
        "role_list": sign("ES256", role=["user", "admin"]),
        "other_user": sign("ES256", sub="user-7"),
        "rotated": sign("ES256", kid="es256-new", key=rotated),
    }
    json.dump({"valid": valid, "cases": cases}, sys.stdout)


if __name__ == "__main__":
    main()
