//! Counts of the calls through the gateway, by direction, service and
//! code, in the Prometheus text format for /metrics.

use std::collections::BTreeMap;
use std::fmt::Write;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};

use peerd::rpc::{Code, Status};

/// Distinct services counted; calls to any further one count as "other",
/// so agents calling many names cannot grow the table without bound.
const MAX_SERVICES: usize = 256;

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Direction {
    /// An agent here called another node.
    Outbound,
    /// Another node called a service an agent here exposes.
    Inbound,
}

impl Direction {
    fn as_str(self) -> &'static str {
        match self {
            Direction::Outbound => "outbound",
            Direction::Inbound => "inbound",
        }
    }
}

#[derive(Debug, Default)]
pub struct GatewayMetrics {
    calls: Mutex<BTreeMap<(Direction, String, &'static str), u64>>,
    /// Response bytes queued for agents that have not read them yet.
    buffered: AtomicU64,
}

impl GatewayMetrics {
    /// Counts one finished call.
    pub fn record(&self, direction: Direction, service: &str, result: &Result<(), Status>) {
        let code = match result {
            Ok(()) => Code::Ok,
            Err(status) => status.code(),
        };
        self.record_code(direction, service, code);
    }

    pub fn record_code(&self, direction: Direction, service: &str, code: Code) {
        let mut calls = self.calls.lock().unwrap_or_else(|e| e.into_inner());
        let known = calls.keys().any(|(_, name, _)| name == service);
        let services = || {
            calls
                .keys()
                .map(|(_, name, _)| name)
                .collect::<std::collections::BTreeSet<_>>()
                .len()
        };
        let name = match known || services() < MAX_SERVICES {
            true => service.to_owned(),
            false => "other".to_owned(),
        };
        *calls.entry((direction, name, code.name())).or_default() += 1;
    }

    pub fn buffer(&self, bytes: usize) {
        self.buffered.fetch_add(bytes as u64, Ordering::Relaxed);
    }

    pub fn unbuffer(&self, bytes: usize) {
        self.buffered.fetch_sub(bytes as u64, Ordering::Relaxed);
    }

    pub fn buffered(&self) -> u64 {
        self.buffered.load(Ordering::Relaxed)
    }

    /// `peerd_gateway_calls_total{direction,service,code}` and
    /// `peerd_gateway_buffered_bytes`.
    pub fn render(&self) -> String {
        let calls = self.calls.lock().unwrap_or_else(|e| e.into_inner());
        let mut out = format!(
            "# HELP peerd_gateway_buffered_bytes Response bytes queued in the gateway for agents that have not read them.\n\
             # TYPE peerd_gateway_buffered_bytes gauge\n\
             peerd_gateway_buffered_bytes {}\n",
            self.buffered()
        );
        out.push_str(
            "# HELP peerd_gateway_calls_total Calls through the agent gateway, finished.\n\
             # TYPE peerd_gateway_calls_total counter\n",
        );
        for ((direction, service, code), count) in calls.iter() {
            let _ = writeln!(
                out,
                "peerd_gateway_calls_total{{direction=\"{}\",service=\"{}\",code=\"{code}\"}} {count}",
                direction.as_str(),
                escape(service)
            );
        }
        out
    }
}

/// A Prometheus label value: backslash, quote and newline escaped.
fn escape(value: &str) -> String {
    value
        .replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn calls_are_counted_by_direction_service_and_code() {
        let metrics = GatewayMetrics::default();
        metrics.record(Direction::Outbound, "pkg.Echo", &Ok(()));
        metrics.record(Direction::Outbound, "pkg.Echo", &Ok(()));
        metrics.record(Direction::Inbound, "pkg.Echo", &Err(Status::not_found("x")));
        let text = metrics.render();
        assert!(
            text.contains("peerd_gateway_calls_total{direction=\"outbound\",service=\"pkg.Echo\",code=\"OK\"} 2"),
            "{text}"
        );
        assert!(text.contains("direction=\"inbound\",service=\"pkg.Echo\",code=\"NOT_FOUND\"} 1"));
    }

    #[test]
    fn services_beyond_the_limit_count_as_other() {
        let metrics = GatewayMetrics::default();
        for n in 0..MAX_SERVICES + 5 {
            metrics.record_code(Direction::Outbound, &format!("s{n}\""), Code::Ok);
        }
        let text = metrics.render();
        assert!(text.contains("service=\"other\",code=\"OK\"} 5"), "{text}");
        assert!(text.contains("service=\"s0\\\"\""));
    }
}
