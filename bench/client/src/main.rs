//! `bench-client`: the probes of the gateway benchmark that `oha` cannot make.
//!
//! Every subcommand prints one JSON document on stdout; `bench/bench.py` runs them and writes
//! the report. Subcommands:
//!
//! - `idle`: sequential non-streamed requests, targets interleaved round by round.
//! - `stream`: concurrent streams, every SSE event timestamped against the fake's schedule and
//!   checked for integrity (same events, same text, usage present).
//! - `hold`: open long streams in steps and sample the targets' resident memory at each step.
//! - `cancel`: drop a stream mid-way and time how long until the fake sees its upstream close.
//! - `real`: streams against the real Ollama (`direct`) and the gateway in front of it, paired
//!   round by round: added time to first token and per-token gap.
//! - `passthrough`: a bare hyper + reqwest proxy, the floor of the gateway's stack (serves until
//!   killed).
//!
//! A target is `NAME=URL` or `NAME=URL@KEY` (`KEY` is sent as a bearer token); `URL` is the full
//! chat completions URL. Everything is bounded in count and time.

mod args;
mod cancel;
mod hold;
mod idle;
mod passthrough;
mod proc;
mod real;
mod sse;
mod stats;
mod stream;
mod target;

use std::process::ExitCode;

fn main() -> ExitCode {
    let mut argv: Vec<String> = std::env::args().skip(1).collect();
    if argv.is_empty() {
        eprintln!("usage: bench-client <idle|stream|hold|cancel|real|passthrough> [options]");
        return ExitCode::from(2);
    }
    let command = argv.remove(0);
    let parsed = match args::Args::parse(argv) {
        Ok(parsed) => parsed,
        Err(message) => {
            eprintln!("bench-client: {message}");
            return ExitCode::from(2);
        }
    };
    if command == "passthrough" {
        // Its own multi-thread runtime, like the gateway's.
        return match passthrough::run(&parsed) {
            Ok(_) => ExitCode::SUCCESS,
            Err(message) => {
                eprintln!("bench-client passthrough: {message}");
                ExitCode::FAILURE
            }
        };
    }
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(err) => {
            eprintln!("bench-client: cannot start the runtime: {err}");
            return ExitCode::FAILURE;
        }
    };
    let outcome = runtime.block_on(async move {
        match command.as_str() {
            "idle" => idle::run(&parsed).await,
            "stream" => stream::run(&parsed).await,
            "hold" => hold::run(&parsed).await,
            "cancel" => cancel::run(&parsed).await,
            "real" => real::run(&parsed).await,
            other => Err(format!("unknown subcommand '{other}'")),
        }
    });
    match outcome {
        Ok(report) => {
            println!("{report}");
            ExitCode::SUCCESS
        }
        Err(message) => {
            eprintln!(
                "bench-client {}: {message}",
                std::env::args().nth(1).unwrap_or_default()
            );
            ExitCode::FAILURE
        }
    }
}
