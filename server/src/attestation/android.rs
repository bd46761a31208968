//! Android Key Attestation: the Keystore's certificate chain for the new
//! key, its KeyDescription extension, and the checks of the contract.
//!
//! KeyDescription (OID 1.3.6.1.4.1.11129.2.1.17), as in
//! <https://source.android.com/docs/security/features/keystore/attestation>:
//! `SEQUENCE { attestationVersion INTEGER, attestationSecurityLevel
//! ENUMERATED, keyMintVersion INTEGER, keyMintSecurityLevel ENUMERATED,
//! attestationChallenge OCTET STRING, uniqueId OCTET STRING,
//! softwareEnforced AuthorizationList, hardwareEnforced AuthorizationList }`;
//! an AuthorizationList is a SEQUENCE of optional `[n] EXPLICIT` fields whose
//! tag numbers run past 700, so every field is read by tag number with
//! asn1-rs (which reads the high-tag-number form) and unknown ones are
//! skipped: the layout is the same from version 3 (Keymaster 3) to 400
//! (KeyMint 4), later versions only add tags.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::SystemTime;

use x509_parser::asn1_rs::{Any, Class, FromDer};
use x509_parser::certificate::X509Certificate;

use super::chain::{self, TrustedKey};
use super::{AttestationError, SecurityLevel};

/// The KeyDescription extension's OID.
pub const KEY_DESCRIPTION_OID: &str = "1.3.6.1.4.1.11129.2.1.17";

/// Google's hardware attestation roots: the RSA root (several certificates
/// share its key) and the EC root "Key Attestation CA1" that signs remotely
/// provisioned chains from February 2026. Source: `roots.json` of
/// github.com/android/keyattestation, the list Google publishes at
/// https://android.googleapis.com/attestation/root (see roots/README.md).
const GOOGLE_ROOTS: [(&str, &str); 2] = [
    (
        "google-rsa",
        include_str!("roots/google_hardware_attestation_root_rsa.pem"),
    ),
    (
        "google-ec",
        include_str!("roots/google_key_attestation_ca1_ec.pem"),
    ),
];

/// At most this many certificates in a chain (remotely provisioned chains
/// have 4 or 5).
pub const MAX_CHAIN: usize = 8;

// AuthorizationList tags (`Tag::*` of the KeyMint HAL, without type bits).
const TAG_PURPOSE: u32 = 1;
const TAG_NO_AUTH_REQUIRED: u32 = 503;
const TAG_USER_AUTH_TYPE: u32 = 504;
const TAG_ALL_APPLICATIONS: u32 = 600;
const TAG_ORIGIN: u32 = 702;
const TAG_ATTESTATION_APPLICATION_ID: u32 = 709;

/// KeyPurpose values.
pub const PURPOSE_SIGN: u64 = 2;
pub const PURPOSE_VERIFY: u64 = 3;
/// KeyOrigin GENERATED.
pub const ORIGIN_GENERATED: u64 = 0;

/// What the operator configured for Android.
#[derive(Debug, Default)]
pub struct Config {
    /// Keys a chain may end at: Google's roots and `--android-attestation-roots`.
    pub roots: Vec<TrustedKey>,
    /// `--android-attestation-status`: serials revoked or suspended.
    pub status: Option<StatusList>,
    /// `--android-package`: the attesting app's package name.
    pub package: Option<String>,
    /// `--android-signing-cert-sha256`: SHA-256 digests of the app's
    /// signing certificates; the attesting app must hold one of them.
    pub signing_cert_sha256: Vec<Vec<u8>>,
}

impl Config {
    /// Google's roots only.
    pub fn google() -> Self {
        Config {
            roots: google_roots(),
            ..Config::default()
        }
    }
}

/// The built-in Google roots' keys.
pub fn google_roots() -> Vec<TrustedKey> {
    GOOGLE_ROOTS
        .iter()
        .flat_map(|(name, pem)| {
            // Built-in data, tested below: a failure here is a build mistake.
            TrustedKey::from_pem(pem, name).unwrap_or_default()
        })
        .collect()
}

/// Google's certificate status list (`{"entries": {"<hex serial>":
/// {"status": "REVOKED" | "SUSPENDED", ...}}}`) read from a file the
/// operator refreshes; it is read again whenever the file's modification
/// time changes, so a refresh needs no restart.
#[derive(Debug)]
pub struct StatusList {
    path: PathBuf,
    state: Mutex<StatusState>,
}

