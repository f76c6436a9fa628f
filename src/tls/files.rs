//! A certificate and key from PEM files (`GATEWAY_TLS_CERT`, `GATEWAY_TLS_KEY`), reloaded when
//! either file changes (checked every second: certbot, cert-manager and `cp` all replace files
//! in ways an inotify watch can miss) or at once on SIGHUP. A file that cannot be read or does
//! not match its key is logged and the certificate in use is kept, so a half-written renewal
//! never takes the gateway down. With `GATEWAY_TLS_NAMES` set, the certificate must cover each
//! of those names (a wildcard `*.example.org` covers one label), at start and at each reload.

use std::net::IpAddr;
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
    /// Names the certificate must cover (none: not checked).
    names: Vec<String>,
}

/// What identifies one version of a file without reading it.
type Stamp = Option<(SystemTime, u64)>;

fn stamp(path: &Path) -> Stamp {
    let meta = std::fs::metadata(path).ok()?;
    Some((meta.modified().ok()?, meta.len()))
}

impl CertFiles {
    /// The certificate chain at `cert` (leaf first) and its key at `key`, for `names`.
    pub fn new(cert: PathBuf, key: PathBuf, names: Vec<String>) -> Self {
        let names = names
            .iter()
            .map(|n| n.trim().to_owned())
            .filter(|n| !n.is_empty())
            .collect();
        Self { cert, key, names }
    }

    /// Read and check both files.
    pub fn load(&self) -> Result<CertifiedKey, String> {
        let chain = CertificateDer::pem_file_iter(&self.cert)
            .and_then(|certs| certs.collect::<Result<Vec<_>, _>>())
            .map_err(|e| format!("GATEWAY_TLS_CERT: cannot read {}: {e}", self.cert.display()))?;
        let key = PrivateKeyDer::from_pem_file(&self.key)
            .map_err(|e| format!("GATEWAY_TLS_KEY: cannot read {}: {e}", self.key.display()))?;
        let missing = match chain.first() {
            Some(leaf) => uncovered(leaf, &self.names).map_err(|e| {
                format!(
                    "GATEWAY_TLS_CERT: {}: cannot read the certificate: {e}",
                    self.cert.display()
                )
            })?,
            None => Vec::new(),
        };
        if !missing.is_empty() {
            return Err(format!(
                "GATEWAY_TLS_CERT ({}) does not cover {} of GATEWAY_TLS_NAMES",
                self.cert.display(),
                missing.join(", ")
            ));
        }
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

/// The ones of `names` that the leaf's subject alternative names do not cover.
fn uncovered(leaf: &CertificateDer<'_>, names: &[String]) -> Result<Vec<String>, String> {
    use x509_parser::extensions::GeneralName;
    if names.is_empty() {
        return Ok(Vec::new());
    }
    let (_, parsed) =
        x509_parser::parse_x509_certificate(leaf.as_ref()).map_err(|e| e.to_string())?;
    let mut dns = Vec::new();
    let mut ips = Vec::new();
    if let Some(san) = parsed
        .subject_alternative_name()
        .map_err(|e| e.to_string())?
    {
        for name in &san.value.general_names {
            match name {
                GeneralName::DNSName(name) => dns.push(name.to_ascii_lowercase()),
                GeneralName::IPAddress(bytes) => {
                    if let Ok(v4) = <[u8; 4]>::try_from(*bytes) {
                        ips.push(IpAddr::from(v4));
                    } else if let Ok(v6) = <[u8; 16]>::try_from(*bytes) {
                        ips.push(IpAddr::from(v6));
                    }
                }
                _ => {}
            }
        }
    }
    Ok(names
        .iter()
        .filter(|name| !covers(&dns, &ips, name))
        .cloned()
        .collect())
}

/// Whether `name` (a host name or an IP address) is one of `ips`, or matches one of `dns`
/// exactly or by a wildcard for its first label.
fn covers(dns: &[String], ips: &[IpAddr], name: &str) -> bool {
    if let Ok(ip) = name.trim_matches(['[', ']']).parse::<IpAddr>() {
        return ips.contains(&ip);
    }
    let name = name.trim_end_matches('.').to_ascii_lowercase();
    dns.iter().any(|pattern| {
        *pattern == name
            || pattern.strip_prefix("*.").is_some_and(|suffix| {
                name.split_once('.')
                    .is_some_and(|(first, rest)| !first.is_empty() && rest == suffix)
            })
    })
}

#[cfg(test)]
mod names_tests {
    use super::*;

    #[test]
    fn names_are_covered_exactly_by_wildcard_or_by_address() {
        let params = rcgen::CertificateParams::new(vec![
            "Localhost".to_owned(),
            "*.lan.example".to_owned(),
            "127.0.0.1".to_owned(),
            "::1".to_owned(),
        ])
        .unwrap_or_else(|e| panic!("{e}"));
        let key = rcgen::KeyPair::generate().unwrap_or_else(|e| panic!("{e}"));
        let cert = params.self_signed(&key).unwrap_or_else(|e| panic!("{e}"));
        let names: Vec<String> = [
            "localhost",
            "LOCALHOST.",
            "gpu.lan.example",
            "127.0.0.1",
            "[::1]",
            "a.b.lan.example",
            "lan.example",
            "127.0.0.2",
            "other.org",
        ]
        .map(str::to_owned)
        .to_vec();
        let missing = uncovered(cert.der(), &names).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(
            missing,
            ["a.b.lan.example", "lan.example", "127.0.0.2", "other.org"]
        );
        assert!(uncovered(cert.der(), &[]).unwrap_or_default().is_empty());
    }
}
