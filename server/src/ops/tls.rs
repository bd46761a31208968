//! The server's own TLS (`--tls-cert`, `--tls-key`): rustls on ring, TLS
//! 1.2 and 1.3 only, and a certificate that can be replaced while the
//! process runs (SIGHUP, see `cli::serve`).
//!
//! The certificate lives behind a resolver that every handshake asks: a
//! reload swaps what the resolver answers, so new connections get the new
//! certificate while established ones carry on untouched. A reload that
//! fails (unreadable file, bad PEM, a key that is not the certificate's)
//! changes nothing: the old certificate stays in service.

use std::path::{Path, PathBuf};
use std::sync::{Arc, RwLock};

use rustls::crypto::CryptoProvider;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::server::{ClientHello, ResolvesServerCert};
use rustls::sign::CertifiedKey;

#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    #[error("could not read the TLS certificate {0}: {1}")]
    Cert(PathBuf, String),
    #[error("{0} holds no PEM certificate")]
    NoCert(PathBuf),
    #[error("could not read the TLS private key {0}: {1}")]
    Key(PathBuf, String),
    #[error("the TLS private key {0} is not usable: {1}")]
    BadKey(PathBuf, String),
    #[error("the TLS private key {key} does not belong to the certificate {cert}")]
    Mismatch { cert: PathBuf, key: PathBuf },
    #[error("TLS configuration: {0}")]
    Config(String),
    #[error("the TLS private key {0} is readable by every user (mode {1:o}): chmod o-rwx it")]
    Exposed(PathBuf, u32),
}

/// The certificate and key files, and what was last loaded from them.
#[derive(Debug)]
pub struct ReloadingCert {
    cert: PathBuf,
    key: PathBuf,
    provider: Arc<CryptoProvider>,
    current: RwLock<Arc<CertifiedKey>>,
}

impl ReloadingCert {
    /// Loads both files now; an error here stops the start-up.
    pub fn load(cert: &Path, key: &Path) -> Result<Arc<Self>, TlsError> {
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let certified = load_pair(&provider, cert, key)?;
        Ok(Arc::new(ReloadingCert {
            cert: cert.to_owned(),
            key: key.to_owned(),
            provider,
            current: RwLock::new(Arc::new(certified)),
        }))
    }

    /// Reads both files again; on success new handshakes use them, on
    /// failure the certificate in service stays.
    pub fn reload(&self) -> Result<(), TlsError> {
        let certified = load_pair(&self.provider, &self.cert, &self.key)?;
        *self
            .current
            .write()
            .unwrap_or_else(|poisoned| poisoned.into_inner()) = Arc::new(certified);
        Ok(())
    }

    /// The acceptor new connections are handed to.
    pub fn acceptor(self: &Arc<Self>) -> Result<tokio_rustls::TlsAcceptor, TlsError> {
        let mut config = rustls::ServerConfig::builder_with_provider(self.provider.clone())
            .with_protocol_versions(&[&rustls::version::TLS13, &rustls::version::TLS12])
            .map_err(|e| TlsError::Config(e.to_string()))?
            .with_no_client_auth()
            .with_cert_resolver(self.clone());
        // The accept loop speaks HTTP/1.1 only.
        config.alpn_protocols = vec![b"http/1.1".to_vec()];
        Ok(tokio_rustls::TlsAcceptor::from(Arc::new(config)))
    }
}

impl ResolvesServerCert for ReloadingCert {
    fn resolve(&self, _hello: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        Some(
            self.current
                .read()
                .unwrap_or_else(|poisoned| poisoned.into_inner())
                .clone(),
        )
    }
}

