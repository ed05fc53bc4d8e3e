//! Child processes that cannot outlive a test: each runs in its own process group, which is killed
//! when the test is done with it (or panics), and each has a time limit, so that a hang fails the
//! test instead of blocking CI.

use std::io::{Read, Write};
use std::os::unix::process::{CommandExt, ExitStatusExt};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

use super::expect::Exit;

/// How long any process started by the harness may run.
pub const TIMEOUT: Duration = Duration::from_secs(120);

/// What a finished process left behind.
#[derive(Debug)]
pub struct Output {
    pub pid: u32,
    pub status: ExitStatus,
    pub stdout: Vec<u8>,
    pub stderr: Vec<u8>,
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

pub fn exit_of(status: ExitStatus) -> Exit {
    match (status.code(), status.signal()) {
        (Some(code), _) => Exit::Code(code),
        (None, Some(signal)) => Exit::Signal(signal),
        (None, None) => unreachable!("a process that ended has a code or a signal"),
    }
}

/// Owns a started process: on drop, kills its whole process group and reaps it.
pub struct Guard {
    child: Option<Child>,
    pgid: i32,
}

impl Guard {
    /// Starts `command` as the leader of a new process group.
    pub fn spawn(command: &mut Command) -> std::io::Result<Guard> {
        let child = command.process_group(0).spawn()?;
        let pgid = i32::try_from(child.id()).expect("pids fit in i32");
        Ok(Guard {
            child: Some(child),
            pgid,
        })
    }

    pub fn child(&mut self) -> &mut Child {
        self.child
            .as_mut()
            .expect("the child is only taken on drop")
    }

    /// Kills whatever is left in the process group (the leader may already be gone).
    pub fn kill_group(&self) {
        // SAFETY: kill(2) has no memory-safety preconditions. A negative pid addresses the
        // process group that `spawn` created with the child as its leader, so nothing outside
        // the processes this guard started is signalled.
        unsafe {
            libc::kill(-self.pgid, libc::SIGKILL);
        }
    }
}

impl Drop for Guard {
    fn drop(&mut self) {
        self.kill_group();
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
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

/// Runs `command` to completion with `stdin` as its input (or /dev/null), capturing its output.
/// Fails if it cannot start or does not finish within `timeout` (then it is killed).
pub fn run(
    command: &mut Command,
    stdin: Option<Vec<u8>>,
    timeout: Duration,
) -> Result<Output, String> {
    command
        .stdin(if stdin.is_some() {
            Stdio::piped()
        } else {
            Stdio::null()
        })
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let description = format!("{command:?}");
    let mut guard =
        Guard::spawn(command).map_err(|e| format!("cannot start {description}: {e}"))?;
    let child = guard.child();
    let pid = child.id();
    let writer = child.stdin.take().map(|mut pipe| {
        let data = stdin.unwrap_or_default();
        // A program that stops reading makes this fail with EPIPE, which is its right.
        thread::spawn(move || {
            let _ = pipe.write_all(&data);
        })
    });
    let stdout = drain(child.stdout.take());
    let stderr = drain(child.stderr.take());
    let start = Instant::now();
    let status = loop {
        match guard.child().try_wait() {
            Ok(Some(status)) => break status,
            Ok(None) => {}
            Err(e) => return Err(format!("cannot wait for {description}: {e}")),
        }
        if start.elapsed() > timeout {
            drop(guard);
            return Err(format!(
                "{description} did not finish within {} s and was killed",
                timeout.as_secs()
            ));
        }
        thread::sleep(Duration::from_millis(5));
    };
    // The leader is gone; anything left in its group would keep the pipes open.
    guard.kill_group();
    if let Some(writer) = writer {
        let _ = writer.join();
    }
    let stdout = stdout.join().expect("stdout reader");
    let stderr = stderr.join().expect("stderr reader");
    Ok(Output {
        pid,
        status,
        stdout,
        stderr,
    })
}
