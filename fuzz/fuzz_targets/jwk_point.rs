//! `proof::validate_point` on arbitrary bytes and `proof::jwk_to_point` on
//! arbitrary JSON deserialised as `proof::Jwk`. Nothing may panic; an
//! accepted key is always a 65-byte uncompressed point that validates.
#![no_main]

use devicetrust_server::proof::{jwk_to_point, validate_point, verify_es256, Jwk};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if validate_point(data).is_ok() {
        assert_eq!(data.len(), 65);
        assert_eq!(data[0], 0x04);
        // ring must accept what p256 accepted (and not crash on it).
        let _ = verify_es256(data, b"m", &[1u8; 64]);
    }
    if let Ok(jwk) = serde_json::from_slice::<Jwk>(data) {
        if let Ok(point) = jwk_to_point(&jwk) {
            assert_eq!(point.len(), 65);
            assert_eq!(point[0], 0x04);
            assert_eq!(jwk.kty, "EC");
            assert_eq!(jwk.crv, "P-256");
            assert!(validate_point(&point).is_ok());
        }
    }
});