#[derive(Debug, Default)]
struct StatusState {
    modified: Option<SystemTime>,
    /// Serial (lower-case hex, no leading zeros) → status.
    entries: HashMap<String, String>,
}

impl StatusList {
    /// Reads the list; an unreadable or malformed file is an error here, at
    /// start-up, rather than a silently empty list.
    pub fn load(path: &Path) -> Result<Self, String> {
        let (modified, entries) = read_status(path)?;
        Ok(StatusList {
            path: path.to_owned(),
            state: Mutex::new(StatusState { modified, entries }),
        })
    }

    /// An in-memory list (tests).
    pub fn from_json(json: &str) -> Result<Self, String> {
        Ok(StatusList {
            path: PathBuf::new(),
            state: Mutex::new(StatusState {
                modified: None,
                entries: parse_status(json)?,
            }),
        })
    }

    /// The status of a serial, if listed; re-reads the file first when it
    /// changed. A refreshed file that does not parse keeps the last good
    /// list (logged): a half-written download must not empty it.
    pub fn status(&self, serial_hex: &str) -> Option<String> {
        let mut state = self
            .state
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        if !self.path.as_os_str().is_empty() {
            let modified = std::fs::metadata(&self.path)
                .and_then(|m| m.modified())
                .ok();
            if modified.is_some() && modified != state.modified {
                match read_status(&self.path) {
                    Ok((modified, entries)) => {
                        tracing::info!(
                            entries = entries.len(),
                            "reloaded the Android attestation status list"
                        );
                        *state = StatusState { modified, entries };
                    }
                    Err(e) => {
                        tracing::warn!(error = %e, "the Android attestation status list changed but does not parse; keeping the previous one")
                    }
                }
            }
        }
        state.entries.get(serial_hex).cloned()
    }
}

type StatusRead = (Option<SystemTime>, HashMap<String, String>);

fn read_status(path: &Path) -> Result<StatusRead, String> {
    let modified = std::fs::metadata(path)
        .and_then(|m| m.modified())
        .map_err(|e| format!("{}: {e}", path.display()))?;
    let text = std::fs::read_to_string(path).map_err(|e| format!("{}: {e}", path.display()))?;
    let entries = parse_status(&text).map_err(|e| format!("{}: {e}", path.display()))?;
    Ok((Some(modified), entries))
}

fn parse_status(json: &str) -> Result<HashMap<String, String>, String> {
    #[derive(serde::Deserialize)]
    struct List {
        entries: HashMap<String, Entry>,
    }
    #[derive(serde::Deserialize)]
    struct Entry {
        status: String,
    }
    let list: List = serde_json::from_str(json).map_err(|e| format!("not a status list: {e}"))?;
    Ok(list
        .entries
        .into_iter()
        // Google writes lower-case hex; be lenient with case and zeros.
        .map(|(serial, e)| {
            let s = serial.trim().to_ascii_lowercase();
            let s = s.trim_start_matches('0');
            (if s.is_empty() { "0" } else { s }.to_owned(), e.status)
        })
        .collect())
}

/// The parts of a KeyDescription the checks read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeyDescription {
    pub attestation_version: u64,
    pub attestation_security_level: u64,
    pub keymint_version: u64,
    pub keymint_security_level: u64,
    pub challenge: Vec<u8>,
    pub software: AuthorizationList,
    pub hardware: AuthorizationList,
}

/// The fields of an AuthorizationList the checks read.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AuthorizationList {
    pub purposes: Vec<u64>,
    pub no_auth_required: bool,
    pub user_auth_type: Option<u64>,
    pub all_applications: bool,
    pub origin: Option<u64>,
    /// The DER of AttestationApplicationId (the OCTET STRING's content).
    pub attestation_application_id: Option<Vec<u8>>,
}

/// The attesting app, from AttestationApplicationId.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ApplicationId {
    pub packages: Vec<String>,
    pub signature_digests: Vec<Vec<u8>>,
}

fn malformed() -> AttestationError {
    AttestationError::KeyDescriptionMalformed
}

