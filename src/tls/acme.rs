//! `GATEWAY_TLS=acme`: certificates from an ACME CA (Let's Encrypt by default), obtained and
//! renewed in the background, like Caddy does.
//!
//! - The account and the certificate are cached in `GATEWAY_TLS_DIR/acme/`; a restart serves
//!   the cached certificate at once and renews only when it is due.
//! - Validation by TLS-ALPN-01 (default: on the HTTPS port itself, nothing else to open) or
//!   HTTP-01 (answered by the `GATEWAY_HTTP_LISTEN` listener, which also redirects to HTTPS).
//! - A certificate is renewed when less than `GATEWAY_ACME_RENEW_BEFORE` of it is left; a
//!   failed attempt is logged and retried with a growing pause (1 min up to 1 h). The old
//!   certificate keeps being served meanwhile.
//! - Until the first certificate arrives there is nothing to serve: handshakes fail, and the log
//!   says a certificate is being obtained.

use std::collections::HashMap;
use std::fs;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use instant_acme::{
    Account, AccountCredentials, AuthorizationStatus, ChallengeType, Identifier, NewAccount,
    NewOrder, OrderStatus, RetryPolicy,
};
use rcgen::{CertificateParams, CustomExtension, DistinguishedName, KeyPair};
use rustls::sign::CertifiedKey;
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer};

use super::certified_key;
use super::internal::write_private;
use super::resolver::CurrentCert;

/// Let's Encrypt's production directory.
pub const LETS_ENCRYPT: &str = "https://acme-v02.api.letsencrypt.org/directory";

const ACCOUNT: &str = "account.json";
const CERT: &str = "cert.pem";
const KEY: &str = "key.pem";

/// Which challenge proves control of the domains.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum AcmeChallenge {
    /// On the HTTPS port (ALPN `acme-tls/1`).
    #[value(name = "tls-alpn-01")]
    TlsAlpn01,
    /// `http://DOMAIN/.well-known/acme-challenge/TOKEN` on `GATEWAY_HTTP_LISTEN`.
    #[value(name = "http-01")]
    Http01,
}

/// HTTP-01 tokens and their key authorizations, shared with the plain-HTTP listener.
pub type Http01Tokens = Arc<Mutex<HashMap<String, String>>>;

/// The settings of one ACME setup.
#[derive(Debug, Clone)]
pub struct AcmeSettings {
    /// Domain names on the certificate.
    pub domains: Vec<String>,
    /// Contact address given to the CA.
    pub email: Option<String>,
    /// The ACME directory URL.
    pub directory: String,
    /// A PEM file trusted for the directory's own HTTPS (private CAs, tests).
    pub directory_ca: Option<PathBuf>,
    /// TLS-ALPN-01 or HTTP-01.
    pub challenge: AcmeChallenge,
    /// Renew when less than this is left.
    pub renew_before: Duration,
}

/// Obtains and renews the certificate.
#[derive(Debug)]
pub struct AcmeIssuer {
    settings: AcmeSettings,
    dir: PathBuf,
    /// Answers for HTTP-01 validation.
    pub tokens: Http01Tokens,
}

impl AcmeIssuer {
    /// An issuer caching in `dir`; the cached certificate, if any and for the same domains.
    pub fn open(
        dir: &Path,
        settings: AcmeSettings,
    ) -> Result<(Self, Option<CertifiedKey>), String> {
        if settings.domains.is_empty() {
            return Err("GATEWAY_ACME_DOMAINS: give at least one domain name".into());
        }
        fs::create_dir_all(dir)
            .map_err(|e| format!("GATEWAY_TLS_DIR ({}): cannot create it: {e}", dir.display()))?;
        let issuer = Self {
            settings,
            dir: dir.to_owned(),
            tokens: Http01Tokens::default(),
        };
        let cached = issuer.cached().ok().map(|(cert, _)| cert);
        if cached.is_none() {
            tracing::info!(domains = ?issuer.settings.domains, directory = %issuer.settings.directory,
                "TLS: no certificate yet, obtaining one by ACME; HTTPS answers once it is there");
        }
        Ok((issuer, cached))
    }

