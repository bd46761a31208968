//! `devicetrust_core::der_to_jws_signature` on arbitrary bytes. Nothing may
//! panic, and an accepted input is strict DER: the 64 bytes are r||s with
//! 0 < r, s < n, and re-encoding them gives back exactly the input.
#![no_main]

use devicetrust_core::der_to_jws_signature;
use libfuzzer_sys::fuzz_target;
use p256::ecdsa::Signature;

fuzz_target!(|data: &[u8]| {
    let Ok(rs) = der_to_jws_signature(data) else {
        return;
    };
    let (r, s) = rs.split_at(32);
    assert!(r.iter().any(|&b| b != 0), "r is zero");
    assert!(s.iter().any(|&b| b != 0), "s is zero");
    // from_slice checks 0 < r, s < n.
    let sig = Signature::from_slice(&rs).expect("r||s out of range");
    let der = sig.to_der();
    assert_eq!(der.as_bytes(), data, "accepted DER is not canonical");
    assert_eq!(der_to_jws_signature(der.as_bytes()).ok(), Some(rs));
});
