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
    AdminClient, AdminError, BookReport, CallReport, ConnectReport, ForgetReport, IdReport,
    NetcheckReport, PeerReport, Request, ServiceReport, StatusReport,
};
use peerd_daemon::config::Settings;
use peerd_daemon::daemon::{self, Paths, reach_addrs};
use serde::Serialize;

use crate::cli::{Command, ConfigCommand};
use crate::exit::Usage;
use crate::ping::{Pings, ping};
use crate::tables::{
    print_book, print_peers, print_providers, print_status, reachability_line, unix_now,
};

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
        Command::Book { json } => {
            let book: Vec<BookReport> = admin.request_as(&Request::Book).await?;
            output(json, &book, |book| print_book(book, unix_now()))?;
        }
        Command::Forget { node } => {
            let node = resolve_node(&admin, &node).await?;
            let report: ForgetReport = admin.request_as(&Request::Forget { node }).await?;
            match (report.forgotten, report.connected) {
                (false, _) => println!("node {node} was not in the peer book"),
                (true, false) => println!("forgot node {node}"),
                (true, true) => println!(
                    "forgot node {node}; it is still connected, and is learned again if it connects again"
                ),
            }
        }
        Command::Connect {
            peer,
            timeout,
            json,
        } => {
            let peer = match resolve_target(&admin, &peer).await? {
                (node, Some(host_port)) => format!("{node}@{host_port}"),
                (node, None) => node.to_string(),
            };
            let request = Request::Connect {
                peer,
                timeout_millis: millis(timeout),
            };
            let admin = answer_within(admin, timeout);
            let report: ConnectReport = admin.request_as(&request).await?;
            output(json, &report, |report| {
                println!(
                    "connected to {} at {} ({:?})",
                    report.node_id, report.remote_addr, report.direction
                );
            })?;
        }
        Command::Disconnect { node } => {
            let node = resolve_node(&admin, &node).await?;
            let answer = admin.request(&Request::Disconnect { node }).await?;
            match answer["closed"] == true {
                true => println!("disconnected from {node}"),
                false => println!("no connection to {node} was open"),
            }
        }
        Command::Ping {
            target,
            count,
            interval,
            timeout,
            json,
        } => {
            let pings = Pings {
                count,
                interval,
                timeout,
                json,
            };
            ping(&answer_within(admin, timeout), &target, pings).await?;
        }
        Command::Call {
            target,
            method,
            body,
            hex,
            timeout,
            metadata,
            json,
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
            call(&admin, request, json).await?
        }
        Command::Netcheck { json } => {
            let report: NetcheckReport = admin.request_as(&Request::Netcheck).await?;
            output(json, &report, |report| {
                println!("{}", reachability_line(&report.nat));
                println!("publishes:    {}", report.publishes.join(", "));
            })?;
        }
        Command::Services { json } => {
            let services: Vec<(String, String)> = admin.request_as(&Request::Services).await?;
            output(json, &services, |services| {
                if services.is_empty() {
                    println!("this node announces no services (key `services`)");
                }
                services
                    .iter()
                    .for_each(|(name, version)| println!("{name}@{version}"));
            })?;
        }
        Command::Find { name, json } => {
            // `name@version`, as `services` prints them, finds that version.
            let (name, version) = match name.split_once('@') {
                Some((name, version)) => (name.to_owned(), Some(version.to_owned())),
                None => (name, None),
            };
            let mut providers: Vec<ServiceReport> =
                admin.request_as(&Request::FindService { name }).await?;
            providers.retain(|p| version.as_ref().is_none_or(|v| p.version == *v));
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
    // `run` reads no file unless told: say how to start with this one.
    println!("start:   peerd --config {} run", config_file.display());
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

/// A node id, or a prefix of one (as tables print them) that matches
/// exactly one node the daemon knows: connected, pinned or in the book.
async fn resolve_node(admin: &AdminClient, text: &str) -> anyhow::Result<NodeId> {
    match text.parse::<NodeId>() {
        Ok(node) => return Ok(node),
        Err(e) if text.len() >= NodeId::TEXT_LEN => return Err(Usage(e.to_string()).into()),
        Err(_) => {}
    }
    let book: Vec<BookReport> = admin.request_as(&Request::Book).await?;
    let peers: Vec<PeerReport> = admin.request_as(&Request::Peers).await?;
    let known = book
        .iter()
        .map(|b| &b.node_id)
        .chain(peers.iter().map(|p| &p.node_id));
    let mut matches: Vec<&String> = known.filter(|id| id.starts_with(text)).collect();
    matches.sort();
    matches.dedup();
    match matches.as_slice() {
        [one] => Ok(one.parse()?),
        [] => Err(Usage(format!(
            "no known node id starts with {text:?} (see `peerd book` and `peerd peers`)"
        ))
        .into()),
        many => Err(Usage(format!(
            "{text:?} matches {} nodes: give more of the id",
            many.len()
        ))
        .into()),
    }
}

/// `<id>` (or a prefix, see [`resolve_node`]) or `<id>@<host>:<port>`.
pub async fn resolve_target(
    admin: &AdminClient,
    target: &str,
) -> anyhow::Result<(NodeId, Option<String>)> {
    if target.contains('@') {
        let peer: PeerAddr = target.parse().map_err(|e| Usage(format!("{e}")))?;
        Ok((peer.node, Some(peer.host_port)))
    } else {
        Ok((resolve_node(admin, target).await?, None))
    }
}

/// A request's timeout as the admin protocol carries it.
pub fn millis(timeout: Option<Duration>) -> Option<u64> {
    timeout.map(|t| t.as_millis().try_into().unwrap_or(u64::MAX))
}

/// The client, waiting long enough for work of `timeout`.
fn answer_within(admin: AdminClient, timeout: Option<Duration>) -> AdminClient {
    match timeout {
        Some(timeout) => admin.answer_within(timeout),
        None => admin,
    }
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

async fn call(admin: &AdminClient, request: CallRequest<'_>, json: bool) -> anyhow::Result<()> {
    let (node, addr) = resolve_target(admin, request.target).await?;
    let body = match (request.body, request.hex) {
        (_, Some(hex)) => {
            let hex = from_stdin_if_dash(hex)?;
            serde_json::json!({ peerd_daemon::admin::CALL_HEX: hex.trim() })
        }
        (Some(text), None) => serde_json::from_str(&from_stdin_if_dash(text)?)
            .map_err(|e| Usage(format!("the request body is not valid JSON: {e}")))?,
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
    match json {
        true => println!("{}", serde_json::to_string_pretty(&report)?),
        false => println!("{}", serde_json::to_string_pretty(&report.response)?),
    }
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
