//! `GATEWAY_TLS=acme` against Debian's `pebble` ACME test server (and `pebble-challtestsrv` as
//! its DNS, answering 127.0.0.1 for every name), both started here on free loopback ports in a
//! temp directory and stopped when the test ends. `tests/run.sh` installs them
//! (tests/support/setup.sh); run alone, a test fails saying so.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::Duration;

use fake_ollama::FakeConfig;
use ollama_gateway::config::TlsMode;
use ollama_gateway::tls::acme::AcmeChallenge;
use rcgen::{BasicConstraints, CertificateParams, DnType, IsCa, Issuer, KeyPair};
use rustls_pki_types::CertificateDer;
use rustls_pki_types::pem::PemObject;

use crate::common::*;

const DOMAIN: &str = "gateway.test";

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// A child process killed when dropped.
struct Killed(Child);

impl Drop for Killed {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// pebble and its DNS.
struct Pebble {
    _pebble: Killed,
    _dns: Killed,
    directory: String,
    management: String,
    /// Trust root for pebble's own HTTPS (made here).
    own_ca: PathBuf,
}

fn need(binary: &str) -> PathBuf {
    let found = std::env::var_os("PATH").and_then(|paths| {
        std::env::split_paths(&paths)
            .map(|dir| dir.join(binary))
            .find(|path| path.is_file())
    });
    found.unwrap_or_else(|| {
        panic!("`{binary}` is missing: apt-get install pebble (bash tests/run.sh installs it)")
    })
}

impl Pebble {
    /// Start pebble validating TLS-ALPN-01 on `tls_port` and HTTP-01 on `http_port`.
    fn start(dir: &Path, tls_port: u16, http_port: u16) -> Self {
        let (pebble_bin, dns_bin) = (need("pebble"), need("pebble-challtestsrv"));
        // pebble's own HTTPS certificate, from a CA made here.
        let ca_key = KeyPair::generate().unwrap();
        let mut ca = CertificateParams::default();
        ca.distinguished_name
            .push(DnType::CommonName, "pebble test CA");
        ca.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        let ca_pem = ca.self_signed(&ca_key).unwrap().pem();
        let issuer = Issuer::from_params(&ca, &ca_key);
        let key = KeyPair::generate().unwrap();
        let leaf = CertificateParams::new(vec!["127.0.0.1".to_owned(), "localhost".to_owned()])
            .unwrap()
            .signed_by(&key, &issuer)
            .unwrap();
        std::fs::write(dir.join("pebble-ca.pem"), &ca_pem).unwrap();
        std::fs::write(dir.join("pebble.pem"), leaf.pem()).unwrap();
        std::fs::write(dir.join("pebble-key.pem"), key.serialize_pem()).unwrap();

        let (listen, management, dns) = (free_port(), free_port(), free_port());
        let config = serde_json::json!({"pebble": {
            "listenAddress": format!("127.0.0.1:{listen}"),
            "managementListenAddress": format!("127.0.0.1:{management}"),
            "certificate": dir.join("pebble.pem"),
            "privateKey": dir.join("pebble-key.pem"),
            "httpPort": http_port,
            "tlsPort": tls_port,
            "ocspResponderURL": "",
            "externalAccountBindingRequired": false,
        }});
        std::fs::write(dir.join("pebble.json"), config.to_string()).unwrap();
        let log = |name: &str| std::fs::File::create(dir.join(name)).unwrap();
        let dns_child = Command::new(dns_bin)
            .args(["-dns01", &format!("127.0.0.1:{dns}")])
            .args(["-http01", "", "-https01", "", "-tlsalpn01", ""])
            .args(["-management", &format!("127.0.0.1:{}", free_port())])
            .args(["-defaultIPv4", "127.0.0.1", "-defaultIPv6", ""])
            .stdout(log("dns.log"))
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let pebble_child = Command::new(pebble_bin)
            .arg("-config")
            .arg(dir.join("pebble.json"))
            .args(["-dnsserver", &format!("127.0.0.1:{dns}")])
            // No random nonce rejections or validation sleeps; every order validated afresh.
            .env("PEBBLE_WFE_NONCEREJECT", "0")
            .env("PEBBLE_VA_NOSLEEP", "1")
            .env("PEBBLE_AUTHZREUSE", "0")
            .stdout(log("pebble.log"))
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        Self {
            _pebble: Killed(pebble_child),
            _dns: Killed(dns_child),
            directory: format!("https://127.0.0.1:{listen}/dir"),
            management: format!("https://127.0.0.1:{management}"),
            own_ca: dir.join("pebble-ca.pem"),
        }
    }

    /// A client trusting pebble's own HTTPS.
    fn client(&self) -> reqwest::Client {
        let pem = std::fs::read(&self.own_ca).unwrap();
        reqwest::Client::builder()
            .use_rustls_tls()
            .tls_built_in_root_certs(false)
            .add_root_certificate(reqwest::Certificate::from_pem(&pem).unwrap())
            .build()
            .unwrap()
    }

