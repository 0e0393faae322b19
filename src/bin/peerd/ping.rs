//! `peerd ping`: one ping, or several with ping(8)'s summary.

use std::time::Duration;

use peerd::identity::NodeId;
use peerd_daemon::admin::{AdminClient, AdminError, PingReport, Request};
use serde::Serialize;

use crate::commands::{millis, resolve_target};

/// How `peerd ping` pings.
pub struct Pings {
    pub count: u32,
    pub interval: Duration,
    pub timeout: Option<Duration>,
    pub json: bool,
}

/// One ping, or several as ping(8) sends them: a lost one is reported and
/// the next sent, a summary ends the output, and the command fails only if
/// no pong came back.
pub async fn ping(admin: &AdminClient, target: &str, pings: Pings) -> anyhow::Result<()> {
    let (node, addr) = resolve_target(admin, target).await?;
    let mut rtts = Vec::new();
    let mut last_error = None;
    for sent in 0..pings.count {
        if sent > 0 {
            tokio::time::sleep(pings.interval).await;
        }
        let request = Request::Ping {
            node,
            addr: addr.clone(),
            timeout_millis: millis(pings.timeout),
        };
        match admin.request_as::<PingReport>(&request).await {
            Ok(report) => {
                let rtt = report.rtt_micros as f64 / 1000.0;
                if !pings.json {
                    println!("pong from {} in {rtt:.3} ms", node.short());
                }
                rtts.push(rtt);
            }
            Err(e) if pings.count == 1 || matches!(e, AdminError::NotRunning(_)) => {
                return Err(e.into());
            }
            Err(e) => {
                if !pings.json {
                    println!("no pong from {}: {e}", node.short());
                }
                last_error = Some(e);
            }
        }
    }
    let summary = PingSummary::of(node, pings.count, &rtts);
    if pings.json {
        println!("{}", serde_json::to_string_pretty(&summary)?);
    } else if pings.count > 1 {
        println!("{summary}");
    }
    match (rtts.is_empty(), last_error) {
        (true, Some(e)) => Err(e.into()),
        _ => Ok(()),
    }
}

/// What ping(8) ends with: sent, received, loss, and the round trips.
#[derive(Serialize)]
struct PingSummary {
    node_id: String,
    sent: u32,
    received: usize,
    loss_percent: f64,
    rtt_min_ms: Option<f64>,
    rtt_avg_ms: Option<f64>,
    rtt_max_ms: Option<f64>,
}

impl PingSummary {
    fn of(node: NodeId, sent: u32, rtts: &[f64]) -> Self {
        let received = rtts.len();
        let fold = |pick: fn(f64, f64) -> f64| rtts.iter().copied().reduce(pick);
        Self {
            node_id: node.to_string(),
            sent,
            received,
            loss_percent: 100.0 * (1.0 - received as f64 / f64::from(sent.max(1))),
            rtt_min_ms: fold(f64::min),
            rtt_avg_ms: (received > 0).then(|| rtts.iter().sum::<f64>() / received as f64),
            rtt_max_ms: fold(f64::max),
        }
    }
}

impl std::fmt::Display for PingSummary {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{} sent, {} received, {:.0}% loss",
            self.sent, self.received, self.loss_percent
        )?;
        if let (Some(min), Some(avg), Some(max)) =
            (self.rtt_min_ms, self.rtt_avg_ms, self.rtt_max_ms)
        {
            write!(f, "; rtt min/avg/max = {min:.3}/{avg:.3}/{max:.3} ms")?;
        }
        Ok(())
    }
}
