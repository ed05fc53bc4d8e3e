//! A client of HotSpot's attach mechanism, the one `jcmd` uses: leakscope asks the JVM for
//! diagnostic commands directly rather than starting `jcmd` (itself a JVM, about half a
//! second of CPU) for every class histogram.
//!
//! The protocol (HotSpot's `attachListener_linux.cpp`, unchanged from JDK 6 to 25): the JVM
//! listens on the Unix socket `/tmp/.java_pid<pid>` once its attach listener runs; it starts
//! it when it receives SIGQUIT while a file `.attach_pid<pid>` exists in its working
//! directory (or `/tmp`). A request is `1\0`, the command `jcmd\0` and three arguments, each
//! NUL-terminated (the first the diagnostic command line, the others empty); the answer is
//! the result code on a line of its own, then the command's output, until the JVM closes the
//! socket. The JVM accepts only a peer with its own effective user (or root).

use std::io::{Read, Write};
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

/// How long the JVM may take to start its attach listener after SIGQUIT.
const LISTENER_START: Duration = Duration::from_secs(5);
/// How long one command may take (a class histogram of a large heap is a full collection).
const COMMAND_TIMEOUT: Duration = Duration::from_secs(120);

/// Why the JVM cannot be attached to, in one sentence for the report.
#[derive(Debug)]
pub enum AttachError {
    /// The JVM refuses (its own setting, another user, no SIGQUIT handler).
    Refused(String),
    /// The process ended before or while leakscope asked.
    Gone,
    /// Something else went wrong on the way.
    Failed(String),
}

/// A JVM whose attach listener runs.
pub struct Attached {
    pid: i32,
    socket: PathBuf,
}

/// The JVM's answer to a command that it ran but rejected (an unknown command, a bad option).
#[derive(Debug)]
pub struct Rejected(pub String);

/// Does the process still exist (and is it not a zombie)?
pub fn alive(pid: i32) -> bool {
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        // The state follows the command in parentheses, which may itself hold ") ".
        Ok(stat) => stat
            .rsplit_once(") ")
            .is_some_and(|(_, rest)| !rest.starts_with('Z')),
        Err(_) => false,
    }
}

/// Is a HotSpot JVM (`libjvm.so`) mapped in the process?
pub fn has_jvm(pid: i32) -> bool {
    jvm_library(pid).is_some()
}

/// The path of the HotSpot JVM (`libjvm.so`) mapped in the process, if one is.
pub fn jvm_library(pid: i32) -> Option<String> {
    let maps = std::fs::read_to_string(format!("/proc/{pid}/maps")).ok()?;
    maps.lines()
        .filter(|line| line.ends_with("/libjvm.so"))
        .find_map(|line| line.find(" /").map(|at| line[at + 1..].to_owned()))
}

/// How far the JVM's start has come, for attaching.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Readiness {
    /// Still starting: SIGQUIT could kill it (its handler, which starts the attach listener,
    /// is installed late in its start; the agent's own handler for fatal signals is there
    /// before it).
    Starting,
    /// Started, with its signal dispatcher: SIGQUIT starts the attach listener.
    Ready,
    /// Started without a signal dispatcher (`-Xrs`, `-XX:+ReduceSignalUsage`): it cannot be
    /// attached to.
    NoSignalDispatcher,
}

/// Has the JVM finished starting? Its performance data says when (`sun.rt.createVmEndTime`
/// is set at the end of its creation, after its signal handlers); without performance data
/// (`-XX:-UsePerfData`), the thread "Signal Dispatcher", which the JVM creates just before it
/// installs its SIGQUIT handler, must have been there for half a second (`dispatcher_seen`
/// keeps when it was first seen).
pub fn readiness(pid: i32, dispatcher_seen: &mut Option<std::time::Instant>) -> Readiness {
    let dispatcher = has_signal_dispatcher(pid);
    match perf_data(pid).map(|data| perf_long(&data, "sun.rt.createVmEndTime")) {
        Some(Some(end)) if end > 0 => {
            if dispatcher {
                Readiness::Ready
            } else {
                Readiness::NoSignalDispatcher
            }
        }
        Some(_) => Readiness::Starting,
        None if dispatcher => {
            let seen = *dispatcher_seen.get_or_insert_with(Instant::now);
            if seen.elapsed() >= Duration::from_millis(500) {
                Readiness::Ready
            } else {
                Readiness::Starting
            }
        }
        None => Readiness::Starting,
    }
}

/// Does the process have HotSpot's signal dispatcher thread (its name cut to 15 bytes)?
fn has_signal_dispatcher(pid: i32) -> bool {
    std::fs::read_dir(format!("/proc/{pid}/task"))
        .into_iter()
        .flatten()
        .flatten()
        .any(|task| {
            std::fs::read_to_string(task.path().join("comm"))
                .is_ok_and(|name| name.trim_end() == "Signal Dispatch")
        })
}

