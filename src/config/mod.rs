//! The daemon's configuration: built-in defaults < TOML file < PEERD_* environment < flags,
//! with every value traced to where it came from.
//!
//! Each layer only contributes raw values; every key is converted once, from the
//! layer that won, so an error can name the key and the file position, environment
//! variable or flag its value came from. Keys are listed once, in `keys.rs`: that
//! table gives the environment variable names (`PEERD_LISTEN`,
//! `PEERD_TRANSPORT_MAX_CONNECTIONS`, ...), the output of [`Settings::to_toml`] and
//! the sample file `config/peerd.toml`.
//!
//! This module never reads the process environment or the command line itself:
//! callers pass both in [`Overrides`], which keeps loading deterministic in tests.

mod error;
mod file;
mod gateway;
mod keys;
mod layers;
mod settings;
mod source;
mod suggest;
mod units;
mod values;

#[cfg(test)]
mod tests;

use std::path::PathBuf;

pub use error::ConfigError;
pub use settings::{
    DEFAULT_METRICS, ListenerLimits, LogFormat, LogSettings, MetricsListen, MetricsSettings,
    Settings,
};
pub use source::{Origin, Source};
pub use units::{UnitError, format_byte_size, format_duration, parse_byte_size, parse_duration};

use layers::Layers;

/// Everything that can override the built-in defaults.
#[derive(Debug, Clone, Default)]
pub struct Overrides {
    /// The config file and who named it; `None` reads no file.
    pub config_path: Option<(PathBuf, Origin)>,
    /// The process environment, or any part of it holding the `PEERD_*` and
    /// `RUST_LOG` variables; other variables are ignored.
    pub env: Vec<(String, String)>,
    /// Command-line overrides in the order given; a later one for the same key wins.
    pub flags: Vec<FlagOverride>,
}

/// One key set on the command line, e.g. `("listen", "127.0.0.1:0", "--listen")`.
///
/// `value` is read like an environment variable: lists are comma-separated.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FlagOverride {
    /// A key as written in the file, with its section: `listen`, `transport.max_connections`.
    pub key: String,
    pub value: String,
    /// The flag as the user typed it, for error messages: `--listen`, `--set`.
    pub flag: String,
}

impl FlagOverride {
    pub fn new(key: impl Into<String>, value: impl Into<String>, flag: impl Into<String>) -> Self {
        FlagOverride {
            key: key.into(),
            value: value.into(),
            flag: flag.into(),
        }
    }
}

/// The flag that sets any key: `--set key=value`.
pub const SET_FLAG: &str = "--set";

/// Reads the argument of `--set`, e.g. `transport.max_connections=10`. The value is
/// checked later, by [`load`], together with the other layers.
pub fn parse_set_flag(argument: &str) -> Result<FlagOverride, ConfigError> {
    let Some((key, value)) = argument.split_once('=') else {
        return Err(ConfigError::MalformedSet {
            argument: argument.to_owned(),
        });
    };
    let key = key.trim();
    if keys::find(key).is_none() {
        return Err(ConfigError::UnknownKey {
            key: key.to_owned(),
            from: Source::Flag {
                flag: SET_FLAG.to_owned(),
            },
        });
    }
    Ok(FlagOverride::new(key, value, SET_FLAG))
}

/// Builds the settings: defaults, then the config file, the environment and the flags.
/// Every problem is reported, not only the first: the keys each layer
/// refuses, then the values that do not convert.
pub fn load(overrides: &Overrides) -> Result<Settings, ConfigError> {
    let mut layers = Layers::default();
    let mut errors = Vec::new();
    let file = overrides
        .config_path
        .as_ref()
        .map(|(path, origin)| file::read(path, origin).unwrap_or_else(|e| (Vec::new(), vec![e])));
    let env = layers::env_layer(&overrides.env);
    let flags = layers::flag_layer(&overrides.flags);
    for (layer, refused) in file.into_iter().chain([env, flags]) {
        layers.push(layer);
        errors.extend(refused);
    }
    let (settings, invalid) = layers.settle();
    errors.extend(invalid);
    ConfigError::of_all(errors).map(|()| settings)
}