    /// Obtain at start when needed, then renew whenever due, for as long as the gateway runs.
    pub async fn maintain(&self, current: &CurrentCert) {
        let mut pause = Duration::from_secs(60);
        loop {
            let wait = match self.cached() {
                Ok((_, not_after)) => self.until_due(not_after),
                Err(_) => Duration::ZERO,
            };
            if !wait.is_zero() {
                tokio::time::sleep(wait.min(Duration::from_secs(3600))).await;
                continue;
            }
            match self.obtain(current).await {
                Ok(cert) => {
                    current.replace(cert);
                    pause = Duration::from_secs(60);
                    tracing::info!(domains = ?self.settings.domains, "TLS: certificate obtained by ACME");
                }
                Err(err) => {
                    tracing::warn!(retry_in_s = pause.as_secs(), "TLS: ACME failed: {err}");
                    tokio::time::sleep(pause).await;
                    pause = (pause * 2).min(Duration::from_secs(3600));
                }
            }
        }
    }

    /// How long until the certificate ending at `not_after` (unix seconds) is due.
    fn until_due(&self, not_after: i64) -> Duration {
        let renew_at = not_after.saturating_sub(
            i64::try_from(self.settings.renew_before.as_secs()).unwrap_or(i64::MAX),
        );
        let now = time::OffsetDateTime::now_utc().unix_timestamp();
        Duration::from_secs(u64::try_from(renew_at.saturating_sub(now)).unwrap_or(0))
    }

    /// The cached certificate and its expiry, if it is there and for our domains.
    fn cached(&self) -> Result<(CertifiedKey, i64), String> {
        let chain = CertificateDer::pem_file_iter(self.dir.join(CERT))
            .and_then(|certs| certs.collect::<Result<Vec<_>, _>>())
            .map_err(|e| e.to_string())?;
        let key = PrivateKeyDer::from_pem_file(self.dir.join(KEY)).map_err(|e| e.to_string())?;
        let leaf = chain.first().ok_or("empty chain")?;
        let (_, parsed) =
            x509_parser::parse_x509_certificate(leaf.as_ref()).map_err(|e| e.to_string())?;
        let names: Vec<String> = parsed
            .subject_alternative_name()
            .ok()
            .flatten()
            .map(|san| {
                san.value
                    .general_names
                    .iter()
                    .filter_map(|name| match name {
                        x509_parser::extensions::GeneralName::DNSName(dns) => {
                            Some(dns.to_ascii_lowercase())
                        }
                        _ => None,
                    })
                    .collect()
            })
            .unwrap_or_default();
        if !self
            .settings
            .domains
            .iter()
            .all(|d| names.contains(&d.to_ascii_lowercase()))
        {
            return Err("the cached certificate is for other domains".into());
        }
        let not_after = parsed.validity().not_after.timestamp();
        Ok((certified_key(chain, &key)?, not_after))
    }

