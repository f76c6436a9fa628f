//! The certificate in use: one atomic pointer, read by every handshake, replaced by a reload.

use std::fmt;
use std::sync::Arc;

use arc_swap::ArcSwap;
use rustls::server::{ClientHello, ResolvesServerCert};
use rustls::sign::CertifiedKey;

/// The certificate new handshakes get.
pub struct CurrentCert(ArcSwap<CertifiedKey>);

impl CurrentCert {
    /// Start with `first`.
    pub fn new(first: CertifiedKey) -> Self {
        Self(ArcSwap::from_pointee(first))
    }

    /// Serve `next` from the next handshake on; open connections are not touched.
    pub fn replace(&self, next: CertifiedKey) {
        self.0.store(Arc::new(next));
    }

    /// The leaf certificate served now (DER).
    pub fn leaf_der(&self) -> Option<Vec<u8>> {
        self.0.load().cert.first().map(|c| c.as_ref().to_vec())
    }
}

impl fmt::Debug for CurrentCert {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("CurrentCert")
    }
}

impl ResolvesServerCert for CurrentCert {
    fn resolve(&self, _hello: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        Some(self.0.load_full())
    }
}
