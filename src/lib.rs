//! ollama-gateway: an authenticating, validating, OpenAI-compatible gateway in front of a
//! local Ollama server.
//!
//! Layout: [`config`] (every setting), [`state`] (what handlers share), [`error`] (one error
//! type, three shapes), [`gate`] (keys, allowlist, limits, paths), [`upstream`] (the Ollama
//! client), [`ollama`], [`openai`], [`responses`] and [`anthropic`] (wire types and the pure
//! translation between them),
//! [`routes`] (one module per surface), [`http`] (extractors, audit, the middleware stack),
//! [`metrics`], [`server`] (with HTTPS from [`tls`]) and [`shutdown`]. Beside the request
//! path: [`store`] (the database), [`usage`] (usage records and token quotas), [`limits`] (the
//! limits shared by replicas through Redis), [`admin`] (the admin API and the CLI) and
//! [`console`] (the admin console in the browser, at `/admin/`).

pub mod admin;
pub mod anthropic;
pub mod backends;
pub mod config;
pub mod console;
pub mod error;
pub mod gate;
pub mod http;
pub mod limits;
pub mod metrics;
pub mod ollama;
pub mod openai;
pub mod responses;
pub mod routes;
pub mod server;
pub mod shutdown;
pub mod state;
pub mod store;
pub mod tls;
pub mod upstream;
pub mod usage;

use std::sync::Arc;

use config::{AuthMode, Config};
use gate::Gate;
use gate::keys::KeyStore;
use shutdown::Shutdown;
use state::{AppState, Inner};
use store::{Role, Store};
use usage::clock::{Clock, SystemClock};
use usage::{Usage, UsageSettings};

pub use http::stack::GatewayService;
pub use routes::openapi;

/// A gateway ready to serve, and the admin key generated at its first start (when no key was
/// configured and the database had none).
#[derive(Debug)]
pub struct Gateway {
    /// Shared state.
    pub state: AppState,
    /// The full service (router and middleware).
    pub service: GatewayService,
    /// An admin key made because no key existed anywhere; print it once.
    pub generated_key: Option<String>,
}

/// Check the configuration, open the database, load the keys and build the service. Needs a
/// Tokio runtime: it starts the usage writer and the key-change watcher.
pub async fn build(config: Config) -> Result<Gateway, String> {
    build_with_clock(config, Arc::new(SystemClock)).await
}

/// [`build`], with the clock token quotas are counted in (tests move it by hand).
pub async fn build_with_clock(config: Config, clock: Arc<dyn Clock>) -> Result<Gateway, String> {
    // First, so what starts below (the Redis gauge) is recorded.
    let metrics = metrics::install();
    let keys = KeyStore::load(&config)?;
    let backends = backends::Backends::new(&config)?;
    let basic_users = gate::basic::BasicAuth::from_config(&config)?;
    let store = admin::cli::open(&config).await?;
    let db_url = store.url();
    let db_error = |e: store::StoreError| format!("GATEWAY_DB ({db_url}): {e}");
    let generated_key = if config.auth == AuthMode::On && keys.is_empty() {
        first_admin_key(&store, clock.now())
            .await
            .map_err(db_error)?
    } else {
        None
    };
    let usage = Usage::start(
        store.clone(),
        UsageSettings {
            recording: config.usage_recording,
            queue: config.usage_queue,
            retention: config.usage_retention,
        },
        clock.clone(),
    );
    let now = clock.now();
    let today = store
        .tokens_since(store::millis(usage::quota::day_start(now)))
        .await
        .map_err(db_error)?;
    let month = store
        .tokens_since(store::millis(usage::quota::month_start(now)))
        .await
        .map_err(db_error)?;
    usage.quotas.seed(&today, &month);
    let redis = match &config.redis_url {
        Some(url) if !url.expose().is_empty() => {
            let redis = Arc::new(limits::RedisLimits::new(
                url.expose(),
                config.redis_timeout,
                config.redis_failure,
            )?);
            redis.seed_from(token_totals(store.clone(), clock.clone()));
            redis.start().await;
            Some(redis)
        }
        _ => None,
    };
    let mut gate = Gate::new(&config, keys, redis);
    gate.basic = basic_users;
    let tls = tls::ServerTls::from_config(&config)?;
    let responses =
        responses::stored::StoredResponses::start(store.clone(), config.responses_ttl, clock);
    let state = AppState::new(Inner {
        backends,
        tls,
        gate,
        shutdown: Shutdown::new(),
        metrics,
        config,
        store,
        usage,
        reloader: gate::reload::Reloader::default(),
        responses,
    });
    gate::reload::reload(&state).await.map_err(db_error)?;
    tokio::spawn(gate::reload::watch(state.clone()));
    state.backends.start().await;
    if state.gate.basic.is_some() {
        let watched = state.clone();
        tokio::spawn(async move {
            if let Some(users) = &watched.gate.basic {
                users.watch().await;
            }
        });
    }
    Ok(Gateway {
        service: http::stack::build(state.clone()),
        state,
        generated_key,
    })
}

/// Tokens per stored key today and this month, as the database has them: what a (re)connected
/// Redis starts its quota counters from.
fn token_totals(store: Store, clock: Arc<dyn Clock>) -> limits::redis::TokenSeed {
    Arc::new(move || {
        let store = store.clone();
        let now = clock.now();
        Box::pin(async move {
            let today = store
                .tokens_since(store::millis(usage::quota::day_start(now)))
                .await
                .ok()?;
            let this_month = store
                .tokens_since(store::millis(usage::quota::month_start(now)))
                .await
                .ok()?;
            Some(limits::redis::TokenTotals {
                day: usage::quota::day_number(now),
                month: usage::quota::month_number(now),
                today,
                this_month,
            })
        })
    })
}

/// With no key configured and none stored, make an admin key (user `admin`) so the gateway
/// does not open up, and so the operator can make the others; `None` on later starts.
async fn first_admin_key(
    store: &Store,
    now: chrono::DateTime<chrono::Utc>,
) -> Result<Option<String>, store::StoreError> {
    if !store.keys().await?.is_empty() {
        return Ok(None);
    }
    if !store.users().await?.iter().any(|u| u.name == "admin") {
        store
            .create_user("admin", Role::Admin, store::millis(now))
            .await?;
    }
    let body = admin::CreateKey {
        name: "admin".into(),
        user: Some("admin".into()),
        admin: Some(true),
        ..admin::CreateKey::default()
    };
    match admin::create_key(store, &[], body, now).await {
        Ok((_, key)) => Ok(Some(key)),
        Err(err) => Err(store::StoreError::Unavailable(err.to_string())),
    }
}
