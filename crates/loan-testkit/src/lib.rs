//! Test support shared by the crates' integration tests: a throwaway nats-server, and a
//! throwaway three-node JetStream cluster ([`cluster::NatsCluster`]).
//!
//! Each [`NatsServer`] runs its own nats-server process on a free loopback port with its
//! JetStream store in a fresh temporary directory, so test runs never collide. The
//! binary comes from `LOAN_NATS_SERVER_BIN` or the project's `.tools/bin/nats-server`
//! (installed by `scripts/test`); when neither exists the test fails with a message
//! saying how to get one — it never silently skips.

pub mod cluster;
pub mod postgres;

pub use cluster::NatsCluster;

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// How the server syncs JetStream writes to disk.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Sync {
    /// `sync_interval: always`: fsync before each PubAck (the project's production setting).
    Always,
    /// The server default (periodic fsync).
    Default,
}

/// A running nats-server; killed (and its store deleted) on drop.
pub struct NatsServer {
    child: Option<Child>,
    port: u16,
    store: tempfile::TempDir,
    sync: Sync,
}

/// The nats-server binary the tests use.
pub fn nats_server_binary() -> PathBuf {
    if let Some(path) = std::env::var_os("LOAN_NATS_SERVER_BIN") {
        return PathBuf::from(path);
    }
    let local = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../.tools/bin/nats-server");
    if local.exists() {
        return local;
    }
    panic!(
        "no nats-server for the tests: run `scripts/test` (it installs a pinned one into .tools/), \
         or set LOAN_NATS_SERVER_BIN to a nats-server 2.10.23 or newer"
    );
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free loopback port")
}

impl NatsServer {
    /// Starts a server with `sync_interval: always`.
    pub fn start() -> Self {
        Self::start_with(Sync::Always)
    }

    pub fn start_with(sync: Sync) -> Self {
        let store = tempfile::tempdir().expect("temp dir for the JetStream store");
        let mut server = NatsServer {
            child: None,
            port: free_port(),
            store,
            sync,
        };
        server.spawn();
        server
    }

    fn spawn(&mut self) {
        let sync = match self.sync {
            Sync::Always => "sync_interval: always",
            Sync::Default => "",
        };
        let config = format!(
            "listen: 127.0.0.1:{port}\njetstream {{\n  store_dir: {store:?}\n  {sync}\n}}\nmax_payload: 4MB\n",
            port = self.port,
            store = self.store.path().join("js"),
        );
        let config_path = self.store.path().join("nats.conf");
        std::fs::write(&config_path, config).expect("write nats-server config");
        let binary = nats_server_binary();
        let child = Command::new(&binary)
            .arg("-c")
            .arg(&config_path)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {}: {e}", binary.display()));
        self.child = Some(child);
        let deadline = Instant::now() + Duration::from_secs(10);
        while std::net::TcpStream::connect(("127.0.0.1", self.port)).is_err() {
            assert!(
                Instant::now() < deadline,
                "nats-server did not listen on port {} within 10 s",
                self.port
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// `nats://127.0.0.1:<port>`.
    pub fn url(&self) -> String {
        format!("nats://127.0.0.1:{}", self.port)
    }

    /// Kills the server (SIGKILL: no clean shutdown) and starts it again on the same
    /// port and store, as after a crash.
    pub fn crash_and_restart(&mut self) {
        self.kill();
        self.spawn();
    }

    /// Starts a killed server again on the same port and store.
    pub fn restart(&mut self) {
        assert!(
            self.child.is_none(),
            "the server is still running: kill it first"
        );
        self.spawn();
    }

    /// Kills the server (SIGKILL: no clean shutdown); [`NatsServer::restart`] starts it
    /// again.
    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

impl Drop for NatsServer {
    fn drop(&mut self) {
        self.kill();
    }
}

/// Valid synthetic identity numbers for tests and benchmarks (never real people's).
pub mod synthetic {
    /// An 18-character resident ID: `body17` plus its ISO 7064 MOD 11-2 check character.
    pub fn national_id(body17: &str) -> String {
        const WEIGHTS: [u32; 17] = [7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2];
        let sum: u32 = body17
            .chars()
            .zip(WEIGHTS)
            .map(|(c, w)| c.to_digit(10).unwrap_or(0) * w)
            .sum();
        format!("{body17}{}", b"10X98765432"[(sum % 11) as usize] as char)
    }

    /// A card number: `body` plus its Luhn check digit.
    pub fn bank_card(body: &str) -> String {
        let sum: u32 = body
            .chars()
            .rev()
            .enumerate()
            .map(|(i, c)| {
                let d = c.to_digit(10).unwrap_or(0);
                if i % 2 == 0 {
                    let doubled = d * 2;
                    if doubled > 9 { doubled - 9 } else { doubled }
                } else {
                    d
                }
            })
            .sum();
        format!("{body}{}", (10 - sum % 10) % 10)
    }
}
