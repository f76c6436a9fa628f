//! Every setting of the gateway: its flag, its environment variable, its default, its meaning.
//!
//! The doc comment of each field is its `--help` text. Values are checked here, at start-up, so a
//! bad setting stops the process with a message naming the setting instead of failing later.

use std::fmt;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use clap::{Parser, ValueEnum};

pub use crate::tls::TlsMode;

/// An authenticating, validating, OpenAI-compatible gateway in front of a local Ollama server.
#[derive(Clone, Debug, Parser)]
#[command(name = "ollama-gateway", version, about)]
pub struct Config {
    /// Address to listen on.
    #[arg(long, env = "GATEWAY_LISTEN", default_value = "127.0.0.1:8080")]
    pub listen: SocketAddr,

    /// Ollama's base URL, or several separated by commas (one backend each, see README
    /// "Several backends"; `[[backends]]` in GATEWAY_CONFIG names them and sets their limits).
    #[arg(long, env = "OLLAMA_URL", default_value = "http://127.0.0.1:11434", value_parser = parse_base_urls)]
    pub ollama_url: String,

    /// Bound on a non-streamed answer, and on time-to-first-byte and each gap of a stream.
    /// Seconds, or a number with a unit: `300`, `90s`, `5m`.
    #[arg(long, env = "GATEWAY_UPSTREAM_TIMEOUT", default_value = "300", value_parser = parse_duration)]
    pub upstream_timeout: Duration,

