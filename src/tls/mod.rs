//! HTTPS: where the certificate comes from, and the one acceptor the server uses.
//!
//! - [`files`]: a certificate and key from PEM files, reloaded when they change or on SIGHUP.
//! - [`acme`]: certificates from an ACME CA (Let's Encrypt), obtained and renewed in the
//!   background, validated by TLS-ALPN-01 or HTTP-01.
//! - [`internal`]: a local CA made by the gateway, and a leaf for `GATEWAY_TLS_NAMES` that it
//!   renews before it expires.
//! - [`resolver`]: the certificate in use, swapped atomically; a handshake reads it, a reload
//!   replaces it, and connections already open keep the session they have.
//!
//! - [`redirect`]: the optional plain-HTTP listener that points clients at HTTPS.
//!
//! The server offers HTTP/2 and HTTP/1.1 by ALPN.

pub mod acme;
pub mod files;
pub mod internal;
pub mod redirect;
pub mod resolver;

use std::sync::Arc;
use std::time::Duration;

use clap::ValueEnum;
use rustls::ServerConfig;
use rustls::sign::CertifiedKey;
use rustls_pki_types::{CertificateDer, PrivateKeyDer};
use tokio_rustls::TlsAcceptor;

use crate::config::Config;
use resolver::CurrentCert;

/// `GATEWAY_TLS`: where the certificate comes from.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum TlsMode {
    /// Plain HTTP.
    Off,
    /// `GATEWAY_TLS_CERT` and `GATEWAY_TLS_KEY`.
    Files,
    /// A local CA kept in `GATEWAY_TLS_DIR`.
    Internal,
    /// Certificates from an ACME CA for `GATEWAY_ACME_DOMAINS`.
    Acme,
}

/// What keeps the certificate current while the gateway runs.
#[derive(Debug)]
enum Source {
    Files(files::CertFiles),
    Internal(Box<internal::LocalCa>),
    Acme(Box<acme::AcmeIssuer>),
}

/// HTTPS, ready for the accept loop.
#[derive(Clone)]
pub struct ServerTls {
    /// Wraps each accepted TCP connection.
    pub acceptor: TlsAcceptor,
    current: Arc<CurrentCert>,
    source: Arc<Source>,
}

impl std::fmt::Debug for ServerTls {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ServerTls")
            .field("source", &self.source)
            .finish_non_exhaustive()
    }
}

impl ServerTls {
    /// The TLS setup `config` asks for, or `None` for plain HTTP. Certificate files that cannot
    /// be read, or a CA directory that cannot be written, stop the gateway with a message
    /// naming the setting.
    pub fn from_config(config: &Config) -> Result<Option<Self>, String> {
        let mode = config.tls.unwrap_or(if config.tls_cert.is_some() {
            TlsMode::Files
        } else {
            TlsMode::Off
        });
        let (source, first) = match mode {
            TlsMode::Off => return Ok(None),
            TlsMode::Files => {
                let (Some(cert), Some(key)) = (&config.tls_cert, &config.tls_key) else {
                    return Err(
                        "GATEWAY_TLS=files needs both GATEWAY_TLS_CERT and GATEWAY_TLS_KEY".into(),
                    );
                };
                let names = config.tls_names.clone().unwrap_or_default();
                let files = files::CertFiles::new(cert.clone(), key.clone(), names);
                let first = files.load()?;
                (Source::Files(files), Some(first))
            }
            TlsMode::Internal => {
                let ca = internal::LocalCa::open(
                    &config.tls_dir(),
                    config
                        .tls_names
                        .as_deref()
                        .unwrap_or(&internal::DEFAULT_NAMES.map(str::to_owned)),
                    config.tls_internal_lifetime,
                )?;
                let first = ca.current_leaf()?;
                (Source::Internal(Box::new(ca)), Some(first))
            }
            TlsMode::Acme => {
                let settings = acme::AcmeSettings {
                    domains: config.acme_domains.clone(),
                    email: config.acme_email.clone(),
                    directory: config.acme_directory.clone(),
                    directory_ca: config.acme_ca.clone(),
                    challenge: config.acme_challenge,
                    renew_before: config.acme_renew_before,
                };
                let (issuer, cached) =
                    acme::AcmeIssuer::open(&config.tls_dir().join("acme"), settings)?;
                (Source::Acme(Box::new(issuer)), cached)
            }
        };
        let current = Arc::new(CurrentCert::new(first));
        let mut server = ServerConfig::builder_with_provider(provider())
            .with_safe_default_protocol_versions()
            .map_err(|e| format!("TLS: {e}"))?
            .with_no_client_auth()
            .with_cert_resolver(current.clone());
        server.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
        if mode == TlsMode::Acme {
            server.alpn_protocols.push(resolver::ACME_TLS_ALPN.to_vec());
        }
        Ok(Some(Self {
            acceptor: TlsAcceptor::from(Arc::new(server)),
            current,
            source: Arc::new(source),
        }))
    }

    /// Keep the certificate current for as long as the gateway runs: reload changed files, or
    /// renew the internal leaf before it expires.
    pub async fn maintain(self) {
        match self.source.as_ref() {
            Source::Files(files) => files.watch(&self.current).await,
            Source::Internal(ca) => ca.renew(&self.current).await,
            Source::Acme(issuer) => issuer.maintain(&self.current).await,
        }
    }

    /// The HTTP-01 answers the plain-HTTP listener must give (ACME with HTTP-01 only).
    pub fn http01_tokens(&self) -> Option<acme::Http01Tokens> {
        match self.source.as_ref() {
            Source::Acme(issuer) => Some(issuer.tokens.clone()),
            _ => None,
        }
    }

    /// The leaf certificate served now (DER), if there is one yet.
    pub fn served_leaf(&self) -> Option<Vec<u8>> {
        self.current.leaf_der()
    }
}

/// The crypto provider (ring: no C toolchain beyond the one `cc` already needs, no cmake).
fn provider() -> Arc<rustls::crypto::CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

/// A certificate chain and its private key, ready to serve.
fn certified_key(
    chain: Vec<CertificateDer<'static>>,
    key: &PrivateKeyDer<'static>,
) -> Result<CertifiedKey, String> {
    if chain.is_empty() {
        return Err("no certificate in the file".into());
    }
    let signing = provider()
        .key_provider
        .load_private_key(key.clone_key())
        .map_err(|e| format!("unusable private key: {e}"))?;
    let certified = CertifiedKey::new(chain, signing);
    certified
        .keys_match()
        .map_err(|e| format!("the key does not belong to the certificate: {e}"))?;
    Ok(certified)
}

/// How long a TLS handshake may take before the connection is dropped.
pub fn handshake_timeout(header_timeout: Duration) -> Duration {
    header_timeout.min(Duration::from_secs(10))
}
