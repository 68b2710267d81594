//! What a server costs, read from `/proc`: the CPU time and the
//! proportional memory (PSS) of a process and everything it started.
//!
//! A multi-process server (Dovecot's master with its login, auth and imap
//! processes; nginx's master and workers) is measured as the tree under
//! its first process, so one figure compares with a single-process one.

use std::fs;

/// The process `root` and its descendants, as they are now.
#[must_use]
pub fn tree(root: u32) -> Vec<u32> {
    let parents: Vec<(u32, u32)> = fs::read_dir("/proc")
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|e| e.file_name().to_str()?.parse::<u32>().ok())
        .filter_map(|pid| Some((pid, stat_fields(pid)?.ppid)))
        .collect();
    let mut found = vec![root];
    let mut i = 0;
    while i < found.len() {
        let parent = found[i];
        found.extend(
            parents
                .iter()
                .filter(|(_, ppid)| *ppid == parent)
                .map(|(pid, _)| *pid),
        );
        i += 1;
    }
    found
}

struct Stat {
    ppid: u32,
    /// utime + stime, in clock ticks.
    ticks: u64,
}

/// The fields of `/proc/PID/stat` we need (after the command name, which
/// may hold spaces and parentheses itself).
fn stat_fields(pid: u32) -> Option<Stat> {
    let text = fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let rest = &text[text.rfind(')')? + 1..];
    let fields: Vec<&str> = rest.split_whitespace().collect();
    // fields[0] is the state (stat field 3): ppid is field 4, utime 14,
    // stime 15.
    Some(Stat {
        ppid: fields.get(1)?.parse().ok()?,
        ticks: fields.get(11)?.parse::<u64>().ok()? + fields.get(12)?.parse::<u64>().ok()?,
    })
}

/// Clock ticks per second (`getconf CLK_TCK`; 100 on Linux when it
/// cannot be asked).
fn ticks_per_second() -> f64 {
    std::process::Command::new("getconf")
        .arg("CLK_TCK")
        .output()
        .ok()
        .and_then(|o| String::from_utf8(o.stdout).ok())
        .and_then(|s| s.trim().parse::<f64>().ok())
        .unwrap_or(100.0)
}

/// CPU seconds (user + system) the tree under `root` has used so far.
///
/// Processes that ended before the call are not counted, so measure
/// servers whose processes outlive the run (Dovecot's high-performance
/// mode, nginx, imapd).
#[must_use]
pub fn cpu_seconds(root: u32) -> f64 {
    let ticks: u64 = tree(root)
        .into_iter()
        .filter_map(stat_fields)
        .map(|s| s.ticks)
        .sum();
    #[allow(clippy::cast_precision_loss)]
    let ticks = ticks as f64;
    ticks / ticks_per_second()
}

/// The proportional set size of the tree under `root`, in KiB (the
/// `Pss:` line of each process's `smaps_rollup`).
#[must_use]
pub fn pss_kib(root: u32) -> u64 {
    tree(root)
        .into_iter()
        .filter_map(|pid| fs::read_to_string(format!("/proc/{pid}/smaps_rollup")).ok())
        .filter_map(|text| {
            text.lines()
                .find_map(|l| l.strip_prefix("Pss:"))
                .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
        })
        .sum()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn this_process_is_measured() {
        let me = std::process::id();
        assert!(tree(me).contains(&me));
        assert!(pss_kib(me) > 0);
        // Burn a little CPU so the counter has something to show.
        let mut x = 0u64;
        for i in 0..50_000_000u64 {
            x = x.wrapping_mul(31).wrapping_add(i);
        }
        std::hint::black_box(x);
        assert!(cpu_seconds(me) > 0.0);
    }

    #[test]
    fn children_belong_to_the_tree() {
        let mut child = std::process::Command::new("sleep")
            .arg("30")
            .spawn()
            .unwrap();
        let found = tree(std::process::id());
        let _ = child.kill();
        let _ = child.wait();
        assert!(found.contains(&child.id()));
    }
}
