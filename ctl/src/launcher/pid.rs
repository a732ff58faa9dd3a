//! Server processes that `tribctl dev` started in an earlier run: is the recorded pid still
//! that process, and stopping it. A pid is only trusted with its start time (from `/proc`), so
//! a pid the system has since given to another program is never signalled.

use std::time::{Duration, Instant};

/// A process as recorded at spawn time.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Pid {
    pub pid: u32,
    /// Start time in clock ticks since boot (`/proc/PID/stat` field 22); `None` where there
    /// is no `/proc`.
    pub started: Option<u64>,
}

/// Field 22 of `/proc/PID/stat`, and whether the process has exited but is not yet reaped.
fn stat(pid: u32) -> Option<(u64, bool)> {
    let text = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The command name (field 2) is in parentheses and may hold spaces: count after it.
    let rest = &text[text.rfind(')')? + 1..];
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let zombie = matches!(fields.first(), Some(&"Z") | Some(&"X"));
    Some((fields.get(19)?.parse().ok()?, zombie))
}

fn proc_available() -> bool {
    std::path::Path::new("/proc/self/stat").exists()
}

impl Pid {
    /// `pid` as it runs now (just after spawning it).
    pub fn of(pid: u32) -> Self {
        Self {
            pid,
            started: stat(pid).map(|(t, _)| t),
        }
    }

    pub fn is_alive(&self) -> bool {
        if proc_available() {
            return match (stat(self.pid), self.started) {
                (Some((t, zombie)), Some(started)) => t == started && !zombie,
                // Recorded without a start time, it cannot be told from a reused pid.
                (Some(_), None) | (None, _) => false,
            };
        }
        let Ok(pid) = i32::try_from(self.pid) else {
            return false;
        };
        // SAFETY: kill with signal 0 only checks that the process exists.
        unsafe { libc::kill(pid, 0) == 0 }
    }

    fn signal(&self, sig: libc::c_int) {
        if !self.is_alive() {
            return;
        }
        if let Ok(pid) = i32::try_from(self.pid) {
            // SAFETY: a plain kill(2) of a process checked above to be the recorded one; an
            // error (it exited meanwhile) leaves nothing to do.
            unsafe {
                libc::kill(pid, sig);
            }
        }
    }
}

/// How a process ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stopped {
    /// It exited after SIGTERM.
    Terminated,
    /// It was still running `grace` after SIGTERM and was killed.
    Killed,
    /// It was not running.
    NotRunning,
    /// It survived SIGKILL too (a process stuck in the kernel).
    Stuck,
}

/// SIGTERM to every process, SIGKILL to those still running after `grace`; waits for each
/// to exit. Results in the order of `pids`.
pub async fn stop_all(pids: &[Pid], grace: Duration) -> Vec<Stopped> {
    let mut out: Vec<Stopped> = pids
        .iter()
        .map(|p| {
            if p.is_alive() {
                p.signal(libc::SIGTERM);
                Stopped::Terminated
            } else {
                Stopped::NotRunning
            }
        })
        .collect();
    if !wait_gone(pids, grace).await {
        for (p, o) in pids.iter().zip(out.iter_mut()) {
            if p.is_alive() {
                p.signal(libc::SIGKILL);
                *o = Stopped::Killed;
            }
        }
        wait_gone(pids, Duration::from_secs(5)).await;
        for (p, o) in pids.iter().zip(out.iter_mut()) {
            if p.is_alive() {
                *o = Stopped::Stuck;
            }
        }
    }
    out
}

/// Whether every process exited within `timeout`.
async fn wait_gone(pids: &[Pid], timeout: Duration) -> bool {
    let deadline = Instant::now() + timeout;
    loop {
        if pids.iter().all(|p| !p.is_alive()) {
            return true;
        }
        if Instant::now() >= deadline {
            return false;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_process_is_known_by_pid_and_start_time_and_stopped_by_sigterm() {
        let mut child = std::process::Command::new("sleep")
            .arg("30")
            .spawn()
            .expect("spawn sleep");
        let p = Pid::of(child.id());
        assert!(p.is_alive());
        let reused = Pid {
            started: p.started.map(|t| t + 1),
            ..p
        };
        assert!(!reused.is_alive(), "another start time is another process");
        // Reap it as soon as it exits, as init does for a real server.
        let reaper = std::thread::spawn(move || child.wait());
        assert_eq!(
            stop_all(&[p, reused], Duration::from_secs(5)).await,
            [Stopped::Terminated, Stopped::NotRunning]
        );
        assert!(reaper.join().is_ok_and(|r| r.is_ok()));
        assert!(!p.is_alive());
    }
}
