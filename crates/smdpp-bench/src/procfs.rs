//! Process CPU time from Linux `/proc`, and finding the process that listens on a TCP port.
//!
//! CPU time is `utime + stime` of `/proc/PID/stat` (fields 14 and 15, every thread of the
//! process, in clock ticks). The tick rate is `getconf CLK_TCK` when that command runs, else
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

/// CPU time used so far by process `pid` (`None`: this process).
pub fn process_cpu(pid: Option<u32>, ticks_per_second: u64) -> Option<Duration> {
    let path = match pid {
        Some(p) => format!("/proc/{p}/stat"),
        None => "/proc/self/stat".to_owned(),
    };
    let text = std::fs::read_to_string(path).ok()?;
    let ticks = parse_stat_cpu_ticks(&text)?;
    let tps = ticks_per_second.max(1);
    Some(
        Duration::from_secs(ticks / tps)
            + Duration::from_nanos((ticks % tps) * 1_000_000_000 / tps),
    )
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
