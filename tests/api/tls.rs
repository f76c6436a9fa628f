//! HTTPS: certificate files (with reload), the internal CA, HTTP/2 by ALPN.

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use fake_ollama::FakeConfig;
use futures::StreamExt;
use ollama_gateway::config::TlsMode;
use rcgen::{BasicConstraints, CertificateParams, DnType, IsCa, Issuer, KeyPair};
use rustls_pki_types::CertificateDer;
use rustls_pki_types::pem::PemObject;
use serde_json::json;

use crate::common::*;

/// A test CA that issues leaves for 127.0.0.1 and localhost into files.
struct TestCa {
    key: KeyPair,
    params: CertificateParams,
    pem: String,
}

impl TestCa {
    fn new() -> Self {
        let key = KeyPair::generate().unwrap();
        let mut params = CertificateParams::default();
        params
            .distinguished_name
            .push(DnType::CommonName, "test CA");
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        let pem = params.self_signed(&key).unwrap().pem();
        Self { key, params, pem }
    }

    /// Write a new leaf to `dir/cert.pem` + `dir/key.pem`; return its DER.
    fn issue_into(&self, dir: &Path) -> Vec<u8> {
        let issuer = Issuer::from_params(&self.params, &self.key);
        let key = KeyPair::generate().unwrap();
        let params =
            CertificateParams::new(vec!["127.0.0.1".to_owned(), "localhost".to_owned()]).unwrap();
        let cert = params.signed_by(&key, &issuer).unwrap();
        // Key first, then the certificate: a reload sees a matching pair once both are there.
        std::fs::write(dir.join("key.pem.new"), key.serialize_pem()).unwrap();
        std::fs::write(dir.join("cert.pem.new"), cert.pem()).unwrap();
        std::fs::rename(dir.join("key.pem.new"), dir.join("key.pem")).unwrap();
        std::fs::rename(dir.join("cert.pem.new"), dir.join("cert.pem")).unwrap();
        cert.der().to_vec()
    }
}

/// A reqwest client that trusts only `ca_pem`.
fn client_trusting(ca_pem: &str, http1_only: bool) -> reqwest::Client {
    let mut builder = reqwest::Client::builder()
        .use_rustls_tls()
        .tls_built_in_root_certs(false)
        .add_root_certificate(reqwest::Certificate::from_pem(ca_pem.as_bytes()).unwrap())
        .timeout(Duration::from_secs(30));
    if http1_only {
        builder = builder.http1_only();
    }
    builder.build().unwrap()
}

/// The leaf certificate a TLS handshake with `addr` (as `name`) presents, trusting `ca_pem`.
async fn served_leaf(addr: std::net::SocketAddr, name: &str, ca_pem: &str) -> Vec<u8> {
    let mut roots = rustls::RootCertStore::empty();
    roots
        .add(CertificateDer::from_pem_slice(ca_pem.as_bytes()).unwrap())
        .unwrap();
    let config = rustls::ClientConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .unwrap()
    .with_root_certificates(roots)
    .with_no_client_auth();
    let connector = tokio_rustls::TlsConnector::from(Arc::new(config));
    let tcp = tokio::net::TcpStream::connect(addr).await.unwrap();
    let server_name = rustls_pki_types::ServerName::try_from(name.to_owned()).unwrap();
    let tls = connector.connect(server_name, tcp).await.unwrap();
    tls.get_ref().1.peer_certificates().unwrap()[0].to_vec()
}

