//! Process CPU time from Linux `/proc`, and finding the process that listens on a TCP port.
//!
//! CPU time is `utime + stime` of `/proc/PID/stat` (fields 14 and 15, every thread of the
//! process, in clock ticks). The CPU of a process tree ([`process_tree_cpu`], used for the
//! PostgreSQL postmaster and its backends) is, over the root and every live descendant
//! (found through the `ppid` field 4), `utime + stime + cutime + cstime` (fields 14 to 17):
//! `cutime + cstime` hold the CPU of children that exited and were reaped, so a backend that
//! ended during a run still counts (PostgreSQL's postmaster reaps its own children), and
//! nothing is counted twice (a live process's time is only in its own fields). The tick rate is `getconf CLK_TCK` when that command runs, else
//! 100 (the value on every Linux architecture the project targets). At 100 Hz a figure is
//! good to 10 ms per process, which is well under 1 % for a timed phase of a few seconds.

use std::path::Path;
use std::time::Duration;

/// Clock ticks per second for `/proc/PID/stat`.
pub fn clock_ticks_per_second() -> u64 {
    std::process::Command::new("getconf")
        .arg("CLK_TCK")
        .output()
        .ok()
        .filter(|o| o.status.success())
        .and_then(|o| String::from_utf8(o.stdout).ok())
        .and_then(|s| s.trim().parse::<u64>().ok())
        .filter(|&t| t > 0)
        .unwrap_or(100)
}

/// `utime + stime` (ticks) from the text of a `/proc/PID/stat` file.
pub fn parse_stat_cpu_ticks(stat: &str) -> Option<u64> {
    // The command name (field 2) is in parentheses and may contain spaces or ')'.
    let after = &stat[stat.rfind(')')? + 1..];
    let fields: Vec<&str> = after.split_whitespace().collect();
    // `after` starts at field 3 (state): utime is field 14, stime field 15.
    let utime: u64 = fields.get(11)?.parse().ok()?;
    let stime: u64 = fields.get(12)?.parse().ok()?;
    Some(utime + stime)
}

/// The fields of `/proc/PID/stat` this module uses.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct StatFields {
    /// Parent process ID (field 4).
    pub ppid: u32,
    /// `utime + stime` (fields 14 and 15), ticks.
    pub own_ticks: u64,
    /// `cutime + cstime` (fields 16 and 17): reaped children, ticks.
    pub children_ticks: u64,
}

/// [`StatFields`] from the text of a `/proc/PID/stat` file.
pub fn parse_stat(stat: &str) -> Option<StatFields> {
    let after = &stat[stat.rfind(')')? + 1..];
    let f: Vec<&str> = after.split_whitespace().collect();
    let n = |i: usize| -> Option<u64> { f.get(i)?.parse().ok() };
    Some(StatFields {
        ppid: f.get(1)?.parse().ok()?,
        own_ticks: n(11)? + n(12)?,
        children_ticks: n(13)? + n(14)?,
    })
}

fn ticks_to_duration(ticks: u64, ticks_per_second: u64) -> Duration {
    let tps = ticks_per_second.max(1);
    Duration::from_secs(ticks / tps) + Duration::from_nanos((ticks % tps) * 1_000_000_000 / tps)
}

/// Whether `/proc/PID/stat` of `pid` can be read.
pub fn process_exists(pid: u32) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/stat")).is_ok_and(|s| parse_stat(&s).is_some())
}

/// The command name of `pid` (`/proc/PID/comm`, without the newline).
pub fn comm(pid: u32) -> Option<String> {
    std::fs::read_to_string(format!("/proc/{pid}/comm"))
        .ok()
        .map(|s| s.trim_end_matches('\n').to_owned())
}

/// Every readable process: `(pid, stat fields)`.
fn all_processes() -> Vec<(u32, StatFields)> {
    let Ok(dir) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    dir.flatten()
        .filter_map(|e| e.file_name().to_str()?.parse::<u32>().ok())
        .filter_map(|pid| {
            let text = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
            Some((pid, parse_stat(&text)?))
        })
        .collect()
}

/// The CPU of `root` and of every descendant, as the module documentation says, with the
/// number of processes counted (root included); `None` when `root` cannot be read.
pub fn tree_ticks(processes: &[(u32, StatFields)], root: u32) -> Option<(u64, usize)> {
    let root_fields = processes.iter().find(|(p, _)| *p == root)?.1;
    let mut in_tree = vec![root];
    let mut total = root_fields.own_ticks + root_fields.children_ticks;
    // Breadth-first over the parent links (a process's parent is older than it, but PIDs
    // wrap, so do not rely on order).
    let mut i = 0;
    while i < in_tree.len() {
        let parent = in_tree[i];
        for (pid, f) in processes {
            if f.ppid == parent && *pid != root && !in_tree.contains(pid) {
                in_tree.push(*pid);
                total += f.own_ticks + f.children_ticks;
            }
        }
        i += 1;
    }
    Some((total, in_tree.len()))
}

