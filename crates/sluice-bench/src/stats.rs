//! Measurements: latency histograms (HDR), live counters for the progress line, error samples,
//! and the arithmetic that turns them into summaries.
//!
//! Workers record into their own [`Latencies`] without locks and hand them back when they end;
//! only the live counters are shared. What the numbers mean for a scenario is the scenario's
//! business; how they are printed is `report.rs`'s.

use hdrhistogram::Histogram;
use serde::Serialize;
use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;
use std::time::Duration;

/// Largest latency a histogram holds exactly (larger values are clamped to it): 10 minutes.
const LATENCY_MICROS_MAX: u64 = 600_000_000;
/// Significant decimal digits kept by the histograms (0.1 % relative error).
const SIGNIFICANT_DIGITS: u8 = 3;
/// Distinct error messages kept as samples.
const ERROR_SAMPLES_MAX: usize = 8;

/// A latency histogram in microseconds.
#[derive(Debug, Clone)]
pub struct Latency {
    hist: Histogram<u64>,
}

impl Default for Latency {
    fn default() -> Self {
        Self {
            hist: Histogram::new_with_bounds(1, LATENCY_MICROS_MAX, SIGNIFICANT_DIGITS)
                .expect("static histogram bounds are valid"),
        }
    }
}

impl Latency {
    /// Records one latency (clamped to 1 µs .. 10 min).
    pub fn record(&mut self, d: Duration) {
        let micros = (d.as_micros() as u64).clamp(1, LATENCY_MICROS_MAX);
        self.hist.saturating_record(micros);
    }

    /// Adds another histogram's samples to this one.
    pub fn merge(&mut self, other: &Latency) {
        // Same bounds on both sides, so adding cannot fail.
        self.hist.add(&other.hist).expect("histograms share their bounds");
    }

    /// The summary, or `None` without samples.
    pub fn summary(&self) -> Option<LatencySummary> {
        if self.hist.is_empty() {
            return None;
        }
        let ms = |micros: u64| micros as f64 / 1000.0;
        Some(LatencySummary {
            count: self.hist.len(),
            mean_ms: self.hist.mean() / 1000.0,
            p50_ms: ms(self.hist.value_at_quantile(0.50)),
            p90_ms: ms(self.hist.value_at_quantile(0.90)),
            p99_ms: ms(self.hist.value_at_quantile(0.99)),
            p999_ms: ms(self.hist.value_at_quantile(0.999)),
            max_ms: ms(self.hist.max()),
        })
    }
}

/// Percentiles of one latency distribution, in milliseconds.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct LatencySummary {
    /// Samples.
    pub count: u64,
    /// Arithmetic mean.
    pub mean_ms: f64,
    /// Median.
    pub p50_ms: f64,
    /// 90th percentile.
    pub p90_ms: f64,
    /// 99th percentile.
    pub p99_ms: f64,
    /// 99.9th percentile.
    pub p999_ms: f64,
    /// Largest sample.
    pub max_ms: f64,
}

/// Named latency histograms (`send`, `receive`, `delete`, `e2e`, ...), mergeable across workers.
#[derive(Debug, Clone, Default)]
pub struct Latencies {
    by_name: BTreeMap<&'static str, Latency>,
}

impl Latencies {
    /// Records one latency under `name`.
    pub fn record(&mut self, name: &'static str, d: Duration) {
        self.by_name.entry(name).or_default().record(d);
    }

    /// Adds another worker's histograms to these.
    pub fn merge(&mut self, other: &Latencies) {
        for (name, l) in &other.by_name {
            self.by_name.entry(name).or_default().merge(l);
        }
    }

    /// Summaries of every non-empty histogram, by name.
    pub fn summaries(&self) -> BTreeMap<String, LatencySummary> {
        self.by_name.iter().filter_map(|(n, l)| l.summary().map(|s| (n.to_string(), s))).collect()
    }
}

/// Counters shared by all workers of a run, read by the progress line and the report.
#[derive(Debug, Default)]
pub struct Live {
    /// Messages acknowledged by the server.
    pub sent: AtomicU64,
    /// Messages whose send failed (the request or its batch entry).
    pub send_failed: AtomicU64,
    /// Messages received (all deliveries, this run's or not).
    pub received: AtomicU64,
    /// Messages deleted.
    pub deleted: AtomicU64,
    /// Received messages not written by this run.
    pub foreign: AtomicU64,
    /// Failed operations: whole requests, or entries of a batch.
    pub errors: AtomicU64,
    samples: Mutex<Vec<String>>,
}

impl Live {
    /// Adds `n` to a counter.
    pub fn add(counter: &AtomicU64, n: u64) {
        counter.fetch_add(n, Ordering::Relaxed);
    }

    /// Reads a counter.
    pub fn get(counter: &AtomicU64) -> u64 {
        counter.load(Ordering::Relaxed)
    }