    /// Comma-separated API keys accepted as `Authorization: Bearer <key>`.
    #[arg(
        long,
        env = "GATEWAY_API_KEYS",
        value_delimiter = ',',
        hide_env_values = true
    )]
    pub api_keys: Vec<Secret>,

    /// One more API key (the variable the common FastAPI proxy used).
    #[arg(long, env = "OLLAMA_API_KEY", hide_env_values = true)]
    pub ollama_api_key: Option<Secret>,

    /// TOML file with named keys and per-key settings (see README).
    #[arg(long, env = "GATEWAY_CONFIG")]
    pub config_file: Option<PathBuf>,

    /// `on` requires a key on every protected route; `off` disables authentication entirely.
    #[arg(long, env = "GATEWAY_AUTH", value_enum, default_value = "on")]
    pub auth: AuthMode,

    /// Comma-separated model patterns with `*` wildcards; empty allows every model.
    /// `llama3.2` also matches `llama3.2:latest`.
    #[arg(long, env = "GATEWAY_ALLOWED_MODELS", value_delimiter = ',')]
    pub allowed_models: Vec<String>,

    /// Enable Ollama's administrative endpoints (pull, push, delete, copy, create, blobs)
    /// for keys marked `admin = true`.
    #[arg(long, env = "GATEWAY_ALLOW_ADMIN", default_value_t = false, action = clap::ArgAction::Set)]
    pub allow_admin: bool,

    /// Largest accepted request body, in bytes or with a unit (`32MiB`, `512KiB`).
    #[arg(long, env = "GATEWAY_MAX_BODY", default_value = "32MiB", value_parser = parse_size)]
    pub max_body: usize,

    /// Requests per minute allowed per key (0 = unlimited).
    #[arg(long, env = "GATEWAY_RATE_LIMIT", default_value_t = 600)]
    pub rate_limit: u32,

    /// Burst size per key: requests allowed at once before the per-minute rate applies.
    #[arg(long, env = "GATEWAY_RATE_BURST", default_value_t = 60)]
    pub rate_burst: u32,

    /// Requests per minute allowed for all keys together (0 = unlimited).
    #[arg(long, env = "GATEWAY_GLOBAL_RATE_LIMIT", default_value_t = 0)]
    pub global_rate_limit: u32,

    /// Concurrent requests (including open streams) allowed per key (0 = unlimited).
    #[arg(long, env = "GATEWAY_MAX_CONCURRENT", default_value_t = 32)]
    pub max_concurrent: u32,

    /// Comma-separated origins allowed by CORS (`*` for any); empty disables CORS headers.
    #[arg(long, env = "GATEWAY_CORS_ORIGINS", value_delimiter = ',')]
    pub cors_origins: Vec<String>,

    /// Log format.
    #[arg(long, env = "GATEWAY_LOG_FORMAT", value_enum, default_value = "text")]
    pub log_format: LogFormat,

    /// How long in-flight requests and streams may run on after SIGTERM/SIGINT.
    #[arg(long, env = "GATEWAY_SHUTDOWN_GRACE", default_value = "30s", value_parser = parse_duration)]
    pub shutdown_grace: Duration,

    /// How long a client may take to send a request's headers before the connection is closed.
    #[arg(long, env = "GATEWAY_HEADER_TIMEOUT", default_value = "30s", value_parser = parse_duration)]
    pub header_timeout: Duration,

    /// How long a client may take to send a request's body, counted from its headers. A body
    /// still arriving after that may go on only while its average rate since then stays at or
    /// above 1 MiB/s (a large upload on a fast link finishes; a trickle does not). Then 408.
    /// 0 sets no bound.
    #[arg(long, env = "GATEWAY_BODY_TIMEOUT", default_value = "30s", value_parser = parse_duration)]
    pub body_timeout: Duration,

    /// Runtime worker threads (0 = one per CPU). On a small machine shared with Ollama, fewer
    /// threads spend less CPU waking each other.
    #[arg(long, env = "GATEWAY_WORKER_THREADS", default_value_t = 0)]
    pub worker_threads: usize,

    /// Serve `/metrics` without a key.
    #[arg(long, env = "GATEWAY_METRICS_OPEN", default_value_t = false, action = clap::ArgAction::Set)]
    pub metrics_open: bool,

    /// HTTPS: `off`, `files` (GATEWAY_TLS_CERT and GATEWAY_TLS_KEY) or `internal` (a local CA
    /// made by the gateway in GATEWAY_TLS_DIR). Unset: `files` when GATEWAY_TLS_CERT is set,
    /// else `off`.
    #[arg(long, env = "GATEWAY_TLS", value_enum)]
    pub tls: Option<TlsMode>,

    /// PEM certificate chain (leaf first) for HTTPS; reloaded when it changes or on SIGHUP.
    #[arg(long, env = "GATEWAY_TLS_CERT")]
    pub tls_cert: Option<PathBuf>,

    /// PEM private key of GATEWAY_TLS_CERT.
    #[arg(long, env = "GATEWAY_TLS_KEY")]
    pub tls_key: Option<PathBuf>,

    /// Host names and IP addresses of the certificate (comma-separated): the ones `internal`
    /// issues for (default `localhost,127.0.0.1,::1`), and with `files` the ones
    /// GATEWAY_TLS_CERT must cover (checked at start and at each reload; unset: not checked).
    #[arg(long, env = "GATEWAY_TLS_NAMES", value_delimiter = ',')]
    pub tls_names: Option<Vec<String>>,

    /// Where `GATEWAY_TLS=internal` keeps its CA and certificate and `acme` its account and
    /// certificates. Unset: `ollama-gateway-tls` beside the SQLite database of GATEWAY_DB.
    #[arg(long, env = "GATEWAY_TLS_DIR")]
    pub tls_dir: Option<PathBuf>,

    /// How long an internal leaf certificate is valid; a new one is issued when a third is left.
    #[arg(long, env = "GATEWAY_TLS_INTERNAL_LIFETIME", default_value = "30d", value_parser = parse_duration)]
    pub tls_internal_lifetime: Duration,

    /// `GATEWAY_TLS=acme`: the domain names of the certificate (comma-separated).
    #[arg(long, env = "GATEWAY_ACME_DOMAINS", value_delimiter = ',')]
    pub acme_domains: Vec<String>,

    /// `GATEWAY_TLS=acme`: contact address given to the CA (expiry warnings).
    #[arg(long, env = "GATEWAY_ACME_EMAIL")]
    pub acme_email: Option<String>,

    /// `GATEWAY_TLS=acme`: the ACME directory URL.
    #[arg(long, env = "GATEWAY_ACME_DIRECTORY", default_value = crate::tls::acme::LETS_ENCRYPT)]
    pub acme_directory: String,

    /// `GATEWAY_TLS=acme`: a PEM file trusted for the ACME directory's own HTTPS (private ACME
    /// servers, tests).
    #[arg(long, env = "GATEWAY_ACME_CA")]
    pub acme_ca: Option<PathBuf>,

    /// `GATEWAY_TLS=acme`: `tls-alpn-01` (on the HTTPS port) or `http-01` (on
    /// GATEWAY_HTTP_LISTEN, default 0.0.0.0:80).
    #[arg(
        long,
        env = "GATEWAY_ACME_CHALLENGE",
        value_enum,
        default_value = "tls-alpn-01"
    )]
    pub acme_challenge: crate::tls::acme::AcmeChallenge,

    /// `GATEWAY_TLS=acme`: renew when less than this is left of the certificate.
    #[arg(long, env = "GATEWAY_ACME_RENEW_BEFORE", default_value = "30d", value_parser = parse_duration)]
    pub acme_renew_before: Duration,

    /// With HTTPS on: also listen for plain HTTP here and redirect every request to HTTPS
    /// (e.g. `0.0.0.0:80`). Unset: no plain-HTTP listener.
    #[arg(long, env = "GATEWAY_HTTP_LISTEN")]
    pub http_listen: Option<SocketAddr>,

    /// Peers (CIDRs or addresses, comma-separated) whose `X-Forwarded-For`, `Forwarded` and
    /// `CF-Connecting-IP` are believed; from any other peer the socket's address is the client's.
    #[arg(long, env = "GATEWAY_TRUSTED_PROXIES", value_delimiter = ',', value_parser = parse_net)]
    pub trusted_proxies: Vec<ipnet::IpNet>,

    /// Only these client addresses (CIDRs, comma-separated) are served; others get 403 before
    /// authentication. Empty: every address not denied.
    #[arg(long, env = "GATEWAY_ALLOW_IPS", value_delimiter = ',', value_parser = parse_net)]
    pub allow_ips: Vec<ipnet::IpNet>,

    /// Client addresses (CIDRs, comma-separated) refused with 403 before authentication; wins
    /// over GATEWAY_ALLOW_IPS.
    #[arg(long, env = "GATEWAY_DENY_IPS", value_delimiter = ',', value_parser = parse_net)]
    pub deny_ips: Vec<ipnet::IpNet>,

    /// Failed authentications a client address may make in a minute; then it gets 429 for a
    /// minute on every route that needs a key (0 = no limit).
    #[arg(long, env = "GATEWAY_AUTH_FAILURES", default_value_t = 10)]
    pub auth_failures: u32,

    /// Open connections per peer address; more are closed at once (0 = no cap).
    #[arg(long, env = "GATEWAY_MAX_CONN_PER_IP", default_value_t = 0)]
    pub max_conn_per_ip: u32,
    /// The database of managed keys, users and usage: `sqlite://PATH` (created if missing).
    #[arg(
        long = "db",
        env = "GATEWAY_DB",
        default_value = "sqlite://ollama-gateway.db",
        global = true
    )]
    pub db: String,

    /// Write one usage record per finished request (`false` turns recording off; quotas still
    /// count in memory).
    #[arg(long, env = "GATEWAY_USAGE_RECORDING", default_value_t = true, action = clap::ArgAction::Set)]
    pub usage_recording: bool,

    /// Usage records waiting to be written at most; more are dropped (and counted) rather than
    /// slow a request down.
    #[arg(long, env = "GATEWAY_USAGE_QUEUE", default_value_t = 10_000)]
    pub usage_queue: usize,

    /// How long usage records are kept (`90d`, `12h`); hourly totals are kept beyond it.
    #[arg(long, env = "GATEWAY_USAGE_RETENTION", default_value = "90d", value_parser = parse_duration)]
    pub usage_retention: Duration,

    /// How long a request may wait for a free slot when every backend that has its model is at
    /// its `max_concurrent`; then 429 with Retry-After.
    #[arg(long, env = "GATEWAY_QUEUE_TIMEOUT", default_value = "30s", value_parser = parse_duration)]
    pub queue_timeout: Duration,

    /// Requests that may wait for a backend slot at once, all keys together; more get 429 at
    /// once.
    #[arg(long, env = "GATEWAY_QUEUE_LIMIT", default_value_t = 1000)]
    pub queue_limit: usize,

    /// How long `POST /v1/responses` answers made with `store: true` (OpenAI's default) are kept
    /// for `GET`/`DELETE /v1/responses/{id}` and `previous_response_id` (`30d`, `12h`); `0`
    /// stores nothing.
    #[arg(long, env = "GATEWAY_RESPONSES_TTL", default_value = "30d", value_parser = parse_duration)]
    pub responses_ttl: Duration,

    /// An htpasswd-style file of `user:bcrypt-hash` lines (`htpasswd -nB user`,
    /// `caddy hash-password`): `Authorization: Basic` with such a user is accepted where a key
    /// is. Read again within a second when it changes.
    #[arg(long, env = "GATEWAY_BASIC_USERS")]
    pub basic_users: Option<PathBuf>,

    /// How long an admin console session lasts after login (`8h`, `30m`); logout ends it
    /// sooner, and so does disabling, revoking or demoting the key it was opened with.
    #[arg(long, env = "GATEWAY_CONSOLE_SESSION", default_value = "8h", value_parser = parse_duration)]
    pub console_session: Duration,

    /// Redis for the rate limits shared by several replicas (`redis://[:password@]host:6379[/db]`);
    /// unset keeps every limit in this process.
    #[arg(long, env = "GATEWAY_REDIS_URL", hide_env_values = true)]
    pub redis_url: Option<Secret>,

    /// While Redis is unreachable: `closed` refuses limited requests with 503
    /// `limits_unavailable`, `open` limits them in this process only.
    #[arg(
        long,
        env = "GATEWAY_REDIS_FAILURE",
        value_enum,
        default_value = "closed"
    )]
    pub redis_failure: RedisFailure,

    /// Longest wait for one Redis call on the request path (`250ms`); past it Redis counts as
    /// unreachable.
    #[arg(long, env = "GATEWAY_REDIS_TIMEOUT", default_value = "250ms", value_parser = parse_duration)]
    pub redis_timeout: Duration,

    /// What to do (default: serve).
    #[command(subcommand)]
    pub command: Option<Command>,
}

