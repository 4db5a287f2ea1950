//! The result of a run ([`Report`]) and its two renderings: a human summary and JSON.
//!
//! Scenarios fill it in; `lib.rs` adds the ceiling. Field names carry their units.

use crate::procfs::ProcessUsage;
use crate::stats::{LatencySummary, Throughput};
use crate::tracker::Accounting;
use serde::Serialize;
use std::collections::BTreeMap;
use std::fmt::Write;

/// Everything a run measured.
#[derive(Debug, Clone, Serialize)]
pub struct Report {
    /// Scenario name (`sqs-send`, ..., or `ceiling`).
    pub scenario: String,
    /// For `ceiling`: the shape driven against the stub.
    pub shape: Option<String>,
    /// The endpoint measured (`stub` for the ceiling).
    pub endpoint: String,
    /// Wire protocol.
    pub protocol: String,
    /// The settings that shape the load.
    pub settings: Settings,
    /// Run id written into the bodies (hex).
    pub run_id: String,
    /// Headline throughput.
    pub throughput: Throughput,
    /// What the headline counts, e.g. `acknowledged sends` or `deliveries`.
    pub throughput_basis: String,
    /// Throughput of acknowledged sends alone (the producers' window).
    pub send_throughput: Throughput,
    /// Messages acknowledged by the server.
    pub sent: u64,
    /// Messages whose send failed.
    pub send_failed: u64,
    /// Messages received (all deliveries, including duplicates and foreign ones).
    pub received: u64,
    /// Messages deleted.
    pub deleted: u64,
    /// Received messages not sent by this run.
    pub foreign: u64,
    /// Failed operations (requests or batch entries).
    pub errors: u64,
    /// A few distinct error messages.
    pub error_samples: Vec<String>,
    /// Lost/duplicate/order accounting (scenarios that receive).
    pub accounting: Option<Accounting>,
    /// Latency summaries by operation (`SendMessageBatch`, `ReceiveMessage`, `end-to-end`, ...).
    pub latency: BTreeMap<String, LatencySummary>,
    /// The ceiling this run is compared with.
    pub ceiling: Option<Ceiling>,
    /// The server's CPU time and memory over the measured window (`--server-pid`).
    pub server: Option<ProcessUsage>,
    /// The bench's own CPU time (includes the stub when measuring the ceiling).
    pub client: Option<ProcessUsage>,
    /// sqs-backlog: the fill and the depth reached.
    pub backlog: Option<BacklogFigures>,
    /// sqs-waiters: who was woken by what, and the server's footprint while they wait.
    pub waiters: Option<WaiterFigures>,
}

/// The settings that shape the load.
#[derive(Debug, Clone, Serialize)]
pub struct Settings {
    /// Producers.
    pub connections: usize,
    /// Consumers.
    pub consumers: usize,
    /// Messages per send.
    pub batch: usize,
    /// Body bytes.
    pub message_size: usize,
    /// Offered rate, messages per second.
    pub rate: Option<f64>,
    /// Producer run time, seconds (when not counting).
    pub duration_secs: Option<f64>,
    /// Messages to send (when counting).
    pub count: Option<u64>,
}

/// The ceiling and this run's share of it.
#[derive(Debug, Clone, Serialize)]
pub struct Ceiling {
    /// Messages per second against the stub, same shape.
    pub msgs_per_sec: f64,
    /// Where the figure comes from.
    pub source: String,
    /// This run's headline throughput divided by the ceiling.
    pub fraction: f64,
}

/// What the backlog scenario filled.
#[derive(Debug, Clone, Serialize)]
pub struct BacklogFigures {
    /// Messages the fill sent (acknowledged).
    pub filled: u64,
    /// Depth the server reported after the fill (`ApproximateNumberOfMessages`).
    pub depth_reported: Option<u64>,
    /// Fill throughput.
    pub fill: Throughput,
    /// Long-poll wake-up probes that timed out or failed.
    pub wakeup_misses: u64,
}

