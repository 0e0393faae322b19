//! gRPC metadata at the gateway: which keys pass between an agent's HTTP/2
//! headers and a peerd call's string map, `grpc-timeout`, and the target
//! named by `peerd-node`.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::time::Duration;

use http::{HeaderMap, HeaderName, HeaderValue};

use peerd::identity::NodeId;

/// Metadata naming the node an outbound call goes to.
pub const NODE: &str = "peerd-node";
/// Metadata naming a service whose provider (found through discovery) an
/// outbound call goes to, when `peerd-node` is not given.
pub const SERVICE: &str = "peerd-service";
/// Metadata an exposed service's backend receives: the calling node's id.
pub const CALLER: &str = "peerd-caller";
/// Trailer that carries a status's details on the peerd leg, base64 as in gRPC.
pub const STATUS_DETAILS: &str = "grpc-status-details-bin";

/// Headers HTTP/2 and gRPC use themselves: never forwarded as metadata.
const TRANSPORT_HEADERS: &[&str] = &[
    "content-type",
    "content-length",
    "te",
    "user-agent",
    "host",
    "accept-encoding",
    "connection",
];

/// Whether `key` is application metadata, forwarded across the gateway:
/// everything but the `peerd-` and `grpc-` prefixes and HTTP/2's own headers.
pub fn is_forwarded(key: &str) -> bool {
    !(key.starts_with("peerd-") || key.starts_with("grpc-") || TRANSPORT_HEADERS.contains(&key))
}

/// The forwarded metadata of `headers` as a peerd metadata map. Values
/// that are not visible ASCII are dropped (a `-bin` key's value is
/// base64 text on the wire, and passes as that text).
pub fn to_peerd(headers: &HeaderMap) -> HashMap<String, String> {
    headers
        .iter()
        .filter(|(key, _)| is_forwarded(key.as_str()))
        .filter_map(|(key, value)| Some((key.as_str().to_owned(), value.to_str().ok()?.to_owned())))
        .collect()
}

/// Appends the forwarded entries of a peerd map to `headers`; keys or
/// values HTTP/2 cannot carry are dropped.
pub fn append_from_peerd(headers: &mut HeaderMap, metadata: &HashMap<String, String>) {
    for (key, value) in metadata {
        if !is_forwarded(key) {
            continue;
        }
        let (Ok(name), Ok(value)) = (
            HeaderName::from_bytes(key.as_bytes()),
            HeaderValue::from_str(value),
        ) else {
            continue;
        };
        headers.append(name, value);
    }
}

/// The `grpc-timeout` header's duration (gRPC's PROTOCOL-HTTP2 format: at
/// most 8 digits and a unit), or `None` if absent or malformed.
pub fn grpc_timeout(headers: &HeaderMap) -> Option<Duration> {
    let text = headers.get("grpc-timeout")?.to_str().ok()?;
    let (digits, unit) = text.split_at(text.len().checked_sub(1)?);
    if digits.is_empty() || digits.len() > 8 {
        return None;
    }
    let value: u64 = digits.parse().ok()?;
    Some(match unit {
        "H" => Duration::from_secs(value * 3600),
        "M" => Duration::from_secs(value * 60),
        "S" => Duration::from_secs(value),
        "m" => Duration::from_millis(value),
        "u" => Duration::from_micros(value),
        "n" => Duration::from_nanos(value),
        _ => return None,
    })
}

/// The node an outbound call goes to, and where to dial it if given.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Target {
    pub node: NodeId,
    pub addrs: Vec<SocketAddr>,
}

/// Reads `peerd-node: <node-id>` or `<node-id>@<host:port>`.
pub fn parse_target(value: &str) -> Result<Target, String> {
    let (id, addr) = match value.split_once('@') {
        Some((id, addr)) => (id, Some(addr)),
        None => (value, None),
    };
    let node = id
        .trim()
        .parse::<NodeId>()
        .map_err(|e| format!("{NODE} {value:?} does not start with a node id: {e}"))?;
    let addrs = match addr {
        None => Vec::new(),
        Some(addr) => vec![addr.trim().parse::<SocketAddr>().map_err(|e| {
            format!("{NODE} {value:?}: the address after '@' must be <ip>:<port>: {e}")
        })?],
    };
    Ok(Target { node, addrs })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(pairs: &[(&'static str, &'static str)]) -> HeaderMap {
        let mut map = HeaderMap::new();
        for (key, value) in pairs {
            map.append(*key, HeaderValue::from_static(value));
        }
        map
    }

    #[test]
    fn grpc_timeouts_of_every_unit_are_read_and_malformed_ones_ignored() {
        let read = |text| grpc_timeout(&headers(&[("grpc-timeout", text)]));
        assert_eq!(read("200m"), Some(Duration::from_millis(200)));
        assert_eq!(read("2S"), Some(Duration::from_secs(2)));
        assert_eq!(read("1H"), Some(Duration::from_secs(3600)));
        assert_eq!(read("5u"), Some(Duration::from_micros(5)));
        assert_eq!(read("99999999n"), Some(Duration::from_nanos(99_999_999)));
        assert_eq!(read("123456789m"), None, "more than 8 digits");
        assert_eq!(read("m"), None);
        assert_eq!(read("10x"), None);
        assert_eq!(grpc_timeout(&HeaderMap::new()), None);
    }

    #[test]
    fn only_application_metadata_crosses_the_gateway() {
        let given = headers(&[
            ("x-trace", "abc"),
            ("peerd-node", "n"),
            ("peerd-caller", "spoofed"),
            ("grpc-timeout", "1S"),
            ("content-type", "application/grpc"),
            ("te", "trailers"),
            ("key-bin", "AAEC"),
        ]);
        let map = to_peerd(&given);
        assert_eq!(map.len(), 2, "{map:?}");
        assert_eq!(map["x-trace"], "abc");
        assert_eq!(map["key-bin"], "AAEC");
        let mut back = HeaderMap::new();
        let mut with_reserved = map.clone();
        with_reserved.insert("peerd-caller".into(), "x".into());
        with_reserved.insert("bad key".into(), "x".into());
        append_from_peerd(&mut back, &with_reserved);
        assert_eq!(back.len(), 2);
        assert_eq!(back["x-trace"], "abc");
    }

    #[test]
    fn targets_are_a_node_id_with_an_optional_address() {
        let id = NodeId::from_bytes([7; 32]);
        let plain = parse_target(&id.to_string()).unwrap();
        assert_eq!(
            plain,
            Target {
                node: id,
                addrs: vec![]
            }
        );
        let with_addr = parse_target(&format!("{id}@127.0.0.1:7733")).unwrap();
        assert_eq!(with_addr.addrs, vec!["127.0.0.1:7733".parse().unwrap()]);
        assert!(parse_target("nonsense").unwrap_err().contains("node id"));
        let bad_addr = parse_target(&format!("{id}@localhost")).unwrap_err();
        assert!(bad_addr.contains("<ip>:<port>"), "{bad_addr}");
    }
}
