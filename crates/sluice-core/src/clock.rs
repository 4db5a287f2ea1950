//! Time as sluice's semantics see it.
//!
//! Every visibility timeout, delay, retention period and deduplication window is
//! computed from a `Clock`, so tests drive time with `ManualClock` instead of sleeping.
//!
//! `SystemClock`, the real clock, reads the wall clock once, when it is built,
//! and from then on only advances by monotonic elapsed time
//! (`std::time::Instant`): a wall-clock jump while sluice runs (NTP stepping
//! the clock, an operator fixing the date) changes nothing, so in-flight
//! messages neither reappear early nor freeze (RELIABILITY.md R14). It never
//! goes backwards. Across restarts it starts at `max(wall clock, floor)`, where
//! the floor is the latest time the durable store has persisted
//! (`Store::time_floor_ms`), so a restart with the wall clock set back cannot
//! leave stored timestamps in the future (R15).
//!
//! What it gives up: it drifts from the wall clock by whatever the wall clock
//! jumps during a run, and by any time the machine spends suspended (Linux's
//! monotonic clock stops in suspend), until the next restart re-anchors it.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

/// A source of time in milliseconds since the Unix epoch.
pub trait Clock: Send + Sync + std::fmt::Debug {
    /// Milliseconds since the Unix epoch.
    fn now_ms(&self) -> u64;
}

/// Where a `SystemClock` reads the operating system's clocks; tests
/// substitute a fake whose wall clock jumps.
pub trait TimeSource: Send + Sync + std::fmt::Debug {
    /// Wall-clock milliseconds since the Unix epoch; may jump either way.
    fn wall_ms(&self) -> u64;
    /// Time since a fixed, arbitrary origin; never decreases.
    fn monotonic(&self) -> Duration;
}

/// The operating system's clocks: `SystemTime` and `Instant`.
#[derive(Debug, Clone, Copy)]
pub struct OsTime {
    origin: Instant,
}

impl OsTime {
    /// Monotonic time is measured from now.
    pub fn new() -> Self {
        Self { origin: Instant::now() }
    }
}

impl Default for OsTime {
    fn default() -> Self {
        Self::new()
    }
}

impl TimeSource for OsTime {
    fn wall_ms(&self) -> u64 {
        SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_millis() as u64).unwrap_or(0)
    }
    fn monotonic(&self) -> Duration {
        self.origin.elapsed()
    }
}

/// The real clock: wall time at construction (raised to a floor), advanced
/// by monotonic elapsed time, never backwards. See the module docs.
#[derive(Debug)]
pub struct SystemClock {
    source: Arc<dyn TimeSource>,
    /// The clock's reading at `start_mono`.
    start_ms: u64,
    /// The wall clock's reading when the clock was built.
    wall_at_start_ms: u64,
    start_mono: Duration,
    /// The highest reading handed out, so that readings never decrease even
    /// if the monotonic source misbehaves.
    last_ms: AtomicU64,
}

impl SystemClock {
    /// A clock starting at the wall clock's current reading.
    pub fn new() -> Self {
        Self::with_floor(0)
    }

    /// A clock starting at `max(wall clock, floor_ms)`.
    pub fn with_floor(floor_ms: u64) -> Self {
        Self::with_source(Arc::new(OsTime::new()), floor_ms)
    }

    /// A clock over `source`, starting at `max(source's wall clock, floor_ms)`.
    pub fn with_source(source: Arc<dyn TimeSource>, floor_ms: u64) -> Self {
        let start_mono = source.monotonic();
        let wall_at_start_ms = source.wall_ms();
        let start_ms = wall_at_start_ms.max(floor_ms);
        Self { source, start_ms, wall_at_start_ms, start_mono, last_ms: AtomicU64::new(start_ms) }
    }

    /// The clock's first reading.
    pub fn start_ms(&self) -> u64 {
        self.start_ms
    }

    /// How far the floor lifted the start above the wall clock (0 when the
    /// wall clock was at or past the floor).
    pub fn start_ahead_of_wall_ms(&self) -> u64 {
        self.start_ms - self.wall_at_start_ms
    }
}

impl Default for SystemClock {
    fn default() -> Self {
        Self::new()
    }
}

impl Clock for SystemClock {
    fn now_ms(&self) -> u64 {
        let elapsed = self.source.monotonic().saturating_sub(self.start_mono);
        let now = self.start_ms.saturating_add(u64::try_from(elapsed.as_millis()).unwrap_or(u64::MAX));
        let prev = self.last_ms.fetch_max(now, Ordering::Relaxed);
        prev.max(now)
    }
}

/// A clock that only moves when told to; shared by clones.
#[derive(Debug, Clone, Default)]
pub struct ManualClock {
    now: Arc<AtomicU64>,
}