/// A field of `/proc/PID/status`.
fn status_field(pid: i32, name: &str) -> Option<String> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    status
        .lines()
        .find_map(|line| line.strip_prefix(name))
        .map(|value| value.trim().to_owned())
}

/// The effective user the process runs as.
pub fn effective_uid(pid: i32) -> Option<u32> {
    status_field(pid, "Uid:")?
        .split_whitespace()
        .nth(1)?
        .parse()
        .ok()
}

/// Start the JVM's attach listener (if it is not running yet) and connect.
pub fn attach(pid: i32) -> Result<Attached, AttachError> {
    // SAFETY: geteuid has no preconditions.
    let our_uid = unsafe { libc::geteuid() };
    match effective_uid(pid) {
        None => return Err(AttachError::Gone),
        Some(uid) if uid != our_uid && our_uid != 0 => {
            return Err(AttachError::Refused(format!(
                "the JVM runs as user {uid} and leakscope as user {our_uid}; a JVM lets only its own user (or root) attach"
            )))
        }
        Some(_) => {}
    }
    if let Some(false) = attach_capability(pid) {
        return Err(AttachError::Refused(
            "the JVM does not allow attaching (it was started with -XX:+DisableAttachMechanism)"
                .into(),
        ));
    }
    let socket = PathBuf::from(format!("/tmp/.java_pid{pid}"));
    let attached = Attached { pid, socket };
    if attached.connect().is_ok() {
        return Ok(attached);
    }
    // The JVM looks for the trigger file in its working directory first, then in /tmp.
    let trigger = [
        PathBuf::from(format!("/proc/{pid}/cwd/.attach_pid{pid}")),
        PathBuf::from(format!("/tmp/.attach_pid{pid}")),
    ]
    .into_iter()
    .find(|path| create_trigger(path))
    .ok_or_else(|| {
        AttachError::Failed(format!(
            "cannot create the attach trigger .attach_pid{pid} in the JVM's working directory or /tmp"
        ))
    })?;
    let started = Instant::now();
    // SAFETY: signals the program this run started, whose JVM has finished starting (the
    // caller waited for `readiness`): its SIGQUIT handler starts the attach listener.
    unsafe { libc::kill(pid, libc::SIGQUIT) };
    let outcome = loop {
        if attached.connect().is_ok() {
            break Ok(());
        }
        if !alive(pid) {
            break Err(AttachError::Gone);
        }
        if started.elapsed() > LISTENER_START {
            break Err(AttachError::Refused(format!(
                "the JVM did not start its attach listener within {} s of SIGQUIT",
                LISTENER_START.as_secs()
            )));
        }
        std::thread::sleep(Duration::from_millis(10));
    };
    let _ = std::fs::remove_file(&trigger);
    outcome.map(|()| attached)
}

fn create_trigger(path: &Path) -> bool {
    use std::os::unix::fs::OpenOptionsExt;
    std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(path)
        .is_ok()
}

impl Attached {
    fn connect(&self) -> std::io::Result<UnixStream> {
        let stream = UnixStream::connect(&self.socket)?;
        stream.set_read_timeout(Some(COMMAND_TIMEOUT))?;
        stream.set_write_timeout(Some(COMMAND_TIMEOUT))?;
        Ok(stream)
    }

    /// Run one diagnostic command (`GC.class_histogram`, `VM.flags`, ...) and return its
    /// output.
    pub fn command(&self, line: &str) -> Result<Result<String, Rejected>, AttachError> {
        // The JVM removes its socket as it exits: a connection lost then is its end.
        let lost = |e: std::io::Error| {
            if alive(self.pid) && self.socket.exists() {
                AttachError::Failed(format!("the attach connection failed: {e}"))
            } else {
                AttachError::Gone
            }
        };
        let mut stream = self.connect().map_err(lost)?;
        let mut request = Vec::with_capacity(line.len() + 16);
        request.extend_from_slice(b"1\0jcmd\0");
        request.extend_from_slice(line.as_bytes());
        request.extend_from_slice(b"\0\0\0");
        stream.write_all(&request).map_err(lost)?;
        let mut answer = Vec::new();
        stream.read_to_end(&mut answer).map_err(lost)?;
        let answer = String::from_utf8_lossy(&answer).into_owned();
        let (code, output) = answer.split_once('\n').unwrap_or((&answer, ""));
        match code.trim().parse::<i32>() {
            Ok(0) => Ok(Ok(output.to_owned())),
            Ok(_) => Ok(Err(Rejected(output.trim().to_owned()))),
            Err(_) if answer.is_empty() && !alive(self.pid) => Err(AttachError::Gone),
            Err(_) => Err(AttachError::Failed(format!(
                "the JVM's answer to '{line}' does not begin with a result code: {:?}",
                answer.chars().take(80).collect::<String>()
            ))),
        }
    }
}

