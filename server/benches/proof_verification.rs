//! The device sign-in's CPU path: parsing a compact ES256 JWS and checking
//! its signature and claims, beside the raw ring verification it rests on.
//! `cargo bench -p devicetrust-server --bench proof_verification`

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use criterion::{criterion_group, criterion_main, Criterion};
use devicetrust_server::proof::{verify_es256, Expected, Jws, TYP_LOGIN};
use p256::ecdsa::signature::Signer;
use p256::ecdsa::{Signature, SigningKey};

fn fixture() -> (Vec<u8>, String, String) {
    let key = SigningKey::from_slice(&[7u8; 32]).expect("valid scalar");
    let public = key
        .verifying_key()
        .to_encoded_point(false)
        .as_bytes()
        .to_vec();
    let nonce = URL_SAFE_NO_PAD.encode([9u8; 32]);
    let header = URL_SAFE_NO_PAD
        .encode(br#"{"alg":"ES256","typ":"devicetrust-login+jwt","kid":"AAAAAAAAAAAAAAAAAAAAAA"}"#);
    let payload = URL_SAFE_NO_PAD.encode(format!(
        r#"{{"aud":"https://auth.example.com","sub":"jane.doe","nonce":"{nonce}"}}"#
    ));
    let input = format!("{header}.{payload}");
    let sig: Signature = key.sign(input.as_bytes());
    let jws = format!("{input}.{}", URL_SAFE_NO_PAD.encode(sig.to_bytes()));
    (public, jws, nonce)
}

fn bench(c: &mut Criterion) {
    let (public, jws, nonce) = fixture();
    let (input, sig_b64) = jws.rsplit_once('.').expect("jws");
    let sig = URL_SAFE_NO_PAD.decode(sig_b64).expect("b64");

    c.bench_function("ring_es256_verify", |b| {
        b.iter(|| assert!(verify_es256(&public, input.as_bytes(), &sig)))
    });
    c.bench_function("login_proof_parse_and_verify", |b| {
        b.iter(|| {
            let parsed = Jws::parse(&jws, TYP_LOGIN).expect("parse");
            parsed
                .verify(
                    &public,
                    Expected {
                        rp_id: "https://auth.example.com",
                        user_id: "jane.doe",
                        nonce: &nonce,
                    },
                )
                .expect("verify");
        })
    });
}

criterion_group!(benches, bench);
criterion_main!(benches);
