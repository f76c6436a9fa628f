//! `GATEWAY_TLS=internal`: HTTPS for a homelab without a public name.
//!
//! On first start the gateway makes a CA (ECDSA P-256, ten years) in `GATEWAY_TLS_DIR` and
//! logs its path and SHA-256 fingerprint: trust that one file on the clients (`curl --cacert`,
//! `SSL_CERT_FILE`, the OS store). It then issues a leaf for `GATEWAY_TLS_NAMES` (host names and
//! IP addresses) valid for `GATEWAY_TLS_INTERNAL_LIFETIME`, and issues a new one when a third of
//! that is left, or when the names change. The CA key never leaves the directory (mode 0600);
//! later starts reuse the CA, so clients keep trusting the gateway.

use std::fs;
use std::path::{Path, PathBuf};
use std::time::Duration;

use rcgen::{
    BasicConstraints, CertificateParams, DistinguishedName, DnType, ExtendedKeyUsagePurpose, IsCa,
    Issuer, KeyPair, KeyUsagePurpose,
};
use rustls::sign::CertifiedKey;
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use time::OffsetDateTime;

use super::certified_key;
use super::resolver::CurrentCert;

const CA_CERT: &str = "ca.pem";
const CA_KEY: &str = "ca-key.pem";
const LEAF_CERT: &str = "cert.pem";
const LEAF_KEY: &str = "key.pem";
const LEAF_META: &str = "leaf.json";
const CA_LIFETIME: time::Duration = time::Duration::days(3650);
const CA_NAME: &str = "ollama-gateway local CA";

/// What the gateway remembers about the leaf it issued.
#[derive(Debug, PartialEq, Eq, Serialize, Deserialize)]
struct LeafMeta {
    names: Vec<String>,
    /// Unix seconds.
    not_after: i64,
}

/// The local CA and its directory.
pub struct LocalCa {
    dir: PathBuf,
    names: Vec<String>,
    lifetime: Duration,
    key: KeyPair,
}

impl std::fmt::Debug for LocalCa {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Never the key.
        f.debug_struct("LocalCa")
            .field("dir", &self.dir)
            .field("names", &self.names)
            .finish_non_exhaustive()
    }
}

/// What the leaf is for when `GATEWAY_TLS_NAMES` is unset: this machine, by name and address.
pub const DEFAULT_NAMES: [&str; 3] = ["localhost", "127.0.0.1", "::1"];

impl LocalCa {
    /// Open the CA in `dir`, making it (and the directory) on first use.
    pub fn open(dir: &Path, names: &[String], lifetime: Duration) -> Result<Self, String> {
        let names: Vec<String> = names
            .iter()
            .map(|n| n.trim().to_owned())
            .filter(|n| !n.is_empty())
            .collect();
        if names.is_empty() {
            return Err("GATEWAY_TLS_NAMES: give at least one host name or IP address".into());
        }
        if lifetime < Duration::from_secs(3) {
            return Err("GATEWAY_TLS_INTERNAL_LIFETIME: at least 3 s".into());
        }
        let fail = |what: &str, e: &dyn std::fmt::Display| {
            format!("GATEWAY_TLS_DIR ({}): {what}: {e}", dir.display())
        };
        create_private_dir(dir).map_err(|e| fail("cannot create it", &e))?;
        let (ca_cert, ca_key) = (dir.join(CA_CERT), dir.join(CA_KEY));
        let key = if ca_key.exists() {
            let pem =
                fs::read_to_string(&ca_key).map_err(|e| fail("cannot read the CA key", &e))?;
            KeyPair::from_pem(&pem).map_err(|e| fail("the CA key is unusable", &e))?
        } else {
            let key = KeyPair::generate().map_err(|e| fail("cannot make a CA key", &e))?;
            let now = OffsetDateTime::now_utc();
            let mut params = ca_params();
            params.not_before = now - time::Duration::hours(1);
            params.not_after = now + CA_LIFETIME;
            let cert = params
                .self_signed(&key)
                .map_err(|e| fail("cannot make the CA certificate", &e))?;
            write_private(&ca_key, key.serialize_pem().as_bytes())
                .map_err(|e| fail("cannot write the CA key", &e))?;
            fs::write(&ca_cert, cert.pem()).map_err(|e| fail("cannot write the CA", &e))?;
            key
        };
        let der =
            CertificateDer::from_pem_file(&ca_cert).map_err(|e| fail("cannot read the CA", &e))?;
        tracing::info!(
            ca = %ca_cert.display(),
            sha256 = %fingerprint(der.as_ref()),
            names = ?names,
            "TLS with the gateway's local CA: trust this CA file on the clients"
        );
        Ok(Self {
            dir: dir.to_owned(),
            names,
            lifetime,
            key,
        })
    }

    /// The leaf to serve: the stored one while it is good, else a new one.
    pub fn current_leaf(&self) -> Result<CertifiedKey, String> {
        match self.stored_meta() {
            Some(meta) if !self.due(&meta) => self.load_leaf(),
            _ => self.issue(),
        }
    }