/// Subcommands.
#[derive(Clone, Debug, clap::Subcommand)]
pub enum Command {
    /// Ask the gateway at GATEWAY_LISTEN for `/health`; exit 0 if it answers 200 (for container
    /// health checks, which then need no curl in the image).
    Healthcheck,
    /// Manage stored API keys (in GATEWAY_DB; a running gateway sees changes within a second).
    #[command(subcommand)]
    Keys(crate::admin::cli::KeysCommand),
    /// Manage users (the owners of keys).
    #[command(subcommand)]
    Users(crate::admin::cli::UsersCommand),
    /// Show usage totals.
    Usage(crate::admin::cli::UsageArgs),
}

impl Config {
    /// Defaults for everything, as if no flag or variable were set (used by tests).
    pub fn defaults() -> Self {
        Self::parse_from(["ollama-gateway"])
    }

    /// `GATEWAY_TLS_DIR`, or `ollama-gateway-tls` in the folder of the SQLite database: the
    /// volume that keeps the database keeps the CA (clients that trust it go on trusting it).
    pub fn tls_dir(&self) -> PathBuf {
        const NAME: &str = "ollama-gateway-tls";
        if let Some(dir) = &self.tls_dir {
            return dir.clone();
        }
        let file = self
            .db
            .strip_prefix("sqlite://")
            .or_else(|| self.db.strip_prefix("sqlite:"))
            .and_then(|rest| rest.split('?').next());
        match file
            .map(std::path::Path::new)
            .and_then(std::path::Path::parent)
        {
            Some(folder) => folder.join(NAME),
            None => PathBuf::from(NAME),
        }
    }
}

