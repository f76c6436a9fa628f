//! A certificate and key from PEM files (`GATEWAY_TLS_CERT`, `GATEWAY_TLS_KEY`), reloaded when
//! either file changes (checked every second: certbot, cert-manager and `cp` all replace files
//! in ways an inotify watch can miss) or at once on SIGHUP. A file that cannot be read or does
//! not match its key is logged and the certificate in use is kept, so a half-written renewal
//! never takes the gateway down.

use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

use rustls::sign::CertifiedKey;
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer};

use super::certified_key;
use super::resolver::CurrentCert;

/// How often the files are looked at.
const POLL: Duration = Duration::from_secs(1);

/// The two files.
#[derive(Debug)]
pub struct CertFiles {
    cert: PathBuf,
    key: PathBuf,
}

/// What identifies one version of a file without reading it.
type Stamp = Option<(SystemTime, u64)>;

fn stamp(path: &Path) -> Stamp {
    let meta = std::fs::metadata(path).ok()?;
    Some((meta.modified().ok()?, meta.len()))
}

impl CertFiles {
    /// The certificate chain at `cert` (leaf first) and its key at `key`.
    pub fn new(cert: PathBuf, key: PathBuf) -> Self {
        Self { cert, key }
    }

    /// Read and check both files.
    pub fn load(&self) -> Result<CertifiedKey, String> {
        let chain = CertificateDer::pem_file_iter(&self.cert)
            .and_then(|certs| certs.collect::<Result<Vec<_>, _>>())
            .map_err(|e| format!("GATEWAY_TLS_CERT: cannot read {}: {e}", self.cert.display()))?;
        let key = PrivateKeyDer::from_pem_file(&self.key)
            .map_err(|e| format!("GATEWAY_TLS_KEY: cannot read {}: {e}", self.key.display()))?;
        certified_key(chain, &key).map_err(|e| {
            format!(
                "GATEWAY_TLS_CERT/GATEWAY_TLS_KEY ({}, {}): {e}",
                self.cert.display(),
                self.key.display()
            )
        })
    }

    /// Reload whenever the files change or SIGHUP arrives, for as long as the gateway runs.
    pub async fn watch(&self, current: &CurrentCert) {
        let mut seen = (stamp(&self.cert), stamp(&self.key));
        let mut hangup = hangup_signal();
        loop {
            let forced = tokio::select! {
                () = tokio::time::sleep(POLL) => false,
                () = next_hangup(&mut hangup) => true,
            };
            let now = (stamp(&self.cert), stamp(&self.key));
            if now == seen && !forced {
                continue;
            }
            match self.load() {
                Ok(next) => {
                    current.replace(next);
                    seen = now;
                    tracing::info!(cert = %self.cert.display(), "TLS certificate reloaded");
                }
                // Keep `seen` as it was: the next tick tries again (a copy may be half done).
                Err(err) => {
                    tracing::warn!("TLS certificate not reloaded, keeping the current one: {err}")
                }
            }
        }
    }
}

#[cfg(unix)]
fn hangup_signal() -> Option<tokio::signal::unix::Signal> {
    tokio::signal::unix::signal(tokio::signal::unix::SignalKind::hangup()).ok()
}

#[cfg(unix)]
async fn next_hangup(signal: &mut Option<tokio::signal::unix::Signal>) {
    match signal {
        Some(signal) => {
            signal.recv().await;
        }
        None => std::future::pending().await,
    }
}

#[cfg(not(unix))]
fn hangup_signal() -> Option<()> {
    None
}

#[cfg(not(unix))]
async fn next_hangup(_: &mut Option<()>) {
    std::future::pending().await
}
