//! Child processes that cannot outlive a test: each runs in its own process group, which is killed
//! when the test is done with it (or panics), and each has a time limit, so that a hang fails the
//! test instead of blocking CI.
//!
//! Shared by both test binaries: the end-to-end tests (`tests/e2e/`, through `harness/mod.rs`)
//! and the real-program suite (`tests/real_programs.rs`, which includes this file alone from
//! `tests/real/mod.rs`), so it depends on nothing else of the harness.

use std::fmt;
use std::io::{Read, Write};
use std::os::unix::process::{CommandExt, ExitStatusExt};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::mpsc;
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

/// How long any process started by the end-to-end harness may run.
pub const TIMEOUT: Duration = Duration::from_secs(120);

/// How a process ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Exit {
    Code(i32),
    Signal(i32),
}

impl fmt::Display for Exit {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Exit::Code(c) => write!(f, "exit code {c}"),
            Exit::Signal(s) => write!(f, "death by signal {s}"),
        }
    }
}

pub fn exit_of(status: ExitStatus) -> Exit {
    match (status.code(), status.signal()) {
        (Some(code), _) => Exit::Code(code),
        (None, Some(signal)) => Exit::Signal(signal),
        (None, None) => unreachable!("a process that ended has a code or a signal"),
    }
}

/// What a finished process left behind.
#[derive(Clone, Debug)]
pub struct Output {
    pub pid: u32,
    pub status: ExitStatus,
    pub stdout: Vec<u8>,
    pub stderr: Vec<u8>,
    /// Wall time from the start to the end of the process the command names (the real-program
    /// suite's slowdown bound; the end-to-end tests do not time their runs).
    #[allow(dead_code)]
    pub elapsed: Duration,
}

impl Output {
    pub fn exit(&self) -> Exit {
        exit_of(self.status)
    }

    pub fn stdout_text(&self) -> String {
        String::from_utf8_lossy(&self.stdout).into_owned()
    }

    pub fn stderr_text(&self) -> String {
        String::from_utf8_lossy(&self.stderr).into_owned()
    }
}

/// Owns a started process: on drop, kills its whole process group (SIGKILL) and reaps it.
pub struct Guard {
    child: Option<Child>,
    pgid: i32,
}

impl Guard {
    /// Starts `command` as the leader of a new process group.
    pub fn spawn(command: &mut Command) -> Result<Guard, String> {
        let child = command
            .process_group(0)
            .spawn()
            .map_err(|e| format!("cannot start {}: {e}", describe_command(command)))?;
        let pgid = i32::try_from(child.id()).expect("pids fit in i32");
        Ok(Guard {
            child: Some(child),
            pgid,
        })
    }

    pub fn child(&mut self) -> &mut Child {
        self.child
            .as_mut()
            .expect("the child is taken only on drop or by run")
    }

    /// Sends `signal` to whatever is left in the process group (the leader may be gone).
    pub fn signal_group(&self, signal: i32) {
        // SAFETY: kill(2) has no memory-safety preconditions. A negative pid addresses the
        // process group that `spawn` created with the child as its leader, so nothing outside
        // the processes this guard started is signalled.
        unsafe {
            libc::kill(-self.pgid, signal);
        }
    }

    /// Waits for the leader to end, at most `limit`; `None` if it did not.
    pub fn wait_for(&mut self, limit: Duration) -> Option<ExitStatus> {
        let start = Instant::now();
        loop {
            if let Ok(Some(status)) = self.child().try_wait() {
                return Some(status);
            }
            if start.elapsed() > limit {
                return None;
            }
            thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for Guard {
    fn drop(&mut self) {
        self.signal_group(libc::SIGKILL);
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// Sends `signal` to `pid`, a process the test started; panics if it cannot.
pub fn signal(pid: i32, signal: i32) {
    // SAFETY: kill(2) has no memory-safety preconditions; the callers name processes they
    // started.
    let result = unsafe { libc::kill(pid, signal) };
    assert_eq!(result, 0, "kill({pid}, {signal})");
}

fn drain(pipe: Option<impl Read + Send + 'static>) -> JoinHandle<Vec<u8>> {
    thread::spawn(move || {
        let mut data = Vec::new();
        if let Some(mut pipe) = pipe {
            let _ = pipe.read_to_end(&mut data);
        }
        data
    })
}

/// Runs `command` to its end with `stdin` (or /dev/null) as input, capturing its output and its
/// wall time. `Err` when it cannot start or runs longer than `limit` (then its process group is
/// killed): the message has what it wrote to stderr until then.
pub fn run(command: &mut Command, stdin: Option<&[u8]>, limit: Duration) -> Result<Output, String> {
    command
        .stdin(if stdin.is_some() {
            Stdio::piped()
        } else {
            Stdio::null()
        })
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let description = describe_command(command);
    let start = Instant::now();
    let mut guard = Guard::spawn(command)?;
    let child = guard.child();
    let pid = child.id();
    let writer = child.stdin.take().map(|mut pipe| {
        let data = stdin.unwrap_or_default().to_vec();
        // A program may stop reading (EPIPE): that is its right.
        thread::spawn(move || {
            let _ = pipe.write_all(&data);
        })
    });
    let stdout = drain(child.stdout.take());
    let stderr = drain(child.stderr.take());
    // A thread of its own waits, so that the end is timed when it happens, not when polled.
    let mut child = guard.child.take().expect("just spawned");
    let (sender, receiver) = mpsc::channel();
    let waiter = thread::spawn(move || {
        let status = child.wait();
        let _ = sender.send((status, Instant::now()));
    });
    let result = receiver.recv_timeout(limit);
    // Whatever is left of the group (the leader's children) would keep the pipes open.
    guard.signal_group(libc::SIGKILL);
    let _ = waiter.join();
    if let Some(writer) = writer {
        let _ = writer.join();
    }
    let stdout = stdout.join().expect("stdout reader");
    let stderr = stderr.join().expect("stderr reader");
    match result {
        Ok((Ok(status), end)) => Ok(Output {
            pid,
            status,
            stdout,
            stderr,
            elapsed: end - start,
        }),
        Ok((Err(e), _)) => Err(format!("cannot wait for {description}: {e}")),
        Err(_) => Err(format!(
            "{description} did not finish within {:.1} s and was killed; its stderr:\n{}",
            limit.as_secs_f64(),
            tail(&String::from_utf8_lossy(&stderr), 40)
        )),
    }
}

/// A command as a shell line, for messages.
pub fn describe_command(command: &Command) -> String {
    std::iter::once(command.get_program())
        .chain(command.get_args())
        .map(|a| {
            let a = a.to_string_lossy();
            if a.is_empty() || a.contains([' ', '\'', '"', '$', '\n']) {
                format!("'{}'", a.replace('\'', "'\\''"))
            } else {
                a.into_owned()
            }
        })
        .collect::<Vec<_>>()
        .join(" ")
}

/// The last `lines` lines of `text`.
pub fn tail(text: &str, lines: usize) -> String {
    let all: Vec<&str> = text.lines().collect();
    all[all.len().saturating_sub(lines)..].join("\n")
}
