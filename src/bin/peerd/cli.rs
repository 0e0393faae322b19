//! The command line: one binary, `peerd run` is the daemon, every other
//! subcommand is a client or a tool.

use std::path::PathBuf;
use std::time::Duration;

use clap::{Args, Parser, Subcommand};

#[derive(Debug, Parser)]
#[command(
    name = "peerd",
    version,
    about = "A peer-to-peer node daemon: QUIC, mutual TLS, RPC between nodes",
    after_help = crate::exit::HELP
)]
pub struct Cli {
    #[command(flatten)]
    pub global: GlobalArgs,
    #[command(subcommand)]
    pub command: Command,
}

/// Settings flags; each overrides the same key from the environment and the file.
#[derive(Debug, Args)]
pub struct GlobalArgs {
    /// TOML configuration file [env: PEERD_CONFIG]
    #[arg(long, global = true, value_name = "PATH")]
    pub config: Option<PathBuf>,
    /// Directory of the identity key and state (key `data_dir`)
    #[arg(long, global = true, value_name = "DIR")]
    pub data_dir: Option<String>,
    /// The daemon's admin socket (key `admin_socket`)
    #[arg(long, global = true, value_name = "PATH")]
    pub admin_socket: Option<String>,
    /// UDP address to listen on (key `listen`)
    #[arg(long, global = true, value_name = "ADDR")]
    pub listen: Option<String>,
    /// Log filter, RUST_LOG syntax (key `log.level`)
    #[arg(long, global = true, value_name = "FILTER")]
    pub log_level: Option<String>,
    /// Log format: text or json (key `log.format`)
    #[arg(long, global = true, value_name = "FORMAT")]
    pub log_format: Option<String>,
    /// Any configuration key, e.g. --set transport.max_connections=64
    #[arg(long = "set", global = true, value_name = "KEY=VALUE")]
    pub set: Vec<String>,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the daemon
    Run {
        /// A peer to keep connected, <node-id>@<host>:<port> (repeatable)
        #[arg(long = "peer", value_name = "ID@ADDR")]
        peers: Vec<String>,
        /// A node to dial at start, <node-id>@<host>:<port> (repeatable)
        #[arg(long, value_name = "ID@ADDR")]
        bootstrap: Vec<String>,
    },
    /// Create the data directory, the identity key and a configuration file
    Init,
    /// Print this node's <node-id>@<addr>
    Id {
        /// Print JSON instead of text
        #[arg(long)]
        json: bool,
    },
    /// Check or print the configuration
    Config {
        #[command(subcommand)]
        command: ConfigCommand,
    },
    /// Show the daemon's state
    Status {
        /// Print JSON instead of text
        #[arg(long)]
        json: bool,
    },
    /// List connections
    Peers {
        /// Print JSON instead of text
        #[arg(long)]
        json: bool,
    },
    /// List the peer book: every node with a known address, connected or
    /// offline, with where the address came from and when it was last seen
    Book {
        /// Print JSON instead of a table
        #[arg(long)]
        json: bool,
    },
    /// Take a node out of the peer book (and the routing table)
    Forget {
        /// The node's id, or a prefix of it that `peerd book` shows once
        node: String,
    },
    /// Connect to a node: <node-id>@<host>:<port>, or a node id alone to
    /// dial where the peer book or a lookup says it is
    Connect {
        peer: String,
        /// How long the dial may take, e.g. 3s or 500ms (default 10s)
        #[arg(long, value_parser = duration)]
        timeout: Option<Duration>,
        /// Print JSON instead of text
        #[arg(long)]
        json: bool,
    },
    /// Close every connection to a node
    Disconnect { node: String },
    /// Ping a node: <node-id> or <node-id>@<host>:<port>
    Ping {
        target: String,
        /// Pings to send; with more than one, a lost ping is reported and
        /// the next one sent, and a summary ends the output
        #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u32).range(1..))]
        count: u32,
        /// The wait between pings
        #[arg(long, value_parser = duration, default_value = "1s")]
        interval: Duration,
        /// Each ping's deadline, e.g. 3s or 500ms (default 10s)
        #[arg(long, value_parser = duration)]
        timeout: Option<Duration>,
        /// Print JSON instead of text
        #[arg(long)]
        json: bool,
    },
    /// Call a built-in method (Ping, Info, Echo) with a JSON request, or any
    /// method with its request as protobuf bytes in hex (--hex)
    Call {
        /// <node-id> or <node-id>@<host>:<port>
        target: String,
        /// A built-in method's short name, or any method's full name (pkg.v1.Service/Method)
        method: String,
        /// The request as JSON, e.g. '{"payload": "hi"}'; - reads it from stdin
        body: Option<String>,
        /// The request as protobuf bytes in hex, e.g. 0a026869, or - to read them from stdin (requests up to rpc.max_message_size); prints the response's bytes the same way
        #[arg(long, conflicts_with = "body")]
        hex: Option<String>,
        /// The call's deadline, e.g. 3s or 500ms (default 10s)
        #[arg(long, value_parser = duration)]
        timeout: Option<Duration>,
        /// Metadata for the callee, KEY=VALUE (repeatable)
        #[arg(long = "metadata", value_name = "KEY=VALUE", value_parser = metadata_entry)]
        metadata: Vec<(String, String)>,
        /// Print the method's full name and the response as one JSON object
        #[arg(long)]
        json: bool,
    },
    /// Ask up to three peers to dial this node back: is it reachable by
    /// nodes it has not dialed, is it behind NAT, and of what kind
    Netcheck {
        /// Print JSON instead of text
        #[arg(long)]
        json: bool,
    },
    /// List the services this node announces
    Services {
        /// Print JSON instead of text
        #[arg(long)]
        json: bool,
    },
    /// Find the nodes offering a named service
    Find {
        /// The service's name, or name@version for one version
        name: String,
        /// Print JSON instead of text
        #[arg(long)]
        json: bool,
    },
    /// Load a node's built-in Echo from ephemeral identities and report
    /// calls/s, MB/s and latency percentiles
    Bench(BenchArgs),
    /// Exit 0 if the local daemon is up and ready, 1 otherwise
    Health,
    /// Print a shell completion script
    Completions { shell: clap_complete::Shell },
}

