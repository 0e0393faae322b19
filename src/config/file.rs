//! The TOML file layer: every key found in the file, with the position of its value.

use std::fs;
use std::io;
use std::path::Path;

use toml::Spanned;
use toml::de::{DeTable, DeValue};

use super::error::ConfigError;
use super::keys::{Key, find_in, is_section};
use super::layers::{Layer, split};
use super::source::{Origin, Source, line_and_column};
use super::values::{Given, Raw};

/// Reads the config file named by `origin`; a missing file is an error, never a fallback.
/// The keys it could take, and the problems of those it refused.
pub(super) fn read(path: &Path, origin: &Origin) -> Result<(Layer, Vec<ConfigError>), ConfigError> {
    let text = fs::read_to_string(path).map_err(|cause| match cause.kind() {
        io::ErrorKind::NotFound => ConfigError::MissingFile {
            path: path.to_owned(),
            origin: origin.clone(),
        },
        _ => ConfigError::UnreadableFile {
            path: path.to_owned(),
            origin: origin.clone(),
            cause,
        },
    })?;
    parse(path, &text)
}

fn parse(path: &Path, text: &str) -> Result<(Layer, Vec<ConfigError>), ConfigError> {
    let file = FileText { path, text };
    let document = DeTable::parse(text).map_err(|error| file.syntax_error(&error))?;
    let mut entries = Vec::new();
    file.collect(None, document.get_ref(), &mut entries);
    // The parsed table is ordered by key name; report problems in file order.
    entries.sort_by_key(|(offset, _)| *offset);
    Ok(split(entries.into_iter().map(|(_, entry)| entry)))
}

/// A key's value, or why the key is refused, at the byte offset of the key.
type Entry = (usize, Result<(&'static Key, Given), ConfigError>);

struct FileText<'a> {
    path: &'a Path,
    text: &'a str,
}

impl FileText<'_> {
    fn source(&self, offset: usize) -> Source {
        Source::in_file(self.path, self.text, offset)
    }

    fn syntax_error(&self, error: &toml::de::Error) -> ConfigError {
        let offset = error.span().map_or(0, |span| span.start);
        let (line, column) = line_and_column(self.text, offset);
        ConfigError::Syntax {
            path: self.path.to_owned(),
            line,
            column,
            message: error.message().to_owned(),
        }
    }

    fn collect(&self, section: Option<&str>, table: &DeTable<'_>, entries: &mut Vec<Entry>) {
        for (key, value) in table.iter() {
            let field: &str = key.get_ref();
            let offset = key.span().start;
            match find_in(section, field) {
                Some(found) => entries.push((offset, Ok((found, self.given(value))))),
                None if section.is_none() && is_section(field) => {
                    self.collect_section(field, value, entries);
                }
                None => {
                    let key = section.map_or_else(|| field.to_owned(), |s| format!("{s}.{field}"));
                    let unknown = ConfigError::UnknownKey {
                        key,
                        from: self.source(offset),
                    };
                    entries.push((offset, Err(unknown)));
                }
            }
        }
    }

    fn collect_section(&self, name: &str, value: &Spanned<DeValue<'_>>, entries: &mut Vec<Entry>) {
        match value.get_ref() {
            DeValue::Table(table) => self.collect(Some(name), table, entries),
            other => {
                let offset = value.span().start;
                let not_a_table = ConfigError::InvalidValue {
                    key: name.to_owned(),
                    from: self.source(offset),
                    problem: format!("expected a [{name}] table, got {}", other.type_str()),
                };
                entries.push((offset, Err(not_a_table)));
            }
        }
    }

    fn given(&self, value: &Spanned<DeValue<'_>>) -> Given {
        Given {
            raw: self.raw(value.get_ref()),
            from: self.source(value.span().start),
        }
    }

    fn raw(&self, value: &DeValue<'_>) -> Raw {
        match value {
            DeValue::String(text) => Raw::Text(text.to_string()),
            DeValue::Integer(integer) => i64::from_str_radix(integer.as_str(), integer.radix())
                .map_or(Raw::Unsupported("an integer beyond 64 bits"), Raw::Integer),
            DeValue::Array(items) => Raw::List(items.iter().map(|item| self.given(item)).collect()),
            DeValue::Float(_) => Raw::Unsupported("a float"),
            DeValue::Boolean(flag) => Raw::Boolean(*flag),
            DeValue::Datetime(_) => Raw::Unsupported("a date-time"),
            DeValue::Table(table) => Raw::Table(
                table
                    .iter()
                    .map(|(key, value)| (key.get_ref().to_string(), self.given(value)))
                    .collect(),
            ),
        }
    }
}
