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
//! The time comes from `/proc/thread-self/schedstat` (first field: nanoseconds on a CPU,
//! including the running slice), read once at the start and once at the end of each sample
//! of many iterations: about 10 µs per read against samples of ~30 ms. `std` has no
//! thread-CPU-clock API and the workspace forbids `unsafe` (so no direct `clock_gettime`).
//! Where the file cannot be read, or with `AUTHKIT_BENCH_CLOCK=wall`, it falls back to
//! wall time.

use std::time::{Duration, Instant};

use criterion::measurement::{Measurement, ValueFormatter, WallTime};

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
            use_cpu: wanted && thread_cpu_ns().is_some(),
        }
    }

    /// Which clock is in use, for the log.
    pub fn describe(&self) -> &'static str {
        if self.use_cpu {
            "thread CPU time (/proc/thread-self/schedstat)"
        } else {
            "wall time"
        }
    }
}

fn thread_cpu_ns() -> Option<u64> {
    let text = std::fs::read_to_string("/proc/thread-self/schedstat").ok()?;
    text.split_whitespace().next()?.parse().ok()
}

/// The start of a sample: CPU nanoseconds when on the CPU clock, else an instant.
pub enum Start {
    Cpu(u64),
    Wall(Instant),
}

impl Measurement for ThreadCpuTime {
    type Intermediate = Start;
    type Value = Duration;

    fn start(&self) -> Start {
        match self.use_cpu.then(thread_cpu_ns).flatten() {
            Some(ns) => Start::Cpu(ns),
            None => Start::Wall(Instant::now()),
        }
    }

    fn end(&self, start: Start) -> Duration {
        match start {
            Start::Cpu(begin) => {
                Duration::from_nanos(thread_cpu_ns().unwrap_or(begin).saturating_sub(begin))
            }
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
