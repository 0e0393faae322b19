//! Counts of browser sessions, the calls they carry and their datagrams,
//! in the Prometheus text format for /metrics (docs/metrics.md).

use std::fmt::Write;
use std::sync::atomic::{AtomicU64, Ordering};

/// Which way a call or datagram went, as a page sees it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Direction {
    /// From a page to a node.
    FromPage,
    /// From a node to a page.
    ToPage,
}

/// What became of a datagram the daemon was given to pass on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fate {
    Forwarded,
    /// Too large for the next hop, addressed to no connected node, or malformed.
    Dropped,
}

#[derive(Debug, Default)]
pub struct BrowserMetrics {
    sessions: AtomicU64,
    refused: AtomicU64,
    calls: [AtomicU64; 2],
    failed_calls: [AtomicU64; 2],
    datagrams: [[AtomicU64; 2]; 2],
}

fn index(direction: Direction) -> usize {
    match direction {
        Direction::FromPage => 0,
        Direction::ToPage => 1,
    }
}

const DIRECTIONS: [(Direction, &str); 2] = [
    (Direction::FromPage, "from_page"),
    (Direction::ToPage, "to_page"),
];

impl BrowserMetrics {
    pub fn session_opened(&self) {
        self.sessions.fetch_add(1, Ordering::Relaxed);
    }

    pub fn session_closed(&self) {
        self.sessions.fetch_sub(1, Ordering::Relaxed);
    }

    pub fn session_refused(&self) {
        self.refused.fetch_add(1, Ordering::Relaxed);
    }

    pub fn sessions(&self) -> u64 {
        self.sessions.load(Ordering::Relaxed)
    }

    pub fn call(&self, direction: Direction, ok: bool) {
        let counter = match ok {
            true => &self.calls[index(direction)],
            false => &self.failed_calls[index(direction)],
        };
        counter.fetch_add(1, Ordering::Relaxed);
    }

    pub fn datagram(&self, direction: Direction, fate: Fate) {
        let fate = (fate == Fate::Dropped) as usize;
        self.datagrams[index(direction)][fate].fetch_add(1, Ordering::Relaxed);
    }

    /// Datagrams `(forwarded, dropped)` in `direction`.
    pub fn datagrams(&self, direction: Direction) -> (u64, u64) {
        let [forwarded, dropped] = &self.datagrams[index(direction)];
        (
            forwarded.load(Ordering::Relaxed),
            dropped.load(Ordering::Relaxed),
        )
    }

    /// `peerd_browser_sessions`, `peerd_browser_sessions_refused_total`,
    /// `peerd_browser_calls_total{direction,outcome}` and
    /// `peerd_browser_datagrams_total{direction,outcome}`.
    pub fn render(&self) -> String {
        let load = |counter: &AtomicU64| counter.load(Ordering::Relaxed);
        let mut out = format!(
            "# HELP peerd_browser_sessions Browser agents' WebTransport sessions open now, proof checked.\n\
             # TYPE peerd_browser_sessions gauge\n\
             peerd_browser_sessions {}\n\
             # HELP peerd_browser_sessions_refused_total Browser sessions refused: over the limit, a proof that does not verify, or no proof in time.\n\
             # TYPE peerd_browser_sessions_refused_total counter\n\
             peerd_browser_sessions_refused_total {}\n\
             # HELP peerd_browser_calls_total Calls between browser agents and nodes through this daemon, finished.\n\
             # TYPE peerd_browser_calls_total counter\n",
            self.sessions(),
            load(&self.refused)
        );
        for (direction, name) in DIRECTIONS {
            let i = index(direction);
            for (outcome, counter) in [("ok", &self.calls[i]), ("error", &self.failed_calls[i])] {
                let _ = writeln!(
                    out,
                    "peerd_browser_calls_total{{direction=\"{name}\",outcome=\"{outcome}\"}} {}",
                    load(counter)
                );
            }
        }
        out.push_str(
            "# HELP peerd_browser_datagrams_total Datagrams between browser agents and nodes that this daemon passed on or dropped.\n\
             # TYPE peerd_browser_datagrams_total counter\n",
        );
        for (direction, name) in DIRECTIONS {
            let (forwarded, dropped) = self.datagrams(direction);
            for (outcome, count) in [("forwarded", forwarded), ("dropped", dropped)] {
                let _ = writeln!(
                    out,
                    "peerd_browser_datagrams_total{{direction=\"{name}\",outcome=\"{outcome}\"}} {count}"
                );
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_render_by_direction_and_outcome() {
        let metrics = BrowserMetrics::default();
        metrics.session_opened();
        metrics.call(Direction::ToPage, true);
        metrics.datagram(Direction::FromPage, Fate::Dropped);
        let text = metrics.render();
        assert!(text.contains("peerd_browser_sessions 1\n"), "{text}");
        assert!(
            text.contains("{direction=\"to_page\",outcome=\"ok\"} 1\n"),
            "{text}"
        );
        assert!(text.contains(
            "peerd_browser_datagrams_total{direction=\"from_page\",outcome=\"dropped\"} 1\n"
        ));
        assert_eq!(metrics.datagrams(Direction::FromPage), (0, 1));
    }
}