/// CPU time used so far by the process tree under `root` (see the module documentation),
/// and the number of processes in it.
pub fn process_tree_cpu(root: u32, ticks_per_second: u64) -> Option<(Duration, usize)> {
    let (ticks, n) = tree_ticks(&all_processes(), root)?;
    Some((ticks_to_duration(ticks, ticks_per_second), n))
}

/// CPU time used so far by process `pid` (`None`: this process).
pub fn process_cpu(pid: Option<u32>, ticks_per_second: u64) -> Option<Duration> {
    let path = match pid {
        Some(p) => format!("/proc/{p}/stat"),
        None => "/proc/self/stat".to_owned(),
    };
    let text = std::fs::read_to_string(path).ok()?;
    let ticks = parse_stat_cpu_ticks(&text)?;
    Some(ticks_to_duration(ticks, ticks_per_second))
}

/// Socket inodes of TCP sockets in LISTEN state on `port`, from `/proc/net/tcp` and `tcp6`.
pub fn listening_inodes(port: u16) -> Vec<u64> {
    let mut out = Vec::new();
    for file in ["/proc/net/tcp", "/proc/net/tcp6"] {
        if let Ok(text) = std::fs::read_to_string(file) {
            out.extend(parse_listening_inodes(&text, port));
        }
    }
    out
}

/// The LISTEN (`0A`) entries on `port` of a `/proc/net/tcp[6]` table.
pub fn parse_listening_inodes(table: &str, port: u16) -> Vec<u64> {
    table
        .lines()
        .skip(1)
        .filter_map(|line| {
            let f: Vec<&str> = line.split_whitespace().collect();
            let local = f.get(1)?;
            let (_, p) = local.rsplit_once(':')?;
            let p = u16::from_str_radix(p, 16).ok()?;
            (p == port && *f.get(3)? == "0A").then_some(())?;
            f.get(9)?.parse().ok()
        })
        .collect()
}

/// The process holding one of the socket `inodes` (scanning `/proc/*/fd`; only processes
/// this user may inspect are seen).
pub fn pid_holding(inodes: &[u64]) -> Option<u32> {
    if inodes.is_empty() {
        return None;
    }
    let wanted: Vec<String> = inodes.iter().map(|i| format!("socket:[{i}]")).collect();
    let procs = std::fs::read_dir("/proc").ok()?;
    for entry in procs.flatten() {
        let Some(pid) = entry
            .file_name()
            .to_str()
            .and_then(|s| s.parse::<u32>().ok())
        else {
            continue;
        };
        let Ok(fds) = std::fs::read_dir(Path::new("/proc").join(pid.to_string()).join("fd")) else {
            continue;
        };
        for fd in fds.flatten() {
            if let Ok(target) = std::fs::read_link(fd.path())
                && let Some(t) = target.to_str()
                && wanted.iter().any(|w| w == t)
            {
                return Some(pid);
            }
        }
    }
    None
}