/// Whether authentication is enforced.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum AuthMode {
    On,
    Off,
}

/// What the gateway does while Redis (`GATEWAY_REDIS_URL`) is unreachable.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum RedisFailure {
    /// Limit in this process only (each replica on its own) until Redis is back.
    Open,
    /// Refuse requests that a shared limit applies to with 503 until Redis is back.
    Closed,
}

/// How log lines are written.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum LogFormat {
    Text,
    Json,
}

/// A secret string that never prints.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    /// Wrap a secret.
    pub fn new(value: impl Into<String>) -> Self {
        Self(value.into())
    }

    /// The secret itself; call only where it is compared or hashed.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret(***)")
    }
}

impl std::str::FromStr for Secret {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Ok(Self(s.trim().to_owned()))
    }
}

/// `300`, `300s`, `5m`, `1h`, `250ms` → a duration.
pub fn parse_duration(value: &str) -> Result<Duration, String> {
    let value = value.trim();
    let split = value
        .find(|c: char| !c.is_ascii_digit() && c != '.')
        .unwrap_or(value.len());
    let (number, unit) = value.split_at(split);
    let number: f64 = number
        .parse()
        .map_err(|_| format!("'{value}' is not a duration (use e.g. 300, 90s, 5m)"))?;
    let seconds: f64 = match unit.trim() {
        "" | "s" => number,
        "ms" => number / 1000.0,
        "m" => number * 60.0,
        "h" => number * 3600.0,
        "d" => number * 86400.0,
        other => {
            return Err(format!(
                "unknown duration unit '{other}' (use ms, s, m, h or d)"
            ));
        }
    };
    Duration::try_from_secs_f64(seconds).map_err(|_| format!("'{value}' is not a valid duration"))
}

