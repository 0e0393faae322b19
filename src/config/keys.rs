//! The table of configuration keys. It alone drives parsing, environment variable
//! names, printing with [`super::Settings::to_toml`] and the sample config file.

use std::path::PathBuf;
use std::time::Duration;

use toml::Value;

use super::gateway;
use super::settings::{MetricsListen, Settings};
use super::units::{format_byte_size, format_duration};
use super::values::{self, Given, Rejection, convert};

/// One configuration key: `name` is `field` or `section.field`.
pub(super) struct Key {
    pub name: &'static str,
    doc: &'static str,
    set: fn(&mut Settings, &Given) -> Result<(), Rejection>,
    show: fn(&Settings) -> Value,
}

/// Environment variables that also set a key, weakest first; the key's own
/// `PEERD_*` variable beats them all.
pub(super) static ENV_ALIASES: &[(&str, &str)] =
    &[("RUST_LOG", "log.level"), ("PEERD_LOG", "log.level")];

/// `PEERD_*` variables that are not keys: the daemon reads them itself.
pub(super) static ENV_NOT_KEYS: &[&str] = &["PEERD_CONFIG"];

impl Key {
    pub fn section(&self) -> Option<&'static str> {
        self.name.split_once('.').map(|(section, _)| section)
    }

    pub fn field(&self) -> &'static str {
        self.name
            .split_once('.')
            .map_or(self.name, |(_, field)| field)
    }

    /// `PEERD_` and the key's name in upper case with `_` for `.`, e.g. `PEERD_RPC_MAX_HANDLERS`.
    pub fn env_var(&self) -> String {
        format!("PEERD_{}", self.name.replace('.', "_").to_ascii_uppercase())
    }

    /// The one-line description printed above the key, naming its environment variables.
    pub fn comment(&self) -> String {
        let aliases = ENV_ALIASES
            .iter()
            .rev()
            .filter(|(_, key)| *key == self.name)
            .map(|(var, _)| format!(", {var}"));
        let env_vars: String = std::iter::once(self.env_var()).chain(aliases).collect();
        format!("{} (env: {env_vars})", self.doc)
    }

    pub fn apply(&self, settings: &mut Settings, given: &Given) -> Result<(), Rejection> {
        (self.set)(settings, given)
    }

    pub fn show(&self, settings: &Settings) -> Value {
        (self.show)(settings)
    }
}

pub(super) fn find(name: &str) -> Option<&'static Key> {
    KEYS.iter().find(|key| key.name == name)
}

/// Looks a key up the way TOML nests it, so that a quoted top-level
/// `"rpc.max_handlers"` is not mistaken for `[rpc] max_handlers`.
pub(super) fn find_in(section: Option<&str>, field: &str) -> Option<&'static Key> {
    KEYS.iter()
        .find(|key| key.section() == section && key.field() == field)
}

pub(super) fn is_section(name: &str) -> bool {
    KEYS.iter().any(|key| key.section() == Some(name))
}

fn text(value: impl ToString) -> Value {
    Value::String(value.to_string())
}

fn duration(value: Duration) -> Value {
    text(format_duration(value))
}

fn bytes(value: u64) -> Value {
    text(format_byte_size(value))
}

fn list(entries: &[String]) -> Value {
    Value::Array(entries.iter().map(text).collect())
}

/// A count as TOML: an integer, or a string when it exceeds TOML's i64 range.
fn count(value: usize) -> Value {
    i64::try_from(value).map_or_else(|_| Value::String(value.to_string()), Value::Integer)
}

/// An unset path prints as "", which loads back as unset.
fn optional_path(path: Option<&PathBuf>) -> Value {
    text(path.map_or_else(String::new, |path| path.display().to_string()))
}

