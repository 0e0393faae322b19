//! The `peerd` binary: parses the command line, loads the configuration,
//! sets up logging, and runs the daemon or one client command.

// Outside tests the daemon never unwraps (clippy.toml allows it in tests).
#![warn(clippy::unwrap_used)]

mod bench;
mod cli;
mod commands;
mod exit;
mod ping;
mod settings;
mod tables;

use std::io::IsTerminal;
use std::process::ExitCode;

use clap::{CommandFactory, Parser};
use peerd_daemon::config::{LogFormat, Settings};

use cli::{Cli, Command};
use settings::load_settings;

fn main() -> ExitCode {
    let cli = Cli::parse();
    if let Command::Completions { shell } = cli.command {
        clap_complete::generate(shell, &mut Cli::command(), "peerd", &mut std::io::stdout());
        return ExitCode::SUCCESS;
    }
    let settings = match load_settings(&cli) {
        Ok(settings) => settings,
        Err(e) => {
            eprintln!("peerd: {e}");
            return ExitCode::from(exit::CONFIG);
        }
    };
    init_logging(&settings);
    // One crypto provider for the whole process, chosen explicitly: the
    // one peerd's own TLS configs use (ring, AES-128-GCM first).
    let _ = peerd::tls::crypto_provider().install_default();
    match commands::run(
        cli.command,
        settings,
        settings::config_path(&cli.global).map(|(path, _)| path),
    ) {
        Ok(code) => code,
        Err(e) => exit::fail(&e),
    }
}

fn init_logging(settings: &Settings) {
    let filter = tracing_subscriber::EnvFilter::new(&settings.log.level);
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(std::io::stderr().is_terminal())
        .with_writer(std::io::stderr);
    match settings.log.format {
        LogFormat::Json => builder.json().init(),
        LogFormat::Text => builder.init(),
    }
    std::panic::set_hook(Box::new(|panic| {
        tracing::error!(%panic, "panic");
    }));
}
