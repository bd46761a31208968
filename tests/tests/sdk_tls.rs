//! The SDK over real TLS (a TLS-terminating proxy in front of the test
//! server): normal certificate checks, and SPKI pinning.

use std::net::SocketAddr;
use std::sync::Arc;

use base64::Engine;
use devicetrust_core::*;
use devicetrust_e2e::sdk::*;
use devicetrust_e2e::*;
use rcgen::PublicKeyData;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};

struct Proxy {
    port: u16,
    cert: Vec<u8>,
    pin: String,
}

/// Terminates TLS for `localhost` with a fresh self-signed certificate and
/// forwards the bytes to `backend`.
async fn tls_proxy(backend: SocketAddr) -> Proxy {
    install_crypto_provider();
    let ck = rcgen::generate_simple_self_signed(vec!["localhost".to_string()]).expect("cert");
    let cert: CertificateDer<'static> = ck.cert.der().clone();
    let pin = pin_of(&ck.signing_key);
    let key = PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(ck.signing_key.serialize_der()));
    let port = serve_tls(backend, vec![cert.clone()], key).await;
    Proxy {
        port,
        cert: cert.to_vec(),
        pin,
    }
}

/// The RFC 7469 `pin-sha256` of a key.
fn pin_of(key: &impl PublicKeyData) -> String {
    let digest = ring::digest::digest(&ring::digest::SHA256, &key.subject_public_key_info());
    base64::engine::general_purpose::STANDARD.encode(digest.as_ref())
}

/// Terminates TLS presenting `chain` (leaf first) and forwards the bytes
/// to `backend`; returns the port.
async fn serve_tls(
    backend: SocketAddr,
    chain: Vec<CertificateDer<'static>>,
    key: PrivateKeyDer<'static>,
) -> u16 {
    let config = rustls::ServerConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .expect("versions")
    .with_no_client_auth()
    .with_single_cert(chain, key)
    .expect("server config");
    let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(config));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let port = listener.local_addr().expect("addr").port();
    tokio::spawn(async move {
        while let Ok((tcp, _)) = listener.accept().await {
            let acceptor = acceptor.clone();
            tokio::spawn(async move {
                let Ok(mut tls) = acceptor.accept(tcp).await else {
                    return;
                };
                let Ok(mut upstream) = tokio::net::TcpStream::connect(backend).await else {
                    return;
                };
                let _ = tokio::io::copy_bidirectional(&mut tls, &mut upstream).await;
            });
        }
    });
    port
}

fn sdk(proxy: &Proxy, dir: &std::path::Path, roots: bool, pins: Vec<String>) -> DeviceTrust {
    let mut config = Config::new(
        &format!("https://localhost:{}", proxy.port),
        RP_ID,
        dir.join("state").to_str().unwrap(),
    );
    if roots {
        config.extra_root_certificates = vec![proxy.cert.clone()];
    }
    config.tls_pins = pins;
    DeviceTrust::new(config, ScriptedKeyStore::new(&dir.join("keys"))).expect("sdk")
}

#[tokio::test]
async fn pinned_and_trusted_tls_works_and_anything_else_fails_closed() {
    let srv = TestServer::start().await;
    srv.add_user("tls", "GB", None).await;
    let proxy = tls_proxy(srv.addr).await;
    let dir = tempfile::tempdir().unwrap();

    // Trusted root and the right pin: the sign-in goes through.
    let ok = sdk(&proxy, dir.path(), true, vec![proxy.pin.clone()]);
    assert!(matches!(
        ok.sign_in_with_password("tls", PASSWORD).await,
        Ok(SignInStep::EnrolmentRequired { .. })
    ));
    // Trusted root, no pins: ordinary TLS.
    let plain = sdk(&proxy, dir.path(), true, vec![]);
    assert!(plain.sign_in_with_password("tls", PASSWORD).await.is_ok());

    // A pin that matches no certificate of the chain: refused, not retryable.
    let wrong = base64::engine::general_purpose::STANDARD.encode([7u8; 32]);
    match sdk(&proxy, dir.path(), true, vec![wrong])
        .sign_in_with_password("tls", PASSWORD)
        .await
    {
        Err(DeviceTrustError::Network {
            retryable: false,
            reason: message,
        }) => assert!(message.contains("pin"), "{message}"),
        other => panic!("{other:?}"),
    }
    // An untrusted certificate: refused, not retryable, whatever the pin.
    match sdk(&proxy, dir.path(), false, vec![proxy.pin.clone()])
        .sign_in_with_password("tls", PASSWORD)
        .await
    {
        Err(DeviceTrustError::Network {
            retryable: false,
            reason: message,
        }) => assert!(message.starts_with("TLS"), "{message}"),
        other => panic!("{other:?}"),
    }
    // Nothing reached the server from the refused connections: one lockout-free user.
    assert_eq!(srv.password("tls", PASSWORD, None).await.status, 200);
    srv.stop().await;
}

