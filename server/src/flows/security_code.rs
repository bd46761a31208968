//! Security codes at rest: argon2id over an HMAC of the code under a key
//! derived from the server key (a pepper). 6–9 digits are few enough to
//! search offline from a database copy; without the server key, which is
//! not in the database, they are not. Hashes made before the pepper (no
//! `p1$` prefix) still verify.

use ring::hmac;

use crate::app::AppState;
use crate::error::ApiError;
use crate::secrets::Secret;

const PEPPERED: &str = "p1$";

impl AppState {
    fn peppered(&self, code: &str) -> Secret {
        let tag = hmac::sign(&self.security_code_key, code.as_bytes());
        Secret::new(
            tag.as_ref()
                .iter()
                .map(|b| format!("{b:02x}"))
                .collect::<String>(),
        )
    }

    /// The stored form of a new security code.
    pub(crate) async fn hash_security_code(&self, code: &Secret) -> Result<String, ApiError> {
        let phc = self.hasher().hash(&self.peppered(code.expose())).await?;
        Ok(format!("{PEPPERED}{phc}"))
    }

    /// Verifies `code` against a stored hash, or against the dummy hash when
    /// there is none (same cost either way).
    pub(crate) async fn verify_security_code(
        &self,
        stored: Option<&str>,
        code: &Secret,
    ) -> Result<bool, ApiError> {
        match stored {
            Some(s) if s.starts_with(PEPPERED) => {
                let phc = s[PEPPERED.len()..].to_owned();
                self.hasher()
                    .verify(Some(phc), &self.peppered(code.expose()))
                    .await
            }
            Some(legacy) => self.hasher().verify(Some(legacy.to_owned()), code).await,
            None => self.hasher().verify(None, code).await,
        }
    }
}
