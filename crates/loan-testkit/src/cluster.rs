//! A throwaway three-node JetStream cluster, for proving what replicated streams
//! promise: the same nats-server binary as [`crate::NatsServer`], every node on free
//! loopback ports with its own store directory and `sync_interval: always`, and any
//! node can be killed with SIGKILL and started again on the same ports and store.
//!
//! [`NatsCluster::start`] returns once every node reports healthy on its monitoring
//! endpoint (`/healthz`: JetStream enabled, a meta leader elected, its streams current)
//! and the meta group has every node as a current peer (`/jsz`), so a test can create R3
//! streams straight away.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::{free_port, nats_server_binary};

/// How long a node may take to become healthy (meta leader elected, streams caught up).
const HEALTHY_WITHIN: Duration = Duration::from_secs(30);

/// One node of the cluster.
struct Node {
    name: String,
    client_port: u16,
    monitor_port: u16,
    config: PathBuf,
    child: Option<Child>,
}

/// A running JetStream cluster; every node is killed (and the stores deleted) on drop.
pub struct NatsCluster {
    nodes: Vec<Node>,
    _dir: tempfile::TempDir,
}

impl NatsCluster {
    /// Starts three nodes (`n1`, `n2`, `n3`) and waits until all are healthy.
    pub fn start() -> Self {
        Self::start_nodes(3)
    }

    /// Starts `size` nodes and waits until all are healthy.
    pub fn start_nodes(size: usize) -> Self {
        assert!(size >= 1, "a cluster has at least one node");
        let dir = tempfile::tempdir().expect("temp dir for the cluster");
        let route_ports: Vec<u16> = (0..size).map(|_| free_port()).collect();
        let routes = route_ports
            .iter()
            .map(|port| format!("nats-route://127.0.0.1:{port}"))
            .collect::<Vec<_>>()
            .join(", ");
        let mut nodes = Vec::with_capacity(size);
        for (index, route_port) in route_ports.iter().enumerate() {
            let name = format!("n{}", index + 1);
            let client_port = free_port();
            let monitor_port = free_port();
            let node_dir = dir.path().join(&name);
            std::fs::create_dir_all(&node_dir).expect("node directory");
            let config = format!(
                "server_name: {name}\n\
                 listen: 127.0.0.1:{client_port}\n\
                 http: 127.0.0.1:{monitor_port}\n\
                 max_payload: 4MB\n\
                 jetstream {{\n  store_dir: {store:?}\n  sync_interval: always\n}}\n\
                 cluster {{\n  name: loan-test\n  listen: 127.0.0.1:{route_port}\n  routes: [{routes}]\n}}\n",
                store = node_dir.join("js"),
            );
            let config_path = node_dir.join("nats.conf");
            std::fs::write(&config_path, config).expect("write nats-server config");
            nodes.push(Node {
                name,
                client_port,
                monitor_port,
                config: config_path,
                child: None,
            });
        }
        let mut cluster = NatsCluster { nodes, _dir: dir };
        for index in 0..cluster.nodes.len() {
            cluster.spawn(index);
        }
        for index in 0..cluster.nodes.len() {
            cluster.wait_healthy(index);
        }
        cluster.wait_for_meta_group();
        cluster
    }

    /// The node names (`server_name`, as stream info reports a leader), in order.
    pub fn names(&self) -> Vec<String> {
        self.nodes.iter().map(|node| node.name.clone()).collect()
    }

    /// The client URL of every node.
    pub fn urls(&self) -> Vec<String> {
        self.nodes
            .iter()
            .map(|node| format!("nats://127.0.0.1:{}", node.client_port))
            .collect()
    }

    /// The client URLs of every node, comma-separated (the form the command service's
    /// `--nats-url` takes).
    pub fn url_list(&self) -> String {
        self.urls().join(",")
    }

    /// The client URL of the node called `name`.
    pub fn url(&self, name: &str) -> String {
        format!(
            "nats://127.0.0.1:{}",
            self.nodes[self.index(name)].client_port
        )
    }

