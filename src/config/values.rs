//! Values as given (TOML, environment or flag) and their conversion to typed settings.
//!
//! Converters return the problem as "expected ..., got ..." text; the caller adds
//! the key and the source.

use std::net::{Ipv4Addr, Ipv6Addr, SocketAddr};
use std::path::PathBuf;
use std::time::Duration;

use super::settings::{LogFormat, MetricsListen};
use super::source::Source;
use super::units::{UnitError, parse_byte_size, parse_duration};

/// A value before conversion: environment variables and flags are always text,
/// TOML may also give integers and arrays.
#[derive(Debug, Clone)]
pub(super) enum Raw {
    Text(String),
    Integer(i64),
    Boolean(bool),
    List(Vec<Given>),
    /// A TOML table's fields, in file order.
    Table(Vec<(String, Given)>),
    /// A TOML value of a type no key accepts, described for the error message ("a float").
    Unsupported(&'static str),
}

/// A raw value and where it came from.
#[derive(Debug, Clone)]
pub(super) struct Given {
    pub raw: Raw,
    pub from: Source,
}

/// Why a given value was refused; `from` can be an item inside a list rather than the list.
#[derive(Debug)]
pub(super) struct Rejection {
    pub from: Source,
    pub problem: String,
}

type Converter<T> = fn(&Raw) -> Result<T, String>;

/// Converts a single value, attaching its source to any problem.
pub(super) fn convert<T>(given: &Given, converter: Converter<T>) -> Result<T, Rejection> {
    converter(&given.raw).map_err(|problem| Rejection {
        from: given.from.clone(),
        problem,
    })
}

fn expected(what: &str, got: &Raw) -> String {
    format!("expected {what}, got {}", describe(got))
}

fn describe(raw: &Raw) -> String {
    match raw {
        Raw::Text(text) => format!("{text:?}"),
        Raw::Integer(number) => number.to_string(),
        Raw::Boolean(flag) => flag.to_string(),
        Raw::List(_) => "a list".to_owned(),
        Raw::Table(_) => "a table".to_owned(),
        Raw::Unsupported(description) => (*description).to_owned(),
    }
}

/// Like [`expected`], adding the reason when it tells more than "malformed".
fn expected_unit(what: &str, got: &Raw, error: &UnitError) -> String {
    match error {
        UnitError::Malformed => expected(what, got),
        detail => format!("{} ({detail})", expected(what, got)),
    }
}

const SOCKET_ADDR: &str = "host:port (an IP address and a port, like \"0.0.0.0:7733\")";

pub(super) fn socket_addr(raw: &Raw) -> Result<SocketAddr, String> {
    match raw {
        Raw::Text(text) => text.trim().parse().map_err(|_| expected(SOCKET_ADDR, raw)),
        other => Err(expected(SOCKET_ADDR, other)),
    }
}

/// A socket address, or `off` / empty for none.
pub(super) fn optional_socket_addr(raw: &Raw) -> Result<Option<SocketAddr>, String> {
    const WHAT: &str = "host:port or \"off\"";
    match raw {
        Raw::Text(text) if matches!(text.trim(), "" | "off") => Ok(None),
        Raw::Text(text) => text
            .trim()
            .parse()
            .map(Some)
            .map_err(|_| expected(WHAT, raw)),
        other => Err(expected(WHAT, other)),
    }
}

/// `"auto"`, `"off"` (or empty), or a `host:port`.
pub(super) fn metrics_listen(raw: &Raw) -> Result<MetricsListen, String> {
    const WHAT: &str = "host:port, \"auto\" or \"off\"";
    match raw {
        Raw::Text(text) if text.trim() == "auto" => Ok(MetricsListen::Auto),
        Raw::Text(_) => match optional_socket_addr(raw) {
            Ok(Some(addr)) => Ok(MetricsListen::At(addr)),
            Ok(None) => Ok(MetricsListen::Off),
            Err(_) => Err(expected(WHAT, raw)),
        },
        other => Err(expected(WHAT, other)),
    }
}

/// A group whose members may use a local socket (`admin.group`,
/// `gateway.group`): a name or a number, `""` for none.
pub(super) fn group(raw: &Raw) -> Result<Option<String>, String> {
    match raw {
        Raw::Text(text) if text.is_empty() => Ok(None),
        Raw::Text(text) => Ok(Some(text.clone())),
        Raw::Integer(gid) if *gid >= 0 => Ok(Some(gid.to_string())),
        _ => Err("expected a group name or number, or \"\" for none".into()),
    }
}

/// A path, or empty for none (the daemon then computes a platform default).
pub(super) fn optional_path(raw: &Raw) -> Result<Option<PathBuf>, String> {
    match raw {
        Raw::Text(text) if text.is_empty() => Ok(None),
        Raw::Text(text) => Ok(Some(PathBuf::from(text))),
        other => Err(expected("a path", other)),
    }
}

const DURATION: &str = "a duration like \"30s\" or \"250ms\"";

/// A duration string, or a bare TOML integer meaning seconds.
pub(super) fn duration(raw: &Raw) -> Result<Duration, String> {
    match raw {
        Raw::Text(text) => {
            parse_duration(text).map_err(|error| expected_unit(DURATION, raw, &error))
        }
        Raw::Integer(seconds) => u64::try_from(*seconds)
            .map(Duration::from_secs)
            .map_err(|_| expected(DURATION, raw)),
        other => Err(expected(DURATION, other)),
    }
}

/// A duration that must not be zero, for timeouts and intervals.
pub(super) fn nonzero_duration(raw: &Raw) -> Result<Duration, String> {
    match duration(raw)? {
        Duration::ZERO => Err(expected(
            "a non-zero duration like \"30s\" or \"250ms\"",
            raw,
        )),
        nonzero => Ok(nonzero),
    }
}

/// A browser certificate's validity: browsers pin none valid for longer
/// than 14 days, and rotation runs at half of it.
pub(super) fn certificate_validity(raw: &Raw) -> Result<Duration, String> {
    use crate::browser::{MAX_VALIDITY, MIN_VALIDITY};
    let validity = duration(raw)?;
    match (MIN_VALIDITY..=MAX_VALIDITY - Duration::from_secs(1)).contains(&validity) {
        true => Ok(validity),
        false => Err(expected(
            "a duration from \"2s\" to 14 days less a second, e.g. \"168h\" (browsers pin no certificate valid for longer)",
            raw,
        )),
    }
}

const BYTE_SIZE: &str = "a byte size like \"64KiB\", \"8MiB\" or 1048576";

/// A byte size string, or a TOML integer counting bytes.
fn byte_size(raw: &Raw) -> Result<u64, String> {
    match raw {
        Raw::Text(text) => {
            parse_byte_size(text).map_err(|error| expected_unit(BYTE_SIZE, raw, &error))
        }
        Raw::Integer(bytes) => u64::try_from(*bytes).map_err(|_| expected(BYTE_SIZE, raw)),
        other => Err(expected(BYTE_SIZE, other)),
    }
}

/// The largest value a QUIC variable-length integer holds, which bounds flow-control windows.
const QUIC_VARINT_MAX: u64 = (1 << 62) - 1;

/// A flow-control window: a zero window would stall every transfer.
pub(super) fn window_size(raw: &Raw) -> Result<u64, String> {
    match byte_size(raw)? {
        bytes @ 1..=QUIC_VARINT_MAX => Ok(bytes),
        _ => Err(expected("a non-zero byte size below 4EiB", raw)),
    }
}

/// A socket buffer or a memory bound: non-zero, and within what the
/// kernel's `int` takes.
pub(super) fn buffer_size(raw: &Raw) -> Result<usize, String> {
    match byte_size(raw)? {
        bytes @ 1..=0x3fff_ffff => Ok(bytes as usize),
        _ => Err(expected("a non-zero byte size below 1GiB", raw)),
    }
}

/// The RPC message limit: it travels as a u32 length prefix, and below 1KiB not even headers fit.
pub(super) fn message_size(raw: &Raw) -> Result<u32, String> {
    byte_size(raw)?
        .try_into()
        .ok()
        .filter(|bytes| *bytes >= 1024)
        .ok_or_else(|| expected("a byte size of at least 1KiB and below 4GiB", raw))
}

/// A TOML boolean, or `true` / `false` as text (environment, flags).
pub(super) fn switch(raw: &Raw) -> Result<bool, String> {
    match raw {
        Raw::Boolean(flag) => Ok(*flag),
        Raw::Text(text) if text.trim() == "true" => Ok(true),
        Raw::Text(text) if text.trim() == "false" => Ok(false),
        other => Err(expected("true or false", other)),
    }
}

/// A byte count of at least 1 KiB, as a u64.
pub(super) fn byte_budget(raw: &Raw) -> Result<u64, String> {
    match byte_size(raw)? {
        bytes @ 1024.. => Ok(bytes),
        _ => Err(expected("a byte size of at least 1KiB", raw)),
    }
}

const POSITIVE: &str = "a positive integer";

fn positive_u64(raw: &Raw) -> Result<u64, String> {
    let number = match raw {
        Raw::Text(text) => text.trim().parse::<u64>().ok(),
        Raw::Integer(number) => u64::try_from(*number).ok(),
        _ => None,
    };
    number
        .filter(|number| *number != 0)
        .ok_or_else(|| expected(POSITIVE, raw))
}

pub(super) fn positive_usize(raw: &Raw) -> Result<usize, String> {
    usize::try_from(positive_u64(raw)?)
        .map_err(|_| expected(&format!("{POSITIVE} up to {}", usize::MAX), raw))
}

pub(super) fn positive_u32(raw: &Raw) -> Result<u32, String> {
    u32::try_from(positive_u64(raw)?)
        .map_err(|_| expected(&format!("{POSITIVE} up to {}", u32::MAX), raw))
}

/// Log filter directives; their syntax is checked where the logger is built.
pub(super) fn log_filter(raw: &Raw) -> Result<String, String> {
    match raw {
        Raw::Text(text) if !text.trim().is_empty() => Ok(text.trim().to_owned()),
        other => Err(expected(
            "log filter directives like \"info\" or \"warn,peerd=debug\"",
            other,
        )),
    }
}

pub(super) fn log_format(raw: &Raw) -> Result<LogFormat, String> {
    match raw {
        Raw::Text(text) if text.trim() == "text" => Ok(LogFormat::Text),
        Raw::Text(text) if text.trim() == "json" => Ok(LogFormat::Json),
        other => Err(expected("\"text\" or \"json\"", other)),
    }
}

const PEER: &str = "\"<node-id>@<host>:<port>\"";

/// A list of peer addresses: a TOML array of strings, or comma-separated text
/// (environment variables and flags). Empty text is the empty list.
pub(super) fn peer_list(given: &Given) -> Result<Vec<String>, Rejection> {
    checked_list(given, PEER, peer_entry)
}

const SERVICE: &str = "\"<name>@<version>\"";

/// A list of services to announce, like `peer_list` but of `name@version`.
pub(super) fn service_list(given: &Given) -> Result<Vec<String>, Rejection> {
    checked_list(given, SERVICE, service_entry)
}

fn service_entry(raw: &Raw) -> Result<String, String> {
    let valid_name = |name: &str| {
        (1..=128).contains(&name.len())
            && name
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"._-/".contains(&b))
    };
    match raw {
        Raw::Text(text) => match text.split_once('@') {
            Some((name, version)) if valid_name(name) && (1..=64).contains(&version.len()) => {
                Ok(text.clone())
            }
            _ => Err(format!(
                "{} (names use letters, digits and . _ - /; a version is 1 to 64 characters)",
                expected(SERVICE, raw)
            )),
        },
        other => Err(expected(SERVICE, other)),
    }
}

