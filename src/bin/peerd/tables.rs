//! How client commands print for humans: the tables and lines of
//! `status`, `peers`, `book`, `find` and `netcheck`.

use peerd::nat::NatReport;
use peerd_daemon::admin::{BookReport, PeerReport, ServiceReport, StatusReport};
use serde::Serialize;

pub fn print_status(status: &StatusReport) {
    println!("node:        {}", status.node_id);
    println!("version:     {}", status.version);
    println!("uptime:      {} s", status.uptime_secs);
    println!("listening:   {}", status.listen_addr);
    println!(
        "connections: {} inbound, {} outbound",
        status.connections_inbound, status.connections_outbound
    );
    println!(
        "calls:       {} in flight; {:.2}/s since start, {:.2}% errors (of {})",
        status.calls_in_flight,
        status.calls_per_second,
        status.error_rate * 100.0,
        status.calls_total
    );
    println!("ready:       {}", status.ready);
    if let Some(nat) = &status.reachability {
        println!("{}", reachability_line(nat));
    }
    if !status.relays.is_empty() {
        println!("relays:      reserved on {}", status.relays.join(", "));
    }
    if status.paths_relayed + status.paths_direct > 0 {
        println!(
            "paths:       {} relayed, {} moved direct by a hole punch",
            status.paths_relayed, status.paths_direct
        );
    }
    if let Some(relay) = &status.relay {
        println!(
            "relay:       serving {}, {}",
            counted(relay.reservations, "reservation"),
            counted(relay.circuits, "circuit")
        );
    }
    if let Some(browser) = &status.browser {
        println!(
            "browser:     {} connected, WebTransport on {}",
            counted(browser.pages as usize, "page"),
            browser.listen_addr
        );
    }
}

/// `1 circuit`, `2 circuits`.
fn counted(count: usize, noun: &str) -> String {
    match count {
        1 => format!("1 {noun}"),
        _ => format!("{count} {noun}s"),
    }
}

/// `reachability: private (behind NAT, endpoint-independent mapping; seen
/// at 198.51.100.2:7733; 2 of 3 peers answered)`.
pub fn reachability_line(nat: &NatReport) -> String {
    let observed: Vec<String> = nat.observed.iter().map(ToString::to_string).collect();
    let nat_part = match nat.behind_nat {
        true => format!("behind NAT, {} mapping", word(nat.mapping)),
        false => "no NAT".to_owned(),
    };
    format!(
        "reachability: {} ({nat_part}; seen at {}; {} of {} peers answered)",
        word(nat.reachability),
        if observed.is_empty() {
            "-".to_owned()
        } else {
            observed.join(", ")
        },
        nat.answered,
        nat.asked
    )
}

/// A unit enum as its JSON name, with `-` for `_` (`endpoint-independent`).
fn word(value: impl Serialize) -> String {
    let json = serde_json::to_value(value).unwrap_or_default();
    json.as_str().unwrap_or("?").replace('_', "-")
}

pub fn print_peers(peers: &[PeerReport]) {
    if peers.is_empty() {
        println!("no connections");
        return;
    }
    println!(
        "{:<12} {:<16} {:<9} {:<22} {:>9} {:>8} {:>7} {:>12} {:>12}",
        "NODE", "STATE", "DIRECTION", "ADDRESS", "RTT(ms)", "AGE(s)", "STREAMS", "SENT", "RECEIVED"
    );
    for peer in peers {
        let state = format!("{}{}", peer.state, if peer.pinned { " (pin)" } else { "" });
        match (&peer.connection, &peer.retry) {
            (Some(c), _) => println!(
                "{:<12} {:<16} {:<9} {:<22} {:>9.3} {:>8} {:>7} {:>12} {:>12}",
                &peer.node_id[..10],
                state,
                format!("{:?}", c.direction).to_lowercase(),
                c.remote_addr,
                c.rtt_micros as f64 / 1000.0,
                c.age_secs,
                c.active_streams,
                c.bytes_sent,
                c.bytes_received,
            ),
            (None, Some(retry)) => println!(
                "{:<12} {:<16} attempt {}, next in {:.1} s: {}",
                &peer.node_id[..10],
                state,
                retry.attempt,
                retry.next_retry_millis as f64 / 1000.0,
                retry.last_error
            ),
            (None, None) => println!("{:<12} {:<16}", &peer.node_id[..10], state),
        }
    }
}

pub fn print_book(book: &[BookReport], now_unix: u64) {
    if book.is_empty() {
        println!("the peer book is empty");
        return;
    }
    println!(
        "{:<52}  {:<14} {:<10} {:>10}  ADDRESSES",
        "NODE", "STATE", "SOURCE", "LAST SEEN"
    );
    for entry in book {
        let state = format!(
            "{}{}",
            entry.state,
            if entry.pinned { " (pin)" } else { "" }
        );
        let relayed = entry
            .relays
            .iter()
            .map(|relay| format!("via relay {relay}"));
        let addrs: Vec<String> = entry.addrs.iter().cloned().chain(relayed).collect();
        println!(
            "{:<52}  {:<14} {:<10} {:>10}  {}",
            entry.node_id,
            state,
            word(entry.source),
            ago(now_unix.saturating_sub(entry.last_seen_unix)),
            addrs.join(", ")
        );
    }
}

/// `12 s ago`, `5 min ago`, `3 h ago`, `2 d ago`.
fn ago(secs: u64) -> String {
    match secs {
        0..60 => format!("{secs} s ago"),
        60..3600 => format!("{} min ago", secs / 60),
        3600..86400 => format!("{} h ago", secs / 3600),
        _ => format!("{} d ago", secs / 86400),
    }
}

pub fn unix_now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

pub fn print_providers(providers: &[ServiceReport]) {
    if providers.is_empty() {
        println!("no provider found");
    }
    for provider in providers {
        let addrs = provider.addrs.join(",");
        println!(
            "{}@{addrs} version {} ({} s left)",
            provider.node_id, provider.version, provider.ttl_remaining_secs
        );
    }
}
