//! The gate: who may call, which models they may use, how much, and which paths exist at all.
//!
//! - [`keys`]: API keys and the per-key settings (`Caller`), configured and stored.
//! - [`key_format`]: the `og_...` keys the gateway makes, and their checksum.
//! - [`reload`]: brings changes to stored keys into memory (at once, or within a second when
//!   another process made them).
//! - [`fold`]: JSON keys as Ollama's Go decoder matches them (case-insensitively).
//! - [`models`]: the model allowlist.
//! - [`auth`]: turns a bearer key (or Basic credentials) into a `Caller` (deny by default).
//! - [`basic`]: the Basic auth users of `GATEWAY_BASIC_USERS` (bcrypt, checked off the async
//!   workers, successes cached briefly).
//! - [`limits`]: body size, rate and concurrency limits.
//! - [`path`]: path normalisation before any routing decision.
//! - [`client`]: the client's address (the socket's, or forwarded by a trusted proxy).
//! - [`ip_rules`]: allowed and denied client addresses.
//! - [`auth_failures`]: failed authentications limited per client address.
//! - [`connections`]: open connections per peer address (applied by the server).
//!
//! [`admit`] is the one middleware that applies them, in this order: client address and its
//! allow/deny rules, body size, then for the console's pages its session check
//! ([`crate::console::session::admit`]), else the failed-authentication block, key (and, on
//! `/admin/api/*`, that it is an admin key), token quota, rates, concurrency. One layer instead of three: each layer costs a boxed future and a clone of
//! the inner service on every request.

pub mod auth;
pub mod auth_failures;
pub mod basic;
pub mod client;
pub mod connections;
pub mod fold;
pub mod ip_rules;
pub mod key_format;
pub mod keys;
pub mod limits;
pub mod models;
pub mod path;
pub mod reload;

use arc_swap::ArcSwap;
use axum::extract::{Request, State};
use axum::middleware::Next;
use axum::response::Response;
use governor::DefaultDirectRateLimiter;

use crate::config::Config;
use crate::error::{GatewayError, Surface};
use crate::http::audit::Audit;
use crate::state::AppState;
use crate::usage;
use client::PeerAddr;
use keys::{Caller, KeyStore, per_minute};
use models::ModelAllowlist;

/// Everything the gate decides with.
#[derive(Debug)]
pub struct Gate {
    /// Known keys: read once per request, swapped whole when stored keys change.
    pub keys: ArcSwap<KeyStore>,
    /// `GATEWAY_ALLOWED_MODELS`.
    pub models: ModelAllowlist,
    /// `GATEWAY_GLOBAL_RATE_LIMIT`.
    pub global_rate: Option<DefaultDirectRateLimiter>,
    /// The global limit per minute.
    pub global_rate_per_minute: u32,
    /// The global limit's burst (as many as the limit per minute).
    pub global_burst: u32,
    /// `GATEWAY_REDIS_URL`: where the rate limits are counted when shared by replicas.
    pub redis: Option<std::sync::Arc<crate::limits::RedisLimits>>,
    /// `GATEWAY_ALLOW_ADMIN`.
    pub allow_admin: bool,
    /// `GATEWAY_METRICS_OPEN`.
    pub metrics_open: bool,
    /// `GATEWAY_MAX_BODY`.
    pub max_body: usize,
    /// `GATEWAY_BODY_TIMEOUT`.
    pub body_timeout: std::time::Duration,
    /// `GATEWAY_TRUSTED_PROXIES`.
    pub trusted_proxies: Vec<ipnet::IpNet>,
    /// `GATEWAY_ALLOW_IPS` and `GATEWAY_DENY_IPS`.
    pub ip_rules: ip_rules::IpRules,
    /// `GATEWAY_AUTH_FAILURES`.
    pub auth_failures: auth_failures::AuthFailures,
    /// `GATEWAY_BASIC_USERS` (set by [`crate::build`], which reads the file).
    pub basic: Option<basic::BasicAuth>,
}

