//! Configuration errors; each names the key and where the offending value came from.

use std::io;
use std::path::PathBuf;

use super::source::{Origin, Source};

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

    #[error("unknown key {key} {from}")]
    UnknownKey { key: String, from: Source },

    #[error("unknown environment variable {var}: it names no configuration key")]
    UnknownEnvVar { var: String },

    #[error("invalid value for {key} {from}: {problem}")]
    InvalidValue {
        key: String,
        from: Source,
        problem: String,
    },

    #[error("invalid --set argument {argument:?}: expected key=value")]
    MalformedSet { argument: String },
}
