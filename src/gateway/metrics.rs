//! Counts of the calls through the gateway, by direction, service and
//! code, in the Prometheus text format for /metrics.

use std::collections::BTreeMap;
use std::fmt::Write;
use std::sync::Mutex;

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

    /// `peerd_gateway_calls_total{direction,service,code}`.
    pub fn render(&self) -> String {
        let calls = self.calls.lock().unwrap_or_else(|e| e.into_inner());
        let mut out = String::from(
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