impl Gate {
    /// Build the gate from the configuration and loaded keys.
    pub fn new(
        config: &Config,
        keys: KeyStore,
        redis: Option<std::sync::Arc<crate::limits::RedisLimits>>,
    ) -> Self {
        Self {
            keys: ArcSwap::from_pointee(keys),
            models: ModelAllowlist::new(&config.allowed_models),
            global_rate: per_minute(config.global_rate_limit, config.global_rate_limit.max(1))
                .map(governor::RateLimiter::direct),
            global_rate_per_minute: config.global_rate_limit,
            global_burst: config.global_rate_limit.max(1),
            redis,
            allow_admin: config.allow_admin,
            metrics_open: config.metrics_open,
            max_body: config.max_body,
            body_timeout: config.body_timeout,
            trusted_proxies: config.trusted_proxies.clone(),
            ip_rules: ip_rules::IpRules::new(&config.allow_ips, &config.deny_ips),
            auth_failures: auth_failures::AuthFailures::new(config.auth_failures),
            basic: None,
        }
    }

    /// Whether `caller` may use `model` (global list and the key's own list).
    pub fn model_visible(&self, caller: &Caller, model: &str) -> bool {
        self.models.allows(model) && caller.models.allows(model)
    }

    /// Refuse a model the caller may not use (403 `model_not_allowed`).
    pub fn check_model(&self, caller: &Caller, model: &str) -> Result<(), GatewayError> {
        if self.model_visible(caller, model) {
            Ok(())
        } else {
            Err(GatewayError::ModelNotAllowed(model.to_owned()))
        }
    }

    /// Check every model a native JSON body names in `fields` (the keys Ollama reads a model
    /// name from on this endpoint). Ollama's Go decoder matches keys without regard to case,
    /// with Unicode folding (`"MODEL"` or `"ſource"` fill `model` and `source`, the last one
    /// wins), so any other spelling of those keys is refused instead of slipping past the
    /// allowlist. The first model named is returned, for the audit line.
    pub fn check_body_models(
        &self,
        caller: &Caller,
        body: &serde_json::Map<String, serde_json::Value>,
        fields: &[&str],
    ) -> Result<Option<String>, GatewayError> {
        fold::refuse_variants(body.keys(), fields)?;
        let mut first = None;
        for field in fields {
            let Some(value) = body.get(*field) else {
                continue;
            };
            // Go leaves a string field empty for `null`.
            if value.is_null() {
                continue;
            }
            let model = value.as_str().ok_or_else(|| {
                GatewayError::invalid(*field, format!("{field}: must be a string"))
            })?;
            self.check_model(caller, model)?;
            first.get_or_insert_with(|| model.to_owned());
        }
        Ok(first)
    }

    /// Whether any model restriction applies to `caller`.
    pub fn restricts_models(&self, caller: &Caller) -> bool {
        !(self.models.is_open() && caller.models.is_open())
    }
}

/// The challenge for Basic auth, sent when `GATEWAY_BASIC_USERS` is set.
pub const BASIC_CHALLENGE: &str = "Basic realm=\"ollama-gateway\", charset=\"UTF-8\"";