/// One DER element, wholly consumed from `input`.
fn element(input: &[u8]) -> Result<(&[u8], Any<'_>), AttestationError> {
    Any::from_der(input).map_err(|_| malformed())
}

/// The elements inside a constructed element.
fn children<'a>(any: &Any<'a>) -> Result<Vec<Any<'a>>, AttestationError> {
    if !any.header.is_constructed() {
        return Err(malformed());
    }
    let mut rest = any.data;
    let mut out = Vec::new();
    while !rest.is_empty() {
        let (r, child) = element(rest)?;
        out.push(child);
        rest = r;
    }
    Ok(out)
}

/// A non-negative INTEGER or ENUMERATED that fits 64 bits.
fn uint(any: &Any<'_>, universal_tag: u32) -> Result<u64, AttestationError> {
    if any.header.class() != Class::Universal || any.header.tag().0 != universal_tag {
        return Err(malformed());
    }
    let bytes = any.data;
    if bytes.is_empty() || bytes[0] & 0x80 != 0 {
        return Err(malformed());
    }
    let bytes = match bytes {
        [0, rest @ ..] if !rest.is_empty() => rest,
        b => b,
    };
    if bytes.len() > 8 {
        return Err(malformed());
    }
    Ok(bytes.iter().fold(0u64, |acc, b| (acc << 8) | u64::from(*b)))
}

const INTEGER: u32 = 2;
const OCTET_STRING: u32 = 4;
const NULL: u32 = 5;
const ENUMERATED: u32 = 10;
const SEQUENCE: u32 = 16;
const SET: u32 = 17;

fn octets<'a>(any: &Any<'a>) -> Result<&'a [u8], AttestationError> {
    if any.header.class() != Class::Universal || any.header.tag().0 != OCTET_STRING {
        return Err(malformed());
    }
    Ok(any.data)
}

fn expect_tag(any: &Any<'_>, tag: u32) -> Result<(), AttestationError> {
    if any.header.class() == Class::Universal && any.header.tag().0 == tag {
        Ok(())
    } else {
        Err(malformed())
    }
}

/// Parses a KeyDescription (the extension's value).
pub fn parse_key_description(der: &[u8]) -> Result<KeyDescription, AttestationError> {
    let (rest, seq) = element(der)?;
    if !rest.is_empty() {
        return Err(malformed());
    }
    expect_tag(&seq, SEQUENCE)?;
    let fields = children(&seq)?;
    if fields.len() < 8 {
        return Err(malformed());
    }
    Ok(KeyDescription {
        attestation_version: uint(&fields[0], INTEGER)?,
        attestation_security_level: uint(&fields[1], ENUMERATED)?,
        keymint_version: uint(&fields[2], INTEGER)?,
        keymint_security_level: uint(&fields[3], ENUMERATED)?,
        challenge: octets(&fields[4])?.to_vec(),
        software: parse_authorization_list(&fields[6])?,
        hardware: parse_authorization_list(&fields[7])?,
    })
}

/// HardwareAuthenticatorType bits of `userAuthType`.
const USER_AUTH_PASSWORD: u64 = 1;
const USER_AUTH_BIOMETRIC: u64 = 2;

fn parse_authorization_list(any: &Any<'_>) -> Result<AuthorizationList, AttestationError> {
    expect_tag(any, SEQUENCE)?;
    let mut list = AuthorizationList::default();
    let mut last_tag = None;
    for field in children(any)? {
        if field.header.class() != Class::ContextSpecific {
            return Err(malformed());
        }
        // A SEQUENCE of OPTIONAL fields: each tag once, in ascending order.
        // A repeated field (two origins, "last one wins") is refused.
        let tag = field.header.tag().0;
        if last_tag.is_some_and(|last| tag <= last) {
            return Err(malformed());
        }
        last_tag = Some(tag);
        // Every field is `[n] EXPLICIT`: one element inside.
        let inner = children(&field)?;
        let [value] = inner.as_slice() else {
            return Err(malformed());
        };
        match field.header.tag().0 {
            TAG_PURPOSE => {
                expect_tag(value, SET)?;
                for p in children(value)? {
                    list.purposes.push(uint(&p, INTEGER)?);
                }
            }
            TAG_NO_AUTH_REQUIRED => {
                expect_tag(value, NULL)?;
                list.no_auth_required = true;
            }
            TAG_USER_AUTH_TYPE => list.user_auth_type = Some(uint(value, INTEGER)?),
            TAG_ALL_APPLICATIONS => {
                expect_tag(value, NULL)?;
                list.all_applications = true;
            }
            TAG_ORIGIN => list.origin = Some(uint(value, INTEGER)?),
            TAG_ATTESTATION_APPLICATION_ID => {
                list.attestation_application_id = Some(octets(value)?.to_vec())
            }
            // Everything else (key size, curve, boot state, patch levels,
            // ids, tags added by later versions) is not part of the policy.
            _ => {}
        }
    }
    Ok(list)
}