#[tokio::test]
async fn https_from_files_serves_http2_and_http1() {
    let dir_guard = TempDir::new("files");
    let dir = dir_guard.path().to_owned();
    let ca = TestCa::new();
    ca.issue_into(&dir);
    let env = Env::with(|c| {
        c.tls_cert = Some(dir.join("cert.pem"));
        c.tls_key = Some(dir.join("key.pem"));
    })
    .await;
    let url = format!("https://127.0.0.1:{}", env.addr.port());

    let h2 = client_trusting(&ca.pem, false);
    let answer = h2
        .get(format!("{url}/v1/models"))
        .bearer_auth(KEY)
        .send()
        .await
        .unwrap();
    assert_eq!(answer.version(), http::Version::HTTP_2);
    assert_eq!(answer.status(), 200);
    // A stream over HTTP/2: every event, then [DONE].
    let mut body = chat("llama3.2");
    body["stream"] = json!(true);
    let stream = h2
        .post(format!("{url}/v1/chat/completions"))
        .bearer_auth(KEY)
        .json(&body)
        .send()
        .await
        .unwrap();
    assert_eq!(stream.version(), http::Version::HTTP_2);
    let events = sse_data(stream).await;
    assert_eq!(events.last().map(String::as_str), Some("[DONE]"));
    assert!(events.len() > 3, "{events:?}");

    let h1 = client_trusting(&ca.pem, true);
    let answer = h1.get(format!("{url}/health")).send().await.unwrap();
    assert_eq!(answer.version(), http::Version::HTTP_11);
    assert_eq!(answer.status(), 200);

    // The gate holds over HTTPS as over HTTP.
    let refused = h2.get(format!("{url}/v1/models")).send().await.unwrap();
    assert_eq!(refused.status(), 401);

    // A client that does not trust the CA is refused at the handshake; a plain-HTTP request
    // gets no answer; the server keeps serving.
    let untrusting = reqwest::Client::builder().use_rustls_tls().build().unwrap();
    assert!(
        untrusting
            .get(format!("{url}/health"))
            .send()
            .await
            .is_err()
    );
    assert!(env.client.get(env.url("/health")).send().await.is_err());
    let answer = h1.get(format!("{url}/health")).send().await.unwrap();
    assert_eq!(answer.status(), 200);
}

/// `curl --cacert ca args...`: its standard output, which ends with the `-w` line.
async fn curl(ca: &Path, args: &[&str]) -> String {
    let out = tokio::process::Command::new("curl")
        .args(["-sS", "--no-buffer", "--cacert"])
        .arg(ca)
        .args(args)
        .output()
        .await
        .expect("curl runs (tests/support/setup.sh installs it)");
    assert!(out.status.success(), "curl {args:?}: {out:?}");
    String::from_utf8(out.stdout).unwrap()
}

#[tokio::test]
async fn curl_trusting_the_ca_file_is_answered_over_https_from_files() {
    let dir_guard = TempDir::new("files-curl");
    let dir = dir_guard.path().to_owned();
    let ca = TestCa::new();
    ca.issue_into(&dir);
    let ca_file = dir.join("ca.pem");
    std::fs::write(&ca_file, &ca.pem).unwrap();
    let env = Env::with(|c| {
        c.tls_cert = Some(dir.join("cert.pem"));
        c.tls_key = Some(dir.join("key.pem"));
    })
    .await;
    let auth = format!("Authorization: Bearer {KEY}");
    let written = "\n%{http_version} %{http_code}";
    for host in ["localhost", "127.0.0.1"] {
        let url = format!("https://{host}:{}", env.addr.port());
        let out = curl(
            &ca_file,
            &["-H", &auth, "-w", written, &format!("{url}/v1/models")],
        )
        .await;
        let (body, status) = out.rsplit_once('\n').unwrap();
        assert_eq!(status, "2 200", "HTTP/2 by ALPN, {host}: {out}");
        let list: serde_json::Value = serde_json::from_str(body).unwrap();
        assert!(!list["data"].as_array().unwrap().is_empty(), "{list}");
    }
    // A stream, over HTTP/1.1 too: every event, then [DONE].
    let mut body = chat("llama3.2");
    body["stream"] = json!(true);
    let url = format!("https://localhost:{}/v1/chat/completions", env.addr.port());
    let body = body.to_string();
    let out = curl(
        &ca_file,
        &[
            "--http1.1",
            "-H",
            &auth,
            "-H",
            "content-type: application/json",
            "-d",
            &body,
            "-w",
            written,
            &url,
        ],
    )
    .await;
    let (events, status) = out.rsplit_once('\n').unwrap();
    assert_eq!(status, "1.1 200", "{out}");
    assert!(events.trim_end().ends_with("data: [DONE]"), "{events}");
    assert!(events.matches("data: ").count() > 3, "{events}");
    // Without the CA, curl refuses the certificate.
    let refused = tokio::process::Command::new("curl")
        .args([
            "-sS",
            &format!("https://localhost:{}/health", env.addr.port()),
        ])
        .output()
        .await
        .unwrap();
    assert_eq!(
        refused.status.code(),
        Some(60),
        "curl's 'peer certificate' failure: {refused:?}"
    );
}

