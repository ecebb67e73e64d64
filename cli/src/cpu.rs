//! CPU time by thread group, read from Linux's /proc: each live thread's
//! name (`comm`) and the nanoseconds it has run (`schedstat`), and the whole
//! process's user + system time (`stat`, which keeps the time of threads
//! that have ended). A bench names the threads of its own runtimes, so each
//! part's CPU can be read apart from the others on a noisy machine.

use std::collections::BTreeMap;
use std::time::Duration;

/// Clock ticks per second of `/proc/<pid>/stat` (USER_HZ: 100 on Linux).
const TICKS_PER_SECOND: u64 = 100;

/// CPU time so far: the process's, and each named group's (threads whose
/// name starts with the group).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CpuTimes {
    pub process: Duration,
    pub groups: BTreeMap<&'static str, Duration>,
}

impl CpuTimes {
    /// Now, for the given thread-name prefixes; `None` off Linux.
    pub fn now(groups: &[&'static str]) -> Option<CpuTimes> {
        let stat = std::fs::read_to_string("/proc/self/stat").ok()?;
        let mut out = CpuTimes {
            process: process_time(&stat)?,
            groups: groups.iter().map(|g| (*g, Duration::ZERO)).collect(),
        };
        for task in std::fs::read_dir("/proc/self/task").ok()?.flatten() {
            let dir = task.path();
            let (Ok(comm), Ok(sched)) = (
                std::fs::read_to_string(dir.join("comm")),
                std::fs::read_to_string(dir.join("schedstat")),
            ) else {
                continue; // the thread ended meanwhile
            };
            let Some(group) = groups.iter().find(|g| comm.trim().starts_with(**g)) else {
                continue;
            };
            let ran = sched.split_whitespace().next().and_then(|n| n.parse().ok());
            if let (Some(ns), Some(total)) = (ran, out.groups.get_mut(group)) {
                *total += Duration::from_nanos(ns);
            }
        }
        Some(out)
    }

    /// What was spent between `earlier` and `self`.
    pub fn since(&self, earlier: &CpuTimes) -> CpuTimes {
        CpuTimes {
            process: self.process.saturating_sub(earlier.process),
            groups: self
                .groups
                .iter()
                .map(|(g, d)| {
                    let before = earlier.groups.get(g).copied().unwrap_or_default();
                    (*g, d.saturating_sub(before))
                })
                .collect(),
        }
    }

    /// The process's time less every group's: the rest of the process.
    pub fn rest(&self) -> Duration {
        self.groups
            .values()
            .fold(self.process, |left, d| left.saturating_sub(*d))
    }
}

/// utime + stime of a `/proc/<pid>/stat` line (fields 14 and 15, counted
/// after the `)` that ends the command name, which may hold spaces).
fn process_time(stat: &str) -> Option<Duration> {
    let after = stat.rsplit_once(')')?.1;
    let fields: Vec<&str> = after.split_whitespace().collect();
    // `after` starts at field 3 (state): utime is field 14, stime 15.
    let ticks = fields.get(11)?.parse::<u64>().ok()? + fields.get(12)?.parse::<u64>().ok()?;
    Some(Duration::from_millis(ticks * 1000 / TICKS_PER_SECOND))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_stat_line_gives_user_plus_system_time() {
        let line =
            "4242 (tokio (w) x) S 1 4242 4242 0 -1 4194560 100 0 0 0 250 75 0 0 20 0 9 0 1 1 1";
        assert_eq!(process_time(line), Some(Duration::from_millis(3_250)));
        assert_eq!(process_time("garbage"), None);
    }

    #[test]
    fn a_busy_named_thread_is_counted_in_its_group() {
        let before = CpuTimes::now(&["cpu-test-spin"]).expect("linux /proc");
        std::thread::Builder::new()
            .name("cpu-test-spin".into())
            .spawn(|| {
                let started = std::time::Instant::now();
                let mut x = 0u64;
                while started.elapsed() < Duration::from_millis(60) {
                    x = x.wrapping_add(1);
                }
                std::hint::black_box(x);
                // Still alive when measured: read the time before it ends.
                let now = CpuTimes::now(&["cpu-test-spin"]).expect("linux /proc");
                now.groups["cpu-test-spin"]
            })
            .unwrap()
            .join()
            .map(|spun| assert!(spun >= Duration::from_millis(40), "{spun:?}"))
            .unwrap();
        let after = CpuTimes::now(&["cpu-test-spin"]).unwrap();
        assert!(after.since(&before).process >= Duration::from_millis(40));
    }
}
