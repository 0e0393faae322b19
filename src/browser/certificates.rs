//! The WebTransport listener's short-lived ECDSA P-256 certificates: a
//! browser pins one by its SHA-256 (`serverCertificateHashes`) only if it
//! is valid for at most 14 days, so the listener makes a new one every half
//! validity and publishes the one it presents with the one it will present
//! next, so a page that read the hashes just before a rotation still
//! connects.

use std::sync::{Arc, RwLock};
use std::time::{Duration, SystemTime};

use rcgen::{CertificateParams, KeyPair, PKCS_ECDSA_P256_SHA256};
use rustls::server::{ClientHello, ResolvesServerCert};
use rustls::sign::CertifiedKey;

/// The longest validity a browser accepts for a pinned certificate.
pub const MAX_VALIDITY: Duration = Duration::from_secs(14 * 86_400);
/// The shortest validity configurable: rotation runs at half of it.
pub const MIN_VALIDITY: Duration = Duration::from_secs(2);

/// Why a certificate could not be made.
#[derive(Debug, thiserror::Error)]
pub enum CertificateError {
    #[error("could not make the WebTransport certificate: {0}")]
    Make(#[from] rcgen::Error),
    #[error("could not load the WebTransport certificate's key: {0}")]
    Key(#[from] rustls::Error),
}

/// One certificate, its key and its pin.
#[derive(Debug)]
pub struct Certificate {
    pub certified: Arc<CertifiedKey>,
    /// SHA-256 of the DER certificate, as a page pins it.
    pub hash: [u8; 32],
}

impl Certificate {
    /// A fresh key and a certificate valid from `now` (to the second
    /// before) for `validity` (to the second after), never over
    /// [`MAX_VALIDITY`] in all.
    pub fn new(now: SystemTime, validity: Duration) -> Result<Self, CertificateError> {
        let (not_before, not_after) = validity_window(now, validity);
        let key = KeyPair::generate_for(&PKCS_ECDSA_P256_SHA256)?;
        let mut params = CertificateParams::new(vec!["localhost".to_owned()])?;
        params.not_before = not_before.into();
        params.not_after = not_after.into();
        let der = params.self_signed(&key)?.der().clone();
        let hash = ring::digest::digest(&ring::digest::SHA256, &der);
        let private = rustls::pki_types::PrivateKeyDer::Pkcs8(key.serialize_der().into());
        let signer = rustls::crypto::ring::sign::any_ecdsa_type(&private)?;
        Ok(Self {
            certified: Arc::new(CertifiedKey::new(vec![der], signer)),
            hash: hash.as_ref().try_into().expect("SHA-256 is 32 bytes"),
        })
    }
}

/// Whole seconds around `[now, now + validity]`, at most [`MAX_VALIDITY`]
/// long: X.509 times have no fractions, and rounding inwards would make a
/// certificate expire while it is still presented.
fn validity_window(now: SystemTime, validity: Duration) -> (SystemTime, SystemTime) {
    let since_epoch = now
        .duration_since(SystemTime::UNIX_EPOCH)
        .unwrap_or_default();
    let start = SystemTime::UNIX_EPOCH + Duration::from_secs(since_epoch.as_secs());
    let length = (validity + Duration::from_secs(1)).min(MAX_VALIDITY);
    (start, start + Duration::from_secs(length.as_secs()))
}

/// The certificate presented now and the one presented after the next
/// rotation; the listener's TLS config resolves through this.
#[derive(Debug)]
pub struct Certificates {
    validity: Duration,
    pair: RwLock<Pair>,
}

#[derive(Debug)]
struct Pair {
    current: Arc<Certificate>,
    next: Arc<Certificate>,
}

impl Certificates {
    pub fn new(validity: Duration) -> Result<Self, CertificateError> {
        let now = SystemTime::now();
        Ok(Self {
            validity,
            pair: RwLock::new(Pair {
                current: Arc::new(Certificate::new(now, validity)?),
                next: Arc::new(Certificate::new(now, validity)?),
            }),
        })
    }

    /// How often [`Certificates::rotate`] must run: every certificate is
    /// next for one period and presented for the one after, within its
    /// validity.
    pub fn period(&self) -> Duration {
        self.validity / 2
    }

    /// Presents the next certificate and makes a new next one.
    pub fn rotate(&self) -> Result<(), CertificateError> {
        let fresh = Arc::new(Certificate::new(SystemTime::now(), self.validity)?);
        let mut pair = self.pair.write().expect("no panic while held");
        pair.current = std::mem::replace(&mut pair.next, fresh);
        Ok(())
    }

    pub fn current(&self) -> Arc<Certificate> {
        self.pair
            .read()
            .expect("no panic while held")
            .current
            .clone()
    }

    /// The pins a page should pass: the current certificate's, then the next's.
    pub fn hashes(&self) -> [[u8; 32]; 2] {
        let pair = self.pair.read().expect("no panic while held");
        [pair.current.hash, pair.next.hash]
    }
}

impl ResolvesServerCert for Certificates {
    fn resolve(&self, _: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        Some(self.current().certified.clone())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_window_rounds_outwards_and_never_passes_fourteen_days() {
        let now = SystemTime::UNIX_EPOCH + Duration::from_millis(10_500);
        let (start, end) = validity_window(now, Duration::from_secs(2));
        assert_eq!(start, SystemTime::UNIX_EPOCH + Duration::from_secs(10));
        assert_eq!(end, SystemTime::UNIX_EPOCH + Duration::from_secs(13));
        assert!(end > now + Duration::from_secs(2), "valid to the end");
        let (start, end) = validity_window(now, MAX_VALIDITY);
        assert_eq!(end.duration_since(start).unwrap(), MAX_VALIDITY);
    }

    #[test]
    fn a_rotation_presents_the_published_next_and_publishes_a_new_one() {
        let certificates = Certificates::new(Duration::from_secs(60)).unwrap();
        let [current, next] = certificates.hashes();
        assert_ne!(current, next);
        assert_eq!(certificates.current().hash, current);
        certificates.rotate().unwrap();
        let [now_current, now_next] = certificates.hashes();
        assert_eq!(now_current, next);
        assert!(![current, next].contains(&now_next));
        assert_eq!(certificates.period(), Duration::from_secs(30));
    }
}
