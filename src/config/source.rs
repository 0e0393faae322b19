//! Where a configuration value came from, so that every error can point at it.

use std::fmt;
use std::path::{Path, PathBuf};

/// Where one configuration value came from.
///
/// `Display` reads as the tail of an error message: "in /etc/peerd/peerd.toml:12:19",
/// "from environment variable PEERD_LISTEN", "from flag --listen".
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Source {
    Default,
    /// `line` and `column` are 1-based; the column counts characters, not bytes.
    File {
        path: PathBuf,
        line: usize,
        column: usize,
    },
    Env {
        var: String,
    },
    Flag {
        flag: String,
    },
}

impl Source {
    /// The position of byte `offset` of `text`, the contents of the file at `path`.
    pub(super) fn in_file(path: &Path, text: &str, offset: usize) -> Self {
        let (line, column) = line_and_column(text, offset);
        Source::File {
            path: path.to_owned(),
            line,
            column,
        }
    }
}

impl fmt::Display for Source {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Source::Default => f.write_str("from the built-in default"),
            Source::File { path, line, column } => {
                write!(f, "in {}:{line}:{column}", path.display())
            }
            Source::Env { var } => write!(f, "from environment variable {var}"),
            Source::Flag { flag } => write!(f, "from flag {flag}"),
        }
    }
}

/// Who named the config file: a command-line flag or an environment variable.
///
/// `Display` reads as "--config" or "environment variable PEERD_CONFIG".
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Origin {
    Flag { flag: String },
    Env { var: String },
}

impl fmt::Display for Origin {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Origin::Flag { flag } => f.write_str(flag),
            Origin::Env { var } => write!(f, "environment variable {var}"),
        }
    }
}

/// 1-based line and column of byte `offset` in `text`, counting columns in characters.
///
/// An offset past the end or inside a character is moved back to the nearest
/// character boundary, so any offset gives a position.
pub(super) fn line_and_column(text: &str, offset: usize) -> (usize, usize) {
    let end = (0..=offset.min(text.len()))
        .rev()
        .find(|&index| text.is_char_boundary(index))
        .unwrap_or(0);
    let before = &text[..end];
    let line_start = before.rfind('\n').map_or(0, |newline| newline + 1);
    let line = before.matches('\n').count() + 1;
    let column = before[line_start..].chars().count() + 1;
    (line, column)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn offsets_become_one_based_lines_and_columns() {
        let text = "a = 1\nbb = \"x\"\n";
        assert_eq!(line_and_column(text, 0), (1, 1));
        assert_eq!(line_and_column(text, 4), (1, 5));
        assert_eq!(line_and_column(text, 6), (2, 1));
        assert_eq!(line_and_column(text, 11), (2, 6));
    }

    #[test]
    fn columns_count_characters_not_bytes() {
        assert_eq!(line_and_column("é = 1", 5), (1, 5));
    }

    #[test]
    fn odd_offsets_do_not_panic() {
        assert_eq!(line_and_column("é", 1), (1, 1));
        assert_eq!(line_and_column("ab\n", 99), (2, 1));
        assert_eq!(line_and_column("", 3), (1, 1));
    }

    #[test]
    fn sources_read_as_message_tails() {
        let file = Source::in_file(Path::new("/etc/peerd.toml"), "\nx = 1", 5);
        assert_eq!(file.to_string(), "in /etc/peerd.toml:2:5");
        let env = Source::Env {
            var: "PEERD_LISTEN".into(),
        };
        assert_eq!(env.to_string(), "from environment variable PEERD_LISTEN");
        let flag = Source::Flag {
            flag: "--listen".into(),
        };
        assert_eq!(flag.to_string(), "from flag --listen");
    }
}
