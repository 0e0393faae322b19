//! From command line and environment to validated `Settings`.

use std::ffi::OsString;
use std::path::PathBuf;

use peerd::addressing::PeerAddr;
use peerd_daemon::config::{
    ConfigError, FlagOverride, Origin, Overrides, Settings, load, parse_set_flag,
};

use crate::cli::{Cli, Command, GlobalArgs};

#[derive(Debug, thiserror::Error)]
pub enum SettingsError {
    #[error(transparent)]
    Config(#[from] ConfigError),
    #[error("invalid value for log.level: {0}")]
    LogLevel(String),
    #[error("invalid value for {key}: {message}")]
    Peer { key: &'static str, message: String },
}

pub fn load_settings(cli: &Cli) -> Result<Settings, SettingsError> {
    let mut overrides = Overrides {
        config_path: config_path(&cli.global),
        env: peerd_env(),
        flags: flags(cli)?,
    };
    if matches!(cli.command, Command::Init) {
        // `init` writes the file at --config; it need not exist yet.
        overrides.config_path.take_if(|(path, _)| !path.exists());
    }
    let settings = load(&overrides)?;
    validate(&settings)?;
    Ok(settings)
}

pub fn config_path(global: &GlobalArgs) -> Option<(PathBuf, Origin)> {
    if let Some(path) = &global.config {
        return Some((
            path.clone(),
            Origin::Flag {
                flag: "--config".into(),
            },
        ));
    }
    let path = std::env::var_os("PEERD_CONFIG")?;
    Some((
        path.into(),
        Origin::Env {
            var: "PEERD_CONFIG".into(),
        },
    ))
}

/// `PEERD_*` and `RUST_LOG`, skipping anything that is not Unicode.
fn peerd_env() -> Vec<(String, String)> {
    let ours = |name: &str| name.starts_with("PEERD_") || name == "RUST_LOG";
    std::env::vars_os()
        .filter_map(|(name, value): (OsString, OsString)| {
            Some((name.into_string().ok()?, value.into_string().ok()?))
        })
        .filter(|(name, _)| ours(name))
        .collect()
}

fn flags(cli: &Cli) -> Result<Vec<FlagOverride>, ConfigError> {
    let global = &cli.global;
    let named = [
        ("data_dir", &global.data_dir, "--data-dir"),
        ("admin_socket", &global.admin_socket, "--admin-socket"),
        ("listen", &global.listen, "--listen"),
        ("log.level", &global.log_level, "--log-level"),
        ("log.format", &global.log_format, "--log-format"),
    ];
    let mut flags: Vec<FlagOverride> = named
        .into_iter()
        .filter_map(|(key, value, flag)| Some(FlagOverride::new(key, value.as_ref()?, flag)))
        .collect();
    if let Command::Run { peers, bootstrap } = &cli.command {
        // Repeated flags form one comma-separated list value.
        if !peers.is_empty() {
            flags.push(FlagOverride::new("peers", peers.join(","), "--peer"));
        }
        if !bootstrap.is_empty() {
            flags.push(FlagOverride::new(
                "bootstrap",
                bootstrap.join(","),
                "--bootstrap",
            ));
        }
    }
    for set in &global.set {
        flags.push(parse_set_flag(set)?);
    }
    Ok(flags)
}

/// Checks the loader leaves to us: the log filter's syntax, and node ids.
fn validate(settings: &Settings) -> Result<(), SettingsError> {
    tracing_subscriber::EnvFilter::try_new(&settings.log.level)
        .map_err(|e| SettingsError::LogLevel(format!("{:?}: {e}", settings.log.level)))?;
    for (key, entries) in [
        ("peers", &settings.peers),
        ("bootstrap", &settings.bootstrap),
    ] {
        for entry in entries {
            entry.parse::<PeerAddr>().map_err(|e| SettingsError::Peer {
                key,
                message: e.to_string(),
            })?;
        }
    }
    Ok(())
}
