//! The metric families of paths through NAT: connections relayed or moved
//! direct, hole punches, and the relay this node serves (docs/metrics.md).

use super::exposition::{Exposition, Kind};
use peerd::Node;

pub(super) fn render(out: &mut Exposition, node: &Node) {
    let paths = node.paths();
    let name = "peerd_paths";
    let help = "Connections on virtual paths now: relayed (through a relay circuit) \
                or direct (moved to the peer's own address by a hole punch).";
    out.family(name, Kind::Gauge, help);
    out.sample(name, &[("kind", "relayed")], paths.relayed);
    out.sample(name, &[("kind", "direct")], paths.direct);
    let name = "peerd_path_packets_dropped_total";
    let help = "Packets dropped on virtual paths: a circuit's queue was full, or its path gone.";
    out.family(name, Kind::Counter, help);
    out.sample(name, &[], paths.dropped);
    let punches = node.punches();
    let name = "peerd_punches_total";
    let help = "Hole punches this node asked for, by outcome: direct (the connection moved) \
                or failed (it stayed relayed).";
    out.family(name, Kind::Counter, help);
    out.sample(name, &[("outcome", "direct")], punches.direct);
    out.sample(name, &[("outcome", "failed")], punches.failed);
    let name = "peerd_relay_reservations";
    out.family(
        name,
        Kind::Gauge,
        "Relays holding a reservation for this node now.",
    );
    out.sample(name, &[("role", "held")], node.relays_held().len());
    if let Some(relay) = node.relay_server() {
        serving(out, &relay.stats());
    }
}

/// The relay's own families, when this node serves one.
fn serving(out: &mut Exposition, stats: &peerd::relay::RelayStats) {
    let name = "peerd_relay_reservations";
    out.sample(name, &[("role", "serving")], stats.reservations);
    let name = "peerd_relay_circuits";
    out.family(name, Kind::Gauge, "Circuits this relay runs now.");
    out.sample(name, &[], stats.circuits);
    let name = "peerd_relay_circuits_total";
    let help = "Circuits by outcome: opened (spliced), refused (no reservation or a limit), \
                over_budget (closed for spending their byte budget).";
    out.family(name, Kind::Counter, help);
    out.sample(name, &[("outcome", "opened")], stats.circuits_opened);
    out.sample(name, &[("outcome", "refused")], stats.refused_circuits);
    out.sample(name, &[("outcome", "over_budget")], stats.over_budget);
    let name = "peerd_relay_reservations_refused_total";
    out.family(
        name,
        Kind::Counter,
        "Reservations refused at the relay's limit.",
    );
    out.sample(name, &[], stats.refused_reservations);
    let name = "peerd_relay_bytes_total";
    out.family(
        name,
        Kind::Counter,
        "Packet bytes this relay forwarded, both ways.",
    );
    out.sample(name, &[], stats.bytes);
}
