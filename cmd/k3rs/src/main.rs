//! The `k3rs` binary: parses flags (command line, `K3RS_*` environment, config file),
//! sets up logging and hands over to the component libraries.

mod agent;
mod cli;
mod config_file;
mod join;
mod loadbalancer;
mod server;
mod token;

use clap::{CommandFactory, Parser};

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
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .init();
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
    let cli = cli::Cli::parse_from(args);
    init_tracing(cli.debug);
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("tokio runtime");
    let result = match cli.command {
        cli::Command::Server(args) => server::Settings::from_args(&args)
            .and_then(|settings| runtime.block_on(server::run(settings))),
        cli::Command::Agent(args) => join::Settings::from_args(&args)
            .and_then(|settings| runtime.block_on(join::command::run(settings))),
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