fn checked_list(
    given: &Given,
    what: &str,
    entry: fn(&Raw) -> Result<String, String>,
) -> Result<Vec<String>, Rejection> {
    let rejection = |from: &Source, problem| Rejection {
        from: from.clone(),
        problem,
    };
    match &given.raw {
        Raw::List(items) => items
            .iter()
            .map(|item| entry(&item.raw).map_err(|problem| rejection(&item.from, problem)))
            .collect(),
        Raw::Text(text) => text
            .split(',')
            .map(str::trim)
            .filter(|item| !item.is_empty())
            .map(|item| {
                entry(&Raw::Text(item.to_owned()))
                    .map_err(|problem| rejection(&given.from, problem))
            })
            .collect(),
        other => Err(rejection(
            &given.from,
            expected(&format!("a list of {what} strings"), other),
        )),
    }
}

fn peer_entry(raw: &Raw) -> Result<String, String> {
    match raw {
        Raw::Text(text) => check_peer_address(text)
            .map(|()| text.clone())
            .map_err(|reason| format!("{} ({reason})", expected(PEER, raw))),
        other => Err(expected(PEER, other)),
    }
}

/// Length of a node id: an Ed25519 public key (32 bytes) in unpadded base32.
const NODE_ID_LEN: usize = 52;

