#!/usr/bin/env python3
"""Regenerates fuzz/seeds/ (the committed, hand-made seed corpus).

Needs Python 3 and `cryptography` (>= 44, for deterministic ECDSA), so the
output is byte-for-byte reproducible. The key is the fixed test key whose
public point is `PUBLIC_KEY` in fuzz_targets/jws_parse.rs: never a real one.

    python3 fuzz/make_seeds.py
"""

import base64
import hashlib
import json
import os
import shutil

from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.utils import (
    decode_dss_signature,
    encode_dss_signature,
)

HERE = os.path.dirname(os.path.abspath(__file__))
SEEDS = os.path.join(HERE, "seeds")

# Must match `EXPECTED` in fuzz_targets/jws_parse.rs.
RP_ID = "http://127.0.0.1:8080"
USER_ID = "jane.doe"
NONCE = "q2sFv8m1x1b9m9n0cO4oI6wD2Jx3k5yTfKp9t8Yl6aA"
KID = "dev_0123456789abcdefABCD"

N = 0xFFFFFFFF00000000FFFFFFFFFFFFFFFFBCE6FAADA7179E84F3B9CAC2FC632551
SCALAR = int.from_bytes(hashlib.sha256(b"devicetrust-fuzz test key").digest(), "big") % N
KEY = ec.derive_private_key(SCALAR, ec.SECP256R1())
PUB = KEY.public_key().public_bytes(
    serialization.Encoding.X962, serialization.PublicFormat.UncompressedPoint
)
OTHER = ec.derive_private_key(12345, ec.SECP256R1())
OTHER_PUB = OTHER.public_key().public_bytes(
    serialization.Encoding.X962, serialization.PublicFormat.UncompressedPoint
)
ECDSA = ec.ECDSA(hashes.SHA256(), deterministic_signing=True)


def b64(b: bytes) -> str:
    return base64.urlsafe_b64encode(b).rstrip(b"=").decode()


def js(v) -> bytes:
    return json.dumps(v, separators=(",", ":")).encode()


def jwk(point: bytes, **extra) -> dict:
    return {"kty": "EC", "crv": "P-256", "x": b64(point[1:33]), "y": b64(point[33:]), **extra}


def rs(der: bytes) -> bytes:
    r, s = decode_dss_signature(der)
    return r.to_bytes(32, "big") + s.to_bytes(32, "big")


def jws(header: dict, claims: dict, key=KEY) -> str:
    signing_input = b64(js(header)) + "." + b64(js(claims))
    return signing_input + "." + b64(rs(key.sign(signing_input.encode(), ECDSA)))


CLAIMS = {"aud": RP_ID, "sub": USER_ID, "nonce": NONCE, "iat": 1700000000}
LOGIN = {"alg": "ES256", "typ": "devicetrust-login+jwt", "kid": KID}
REGISTER = {"alg": "ES256", "typ": "devicetrust-register+jwt", "jwk": jwk(PUB)}


def write(target: str, name: str, data) -> None:
    d = os.path.join(SEEDS, target)
    os.makedirs(d, exist_ok=True)
    with open(os.path.join(d, name), "wb") as f:
        f.write(data.encode() if isinstance(data, str) else data)


def jws_parse() -> None:
    t = "jws_parse"
    write(t, "login_valid", jws(LOGIN, CLAIMS))
    write(t, "register_valid", jws(REGISTER, CLAIMS))
    write(t, "login_wrong_nonce", jws(LOGIN, {**CLAIMS, "nonce": "other"}))
    write(t, "login_wrong_aud", jws(LOGIN, {**CLAIMS, "aud": "https://evil"}))
    write(t, "login_payload_not_json", jws(LOGIN, "x"))
    write(t, "login_other_key", jws(LOGIN, CLAIMS, key=OTHER))
    write(t, "register_jwk_with_d", jws({**REGISTER, "jwk": jwk(PUB, d="AAAA")}, CLAIMS))
    write(t, "register_jwk_off_curve", jws({**REGISTER, "jwk": jwk(b"\x04" + b"\x01" * 64)}, CLAIMS))
    write(t, "alg_none", b64(js({"alg": "none", "typ": "devicetrust-login+jwt"})) + ".e30.")
    write(t, "crit", jws({**LOGIN, "crit": ["exp"]}, CLAIMS))
    write(t, "four_parts", jws(LOGIN, CLAIMS) + ".AA")
    write(t, "short_signature", b64(js(LOGIN)) + "." + b64(js(CLAIMS)) + ".AAAA")
    write(t, "not_base64", "a*b.c$d.e!f")
    write(t, "not_utf8", b"\xff\xfe." + b64(js(LOGIN)).encode() + b".\xc3\x28")


def jwk_point() -> None:
    t = "jwk_point"
    write(t, "jwk_valid", js(jwk(PUB)))
    write(t, "jwk_other_valid", js(jwk(OTHER_PUB)))
    write(t, "jwk_with_d", js(jwk(PUB, d=b64(b"\x01" * 32))))
    write(t, "jwk_p384", js({**jwk(PUB), "crv": "P-384"}))
    write(t, "jwk_rsa", js({"kty": "RSA", "crv": "P-256", "x": "AA", "y": "AA"}))
    write(t, "jwk_off_curve", js(jwk(b"\x04" + b"\x01" * 32 + b"\x02" * 32)))
    write(t, "jwk_zero", js(jwk(b"\x04" + b"\x00" * 64)))
    write(t, "jwk_short_x", js({**jwk(PUB), "x": b64(PUB[1:32])}))
    write(t, "jwk_padded_b64", js({**jwk(PUB), "x": b64(PUB[1:33]) + "="}))
    write(t, "jwk_missing_y", js({"kty": "EC", "crv": "P-256", "x": b64(PUB[1:33])}))
    write(t, "sec1_valid", PUB)
    write(t, "sec1_compressed", bytes([2 + (PUB[-1] & 1)]) + PUB[1:33])
    write(t, "sec1_identity", b"\x04" + b"\x00" * 64)
    write(t, "sec1_x_is_p", b"\x04" + bytes.fromhex("ffffffff00000001000000000000000000000000ffffffffffffffffffffffff") + PUB[33:])


