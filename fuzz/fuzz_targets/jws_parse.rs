//! `proof::Jws` on arbitrary input: parse as a sign-in and as a registration
//! proof, then `kid`, `jwk_point` and `verify` (with a fixed key and with the
//! embedded JWK). Nothing may panic; an accepted proof must really verify.
#![no_main]

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use devicetrust_server::proof::{verify_es256, Expected, Jws, TYP_LOGIN, TYP_REGISTER};
use libfuzzer_sys::fuzz_target;

/// The fixed test key of `make_seeds.py` (uncompressed SEC1): seeds signed
/// with it reach the claim checks after the signature.
const PUBLIC_KEY: &str = "045290c99999a10145da3942d3baf42aa637c5d64bc3bab1f28e5a124b3f086d8ffd5d252d802496c419383d568ec383827b95fbd1b7dc0adac5caa216f9a4379a";

const EXPECTED: Expected<'static> = Expected {
    rp_id: "http://127.0.0.1:8080",
    user_id: "jane.doe",
    nonce: "q2sFv8m1x1b9m9n0cO4oI6wD2Jx3k5yTfKp9t8Yl6aA",
};

fn hex(s: &str) -> Vec<u8> {
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap())
        .collect()
}

fn check(compact: &str, public_key: &[u8]) {
    for typ in [TYP_LOGIN, TYP_REGISTER] {
        let Ok(jws) = Jws::parse(compact, typ) else {
            continue;
        };
        let _ = jws.kid();
        let embedded = jws.jwk_point();
        if let Ok(point) = &embedded {
            assert_eq!(point.len(), 65);
            assert_eq!(point[0], 0x04);
            let _ = jws.verify(point, EXPECTED);
        }
        if jws.verify(public_key, EXPECTED).is_ok() {
            // Accepted: the third part is a valid r||s over the first two.
            let mut parts = compact.rsplitn(2, '.');
            let sig = parts.next().unwrap();
            let input = parts.next().unwrap();
            let sig = URL_SAFE_NO_PAD.decode(sig).unwrap();
            assert!(verify_es256(public_key, input.as_bytes(), &sig));
        }
        // Degenerate keys must be refused, not crash ring.
        let _ = jws.verify(&[], EXPECTED);
        let _ = jws.verify(&public_key[..33], EXPECTED);
    }
}

fuzz_target!(|data: &[u8]| {
    let key = hex(PUBLIC_KEY);
    match std::str::from_utf8(data) {
        Ok(s) => check(s, &key),
        Err(_) => check(&String::from_utf8_lossy(data), &key),
    }
});
