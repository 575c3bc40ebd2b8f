//! Presigned URLs for the local storage adapter: web-ui serves `/objects/{key}` and lets a
//! request through only if its query carries a valid HMAC-SHA256 signature over the method,
//! the key, the expiry and the response disposition, made with the deployment's secret.

use std::sync::Arc;
use std::time::Duration;

use hmac::{Hmac, Mac};
use sha2::Sha256;

use crate::clock::{self, Clock};

pub use crate::error::PresignError;

/// What a verified URL allows.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Verified {
    /// The `Content-Disposition` to answer with, for downloads.
    pub response_content_disposition: Option<String>,
}

/// Signs and verifies local presigned URLs; expiries are read from its [`Clock`].
#[derive(Clone)]
pub struct Presigner {
    secret: Vec<u8>,
    clock: Arc<dyn Clock>,
}

impl std::fmt::Debug for Presigner {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Presigner")
            .field("secret", &"<redacted>")
            .field("clock", &self.clock)
            .finish()
    }
}

const P_METHOD: &str = "X-Parallax-Method";
const P_EXPIRES: &str = "X-Parallax-Expires";
const P_DISPOSITION: &str = "response-content-disposition";
const P_SIGNATURE: &str = "X-Parallax-Signature";

impl Presigner {
    /// A presigner with `secret` (at least 16 bytes are recommended).
    pub fn new(secret: impl Into<Vec<u8>>) -> Self {
        Self {
            secret: secret.into(),
            clock: clock::system(),
        }
    }

    /// The same presigner reading `clock` for expiries, when signing and when verifying
    /// (tests move a [`TestClock`](crate::clock::TestClock) to see a link expire).
    pub fn with_clock(mut self, clock: Arc<dyn Clock>) -> Self {
        self.clock = clock;
        self
    }

    /// The expiry (unix seconds) of a URL signed now for `expires_in` (at least a second).
    pub fn expiry(&self, expires_in: Duration) -> i64 {
        let secs = i64::try_from(expires_in.as_secs().max(1)).unwrap_or(i64::MAX);
        self.clock.now().timestamp().saturating_add(secs)
    }

    fn signature(&self, method: &str, key: &str, expires: i64, disposition: &str) -> String {
        let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(&self.secret)
            .expect("HMAC accepts keys of any length");
        for part in [method, key, &expires.to_string(), disposition] {
            mac.update(part.as_bytes());
            mac.update(b"\n");
        }
        hex::encode(mac.finalize().into_bytes())
    }

    /// The query string (without `?`) that authorises `method` on `key` until `expires`
    /// (unix seconds).
    pub fn sign_query(
        &self,
        method: &str,
        key: &str,
        expires: i64,
        disposition: Option<&str>,
    ) -> String {
        let sig = self.signature(method, key, expires, disposition.unwrap_or(""));
        let mut q = url::form_urlencoded::Serializer::new(String::new());
        q.append_pair(P_METHOD, method);
        q.append_pair(P_EXPIRES, &expires.to_string());
        if let Some(d) = disposition {
            q.append_pair(P_DISPOSITION, d);
        }
        q.append_pair(P_SIGNATURE, &sig);
        q.finish()
    }

    /// Checks a request for `method` on `key` with the URL's `query` (without `?`), before any
    /// byte of the object is read or written.
    pub fn verify(&self, method: &str, key: &str, query: &str) -> Result<Verified, PresignError> {
        self.verify_at(method, key, query, self.clock.now().timestamp())
    }

    /// [`Presigner::verify`] at a given time (unix seconds).
    pub fn verify_at(
        &self,
        method: &str,
        key: &str,
        query: &str,
        now: i64,
    ) -> Result<Verified, PresignError> {
        let (mut signed_method, mut expires, mut disposition, mut sig) = (None, None, None, None);
        for (k, v) in url::form_urlencoded::parse(query.as_bytes()) {
            let slot = match k.as_ref() {
                P_METHOD => &mut signed_method,
                P_EXPIRES => &mut expires,
                P_DISPOSITION => &mut disposition,
                P_SIGNATURE => &mut sig,
                _ => continue,
            };
            if slot.is_some() {
                return Err(PresignError::Malformed("duplicate parameter"));
            }
            *slot = Some(v.into_owned());
        }
        let signed_method = signed_method.ok_or(PresignError::Malformed(P_METHOD))?;
        let expires: i64 = expires
            .ok_or(PresignError::Malformed(P_EXPIRES))?
            .parse()
            .map_err(|_| PresignError::Malformed(P_EXPIRES))?;
        let sig = sig.ok_or(PresignError::Malformed(P_SIGNATURE))?;
        let expected = self.signature(
            &signed_method,
            key,
            expires,
            disposition.as_deref().unwrap_or(""),
        );
        if !constant_time_eq(expected.as_bytes(), sig.as_bytes()) {
            return Err(PresignError::BadSignature);
        }
        if !signed_method.eq_ignore_ascii_case(method) {
            return Err(PresignError::WrongMethod {
                expected: signed_method,
                got: method.to_owned(),
            });
        }
        if now > expires {
            return Err(PresignError::Expired);
        }
        Ok(Verified {
            response_content_disposition: disposition,
        })
    }
}

fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signature_covers_every_part() {
        let p = Presigner::new(b"secret-secret-secret".to_vec());
        let q = p.sign_query("GET", "final/j/a.mp4", 1000, Some("attachment"));
        assert!(p.verify_at("GET", "final/j/a.mp4", &q, 999).is_ok());
        assert_eq!(
            p.verify_at("GET", "final/j/b.mp4", &q, 999),
            Err(PresignError::BadSignature)
        );
        let tampered = q.replace("1000", "9999");
        assert_eq!(
            p.verify_at("GET", "final/j/a.mp4", &tampered, 999),
            Err(PresignError::BadSignature)
        );
        let other = Presigner::new(b"another-secret-xxxx".to_vec());
        assert_eq!(
            other.verify_at("GET", "final/j/a.mp4", &q, 999),
            Err(PresignError::BadSignature)
        );
    }

    #[test]
    fn links_expire_on_the_presigners_clock() {
        let clock = crate::clock::TestClock::new();
        let p =
            Presigner::new(b"secret-secret-secret".to_vec()).with_clock(Arc::new(clock.clone()));
        let q = p.sign_query(
            "PUT",
            "uploads/j/source",
            p.expiry(Duration::from_secs(60)),
            None,
        );
        assert!(p.verify("PUT", "uploads/j/source", &q).is_ok());
        clock.advance(Duration::from_secs(59));
        assert!(p.verify("PUT", "uploads/j/source", &q).is_ok());
        clock.advance(Duration::from_secs(2));
        assert_eq!(
            p.verify("PUT", "uploads/j/source", &q),
            Err(PresignError::Expired)
        );
    }
}