/// What the waiters scenario counted.
#[derive(Debug, Clone, Default, Serialize)]
pub struct WaiterFigures {
    /// Long polls started.
    pub waiters: u64,
    /// Queues they were spread over (one send each).
    pub queues: u64,
    /// Their WaitTimeSeconds.
    pub wait_secs: u32,
    /// Parked waiters the server reported (`/health`) when the sends started, if it reports them.
    pub parked_reported: Option<u64>,
    /// Seconds from the first waiter's request to the sends.
    pub ramp_secs: f64,
    /// Sends acknowledged.
    pub sends: u64,
    /// Sends whose message exactly one waiter received.
    pub woke_exactly_one: u64,
    /// Sends whose message no waiter received and that was found in its queue afterwards.
    pub left_in_queue: u64,
    /// Sends whose message no waiter received and that was not in its queue afterwards.
    pub lost: u64,
    /// Deliveries beyond the first of a send's message.
    pub duplicates: u64,
    /// Waiters answered empty after their full wait (no message for them).
    pub empty_at_wait_end: u64,
    /// Waiters answered empty before their wait ran out (spurious wake-ups).
    pub empty_early: u64,
    /// Waiters answered with an error (e.g. `RequestThrottled` past the server's cap).
    pub refused: u64,
    /// Server threads before the waiters and while they waited (`--server-pid`).
    pub server_threads_idle: Option<u64>,
    /// Server threads while the waiters waited.
    pub server_threads_parked: Option<u64>,
    /// Server open file descriptors while the waiters waited.
    pub server_fds_parked: Option<u64>,
    /// Server RSS before the waiters, MiB.
    pub server_rss_idle_mib: Option<f64>,
    /// Server RSS while the waiters waited, MiB.
    pub server_rss_parked_mib: Option<f64>,
}

impl Report {
    /// The report as pretty JSON.
    pub fn to_json(&self) -> String {
        serde_json::to_string_pretty(self).unwrap_or_else(|e| format!("{{\"error\":\"{e}\"}}"))
    }

    /// The human summary.
    pub fn to_human(&self) -> String {
        let mut s = String::new();
        let st = &self.settings;
        let title = match &self.shape {
            Some(shape) => format!("{} ({shape} shape) against the built-in stub", self.scenario),
            None => format!("{} against {}", self.scenario, self.endpoint),
        };
        let _ = writeln!(s, "sluice bench {title}");
        let load = match (st.count, st.duration_secs) {
            (Some(c), _) => format!("{c} messages"),
            (None, Some(d)) => format!("{d:.1} s"),
            _ => String::new(),
        };
        let rate = st.rate.map(|r| format!(", offered {} msg/s", group(r))).unwrap_or_default();
        let _ = writeln!(
            s,
            "  load        {}, {} producers, {} consumers, batch {}, {} B bodies, {load}{rate}, run {}",
            self.protocol, st.connections, st.consumers, st.batch, st.message_size, self.run_id
        );
        let t = &self.throughput;
        let _ = writeln!(
            s,
            "  throughput  {} msg/s  {:.1} MB/s  ({} {} in {:.2} s)",
            group(t.msgs_per_sec),
            t.mb_per_sec,
            t.messages,
            self.throughput_basis,
            t.secs
        );
        if let Some(c) = &self.ceiling {
            let _ = writeln!(
                s,
                "  ceiling     {} msg/s ({}); this run = {:.1} % of it",
                group(c.msgs_per_sec),
                c.source,
                c.fraction * 100.0
            );
        }
        let _ = writeln!(
            s,
            "  messages    sent {}  send-failed {}  received {}  deleted {}  foreign {}  errors {}",
            self.sent, self.send_failed, self.received, self.deleted, self.foreign, self.errors
        );
        if let Some(a) = &self.accounting {
            let _ = writeln!(
                s,
                "  accounting  delivered {}  lost {}  duplicates {}  delivered-unacknowledged {}  order-violations {}",
                a.delivered, a.lost, a.duplicates, a.unacknowledged_delivered, a.order_violations
            );
        }
        if let Some(bk) = &self.backlog {
            let depth = bk.depth_reported.map(|d| d.to_string()).unwrap_or_else(|| "unknown".into());
            let _ = writeln!(
                s,
                "  backlog     filled {} at {} msg/s; depth reported {depth}; wake-up misses {}",
                bk.filled,
                group(bk.fill.msgs_per_sec),
                bk.wakeup_misses
            );
        }
        if let Some(w) = &self.waiters {
            let opt = |v: Option<u64>| v.map(|v| v.to_string()).unwrap_or_else(|| "?".into());
            let mib = |v: Option<f64>| v.map(|v| format!("{v:.1}")).unwrap_or_else(|| "?".into());
            let _ = writeln!(
                s,
                "  waiters     {} over {} queues (wait {} s), parked {} (server's count) after {:.1} s",
                w.waiters,
                w.queues,
                w.wait_secs,
                opt(w.parked_reported),
                w.ramp_secs
            );
            let _ = writeln!(
                s,
                "  wake-ups    sends {}  woke exactly one {}  left in queue {}  lost {}  duplicates {}  empty at wait end {}  empty early {}  refused {}",
                w.sends, w.woke_exactly_one, w.left_in_queue, w.lost, w.duplicates, w.empty_at_wait_end, w.empty_early, w.refused
            );
            let _ = writeln!(
                s,
                "  server      threads {} idle, {} with waiters parked; fds {}; RSS {} MiB idle, {} MiB parked",
                opt(w.server_threads_idle),
                opt(w.server_threads_parked),
                opt(w.server_fds_parked),
                mib(w.server_rss_idle_mib),
                mib(w.server_rss_parked_mib)
            );
        }
        if !self.latency.is_empty() {
            let _ = writeln!(
                s,
                "  latency ms  {:<26} {:>9} {:>9} {:>9} {:>9} {:>9} {:>9}",
                "", "count", "p50", "p90", "p99", "p99.9", "max"
            );
            for (name, l) in &self.latency {
                let _ = writeln!(
                    s,
                    "              {name:<26} {:>9} {:>9.3} {:>9.3} {:>9.3} {:>9.3} {:>9.3}",
                    l.count, l.p50_ms, l.p90_ms, l.p99_ms, l.p999_ms, l.max_ms
                );
            }
        }
        for (who, u) in [("server", &self.server), ("client", &self.client)] {
            if let Some(u) = u {
                let per = u.cpu_ms_per_1000_msgs.map(|p| format!(" = {p:.2} ms per 1,000 msgs")).unwrap_or_default();
                let peak = u.peak_rss_mib.map(|m| format!(", peak RSS {m:.1} MiB")).unwrap_or_default();
                let _ = writeln!(
                    s,
                    "  {who:<10}  pid {}: CPU {:.0} ms{per} ({:.2} cores busy){peak}",
                    u.pid, u.cpu_ms, u.cores_busy
                );
            }
        }
        for e in &self.error_samples {
            let _ = writeln!(s, "  error       {e}");
        }
        s
    }
}