/// A man in the middle with a certificate the phone trusts (a CA that
/// misissued one: exactly what pinning is for) who also sends the real
/// server's certificate, whose key is public, as if it were an
/// intermediate. The pin must be on the chain that was verified, not
/// merely among the certificates sent.
#[tokio::test]
async fn a_pinned_certificate_sent_beside_the_chain_does_not_pass() {
    let srv = TestServer::start().await;
    srv.add_user("tls.mitm", "GB", None).await;
    install_crypto_provider();
    let real = rcgen::generate_simple_self_signed(vec!["localhost".to_string()]).expect("cert");
    let mitm = rcgen::generate_simple_self_signed(vec!["localhost".to_string()]).expect("cert");
    let port = serve_tls(
        srv.addr,
        vec![mitm.cert.der().clone(), real.cert.der().clone()],
        PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(mitm.signing_key.serialize_der())),
    )
    .await;
    let proxy = Proxy {
        port,
        cert: mitm.cert.der().to_vec(),
        pin: pin_of(&real.signing_key),
    };
    let dir = tempfile::tempdir().unwrap();
    match sdk(&proxy, dir.path(), true, vec![proxy.pin.clone()])
        .sign_in_with_password("tls.mitm", PASSWORD)
        .await
    {
        Err(DeviceTrustError::Network {
            retryable: false,
            reason: message,
        }) => assert!(message.contains("pin"), "{message}"),
        other => panic!("the pin was bypassed: {other:?}"),
    }
    srv.stop().await;
}

/// A pin on the CA (the trust anchor) of a server that does not send its
/// root: the verified chain ends at the pinned key, so it passes; a pin on
/// another CA does not.
#[tokio::test]
async fn a_pin_on_the_trust_anchor_passes_when_the_chain_ends_there() {
    let srv = TestServer::start().await;
    srv.add_user("tls.ca", "GB", None).await;
    install_crypto_provider();
    let mut ca_params = rcgen::CertificateParams::new(Vec::<String>::new()).expect("params");
    ca_params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
    let ca_key = rcgen::KeyPair::generate().expect("key");
    let ca_pin = pin_of(&ca_key);
    let ca = rcgen::CertifiedIssuer::self_signed(ca_params, ca_key).expect("ca");
    let leaf_key = rcgen::KeyPair::generate().expect("key");
    let leaf = rcgen::CertificateParams::new(vec!["localhost".to_string()])
        .expect("params")
        .signed_by(&leaf_key, &ca)
        .expect("leaf");
    let port = serve_tls(
        srv.addr,
        vec![leaf.der().clone()],
        PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(leaf_key.serialize_der())),
    )
    .await;
    let proxy = Proxy {
        port,
        cert: ca.der().to_vec(),
        pin: ca_pin,
    };
    let dir = tempfile::tempdir().unwrap();
    assert!(matches!(
        sdk(&proxy, dir.path(), true, vec![proxy.pin.clone()])
            .sign_in_with_password("tls.ca", PASSWORD)
            .await,
        Ok(SignInStep::EnrolmentRequired { .. })
    ));
    let other = pin_of(&rcgen::KeyPair::generate().expect("key"));
    assert!(matches!(
        sdk(&proxy, dir.path(), true, vec![other])
            .sign_in_with_password("tls.ca", PASSWORD)
            .await,
        Err(DeviceTrustError::Network {
            retryable: false,
            ..
        })
    ));
    srv.stop().await;
}

#[test]
fn the_sdk_links_no_openssl_and_no_aws_lc() {
    // The dependency tree is fixed at build time; the lock file tells.
    let lock =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../Cargo.lock")).unwrap();
    for banned in [
        "name = \"aws-lc-sys\"",
        "name = \"openssl-sys\"",
        "name = \"native-tls\"",
    ] {
        assert!(!lock.contains(banned), "{banned} is in Cargo.lock");
    }
}
