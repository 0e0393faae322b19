//! What each subcommand does. Client commands talk to the daemon over its
//! admin socket and print for humans, or JSON with `--json`.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Duration;

use anyhow::{Context, bail};
use peerd::addressing::PeerAddr;
use peerd::identity::{NodeId, load_or_create_key, read_key};
use peerd_daemon::admin::{
    AdminClient, AdminError, CallReport, ConnectReport, IdReport, PeerReport, PingReport, Request,
    ServiceReport, StatusReport,
};
use peerd_daemon::config::Settings;
use peerd_daemon::daemon::{self, Paths, reach_addrs};
use serde::Serialize;

use crate::cli::{Command, ConfigCommand};

/// `config_file` is where `--config` or `PEERD_CONFIG` point, if anywhere.
pub fn run(
    command: Command,
    settings: Settings,
    config_file: Option<PathBuf>,
) -> anyhow::Result<ExitCode> {
    if let Command::Run { .. } = command {
        let runtime = tokio::runtime::Runtime::new().context("cannot start the async runtime")?;
        let result = runtime.block_on(daemon::run(settings));
        // A task stuck past the shutdown bound must not hold up the exit.
        runtime.shutdown_timeout(daemon::EXIT_WAIT);
        result?;
        return Ok(ExitCode::SUCCESS);
    }
    if let Command::Bench(args) = command {
        let runtime = tokio::runtime::Runtime::new().context("cannot start the async runtime")?;
        runtime.block_on(crate::bench::run(args))?;
        return Ok(ExitCode::SUCCESS);
    }
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    runtime.block_on(client_command(command, settings, config_file))
}

async fn client_command(
    command: Command,
    settings: Settings,
    config_file: Option<PathBuf>,
) -> anyhow::Result<ExitCode> {
    let paths = Paths::resolve(&settings);
    let admin = AdminClient::new(&paths.admin_socket);
    match command {
        Command::Init => {
            let config_file = config_file.unwrap_or_else(|| paths.data_dir.join("peerd.toml"));
            init(&settings, &paths, &config_file)?;
        }
        Command::Id { json } => id(&admin, &settings, &paths, json).await?,
        Command::Config {
            command: ConfigCommand::Check { print },
        } => {
            if print {
                print!("{}", settings.to_toml());
            } else {
                println!("configuration is valid");
            }
        }
        Command::Status { json } => {
            let status: StatusReport = admin.request_as(&Request::Status).await?;
            output(json, &status, print_status)?;
        }
        Command::Peers { json } => {
            let peers: Vec<PeerReport> = admin.request_as(&Request::Peers).await?;
            output(json, &peers, |peers| print_peers(peers))?;
        }
        Command::Connect { peer, timeout } => {
            let request = Request::Connect {
                peer,
                timeout_millis: millis(timeout),
            };
            let admin = answer_within(admin, timeout);
            let report: ConnectReport = admin.request_as(&request).await?;
            println!(
                "connected to {} at {} ({:?})",
                report.node_id, report.remote_addr, report.direction
            );
        }
        Command::Disconnect { node } => {
            let node: NodeId = node.parse()?;
            admin.request(&Request::Disconnect { node }).await?;
            println!("disconnected from {node}");
        }
        Command::Ping {
            target,
            count,
            timeout,
        } => ping(&answer_within(admin, timeout), &target, count, timeout).await?,
        Command::Call {
            target,
            method,
            body,
            hex,
            timeout,
            metadata,
        } => {
            let admin = answer_within(admin, timeout);
            let request = CallRequest {
                target: &target,
                method,
                body,
                hex,
                timeout,
                metadata: metadata.into_iter().collect(),
            };
            call(&admin, request).await?
        }
        Command::Services { json } => {
            let services: Vec<(String, String)> = admin.request_as(&Request::Services).await?;
            output(json, &services, |services| {
                services
                    .iter()
                    .for_each(|(name, version)| println!("{name}@{version}"));
            })?;
        }
        Command::Find { name, json } => {
            let providers: Vec<ServiceReport> =
                admin.request_as(&Request::FindService { name }).await?;
            output(json, &providers, |providers| print_providers(providers))?;
        }
        Command::Health => return Ok(health(&admin).await),
        Command::Run { .. } | Command::Bench(_) | Command::Completions { .. } => {
            unreachable!("handled before")
        }
    }
    Ok(ExitCode::SUCCESS)
}

fn output<T: Serialize>(json: bool, value: &T, human: impl Fn(&T)) -> anyhow::Result<()> {
    if json {
        println!("{}", serde_json::to_string_pretty(value)?);
    } else {
        human(value);
    }
    Ok(())
}

fn init(settings: &Settings, paths: &Paths, config_file: &Path) -> anyhow::Result<()> {
    daemon::make_data_dir(&paths.data_dir)?;
    let (identity, created) = load_or_create_key(&paths.key_file)?;
    let written = !config_file.exists();
    if written {
        let settings = Settings {
            data_dir: Some(paths.data_dir.clone()),
            ..settings.clone()
        };
        std::fs::write(config_file, settings.to_toml())
            .with_context(|| format!("cannot write {}", config_file.display()))?;
    }
    println!("node id: {}", identity.node_id());
    println!(
        "key:     {} ({})",
        paths.key_file.display(),
        if created { "created" } else { "existing" }
    );
    println!(
        "config:  {} ({})",
        config_file.display(),
        if written { "written" } else { "kept" }
    );
    Ok(())
}

