//! Test helpers shared by every crate's tests: real `redis-server` processes (a single server or
//! a local Redis Cluster) on free loopback ports, killed when dropped.
//!
//! The binaries come from `$REDIS_SERVER` / `$REDIS_CLI` or the PATH; `scripts/test.sh` installs
//! them when missing.

use anyhow::{bail, Context, Result};
use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

fn redis_server_bin() -> String {
    std::env::var("REDIS_SERVER").unwrap_or_else(|_| "redis-server".into())
}

fn redis_cli_bin() -> String {
    std::env::var("REDIS_CLI").unwrap_or_else(|_| "redis-cli".into())
}

/// A port that was free a moment ago; below 55535 so that a cluster bus port (+10000) fits.
pub fn free_port() -> Result<u16> {
    for _ in 0..100 {
        let l = TcpListener::bind("127.0.0.1:0")?;
        let port = l.local_addr()?.port();
        if port < 55_535 && TcpListener::bind(("127.0.0.1", port + 10_000)).is_ok() {
            return Ok(port);
        }
    }
    bail!("no free port found")
}

/// Sends one inline command and returns the raw reply (enough for PING and INFO in tests).
pub fn raw_command(port: u16, cmd: &str) -> Result<String> {
    let mut s = TcpStream::connect(("127.0.0.1", port))?;
    s.set_read_timeout(Some(Duration::from_secs(5)))?;
    s.write_all(format!("{cmd}\r\n").as_bytes())?;
    let mut buf = vec![0u8; 1 << 20];
    let mut out = Vec::new();
    // Read until the reply looks complete: a simple line, or a bulk string of the announced size.
    loop {
        let n = s.read(&mut buf)?;
        if n == 0 {
            break;
        }
        out.extend_from_slice(&buf[..n]);
        let text = String::from_utf8_lossy(&out);
        if let Some(rest) = text.strip_prefix('$') {
            if let Some((len, body)) = rest.split_once("\r\n") {
                if let Ok(len) = len.parse::<usize>() {
                    if body.len() >= len + 2 {
                        break;
                    }
                    continue;
                }
            }
        } else if text.ends_with("\r\n") {
            break;
        }
    }
    Ok(String::from_utf8_lossy(&out).into_owned())
}

/// Whether `n` replicas of the primary on `port` acknowledge a write in time: a keyless write
/// (`FUNCTION FLUSH`, replicated; the tests use no functions) then `WAIT n 200` on one
/// connection. Right after a full sync a replica can be `online` and still leave WAIT
/// unanswered for up to a second (its first acknowledgements come from its once-a-second cron).
fn replicas_acknowledge(port: u16, n: usize) -> bool {
    let child = Command::new(redis_cli_bin())
        .args(["-p", &port.to_string()])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn();
    let Ok(mut child) = child else { return false };
    if let Some(mut stdin) = child.stdin.take() {
        let _ = stdin.write_all(format!("FUNCTION FLUSH\nWAIT {n} 200\n").as_bytes());
    }
    child.wait_with_output().is_ok_and(|o| {
        String::from_utf8_lossy(&o.stdout)
            .lines()
            .last()
            .is_some_and(|l| l.trim().parse::<usize>().is_ok_and(|acked| acked >= n))
    })
}

static SEQ: AtomicU32 = AtomicU32::new(0);

/// How many times `EVALSHA` ran on the server on `port` (`INFO commandstats`), to count the
/// script calls a batch made.
pub fn script_calls(port: u16) -> Result<u64> {
    let info = raw_command(port, "INFO commandstats")?;
    Ok(info
        .lines()
        .find_map(|l| l.strip_prefix("cmdstat_evalsha:calls="))
        .and_then(|rest| rest.split(',').next())
        .and_then(|n| n.parse().ok())
        .unwrap_or(0))
}

/// One `redis-server` process on a free loopback port, with no persistence.
pub struct RedisServer {
    child: Option<Child>,
    port: u16,
    dir: PathBuf,
    extra: Vec<String>,
}