    /// Kills the node (SIGKILL: no clean shutdown, nothing flushed beyond what its
    /// `sync_interval: always` already fsynced).
    pub fn kill(&mut self, name: &str) {
        let index = self.index(name);
        if let Some(mut child) = self.nodes[index].child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Starts a killed node again on its ports and store, and waits until it is healthy
    /// (rejoined, its stream replicas caught up).
    pub fn restart(&mut self, name: &str) {
        let index = self.index(name);
        assert!(
            self.nodes[index].child.is_none(),
            "node {name} is still running: kill it first"
        );
        self.spawn(index);
        self.wait_healthy(index);
        if self.nodes.iter().all(|node| node.child.is_some()) {
            self.wait_for_meta_group();
        }
    }

    /// Whether the node called `name` is running.
    pub fn is_running(&self, name: &str) -> bool {
        self.nodes[self.index(name)].child.is_some()
    }

    fn index(&self, name: &str) -> usize {
        self.nodes
            .iter()
            .position(|node| node.name == name)
            .unwrap_or_else(|| panic!("no node called {name} in {:?}", self.names()))
    }

    fn spawn(&mut self, index: usize) {
        let node = &mut self.nodes[index];
        let binary = nats_server_binary();
        let child = Command::new(&binary)
            .arg("-c")
            .arg(&node.config)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {}: {e}", binary.display()));
        node.child = Some(child);
    }

    /// Waits until the node's `/healthz` answers 200 (bounded).
    fn wait_healthy(&mut self, index: usize) {
        let deadline = Instant::now() + HEALTHY_WITHIN;
        let node = &mut self.nodes[index];
        loop {
            if let Some(child) = node.child.as_mut() {
                if let Ok(Some(status)) = child.try_wait() {
                    panic!("nats-server node {} exited: {status}", node.name);
                }
            }
            let last = healthz(node.monitor_port);
            if matches!(last, Ok(200)) {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "node {} was not healthy within {HEALTHY_WITHIN:?}: {last:?}",
                node.name
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

impl NatsCluster {
    /// Waits until every node names the same meta leader, and that leader counts every
    /// other node as a current peer (bounded): only then can streams be placed on all
    /// nodes.
    fn wait_for_meta_group(&self) {
        let deadline = Instant::now() + HEALTHY_WITHIN;
        loop {
            let views: Vec<Option<serde_json::Value>> = self
                .nodes
                .iter()
                .map(|node| {
                    http_get(node.monitor_port, "/jsz")
                        .ok()
                        .filter(|(status, _)| *status == 200)
                        .and_then(|(_, body)| serde_json::from_str(&body).ok())
                })
                .collect();
            let leaders: Vec<Option<&str>> = views
                .iter()
                .map(|view| view.as_ref()?["meta_cluster"]["leader"].as_str())
                .collect();
            let agreed = leaders[0].filter(|leader| {
                !leader.is_empty() && leaders.iter().all(|other| *other == Some(*leader))
            });
            let complete = agreed.is_some_and(|leader| {
                self.nodes
                    .iter()
                    .zip(&views)
                    .find(|(node, _)| node.name == leader)
                    .and_then(|(_, view)| {
                        view.as_ref()?["meta_cluster"]["replicas"]
                            .as_array()
                            .cloned()
                    })
                    .is_some_and(|peers| {
                        peers.len() + 1 == self.nodes.len()
                            && peers.iter().all(|peer| peer["current"] == true)
                    })
            });
            if complete {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "the JetStream meta group did not form within {HEALTHY_WITHIN:?}: {leaders:?}"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

impl Drop for NatsCluster {
    fn drop(&mut self) {
        for node in &mut self.nodes {
            if let Some(mut child) = node.child.take() {
                let _ = child.kill();
                let _ = child.wait();
            }
        }
    }
}

/// The status code of `GET /healthz` on a node's monitoring port.
fn healthz(port: u16) -> std::io::Result<u16> {
    http_get(port, "/healthz").map(|(status, _)| status)
}

/// `GET path` on a node's monitoring port: status code and body.
fn http_get(port: u16, path: &str) -> std::io::Result<(u16, String)> {
    let mut stream = TcpStream::connect(("127.0.0.1", port))?;
    stream.set_read_timeout(Some(Duration::from_secs(2)))?;
    stream.write_all(
        // HTTP/1.0: the body comes whole, never chunked.
        format!("GET {path} HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n").as_bytes(),
    )?;
    let mut response = String::new();
    stream.read_to_string(&mut response)?;
    let invalid = || {
        std::io::Error::new(
            std::io::ErrorKind::InvalidData,
            format!("not an HTTP response: {response:?}"),
        )
    };
    let (head, body) = response.split_once("\r\n\r\n").ok_or_else(invalid)?;
    let status = head
        .split_whitespace()
        .nth(1)
        .and_then(|code| code.parse().ok())
        .ok_or_else(invalid)?;
    Ok((status, body.to_owned()))
}