/// What the JVM's performance data (`/tmp/hsperfdata_<user>/<pid>`) says of attaching: its
/// `sun.rt.jvmCapabilities` begins with `1` when the attach mechanism is on. None when there
/// is no such file (`-XX:-UsePerfData`) or it cannot be read: `jcmd` then tries anyway, and so
/// does leakscope.
fn attach_capability(pid: i32) -> Option<bool> {
    perf_string(&perf_data(pid)?, "sun.rt.jvmCapabilities")
        .map(|capabilities| capabilities.starts_with('1'))
}

/// The JVM's performance data file, `/tmp/hsperfdata_<user>/<pid>`.
fn perf_data(pid: i32) -> Option<Vec<u8>> {
    let dirs = std::fs::read_dir("/tmp").ok()?;
    for entry in dirs.flatten() {
        if !entry
            .file_name()
            .to_string_lossy()
            .starts_with("hsperfdata_")
        {
            continue;
        }
        if let Ok(data) = std::fs::read(entry.path().join(pid.to_string())) {
            return Some(data);
        }
    }
    None
}

/// A long counter of a performance data file.
fn perf_long(data: &[u8], name: &str) -> Option<i64> {
    let (little, value) = perf_entry(data, name)?;
    let bytes: [u8; 8] = value.get(..8)?.try_into().ok()?;
    Some(if little {
        i64::from_le_bytes(bytes)
    } else {
        i64::from_be_bytes(bytes)
    })
}

/// A string counter of a performance data file.
fn perf_string(data: &[u8], name: &str) -> Option<String> {
    let (_, value) = perf_entry(data, name)?;
    let end = value.iter().position(|&b| b == 0).unwrap_or(value.len());
    Some(String::from_utf8_lossy(&value[..end]).into_owned())
}

/// A counter of a HotSpot performance data file (`perfMemory.hpp`: a prologue, then entries
/// of a length, a name offset, a vector length, a type, flags, units, variability and a data
/// offset): whether the file is little-endian, and the counter's bytes (a vector's, or 8 for
/// a scalar).
fn perf_entry<'d>(data: &'d [u8], name: &str) -> Option<(bool, &'d [u8])> {
    if data.get(..4)? != [0xca, 0xfe, 0xc0, 0xc0] {
        return None;
    }
    let little = *data.get(4)? == 1;
    let int = |at: usize| -> Option<usize> {
        let bytes: [u8; 4] = data.get(at..at + 4)?.try_into().ok()?;
        let value = if little {
            i32::from_le_bytes(bytes)
        } else {
            i32::from_be_bytes(bytes)
        };
        usize::try_from(value).ok()
    };
    let mut entry = int(24)?;
    let count = int(28)?;
    for _ in 0..count {
        let length = int(entry)?;
        if length == 0 {
            return None;
        }
        let name_at = entry + int(entry + 4)?;
        let name_end = name_at + data.get(name_at..)?.iter().position(|&b| b == 0)?;
        if &data[name_at..name_end] == name.as_bytes() {
            let vector = int(entry + 8)?;
            let value_at = entry + int(entry + 16)?;
            let len = if vector == 0 { 8 } else { vector };
            return Some((little, data.get(value_at..value_at + len)?));
        }
        entry += length;
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A performance data file with one string counter, laid out as HotSpot writes it.
    fn perf_file(name: &str, value: &str) -> Vec<u8> {
        let mut data = vec![0xca, 0xfe, 0xc0, 0xc0, 1, 2, 0, 1];
        data.resize(32, 0);
        data[24..28].copy_from_slice(&32i32.to_le_bytes());
        data[28..32].copy_from_slice(&1i32.to_le_bytes());
        let name_offset = 20;
        let data_offset = name_offset + name.len() + 1;
        let length = data_offset + value.len() + 1;
        let mut entry = Vec::new();
        entry.extend_from_slice(&(length as i32).to_le_bytes());
        entry.extend_from_slice(&(name_offset as i32).to_le_bytes());
        entry.extend_from_slice(&((value.len() + 1) as i32).to_le_bytes());
        entry.extend_from_slice(&[b'B', 0, 5, 1]);
        entry.extend_from_slice(&(data_offset as i32).to_le_bytes());
        entry.extend_from_slice(name.as_bytes());
        entry.push(0);
        entry.extend_from_slice(value.as_bytes());
        entry.push(0);
        data.extend(entry);
        data
    }

    #[test]
    fn the_capabilities_counter_is_read_from_performance_data() {
        let data = perf_file("sun.rt.jvmCapabilities", "0100");
        assert_eq!(
            perf_string(&data, "sun.rt.jvmCapabilities").as_deref(),
            Some("0100")
        );
        assert_eq!(perf_string(&data, "sun.rt.other"), None);
        assert_eq!(perf_string(&data[..20], "sun.rt.jvmCapabilities"), None);
        assert_eq!(perf_string(b"not perf data at all", "x"), None);
    }

    #[test]
    fn our_own_process_is_alive_and_no_jvm() {
        let pid = std::process::id() as i32;
        assert!(alive(pid));
        assert!(!has_jvm(pid));
        assert!(!alive(i32::MAX));
    }
}