/// Checks only the shape of `<node-id>@<host>:<port>`; resolving and dialing happen later.
fn check_peer_address(text: &str) -> Result<(), &'static str> {
    let (id, address) = text
        .split_once('@')
        .ok_or("'@' is missing between node id and address")?;
    let is_base32 = |byte: u8| matches!(byte, b'a'..=b'z' | b'2'..=b'7');
    if id.len() != NODE_ID_LEN || !id.bytes().all(is_base32) {
        return Err("the node id must be 52 characters from a-z and 2-7");
    }
    let (host, port) = address
        .rsplit_once(':')
        .ok_or("':' is missing before the port")?;
    if !is_dialable_port(port) {
        return Err("the port must be a number from 1 to 65535");
    }
    if !is_valid_host(host) {
        return Err("the host must be a DNS name, an IPv4 address or an IPv6 address in brackets");
    }
    Ok(())
}

fn is_dialable_port(port: &str) -> bool {
    port.bytes().all(|byte| byte.is_ascii_digit())
        && port.parse::<u16>().is_ok_and(|number| number != 0)
}

fn is_valid_host(host: &str) -> bool {
    match host
        .strip_prefix('[')
        .and_then(|rest| rest.strip_suffix(']'))
    {
        Some(v6) => v6.parse::<Ipv6Addr>().is_ok(),
        None => host.parse::<Ipv4Addr>().is_ok() || is_dns_name(host),
    }
}

