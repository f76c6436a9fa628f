//! The `ollama-gateway` binary: parse the configuration, set up logging, serve.

use clap::Parser;
use ollama_gateway::admin::cli;
use ollama_gateway::config::{AuthMode, Command, Config, LogFormat};
use tracing_subscriber::EnvFilter;

fn main() -> std::process::ExitCode {
    let config = Config::parse();
    let mut runtime = tokio::runtime::Builder::new_multi_thread();
    runtime.enable_all();
    if config.worker_threads > 0 {
        runtime.worker_threads(config.worker_threads);
    }
    let runtime = match runtime.build() {
        Ok(runtime) => runtime,
        Err(err) => {
            eprintln!("ollama-gateway: cannot start the async runtime: {err}");
            return std::process::ExitCode::FAILURE;
        }
    };
    runtime.block_on(async_main(config))
}

async fn async_main(config: Config) -> std::process::ExitCode {
    if matches!(&config.command, Some(Command::Keys(_) | Command::Users(_))) {
        // The CLI's changes are audited like the admin API's: one line each on stderr.
        init_tracing(config.log_format);
    }
    match &config.command {
        Some(Command::Healthcheck) => return healthcheck(config.listen).await,
        Some(Command::Keys(command)) => return cli::keys(&config, command).await,
        Some(Command::Users(command)) => return cli::users(&config, command).await,
        Some(Command::Usage(args)) => return cli::usage(&config, args).await,
        None => {}
    }
    init_tracing(config.log_format);
    match run(config).await {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(message) => {
            tracing::error!("{message}");
            eprintln!("ollama-gateway: {message}");
            std::process::ExitCode::FAILURE
        }
    }
}

async fn run(config: Config) -> Result<(), String> {
    let listen = config.listen;
    let gateway = ollama_gateway::build(config).await?;
    let state = gateway.state.clone();
    if state.gate.keys.load().is_open() {
        tracing::warn!(
            "AUTHENTICATION IS OFF (GATEWAY_AUTH=off): anyone who can reach this port can use every model"
        );
    }
    if let Some(key) = &gateway.generated_key {
        eprintln!(
            "\nNo API key configured (GATEWAY_API_KEYS, OLLAMA_API_KEY, GATEWAY_CONFIG or GATEWAY_DB).\nCreated an admin key in the database; it is shown only now, on this first start:\n\n    {key}\n\nUse it with the admin API (/admin/api/keys) or run `ollama-gateway keys create` to make more.\n"
        );
    }
    let listener = tokio::net::TcpListener::bind(listen)
        .await
        .map_err(|e| format!("GATEWAY_LISTEN: cannot listen on {listen}: {e}"))?;
    let local = listener.local_addr().map_err(|e| e.to_string())?;
    tracing::info!(
        listen = %local,
        keys = state.gate.keys.load().len(),
        basic_users = state.gate.basic.as_ref().map_or(0, |users| users.len()),
        db = %state.store.url(),
        auth = if state.config.auth == AuthMode::On { "on" } else { "off" },
        https = state.tls.is_some(),
        allowed_models = ?state.config.allowed_models,
        admin_endpoints = state.config.allow_admin,
        "ollama-gateway listening"
    );
    ollama_gateway::tls::redirect::start(&state, local.port()).await?;
    // Says in the log whether Ollama answers at OLLAMA_URL, and again whenever that changes
    // (with several backends, their watchers say it).
    let watched = state.clone();
    tokio::spawn(async move { watched.backends.watch_single().await });
    ollama_gateway::server::run(
        listener,
        gateway.service,
        state.clone(),
        ollama_gateway::shutdown::signal(),
    )
    .await
    .map_err(|e| e.to_string())?;
    // Every response has finished (or been cut off) by now: write out their usage records.
    state.usage.close().await;
    state.responses.close().await;
    Ok(())
}

fn init_tracing(format: LogFormat) {
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info"));
    // A log line that cannot be written (a full disk, a closed pipe) is dropped: by default the
    // subscriber reports that with `eprintln!`, which panics when stderr itself fails, inside
    // whatever request or task was logging.
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .log_internal_errors(false);
    match format {
        LogFormat::Json => builder.json().flatten_event(true).init(),
        LogFormat::Text => builder.init(),
    }
}

/// `ollama-gateway healthcheck`: GET /health on the local listener.
async fn healthcheck(listen: std::net::SocketAddr) -> std::process::ExitCode {
    let mut addr = listen;
    if addr.ip().is_unspecified() {
        addr.set_ip(std::net::Ipv4Addr::LOCALHOST.into());
    }
    let client = reqwest::Client::builder()
        .timeout(std::time::Duration::from_secs(4))
        .no_proxy()
        .build();
    let answered = match client {
        Ok(client) => client.get(format!("http://{addr}/health")).send().await,
        Err(err) => Err(err),
    };
    match answered {
        Ok(response) if response.status().is_success() => std::process::ExitCode::SUCCESS,
        Ok(response) => {
            eprintln!("unhealthy: /health answered {}", response.status());
            std::process::ExitCode::FAILURE
        }
        Err(err) => {
            eprintln!("unhealthy: {err}");
            std::process::ExitCode::FAILURE
        }
    }
}