/// Formats a rate with thousands separators and no decimals.
fn group(x: f64) -> String {
    let n = x.round().max(0.0) as u64;
    let digits = n.to_string();
    let mut groups: Vec<&str> = Vec::new();
    let mut end = digits.len();
    while end > 3 {
        groups.push(&digits[end - 3..end]);
        end -= 3;
    }
    groups.push(&digits[..end]);
    groups.reverse();
    groups.join(",")
}

#[cfg(test)]
mod tests {
    //! Goal: both renderings carry the figures a reader looks for.
    //! Method: render a report with known figures and look for them.

    use super::*;
    use std::time::Duration;

    fn sample() -> Report {
        let mut latency = BTreeMap::new();
        latency.insert(
            "end-to-end".to_owned(),
            LatencySummary {
                count: 10,
                mean_ms: 1.0,
                p50_ms: 0.9,
                p90_ms: 1.5,
                p99_ms: 2.25,
                p999_ms: 3.0,
                max_ms: 4.0,
            },
        );
        Report {
            scenario: "sqs-roundtrip".into(),
            shape: None,
            endpoint: "http://127.0.0.1:4566".into(),
            protocol: "json".into(),
            settings: Settings {
                connections: 8,
                consumers: 4,
                batch: 10,
                message_size: 1024,
                rate: None,
                duration_secs: Some(10.0),
                count: None,
            },
            run_id: "0000abcd".into(),
            throughput: Throughput::new(123_456, 1024, Duration::from_secs(1)),
            throughput_basis: "deliveries".into(),
            send_throughput: Throughput::default(),
            sent: 123_456,
            send_failed: 0,
            received: 123_456,
            deleted: 123_456,
            foreign: 0,
            errors: 0,
            error_samples: vec![],
            accounting: Some(Accounting {
                acknowledged: 123_456,
                delivered: 123_450,
                lost: 6,
                ..Accounting::default()
            }),
            latency,
            ceiling: Some(Ceiling { msgs_per_sec: 246_912.0, source: "measured".into(), fraction: 0.5 }),
            server: None,
            client: None,
            backlog: None,
            waiters: None,
        }
    }

    #[test]
    fn human_summary_shows_rates_ceiling_share_loss_and_percentiles() {
        let h = sample().to_human();
        for needle in ["123,456 msg/s", "126.4 MB/s", "246,912 msg/s", "50.0 %", "lost 6", "end-to-end", "2.250"] {
            assert!(h.contains(needle), "{needle:?} missing from\n{h}");
        }
    }

    #[test]
    fn json_carries_the_same_figures() {
        let v: serde_json::Value = serde_json::from_str(&sample().to_json()).unwrap();
        assert_eq!(v["throughput"]["messages"], 123_456);
        assert_eq!(v["accounting"]["lost"], 6);
        assert_eq!(v["latency"]["end-to-end"]["p99_ms"], 2.25);
        assert_eq!(v["ceiling"]["fraction"], 0.5);
    }

    #[test]
    fn thousands_are_grouped() {
        assert_eq!(group(0.0), "0");
        assert_eq!(group(999.4), "999");
        assert_eq!(group(1000.0), "1,000");
        assert_eq!(group(1_234_567.0), "1,234,567");
    }
}
