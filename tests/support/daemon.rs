//! A real `peerd run` process on loopback, driven through the CLI as an
//! operator would: start, client subcommands, SIGTERM, SIGKILL, restart.

use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Output, Stdio};
use std::sync::mpsc;
use std::time::Duration;

use peerd::NodeId;

const PEERD: &str = env!("CARGO_BIN_EXE_peerd");
const STARTUP: Duration = Duration::from_secs(20);

/// A `peerd` command with a private HOME and none of the runner's PEERD_*,
/// RUST_LOG, XDG_* or systemd directory variables.
pub fn peerd(home: &Path) -> Command {
    private_env(Command::new(PEERD), home)
}

/// `peerd` run inside the network namespace `netns` (`ip netns exec`), with
/// the environment of [`peerd`].
pub fn peerd_in(netns: &str, home: &Path) -> Command {
    let mut command = Command::new("ip");
    command.args(["netns", "exec", netns, PEERD]);
    private_env(command, home)
}

fn private_env(mut command: Command, home: &Path) -> Command {
    for (name, _) in std::env::vars_os() {
        let name = name.to_string_lossy().into_owned();
        if name.starts_with("PEERD_") || name == "RUST_LOG" || name.starts_with("XDG_") {
            command.env_remove(name);
        }
    }
    command
        .env("HOME", home)
        .env_remove("STATE_DIRECTORY")
        .env_remove("RUNTIME_DIRECTORY");
    command
}

pub struct Daemon {
    child: Child,
    pub dir: PathBuf,
    pub id: NodeId,
    pub addr: SocketAddr,
    /// Where its metrics listener is, if it printed one.
    pub metrics: Option<SocketAddr>,
    stderr: mpsc::Receiver<String>,
}

impl Daemon {
    /// Starts `peerd run` on 127.0.0.1 with a free port, data in `dir`.
    pub fn start(dir: &Path, extra: &[&str]) -> Self {
        Self::start_at(dir, "127.0.0.1:0", extra)
    }

    /// Starts `peerd run` listening on `listen`, with its metrics listener
    /// on a free port (parallel daemons would collide on the default).
    pub fn start_at(dir: &Path, listen: &str, extra: &[&str]) -> Self {
        let mut command = peerd(dir);
        command
            .args(["run", "--listen", listen, "--data-dir"])
            .arg(dir)
            .args(["--set", "metrics.listen=127.0.0.1:0"])
            .args(extra);
        Self::spawn(command, dir)
    }

    /// Spawns `command` (a `peerd run`) and waits for it to say where it is.
    pub fn spawn(mut command: Command, dir: &Path) -> Self {
        command.stdout(Stdio::piped()).stderr(Stdio::piped());
        let mut child = command.spawn().expect("spawn peerd run");
        let stdout = forward_lines(BufReader::new(child.stdout.take().unwrap()));
        let stderr = forward_lines(BufReader::new(child.stderr.take().unwrap()));
        let mut metrics = None;
        let reach = loop {
            let line = stdout
                .recv_timeout(STARTUP)
                .expect("the daemon printed its address");
            if let Some(url) = line.strip_prefix("metrics: http://") {
                metrics = url.strip_suffix("/metrics").and_then(|a| a.parse().ok());
            }
            if let Some(rest) = line.strip_prefix("reach: ") {
                break rest.to_owned();
            }
        };
        let (id, addr) = reach.split_once('@').unwrap();
        Self {
            child,
            dir: dir.to_owned(),
            id: id.parse().unwrap(),
            addr: addr.parse().unwrap(),
            metrics,
            stderr,
        }
    }

    /// Resident memory of the daemon process.
    pub fn rss_bytes(&self) -> u64 {
        let statm = std::fs::read_to_string(format!("/proc/{}/statm", self.child.id()));
        let pages: u64 = statm
            .unwrap_or_default()
            .split_whitespace()
            .nth(1)
            .and_then(|p| p.parse().ok())
            .unwrap_or(0);
        pages * 4096
    }

    pub fn peer_addr(&self) -> String {
        format!("{}@{}", self.id, self.addr)
    }

    /// Runs a client subcommand against this daemon.
    pub fn cli(&self, args: &[&str]) -> Output {
        peerd(&self.dir)
            .arg("--data-dir")
            .arg(&self.dir)
            .args(args)
            .output()
            .unwrap()
    }

    pub fn cli_ok(&self, args: &[&str]) -> String {
        let output = self.cli(args);
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(output.status.success(), "peerd {args:?} failed: {stderr}");
        String::from_utf8(output.stdout).unwrap()
    }

    pub fn status(&self) -> serde_json::Value {
        serde_json::from_str(&self.cli_ok(&["status", "--json"])).unwrap()
    }

    pub fn terminate(&self) {
        let pid = self.child.id().to_string();
        assert!(
            Command::new("kill")
                .args(["-TERM", &pid])
                .status()
                .unwrap()
                .success()
        );
    }

    /// SIGKILL: no close frame, no cleanup.
    pub fn kill_9(&mut self) {
        self.child.kill().unwrap();
        self.child.wait().unwrap();
    }

    /// The exit status, if the daemon has exited.
    pub fn try_exit(&mut self) -> Option<ExitStatus> {
        self.child.try_wait().unwrap()
    }

    pub fn wait_exit(&mut self, within: Duration) -> ExitStatus {
        let deadline = std::time::Instant::now() + within;
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                return status;
            }
            assert!(
                std::time::Instant::now() < deadline,
                "the daemon did not exit in time"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// What the daemon logged so far.
    pub fn stderr_lines(&self) -> Vec<String> {
        self.stderr.try_iter().collect()
    }

    /// Whether the daemon logs a line for which `matches` holds within
    /// `within` (lines read while waiting are consumed).
    pub fn logs_within(&self, within: Duration, matches: impl Fn(&str) -> bool) -> bool {
        let deadline = std::time::Instant::now() + within;
        while let Some(left) = deadline.checked_duration_since(std::time::Instant::now()) {
            match self.stderr.recv_timeout(left) {
                Ok(line) if matches(&line) => return true,
                Ok(_) => {}
                Err(_) => return false,
            }
        }
        false
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Blocks until `condition` holds or `within` passes, checking every 100 ms
/// (a check may run a CLI command); whether it held.
pub fn wait_for(within: Duration, mut condition: impl FnMut() -> bool) -> bool {
    let deadline = std::time::Instant::now() + within;
    while std::time::Instant::now() < deadline {
        if condition() {
            return true;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    false
}

/// Reads lines on a thread, so the daemon never blocks on a full pipe.
fn forward_lines(reader: impl BufRead + Send + 'static) -> mpsc::Receiver<String> {
    let (lines, received) = mpsc::channel();
    std::thread::spawn(move || {
        for line in reader.lines().map_while(Result::ok) {
            let _ = lines.send(line);
        }
    });
    received
}

/// `GET path` on a daemon's metrics listener: the whole response, head and
/// body.
pub fn http_get(addr: SocketAddr, path: &str) -> String {
    use std::io::{Read, Write};
    let mut stream = std::net::TcpStream::connect(addr).expect("connect to the metrics listener");
    stream
        .set_read_timeout(Some(Duration::from_secs(5)))
        .unwrap();
    write!(stream, "GET {path} HTTP/1.1\r\nHost: {addr}\r\n\r\n").unwrap();
    let mut answer = String::new();
    let _ = stream.read_to_string(&mut answer);
    answer
}