impl ManualClock {
    /// A clock standing at `start_ms`.
    pub fn new(start_ms: u64) -> Self {
        Self { now: Arc::new(AtomicU64::new(start_ms)) }
    }
    /// Moves the clock forward by `ms`.
    pub fn advance_ms(&self, ms: u64) {
        self.now.fetch_add(ms, Ordering::SeqCst);
    }
    /// Sets the clock to `ms`.
    pub fn set_ms(&self, ms: u64) {
        self.now.store(ms, Ordering::SeqCst);
    }
}

impl Clock for ManualClock {
    fn now_ms(&self) -> u64 {
        self.now.load(Ordering::SeqCst)
    }
}

/// A `TimeSource` moved by hand, for tests of clock behaviour under wall
/// jumps: both clocks are shared by clones.
#[derive(Debug, Clone, Default)]
pub struct ManualTime {
    wall_ms: Arc<AtomicU64>,
    mono_ms: Arc<AtomicU64>,
}

impl ManualTime {
    /// Wall clock at `wall_ms`, monotonic clock at 0.
    pub fn new(wall_ms: u64) -> Self {
        Self { wall_ms: Arc::new(AtomicU64::new(wall_ms)), mono_ms: Arc::new(AtomicU64::new(0)) }
    }
    /// Lets `ms` pass: both clocks move forward.
    pub fn elapse_ms(&self, ms: u64) {
        self.wall_ms.fetch_add(ms, Ordering::SeqCst);
        self.mono_ms.fetch_add(ms, Ordering::SeqCst);
    }
    /// Steps the wall clock by `delta_ms` (either way) without time passing.
    pub fn jump_wall_ms(&self, delta_ms: i64) {
        let w = self.wall_ms.load(Ordering::SeqCst);
        self.wall_ms.store(w.saturating_add_signed(delta_ms), Ordering::SeqCst);
    }
}

impl TimeSource for ManualTime {
    fn wall_ms(&self) -> u64 {
        self.wall_ms.load(Ordering::SeqCst)
    }
    fn monotonic(&self) -> Duration {
        Duration::from_millis(self.mono_ms.load(Ordering::SeqCst))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const HOUR_MS: i64 = 3_600_000;
    const DAY_MS: i64 = 24 * HOUR_MS;
    const T0: u64 = 1_700_000_000_000;

    fn clock_at(wall_ms: u64, floor_ms: u64) -> (SystemClock, ManualTime) {
        let t = ManualTime::new(wall_ms);
        (SystemClock::with_source(Arc::new(t.clone()), floor_ms), t)
    }

    #[test]
    fn given_no_floor_clock_starts_at_wall_time() {
        let (c, _) = clock_at(T0, 0);
        assert_eq!(c.now_ms(), T0);
        assert_eq!(c.start_ahead_of_wall_ms(), 0);
    }

    #[test]
    fn given_wall_jumps_clock_advances_only_with_elapsed_monotonic_time() {
        let (c, t) = clock_at(T0, 0);
        let mut last = c.now_ms();
        let mut elapsed = 0u64;
        for jump in [-HOUR_MS, HOUR_MS, -DAY_MS, HOUR_MS, -HOUR_MS, DAY_MS] {
            t.jump_wall_ms(jump);
            let now = c.now_ms();
            assert!(now >= last, "went backwards after a wall jump of {jump} ms: {last} -> {now}");
            assert_eq!(now, T0 + elapsed, "a wall jump of {jump} ms moved the clock");
            t.elapse_ms(1_500);
            elapsed += 1_500;
            let now = c.now_ms();
            assert_eq!(now, T0 + elapsed, "did not advance by the elapsed monotonic time");
            last = now;
        }
    }

    #[test]
    fn given_floor_ahead_of_wall_clock_starts_at_floor_and_advances_from_it() {
        let floor = T0 + DAY_MS as u64;
        let (c, t) = clock_at(T0, floor);
        assert_eq!(c.now_ms(), floor);
        assert_eq!(c.start_ahead_of_wall_ms(), DAY_MS as u64);
        t.elapse_ms(250);
        assert_eq!(c.now_ms(), floor + 250);
    }

    #[test]
    fn given_floor_behind_wall_clock_starts_at_wall() {
        let (c, _) = clock_at(T0, T0 - 5);
        assert_eq!(c.now_ms(), T0);
    }

    #[derive(Debug)]
    struct Erratic(AtomicU64);
    impl TimeSource for Erratic {
        fn wall_ms(&self) -> u64 {
            T0
        }
        fn monotonic(&self) -> Duration {
            // 5 s at construction, then 7 s, 6 s, 8 s: a source that steps back once.
            const STEPS: [u64; 4] = [5, 7, 6, 8];
            Duration::from_secs(STEPS[self.0.fetch_add(1, Ordering::SeqCst) as usize])
        }
    }

    #[test]
    fn given_monotonic_source_stepping_back_clock_never_does() {
        let c = SystemClock::with_source(Arc::new(Erratic(AtomicU64::new(0))), 0);
        let readings: Vec<u64> = (0..3).map(|_| c.now_ms()).collect();
        assert_eq!(readings, vec![T0 + 2_000, T0 + 2_000, T0 + 3_000]);
    }
}
