//! Configuration errors; each names the key and where the offending value came from.

use std::io;
use std::path::PathBuf;

use super::source::{Origin, Source};
use super::suggest::{env_hint, key_hint};

/// Why the configuration could not be loaded. The daemon exits with EX_CONFIG (78) on any of these.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("config file {} does not exist (given by {origin})", path.display())]
    MissingFile { path: PathBuf, origin: Origin },

    #[error("cannot read config file {} (given by {origin}): {cause}", path.display())]
    UnreadableFile {
        path: PathBuf,
        origin: Origin,
        #[source]
        cause: io::Error,
    },

    #[error("invalid TOML in {}:{line}:{column}: {message}", path.display())]
    Syntax {
        path: PathBuf,
        line: usize,
        column: usize,
        message: String,
    },

    #[error("unknown key {key} {from}{}", key_hint(key))]
    UnknownKey { key: String, from: Source },

    #[error(
        "unknown environment variable {var}: it names no configuration key{}",
        env_hint(var)
    )]
    UnknownEnvVar { var: String },

    #[error("invalid value for {key} {from}: {problem}")]
    InvalidValue {
        key: String,
        from: Source,
        problem: String,
    },

    #[error("invalid --set argument {argument:?}: expected key=value")]
    MalformedSet { argument: String },

    /// More than one of the above, in the order of the layers (file,
    /// environment, flags) and within the file in file order.
    #[error("{} problems in the configuration:{}", .0.len(), list(.0))]
    Several(Vec<ConfigError>),
}

impl ConfigError {
    /// `Ok` for no error, else [`Self::several`].
    pub(super) fn of_all(errors: Vec<ConfigError>) -> Result<(), ConfigError> {
        match errors.is_empty() {
            true => Ok(()),
            false => Err(Self::several(errors)),
        }
    }

    /// The error for one, [`Self::Several`] for more; `errors` is not empty.
    pub(super) fn several(mut errors: Vec<ConfigError>) -> ConfigError {
        match errors.len() {
            1 => errors.remove(0),
            _ => ConfigError::Several(errors),
        }
    }

    /// The errors this one stands for.
    pub(super) fn into_list(self) -> Vec<ConfigError> {
        match self {
            ConfigError::Several(errors) => errors,
            one => vec![one],
        }
    }
}

fn list(errors: &[ConfigError]) -> String {
    errors.iter().map(|e| format!("\n  {e}")).collect()
}