/// Parses AttestationApplicationId: `SEQUENCE { package_infos SET OF
/// SEQUENCE { package_name OCTET STRING, version INTEGER },
/// signature_digests SET OF OCTET STRING }`.
pub fn parse_application_id(der: &[u8]) -> Result<ApplicationId, AttestationError> {
    let (rest, seq) = element(der)?;
    if !rest.is_empty() {
        return Err(malformed());
    }
    expect_tag(&seq, SEQUENCE)?;
    let fields = children(&seq)?;
    let [packages, digests, ..] = fields.as_slice() else {
        return Err(malformed());
    };
    expect_tag(packages, SET)?;
    expect_tag(digests, SET)?;
    let mut id = ApplicationId::default();
    for info in children(packages)? {
        expect_tag(&info, SEQUENCE)?;
        let parts = children(&info)?;
        let name = parts.first().ok_or_else(malformed)?;
        id.packages
            .push(String::from_utf8_lossy(octets(name)?).into_owned());
    }
    for d in children(digests)? {
        id.signature_digests.push(octets(&d)?.to_vec());
    }
    Ok(id)
}

fn level(value: u64) -> Option<SecurityLevel> {
    match value {
        1 => Some(SecurityLevel::Tee),
        2 => Some(SecurityLevel::Strongbox),
        _ => None,
    }
}

/// What a registration expects of the attested key.
pub struct Expected<'a> {
    pub challenge: &'a [u8],
    /// The registered key, an uncompressed P-256 point.
    pub public_key: &'a [u8],
    /// `user_verification` is not `none`.
    pub user_auth_required: bool,
    pub now: i64,
}

/// The result of a verified chain.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Verified {
    pub security_level: SecurityLevel,
    pub description: KeyDescription,
}

/// The chain's certificates, KeyDescription and anchoring, without the
/// registration's expectations: what the real published chains are tested
/// with (their challenge and key are fixed).
pub fn verify_chain_and_parse(
    config: &Config,
    ders: &[Vec<u8>],
    now: i64,
) -> Result<(KeyDescription, Vec<u8>), AttestationError> {
    if ders.is_empty() {
        return Err(AttestationError::EmptyChain);
    }
    if ders.len() > MAX_CHAIN {
        return Err(AttestationError::ChainTooLong);
    }
    let certs = chain::parse_all(ders)?;
    let anchored = chain::verify_chain(&certs, &config.roots)?;
    // The leaf's dates are whatever the phone set (often 1970 to 2048):
    // only the certificates above it are held to theirs, and a root whose
    // key is trusted is the anchor, not a certificate to date.
    for (i, cert) in certs.iter().enumerate().take(anchored.below_anchor).skip(1) {
        if !chain::valid_at(cert, now) {
            return Err(AttestationError::CertificateExpired(i));
        }
    }
    if let Some(status) = &config.status {
        for (i, cert) in certs.iter().enumerate() {
            if let Some(s) = status.status(&chain::serial_hex(cert)) {
                return Err(AttestationError::Revoked(i, s));
            }
        }
    }
    // Only the leaf may describe a key: a KeyDescription further up means
    // an attested key was used to sign a certificate of its own making.
    let mut description = None;
    for (i, cert) in certs.iter().enumerate() {
        let found = key_description_extension(cert)?;
        match (i, found) {
            (0, Some(der)) => description = Some(parse_key_description(der)?),
            (0, None) => return Err(AttestationError::KeyDescriptionMissing),
            (_, Some(_)) => return Err(AttestationError::KeyDescriptionNotInLeaf(i)),
            (_, None) => {}
        }
    }
    let description = description.ok_or(AttestationError::KeyDescriptionMissing)?;
    let leaf_key = certs
        .first()
        .and_then(|leaf| chain::p256_point(leaf.public_key()))
        .ok_or(AttestationError::KeyMismatch)?;
    Ok((description, leaf_key))
}

