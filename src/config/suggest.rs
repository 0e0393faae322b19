//! "Did you mean …?" for an unknown key or environment variable: the
//! closest known name, if it is close enough to be a typo.

use super::keys::KEYS;

/// The key closest to `name`, as `; did you mean K?`, or nothing.
pub(super) fn key_hint(name: &str) -> String {
    hint(name, KEYS.iter().map(|key| key.name.to_owned()))
}

/// The variable closest to `var`, as `; did you mean V?`, or nothing.
pub(super) fn env_hint(var: &str) -> String {
    hint(var, KEYS.iter().map(|key| key.env_var()))
}

fn hint(name: &str, known: impl Iterator<Item = String>) -> String {
    // A third of the name's length: `max_conections` is a typo of
    // `max_connections`; `zebra` is no typo of `listen`.
    let limit = (name.chars().count() / 3).max(1);
    known
        .map(|candidate| (distance(name, &candidate), candidate))
        .filter(|(d, _)| *d <= limit)
        .min()
        .map(|(_, closest)| format!("; did you mean {closest}?"))
        .unwrap_or_default()
}

/// Levenshtein distance: insertions, deletions and substitutions.
fn distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut row: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut diagonal = row[0];
        row[0] = i + 1;
        for (j, cb) in b.iter().enumerate() {
            let substituted = diagonal + usize::from(ca != *cb);
            diagonal = row[j + 1];
            row[j + 1] = substituted.min(row[j] + 1).min(row[j + 1] + 1);
        }
    }
    row[b.len()]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn distances_count_edits() {
        assert_eq!(distance("kitten", "sitting"), 3);
        assert_eq!(distance("", "abc"), 3);
        assert_eq!(distance("same", "same"), 0);
    }

    #[test]
    fn a_typo_gets_the_key_it_misses_and_a_stranger_gets_nothing() {
        assert_eq!(
            key_hint("transport.max_conections"),
            "; did you mean transport.max_connections?"
        );
        assert_eq!(key_hint("zebra"), "");
        assert_eq!(env_hint("PEERD_LISTN"), "; did you mean PEERD_LISTEN?");
    }
}
