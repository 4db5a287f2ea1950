//! Test harness: start the real `sluice` binary on a free loopback port with a
//! chosen engine, wait until it is ready, hand out configured SDK clients,
//! and stop it (gracefully, or with SIGKILL for crash tests), and read a
//! process's footprint from `/proc` (RSS, threads, open fds) and a data
//! directory's size.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// Which engine the server runs.
#[derive(Debug, Clone)]
pub enum Engine {
    /// `--in-memory`.
    Memory,
    /// The durable engine in this directory.
    Durable(PathBuf),
    /// The durable engine in a fresh temporary directory, removed afterwards.
    DurableTemp,
}

/// A running sluice process.
pub struct TestServer {
    child: Option<Child>,
    /// `127.0.0.1:port`.
    pub addr: SocketAddr,
    bin: PathBuf,
    args: Vec<String>,
    _tmp: Option<tempfile::TempDir>,
}

/// How long to wait for a server to become ready.
pub const READY_TIMEOUT: Duration = Duration::from_secs(30);

fn free_port() -> u16 {
    let l = TcpListener::bind("127.0.0.1:0").expect("bind an ephemeral port");
    l.local_addr().expect("local addr").port()
}

/// One `GET path` over a fresh connection; the status code, or None.
pub fn http_get_status(addr: SocketAddr, path: &str) -> Option<u16> {
    let mut s = TcpStream::connect_timeout(&addr, Duration::from_millis(500)).ok()?;
    s.set_read_timeout(Some(Duration::from_secs(2))).ok()?;
    write!(s, "GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n").ok()?;
    let mut buf = Vec::new();
    s.read_to_end(&mut buf).ok()?;
    let text = String::from_utf8_lossy(&buf);
    text.split_whitespace().nth(1)?.parse().ok()
}

impl TestServer {
    /// Starts `bin` (the `sluice` binary) with `engine` and extra flags, and
    /// waits for `/health`.
    pub fn start(bin: &Path, engine: Engine, extra: &[&str]) -> TestServer {
        let (tmp, engine_args) = match engine {
            Engine::Memory => (None, vec!["--in-memory".to_string()]),
            Engine::Durable(dir) => (None, vec!["--data-dir".to_string(), dir.display().to_string()]),
            Engine::DurableTemp => {
                let tmp = tempfile::tempdir().expect("temporary data directory");
                let arg = tmp.path().display().to_string();
                (Some(tmp), vec!["--data-dir".to_string(), arg])
            }
        };
        let mut args = engine_args;
        args.extend(extra.iter().map(|s| s.to_string()));
        let mut s = TestServer {
            child: None,
            addr: SocketAddr::from(([127, 0, 0, 1], free_port())),
            bin: bin.to_path_buf(),
            args,
            _tmp: tmp,
        };
        s.spawn();
        s
    }

    fn spawn(&mut self) {
        self.spawn_unready();
        self.wait_ready();
    }

    fn spawn_unready(&mut self) {
        let child = Command::new(&self.bin)
            .arg("serve")
            .arg("--listen")
            .arg(self.addr.to_string())
            .args(&self.args)
            .env("SLUICE_LOG", std::env::var("SLUICE_TEST_LOG").unwrap_or_else(|_| "warn".into()))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("start the sluice binary");
        self.child = Some(child);
    }