    /// One full ACME order: account, challenges, CSR, certificate; cached on success.
    async fn obtain(&self, current: &CurrentCert) -> Result<CertifiedKey, String> {
        let account = self.account().await?;
        let identifiers: Vec<Identifier> = self
            .settings
            .domains
            .iter()
            .map(|d| Identifier::Dns(d.clone()))
            .collect();
        let mut order = account
            .new_order(&NewOrder::new(&identifiers))
            .await
            .map_err(|e| format!("new order: {e}"))?;
        let challenge_type = match self.settings.challenge {
            AcmeChallenge::TlsAlpn01 => ChallengeType::TlsAlpn01,
            AcmeChallenge::Http01 => ChallengeType::Http01,
        };
        let mut answered = Vec::new();
        let mut authorizations = order.authorizations();
        while let Some(authz) = authorizations.next().await {
            let mut authz = authz.map_err(|e| format!("authorization: {e}"))?;
            if authz.status == AuthorizationStatus::Valid {
                continue;
            }
            let mut challenge = authz
                .challenge(challenge_type.clone())
                .ok_or_else(|| format!("the CA offers no {challenge_type:?} challenge"))?;
            let domain = challenge.identifier().to_string();
            let key_auth = challenge.key_authorization();
            match self.settings.challenge {
                AcmeChallenge::TlsAlpn01 => {
                    current.set_challenge(
                        &domain,
                        Some(alpn_challenge_cert(&domain, key_auth.digest().as_ref())?),
                    );
                }
                AcmeChallenge::Http01 => {
                    self.lock_tokens()
                        .insert(challenge.token.clone(), key_auth.as_str().to_owned());
                }
            }
            answered.push((domain, challenge.token.clone()));
            challenge
                .set_ready()
                .await
                .map_err(|e| format!("challenge ready: {e}"))?;
        }
        let retries = RetryPolicy::new().timeout(Duration::from_secs(120));
        let status = order.poll_ready(&retries).await;
        for (domain, token) in &answered {
            current.set_challenge(domain, None);
            self.lock_tokens().remove(token);
        }
        let status = status.map_err(|e| format!("validation: {e}"))?;
        if status != OrderStatus::Ready {
            return Err(format!("the order is {status:?}, not ready"));
        }
        let key = KeyPair::generate().map_err(|e| e.to_string())?;
        let mut params =
            CertificateParams::new(self.settings.domains.clone()).map_err(|e| e.to_string())?;
        params.distinguished_name = DistinguishedName::new();
        let csr = params.serialize_request(&key).map_err(|e| e.to_string())?;
        order
            .finalize_csr(csr.der())
            .await
            .map_err(|e| format!("finalize: {e}"))?;
        let chain = order
            .poll_certificate(&retries)
            .await
            .map_err(|e| format!("certificate: {e}"))?;
        write_private(&self.dir.join(KEY), key.serialize_pem().as_bytes())
            .map_err(|e| format!("cache: {e}"))?;
        fs::write(self.dir.join(CERT), &chain).map_err(|e| format!("cache: {e}"))?;
        self.cached().map(|(cert, _)| cert)
    }

    fn lock_tokens(&self) -> std::sync::MutexGuard<'_, HashMap<String, String>> {
        self.tokens.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The cached account, or a new one (then cached).
    async fn account(&self) -> Result<Account, String> {
        let builder = || match &self.settings.directory_ca {
            Some(ca) => Account::builder_with_root(ca)
                .map_err(|e| format!("GATEWAY_ACME_CA ({}): {e}", ca.display())),
            None => Account::builder().map_err(|e| e.to_string()),
        };
        let path = self.dir.join(ACCOUNT);
        let cached = fs::read(&path)
            .ok()
            .and_then(|text| serde_json::from_slice::<AccountCredentials>(&text).ok());
        if let Some(credentials) = cached {
            return builder()?
                .from_credentials(credentials)
                .await
                .map_err(|e| format!("account: {e}"));
        }
        let contact = self.settings.email.as_ref().map(|e| format!("mailto:{e}"));
        let contact: Vec<&str> = contact.iter().map(String::as_str).collect();
        let (account, credentials) = builder()?
            .create(
                &NewAccount {
                    contact: &contact,
                    terms_of_service_agreed: true,
                    only_return_existing: false,
                },
                self.settings.directory.clone(),
                None,
            )
            .await
            .map_err(|e| format!("new account at {}: {e}", self.settings.directory))?;
        let text = serde_json::to_vec(&credentials).map_err(|e| e.to_string())?;
        write_private(&path, &text).map_err(|e| format!("cache the account: {e}"))?;
        Ok(account)
    }
}

/// The self-signed certificate that answers TLS-ALPN-01 for `domain` (RFC 8737 §3).
fn alpn_challenge_cert(domain: &str, digest: &[u8]) -> Result<CertifiedKey, String> {
    let key = KeyPair::generate().map_err(|e| e.to_string())?;
    let mut params = CertificateParams::new(vec![domain.to_owned()]).map_err(|e| e.to_string())?;
    params.custom_extensions = vec![CustomExtension::new_acme_identifier(digest)];
    let cert = params.self_signed(&key).map_err(|e| e.to_string())?;
    let key_der = PrivateKeyDer::try_from(key.serialize_der()).map_err(|e| e.to_string())?;
    // Not `certified_key`: its check parses the certificate with webpki, which refuses the
    // critical acmeIdentifier extension that this certificate exists to carry.
    let signing = super::provider()
        .key_provider
        .load_private_key(key_der)
        .map_err(|e| e.to_string())?;
    Ok(CertifiedKey::new(vec![cert.der().clone()], signing))
}