    /// Issue new leaves before the old ones run out, for as long as the gateway runs.
    pub async fn renew(&self, current: &CurrentCert) {
        let check_every =
            (self.lifetime / 12).clamp(Duration::from_millis(250), Duration::from_secs(3600));
        loop {
            tokio::time::sleep(check_every).await;
            if self.stored_meta().is_some_and(|meta| !self.due(&meta)) {
                continue;
            }
            match self.issue() {
                Ok(leaf) => {
                    current.replace(leaf);
                    tracing::info!(names = ?self.names, "TLS: renewed the local certificate");
                }
                Err(err) => tracing::warn!("TLS: could not renew the local certificate: {err}"),
            }
        }
    }

    /// Whether the leaf described by `meta` should be replaced: other names, or a third of its
    /// lifetime or less left.
    fn due(&self, meta: &LeafMeta) -> bool {
        let left = meta.not_after - OffsetDateTime::now_utc().unix_timestamp();
        let third = i64::try_from(self.lifetime.as_secs() / 3)
            .unwrap_or(i64::MAX)
            .max(1);
        meta.names != self.names || left <= third
    }

    fn stored_meta(&self) -> Option<LeafMeta> {
        let text = fs::read(self.dir.join(LEAF_META)).ok()?;
        serde_json::from_slice(&text).ok()
    }

    fn load_leaf(&self) -> Result<CertifiedKey, String> {
        let fail =
            |e: &dyn std::fmt::Display| format!("GATEWAY_TLS_DIR ({}): {e}", self.dir.display());
        let chain = CertificateDer::pem_file_iter(self.dir.join(LEAF_CERT))
            .and_then(|certs| certs.collect::<Result<Vec<_>, _>>())
            .map_err(|e| fail(&e))?;
        let key = PrivateKeyDer::from_pem_file(self.dir.join(LEAF_KEY)).map_err(|e| fail(&e))?;
        certified_key(chain, &key).map_err(|e| fail(&e))
    }

    /// Make and store a new leaf signed by the CA.
    fn issue(&self) -> Result<CertifiedKey, String> {
        let fail = |what: &str, e: &dyn std::fmt::Display| {
            format!("GATEWAY_TLS_DIR ({}): {what}: {e}", self.dir.display())
        };
        let issuer = Issuer::new(ca_params(), &self.key);
        let key = KeyPair::generate().map_err(|e| fail("cannot make a key", &e))?;
        let mut params = CertificateParams::new(self.names.clone())
            .map_err(|e| fail("GATEWAY_TLS_NAMES is not a list of names and addresses", &e))?;
        let now = OffsetDateTime::now_utc();
        let lifetime = time::Duration::try_from(self.lifetime).map_err(|e| fail("lifetime", &e))?;
        params.not_before = now - time::Duration::minutes(5);
        params.not_after = now + lifetime;
        params.distinguished_name = DistinguishedName::new();
        params
            .distinguished_name
            .push(DnType::CommonName, self.names[0].clone());
        params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
        params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
        params.use_authority_key_identifier_extension = true;
        let cert = params
            .signed_by(&key, &issuer)
            .map_err(|e| fail("cannot sign the certificate", &e))?;
        write_private(&self.dir.join(LEAF_KEY), key.serialize_pem().as_bytes())
            .map_err(|e| fail("cannot write the key", &e))?;
        fs::write(self.dir.join(LEAF_CERT), cert.pem())
            .map_err(|e| fail("cannot write the certificate", &e))?;
        let meta = LeafMeta {
            names: self.names.clone(),
            not_after: params.not_after.unix_timestamp(),
        };
        let meta = serde_json::to_vec(&meta).map_err(|e| fail("metadata", &e))?;
        fs::write(self.dir.join(LEAF_META), meta)
            .map_err(|e| fail("cannot write leaf.json", &e))?;
        let key_der = PrivateKeyDer::try_from(key.serialize_der()).map_err(|e| fail("key", &e))?;
        certified_key(vec![cert.der().clone()], &key_der)
            .map_err(|e| fail("the new certificate", &e))
    }
}

/// The CA's fixed parameters. A leaf is signed with an issuer built from these and the stored
/// key: the same name and key as the CA certificate on disk, so clients' trust carries over.
fn ca_params() -> CertificateParams {
    let mut params = CertificateParams::default();
    params.distinguished_name = DistinguishedName::new();
    params.distinguished_name.push(DnType::CommonName, CA_NAME);
    params
        .distinguished_name
        .push(DnType::OrganizationName, "ollama-gateway");
    params.is_ca = IsCa::Ca(BasicConstraints::Constrained(0));
    params.key_usages = vec![
        KeyUsagePurpose::KeyCertSign,
        KeyUsagePurpose::CrlSign,
        KeyUsagePurpose::DigitalSignature,
    ];
    params
}

/// `AB:CD:...`, the form browsers and `openssl x509 -fingerprint -sha256` show.
pub fn fingerprint(der: &[u8]) -> String {
    Sha256::digest(der)
        .iter()
        .map(|b| format!("{b:02X}"))
        .collect::<Vec<_>>()
        .join(":")
}

fn create_private_dir(dir: &Path) -> std::io::Result<()> {
    fs::create_dir_all(dir)?;
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        fs::set_permissions(dir, fs::Permissions::from_mode(0o700))?;
    }
    Ok(())
}

/// Write a secret file readable only by its owner.
pub(super) fn write_private(path: &Path, contents: &[u8]) -> std::io::Result<()> {
    use std::io::Write;
    let mut options = fs::OpenOptions::new();
    options.write(true).create(true).truncate(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    options.open(path)?.write_all(contents)
}