fn key_description_extension<'a>(
    cert: &'a X509Certificate<'_>,
) -> Result<Option<&'a [u8]>, AttestationError> {
    let mut found = None;
    for ext in cert.extensions() {
        if ext.oid.to_id_string() == KEY_DESCRIPTION_OID {
            if found.is_some() {
                return Err(AttestationError::KeyDescriptionMalformed);
            }
            found = Some(ext.value);
        }
    }
    Ok(found)
}

/// Verifies an Android Key Attestation chain (DER, leaf first) for a
/// registration: every check of the contract, in order, the first failing
/// one named in the error.
pub fn verify(
    config: &Config,
    ders: &[Vec<u8>],
    expected: &Expected<'_>,
) -> Result<Verified, AttestationError> {
    let (d, leaf_key) = verify_chain_and_parse(config, ders, expected.now)?;
    if leaf_key != expected.public_key {
        return Err(AttestationError::KeyMismatch);
    }
    if d.challenge != expected.challenge {
        return Err(AttestationError::ChallengeMismatch);
    }
    let security_level =
        level(d.attestation_security_level).ok_or(AttestationError::SoftwareLevel)?;
    if level(d.keymint_security_level).is_none() {
        return Err(AttestationError::SoftwareLevel);
    }
    // What the secure hardware enforces is what counts: the checks read the
    // hardware-enforced list.
    let hw = &d.hardware;
    if !hw.purposes.contains(&PURPOSE_SIGN)
        || hw
            .purposes
            .iter()
            .any(|p| *p != PURPOSE_SIGN && *p != PURPOSE_VERIFY)
    {
        return Err(AttestationError::WrongPurpose);
    }
    if hw.origin != Some(ORIGIN_GENERATED) {
        return Err(AttestationError::WrongOrigin);
    }
    if hw.all_applications || d.software.all_applications {
        return Err(AttestationError::AllApplications);
    }
    // userAuthType is a bit mask (PASSWORD 1, FINGERPRINT/biometric 2): a
    // present but empty one (NONE) gates nothing.
    let gated = hw
        .user_auth_type
        .is_some_and(|t| t & (USER_AUTH_PASSWORD | USER_AUTH_BIOMETRIC) != 0);
    if expected.user_auth_required && (hw.no_auth_required || d.software.no_auth_required || !gated)
    {
        return Err(AttestationError::NoUserAuth);
    }
    if config.package.is_some() || !config.signing_cert_sha256.is_empty() {
        // Keystore writes the application id in the software-enforced list
        // (it is the OS that knows the caller), some KeyMints in both.
        let raw = d
            .software
            .attestation_application_id
            .as_ref()
            .or(hw.attestation_application_id.as_ref())
            .ok_or(AttestationError::WrongPackage)?;
        let app = parse_application_id(raw)?;
        if let Some(package) = &config.package {
            if !app.packages.iter().any(|p| p == package) {
                return Err(AttestationError::WrongPackage);
            }
        }
        if !config.signing_cert_sha256.is_empty()
            && !app
                .signature_digests
                .iter()
                .any(|d| config.signing_cert_sha256.contains(d))
        {
            return Err(AttestationError::WrongSigningCert);
        }
    }
    Ok(Verified {
        security_level,
        description: d,
    })
}

/// A DER encoder for KeyDescriptions, for tests that build synthetic
/// chains (the server never writes one).
#[doc(hidden)]
pub mod encode {
    /// One DER element: identifier octets (low or high tag number form),
    /// length, content.
    pub fn tlv(class_bits: u8, constructed: bool, tag: u32, content: &[u8]) -> Vec<u8> {
        let mut out = Vec::new();
        let first = class_bits | if constructed { 0x20 } else { 0 };
        if tag < 31 {
            out.push(first | tag as u8);
        } else {
            out.push(first | 0x1f);
            let mut groups = Vec::new();
            let mut t = tag;
            loop {
                groups.push((t & 0x7f) as u8);
                t >>= 7;
                if t == 0 {
                    break;
                }
            }
            for (i, g) in groups.iter().enumerate().rev() {
                out.push(if i == 0 { *g } else { g | 0x80 });
            }
        }
        let len = content.len();
        if len < 128 {
            out.push(len as u8);
        } else {
            let bytes: Vec<u8> = len
                .to_be_bytes()
                .iter()
                .copied()
                .skip_while(|b| *b == 0)
                .collect();
            out.push(0x80 | bytes.len() as u8);
            out.extend(bytes);
        }
        out.extend_from_slice(content);
        out
    }

