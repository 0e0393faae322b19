//! Human-friendly durations ("1h30m", "250ms") and byte sizes ("8MiB", "4kB").
//!
//! Printing is exact: whatever `format_*` prints, `parse_*` reads back to the same value.

use std::time::Duration;

/// Why a duration or byte size could not be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum UnitError {
    #[error("not a number followed by a unit")]
    Malformed,
    #[error("a unit is missing")]
    MissingUnit,
    #[error("unknown unit {0:?}")]
    UnknownUnit(String),
    #[error("too large")]
    Overflow,
}

const SECONDS_PER_MINUTE: u64 = 60;
const SECONDS_PER_HOUR: u64 = 60 * SECONDS_PER_MINUTE;

/// Reads a duration written as number-unit groups, e.g. `10s`, `250ms`, `1h30m`.
///
/// Units: `h`, `m`, `s`, `ms`, `us`, `ns`. A bare number is rejected because it
/// would be ambiguous between seconds and milliseconds.
pub fn parse_duration(text: &str) -> Result<Duration, UnitError> {
    let mut rest = text.trim();
    if rest.is_empty() {
        return Err(UnitError::Malformed);
    }
    let mut total = Duration::ZERO;
    while !rest.is_empty() {
        let (number, after_number) = split_number(rest)?;
        let unit_len = after_number
            .find(|c: char| !c.is_ascii_alphabetic())
            .unwrap_or(after_number.len());
        let (unit, after_unit) = after_number.split_at(unit_len);
        if unit.is_empty() && !after_unit.is_empty() {
            return Err(UnitError::Malformed);
        }
        let part = duration_of(number, unit)?;
        total = total.checked_add(part).ok_or(UnitError::Overflow)?;
        rest = after_unit;
    }
    Ok(total)
}

/// Splits leading ASCII digits off `text` and reads them as a number.
fn split_number(text: &str) -> Result<(u64, &str), UnitError> {
    let digits_len = text
        .find(|c: char| !c.is_ascii_digit())
        .unwrap_or(text.len());
    if digits_len == 0 {
        return Err(UnitError::Malformed);
    }
    let (digits, rest) = text.split_at(digits_len);
    let number = digits.parse().map_err(|_| UnitError::Overflow)?;
    Ok((number, rest))
}

fn duration_of(number: u64, unit: &str) -> Result<Duration, UnitError> {
    let seconds = |per_unit: u64| {
        number
            .checked_mul(per_unit)
            .map(Duration::from_secs)
            .ok_or(UnitError::Overflow)
    };
    match unit {
        "h" => seconds(SECONDS_PER_HOUR),
        "m" => seconds(SECONDS_PER_MINUTE),
        "s" => seconds(1),
        "ms" => Ok(Duration::from_millis(number)),
        "us" => Ok(Duration::from_micros(number)),
        "ns" => Ok(Duration::from_nanos(number)),
        "" => Err(UnitError::MissingUnit),
        other => Err(UnitError::UnknownUnit(other.to_owned())),
    }
}

/// Prints a duration in the largest units that keep it exact, e.g. `1h30m`, `250ms`.
pub fn format_duration(duration: Duration) -> String {
    if duration.is_zero() {
        return "0s".to_owned();
    }
    let seconds = duration.as_secs();
    let nanos = u64::from(duration.subsec_nanos());
    let parts = [
        (seconds / SECONDS_PER_HOUR, "h"),
        (seconds % SECONDS_PER_HOUR / SECONDS_PER_MINUTE, "m"),
        (seconds % SECONDS_PER_MINUTE, "s"),
        (nanos / 1_000_000, "ms"),
        (nanos / 1_000 % 1_000, "us"),
        (nanos % 1_000, "ns"),
    ];
    parts
        .iter()
        .filter(|(count, _)| *count != 0)
        .map(|(count, unit)| format!("{count}{unit}"))
        .collect()
}

const KIB: u64 = 1 << 10;
const MIB: u64 = 1 << 20;
const GIB: u64 = 1 << 30;
const TIB: u64 = 1 << 40;

/// Units tried when printing, largest first; binary before decimal because
/// buffer sizes are usually powers of two.
const BYTE_UNITS: [(&str, u64); 8] = [
    ("TiB", TIB),
    ("GiB", GIB),
    ("MiB", MIB),
    ("KiB", KIB),
    ("TB", 1_000_000_000_000),
    ("GB", 1_000_000_000),
    ("MB", 1_000_000),
    ("kB", 1_000),
];

/// Reads a byte size: a plain number of bytes (`1000`) or a number with a unit
/// (`64KiB`, `8MiB`, `1GiB`, `4kB`). `kB`/`MB`/`GB`/`TB` count in thousands,
/// `KiB`/`MiB`/`GiB`/`TiB` in 1024s; `B` and `KB` are accepted too.
pub fn parse_byte_size(text: &str) -> Result<u64, UnitError> {
    let (number, unit) = split_number(text.trim())?;
    number
        .checked_mul(bytes_per_unit(unit.trim_start())?)
        .ok_or(UnitError::Overflow)
}

fn bytes_per_unit(unit: &str) -> Result<u64, UnitError> {
    match unit {
        "" | "B" => Ok(1),
        "KB" => Ok(1_000),
        _ => BYTE_UNITS
            .iter()
            .find(|(name, _)| *name == unit)
            .map(|(_, size)| *size)
            .ok_or_else(|| UnitError::UnknownUnit(unit.to_owned())),
    }
}