#[derive(Debug, Args)]
pub struct BenchArgs {
    /// The node to load: <node-id>@<host>:<port>
    pub target: String,
    /// Calls in flight at once, over all connections
    #[arg(long, default_value_t = 16)]
    pub concurrency: usize,
    /// Payload bytes per call, echoed back (e.g. 1KiB, 64KiB)
    #[arg(long, default_value = "1KiB")]
    pub size: String,
    /// How long to measure (e.g. 10s); ignored with --calls
    #[arg(long, default_value = "10s")]
    pub duration: String,
    /// Measure exactly this many calls instead of a duration
    #[arg(long)]
    pub calls: Option<u64>,
    /// Distinct QUIC connections, each from its own ephemeral node
    #[arg(long, default_value_t = 1)]
    pub connections: usize,
    /// Calls before measuring, not counted
    #[arg(long, default_value = "1s")]
    pub warmup: String,
    /// How long the target waits before each answer, to model a slow service
    #[arg(long, default_value = "0ms")]
    pub server_delay: String,
    /// Deadline of each call
    #[arg(long, default_value = "10s")]
    pub timeout: String,
    /// Print the report as JSON
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Subcommand)]
pub enum ConfigCommand {
    /// Validate the configuration; exit 78 if it is invalid
    Check {
        /// Print the effective configuration
        #[arg(long)]
        print: bool,
    },
}

/// A duration as the configuration writes them ("3s", "500ms", "1m").
fn duration(text: &str) -> Result<Duration, String> {
    peerd_daemon::config::parse_duration(text).map_err(|e| e.to_string())
}

/// `KEY=VALUE`; the value may contain `=`.
fn metadata_entry(text: &str) -> Result<(String, String), String> {
    let (key, value) = text
        .split_once('=')
        .ok_or_else(|| format!("expected KEY=VALUE, got {text:?}"))?;
    Ok((key.to_owned(), value.to_owned()))
}
