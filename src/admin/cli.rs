//! `ollama-gateway keys ...`, `users ...`, `usage ...`: the same operations as the admin API,
//! straight on the database in `GATEWAY_DB`. They work while a gateway runs on that database:
//! it sees the change within a second. This is how the first admin key is made on a box
//! without a browser.

use std::process::ExitCode;

use serde_json::{Map, Value};

use super::{CreateKey, UpdateKey};
use crate::config::Config;
use crate::error::GatewayError;
use crate::gate::keys::KeyStore;
use crate::store::{Role, Store, millis};
use crate::usage::report::{self, GroupBy};

/// `keys ...`.
#[derive(Clone, Debug, clap::Subcommand)]
pub enum KeysCommand {
    /// Create a key and print it (shown this once).
    Create {
        /// Unique among working keys.
        #[arg(long)]
        name: String,
        /// The owner (created as a `user` if new).
        #[arg(long)]
        user: Option<String>,
        /// May use the admin API (and Ollama's administrative endpoints when enabled).
        #[arg(long)]
        admin: bool,
        /// Comma-separated model patterns (default: all allowed models).
        #[arg(long, value_delimiter = ',')]
        models: Vec<String>,
        /// Requests per minute (default GATEWAY_RATE_LIMIT).
        #[arg(long)]
        rate_limit: Option<u32>,
        /// Burst (default GATEWAY_RATE_BURST).
        #[arg(long)]
        burst: Option<u32>,
        /// Concurrent requests (default GATEWAY_MAX_CONCURRENT).
        #[arg(long)]
        max_concurrent: Option<u32>,
        /// Tokens per UTC day.
        #[arg(long)]
        quota_daily: Option<u64>,
        /// Tokens per UTC month.
        #[arg(long)]
        quota_monthly: Option<u64>,
        /// End streams at the budget.
        #[arg(long)]
        hard_quota: bool,
        /// When the key stops working (RFC 3339 or YYYY-MM-DD).
        #[arg(long)]
        expires: Option<String>,
        /// Print JSON (with `key`) instead of text.
        #[arg(long)]
        json: bool,
    },
    /// List keys (never the keys themselves).
    List {
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
    /// Switch a key off (it can be switched on again).
    Disable { id: String },
    /// Switch a key on again.
    Enable { id: String },
    /// Revoke a key for good (it stays listed).
    Revoke { id: String },
}

/// `users ...`.
#[derive(Clone, Debug, clap::Subcommand)]
pub enum UsersCommand {
    /// Add a user.
    Create {
        name: String,
        /// `admin` or `user`.
        #[arg(long, default_value = "user", value_parser = parse_role)]
        role: Role,
    },
    /// List users.
    List {
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
    /// Change a user's role.
    SetRole {
        name: String,
        #[arg(value_parser = parse_role)]
        role: Role,
    },
    /// Delete a user and revoke its keys.
    Delete { name: String },
}

/// `usage ...`.
#[derive(Clone, Debug, clap::Args)]
pub struct UsageArgs {
    /// Comma-separated: key, user, model, route, day, hour.
    #[arg(long)]
    group_by: Option<String>,
    /// Start (RFC 3339 or YYYY-MM-DD).
    #[arg(long)]
    from: Option<String>,
    /// End, exclusive.
    #[arg(long)]
    to: Option<String>,
    /// `table` (default), `csv` or `json`.
    #[arg(long, default_value = "table")]
    format: String,
}

fn parse_role(text: &str) -> Result<Role, String> {
    match text {
        "admin" => Ok(Role::Admin),
        "user" => Ok(Role::User),
        other => Err(format!("'{other}': use admin or user")),
    }
}

/// Open the store named by `GATEWAY_DB`, with a message naming the setting.
pub async fn open(config: &Config) -> Result<Store, String> {
    Store::open(&config.db)
        .await
        .map_err(|e| format!("GATEWAY_DB ({}): {e}", crate::store::redact(&config.db)))
}

/// Run a `keys` command.
pub async fn keys(config: &Config, command: &KeysCommand) -> ExitCode {
    finish(run_keys(config, command).await)
}

/// Run a `users` command.
pub async fn users(config: &Config, command: &UsersCommand) -> ExitCode {
    finish(run_users(config, command).await)
}

/// Run `usage`.
pub async fn usage(config: &Config, args: &UsageArgs) -> ExitCode {
    finish(run_usage(config, args).await)
}

fn finish(result: Result<String, String>) -> ExitCode {
    match result {
        Ok(out) => {
            print!("{out}");
            ExitCode::SUCCESS
        }
        Err(message) => {
            eprintln!("ollama-gateway: {message}");
            ExitCode::FAILURE
        }
    }
}

fn show(err: GatewayError) -> String {
    match err {
        GatewayError::StoreUnavailable => {
            "GATEWAY_DB: the database is unavailable (locked or unreadable); try again".into()
        }
        other => other.to_string(),
    }
}

fn to_json(value: &impl serde::Serialize) -> String {
    serde_json::to_string_pretty(value).unwrap_or_default() + "\n"
}

async fn run_keys(config: &Config, command: &KeysCommand) -> Result<String, String> {
    let store = open(config).await?;
    let config_keys = KeyStore::load(config)?.config_keys().to_vec();
    let now = chrono::Utc::now();
    let set_enabled = |id: &str, enabled: bool| {
        let store = store.clone();
        let config_keys = config_keys.clone();
        let id = id.to_owned();
        async move {
            let patch = UpdateKey {
                enabled: Some(enabled),
                ..UpdateKey::default()
            };
            super::update_key(&store, &config_keys, &id, patch)
                .await
                .map_err(show)
        }
    };
    match command {
        KeysCommand::Create {
            name,
            user,
            admin,
            models,
            rate_limit,
            burst,
            max_concurrent,
            quota_daily,
            quota_monthly,
            hard_quota,
            expires,
            json,
        } => {
            let expires = expires
                .as_deref()
                .map(|e| report::parse_time("expires", e))
                .transpose()
                .map_err(show)?;
            let body = CreateKey {
                name: name.clone(),
                user: user.clone(),
                models: (!models.is_empty()).then(|| models.clone()),
                rate_limit: *rate_limit,
                burst: *burst,
                max_concurrent: *max_concurrent,
                expires,
                daily_token_quota: *quota_daily,
                monthly_token_quota: *quota_monthly,
                hard_quota: Some(*hard_quota),
                admin: Some(*admin),
                enabled: Some(true),
            };
            let (record, key) = super::create_key(&store, &config_keys, body, now)
                .await
                .map_err(show)?;
            super::audit_change("cli", None, "key.create", &record.id);
            if *json {
                let mut view = super::stored_view(config, &record, (0, 0));
                view.key = Some(key);
                return Ok(to_json(&view));
            }
            Ok(format!(
                "Created key '{}' (id {}). It is shown only now:\n\n    {key}\n\n",
                record.name, record.id
            ))
        }
        KeysCommand::List { json } => {
            let records = store.keys().await.map_err(|e| show(e.into()))?;
            // What the gateway counts in memory, as of the last written usage records.
            let today = store
                .tokens_since(millis(crate::usage::quota::day_start(now)))
                .await
                .unwrap_or_default();
            let month = store
                .tokens_since(millis(crate::usage::quota::month_start(now)))
                .await
                .unwrap_or_default();
            let used = |counter: &str| {
                let find = |rows: &[(String, u64)]| {
                    rows.iter()
                        .find(|(k, _)| k == counter)
                        .map_or(0, |(_, n)| *n)
                };
                (find(&today), find(&month))
            };
            let mut views: Vec<_> = config_keys
                .iter()
                .map(|k| super::config_view(k, used(&super::config_counter(&k.name))))
                .collect();
            views.extend(
                records
                    .iter()
                    .map(|r| super::stored_view(config, r, used(&r.id))),
            );
            if *json {
                return Ok(to_json(&serde_json::json!({"data": views})));
            }
            let mut out = format!(
                "{:<18} {:<20} {:<12} {:<12} {:<7} {:<9} {:<6} {:>12}\n",
                "ID", "NAME", "USER", "PREFIX", "SOURCE", "STATE", "ADMIN", "TOKENS TODAY"
            );
            for v in views {
                let state = if v.revoked {
                    "revoked"
                } else if v.enabled {
                    "enabled"
                } else {
                    "disabled"
                };
                out.push_str(&format!(
                    "{:<18} {:<20} {:<12} {:<12} {:<7} {:<9} {:<6} {:>12}\n",
                    v.id,
                    v.name,
                    v.user.as_deref().unwrap_or("-"),
                    v.prefix.as_deref().unwrap_or("-"),
                    v.source,
                    state,
                    v.settings.admin,
                    v.tokens_today
                ));
            }
            Ok(out)
        }
        KeysCommand::Disable { id } => {
            let record = set_enabled(id, false).await?;
            super::audit_change("cli", None, "key.update", id);
            Ok(format!("Disabled key '{}' ({}).\n", record.name, record.id))
        }
        KeysCommand::Enable { id } => {
            let record = set_enabled(id, true).await?;
            super::audit_change("cli", None, "key.update", id);
            Ok(format!("Enabled key '{}' ({}).\n", record.name, record.id))
        }
        KeysCommand::Revoke { id } => {
            super::refuse_config_id(id).map_err(show)?;
            let record = store
                .revoke_key(id, millis(now))
                .await
                .map_err(|e| show(e.into()))?;
            super::audit_change("cli", None, "key.revoke", id);
            Ok(format!("Revoked key '{}' ({}).\n", record.name, record.id))
        }
    }
}

async fn run_users(config: &Config, command: &UsersCommand) -> Result<String, String> {
    let store = open(config).await?;
    let now = millis(chrono::Utc::now());
    match command {
        UsersCommand::Create { name, role } => {
            super::check_name("name", name).map_err(show)?;
            let user = store
                .create_user(name, *role, now)
                .await
                .map_err(|e| show(e.into()))?;
            super::audit_change("cli", None, "user.create", name);
            Ok(format!(
                "Created user '{}' ({}).\n",
                user.name,
                user.role.as_str()
            ))
        }
        UsersCommand::List { json } => {
            let users = store.users().await.map_err(|e| show(e.into()))?;
            let keys = store.keys().await.map_err(|e| show(e.into()))?;
            let views: Vec<_> = users.iter().map(|u| super::user_view(u, &keys)).collect();
            if *json {
                return Ok(to_json(&serde_json::json!({"data": views})));
            }
            let mut out = format!("{:<24} {:<6} {:<5} CREATED\n", "NAME", "ROLE", "KEYS");
            for v in views {
                out.push_str(&format!(
                    "{:<24} {:<6} {:<5} {}\n",
                    v.name,
                    v.role.as_str(),
                    v.keys,
                    v.created.to_rfc3339()
                ));
            }
            Ok(out)
        }
        UsersCommand::SetRole { name, role } => {
            store
                .update_user(name, *role)
                .await
                .map_err(|e| show(e.into()))?;
            super::audit_change("cli", None, "user.update", name);
            Ok(format!("User '{name}' is now {}.\n", role.as_str()))
        }
        UsersCommand::Delete { name } => {
            let revoked = store
                .delete_user(name, now)
                .await
                .map_err(|e| show(e.into()))?;
            super::audit_change("cli", None, "user.delete", name);
            Ok(format!(
                "Deleted user '{name}'; revoked {} key(s).\n",
                revoked.len()
            ))
        }
    }
}

async fn run_usage(config: &Config, args: &UsageArgs) -> Result<String, String> {
    let store = open(config).await?;
    let now = chrono::Utc::now();
    let group_by =
        GroupBy::parse_list(args.group_by.as_deref().unwrap_or_default()).map_err(show)?;
    let from = match &args.from {
        Some(t) => report::parse_time("from", t).map_err(show)?,
        None => chrono::DateTime::<chrono::Utc>::UNIX_EPOCH,
    };
    let to = match &args.to {
        Some(t) => report::parse_time("to", t).map_err(show)?,
        None => now + chrono::Duration::milliseconds(1),
    };
    let retention =
        chrono::Duration::from_std(config.usage_retention).unwrap_or(chrono::Duration::MAX);
    let kept_since = now
        .checked_sub_signed(retention)
        .unwrap_or(chrono::DateTime::<chrono::Utc>::MIN_UTC);
    let rows = report::query(&store, &group_by, from, to, kept_since)
        .await
        .map_err(show)?;
    let columns = report::columns(&group_by);
    match args.format.as_str() {
        "csv" => Ok(report::to_csv(&columns, &rows)),
        "json" => Ok(to_json(&serde_json::json!({"data": rows}))),
        "table" => Ok(table(&columns, &rows)),
        other => Err(format!("--format: '{other}': use table, csv or json")),
    }
}

fn table(columns: &[&str], rows: &[Map<String, Value>]) -> String {
    let cell = |row: &Map<String, Value>, c: &str| match row.get(c) {
        None | Some(Value::Null) => "-".to_owned(),
        Some(Value::String(s)) => s.clone(),
        Some(other) => other.to_string(),
    };
    let widths: Vec<usize> = columns
        .iter()
        .map(|c| {
            rows.iter()
                .map(|r| cell(r, c).len())
                .chain([c.len()])
                .max()
                .unwrap_or_default()
        })
        .collect();
    let mut out = String::new();
    let line = |cells: Vec<String>, out: &mut String| {
        let padded: Vec<String> = cells
            .iter()
            .zip(&widths)
            .map(|(c, w)| format!("{c:<w$}"))
            .collect();
        out.push_str(padded.join("  ").trim_end());
        out.push('\n');
    };
    line(columns.iter().map(|c| c.to_uppercase()).collect(), &mut out);
    for row in rows {
        line(columns.iter().map(|c| cell(row, c)).collect(), &mut out);
    }
    out
}