impl RedisServer {
    /// Starts a standalone server.
    pub fn start() -> Result<Self> {
        Self::start_with(&[])
    }

    /// Starts a server with extra `redis-server` arguments (e.g. cluster mode).
    pub fn start_with(extra: &[&str]) -> Result<Self> {
        let mut last = None;
        for _ in 0..5 {
            let port = free_port()?;
            let dir = std::env::temp_dir().join(format!(
                "testkit-redis-{}-{}-{}",
                std::process::id(),
                SEQ.fetch_add(1, Ordering::SeqCst),
                port
            ));
            std::fs::create_dir_all(&dir)?;
            let mut s = Self {
                child: None,
                port,
                dir,
                extra: extra.iter().map(|s| s.to_string()).collect(),
            };
            match s.spawn() {
                Ok(()) => return Ok(s),
                Err(e) => last = Some(e),
            }
        }
        Err(last.unwrap_or_else(|| anyhow::anyhow!("redis-server did not start")))
    }

    fn spawn(&mut self) -> Result<()> {
        let child = Command::new(redis_server_bin())
            .args([
                "--port",
                &self.port.to_string(),
                "--bind",
                "127.0.0.1",
                "--save",
                "",
                "--appendonly",
                "no",
            ])
            .args(["--protected-mode", "no", "--daemonize", "no"])
            .arg("--dir")
            .arg(&self.dir)
            .arg("--logfile")
            .arg(self.dir.join("redis.log"))
            .args(&self.extra)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .with_context(|| {
                format!(
                    "starting {} (is redis-server installed?)",
                    redis_server_bin()
                )
            })?;
        self.child = Some(child);
        let deadline = Instant::now() + Duration::from_secs(10);
        while Instant::now() < deadline {
            if let Ok(r) = raw_command(self.port, "PING") {
                if r.starts_with("+PONG") {
                    return Ok(());
                }
            }
            if let Some(c) = self.child.as_mut() {
                if let Ok(Some(status)) = c.try_wait() {
                    self.child = None;
                    bail!("redis-server exited with {status} on port {}", self.port);
                }
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        self.stop();
        bail!("redis-server did not answer on port {}", self.port)
    }

    /// Starts a replica of `primary` (`--replicaof`) and waits until its link to the primary is
    /// up and the first sync is done.
    pub fn start_replica_of(primary: &RedisServer) -> Result<Self> {
        let port = primary.port().to_string();
        // The primary otherwise waits 5 s for more replicas before a diskless full sync.
        raw_command(primary.port(), "CONFIG SET repl-diskless-sync-delay 0")?;
        let replica = Self::start_with(&["--replicaof", "127.0.0.1", &port])?;
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            let info = raw_command(replica.port, "INFO replication").unwrap_or_default();
            // The primary counts a replica in WAIT only once it is `online`, which after a
            // diskless sync is at the replica's first acknowledgement (up to a second later).
            let seen = raw_command(primary.port(), "INFO replication").unwrap_or_default();
            if info.contains("master_link_status:up")
                && seen.contains(&format!("port={},state=online", replica.port))
                && replicas_acknowledge(primary.port(), 1)
            {
                return Ok(replica);
            }
            if Instant::now() > deadline {
                bail!("replica on port {} did not sync with {port}", replica.port);
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Sends a signal to the process (`"STOP"`, `"CONT"`, `"KILL"`...) without forgetting it:
    /// a stopped server keeps its port and state, and [`restart`](Self::restart) or drop still
    /// work after a `KILL`.
    pub fn signal(&self, signal: &str) -> Result<()> {
        let pid = self.pid().context("not running")?;
        let status = Command::new("kill")
            .arg(format!("-{signal}"))
            .arg(pid.to_string())
            .status()?;
        if !status.success() {
            bail!("kill -{signal} {pid} failed");
        }
        Ok(())
    }

    /// The port it listens on.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// The process id, while running (for tests that SIGSTOP a hung server).
    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(|c| c.id())
    }

    /// `redis://127.0.0.1:PORT`.
    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}", self.port)
    }

    /// Kills the process (SIGKILL): Redis is down until [`restart`](Self::restart).
    pub fn stop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    /// Starts the process again on the same port (state is gone: no persistence).
    pub fn restart(&mut self) -> Result<()> {
        self.stop();
        self.spawn()
    }

    /// `used_memory` from `INFO memory`, in bytes.
    pub fn used_memory(&self) -> Result<u64> {
        let info = raw_command(self.port, "INFO memory")?;
        info.lines()
            .find_map(|l| l.strip_prefix("used_memory:"))
            .and_then(|v| v.trim().parse().ok())
            .context("used_memory missing from INFO")
    }
}

impl Drop for RedisServer {
    fn drop(&mut self) {
        self.stop();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// A local Redis Cluster: `primaries` primaries with `replicas` replicas each, all slots
/// assigned, state `ok`.
pub struct RedisCluster {
    /// The nodes, primaries first as `redis-cli --cluster create` assigns them.
    pub nodes: Vec<RedisServer>,
}

impl RedisCluster {
    /// Starts the nodes and joins them into a cluster.
    pub fn start(primaries: usize, replicas: usize) -> Result<Self> {
        let total = primaries * (1 + replicas);
        let mut nodes = Vec::with_capacity(total);
        for _ in 0..total {
            nodes.push(RedisServer::start_with(&[
                "--cluster-enabled",
                "yes",
                "--cluster-config-file",
                "nodes.conf",
                "--cluster-node-timeout",
                "2000",
            ])?);
        }
        let addrs: Vec<String> = nodes
            .iter()
            .map(|n| format!("127.0.0.1:{}", n.port()))
            .collect();
        let out = Command::new(redis_cli_bin())
            .args(["--cluster", "create"])
            .args(&addrs)
            .args(["--cluster-replicas", &replicas.to_string(), "--cluster-yes"])
            .stdin(Stdio::null())
            .output()
            .context("running redis-cli --cluster create (is redis-tools installed?)")?;
        if !out.status.success() {
            bail!(
                "cluster create failed: {}",
                String::from_utf8_lossy(&out.stdout)
            );
        }
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let ok = nodes.iter().all(|n| {
                raw_command(n.port(), "CLUSTER INFO").is_ok_and(|i| i.contains("cluster_state:ok"))
            });
            if ok {
                break;
            }
            if Instant::now() > deadline {
                bail!("cluster did not reach state ok");
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        Ok(Self { nodes })
    }

    /// `redis-cluster://first?node=second&node=...`, the URL form fred and the gateway take.
    pub fn url(&self) -> String {
        let mut url = format!("redis-cluster://127.0.0.1:{}", self.nodes[0].port());
        for (i, n) in self.nodes.iter().enumerate().skip(1) {
            url.push(if i == 1 { '?' } else { '&' });
            url.push_str(&format!("node=127.0.0.1:{}", n.port()));
        }
        url
    }
}

/// One line of `CLUSTER NODES`, as tests need it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClusterNode {
    /// The node id.
    pub id: String,
    /// Its client port on 127.0.0.1.
    pub port: u16,
    /// A primary (flag `master`), as opposed to a replica.
    pub primary: bool,
    /// The id of its primary, for a replica.
    pub primary_id: Option<String>,
    /// Flagged `fail` or `fail?` by the node that answered.
    pub failing: bool,
    /// The slot ranges it serves (inclusive), for a primary.
    pub slots: Vec<(u16, u16)>,
}

impl ClusterNode {
    /// Whether it serves `slot`.
    pub fn serves(&self, slot: u16) -> bool {
        self.slots.iter().any(|&(a, b)| (a..=b).contains(&slot))
    }
}

/// Parses `CLUSTER NODES` output.
fn parse_cluster_nodes(text: &str) -> Vec<ClusterNode> {
    text.lines()
        .filter_map(|line| {
            let f: Vec<&str> = line.split_whitespace().collect();
            if f.len() < 8 {
                return None;
            }
            let port = f[1].split('@').next()?.rsplit(':').next()?.parse().ok()?;
            let flags: Vec<&str> = f[2].split(',').collect();
            let slots = f[8..]
                .iter()
                .filter(|s| !s.starts_with('['))
                .filter_map(|s| match s.split_once('-') {
                    Some((a, b)) => Some((a.parse().ok()?, b.parse().ok()?)),
                    None => s.parse().ok().map(|v| (v, v)),
                })
                .collect();
            Some(ClusterNode {
                id: f[0].to_owned(),
                port,
                primary: flags.contains(&"master"),
                primary_id: (f[3] != "-").then(|| f[3].to_owned()),
                failing: flags.iter().any(|x| *x == "fail" || *x == "fail?"),
                slots,
            })
        })
        .collect()
}

impl RedisCluster {
    /// The hash slot of `key` (`CLUSTER KEYSLOT` on a live node).
    pub fn keyslot(&self, key: &str) -> Result<u16> {
        for n in self.nodes.iter().filter(|n| n.pid().is_some()) {
            if let Ok(r) = raw_command(n.port(), &format!("CLUSTER KEYSLOT {key}")) {
                if let Some(v) = r.strip_prefix(':') {
                    return Ok(v.trim().parse()?);
                }
            }
        }
        bail!("no node answered CLUSTER KEYSLOT")
    }

    /// The cluster as the node on `port` sees it (`CLUSTER NODES`).
    pub fn topology_from(&self, port: u16) -> Result<Vec<ClusterNode>> {
        let raw = raw_command(port, "CLUSTER NODES")?;
        let body = raw
            .strip_prefix('$')
            .and_then(|r| r.split_once("\r\n"))
            .map(|(_, b)| b)
            .context("CLUSTER NODES reply")?;
        Ok(parse_cluster_nodes(body))
    }

    /// The cluster as the first running node sees it.
    pub fn topology(&self) -> Result<Vec<ClusterNode>> {
        let mut last = None;
        for n in self.nodes.iter().filter(|n| n.pid().is_some()) {
            match self.topology_from(n.port()) {
                Ok(t) => return Ok(t),
                Err(e) => last = Some(e),
            }
        }
        Err(last.unwrap_or_else(|| anyhow::anyhow!("no running node")))
    }

    /// Waits until every running replica has its link to its primary up (the first sync done)
    /// and its primary counts it as `online` (what `WAIT` counts): `start` returns when the
    /// slots are served, possibly before the replicas have synced.
    pub fn wait_for_replicas(&self) -> Result<()> {
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            let infos: Vec<String> = self
                .nodes
                .iter()
                .filter(|n| n.pid().is_some())
                .map(|n| raw_command(n.port(), "INFO replication").unwrap_or_default())
                .collect();
            let is_replica = |i: &&String| i.contains("role:slave");
            let replicas = infos.iter().filter(is_replica).count();
            let linked = infos
                .iter()
                .filter(is_replica)
                .all(|i| i.contains("master_link_status:up"));
            let online: usize = infos
                .iter()
                .filter(|i| i.contains("role:master"))
                .map(|i| i.matches("state=online").count())
                .sum();
            let acknowledged = || {
                self.nodes
                    .iter()
                    .filter(|n| n.pid().is_some())
                    .zip(&infos)
                    .filter(|(_, i)| i.contains("role:master") && i.contains("state=online"))
                    .all(|(n, i)| replicas_acknowledge(n.port(), i.matches("state=online").count()))
            };
            if linked && online == replicas && acknowledged() {
                return Ok(());
            }
            if Instant::now() > deadline {
                bail!("replicas did not sync");
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// The index in [`nodes`](Self::nodes) of the node on `port`.
    pub fn index_of(&self, port: u16) -> Option<usize> {
        self.nodes.iter().position(|n| n.port() == port)
    }
}

/// Runs a suite's async checks one after another on one context: `run_checks!(&c, a, b)` is
/// `a(&c).await; b(&c).await;`, so that a suite is the list of its checks.
#[macro_export]
macro_rules! run_checks {
    ($ctx:expr, $($check:path),+ $(,)?) => {{
        let ctx = $ctx;
        $($check(ctx).await;)+
    }};
}