    pub fn int(tag: u32, v: u64) -> Vec<u8> {
        let mut bytes: Vec<u8> = v
            .to_be_bytes()
            .iter()
            .copied()
            .skip_while(|b| *b == 0)
            .collect();
        if bytes.first().is_none_or(|b| b & 0x80 != 0) {
            bytes.insert(0, 0);
        }
        tlv(0, false, tag, &bytes)
    }
    pub fn integer(v: u64) -> Vec<u8> {
        int(2, v)
    }
    pub fn enumerated(v: u64) -> Vec<u8> {
        int(10, v)
    }
    pub fn octets(b: &[u8]) -> Vec<u8> {
        tlv(0, false, 4, b)
    }
    pub fn null() -> Vec<u8> {
        tlv(0, false, 5, &[])
    }
    pub fn sequence(items: &[Vec<u8>]) -> Vec<u8> {
        tlv(0, true, 16, &items.concat())
    }
    pub fn set(items: &[Vec<u8>]) -> Vec<u8> {
        tlv(0, true, 17, &items.concat())
    }
    /// `[tag] EXPLICIT value`.
    pub fn explicit(tag: u32, value: Vec<u8>) -> Vec<u8> {
        tlv(0x80, true, tag, &value)
    }

    /// What a synthetic KeyDescription says.
    #[derive(Debug, Clone)]
    pub struct Description {
        pub version: u64,
        pub attestation_level: u64,
        pub keymint_level: u64,
        pub challenge: Vec<u8>,
        pub purposes: Vec<u64>,
        pub origin: u64,
        pub no_auth_required: bool,
        pub user_auth_type: Option<u64>,
        pub all_applications: bool,
        pub packages: Vec<String>,
        pub signature_digests: Vec<Vec<u8>>,
    }

    impl Description {
        /// A TEE key for signing, generated inside, behind a biometric.
        pub fn tee(challenge: &[u8]) -> Self {
            Description {
                version: 300,
                attestation_level: 1,
                keymint_level: 1,
                challenge: challenge.to_vec(),
                purposes: vec![2],
                origin: 0,
                no_auth_required: false,
                user_auth_type: Some(2),
                all_applications: false,
                packages: vec!["com.bank.app".into()],
                signature_digests: vec![vec![0xab; 32]],
            }
        }

        pub fn der(&self) -> Vec<u8> {
            let app_id = sequence(&[
                set(&self
                    .packages
                    .iter()
                    .map(|p| sequence(&[octets(p.as_bytes()), integer(1)]))
                    .collect::<Vec<_>>()),
                set(&self
                    .signature_digests
                    .iter()
                    .map(|d| octets(d))
                    .collect::<Vec<_>>()),
            ]);
            let software = sequence(&[
                explicit(701, integer(1_700_000_000_000)),
                explicit(709, octets(&app_id)),
            ]);
            let mut hw = vec![
                explicit(
                    1,
                    set(&self
                        .purposes
                        .iter()
                        .map(|p| integer(*p))
                        .collect::<Vec<_>>()),
                ),
                explicit(2, integer(3)),
                explicit(3, integer(256)),
                explicit(10, integer(1)),
            ];
            if self.no_auth_required {
                hw.push(explicit(503, null()));
            }
            if let Some(t) = self.user_auth_type {
                hw.push(explicit(504, integer(t)));
            }
            if self.all_applications {
                hw.push(explicit(600, null()));
            }
            hw.push(explicit(702, integer(self.origin)));
            hw.push(explicit(705, integer(150000)));
            sequence(&[
                integer(self.version),
                enumerated(self.attestation_level),
                integer(self.version),
                enumerated(self.keymint_level),
                octets(&self.challenge),
                octets(&[]),
                software,
                sequence(&hw),
            ])
        }
    }
}
