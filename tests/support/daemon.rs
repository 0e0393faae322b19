//! A real `peerd run` process on loopback, for faults only a process can
//! have: being killed with SIGKILL, restarting on the same address.

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

use peerd::NodeId;

const PEERD: &str = env!("CARGO_BIN_EXE_peerd");
const STARTUP: Duration = Duration::from_secs(20);

pub struct Daemon {
    child: Child,
    pub id: NodeId,
    pub addr: std::net::SocketAddr,
}

impl Daemon {
    /// Starts `peerd run` with its data in `dir`, listening on `listen`.
    pub fn start(dir: &Path, listen: &str, settings: &[&str]) -> Self {
        let mut command = Command::new(PEERD);
        command
            .env_clear()
            .env("HOME", dir)
            .env("PATH", std::env::var_os("PATH").unwrap_or_default())
            .args(["run", "--listen", listen, "--data-dir"])
            .arg(dir)
            .arg("--admin-socket")
            .arg(dir.join("admin.sock"))
            .args(["--set", "metrics.listen=127.0.0.1:0"]);
        for setting in settings {
            command.args(["--set", setting]);
        }
        let mut child = command
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("spawn peerd run");
        let (lines, reach) = mpsc::channel();
        let stdout = BufReader::new(child.stdout.take().unwrap());
        std::thread::spawn(move || {
            for line in stdout.lines().map_while(Result::ok) {
                let _ = lines.send(line);
            }
        });
        let reach_line = loop {
            let line = reach
                .recv_timeout(STARTUP)
                .expect("the daemon printed its address");
            if let Some(rest) = line.strip_prefix("reach: ") {
                break rest.to_owned();
            }
        };
        let (id, addr) = reach_line.split_once('@').unwrap();
        Self {
            child,
            id: id.parse().unwrap(),
            addr: addr.parse().unwrap(),
        }
    }

    /// SIGKILL: no close frame, no cleanup.
    pub fn kill_9(&mut self) {
        self.child.kill().unwrap();
        self.child.wait().unwrap();
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