async fn id(
    admin: &AdminClient,
    settings: &Settings,
    paths: &Paths,
    json: bool,
) -> anyhow::Result<()> {
    let report = match admin.request_as::<IdReport>(&Request::Id).await {
        Ok(report) => report,
        Err(AdminError::NotRunning(_)) => offline_id(settings, paths)?,
        Err(e) => return Err(e.into()),
    };
    output(json, &report, |report| {
        for addr in &report.addrs {
            println!("{}@{addr}", report.node_id);
        }
    })
}

/// Without a daemon: the key on disk and the configured listen address.
fn offline_id(settings: &Settings, paths: &Paths) -> anyhow::Result<IdReport> {
    if !paths.key_file.exists() {
        bail!(
            "no identity at {}: run `peerd init` or `peerd run` first",
            paths.key_file.display()
        );
    }
    let identity = read_key(&paths.key_file)?;
    Ok(IdReport {
        node_id: identity.node_id().to_string(),
        addrs: reach_addrs(settings.listen)
            .iter()
            .map(ToString::to_string)
            .collect(),
    })
}

/// `<id>` or `<id>@<host>:<port>`.
fn parse_target(target: &str) -> anyhow::Result<(NodeId, Option<String>)> {
    if target.contains('@') {
        let peer: PeerAddr = target.parse()?;
        Ok((peer.node, Some(peer.host_port)))
    } else {
        Ok((target.parse()?, None))
    }
}

/// A request's timeout as the admin protocol carries it.
fn millis(timeout: Option<Duration>) -> Option<u64> {
    timeout.map(|t| t.as_millis().try_into().unwrap_or(u64::MAX))
}

/// The client, waiting long enough for work of `timeout`.
fn answer_within(admin: AdminClient, timeout: Option<Duration>) -> AdminClient {
    match timeout {
        Some(timeout) => admin.answer_within(timeout),
        None => admin,
    }
}

async fn ping(
    admin: &AdminClient,
    target: &str,
    count: u32,
    timeout: Option<Duration>,
) -> anyhow::Result<()> {
    let (node, addr) = parse_target(target)?;
    for _ in 0..count.max(1) {
        let request = Request::Ping {
            node,
            addr: addr.clone(),
            timeout_millis: millis(timeout),
        };
        let report: PingReport = admin.request_as(&request).await?;
        println!(
            "pong from {} in {:.3} ms",
            node.short(),
            report.rtt_micros as f64 / 1000.0
        );
    }
    Ok(())
}

/// What `peerd call` was asked to send.
struct CallRequest<'a> {
    target: &'a str,
    method: String,
    body: Option<String>,
    hex: Option<String>,
    timeout: Option<Duration>,
    metadata: HashMap<String, String>,
}

async fn call(admin: &AdminClient, request: CallRequest<'_>) -> anyhow::Result<()> {
    let (node, addr) = parse_target(request.target)?;
    let body = match (request.body, request.hex) {
        (_, Some(hex)) => {
            let hex = from_stdin_if_dash(hex)?;
            serde_json::json!({ peerd_daemon::admin::CALL_HEX: hex.trim() })
        }
        (Some(text), None) => serde_json::from_str(&from_stdin_if_dash(text)?)
            .context("the request body is not valid JSON")?,
        (None, None) => serde_json::Value::Null,
    };
    let report: CallReport = admin
        .request_as(&Request::Call {
            node,
            addr,
            method: request.method,
            body,
            timeout_millis: millis(request.timeout),
            metadata: request.metadata,
        })
        .await?;
    println!("{}", serde_json::to_string_pretty(&report.response)?);
    Ok(())
}

/// `-` means the value is on stdin: a request too big for a command line
/// (the kernel caps one argument at 128 KiB).
fn from_stdin_if_dash(value: String) -> anyhow::Result<String> {
    if value != "-" {
        return Ok(value);
    }
    std::io::read_to_string(std::io::stdin()).context("cannot read the request from stdin")
}

async fn health(admin: &AdminClient) -> ExitCode {
    match admin.request(&Request::Health).await {
        Ok(answer) if answer["ready"] == true => ExitCode::SUCCESS,
        Ok(_) => {
            eprintln!("peerd: the daemon is not ready");
            ExitCode::FAILURE
        }
        Err(e) => {
            eprintln!("peerd: {e}");
            ExitCode::FAILURE
        }
    }
}

fn print_status(status: &StatusReport) {
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
}

fn print_peers(peers: &[PeerReport]) {
    if peers.is_empty() {
        println!("no connections");
        return;
    }
    println!(
        "{:<12} {:<13} {:<9} {:<22} {:>9} {:>8} {:>7} {:>12} {:>12}",
        "NODE", "STATE", "DIRECTION", "ADDRESS", "RTT(ms)", "AGE(s)", "STREAMS", "SENT", "RECEIVED"
    );
    for peer in peers {
        let state = format!("{}{}", peer.state, if peer.pinned { " (pin)" } else { "" });
        match (&peer.connection, &peer.retry) {
            (Some(c), _) => println!(
                "{:<12} {:<13} {:<9} {:<22} {:>9.3} {:>8} {:>7} {:>12} {:>12}",
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
                "{:<12} {:<13} attempt {}, next in {:.1} s: {}",
                &peer.node_id[..10],
                state,
                retry.attempt,
                retry.next_retry_millis as f64 / 1000.0,
                retry.last_error
            ),
            (None, None) => println!("{:<12} {:<13}", &peer.node_id[..10], state),
        }
    }
}

fn print_providers(providers: &[ServiceReport]) {
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
