//! The certificate in use: one atomic pointer, read by every handshake, replaced by a reload or
//! a renewal. Beside it, the TLS-ALPN-01 challenge certificates an ACME server asks for while a
//! certificate is being obtained (RFC 8737), answered only to handshakes offering `acme-tls/1`.

use std::collections::HashMap;
use std::fmt;
use std::sync::{Arc, Mutex};

use arc_swap::ArcSwapOption;
use rustls::server::{ClientHello, ResolvesServerCert};
use rustls::sign::CertifiedKey;

/// The ALPN protocol of TLS-ALPN-01 validation.
pub const ACME_TLS_ALPN: &[u8] = b"acme-tls/1";

/// The certificate new handshakes get (none yet while ACME obtains the first one).
#[derive(Default)]
pub struct CurrentCert {
    served: ArcSwapOption<CertifiedKey>,
    /// Domain -> challenge certificate, only while a validation is under way.
    challenges: Mutex<HashMap<String, Arc<CertifiedKey>>>,
}

impl CurrentCert {
    /// Start with `first`, or with nothing to serve.
    pub fn new(first: Option<CertifiedKey>) -> Self {
        Self {
            served: ArcSwapOption::from(first.map(Arc::new)),
            challenges: Mutex::default(),
        }
    }

    /// Serve `next` from the next handshake on; open connections are not touched.
    pub fn replace(&self, next: CertifiedKey) {
        self.served.store(Some(Arc::new(next)));
    }

    /// The leaf certificate served now (DER).
    pub fn leaf_der(&self) -> Option<Vec<u8>> {
        let served = self.served.load();
        served
            .as_ref()
            .and_then(|c| c.cert.first())
            .map(|c| c.as_ref().to_vec())
    }

    /// Answer TLS-ALPN-01 validation for `domain` with `cert` (or stop, with `None`).
    pub fn set_challenge(&self, domain: &str, cert: Option<CertifiedKey>) {
        let mut challenges = self.challenges.lock().unwrap_or_else(|e| e.into_inner());
        match cert {
            Some(cert) => challenges.insert(domain.to_ascii_lowercase(), Arc::new(cert)),
            None => challenges.remove(&domain.to_ascii_lowercase()),
        };
    }
}

impl fmt::Debug for CurrentCert {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("CurrentCert")
    }
}

impl ResolvesServerCert for CurrentCert {
    fn resolve(&self, hello: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        let validating = hello
            .alpn()
            .is_some_and(|mut protocols| protocols.any(|p| p == ACME_TLS_ALPN));
        if validating {
            let domain = hello.server_name()?.to_ascii_lowercase();
            let challenges = self.challenges.lock().unwrap_or_else(|e| e.into_inner());
            return challenges.get(&domain).cloned();
        }
        self.served.load_full()
    }
}