/// Prints a byte size in the largest unit that keeps it exact, e.g. `8MiB`, `4kB`, `1500`.
pub fn format_byte_size(bytes: u64) -> String {
    BYTE_UNITS
        .iter()
        .find(|(_, size)| bytes != 0 && bytes.is_multiple_of(*size))
        .map_or_else(
            || bytes.to_string(),
            |(name, size)| format!("{}{name}", bytes / size),
        )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_in_single_units() {
        assert_eq!(parse_duration("250ms"), Ok(Duration::from_millis(250)));
        assert_eq!(parse_duration("10s"), Ok(Duration::from_secs(10)));
        assert_eq!(parse_duration("5m"), Ok(Duration::from_secs(300)));
        assert_eq!(parse_duration("1h"), Ok(Duration::from_secs(3600)));
        assert_eq!(parse_duration("7us"), Ok(Duration::from_micros(7)));
        assert_eq!(parse_duration("9ns"), Ok(Duration::from_nanos(9)));
        assert_eq!(parse_duration("0s"), Ok(Duration::ZERO));
    }

    #[test]
    fn durations_in_combined_units() {
        assert_eq!(parse_duration("1h30m"), Ok(Duration::from_secs(5400)));
        assert_eq!(parse_duration(" 1s500ms "), Ok(Duration::from_millis(1500)));
    }

    #[test]
    fn malformed_durations_are_rejected() {
        assert_eq!(parse_duration(""), Err(UnitError::Malformed));
        assert_eq!(parse_duration("soon"), Err(UnitError::Malformed));
        assert_eq!(parse_duration("-5s"), Err(UnitError::Malformed));
        assert_eq!(parse_duration("1.5s"), Err(UnitError::Malformed));
        assert_eq!(parse_duration("1h 30m"), Err(UnitError::Malformed));
        assert_eq!(parse_duration("30"), Err(UnitError::MissingUnit));
        assert_eq!(parse_duration("1h30"), Err(UnitError::MissingUnit));
        assert_eq!(
            parse_duration("3days"),
            Err(UnitError::UnknownUnit("days".into()))
        );
    }

    #[test]
    fn oversized_durations_overflow() {
        assert_eq!(
            parse_duration("99999999999999999999s"),
            Err(UnitError::Overflow)
        );
        assert_eq!(
            parse_duration("18446744073709551615h"),
            Err(UnitError::Overflow)
        );
        assert_eq!(
            parse_duration("18446744073709551615s1s"),
            Err(UnitError::Overflow)
        );
    }

    #[test]
    fn durations_print_exactly() {
        assert_eq!(format_duration(Duration::ZERO), "0s");
        assert_eq!(format_duration(Duration::from_secs(10)), "10s");
        assert_eq!(format_duration(Duration::from_secs(300)), "5m");
        assert_eq!(format_duration(Duration::from_secs(5400)), "1h30m");
        assert_eq!(format_duration(Duration::from_millis(1500)), "1s500ms");
        assert_eq!(
            format_duration(Duration::from_nanos(1_002_003)),
            "1ms2us3ns"
        );
    }

    #[test]
    fn printed_durations_parse_back() {
        for duration in [
            Duration::from_secs(90061),
            Duration::new(7, 123_456_789),
            Duration::MAX,
        ] {
            assert_eq!(parse_duration(&format_duration(duration)), Ok(duration));
        }
    }

    #[test]
    fn byte_sizes_in_every_unit() {
        assert_eq!(parse_byte_size("1000"), Ok(1000));
        assert_eq!(parse_byte_size("12B"), Ok(12));
        assert_eq!(parse_byte_size("4kB"), Ok(4000));
        assert_eq!(parse_byte_size("4KB"), Ok(4000));
        assert_eq!(parse_byte_size("2MB"), Ok(2_000_000));
        assert_eq!(parse_byte_size("64KiB"), Ok(64 * 1024));
        assert_eq!(parse_byte_size("8MiB"), Ok(8 * 1024 * 1024));
        assert_eq!(parse_byte_size("1GiB"), Ok(1 << 30));
        assert_eq!(parse_byte_size(" 8 MiB "), Ok(8 * 1024 * 1024));
    }

    #[test]
    fn malformed_byte_sizes_are_rejected() {
        assert_eq!(parse_byte_size(""), Err(UnitError::Malformed));
        assert_eq!(parse_byte_size("lots"), Err(UnitError::Malformed));
        assert_eq!(parse_byte_size("-1"), Err(UnitError::Malformed));
        assert_eq!(parse_byte_size("MiB"), Err(UnitError::Malformed));
        assert_eq!(
            parse_byte_size("1.5MiB"),
            Err(UnitError::UnknownUnit(".5MiB".into()))
        );
        assert_eq!(
            parse_byte_size("8mib"),
            Err(UnitError::UnknownUnit("mib".into()))
        );
    }

    #[test]
    fn oversized_byte_sizes_overflow() {
        assert_eq!(
            parse_byte_size("18446744073709551616"),
            Err(UnitError::Overflow)
        );
        assert_eq!(parse_byte_size("16777216TiB"), Err(UnitError::Overflow));
    }

    #[test]
    fn byte_sizes_print_exactly() {
        assert_eq!(format_byte_size(0), "0");
        assert_eq!(format_byte_size(1500), "1500");
        assert_eq!(format_byte_size(4000), "4kB");
        assert_eq!(format_byte_size(8 * 1024 * 1024), "8MiB");
        assert_eq!(format_byte_size(1 << 30), "1GiB");
        assert_eq!(format_byte_size(u64::MAX), u64::MAX.to_string());
    }

    #[test]
    fn printed_byte_sizes_parse_back() {
        for bytes in [0, 1, 1023, 1024, 3_000_000, 5 * TIB, u64::MAX] {
            assert_eq!(parse_byte_size(&format_byte_size(bytes)), Ok(bytes));
        }
    }
}