    /// Wait until the directory answers.
    async fn ready(&self) {
        let mut last = String::new();
        for _ in 0..300 {
            match self.client().get(&self.directory).send().await {
                Ok(answer) if answer.status() == 200 => return,
                Ok(answer) => last = answer.status().to_string(),
                Err(err) => last = format!("{err:?}"),
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        panic!("pebble did not come up at {}: {last}", self.directory);
    }

    /// The root pebble issues from (random for each pebble run).
    async fn issuing_root(&self) -> String {
        let url = format!("{}/roots/0", self.management);
        self.client()
            .get(url)
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap()
    }
}

/// The leaf a handshake with `addr` for DOMAIN presents, trusting `root_pem`; None while the
/// gateway has no certificate yet (the handshake fails).
async fn served_leaf(addr: SocketAddr, root_pem: &str) -> Option<Vec<u8>> {
    let mut roots = rustls::RootCertStore::empty();
    for cert in CertificateDer::pem_slice_iter(root_pem.as_bytes()) {
        roots.add(cert.unwrap()).unwrap();
    }
    let config = rustls::ClientConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .unwrap()
    .with_root_certificates(roots)
    .with_no_client_auth();
    let connector = tokio_rustls::TlsConnector::from(Arc::new(config));
    let tcp = tokio::net::TcpStream::connect(addr).await.ok()?;
    let name = rustls_pki_types::ServerName::try_from(DOMAIN.to_owned()).unwrap();
    let tls = connector.connect(name, tcp).await.ok()?;
    Some(tls.get_ref().1.peer_certificates()?[0].to_vec())
}

/// Wait up to `limit` for a served leaf other than `not`.
async fn wait_for_leaf(
    addr: SocketAddr,
    root: &str,
    not: Option<&[u8]>,
    limit: Duration,
) -> Vec<u8> {
    let deadline = tokio::time::Instant::now() + limit;
    while tokio::time::Instant::now() < deadline {
        if let Some(leaf) = served_leaf(addr, root).await
            && Some(leaf.as_slice()) != not
        {
            return leaf;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    panic!("no (new) certificate from pebble within {limit:?}");
}

fn acme_config(
    c: &mut ollama_gateway::config::Config,
    pebble: &Pebble,
    dir: &Path,
    challenge: AcmeChallenge,
) {
    c.tls = Some(TlsMode::Acme);
    c.acme_domains = vec![DOMAIN.to_owned()];
    c.acme_email = Some("ops@gateway.test".into());
    c.acme_directory = pebble.directory.clone();
    c.acme_ca = Some(pebble.own_ca.clone());
    c.acme_challenge = challenge;
    c.tls_dir = Some(dir.join("tls"));
}

#[tokio::test]
async fn a_certificate_is_obtained_by_tls_alpn_01_served_cached_and_renewed_when_due() {
    let dir_guard = TempDir::new("alpn");
    let dir = dir_guard.path().to_owned();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let pebble = Pebble::start(&dir, port, free_port());
    pebble.ready().await;
    let env = Env::on(listener, FakeConfig::default(), |c| {
        acme_config(c, &pebble, &dir, AcmeChallenge::TlsAlpn01);
    })
    .await;
    let root = pebble.issuing_root().await;
    let first = wait_for_leaf(env.addr, &root, None, Duration::from_secs(60)).await;

    // Served to a real client by name, with the gateway's API behind it.
    let client = reqwest::Client::builder()
        .use_rustls_tls()
        .tls_built_in_root_certs(false)
        .add_root_certificate(reqwest::Certificate::from_pem(root.as_bytes()).unwrap())
        .resolve(DOMAIN, env.addr)
        .build()
        .unwrap();
    let answer = client
        .get(format!("https://{DOMAIN}:{port}/v1/models"))
        .bearer_auth(KEY)
        .send()
        .await
        .unwrap();
    assert_eq!(answer.status(), 200);
    assert!(dir.join("tls/acme/cert.pem").exists() && dir.join("tls/acme/account.json").exists());

    // Cached: a gateway started on the same directory serves that certificate at once,
    // without asking pebble (its renewal is not due).
    let again = Env::with(|c| acme_config(c, &pebble, &dir, AcmeChallenge::TlsAlpn01)).await;
    assert_eq!(
        served_leaf(again.addr, &root).await.as_deref(),
        Some(first.as_slice())
    );
    drop(again);

    // Renewed when due: with a renewal window longer than pebble's certificates live, the
    // certificate just obtained is due at once, and a new one replaces it.
    let dir2_guard = TempDir::new("renew");
    let dir2 = dir2_guard.path().to_owned();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port2 = listener.local_addr().unwrap().port();
    let pebble2 = Pebble::start(&dir2, port2, free_port());
    pebble2.ready().await;
    let renewing = Env::on(listener, FakeConfig::default(), |c| {
        acme_config(c, &pebble2, &dir2, AcmeChallenge::TlsAlpn01);
        c.acme_renew_before = Duration::from_secs(100 * 365 * 86400);
    })
    .await;
    let root2 = pebble2.issuing_root().await;
    let one = wait_for_leaf(renewing.addr, &root2, None, Duration::from_secs(60)).await;
    let two = wait_for_leaf(renewing.addr, &root2, Some(&one), Duration::from_secs(60)).await;
    assert_ne!(one, two);
}

#[tokio::test]
async fn a_certificate_is_obtained_by_http_01_on_the_plain_http_listener() {
    let dir_guard = TempDir::new("http01");
    let dir = dir_guard.path().to_owned();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let http = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let http_port = http.local_addr().unwrap().port();
    let pebble = Pebble::start(&dir, port, http_port);
    pebble.ready().await;
    let env = Env::on(listener, FakeConfig::default(), |c| {
        acme_config(c, &pebble, &dir, AcmeChallenge::Http01);
    })
    .await;
    // What `ollama_gateway::tls::redirect::start` does in the binary, on our own listener.
    let tokens = env.state.tls.as_ref().and_then(|t| t.http01_tokens());
    assert!(tokens.is_some());
    tokio::spawn(ollama_gateway::tls::redirect::serve(http, port, tokens));
    let root = pebble.issuing_root().await;
    wait_for_leaf(env.addr, &root, None, Duration::from_secs(60)).await;
}