/// Top-level keys first, then each section's keys together: TOML needs that order.
pub(super) static KEYS: &[Key] = &[
    Key {
        name: "listen",
        doc: "Address and port to accept peer connections on",
        set: |s, v| convert(v, values::socket_addr).map(|x| s.listen = x),
        show: |s| text(s.listen),
    },
    Key {
        name: "data_dir",
        doc: "Directory for the node identity and state; \"\" means the platform default",
        set: |s, v| convert(v, values::optional_path).map(|x| s.data_dir = x),
        show: |s| optional_path(s.data_dir.as_ref()),
    },
    Key {
        name: "admin_socket",
        doc: "Path of the local admin socket; \"\" means the platform default",
        set: |s, v| convert(v, values::optional_path).map(|x| s.admin_socket = x),
        show: |s| optional_path(s.admin_socket.as_ref()),
    },
    Key {
        name: "shutdown_grace",
        doc: "How long shutdown waits for work in progress before closing connections",
        set: |s, v| convert(v, values::duration).map(|x| s.shutdown_grace = x),
        show: |s| duration(s.shutdown_grace),
    },
    Key {
        name: "peers",
        doc: "Pinned peers, kept connected: \"<node-id>@<host>:<port>\" entries",
        set: |s, v| values::peer_list(v).map(|x| s.peers = x),
        show: |s| list(&s.peers),
    },
    Key {
        name: "bootstrap",
        doc: "Peers to join the network through: \"<node-id>@<host>:<port>\" entries",
        set: |s, v| values::peer_list(v).map(|x| s.bootstrap = x),
        show: |s| list(&s.bootstrap),
    },
    Key {
        name: "services",
        doc: "Services this node announces for discovery: \"<name>@<version>\" entries",
        set: |s, v| values::service_list(v).map(|x| s.services = x),
        show: |s| list(&s.services),
    },
    Key {
        name: "service_ttl",
        doc: "How long an announcement lives unless refreshed (at 80 % of it); at most 1h",
        set: |s, v| convert(v, values::nonzero_duration).map(|x| s.service_ttl = x),
        show: |s| duration(s.service_ttl),
    },
    Key {
        name: "log.level",
        doc: "Log filter directives in RUST_LOG syntax, e.g. \"info,peerd=debug\"",
        set: |s, v| convert(v, values::log_filter).map(|x| s.log.level = x),
        show: |s| text(&s.log.level),
    },
    Key {
        name: "log.format",
        doc: "Log line format: \"text\" or \"json\"",
        set: |s, v| convert(v, values::log_format).map(|x| s.log.format = x),
        show: |s| text(s.log.format.as_str()),
    },
    Key {
        name: "transport.max_connections",
        doc: "Most connections open at once",
        set: |s, v| convert(v, values::positive_usize).map(|x| s.transport.max_connections = x),
        show: |s| count(s.transport.max_connections),
    },
    Key {
        name: "transport.max_pending_handshakes",
        doc: "Most handshakes in progress at once",
        set: |s, v| {
            convert(v, values::positive_usize).map(|x| s.transport.max_pending_handshakes = x)
        },
        show: |s| count(s.transport.max_pending_handshakes),
    },
    Key {
        name: "transport.max_pending_handshakes_per_ip",
        doc: "Most handshakes in progress at once from one source (an IPv4 address or an IPv6 /64)",
        set: |s, v| {
            convert(v, values::positive_usize)
                .map(|x| s.transport.max_pending_handshakes_per_ip = x)
        },
        show: |s| count(s.transport.max_pending_handshakes_per_ip),
    },
    Key {
        name: "transport.max_concurrent_streams",
        doc: "Most bidirectional streams a peer may open on one connection",
        set: |s, v| {
            convert(v, values::positive_u32).map(|x| s.transport.max_concurrent_streams = x)
        },
        show: |s| Value::Integer(s.transport.max_concurrent_streams.into()),
    },
    Key {
        name: "transport.stream_receive_window",
        doc: "Bytes a peer may send on one stream before it must wait for us to read",
        set: |s, v| convert(v, values::window_size).map(|x| s.transport.stream_receive_window = x),
        show: |s| bytes(s.transport.stream_receive_window),
    },
    Key {
        name: "transport.connection_receive_window",
        doc: "Bytes a peer may send on one connection, all streams together, before it must wait",
        set: |s, v| {
            convert(v, values::window_size).map(|x| s.transport.connection_receive_window = x)
        },
        show: |s| bytes(s.transport.connection_receive_window),
    },
    Key {
        name: "transport.send_window",
        doc: "Bytes we keep in flight unacknowledged on one connection",
        set: |s, v| convert(v, values::window_size).map(|x| s.transport.send_window = x),
        show: |s| bytes(s.transport.send_window),
    },
    Key {
        name: "transport.socket_buffer",
        doc: "Kernel buffer of the UDP socket each way, capped by net.core.rmem_max and wmem_max",
        set: |s, v| convert(v, values::buffer_size).map(|x| s.transport.socket_buffer = x),
        show: |s| bytes(s.transport.socket_buffer as u64),
    },
    Key {
        name: "transport.datagram_buffer",
        doc: "Bytes of datagrams each connection buffers each way before dropping the oldest",
        set: |s, v| convert(v, values::buffer_size).map(|x| s.transport.datagram_buffer = x),
        show: |s| bytes(s.transport.datagram_buffer as u64),
    },
    Key {
        name: "transport.handshake_timeout",
        doc: "How long a dial to one address may take; fresh handshake attempts join a slow one at 2s, 6s, 14s, ..., and a node's next address joins after 250ms",
        set: |s, v| convert(v, values::nonzero_duration).map(|x| s.transport.handshake_timeout = x),
        show: |s| duration(s.transport.handshake_timeout),
    },
    Key {
        name: "transport.idle_timeout",
        doc: "Close a connection after this long without hearing from the peer",
        set: |s, v| convert(v, values::nonzero_duration).map(|x| s.transport.idle_timeout = x),
        show: |s| duration(s.transport.idle_timeout),
    },
    Key {
        name: "transport.keep_alive_interval",
        doc: "Ping a quiet connection this often; must be shorter than idle_timeout",
        set: |s, v| {
            convert(v, values::nonzero_duration).map(|x| s.transport.keep_alive_interval = x)
        },
        show: |s| duration(s.transport.keep_alive_interval),
    },
    Key {
        name: "transport.connection_idle_ttl",
        doc: "Close a connection nothing has used for this long; \"0s\" closes it at once",
        set: |s, v| convert(v, values::duration).map(|x| s.transport.connection_idle_ttl = x),
        show: |s| duration(s.transport.connection_idle_ttl),
    },
    Key {
        name: "rpc.max_message_size",
        doc: "Largest RPC message sent or accepted, from 1KiB to below 4GiB",
        set: |s, v| convert(v, values::message_size).map(|x| s.rpc.max_message_size = x),
        show: |s| bytes(s.rpc.max_message_size.into()),
    },
    Key {
        name: "rpc.default_deadline",
        doc: "Deadline of an RPC call that sets none",
        set: |s, v| convert(v, values::nonzero_duration).map(|x| s.rpc.default_deadline = x),
        show: |s| duration(s.rpc.default_deadline),
    },
    Key {
        name: "rpc.max_call_deadline",
        doc: "Longest deadline a caller may ask for; a longer one is cut to this",
        set: |s, v| convert(v, values::nonzero_duration).map(|x| s.rpc.max_call_deadline = x),
        show: |s| duration(s.rpc.max_call_deadline),
    },
    Key {
        name: "rpc.header_timeout",
        doc: "How long a peer may take to send a request's header, and a unary call's request from the stream's start",
        set: |s, v| convert(v, values::nonzero_duration).map(|x| s.rpc.header_timeout = x),
        show: |s| duration(s.rpc.header_timeout),
    },
    Key {
        name: "rpc.max_handlers",
        doc: "Most requests handled at once in total, shared fairly between source addresses, then callers (one under its share takes a slot of the busiest); more wait for a slot (per connection, transport.max_concurrent_streams bounds them)",
        set: |s, v| convert(v, values::positive_usize).map(|x| s.rpc.max_handlers = x),
        show: |s| count(s.rpc.max_handlers),
    },
    Key {
        name: "rpc.max_metadata_entries",
        doc: "Most metadata entries in one request header",
        set: |s, v| convert(v, values::positive_usize).map(|x| s.rpc.max_metadata_entries = x),
        show: |s| count(s.rpc.max_metadata_entries),
    },
    Key {
        name: "rpc.max_metadata_bytes",
        doc: "Memory one request header's metadata may take, each entry counted as its bytes on the wire + 128",
        set: |s, v| convert(v, values::buffer_size).map(|x| s.rpc.max_metadata_bytes = x),
        show: |s| bytes(s.rpc.max_metadata_bytes as u64),
    },
    Key {
        name: "admin.max_connections",
        doc: "Most admin socket connections at once; a new one takes the slot of the oldest that waits on its client, and at most half wait on the network",
        set: |s, v| convert(v, values::positive_usize).map(|x| s.admin.max_connections = x),
        show: |s| count(s.admin.max_connections),
    },
    Key {
        name: "admin.timeout",
        doc: "How long an admin client may take to send its request, and again to read the answer",
        set: |s, v| convert(v, values::nonzero_duration).map(|x| s.admin.timeout = x),
        show: |s| duration(s.admin.timeout),
    },
    Key {
        name: "admin.group",
        doc: "Group (name or number) of operators who may use the admin socket besides the daemon's user and root; \"\" for none",
        set: |s, v| convert(v, values::group).map(|x| s.admin_group = x),
        show: |s| text(s.admin_group.clone().unwrap_or_default()),
    },
    Key {
        name: "discovery.lookup_timeout",
        doc: "A whole lookup, service search or announcement gives up after this",
        set: |s, v| convert(v, values::nonzero_duration).map(|x| s.discovery.lookup_timeout = x),
        show: |s| duration(s.discovery.lookup_timeout),
    },
    Key {
        name: "discovery.max_lookups",
        doc: "Lookups running at once; more wait for a turn within their deadline",
        set: |s, v| convert(v, values::positive_usize).map(|x| s.discovery.max_lookups = x),
        show: |s| count(s.discovery.max_lookups),
    },
    Key {
        name: "discovery.max_queries_per_lookup",
        doc: "FindNode questions one lookup asks at most",
        set: |s, v| {
            convert(v, values::positive_usize).map(|x| s.discovery.max_queries_per_lookup = x)
        },
        show: |s| count(s.discovery.max_queries_per_lookup),
    },
    Key {
        name: "discovery.learned_dials_per_second",
        doc: "Dials per second (in bursts of as many) to addresses other nodes' answers named",
        set: |s, v| {
            convert(v, values::positive_u32).map(|x| s.discovery.learned_dials_per_second = x)
        },
        show: |s| Value::Integer(s.discovery.learned_dials_per_second.into()),
    },
    Key {
        name: "metrics.listen",
        doc: "Address and port of the HTTP listener for /metrics, /livez and /readyz (docs/metrics.md); \"auto\" is 127.0.0.1:9733, or a free port on 127.0.0.1 when that is taken; \"off\" turns it off",
        set: |s, v| convert(v, values::metrics_listen).map(|x| s.metrics.listen = x),
        show: |s| {
            text(match s.metrics.listen {
                MetricsListen::Off => "off".to_owned(),
                MetricsListen::Auto => "auto".to_owned(),
                MetricsListen::At(addr) => addr.to_string(),
            })
        },
    },
    Key {
        name: "metrics.max_connections",
        doc: "Most metrics connections at once; a new one takes the slot of the oldest",
        set: |s, v| {
            convert(v, values::positive_usize).map(|x| s.metrics.limits.max_connections = x)
        },
        show: |s| count(s.metrics.limits.max_connections),
    },
    Key {
        name: "metrics.timeout",
        doc: "How long a metrics client may take to send its request head, and again to read the answer",
        set: |s, v| convert(v, values::nonzero_duration).map(|x| s.metrics.limits.timeout = x),
        show: |s| duration(s.metrics.limits.timeout),
    },
    Key {
        name: "gateway.socket",
        doc: "Unix socket of the agent gateway (docs/gateway.md); \"\" means agent.sock in the runtime or data directory, \"off\" turns it off",
        set: |s, v| convert(v, gateway::socket).map(|x| s.gateway.socket = x),
        show: |s| gateway::show_socket(&s.gateway.socket),
    },
    Key {
        name: "gateway.listen",
        doc: "Loopback TCP address for the gateway too (any local user can connect to it); \"off\" by default",
        set: |s, v| convert(v, gateway::loopback_listen).map(|x| s.gateway.listen = x),
        show: |s| {
            text(
                s.gateway
                    .listen
                    .map_or_else(|| "off".to_owned(), |a| a.to_string()),
            )
        },
    },
    Key {
        name: "gateway.group",
        doc: "Group (name or number) whose members may use the gateway socket besides the daemon's user and root; \"\" for none",
        set: |s, v| convert(v, values::group).map(|x| s.gateway.group = x),
        show: |s| text(s.gateway.group.clone().unwrap_or_default()),
    },
    Key {
        name: "gateway.max_connections",
        doc: "Most agent connections to the gateway at once",
        set: |s, v| convert(v, values::positive_usize).map(|x| s.gateway.max_connections = x),
        show: |s| count(s.gateway.max_connections),
    },
    Key {
        name: "gateway.max_calls_per_connection",
        doc: "Most calls one agent connection forwards at once; more get RESOURCE_EXHAUSTED",
        set: |s, v| {
            convert(v, values::positive_usize).map(|x| s.gateway.max_calls_per_connection = x)
        },
        show: |s| count(s.gateway.max_calls_per_connection),
    },
    Key {
        name: "gateway.max_calls_per_service",
        doc: "Most calls forwarded at once to one exposed service; more get RESOURCE_EXHAUSTED",
        set: |s, v| convert(v, values::positive_usize).map(|x| s.gateway.max_calls_per_service = x),
        show: |s| count(s.gateway.max_calls_per_service),
    },
    Key {
        name: "gateway.stream_buffer",
        doc: "Messages the gateway queues per streaming call and direction before it stops reading (backpressure)",
        set: |s, v| convert(v, values::positive_usize).map(|x| s.gateway.stream_buffer = x),
        show: |s| count(s.gateway.stream_buffer),
    },
    Key {
        name: "gateway.expose",
        doc: "Services agents serve, exposed to other nodes: [[gateway.expose]] tables of service, target (\"unix:/path\" or \"127.0.0.1:<port>\") and allow (node ids or \"*\")",
        set: |s, v| gateway::expose_list(v).map(|x| s.gateway.expose = x),
        show: |s| gateway::show_expose(&s.gateway.expose),
    },
    Key {
        name: "relay.enabled",
        doc: "Serve as a relay (docs/nat.md): nodes behind NAT hold reservations here, and others reach them through it",
        set: |s, v| convert(v, values::switch).map(|x| s.relay.enabled = x),
        show: |s| Value::Boolean(s.relay.enabled),
    },
    Key {
        name: "relay.max_reservations",
        doc: "Most reservations the relay holds at once; more are refused with RESOURCE_EXHAUSTED",
        set: |s, v| convert(v, values::positive_usize).map(|x| s.relay.limits.max_reservations = x),
        show: |s| count(s.relay.limits.max_reservations),
    },
    Key {
        name: "relay.max_circuits",
        doc: "Most circuits the relay runs at once; more are refused with RESOURCE_EXHAUSTED",
        set: |s, v| convert(v, values::positive_usize).map(|x| s.relay.limits.max_circuits = x),
        show: |s| count(s.relay.limits.max_circuits),
    },
    Key {
        name: "relay.max_circuits_per_node",
        doc: "Most circuits one node may be an end of at once, as caller or target",
        set: |s, v| {
            convert(v, values::positive_usize).map(|x| s.relay.limits.max_circuits_per_node = x)
        },
        show: |s| count(s.relay.limits.max_circuits_per_node),
    },
    Key {
        name: "relay.circuit_bytes",
        doc: "Bytes one circuit may carry, both ways together, before the relay closes it with RESOURCE_EXHAUSTED",
        set: |s, v| convert(v, values::byte_budget).map(|x| s.relay.limits.circuit_bytes = x),
        show: |s| bytes(s.relay.limits.circuit_bytes),
    },
    Key {
        name: "relay.circuit_duration",
        doc: "How long one circuit may last before the relay closes it with DEADLINE_EXCEEDED; rpc.max_call_deadline bounds it too",
        set: |s, v| {
            convert(v, values::nonzero_duration).map(|x| s.relay.limits.circuit_duration = x)
        },
        show: |s| duration(s.relay.limits.circuit_duration),
    },
    Key {
        name: "nat.use_relays",
        doc: "When a netcheck finds this node unreachable, hold a reservation on each pinned peer that serves a relay, and list those relays in Info",
        set: |s, v| convert(v, values::switch).map(|x| s.nat.use_relays = x),
        show: |s| Value::Boolean(s.nat.use_relays),
    },
    Key {
        name: "browser.enabled",
        doc: "Serve browser agents (docs/browser.md): web pages connect over WebTransport, prove their key and call nodes through this daemon",
        set: |s, v| convert(v, values::switch).map(|x| s.browser.enabled = x),
        show: |s| Value::Boolean(s.browser.enabled),
    },
    Key {
        name: "browser.listen",
        doc: "UDP address and port of the WebTransport listener for browser agents; its own port, apart from listen",
        set: |s, v| convert(v, values::socket_addr).map(|x| s.browser.listen = x),
        show: |s| text(s.browser.listen.to_string()),
    },
    Key {
        name: "browser.certificate_validity",
        doc: "How long each WebTransport certificate is valid (at most 14 days less a second); a new one is made every half of it, and GET /browser on the metrics listener lists the current and the next",
        set: |s, v| {
            convert(v, values::certificate_validity).map(|x| s.browser.certificate_validity = x)
        },
        show: |s| duration(s.browser.certificate_validity),
    },
    Key {
        name: "browser.max_sessions",
        doc: "Most browser sessions at once; more are refused",
        set: |s, v| convert(v, values::positive_usize).map(|x| s.browser.max_sessions = x),
        show: |s| count(s.browser.max_sessions),
    },
    Key {
        name: "browser.max_calls_per_session",
        doc: "Most calls one page makes at once (more wait, as QUIC streams do), and most calls nodes make to one page at once (more get RESOURCE_EXHAUSTED)",
        set: |s, v| convert(v, values::positive_usize).map(|x| s.browser.max_calls_per_session = x),
        show: |s| count(s.browser.max_calls_per_session),
    },
    Key {
        name: "browser.datagram_queue",
        doc: "Datagrams waiting for one page, per service it takes them for; more are dropped and counted",
        set: |s, v| convert(v, values::positive_usize).map(|x| s.browser.datagram_queue = x),
        show: |s| count(s.browser.datagram_queue),
    },
];

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sections_are_contiguous_and_after_top_level_keys() {
        let sections: Vec<_> = KEYS.iter().map(Key::section).collect();
        let mut seen = Vec::new();
        for pair in sections.windows(2) {
            if pair[0] != pair[1] {
                assert!(pair[1].is_some(), "top-level key after a section");
                assert!(!seen.contains(&pair[1]), "section {:?} split", pair[1]);
                seen.push(pair[0]);
            }
        }
    }

    #[test]
    fn names_are_unique_and_lower_snake_case() {
        for (index, key) in KEYS.iter().enumerate() {
            assert!(
                KEYS[..index].iter().all(|other| other.name != key.name),
                "{} twice",
                key.name
            );
            let allowed = |c: char| c.is_ascii_lowercase() || c == '_' || c == '.';
            assert!(key.name.chars().all(allowed), "{}", key.name);
        }
    }

    #[test]
    fn env_vars_are_unambiguous() {
        let mut names: Vec<String> = KEYS.iter().map(Key::env_var).collect();
        names.extend(ENV_ALIASES.iter().map(|(var, _)| (*var).to_owned()));
        names.extend(ENV_NOT_KEYS.iter().map(|var| (*var).to_owned()));
        let count = names.len();
        names.sort();
        names.dedup();
        assert_eq!(names.len(), count);
        assert_eq!(
            find("transport.max_connections").map(Key::env_var),
            Some("PEERD_TRANSPORT_MAX_CONNECTIONS".to_owned())
        );
    }

    #[test]
    fn aliases_name_existing_keys() {
        for (_, key) in ENV_ALIASES {
            assert!(find(key).is_some(), "{key}");
        }
        assert_eq!(
            find("log.level").map(Key::comment),
            Some(
                "Log filter directives in RUST_LOG syntax, e.g. \"info,peerd=debug\" \
                 (env: PEERD_LOG_LEVEL, PEERD_LOG, RUST_LOG)"
                    .to_owned()
            )
        );
    }
}