/// The process listening on TCP `port` on this machine, if it can be found.
pub fn listener_pid(port: u16) -> Option<u32> {
    pid_holding(&listening_inodes(port))
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn stat_fields() {
        let s = "1234 (smdpp (x) y) S 1 1234 1234 0 -1 4194560 100 0 0 0 250 75 0 0 20 0 9 0 1 2 3";
        assert_eq!(parse_stat_cpu_ticks(s), Some(325));
        assert_eq!(parse_stat_cpu_ticks("garbage"), None);
    }

    #[test]
    fn stat_fields_with_children() {
        let s = "77 (postgres) S 12 77 77 0 -1 4194560 100 0 0 0 250 75 40 2 20 0 9 0 1 2 3";
        assert_eq!(
            parse_stat(s),
            Some(StatFields {
                ppid: 12,
                own_ticks: 325,
                children_ticks: 42
            })
        );
        assert_eq!(parse_stat("77 (x) S"), None);
    }

    #[test]
    fn tree_ticks_sum_descendants_only() {
        let f = |ppid, own, children| StatFields {
            ppid,
            own_ticks: own,
            children_ticks: children,
        };
        // 10 -> 11 -> 13, 10 -> 12; 20 (sibling of 10) and 21 (its child) are not counted.
        let procs = [
            (1, f(0, 1000, 1000)),
            (13, f(11, 3, 0)),
            (10, f(1, 100, 7)),
            (11, f(10, 20, 1)),
            (12, f(10, 30, 0)),
            (20, f(1, 500, 0)),
            (21, f(20, 500, 0)),
        ];
        assert_eq!(tree_ticks(&procs, 10), Some((161, 4)));
        assert_eq!(tree_ticks(&procs, 12), Some((30, 1)));
        assert_eq!(tree_ticks(&procs, 99), None);
    }

    /// Kills and reaps a child process when dropped (also when a test fails).
    struct Reap(std::process::Child);
    impl Drop for Reap {
        fn drop(&mut self) {
            let _ = self.0.kill();
            let _ = self.0.wait();
        }
    }

    /// Waits up to 60 s for `cond`.
    fn wait_for(mut cond: impl FnMut() -> bool) -> bool {
        let deadline = std::time::Instant::now() + Duration::from_secs(60);
        while std::time::Instant::now() < deadline {
            if cond() {
                return true;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        false
    }

    #[test]
    fn tree_cpu_counts_live_and_exited_descendants_of_real_processes() {
        if !Path::new("/proc/self/stat").exists() {
            return;
        }
        let tps = clock_ticks_per_second();
        let dir = tempfile::tempdir().unwrap();
        let run = dir.path().join("run");
        std::fs::write(&run, b"").unwrap();
        // The root only waits for two busy children, then becomes `sleep` (exec keeps its
        // reaped children's time). The children spin while the file exists (and stop when
        // the test's directory goes away, whatever happens to the test).
        let spin = format!("while [ -e '{}' ]; do :; done", run.display());
        let script = format!("sh -c \"{spin}\" & sh -c \"{spin}\" & wait; exec sleep 60");
        let root = Reap(
            std::process::Command::new("sh")
                .arg("-c")
                .arg(&script)
                .spawn()
                .unwrap(),
        );
        let pid = root.0.id();
        // While the children run: their CPU is counted, the root's own is next to nothing.
        let mut live = Duration::ZERO;
        assert!(
            wait_for(|| match process_tree_cpu(pid, tps) {
                Some((cpu, n)) if n >= 3 => {
                    live = cpu;
                    cpu >= Duration::from_millis(300)
                }
                _ => false,
            }),
            "two busy children never showed in the tree"
        );
        let own = process_cpu(Some(pid), tps).unwrap();
        assert!(own < Duration::from_millis(100), "root's own CPU {own:?}");
        assert!(
            live >= own + Duration::from_millis(200),
            "{live:?} vs {own:?}"
        );
        // Stop the children: once reaped, the tree is the root alone and still holds their
        // CPU (in cutime/cstime), not less than what was seen while they ran.
        std::fs::remove_file(&run).unwrap();
        let mut after = None;
        assert!(
            wait_for(|| {
                after = process_tree_cpu(pid, tps);
                after.is_some_and(|(_, n)| n == 1) && comm(pid).as_deref() == Some("sleep")
            }),
            "the children did not exit: {after:?}"
        );
        let (cpu, _) = after.unwrap();
        assert!(
            cpu >= live,
            "exited children not counted: {cpu:?} < {live:?}"
        );
        assert!(process_cpu(Some(pid), tps).unwrap() < Duration::from_millis(100));
        assert!(process_exists(pid));
        drop(root);
        assert!(!process_exists(pid));
        assert_eq!(comm(pid), None);
    }

    #[test]
    fn own_cpu_is_readable() {
        assert!(process_cpu(None, clock_ticks_per_second()).is_some());
    }

    #[test]
    fn listening_table() {
        let t = "  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode\n   0: 0100007F:20FB 00000000:0000 0A 00000000:00000000 00:00000000 00000000  1000        0 55555 1 0 100 0 0 10 0\n   1: 0100007F:20FB 0100007F:9C40 01 00000000:00000000 00:00000000 00000000  1000        0 66666 1 0 100 0 0 10 0\n";
        assert_eq!(parse_listening_inodes(t, 8443), vec![55555]);
        assert!(parse_listening_inodes(t, 8444).is_empty());
    }

    #[test]
    fn finds_own_listener() {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let port = l.local_addr().unwrap().port();
        if std::path::Path::new("/proc/net/tcp").exists() {
            assert_eq!(listener_pid(port), Some(std::process::id()));
        }
    }
}
