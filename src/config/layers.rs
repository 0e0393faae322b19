//! Stacking the layers (file, environment, flags) into one given value per key,
//! then converting each key exactly once.

use std::collections::BTreeMap;

use super::FlagOverride;
use super::error::ConfigError;
use super::keys::{ENV_ALIASES, ENV_NOT_KEYS, KEYS, Key, find};
use super::settings::Settings;
use super::source::Source;
use super::units::format_duration;
use super::values::{Given, Raw, Rejection};

/// The values one layer gives, in the order they apply: later ones win.
pub(super) type Layer = Vec<(&'static Key, Given)>;

/// The winning given value of every key set so far, by key name.
#[derive(Default)]
pub(super) struct Layers {
    given: BTreeMap<&'static str, Given>,
}

impl Layers {
    /// Stacks `layer` on top: its values replace earlier ones.
    pub fn push(&mut self, layer: Layer) {
        for (key, given) in layer {
            self.given.insert(key.name, given);
        }
    }

    /// Converts every given value over the defaults and checks the keys that
    /// depend on each other (once each converts); the problems beside.
    pub fn settle(&self) -> (Settings, Vec<ConfigError>) {
        let mut settings = Settings::default();
        let mut errors = Vec::new();
        for key in KEYS {
            if let Some(given) = self.given.get(key.name)
                && let Err(rejection) = key.apply(&mut settings, given)
            {
                errors.push(invalid(key.name, rejection));
            }
        }
        if errors.is_empty()
            && let Err(e) = self.check_keep_alive(&settings)
        {
            errors.push(e);
        }
        (settings, errors)
    }

    fn source_of(&self, name: &str) -> Source {
        self.given
            .get(name)
            .map_or(Source::Default, |given| given.from.clone())
    }

    /// A keep-alive no shorter than the idle timeout cannot keep anything alive.
    fn check_keep_alive(&self, settings: &Settings) -> Result<(), ConfigError> {
        let transport = &settings.transport;
        if transport.keep_alive_interval < transport.idle_timeout {
            return Ok(());
        }
        let problem = format!(
            "expected less than transport.idle_timeout ({} {}), got {:?}",
            format_duration(transport.idle_timeout),
            self.source_of("transport.idle_timeout"),
            format_duration(transport.keep_alive_interval),
        );
        let key = "transport.keep_alive_interval";
        Err(invalid(
            key,
            Rejection {
                from: self.source_of(key),
                problem,
            },
        ))
    }
}

fn invalid(key: &str, rejection: Rejection) -> ConfigError {
    ConfigError::InvalidValue {
        key: key.to_owned(),
        from: rejection.from,
        problem: rejection.problem,
    }
}

/// The environment layer. Any environment may be passed: only `PEERD_*` and the
/// aliases are read, and an unknown `PEERD_*` variable is an error.
pub(super) fn env_layer(env: &[(String, String)]) -> (Layer, Vec<ConfigError>) {
    let mut ranked = Vec::new();
    let mut errors = Vec::new();
    for (var, value) in env {
        let (rank, key) = match env_key(var) {
            Ok(Some(found)) => found,
            Ok(None) => continue,
            Err(e) => {
                errors.push(e);
                continue;
            }
        };
        // An exported but empty RUST_LOG conventionally means "not set".
        if is_alias_rank(rank) && value.trim().is_empty() {
            continue;
        }
        let given = Given {
            raw: Raw::Text(value.clone()),
            from: Source::Env { var: var.clone() },
        };
        ranked.push((rank, key, given));
    }
    ranked.sort_by_key(|(rank, ..)| *rank);
    let layer = ranked
        .into_iter()
        .map(|(_, key, given)| (key, given))
        .collect();
    (layer, errors)
}

/// The key `var` sets, with its precedence among the variables that can set
/// that key: aliases rank by their place in [`ENV_ALIASES`], the key's own variable highest.
fn env_key(var: &str) -> Result<Option<(usize, &'static Key)>, ConfigError> {
    let alias = ENV_ALIASES
        .iter()
        .enumerate()
        .find(|(_, (alias, _))| *alias == var);
    if let Some((rank, (_, name))) = alias {
        return Ok(find(name).map(|key| (rank, key)));
    }
    if !var.starts_with("PEERD_") || ENV_NOT_KEYS.contains(&var) {
        return Ok(None);
    }
    KEYS.iter()
        .find(|key| key.env_var() == var)
        .map(|key| Some((ENV_ALIASES.len(), key)))
        .ok_or_else(|| ConfigError::UnknownEnvVar {
            var: var.to_owned(),
        })
}

fn is_alias_rank(rank: usize) -> bool {
    rank < ENV_ALIASES.len()
}

/// The command-line layer, in the order the flags were given.
pub(super) fn flag_layer(flags: &[FlagOverride]) -> (Layer, Vec<ConfigError>) {
    let entries = flags.iter().map(|flag| {
        let from = Source::Flag {
            flag: flag.flag.clone(),
        };
        let Some(key) = find(&flag.key) else {
            return Err(ConfigError::UnknownKey {
                key: flag.key.clone(),
                from,
            });
        };
        let raw = Raw::Text(flag.value.clone());
        Ok((key, Given { raw, from }))
    });
    split(entries)
}

/// The entries a layer takes, and the problems of those it refuses, in
/// their order.
pub(super) fn split(
    entries: impl IntoIterator<Item = Result<(&'static Key, Given), ConfigError>>,
) -> (Layer, Vec<ConfigError>) {
    let mut layer = Vec::new();
    let mut errors = Vec::new();
    for entry in entries {
        match entry {
            Ok(taken) => layer.push(taken),
            Err(e) => errors.push(e),
        }
    }
    (layer, errors)
}