def der_to_rs() -> None:
    t = "der_to_rs"
    for i, msg in enumerate([b"a", b"devicetrust", b"seed-3", b"seed-4"]):
        write(t, f"valid_{i}", KEY.sign(msg, ECDSA))
    # Both halves needing a 0x00 sign pad, and both short.
    write(t, "valid_padded", encode_dss_signature(N - 1, N - 2))
    write(t, "valid_small", encode_dss_signature(1, 1))
    write(t, "r_zero", bytes.fromhex("3006020100020101"))
    write(t, "r_is_n", encode_dss_signature(N, 1))
    write(t, "non_minimal_int", bytes.fromhex("300702020001020101"))
    write(t, "long_form_len", bytes.fromhex("308106020101020101"))
    write(t, "trailing_byte", KEY.sign(b"a", ECDSA) + b"\x00")
    write(t, "negative_r", bytes.fromhex("3006020180020101"))
    write(t, "raw_rs", rs(KEY.sign(b"a", ECDSA)))
    write(t, "empty_seq", bytes.fromhex("3000"))


REQUESTS = [
    # Index = first byte, in the order of `request_bodies.rs`.
    ("password_login", {"user_id": "Jane.Doe", "password": "Correct horse battery 9", "device_id": KID}),
    ("enrol", {"login_id": "AbCdEfGhIjKlMnOpQrStUv", "security_code": "135790", "mobile": "+447700900123"}),
    ("otp_send", {"login_id": "AbCdEfGhIjKlMnOpQrStUv", "channel": "sms"}),
    ("otp_verify", {"login_id": "AbCdEfGhIjKlMnOpQrStUv", "code": "123456"}),
    ("device_challenge", {"device_id": KID}),
    ("device_login", {"challenge_id": "AbCdEfGhIjKlMnOpQrStUv", "proof": jws(LOGIN, CLAIMS)}),
    ("refresh", {"refresh_token": "rt_" + "A" * 43}),
    ("register_device", {
        "registration_id": "AbCdEfGhIjKlMnOpQrStUv", "proof": jws(REGISTER, CLAIMS),
        "name": "Jane's iPhone", "platform": "ios", "key_storage": "secure_enclave",
        "user_verification": "biometric",
    }),
    ("create_user", {
        "user_id": "jane.doe", "name": "Jane Doe", "email": "jane@example.com",
        "mobile": "+447700900123", "primary_market": "GB", "password": "Correct horse battery 9",
    }),
    ("market", {"second_factor": "required"}),
]


def request_bodies() -> None:
    t = "request_bodies"
    for i, (name, body) in enumerate(REQUESTS):
        write(t, f"{i}_{name}", bytes([i]) + js(body))
    write(t, "0_unknown_field", b"\x00" + js({**REQUESTS[0][1], "admin": True}))
    write(t, "1_bad_code", b"\x01" + js({**REQUESTS[1][1], "security_code": "123456", "mobile": "+4"}))
    write(t, "2_bad_channel", b"\x02" + js({**REQUESTS[2][1], "channel": "pigeon"}))
    write(t, "8_unicode", b"\x08" + json.dumps({
        **REQUESTS[8][1], "name": " \u00e9\u4e2d\U0001f600 ", "email": "\u00e9@\u4e2d.example",
        "mobile": "\u00e9\u4e2d\U0001f600\u00e9\u4e2d\U0001f600",
    }, ensure_ascii=False).encode())
    write(t, "9_not_json", b"\x09{\"second_factor\":")


def validators() -> None:
    t = "validators"
    for name, s in [
        ("user_id", "Jane.Doe+1@X"), ("server_id", "AbCdEfGhIjKlMnOpQrStUv"),
        ("security_code", "135790"), ("run", "123456"), ("otp", "000000"),
        ("e164", "+447700900123"), ("market", "gb"), ("email", "jane@example.com"),
        ("email_unicode", "\u00e9\u00e9@\u4e2d\u6587.example"), ("mobile_unicode", "+\u0664\u0664\U0001f600\u00e9\u00e9\u00e9"),
        ("label", "  Jane's \u00e9 phone  "), ("control", "a\u0000b\tc"), ("empty", ""),
        ("fullwidth_digits", "\uff11\uff12\uff13\uff14\uff15\uff16"), ("long", "a" * 300),
    ]:
        write(t, name, s)
    write(t, "not_utf8", b"\xff\xfe@\xc3\x28.com")


if __name__ == "__main__":
    shutil.rmtree(SEEDS, ignore_errors=True)
    jws_parse()
    jwk_point()
    der_to_rs()
    request_bodies()
    validators()
    print("PUBLIC_KEY =", PUB.hex())
    for k in ("RP_ID", "USER_ID", "NONCE", "KID"):
        print(k, "=", globals()[k])
