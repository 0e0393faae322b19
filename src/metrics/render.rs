//! The node's metric families, read from their sources at scrape time.

use std::collections::HashSet;
use std::sync::Arc;

use super::MonotonicTraffic;
use super::exposition::{Exposition, Kind};
use peerd::Node;
use peerd::connection::{
    Direction, HandshakeOutcome, NodeConnection, NodeConnectionManager, Traffic,
};
use peerd::rpc::stats::CallStats;

pub(super) struct Sources<'a> {
    pub node: &'a Node,
    /// Served (server role), then made (client role).
    pub calls: [&'a Arc<CallStats>; 2],
    pub traffic: &'a MonotonicTraffic,
}

const DIRECTIONS: [(Direction, &str); 2] = [
    (Direction::Outbound, "outbound"),
    (Direction::Inbound, "inbound"),
];

pub(super) fn render(sources: &Sources<'_>) -> String {
    let mut out = Exposition::default();
    out.family(
        "peerd_build_info",
        Kind::Gauge,
        "Always 1; the labels describe this build of peerd.",
    );
    out.sample(
        "peerd_build_info",
        &[("version", env!("CARGO_PKG_VERSION"))],
        1,
    );
    // Closed totals before the open connections: a connection closing in
    // between is then missed for a moment, never counted twice.
    let manager = sources.node.manager();
    let closed = manager.tally().closed_traffic();
    let open = manager.connections();
    connections(&mut out, manager, &open);
    datagrams(&mut out, manager);
    super::nat::render(&mut out, sources.node);
    let traffic = open
        .iter()
        .map(|c| Traffic::of(&c.stats()))
        .fold(closed, |a, b| a + b);
    traffic_counters(&mut out, sources.traffic.report(traffic));
    for family in [requests, durations, in_flight] {
        family(&mut out, &sources.calls);
    }
    super::process::render(&mut out);
    out.into_text()
}

fn connections(out: &mut Exposition, manager: &NodeConnectionManager, open: &[NodeConnection]) {
    let name = "peerd_connections_open";
    let help = "Connections to other nodes open now, by who dialed (outbound: this node).";
    out.family(name, Kind::Gauge, help);
    for (direction, label) in DIRECTIONS {
        let count = open.iter().filter(|c| c.direction() == direction).count();
        out.sample(name, &[("direction", label)], count);
    }
    handshakes(out, manager);
    let streams: usize = open.iter().map(NodeConnection::active_streams).sum();
    let help = "RPC streams open now on all connections, opened by either side.";
    out.family("peerd_streams_open", Kind::Gauge, help);
    out.sample("peerd_streams_open", &[], streams);
    let connected: HashSet<_> = open.iter().map(NodeConnection::remote_node_id).collect();
    let help = "Nodes by state: connected (a connection is open) or connecting (being dialed).";
    out.family("peerd_peers", Kind::Gauge, help);
    out.sample("peerd_peers", &[("state", "connected")], connected.len());
    out.sample("peerd_peers", &[("state", "connecting")], manager.dialing());
}

fn datagrams(out: &mut Exposition, manager: &NodeConnectionManager) {
    let stats = manager.datagram_stats();
    let name = "peerd_datagrams_total";
    let help = "Datagrams by outcome: sent (handed to QUIC), received (queued for their service), \
                dropped (the service's queue was full), unrouted (no such service, or malformed).";
    out.family(name, Kind::Counter, help);
    for (outcome, count) in [
        ("sent", stats.sent),
        ("received", stats.received),
        ("dropped", stats.dropped),
        ("unrouted", stats.unrouted),
    ] {
        out.sample(name, &[("outcome", outcome)], count);
    }
}

fn handshakes(out: &mut Exposition, manager: &NodeConnectionManager) {
    let tally = manager.tally();
    let name = "peerd_connections_total";
    let help = "Connection handshakes by direction and result \
                (ok, failed, timeout, or refused by inbound admission limits).";
    out.family(name, Kind::Counter, help);
    for (direction, label) in DIRECTIONS {
        for outcome in HandshakeOutcome::ALL {
            if direction == Direction::Outbound && outcome == HandshakeOutcome::Refused {
                continue;
            }
            let labels = [("direction", label), ("result", outcome.as_str())];
            out.sample(name, &labels, tally.handshakes(direction, outcome));
        }
    }
    let name = "peerd_handshake_restarts_total";
    let help = "Fresh handshakes dials started because theirs was not done \
                after 2 s, 6 s, 14 s, ...: a sign of loss on the path.";
    out.family(name, Kind::Counter, help);
    out.sample(name, &[], tally.handshake_restarts());
    let name = "peerd_handshake_duration_seconds";
    let help = "Time to complete a connection handshake (QUIC and mutual TLS), by direction.";
    out.family(name, Kind::Histogram, help);
    for (direction, label) in DIRECTIONS {
        let durations = tally.handshake_durations(direction);
        out.histogram(name, &[("direction", label)], &durations);
    }
}

fn traffic_counters(out: &mut Exposition, traffic: Traffic) {
    let counters = [
        (
            "peerd_quic_sent_bytes_total",
            "Bytes of UDP datagrams sent on connections to nodes, retransmissions included.",
            traffic.sent_bytes,
        ),
        (
            "peerd_quic_received_bytes_total",
            "Bytes of UDP datagrams received on connections to nodes.",
            traffic.received_bytes,
        ),
        (
            "peerd_quic_lost_packets_total",
            "QUIC packets sent on connections to nodes and declared lost.",
            traffic.lost_packets,
        ),
    ];
    for (name, help, value) in counters {
        out.family(name, Kind::Counter, help);
        out.sample(name, &[], value);
    }
}

fn requests(out: &mut Exposition, calls: &[&Arc<CallStats>; 2]) {
    let name = "peerd_rpc_requests_total";
    let help = "Finished RPC calls by method, role (server: answered by this node, \
                client: made by it) and gRPC status code.";
    out.family(name, Kind::Counter, help);
    for stats in calls {
        let role = stats.role().as_str();
        for method in stats.methods() {
            for (code, count) in method.requests() {
                let labels = [
                    ("method", method.name()),
                    ("role", role),
                    ("code", code.name()),
                ];
                out.sample(name, &labels, count);
            }
        }
    }
}

fn durations(out: &mut Exposition, calls: &[&Arc<CallStats>; 2]) {
    let name = "peerd_rpc_duration_seconds";
    let help = "RPC call duration, from the stream's opening to the final status, \
                by method and role.";
    out.family(name, Kind::Histogram, help);
    for stats in calls {
        let role = stats.role().as_str();
        for method in stats.methods() {
            let durations = method.duration();
            if durations.count > 0 {
                out.histogram(
                    name,
                    &[("method", method.name()), ("role", role)],
                    &durations,
                );
            }
        }
    }
}

fn in_flight(out: &mut Exposition, calls: &[&Arc<CallStats>; 2]) {
    let name = "peerd_rpc_in_flight_requests";
    out.family(name, Kind::Gauge, "RPC calls in progress now, by role.");
    for stats in calls {
        out.sample(name, &[("role", stats.role().as_str())], stats.in_flight());
    }
}