    /// Counts `n` failed operations and keeps the message if it is new and there is room.
    pub fn error(&self, n: u64, what: impl std::fmt::Display) {
        self.errors.fetch_add(n, Ordering::Relaxed);
        let mut samples = self.samples.lock().unwrap_or_else(|p| p.into_inner());
        if samples.len() < ERROR_SAMPLES_MAX {
            let s = what.to_string();
            if !samples.contains(&s) {
                samples.push(s);
            }
        }
    }

    /// The distinct error messages kept.
    pub fn error_samples(&self) -> Vec<String> {
        self.samples.lock().unwrap_or_else(|p| p.into_inner()).clone()
    }
}

/// Messages per second and megabytes (10^6 bytes) per second over `secs`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize)]
pub struct Throughput {
    /// Messages counted.
    pub messages: u64,
    /// Over this many seconds.
    pub secs: f64,
    /// Messages per second.
    pub msgs_per_sec: f64,
    /// Body megabytes (10^6 bytes) per second.
    pub mb_per_sec: f64,
}

impl Throughput {
    /// The throughput of `messages` bodies of `message_bytes` each over `elapsed`.
    pub fn new(messages: u64, message_bytes: usize, elapsed: Duration) -> Self {
        let secs = elapsed.as_secs_f64();
        if secs <= 0.0 {
            return Self { messages, secs, ..Self::default() };
        }
        let msgs_per_sec = messages as f64 / secs;
        Self { messages, secs, msgs_per_sec, mb_per_sec: msgs_per_sec * message_bytes as f64 / 1e6 }
    }
}

#[cfg(test)]
mod tests {
    //! Goal: summaries report the right percentiles and merge exactly; throughput arithmetic
    //! holds at the edges.
    //! Method: record known distributions and compare within the histogram's precision.

    use super::*;

    fn close(a: f64, b: f64) -> bool {
        (a - b).abs() <= b.abs() * 0.002 + 0.001
    }

    #[test]
    fn percentiles_of_a_uniform_distribution() {
        let mut l = Latency::default();
        for micros in 1..=10_000u64 {
            l.record(Duration::from_micros(micros));
        }
        let s = l.summary().unwrap();
        assert_eq!(s.count, 10_000);
        assert!(close(s.p50_ms, 5.0), "{s:?}");
        assert!(close(s.p90_ms, 9.0), "{s:?}");
        assert!(close(s.p99_ms, 9.9), "{s:?}");
        assert!(close(s.max_ms, 10.0), "{s:?}");
        assert!(close(s.mean_ms, 5.0005), "{s:?}");
    }

    #[test]
    fn one_slow_request_in_a_hundred_sets_p99_but_not_p90() {
        let mut l = Latency::default();
        for _ in 0..98 {
            l.record(Duration::from_micros(500));
        }
        l.record(Duration::from_millis(250));
        l.record(Duration::from_millis(250));
        let s = l.summary().unwrap();
        assert!(close(s.p90_ms, 0.5), "{s:?}");
        assert!(close(s.p99_ms, 250.0), "{s:?}");
    }

    #[test]
    fn empty_histograms_have_no_summary_and_are_left_out() {
        let mut ls = Latencies::default();
        ls.by_name.entry("send").or_default();
        ls.record("receive", Duration::from_millis(1));
        let names: Vec<_> = ls.summaries().into_keys().collect();
        assert_eq!(names, ["receive"]);
        assert!(Latency::default().summary().is_none());
    }

    #[test]
    fn merging_equals_recording_everything_in_one() {
        let (mut a, mut b, mut all) = (Latencies::default(), Latencies::default(), Latencies::default());
        for i in 0..1000u64 {
            let d = Duration::from_micros(i * 37 % 5000 + 1);
            if i % 3 == 0 { &mut a } else { &mut b }.record("e2e", d);
            all.record("e2e", d);
        }
        a.merge(&b);
        assert_eq!(a.summaries(), all.summaries());
    }

    #[test]
    fn values_beyond_the_bounds_are_clamped_not_dropped() {
        let mut l = Latency::default();
        l.record(Duration::ZERO);
        l.record(Duration::from_secs(3600));
        let s = l.summary().unwrap();
        assert_eq!(s.count, 2);
        assert!(close(s.max_ms, 600_000.0), "{s:?}");
    }

    #[test]
    fn throughput_arithmetic() {
        let t = Throughput::new(50_000, 1000, Duration::from_secs(2));
        assert_eq!((t.msgs_per_sec, t.mb_per_sec), (25_000.0, 25.0));
        let zero = Throughput::new(10, 1000, Duration::ZERO);
        assert_eq!(zero.msgs_per_sec, 0.0);
    }

    #[test]
    fn error_samples_are_distinct_and_bounded() {
        let live = Live::default();
        for i in 0..100 {
            live.error(2, format!("e{}", i % 20));
        }
        live.error(1, "e0");
        assert_eq!(Live::get(&live.errors), 201);
        let samples = live.error_samples();
        assert_eq!(samples.len(), ERROR_SAMPLES_MAX);
        assert_eq!(samples[0], "e0");
    }
}