fn load_pair(provider: &CryptoProvider, cert: &Path, key: &Path) -> Result<CertifiedKey, TlsError> {
    let chain = CertificateDer::pem_file_iter(cert)
        .map_err(|e| TlsError::Cert(cert.to_owned(), e.to_string()))?
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| TlsError::Cert(cert.to_owned(), e.to_string()))?;
    if chain.is_empty() {
        return Err(TlsError::NoCert(cert.to_owned()));
    }
    // Readable by the service's group is the usual arrangement (Debian's
    // `ssl-cert`); readable by every user on the machine is not.
    if let Some(mode) = world_readable(key) {
        return Err(TlsError::Exposed(key.to_owned(), mode));
    }
    let der = PrivateKeyDer::from_pem_file(key)
        .map_err(|e| TlsError::Key(key.to_owned(), e.to_string()))?;
    let signing = provider
        .key_provider
        .load_private_key(der)
        .map_err(|e| TlsError::BadKey(key.to_owned(), e.to_string()))?;
    let certified = CertifiedKey::new(chain, signing);
    // A key of another certificate would fail every handshake: refuse it
    // here, where the old certificate can still be kept.
    certified.keys_match().map_err(|_| TlsError::Mismatch {
        cert: cert.to_owned(),
        key: key.to_owned(),
    })?;
    Ok(certified)
}

#[cfg(unix)]
fn world_readable(path: &Path) -> Option<u32> {
    use std::os::unix::fs::PermissionsExt;
    let mode = std::fs::metadata(path).ok()?.permissions().mode();
    (mode & 0o007 != 0).then_some(mode & 0o777)
}

#[cfg(not(unix))]
fn world_readable(_path: &Path) -> Option<u32> {
    None
}

/// Makes a key file the service's own (tests write keys with the umask's
/// mode).
#[cfg(all(test, unix))]
pub(crate) fn make_private(path: &Path) {
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600)).unwrap();
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pair(dir: &Path, name: &str, host: &str) -> (PathBuf, PathBuf) {
        let ck = rcgen::generate_simple_self_signed(vec![host.to_string()]).unwrap();
        let cert = dir.join(format!("{name}.crt"));
        let key = dir.join(format!("{name}.key"));
        std::fs::write(&cert, ck.cert.pem()).unwrap();
        std::fs::write(&key, ck.signing_key.serialize_pem()).unwrap();
        make_private(&key);
        (cert, key)
    }

    #[test]
    fn a_key_every_user_can_read_is_refused_and_a_group_readable_one_is_not() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let (cert, key) = pair(dir.path(), "a", "localhost");
        std::fs::set_permissions(&key, std::fs::Permissions::from_mode(0o644)).unwrap();
        match ReloadingCert::load(&cert, &key) {
            Err(TlsError::Exposed(_, mode)) => assert_eq!(mode, 0o644),
            other => panic!("{other:?}"),
        }
        std::fs::set_permissions(&key, std::fs::Permissions::from_mode(0o640)).unwrap();
        ReloadingCert::load(&cert, &key).unwrap();
    }

    #[test]
    fn bad_files_are_refused_and_a_failed_reload_keeps_the_old_certificate() {
        let dir = tempfile::tempdir().unwrap();
        let (cert, key) = pair(dir.path(), "a", "a.test");
        let (other_cert, other_key) = pair(dir.path(), "b", "b.test");
        let loaded = ReloadingCert::load(&cert, &key).unwrap();
        let before = loaded.current.read().unwrap().cert[0].clone();

        // A key that belongs to another certificate.
        assert!(matches!(
            ReloadingCert::load(&cert, &other_key),
            Err(TlsError::Mismatch { .. })
        ));
        // Not PEM at all, an empty file, a missing file.
        std::fs::write(dir.path().join("junk"), "not pem").unwrap();
        assert!(ReloadingCert::load(&dir.path().join("junk"), &key).is_err());
        assert!(ReloadingCert::load(&cert, &dir.path().join("junk")).is_err());
        assert!(ReloadingCert::load(&dir.path().join("missing"), &key).is_err());

        // The files are replaced with a broken pair: the reload fails and
        // the old certificate stays in service.
        std::fs::copy(&other_cert, &cert).unwrap();
        let err = loaded.reload().unwrap_err();
        assert!(matches!(err, TlsError::Mismatch { .. }), "{err}");
        assert_eq!(loaded.current.read().unwrap().cert[0], before);
        // A good pair: the new certificate is served.
        std::fs::copy(&other_key, &key).unwrap();
        loaded.reload().unwrap();
        assert_ne!(loaded.current.read().unwrap().cert[0], before);
        assert!(loaded.acceptor().is_ok());
    }
}
