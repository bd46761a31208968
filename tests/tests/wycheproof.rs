//! Project Wycheproof vectors from ../shared/testvectors (not committed):
//! every ES256 r‖s vector through the server's verifier, and every invalid
//! point refused at device registration.

use devicetrust_e2e::*;
use devicetrust_server::proof::{validate_point, verify_es256};
use serde_json::{json, Value};

fn hex(s: &str) -> Vec<u8> {
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&s[i..i + 2], 16).expect("hex"))
        .collect()
}

fn load(name: &str) -> Option<Value> {
    let dir = testvectors_dir()?;
    let text = std::fs::read_to_string(dir.join(name)).expect("vector file");
    Some(serde_json::from_str(&text).expect("vector JSON"))
}

fn tests_of(file: &Value) -> Vec<(Value, Value)> {
    file["testGroups"]
        .as_array()
        .expect("groups")
        .iter()
        .flat_map(|g| {
            g["tests"]
                .as_array()
                .expect("tests")
                .iter()
                .map(move |t| (g.clone(), t.clone()))
        })
        .collect()
}

#[test]
fn server_verifier_agrees_with_every_p1363_vector() {
    let Some(file) = load("ecdsa_secp256r1_sha256_p1363_test.json") else {
        return;
    };
    let cases = tests_of(&file);
    assert_eq!(cases.len() as u64, file["numberOfTests"].as_u64().unwrap());
    let mut high_s_accepted = 0;
    for (group, t) in &cases {
        let key = hex(group["publicKey"]["uncompressed"].as_str().unwrap());
        let ok = verify_es256(
            &key,
            &hex(t["msg"].as_str().unwrap()),
            &hex(t["sig"].as_str().unwrap()),
        );
        let expected = match t["result"].as_str().unwrap() {
            "valid" => true,
            "invalid" => false,
            other => panic!("tcId {}: unexpected result {other}", t["tcId"]),
        };
        assert_eq!(ok, expected, "tcId {} ({})", t["tcId"], t["comment"]);
        // Malleated (high-S) signatures are valid here: phones do not normalise S.
        if t["comment"] == "signature malleability" && ok {
            high_s_accepted += 1;
        }
    }
    assert!(high_s_accepted > 0, "the high-S vector must be accepted");
}

#[test]
fn every_valid_ecdh_point_passes_point_validation() {
    let Some(file) = load("ecdh_secp256r1_ecpoint_test.json") else {
        return;
    };
    let cases = tests_of(&file);
    assert_eq!(cases.len() as u64, file["numberOfTests"].as_u64().unwrap());
    let mut checked = 0;
    for (_, t) in &cases {
        let point = hex(t["public"].as_str().unwrap());
        if t["result"] == "valid" && point.len() == 65 {
            assert!(validate_point(&point).is_ok(), "tcId {}", t["tcId"]);
            checked += 1;
        }
        if t["result"] == "invalid" {
            assert!(validate_point(&point).is_err(), "tcId {}", t["tcId"]);
        }
    }
    assert!(checked > 300);
}

/// The JWK a client would send for a Wycheproof point. JWK carries x and y
/// only, so a compressed point travels as its x with a made-up y: for an x
/// that is not on P-256 no y makes it valid.
fn jwk_for(point: &[u8]) -> Value {
    match point.len() {
        65 => json!({"kty": "EC", "crv": "P-256", "x": b64(&point[1..33]), "y": b64(&point[33..])}),
        33 => json!({"kty": "EC", "crv": "P-256", "x": b64(&point[1..]), "y": b64(&point[1..])}),
        _ => json!({"kty": "EC", "crv": "P-256", "x": b64(point), "y": b64(point)}),
    }
}

#[tokio::test]
async fn registration_refuses_every_invalid_point() {
    let Some(file) = load("ecdh_secp256r1_ecpoint_test.json") else {
        return;
    };
    let srv = TestServer::start().await;
    srv.add_user("points", "GB", None).await;
    let s = srv.sign_in_with_otp("points", None).await;
    let token = s["access_token"].as_str().unwrap();
    let reg = srv
        .post("/v1/devices/registration", json!({}), Some(token))
        .await;
    let challenge = reg.body["challenge"].as_str().unwrap();
    // Signed by a real key, but naming the invalid point: it must be refused
    // for the point, before any signature check.
    let signer = DeviceKey::generate();
    let mut refused = 0;
    for (_, t) in tests_of(&file) {
        if t["result"] != "invalid" {
            continue;
        }
        let point = hex(t["public"].as_str().unwrap());
        let proof = signer.sign_jws(
            &json!({"alg": "ES256", "typ": "devicetrust-register+jwt", "jwk": jwk_for(&point)}),
            &json!({"aud": RP_ID, "sub": "points", "nonce": challenge}),
        );
        let a = srv
            .post("/v1/devices", json!({"registration_id": reg.body["registration_id"], "proof": proof,
                "name": "P", "platform": "other", "key_storage": "software", "user_verification": "none"}), Some(token))
            .await;
        assert_eq!(
            (a.status, a.code()),
            (400, "invalid_request"),
            "tcId {} ({})",
            t["tcId"],
            t["comment"]
        );
        refused += 1;
    }
    assert_eq!(refused, 24);
    // The identity cannot be written as an uncompressed point; all-zero x, y is refused too.
    let zero = [0u8; 65];
    let mut z = zero.to_vec();
    z[0] = 4;
    assert!(validate_point(&z).is_err());
    let list = srv.get("/v1/devices", Some(token)).await;
    assert!(list.body["devices"].as_array().unwrap().is_empty());
    srv.stop().await;
}

#[test]
fn sdk_der_conversion_never_turns_an_invalid_signature_valid() {
    let Some(file) = load("ecdsa_secp256r1_sha256_test.json") else {
        return;
    };
    let cases = tests_of(&file);
    assert_eq!(cases.len() as u64, file["numberOfTests"].as_u64().unwrap());
    let (mut valid, mut refused, mut converted_but_rejected) = (0, 0, 0);
    for (group, t) in &cases {
        let key = hex(group["publicKey"]["uncompressed"].as_str().unwrap());
        let msg = hex(t["msg"].as_str().unwrap());
        let der = hex(t["sig"].as_str().unwrap());
        let converted = devicetrust_core::der_to_jws_signature(&der);
        match t["result"].as_str().unwrap() {
            "valid" => {
                let sig = converted
                    .unwrap_or_else(|e| panic!("tcId {} valid DER refused: {e}", t["tcId"]));
                assert!(verify_es256(&key, &msg, &sig), "tcId {}", t["tcId"]);
                valid += 1;
            }
            "invalid" => match converted {
                Err(_) => refused += 1,
                Ok(sig) => {
                    assert!(
                        !verify_es256(&key, &msg, &sig),
                        "tcId {} ({}) became valid",
                        t["tcId"],
                        t["comment"]
                    );
                    converted_but_rejected += 1;
                }
            },
            other => panic!("tcId {}: unexpected result {other}", t["tcId"]),
        }
    }
    eprintln!("DER vectors: {valid} valid converted, {refused} invalid refused by the parser, {converted_but_rejected} invalid converted and rejected by the verifier");
    assert!(valid > 0 && refused > 0);
}