#[tokio::test]
async fn changed_files_are_served_to_new_connections_while_open_streams_go_on() {
    let dir_guard = TempDir::new("reload");
    let dir = dir_guard.path().to_owned();
    let ca = TestCa::new();
    let first = ca.issue_into(&dir);
    let slow = FakeConfig {
        chunk_gap: Duration::from_millis(300),
        ..Default::default()
    };
    let env = Env::with_fake(slow, |c| {
        c.tls_cert = Some(dir.join("cert.pem"));
        c.tls_key = Some(dir.join("key.pem"));
    })
    .await;
    let url = format!("https://127.0.0.1:{}", env.addr.port());
    assert_eq!(served_leaf(env.addr, "127.0.0.1", &ca.pem).await, first);

    // A stream that takes about two seconds, open across the reload.
    let client = client_trusting(&ca.pem, true);
    let mut body = chat("llama3.2");
    body["stream"] = json!(true);
    let stream = client
        .post(format!("{url}/v1/chat/completions"))
        .bearer_auth(KEY)
        .json(&body)
        .send()
        .await
        .unwrap();
    let mut chunks = stream.bytes_stream();
    let opening = chunks.next().await.unwrap().unwrap();
    assert!(opening.starts_with(b"data: "));

    let second = ca.issue_into(&dir);
    assert_ne!(first, second);
    let mut served = Vec::new();
    for _ in 0..40 {
        served = served_leaf(env.addr, "localhost", &ca.pem).await;
        if served == second {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(served, second, "the new certificate is served within 4 s");

    let mut rest = opening.to_vec();
    while let Some(chunk) = chunks.next().await {
        rest.extend_from_slice(&chunk.unwrap());
    }
    let text = String::from_utf8(rest).unwrap();
    assert!(
        text.ends_with("data: [DONE]\n\n"),
        "the open stream ended normally: {text}"
    );

    // A broken file is not loaded: the good certificate stays in use.
    std::fs::write(dir.join("cert.pem"), "not a certificate").unwrap();
    tokio::time::sleep(Duration::from_millis(1500)).await;
    assert_eq!(served_leaf(env.addr, "127.0.0.1", &ca.pem).await, second);
}

#[tokio::test]
async fn the_internal_ca_serves_its_names_renews_and_survives_a_restart() {
    let dir_guard = TempDir::new("internal");
    let dir = dir_guard.path().to_owned();
    let configure = |c: &mut ollama_gateway::config::Config| {
        c.tls = Some(TlsMode::Internal);
        c.tls_dir = Some(dir.join("tls"));
        c.tls_names = Some(vec!["localhost".into(), "127.0.0.1".into()]);
        c.tls_internal_lifetime = Duration::from_secs(6);
    };
    let env = Env::with(configure).await;
    let ca_pem = std::fs::read_to_string(dir.join("tls/ca.pem")).unwrap();
    let port = env.addr.port();
    for host in ["localhost", "127.0.0.1"] {
        let client = client_trusting(&ca_pem, false);
        let answer = client
            .get(format!("https://{host}:{port}/v1/models"))
            .bearer_auth(KEY)
            .send()
            .await
            .unwrap();
        assert_eq!(answer.status(), 200, "{host}");
    }
    // A name that is not in GATEWAY_TLS_NAMES is not covered.
    let client = client_trusting(&ca_pem, true);
    let other = client
        .get(format!("https://127.0.0.2:{port}/health"))
        .send()
        .await;
    assert!(other.is_err(), "127.0.0.2 is not one of the names");

    // With a 6 s lifetime the leaf is renewed when 2 s are left: within about 5 s.
    let first = served_leaf(env.addr, "localhost", &ca_pem).await;
    let mut renewed = first.clone();
    for _ in 0..80 {
        tokio::time::sleep(Duration::from_millis(100)).await;
        renewed = served_leaf(env.addr, "localhost", &ca_pem).await;
        if renewed != first {
            break;
        }
    }
    assert_ne!(renewed, first, "the leaf was renewed");

    // A second gateway on the same directory keeps the CA: clients go on trusting it.
    let again = Env::with(configure).await;
    assert_eq!(
        std::fs::read_to_string(dir.join("tls/ca.pem")).unwrap(),
        ca_pem
    );
    let client = client_trusting(&ca_pem, false);
    let answer = client
        .get(format!("https://localhost:{}/health", again.addr.port()))
        .send()
        .await
        .unwrap();
    assert_eq!(answer.status(), 200);
}

#[tokio::test]
async fn unusable_tls_settings_stop_the_gateway_naming_the_setting() {
    let dir_guard = TempDir::new("bad");
    let dir = dir_guard.path().to_owned();
    let mut config = ollama_gateway::config::Config::defaults();
    config.api_keys = vec![ollama_gateway::config::Secret::new(KEY)];
    config.db = temp_db();
    config.tls_cert = Some(dir.join("missing.pem"));
    config.tls_key = Some(dir.join("missing-key.pem"));
    let err = ollama_gateway::build(config.clone()).await.unwrap_err();
    assert!(err.contains("GATEWAY_TLS_CERT"), "{err}");

    let ca = TestCa::new();
    ca.issue_into(&dir);
    let other_guard = TempDir::new("bad-other");
    let other = other_guard.path().to_owned();
    TestCa::new().issue_into(&other);
    config.tls_cert = Some(dir.join("cert.pem"));
    config.tls_key = Some(other.join("key.pem"));
    let err = ollama_gateway::build(config.clone()).await.unwrap_err();
    assert!(err.contains("does not belong"), "{err}");

    // A certificate for localhost and 127.0.0.1, asked to serve other names too.
    config.tls_key = Some(dir.join("key.pem"));
    config.tls_names = Some(vec![
        "localhost".into(),
        "gpu-box.lan".into(),
        "192.0.2.7".into(),
    ]);
    let err = ollama_gateway::build(config.clone()).await.unwrap_err();
    assert!(err.starts_with("GATEWAY_TLS_CERT ("), "{err}");
    assert!(
        err.contains("does not cover gpu-box.lan, 192.0.2.7 of GATEWAY_TLS_NAMES"),
        "{err}"
    );
    config.tls_names = Some(vec!["LOCALHOST".into(), "127.0.0.1".into()]);
    ollama_gateway::build(config.clone()).await.unwrap();
    config.tls_names = None;

    config.tls = Some(TlsMode::Files);
    config.tls_cert = None;
    let err = ollama_gateway::build(config).await.unwrap_err();
    assert!(err.contains("GATEWAY_TLS_KEY"), "{err}");
}

#[tokio::test]
async fn plain_http_beside_https_redirects_to_the_same_url() {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(ollama_gateway::tls::redirect::serve(listener, 8443, None));
    let client = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let answer = client
        .post(format!("http://{addr}/v1/chat/completions?x=1"))
        .bearer_auth(KEY)
        .json(&chat("llama3.2"))
        .send()
        .await
        .unwrap();
    assert_eq!(answer.status(), 308);
    assert_eq!(
        answer.headers()["location"],
        "https://127.0.0.1:8443/v1/chat/completions?x=1"
    );
    assert!(answer.text().await.unwrap().contains("HTTPS"));
}