    fn wait_ready(&mut self) {
        let start = Instant::now();
        loop {
            if http_get_status(self.addr, "/health") == Some(200) {
                return;
            }
            if let Some(c) = self.child.as_mut() {
                if let Ok(Some(status)) = c.try_wait() {
                    panic!("sluice exited before becoming ready: {status}");
                }
            }
            assert!(start.elapsed() < READY_TIMEOUT, "sluice not ready after {READY_TIMEOUT:?}");
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// `http://127.0.0.1:port`.
    pub fn endpoint(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// The OS process id.
    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(|c| c.id())
    }

    /// SIGKILL, then wait for the process to be gone.
    pub fn kill(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    /// SIGTERM and wait for a graceful exit; returns the exit code.
    pub fn stop(&mut self) -> Option<i32> {
        let mut c = self.child.take()?;
        // SAFETY: sending a signal to our own child process id.
        unsafe {
            libc::kill(c.id() as i32, libc::SIGTERM);
        }
        c.wait().ok().and_then(|s| s.code())
    }

    /// Starts the same server again and SIGKILLs it `after` the spawn,
    /// without waiting for it to become ready (RELIABILITY.md R1: kills during
    /// start-up and recovery). Returns true when the kill landed before the
    /// server was listening, i.e. during start-up (the port is probed just
    /// before the kill). Call `restart` afterwards.
    pub fn kill_during_startup(&mut self, after: Duration) -> bool {
        self.kill();
        self.spawn_unready();
        std::thread::sleep(after);
        let listening = TcpStream::connect_timeout(&self.addr, Duration::from_millis(50)).is_ok();
        self.kill();
        !listening
    }

    /// Starts the same server again on the same port (after `kill` or `stop`).
    pub fn restart(&mut self) {
        self.kill();
        self.spawn();
    }

    /// An SQS client for this server (static credentials, no IMDS, no retries
    /// hiding errors).
    pub async fn sqs(&self) -> aws_sdk_sqs::Client {
        sqs_client(&self.endpoint()).await
    }
}

impl Drop for TestServer {
    fn drop(&mut self) {
        self.kill();
    }
}

/// An SQS client against `endpoint` with the slim (ring, hyper 1) HTTP stack.
pub async fn sqs_client(endpoint: &str) -> aws_sdk_sqs::Client {
    let http = aws_smithy_http_client::Builder::new()
        .tls_provider(aws_smithy_http_client::tls::Provider::Rustls(
            aws_smithy_http_client::tls::rustls_provider::CryptoMode::Ring,
        ))
        .build_https();
    let conf = aws_config::defaults(aws_config::BehaviorVersion::latest())
        .http_client(http)
        .endpoint_url(endpoint)
        .region(aws_config::Region::new("us-east-1"))
        .credentials_provider(aws_sdk_sqs::config::Credentials::new("AKIDTEST", "secret", None, None, "static"))
        .retry_config(aws_config::retry::RetryConfig::disabled())
        .load()
        .await;
    aws_sdk_sqs::Client::new(&conf)
}

/// A raw HTTP response.
#[derive(Debug, Clone)]
pub struct RawResponse {
    /// Status code.
    pub status: u16,
    /// Headers, names lower-cased.
    pub headers: Vec<(String, String)>,
    /// Body text.
    pub body: String,
}

impl RawResponse {
    /// First header with this (lower-case) name.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.iter().find(|(n, _)| n == name).map(|(_, v)| v.as_str())
    }
}

/// One `GET path` over a fresh connection: the response, or None when the
/// server cannot be reached. The response must not be chunked.
pub fn http_get(addr: SocketAddr, path: &str) -> Option<RawResponse> {
    let mut s = TcpStream::connect_timeout(&addr, Duration::from_millis(500)).ok()?;
    s.set_read_timeout(Some(Duration::from_secs(5))).ok()?;
    write!(s, "GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n").ok()?;
    let mut buf = Vec::new();
    s.read_to_end(&mut buf).ok()?;
    Some(parse_response(&buf))
}

fn parse_response(buf: &[u8]) -> RawResponse {
    let text = String::from_utf8_lossy(buf).to_string();
    let (head, body) = text.split_once("\r\n\r\n").unwrap_or((&text, ""));
    let mut lines = head.lines();
    let status = lines.next().and_then(|l| l.split_whitespace().nth(1)).and_then(|c| c.parse().ok()).unwrap_or(0);
    let headers = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.trim().to_ascii_lowercase(), v.trim().to_string()))
        .collect();
    RawResponse { status, headers, body: body.to_string() }
}

/// Sends one raw `POST /path` with the given headers and body (for malformed
/// input that no SDK would send). The response must not be chunked.
pub fn http_post(addr: SocketAddr, path: &str, headers: &[(&str, &str)], body: &[u8]) -> RawResponse {
    let mut s = TcpStream::connect(addr).expect("connect");
    s.set_read_timeout(Some(Duration::from_secs(30))).expect("timeout");
    let mut req = format!("POST {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\nContent-Length: {}\r\n", body.len());
    for (k, v) in headers {
        req.push_str(&format!("{k}: {v}\r\n"));
    }
    req.push_str("\r\n");
    s.write_all(req.as_bytes()).expect("write head");
    s.write_all(body).expect("write body");
    let mut buf = Vec::new();
    s.read_to_end(&mut buf).expect("read response");
    parse_response(&buf)
}

/// A numeric field of `/proc/<pid>/status` (`VmRSS` in KiB, `Threads`), or
/// None when the process or the field is gone.
pub fn proc_status(pid: u32, field: &str) -> Option<u64> {
    let text = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    text.lines().find_map(|l| l.strip_prefix(field)?.strip_prefix(':')?.split_whitespace().next()?.parse().ok())
}

/// The number of open file descriptors of `pid` (entries of `/proc/<pid>/fd`).
pub fn open_fds(pid: u32) -> Option<u64> {
    Some(std::fs::read_dir(format!("/proc/{pid}/fd")).ok()?.count() as u64)
}

/// The bytes of every regular file under `dir`, recursively (apparent sizes;
/// files that vanish while walking count as 0).
pub fn dir_bytes(dir: &Path) -> u64 {
    let Ok(entries) = std::fs::read_dir(dir) else { return 0 };
    entries
        .flatten()
        .map(|e| match e.metadata() {
            Ok(m) if m.is_dir() => dir_bytes(&e.path()),
            Ok(m) => m.len(),
            Err(_) => 0,
        })
        .sum()
}
