//! `peerd bench`: the command-line face of `peerd_daemon::bench`.

use std::io::{IsTerminal, Write};

use anyhow::Context;
use peerd::addressing::PeerAddr;
use peerd_daemon::bench::{self, BenchConfig, Progress, Stop};
use peerd_daemon::config::{parse_byte_size, parse_duration};

use crate::cli::BenchArgs;

pub async fn run(args: BenchArgs) -> anyhow::Result<()> {
    let config = bench_config(&args).await?;
    let interactive = std::io::stderr().is_terminal();
    let report = bench::run(config, |progress| show_progress(progress, interactive)).await?;
    if interactive {
        eprintln!();
    }
    if args.json {
        println!("{}", serde_json::to_string_pretty(&report)?);
    } else {
        println!("{report}");
    }
    Ok(())
}

async fn bench_config(args: &BenchArgs) -> anyhow::Result<BenchConfig> {
    let peer: PeerAddr = args.target.parse()?;
    let addr = *peer
        .resolve()
        .await
        .with_context(|| format!("cannot resolve {}", peer.host_port))?
        .first()
        .with_context(|| format!("{} has no address", peer.host_port))?;
    let duration =
        |flag: &str, text: &str| parse_duration(text).with_context(|| format!("--{flag} {text:?}"));
    let size = parse_byte_size(&args.size).with_context(|| format!("--size {:?}", args.size))?;
    Ok(BenchConfig {
        concurrency: args.concurrency,
        payload_size: usize::try_from(size).context("--size is too large")?,
        stop: match args.calls {
            Some(calls) => Stop::Calls(calls),
            None => Stop::Duration(duration("duration", &args.duration)?),
        },
        connections: args.connections,
        warmup: duration("warmup", &args.warmup)?,
        server_delay: duration("server-delay", &args.server_delay)?,
        timeout: duration("timeout", &args.timeout)?,
        ..BenchConfig::new(peer.node, addr)
    })
}

/// One line, rewritten in place on a terminal; a line per second otherwise.
fn show_progress(progress: &Progress, interactive: bool) {
    let line = format!(
        "{:?} {:>5.1} s: {} calls, {:.0} calls/s, {} errors",
        progress.phase,
        progress.elapsed.as_secs_f64(),
        progress.calls,
        progress.calls_per_sec(),
        progress.errors
    );
    if interactive {
        eprint!("\r{line:<72}");
        let _ = std::io::stderr().flush();
    } else {
        eprintln!("{line}");
    }
}