fn is_dns_name(host: &str) -> bool {
    let name = host.strip_suffix('.').unwrap_or(host);
    let is_label = |label: &str| {
        (1..=63).contains(&label.len())
            && label
                .bytes()
                .all(|byte| byte.is_ascii_alphanumeric() || byte == b'-')
            && !label.starts_with('-')
            && !label.ends_with('-')
    };
    // A numeric last label means a mistyped IPv4 address ("10.0.0.256"), not a name.
    let is_numeric = |label: &str| label.bytes().all(|byte| byte.is_ascii_digit());
    (1..=253).contains(&name.len())
        && name.split('.').all(is_label)
        && !name.rsplit('.').next().is_some_and(is_numeric)
}

#[cfg(test)]
mod tests {
    use super::*;

    const ID: &str = "abcdefghijklmnopqrstuvwxyz234567abcdefghijklmnopqrst";

    fn text(value: &str) -> Raw {
        Raw::Text(value.to_owned())
    }

    fn from_env(raw: Raw) -> Given {
        Given {
            raw,
            from: Source::Env {
                var: "PEERD_PEERS".into(),
            },
        }
    }

    #[test]
    fn peer_addresses_of_every_host_kind_are_accepted() {
        for host in [
            "example.com",
            "node-1.example.com.",
            "10.0.0.1",
            "[::1]",
            "localhost",
        ] {
            let address = format!("{ID}@{host}:7733");
            assert_eq!(check_peer_address(&address), Ok(()), "{address}");
        }
    }

    #[test]
    fn malformed_peer_addresses_are_rejected() {
        let bad = [
            "example.com:7733".to_owned(),
            format!("{}@example.com:7733", &ID[1..]),
            format!("{}@example.com:7733", ID.to_uppercase()),
            format!("{}1@example.com:7733", &ID[1..]),
            "@example.com:7733".to_owned(),
            format!("{ID}@example.com"),
            format!("{ID}@example.com:0"),
            format!("{ID}@example.com:65536"),
            format!("{ID}@example.com:+80"),
            format!("{ID}@:7733"),
            format!("{ID}@::1:7733"),
            format!("{ID}@[::g]:7733"),
            format!("{ID}@10.0.0.256:7733"),
            format!("{ID}@-bad.example:7733"),
            format!("{ID}@under_score.example:7733"),
        ];
        for address in bad {
            assert!(check_peer_address(&address).is_err(), "{address}");
        }
    }

    #[test]
    fn comma_separated_peer_lists_are_split_and_trimmed() {
        let list = format!(" {ID}@a.example:1 ,{ID}@b.example:2,, ");
        let peers = peer_list(&from_env(text(&list))).expect("valid list");
        assert_eq!(
            peers,
            [format!("{ID}@a.example:1"), format!("{ID}@b.example:2")]
        );
        let none = peer_list(&from_env(text(""))).expect("empty list");
        assert!(none.is_empty());
    }

