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
    /// `Ok` for no error, the error for one, [`Self::Several`] for more.
    pub(super) fn of_all(mut errors: Vec<ConfigError>) -> Result<(), ConfigError> {
        match errors.len() {
            0 => Ok(()),
            1 => Err(errors.remove(0)),
            _ => Err(ConfigError::Several(errors)),
        }
    }
}

fn list(errors: &[ConfigError]) -> String {
    errors.iter().map(|e| format!("\n  {e}")).collect()
}
