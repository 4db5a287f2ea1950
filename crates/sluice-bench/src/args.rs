//! The command line of `sluice bench`: what to run, against what, how hard, and how to report.
//!
//! `BenchArgs` derives `clap::Args` so the `sluice` binary flattens it under its `bench`
//! subcommand; [`BenchArgs::try_parse_from`] parses it alone (tests, other binaries).

use crate::client::{Protocol, BATCH_ENTRIES_MAX};
use serde::Serialize;
use std::time::Duration;

/// Largest message body the bench sends (SQS's limit).
pub const MESSAGE_BYTES_MAX: usize = 1024 * 1024;
/// Most producer or consumer connections.
pub const CONNECTIONS_MAX: usize = 4096;
/// Most long-poll waiters (sqs-waiters), each a connection and so a file descriptor.
pub const WAITERS_MAX: usize = 100_000;

/// A benchmark scenario.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum ScenarioKind {
    /// SendMessageBatch (SendMessage with `--batch 1`) into one queue.
    SqsSend,
    /// Producers send while consumers long-poll ReceiveMessage(10) and DeleteMessageBatch;
    /// end-to-end latency, lost and duplicated messages.
    SqsRoundtrip,
    /// Like sqs-roundtrip on a `.fifo` queue with many message groups; checks order per group.
    SqsFifo,
    /// Fills a queue to `--backlog` messages, then measures ReceiveMessage(10), SendMessage
    /// and long-poll wake-up latency at that depth.
    SqsBacklog,
    /// Fair queues: one tenant floods a standard queue (a `--flood` backlog, then as fast as it
    /// can) while a quiet tenant sends `--quiet-rate` messages/s; the quiet tenant's
    /// end-to-end latency shows whether it keeps flowing.
    SqsFair,
    /// `--waiters` long polls (WaitTimeSeconds `--wait-secs`) parked across `--queues`
    /// queues, then one send per queue: wake-up latency per send, how many waiters each send
    /// woke, SendMessage latency while they wait, the server's threads, fds and RSS.
    SqsWaiters,
    /// Runs `--shape` against a stub inside the tool: the ceiling of client and machine.
    Ceiling,
}

impl ScenarioKind {
    /// The name as the CLI spells it.
    pub fn name(self) -> &'static str {
        match self {
            ScenarioKind::SqsSend => "sqs-send",
            ScenarioKind::SqsRoundtrip => "sqs-roundtrip",
            ScenarioKind::SqsFifo => "sqs-fifo",
            ScenarioKind::SqsBacklog => "sqs-backlog",
            ScenarioKind::SqsFair => "sqs-fair",
            ScenarioKind::SqsWaiters => "sqs-waiters",
            ScenarioKind::Ceiling => "ceiling",
        }
    }

    /// Whether the scenario receives messages (so its ceiling stub must hand sends back).
    pub fn receives(self) -> bool {
        matches!(self, ScenarioKind::SqsRoundtrip | ScenarioKind::SqsFifo)
    }
}

/// Arguments of `sluice bench`.
#[derive(Debug, Clone, clap::Args)]
pub struct BenchArgs {
    /// Scenario to run.
    #[arg(value_enum)]
    pub scenario: ScenarioKind,

    /// Endpoint of the SQS-compatible server, `http://host:port` (not needed by `ceiling`).
    #[arg(long, env = "SLUICE_BENCH_ENDPOINT")]
    pub endpoint: Option<String>,

    /// Wire protocol of the requests.
    #[arg(long, value_enum, default_value_t = Protocol::Json)]
    pub protocol: Protocol,

    /// Region the requests are signed for.
    #[arg(long, default_value = "us-east-1")]
    pub region: String,

    /// Access key id the requests are signed with.
    #[arg(long, default_value = "test")]
    pub access_key_id: String,

    /// Secret access key the requests are signed with.
    #[arg(long, default_value = "test")]
    pub secret_access_key: String,

    /// Producers; each keeps one send in flight on its own connection.
    #[arg(long, default_value_t = 8)]
    pub connections: usize,

    /// Consumers (sqs-roundtrip, sqs-fifo); each keeps one receive or delete in flight.
    /// A consumer makes two requests per ten messages where a producer makes one, so the
    /// default is twice the producers: consumers keep up and the queue does not grow.
    #[arg(long, default_value_t = 16)]
    pub consumers: usize,

    /// How long producers send (`10s`, `500ms`, `2m`); ignored with --count.
    #[arg(long, default_value = "10s", value_parser = parse_duration)]
    pub duration: Duration,

    /// Send exactly this many messages instead of running for --duration
    /// (sqs-backlog: this many probes per phase).
    #[arg(long)]
    pub count: Option<u64>,

    /// Body size in bytes (at least the 56-byte header the bench puts in every body).
    #[arg(long, default_value_t = 1024)]
    pub message_size: usize,

