//! A criterion [`Measurement`] that counts the CPU time of the benchmarking thread instead of
//! wall-clock time.
//!
//! The development machines are two shared cores on which other builds run at the same time.
//! Pinning (`taskset -c 1`) keeps the benchmark on one core but not other processes off it,
//! and wall time then counts every moment the thread was descheduled: in one wall-clock run
//! at load average 5, the same benchmark varied by 2x between processes. The thread's own
//! CPU time does not count those moments (cache and sibling-hyperthread interference still
//! show), so floor and subject stay comparable.
//!
//! The time is `clock_gettime(CLOCK_THREAD_CPUTIME_ID)` through the `cpu-time` crate (`std`
//! has no thread CPU clock and the workspace forbids `unsafe`). `/proc/thread-self/schedstat`
//! was tried first: for the running thread it only advances at scheduler ticks, so short
//! samples read as zero. Where the clock is unavailable, or with `AUTHKIT_BENCH_CLOCK=wall`,
//! it falls back to wall time.

use std::time::{Duration, Instant};

use criterion::measurement::{Measurement, ValueFormatter, WallTime};

/// The configuration every bench here uses: thread CPU time, and 0.5 s warm-up + 3 s of
/// samples, shorter than criterion's 3 s + 5 s so a full run (three processes, see
/// scripts/run-crypto.sh) takes minutes; `--warm-up-time`/`--measurement-time` override.
pub fn criterion() -> criterion::Criterion<ThreadCpuTime> {
    criterion::Criterion::default()
        .with_measurement(ThreadCpuTime::from_env())
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(3))
}

/// Thread CPU time (see the module docs).
pub struct ThreadCpuTime {
    wall: WallTime,
    use_cpu: bool,
}

impl ThreadCpuTime {
    /// CPU time when available and not disabled by `AUTHKIT_BENCH_CLOCK=wall`.
    pub fn from_env() -> Self {
        let wanted = std::env::var("AUTHKIT_BENCH_CLOCK").map_or(true, |v| v != "wall");
        Self {
            wall: WallTime,
            use_cpu: wanted && thread_cpu().is_some(),
        }
    }

    /// Which clock is in use, for the log.
    pub fn describe(&self) -> &'static str {
        if self.use_cpu {
            "thread CPU time (CLOCK_THREAD_CPUTIME_ID)"
        } else {
            "wall time"
        }
    }
}

fn thread_cpu() -> Option<Duration> {
    cpu_time::ThreadTime::try_now()
        .ok()
        .map(|t| t.as_duration())
}

/// The start of a sample: the thread's CPU time when on the CPU clock, else an instant.
pub enum Start {
    Cpu(Duration),
    Wall(Instant),
}

impl Measurement for ThreadCpuTime {
    type Intermediate = Start;
    type Value = Duration;

    fn start(&self) -> Start {
        match self.use_cpu.then(thread_cpu).flatten() {
            Some(t) => Start::Cpu(t),
            None => Start::Wall(Instant::now()),
        }
    }

    fn end(&self, start: Start) -> Duration {
        match start {
            Start::Cpu(begin) => thread_cpu().unwrap_or(begin).saturating_sub(begin),
            Start::Wall(at) => at.elapsed(),
        }
    }

    fn add(&self, a: &Duration, b: &Duration) -> Duration {
        *a + *b
    }

    fn zero(&self) -> Duration {
        Duration::ZERO
    }

    fn to_f64(&self, value: &Duration) -> f64 {
        value.as_nanos() as f64
    }

    fn formatter(&self) -> &dyn ValueFormatter {
        self.wall.formatter()
    }
}