/// `1048576`, `512KiB`, `32MiB`, `1GiB` (also KB/MB/GB, read as binary units) → bytes.
pub fn parse_size(value: &str) -> Result<usize, String> {
    let value = value.trim();
    let split = value
        .find(|c: char| !c.is_ascii_digit())
        .unwrap_or(value.len());
    let (number, unit) = value.split_at(split);
    let number: usize = number
        .parse()
        .map_err(|_| format!("'{value}' is not a size (use e.g. 1048576 or 32MiB)"))?;
    let factor: usize = match unit.trim().to_ascii_lowercase().as_str() {
        "" | "b" => 1,
        "k" | "kb" | "kib" => 1 << 10,
        "m" | "mb" | "mib" => 1 << 20,
        "g" | "gb" | "gib" => 1 << 30,
        other => return Err(format!("unknown size unit '{other}' (use KiB, MiB or GiB)")),
    };
    number
        .checked_mul(factor)
        .filter(|n| *n > 0)
        .ok_or_else(|| format!("'{value}' is not a usable size"))
}

/// `10.0.0.0/8`, `2001:db8::/32`, or one address (`192.0.2.7`, a /32 or /128).
pub fn parse_net(value: &str) -> Result<ipnet::IpNet, String> {
    let value = value.trim();
    value
        .parse::<ipnet::IpNet>()
        .or_else(|_| value.parse::<std::net::IpAddr>().map(ipnet::IpNet::from))
        .map(|net| net.trunc())
        .map_err(|_| format!("'{value}' is not an address or CIDR (e.g. 10.0.0.0/8)"))
}

/// One base URL or several, comma-separated: each checked as by [`parse_base_url`], joined
/// again with commas.
fn parse_base_urls(value: &str) -> Result<String, String> {
    let urls = value
        .split(',')
        .map(parse_base_url)
        .collect::<Result<Vec<_>, _>>()?;
    Ok(urls.join(","))
}