    /// Messages per send request, 1 to 10 (1 uses SendMessage).
    #[arg(long, default_value_t = 10)]
    pub batch: usize,

    /// Offered rate in messages per second across all producers (open loop); unlimited if absent.
    #[arg(long)]
    pub rate: Option<f64>,

    /// Long-poll WaitTimeSeconds of consumers.
    #[arg(long, default_value_t = 20)]
    pub wait_secs: u32,

    /// After producers stop, how long consumers may take to receive everything acknowledged
    /// before the rest counts as lost.
    #[arg(long, default_value = "30s", value_parser = parse_duration)]
    pub drain: Duration,

    /// Use this queue name (created if missing, kept afterwards) instead of a fresh one.
    #[arg(long)]
    pub queue: Option<String>,

    /// Keep the fresh queue after the run instead of deleting it.
    #[arg(long)]
    pub keep_queue: bool,

    /// Message groups (sqs-fifo).
    #[arg(long, default_value_t = 64)]
    pub groups: usize,

    /// Depth to fill the queue to (sqs-backlog).
    #[arg(long, default_value_t = 1_000_000)]
    pub backlog: u64,

    /// Messages the noisy tenant queues before the quiet tenant starts (sqs-fair).
    #[arg(long, default_value_t = 50_000)]
    pub flood: u64,

    /// The quiet tenant's messages per second (sqs-fair).
    #[arg(long, default_value_t = 50.0)]
    pub quiet_rate: f64,

    /// Concurrent long-poll waiters, each on its own connection (sqs-waiters).
    #[arg(long, default_value_t = 10_000)]
    pub waiters: usize,

    /// Queues the waiters are spread over, one send each (sqs-waiters).
    #[arg(long, default_value_t = 1_000)]
    pub queues: usize,

    /// Longest wait for the server to report every waiter parked before the sends start
    /// (sqs-waiters; servers that do not report it get exactly this long).
    #[arg(long, default_value = "10s", value_parser = parse_duration)]
    pub settle: Duration,

    /// Request shape the `ceiling` scenario drives against its stub.
    #[arg(long, value_enum, default_value_t = ScenarioKind::SqsSend)]
    pub shape: ScenarioKind,

    /// How long the in-process ceiling runs before the scenario (with --count: the same
    /// count instead); 0 skips it.
    #[arg(long, default_value = "5s", value_parser = parse_duration)]
    pub ceiling_duration: Duration,

    /// Ceiling from an earlier `ceiling` run, in messages per second; skips the in-process one.
    #[arg(long)]
    pub ceiling_msgs_per_sec: Option<f64>,

    /// Pid of the server when it is a local process: report its CPU time and peak RSS.
    #[arg(long)]
    pub server_pid: Option<u32>,

    /// Print the report as JSON instead of text.
    #[arg(long)]
    pub json: bool,

    /// Print nothing (no progress line, no report); the caller reads the returned report.
    #[arg(long)]
    pub quiet: bool,
}

#[derive(clap::Parser)]
#[command(name = "sluice-bench", no_binary_name = true)]
struct Standalone {
    #[command(flatten)]
    args: BenchArgs,
}

impl BenchArgs {
    /// Parses arguments as `sluice bench` would, without the program name:
    /// `["sqs-send", "--endpoint", "http://127.0.0.1:4566", "--count", "1000"]`.
    pub fn try_parse_from<I, T>(args: I) -> Result<Self, clap::Error>
    where
        I: IntoIterator<Item = T>,
        T: Into<std::ffi::OsString> + Clone,
    {
        <Standalone as clap::Parser>::try_parse_from(args).map(|s| s.args)
    }

