//! `fake-ollama`: serve the fake Ollama on a socket for client suites and benchmarks.

use std::io::Write;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use clap::Parser;
use fake_ollama::{FakeConfig, FakeOllama};

/// A fake Ollama server replaying recorded fixtures.
#[derive(Debug, Parser)]
#[command(version, about)]
struct Args {
    /// Address to listen on; port 0 picks a free port (the real one is printed).
    #[arg(long, env = "FAKE_OLLAMA_LISTEN", default_value = "127.0.0.1:11434")]
    listen: SocketAddr,
    /// Fixtures directory (tags.json, show/, chat/, generate/). Default: the workspace's fixtures/.
    #[arg(long, env = "FAKE_OLLAMA_FIXTURES")]
    fixtures: Option<PathBuf>,
    /// Delay from a request's arrival to its first streamed line, in milliseconds.
    #[arg(long, env = "FAKE_OLLAMA_FIRST_TOKEN_DELAY_MS", default_value_t = 0)]
    first_token_delay_ms: u64,
    /// Gap between streamed lines, in milliseconds (deadline-scheduled).
    #[arg(long, env = "FAKE_OLLAMA_CHUNK_GAP_MS", default_value_t = 0)]
    chunk_gap_ms: u64,
    /// Answer /api/tags with no models.
    #[arg(long, env = "FAKE_OLLAMA_EMPTY_TAGS")]
    empty_tags: bool,
    /// Tokio worker threads (default: one per CPU).
    #[arg(long, env = "FAKE_OLLAMA_THREADS")]
    threads: Option<usize>,
}

fn main() -> std::io::Result<()> {
    let args = Args::parse();
    let mut runtime = tokio::runtime::Builder::new_multi_thread();
    runtime.enable_all();
    if let Some(threads) = args.threads {
        runtime.worker_threads(threads.max(1));
    }
    runtime.build()?.block_on(run(args))
}

async fn run(args: Args) -> std::io::Result<()> {
    let config = FakeConfig {
        fixtures_dir: args
            .fixtures
            .unwrap_or_else(FakeConfig::default_fixtures_dir),
        first_token_delay: Duration::from_millis(args.first_token_delay_ms),
        chunk_gap: Duration::from_millis(args.chunk_gap_ms),
        empty_tags: args.empty_tags,
        models: None,
        loaded: None,
        failing: false,
    };
    let fake = FakeOllama::start_on(args.listen, config).await?;
    let mut stdout = std::io::stdout().lock();
    writeln!(stdout, "fake-ollama listening on {}", fake.url())?;
    stdout.flush()?;
    drop(stdout);
    shutdown_signal().await;
    fake.shutdown().await;
    Ok(())
}

/// Ctrl-C or SIGTERM.
async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut signal) => {
                signal.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => {}
        () = terminate => {}
    }
}
