//! The `k3rs` binary: parses flags (command line, `K3RS_*` environment, config file),
//! sets up logging, handles SIGTERM/SIGINT, and hands over to the component libraries
//! (`k3rs-server` for `server`, `k3rs-agent` for `agent`).

mod agent_flags;
mod cli;
mod config_file;
mod parse;
mod server;
mod token;

use clap::error::{ContextKind, ContextValue, ErrorKind};
use clap::{CommandFactory, Parser};
use k3rs_core::Shutdown;
use tracing::info;

fn long_flags(subcommand: &str) -> Vec<String> {
    let command = cli::Cli::command();
    command
        .find_subcommand(subcommand)
        .map(|sub| {
            sub.get_arguments()
                .chain(command.get_arguments())
                .filter_map(|a| a.get_long().map(str::to_string))
                .collect()
        })
        .unwrap_or_default()
}

fn init_tracing(debug: bool) {
    let default = if debug { "debug" } else { "info" };
    let filter = tracing_subscriber::EnvFilter::try_from_env("K3RS_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(default));
    // Colour only on a terminal: a log file or the journal would keep the escape codes.
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .with_writer(std::io::stderr)
        .init();
}

/// A bad flag value as one line, `invalid --flag "value": why`, the way k3rs reports
/// every other flag problem; `None` for clap's other errors (unknown flags, `--help`).
fn one_line_clap_error(err: &clap::Error) -> Option<String> {
    if err.kind() != ErrorKind::ValueValidation {
        return None;
    }
    let flag = match err.get(ContextKind::InvalidArg)? {
        ContextValue::String(s) => s.clone(),
        ContextValue::StyledStr(s) => s.to_string(),
        _ => return None,
    };
    // `--cluster-cidr <CIDR>` -> `--cluster-cidr`.
    let flag = flag
        .split_whitespace()
        .next()
        .unwrap_or_default()
        .to_string();
    let value = match err.get(ContextKind::InvalidValue) {
        Some(ContextValue::String(s)) => s.clone(),
        _ => String::new(),
    };
    let why = std::error::Error::source(err)
        .map(ToString::to_string)
        .unwrap_or_else(|| "invalid value".into());
    Some(format!("invalid {flag} {value:?}: {why}"))
}

/// Resolve when the process receives SIGTERM or SIGINT.
async fn termination_signal() {
    use tokio::signal::unix::{signal, SignalKind};
    let (Ok(mut term), Ok(mut int)) = (
        signal(SignalKind::terminate()),
        signal(SignalKind::interrupt()),
    ) else {
        fail(anyhow::anyhow!(
            "cannot install the SIGTERM/SIGINT handlers"
        ));
    };
    tokio::select! {
        _ = term.recv() => info!("SIGTERM received, shutting down"),
        _ = int.recv() => info!("SIGINT received, shutting down"),
    }
}

/// Run `part` to its end, triggering `shutdown` on SIGTERM/SIGINT: the one signal
/// handler, which every long-running part selects against.
fn until_signal(
    runtime: &tokio::runtime::Runtime,
    shutdown: &Shutdown,
    part: impl std::future::Future<Output = anyhow::Result<()>>,
) -> anyhow::Result<()> {
    let signalled = shutdown.clone();
    runtime.spawn(async move {
        termination_signal().await;
        signalled.trigger();
    });
    runtime.block_on(part)
}

fn main() {
    let raw: Vec<String> = std::env::args().collect();
    // The config file holds flags of the subcommand being run: the first bare word.
    let subcommand = raw.iter().skip(1).find(|a| !a.starts_with('-')).cloned();
    let args = match subcommand.as_deref() {
        Some(name @ ("server" | "agent")) => {
            match config_file::expand_args(raw, name, &long_flags(name)) {
                Ok(args) => args,
                Err(err) => fail(err),
            }
        }
        _ => raw,
    };
    let cli = match cli::Cli::try_parse_from(args) {
        Ok(cli) => cli,
        Err(err) => match one_line_clap_error(&err) {
            Some(line) => fail(anyhow::anyhow!(line)),
            None => err.exit(),
        },
    };
    init_tracing(cli.debug);
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("tokio runtime");
    let shutdown = Shutdown::new();
    let result = match cli.command {
        cli::Command::Server(args) => server::config(&args).and_then(|config| {
            until_signal(
                &runtime,
                &shutdown,
                k3rs_server::run(config, shutdown.clone()),
            )
        }),
        cli::Command::Agent(args) => agent_flags::join_settings(&args).and_then(|settings| {
            until_signal(
                &runtime,
                &shutdown,
                k3rs_agent::run(settings, shutdown.clone()),
            )
        }),
        cli::Command::Token(args) => runtime.block_on(token::run(args)),
    };
    if let Err(err) = result {
        fail(err);
    }
}

/// Print one line naming what is wrong and exit non-zero.
fn fail(err: anyhow::Error) -> ! {
    let chain: Vec<String> = err.chain().map(|e| e.to_string()).collect();
    eprintln!("k3rs: {}", chain.join(": "));
    std::process::exit(1);
}