/// Check an upstream base URL and drop a trailing slash.
fn parse_base_url(value: &str) -> Result<String, String> {
    let url =
        reqwest::Url::parse(value.trim()).map_err(|e| format!("'{value}' is not a URL: {e}"))?;
    if url.scheme() != "http" {
        return Err(format!(
            "'{value}' must be an http:// URL (Ollama speaks plain HTTP; put TLS in front of the gateway, not behind it)"
        ));
    }
    Ok(url.as_str().trim_end_matches('/').to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_accept_seconds_and_units() {
        assert_eq!(parse_duration("300"), Ok(Duration::from_secs(300)));
        assert_eq!(parse_duration("5m"), Ok(Duration::from_secs(300)));
        assert_eq!(parse_duration("250ms"), Ok(Duration::from_millis(250)));
        assert!(parse_duration("5 fortnights").is_err());
        assert!(parse_duration("").is_err());
        assert!(parse_duration("99999999999999999999999").is_err());
    }

    #[test]
    fn sizes_accept_units() {
        assert_eq!(parse_size("32MiB"), Ok(32 << 20));
        assert_eq!(parse_size("1024"), Ok(1024));
        assert!(parse_size("0").is_err());
        assert!(parse_size("lots").is_err());
    }

    #[test]
    fn upstream_urls_must_be_plain_http() {
        assert_eq!(
            parse_base_url("http://ollama:11434/").as_deref(),
            Ok("http://ollama:11434")
        );
        assert!(parse_base_url("https://ollama:11434").is_err());
        assert!(parse_base_url("not a url").is_err());
        assert_eq!(
            parse_base_urls("http://a:1/, http://b:2").as_deref(),
            Ok("http://a:1,http://b:2")
        );
        assert!(parse_base_urls("http://a:1,https://b:2").is_err());
    }

    #[test]
    fn networks_accept_cidrs_and_single_addresses() {
        assert_eq!(
            parse_net("10.1.2.3/8").map(|n| n.to_string()),
            Ok("10.0.0.0/8".into())
        );
        assert_eq!(
            parse_net("192.0.2.7").map(|n| n.to_string()),
            Ok("192.0.2.7/32".into())
        );
        assert_eq!(
            parse_net("::1").map(|n| n.to_string()),
            Ok("::1/128".into())
        );
        assert!(parse_net("10.0.0.0/33").is_err());
        assert!(parse_net("example.org").is_err());
    }

    #[test]
    fn secrets_never_print() {
        let secret = Secret::new("sk-very-secret");
        assert!(!format!("{secret:?}").contains("very"));
    }

    #[test]
    fn defaults_are_the_documented_ones() {
        let config = Config::defaults();
        assert_eq!(config.listen.to_string(), "127.0.0.1:8080");
        assert_eq!(config.ollama_url, "http://127.0.0.1:11434");
        assert_eq!(config.upstream_timeout, Duration::from_secs(300));
        assert_eq!(config.max_body, 32 << 20);
        assert_eq!(config.body_timeout, Duration::from_secs(30));
        assert_eq!(config.auth, AuthMode::On);
        assert_eq!(config.tls_dir(), PathBuf::from("ollama-gateway-tls"));
    }

    #[test]
    fn the_tls_folder_is_beside_the_database_unless_set() {
        let mut config = Config::defaults();
        for (db, wanted) in [
            (
                "sqlite:///data/ollama-gateway.db",
                "/data/ollama-gateway-tls",
            ),
            ("sqlite://var/gw.db?mode=rwc", "var/ollama-gateway-tls"),
            ("sqlite:gw.db", "ollama-gateway-tls"),
            ("sqlite::memory:", "ollama-gateway-tls"),
        ] {
            config.db = db.into();
            assert_eq!(config.tls_dir(), PathBuf::from(wanted), "{db}");
        }
        config.tls_dir = Some(PathBuf::from("/etc/gw/tls"));
        assert_eq!(config.tls_dir(), PathBuf::from("/etc/gw/tls"));
    }
}