    /// Checks the combinations clap cannot.
    pub fn validate(&self) -> anyhow::Result<()> {
        use anyhow::bail;
        if self.scenario != ScenarioKind::Ceiling && self.endpoint.is_none() {
            bail!("{} needs --endpoint http://host:port", self.scenario.name());
        }
        if self.scenario == ScenarioKind::Ceiling && self.shape == ScenarioKind::Ceiling {
            bail!("--shape names the scenario whose requests the ceiling sends; it cannot be ceiling");
        }
        if self.scenario == ScenarioKind::Ceiling && self.shape == ScenarioKind::SqsWaiters {
            bail!("sqs-waiters has no ceiling: a stub answers long polls at once");
        }
        if !(1..=BATCH_ENTRIES_MAX).contains(&self.batch) {
            bail!("--batch must be 1 to {BATCH_ENTRIES_MAX}, got {}", self.batch);
        }
        if !(1..=CONNECTIONS_MAX).contains(&self.connections) || !(1..=CONNECTIONS_MAX).contains(&self.consumers) {
            bail!("--connections and --consumers must be 1 to {CONNECTIONS_MAX}");
        }
        if self.message_size > MESSAGE_BYTES_MAX {
            bail!("--message-size must be at most {MESSAGE_BYTES_MAX}, got {}", self.message_size);
        }
        if let Some(r) = self.rate {
            if !(r.is_finite() && r > 0.0) {
                bail!("--rate must be a positive number of messages per second");
            }
        }
        if self.count == Some(0) {
            bail!("--count must be at least 1");
        }
        if self.wait_secs > 20 {
            bail!("--wait-secs must be 0 to 20 (SQS's limit)");
        }
        if self.queues == 0 || self.waiters < self.queues || self.waiters > WAITERS_MAX {
            bail!("--queues must be at least 1 and --waiters between --queues and {WAITERS_MAX}");
        }
        if self.scenario == ScenarioKind::SqsWaiters && self.wait_secs == 0 {
            bail!("sqs-waiters needs --wait-secs of at least 1: its waiters long-poll");
        }
        if self.groups == 0 {
            bail!("--groups must be at least 1");
        }
        if self.ceiling_msgs_per_sec.is_some_and(|c| !(c.is_finite() && c > 0.0)) {
            bail!("--ceiling-msgs-per-sec must be a positive number");
        }
        Ok(())
    }
}

/// Parses `10s`, `250ms`, `2m`, `1.5s` or a bare number of seconds.
pub fn parse_duration(s: &str) -> Result<Duration, String> {
    let s = s.trim();
    let (num, unit) = match s.find(|c: char| !(c.is_ascii_digit() || c == '.')) {
        Some(i) => s.split_at(i),
        None => (s, "s"),
    };
    let n: f64 = num.parse().map_err(|_| format!("not a duration: {s:?}"))?;
    let secs = match unit.trim() {
        "ms" => n / 1000.0,
        "s" => n,
        "m" => n * 60.0,
        "h" => n * 3600.0,
        other => return Err(format!("unknown unit {other:?} in {s:?} (ms, s, m, h)")),
    };
    Duration::try_from_secs_f64(secs).map_err(|e| format!("{s:?}: {e}"))
}

#[cfg(test)]
mod tests {
    //! Goal: the command line parses as documented and refuses impossible combinations.
    //! Method: parse argument lists with `try_parse_from` and validate.

    use super::*;

    #[test]
    fn durations_in_every_unit() {
        assert_eq!(parse_duration("10s"), Ok(Duration::from_secs(10)));
        assert_eq!(parse_duration("250ms"), Ok(Duration::from_millis(250)));
        assert_eq!(parse_duration("2m"), Ok(Duration::from_secs(120)));
        assert_eq!(parse_duration("1.5"), Ok(Duration::from_millis(1500)));
        assert!(parse_duration("fast").is_err());
        assert!(parse_duration("3d").is_err());
    }

    #[test]
    fn defaults_and_overrides() {
        let a =
            BenchArgs::try_parse_from(["sqs-roundtrip", "--endpoint", "http://127.0.0.1:1", "--count", "5"]).unwrap();
        assert_eq!(a.scenario, ScenarioKind::SqsRoundtrip);
        assert_eq!((a.connections, a.consumers, a.batch, a.message_size), (8, 16, 10, 1024));
        assert_eq!(a.count, Some(5));
        assert_eq!(a.protocol, Protocol::Json);
        a.validate().unwrap();
        let q = BenchArgs::try_parse_from(["ceiling", "--shape", "sqs-fifo", "--protocol", "query"]).unwrap();
        assert_eq!((q.shape, q.protocol), (ScenarioKind::SqsFifo, Protocol::Query));
        q.validate().unwrap();
    }

    #[test]
    fn impossible_combinations_are_refused() {
        let refused = |args: &[&str]| {
            BenchArgs::try_parse_from(args.iter().copied()).map(|a| a.validate().is_err()).unwrap_or(true)
        };
        assert!(refused(&["sqs-send"]), "no endpoint");
        assert!(refused(&["sqs-send", "--endpoint", "http://h:1", "--batch", "11"]));
        assert!(refused(&["sqs-send", "--endpoint", "http://h:1", "--batch", "0"]));
        assert!(refused(&["sqs-send", "--endpoint", "http://h:1", "--rate", "0"]));
        assert!(refused(&["sqs-send", "--endpoint", "http://h:1", "--wait-secs", "21"]));
        assert!(refused(&["ceiling", "--shape", "ceiling"]));
        assert!(refused(&["sqs-waiters", "--endpoint", "http://h:1", "--waiters", "10", "--queues", "20"]));
        assert!(refused(&["sqs-waiters", "--endpoint", "http://h:1", "--wait-secs", "0"]));
        assert!(refused(&["no-such-scenario"]));
    }
}