    #[test]
    fn a_bad_list_item_is_reported_at_the_item() {
        let item_source = Source::Env { var: "ITEM".into() };
        let list = Raw::List(vec![Given {
            raw: Raw::Integer(5),
            from: item_source.clone(),
        }]);
        let rejection = peer_list(&from_env(list)).expect_err("not a string");
        assert_eq!(rejection.from, item_source);
        assert_eq!(
            rejection.problem,
            "expected \"<node-id>@<host>:<port>\", got 5"
        );
    }

    #[test]
    fn counts_must_be_positive_and_fit() {
        assert_eq!(positive_usize(&text(" 10 ")), Ok(10));
        assert_eq!(positive_usize(&Raw::Integer(3)), Ok(3));
        assert_eq!(
            positive_usize(&text("ten")),
            Err("expected a positive integer, got \"ten\"".into())
        );
        assert!(positive_usize(&Raw::Integer(0)).is_err());
        assert!(positive_usize(&Raw::Integer(-1)).is_err());
        assert!(positive_u32(&text("4294967296")).is_err());
        assert!(positive_u32(&Raw::Unsupported("a float")).is_err());
    }

    #[test]
    fn durations_accept_toml_integers_as_seconds() {
        assert_eq!(duration(&Raw::Integer(30)), Ok(Duration::from_secs(30)));
        assert!(duration(&Raw::Integer(-1)).is_err());
        assert_eq!(
            duration(&text("soon")),
            Err("expected a duration like \"30s\" or \"250ms\", got \"soon\"".into())
        );
        assert_eq!(
            duration(&text("30")),
            Err(
                "expected a duration like \"30s\" or \"250ms\", got \"30\" (a unit is missing)"
                    .into()
            )
        );
    }

    #[test]
    fn timeouts_must_not_be_zero() {
        assert!(nonzero_duration(&text("0s")).is_err());
        assert!(nonzero_duration(&Raw::Integer(0)).is_err());
        assert_eq!(nonzero_duration(&text("1ms")), Ok(Duration::from_millis(1)));
    }

    #[test]
    fn byte_sizes_are_bounded_where_the_protocol_needs_it() {
        assert_eq!(window_size(&text("1MiB")), Ok(1 << 20));
        assert!(window_size(&Raw::Integer(0)).is_err());
        assert!(window_size(&text("4096PiB")).is_err());
        assert_eq!(message_size(&text("1KiB")), Ok(1024));
        assert!(message_size(&text("1023")).is_err());
        assert!(message_size(&text("4GiB")).is_err());
        assert!(message_size(&Raw::Integer(-4)).is_err());
        assert_eq!(buffer_size(&text("4MiB")), Ok(4 << 20));
        assert!(buffer_size(&Raw::Integer(0)).is_err());
        assert!(buffer_size(&text("1GiB")).is_err());
    }

    #[test]
    fn metrics_address_can_be_switched_off() {
        assert_eq!(optional_socket_addr(&text("off")), Ok(None));
        assert_eq!(optional_socket_addr(&text("")), Ok(None));
        assert_eq!(
            optional_socket_addr(&text("127.0.0.1:9733")),
            Ok(Some(SocketAddr::from(([127, 0, 0, 1], 9733))))
        );
        assert!(optional_socket_addr(&text("on")).is_err());
    }

    #[test]
    fn the_metrics_listener_is_auto_off_or_an_address() {
        assert_eq!(metrics_listen(&text("auto")), Ok(MetricsListen::Auto));
        assert_eq!(metrics_listen(&text("off")), Ok(MetricsListen::Off));
        assert_eq!(
            metrics_listen(&text("127.0.0.1:9733")),
            Ok(MetricsListen::At(SocketAddr::from(([127, 0, 0, 1], 9733))))
        );
        let wrong = metrics_listen(&text("automatic")).unwrap_err();
        assert!(wrong.contains("\"auto\""), "{wrong}");
    }

    #[test]
    fn socket_addresses_need_an_ip_and_a_port() {
        assert_eq!(
            socket_addr(&text("[::1]:7733")),
            Ok(SocketAddr::from((Ipv6Addr::LOCALHOST, 7733)))
        );
        assert_eq!(
            socket_addr(&text("nowhere")),
            Err(format!("expected {SOCKET_ADDR}, got \"nowhere\""))
        );
    }

    #[test]
    fn log_settings_are_checked() {
        assert_eq!(log_format(&text("json")), Ok(LogFormat::Json));
        assert!(log_format(&text("xml")).is_err());
        assert_eq!(log_filter(&text(" info ")), Ok("info".into()));
        assert!(log_filter(&text("  ")).is_err());
    }
}