/// Middleware: the body limit, then authentication (the caller goes into the request's
/// extensions), then the rate and concurrency limits; any refusal is answered in the shape of
/// the route's surface.
pub async fn admit(State(state): State<AppState>, req: Request, next: Next) -> Response {
    let surface = Surface::for_path(req.uri().path());
    let gate = &state.gate;
    let client = req
        .extensions()
        .get::<PeerAddr>()
        .map(|peer| client::client_addr(peer.0.ip(), req.headers(), &gate.trusted_proxies));
    if let (Some(client), Some(audit)) = (client, req.extensions().get::<Audit>()) {
        audit.set_client(client);
    }
    // No address (a request not from a socket: tests calling the service directly) passes
    // only when no allow list asks for one.
    let admitted = match client {
        Some(ip) => gate.ip_rules.admits(ip),
        None => gate.ip_rules.is_empty(),
    };
    if !admitted {
        return GatewayError::AddressNotAllowed.render(surface);
    }
    let mut req = match limits::limit_body(gate, req) {
        Ok(req) => req,
        Err(err) => return err.render(surface),
    };
    // The console's pages are opened with a session cookie, not a bearer key: its own gate.
    if crate::console::is_console_path(req.uri().path()) {
        return crate::console::session::admit(&state, client, req, next).await;
    }
    let now = std::time::Instant::now();
    let blocked = client.and_then(|ip| gate.auth_failures.blocked_for(ip, now));
    if let Some(retry_after) =
        blocked.filter(|_| !auth::is_open_route(req.uri().path(), gate.metrics_open))
    {
        return GatewayError::RateLimited {
            scope: crate::error::AUTH_FAILURES_SCOPE,
            retry_after,
            limit: gate.auth_failures.limit(),
        }
        .render(surface);
    }
    let caller = match auth::authenticate(gate, req.uri().path(), req.headers(), surface).await {
        // Open routes carry no caller and are not limited.
        Ok(None) => return next.run(req).await,
        Ok(Some(caller)) => caller,
        Err(err) => {
            if let (GatewayError::Unauthorized(_), Some(ip)) = (&err, client)
                && gate.auth_failures.record(ip, now)
            {
                tracing::warn!(client = %ip, "too many failed authentications: address blocked for a minute");
            }
            let challenge = matches!(err, GatewayError::Unauthorized(_)) && gate.basic.is_some();
            let mut response = err.render(surface);
            // Beside `Bearer`: a browser then asks for a user name and password.
            if challenge {
                response.headers_mut().append(
                    http::header::WWW_AUTHENTICATE,
                    http::HeaderValue::from_static(BASIC_CHALLENGE),
                );
            }
            return response;
        }
    };
    if let Some(audit) = req.extensions().get::<Audit>() {
        audit.set_caller(&caller);
    }
    // The admin API is for admin keys only, decided here before any body is read (the handlers
    // check again).
    if !caller.admin && req.uri().path().starts_with("/admin/") {
        return GatewayError::Forbidden("the admin API needs an admin key".into()).render(surface);
    }
    let quota = match quota_check(&state, &caller).await {
        Ok(quota) => quota,
        Err((err, quota)) => {
            let mut response = err.render(surface);
            quota.write_headers(response.headers_mut());
            return response;
        }
    };
    let permit = match limits::admit(gate, &caller).await {
        Ok(permit) => permit,
        Err(err) => return err.render(surface),
    };
    if caller.quota.hard
        && let (Some(budget), Some(audit)) = (quota.hard_budget(), req.extensions().get::<Audit>())
    {
        audit.set_hard_budget(budget);
    }
    req.extensions_mut().insert(caller.clone());
    let mut response = next.run(req).await;
    quota.write_headers(response.headers_mut());
    limits::finish(response, &caller, permit)
}

/// The caller's token budgets: counted in Redis across replicas when it is configured (one
/// read, bounded like every Redis call), else in this process.
async fn quota_check(
    state: &AppState,
    caller: &Caller,
) -> Result<usage::quota::QuotaStatus, (GatewayError, usage::quota::QuotaStatus)> {
    let quotas = &state.usage.quotas;
    let Some(redis) = state
        .gate
        .redis
        .as_ref()
        .filter(|_| caller.id.is_some() && caller.quota.is_set())
    else {
        return quotas.check(caller);
    };
    let (day, month) = quotas.periods();
    match redis.tokens_used(&caller.counter_name(), day, month).await {
        Ok((today, this_month)) => quotas.judge(caller, today, this_month),
        Err(_) => match redis.failure() {
            crate::config::RedisFailure::Closed => Err((
                GatewayError::LimitsUnavailable,
                usage::quota::QuotaStatus::default(),
            )),
            crate::config::RedisFailure::Open => quotas.check(caller),
        },
    }
}
