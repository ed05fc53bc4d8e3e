//! The agent's settings, read once from the environment (see `leakscope_format::settings`),
//! after which the agent's variables are removed from the environment.

use core::cell::UnsafeCell;
use core::sync::atomic::{AtomicU32, Ordering};

use leakscope_format::settings as names;

use crate::sys::parse_decimal;
use crate::unwind::MAX_FRAMES_LIMIT;

/// Longest profile path the agent accepts.
pub const MAX_PATH: usize = 4096;

/// The settings.
pub struct Settings {
    /// The profile path, NUL-terminated (empty: the agent is inactive).
    pub profile_path: [u8; MAX_PATH],
    /// Length of `profile_path` without the NUL.
    pub profile_path_len: usize,
    /// Frames kept per stack.
    pub max_frames: usize,
    /// Sampling: mean bytes between sampled allocations (0: every allocation has a stack).
    pub sample_rate: u64,
    /// The first interval between snapshots, in milliseconds.
    pub interval_ms: u64,
    /// Live reachability scans every this many milliseconds (0: none on a schedule).
    pub scan_every_ms: u64,
    /// `--follow-children`: programs this one executes are tracked too.
    pub follow_children: bool,
    /// `--native`: interpreters' own frames stay in stacks.
    pub native_frames: bool,
}

struct SettingsCell {
    state: AtomicU32, // 0 unread, 1 being read, 2 ready
    settings: UnsafeCell<Settings>,
}

// SAFETY: the settings are written once, by the thread that moves `state` from 0 to 1, and
// only read after `state` is 2 (published with Release ordering).
unsafe impl Sync for SettingsCell {}

static SETTINGS: SettingsCell = SettingsCell {
    state: AtomicU32::new(0),
    settings: UnsafeCell::new(Settings::DEFAULT),
};

impl Settings {
    /// The settings of an environment without the agent's variables.
    pub const DEFAULT: Settings = Settings {
        profile_path: [0; MAX_PATH],
        profile_path_len: 0,
        max_frames: names::DEFAULT_MAX_FRAMES as usize,
        sample_rate: 0,
        interval_ms: names::DEFAULT_INTERVAL_MS,
        scan_every_ms: 0,
        follow_children: false,
        native_frames: false,
    };
}

extern "C" {
    static mut environ: *mut *mut libc::c_char;
}

/// The settings, reading them on first use. Returns `None` while another thread is reading
/// them (that thread's caller is the process's first allocation; others wait a moment).
pub fn get() -> Option<&'static Settings> {
    match SETTINGS.state.load(Ordering::Acquire) {
        2 => {
            // SAFETY: state 2 means the settings are written and never change again.
            return Some(unsafe { &*SETTINGS.settings.get() });
        }
        0 if SETTINGS
            .state
            .compare_exchange(0, 1, Ordering::Acquire, Ordering::Relaxed)
            .is_ok() =>
        {
            // SAFETY: we won the race to state 1, so we are the only writer.
            unsafe { read_from_environment(&mut *SETTINGS.settings.get()) };
            SETTINGS.state.store(2, Ordering::Release);
            // SAFETY: as above.
            return Some(unsafe { &*SETTINGS.settings.get() });
        }
        _ => {}
    }
    for _ in 0..1000 {
        if SETTINGS.state.load(Ordering::Acquire) == 2 {
            // SAFETY: state 2 as above.
            return Some(unsafe { &*SETTINGS.settings.get() });
        }
        core::hint::spin_loop();
    }
    None
}

fn value_of<'a>(entry: &'a [u8], name: &str) -> Option<&'a [u8]> {
    let rest = entry.strip_prefix(name.as_bytes())?;
    rest.strip_prefix(b"=")
}

/// Apply one environment entry (`NAME=value`): one of the agent's variables sets its setting;
/// anything else is ignored. A number is read as `sys::parse_decimal` reads it (up to its first
/// other character).
fn apply(settings: &mut Settings, entry: &[u8]) {
    if let Some(path) = value_of(entry, names::PROFILE) {
        let n = path.len().min(MAX_PATH - 1);
        settings.profile_path[..n].copy_from_slice(&path[..n]);
        settings.profile_path[n] = 0;
        settings.profile_path_len = n;
    } else if let Some(value) = value_of(entry, names::MAX_FRAMES) {
        settings.max_frames = (parse_decimal(value) as usize).clamp(1, MAX_FRAMES_LIMIT);
    } else if let Some(value) = value_of(entry, names::SAMPLE_RATE) {
        settings.sample_rate = parse_decimal(value);
    } else if let Some(value) = value_of(entry, names::INTERVAL_MS) {
        settings.interval_ms = parse_decimal(value).max(1);
    } else if let Some(value) = value_of(entry, names::SCAN_EVERY_MS) {
        settings.scan_every_ms = parse_decimal(value);
    } else if let Some(value) = value_of(entry, names::FOLLOW_CHILDREN) {
        settings.follow_children = value == b"1";
    } else if let Some(value) = value_of(entry, names::NATIVE_FRAMES) {
        settings.native_frames = value == b"1";
    }
}

/// # Safety
/// Must only run once, before any reader.
unsafe fn read_from_environment(settings: &mut Settings) {
    // SAFETY: reading the environ pointer; it is null only before libc set it up.
    let env = unsafe { environ };
    if !env.is_null() {
        let mut i = 0;
        loop {
            // SAFETY: environ is a NULL-terminated array of NUL-terminated strings.
            let entry = unsafe { *env.add(i) };
            if entry.is_null() {
                break;
            }
            // SAFETY: as above.
            apply(
                settings,
                unsafe { core::ffi::CStr::from_ptr(entry) }.to_bytes(),
            );
            i += 1;
        }
        return;
    }
    // Too early for `environ` (an allocation during libc's own start-up): read the initial
    // environment from the kernel instead.
    let buf = crate::sys::map_anonymous(256 * 1024, false);
    if buf.is_null() {
        return;
    }
    // SAFETY: a fresh mapping of 256 KiB.
    let bytes = unsafe { core::slice::from_raw_parts_mut(buf, 256 * 1024) };
    if let Some(len) = crate::sys::read_file(b"/proc/self/environ\0", bytes) {
        for entry in bytes[..len].split(|&b| b == 0) {
            apply(settings, entry);
        }
    }
    // SAFETY: the mapping was made above and is not used after this.
    unsafe { crate::sys::unmap(buf, 256 * 1024) };
}

/// Most of the agent's own environment entries kept for the programs this one executes.
pub const MAX_AGENT_ENTRIES: usize = 16;

/// The agent's own environment entries as the process received them (`LD_PRELOAD` and every
/// `LEAKSCOPE_*`), kept so that a followed child can be given them even if the program passes
/// it an environment of its own. The strings are the process's initial environment, which is
/// never freed.
pub struct AgentEntries {
    /// The entries, as `NAME=value` C strings.
    pub entries: [*const libc::c_char; MAX_AGENT_ENTRIES],
    /// How many there are.
    pub count: usize,
}

struct AgentEntriesCell(UnsafeCell<AgentEntries>);

// SAFETY: written once by the constructor before any other thread exists, read-only after.
unsafe impl Sync for AgentEntriesCell {}

static AGENT_ENTRIES: AgentEntriesCell = AgentEntriesCell(UnsafeCell::new(AgentEntries {
    entries: [core::ptr::null(); MAX_AGENT_ENTRIES],
    count: 0,
}));

/// The agent's own environment entries (see [`AgentEntries`]); empty before the constructor.
pub fn agent_entries() -> &'static AgentEntries {
    // SAFETY: only the constructor writes, before any reader can exist.
    unsafe { &*AGENT_ENTRIES.0.get() }
}

/// Remember the agent's own environment entries (see [`AgentEntries`]).
///
/// # Safety
/// Must run in the constructor, before the program has other threads, and before
/// [`scrub_environment`].
pub unsafe fn capture_agent_entries() {
    // SAFETY: single-threaded at this point, by the caller's promise.
    let (env, saved) = unsafe { (environ, &mut *AGENT_ENTRIES.0.get()) };
    if env.is_null() {
        return;
    }
    let mut i = 0;
    // SAFETY: walking a NULL-terminated array of C strings.
    unsafe {
        while !(*env.add(i)).is_null() {
            let entry = core::ffi::CStr::from_ptr(*env.add(i)).to_bytes();
            let ours = entry.starts_with(names::PREFIX.as_bytes())
                && !entry.starts_with(names::RESTORE_PRELOAD.as_bytes());
            if (ours || entry.starts_with(b"LD_PRELOAD=")) && saved.count < MAX_AGENT_ENTRIES {
                saved.entries[saved.count] = *env.add(i);
                saved.count += 1;
            }
            i += 1;
        }
    }
}

/// Remove the agent's variables from the environment and put back the user's own
/// `LD_PRELOAD`, without allocating: entries are only moved within the `environ` array.
/// With `--follow-children` the environment is left as it is: the programs the process
/// executes must inherit the agent.
///
/// # Safety
/// Must run in the constructor, before the program has other threads.
pub unsafe fn scrub_environment() {
    // SAFETY: single-threaded at this point, by the caller's promise.
    let env = unsafe { environ };
    if env.is_null() || get().is_some_and(|s| s.follow_children) {
        return;
    }
    let mut restore: *mut libc::c_char = core::ptr::null_mut();
    let restore_prefix = names::RESTORE_PRELOAD.as_bytes();
    // Find the restore entry first: its value is a whole `LD_PRELOAD=...` entry.
    let mut i = 0;
    // SAFETY: walking a NULL-terminated array of C strings.
    unsafe {
        while !(*env.add(i)).is_null() {
            let entry = core::ffi::CStr::from_ptr(*env.add(i)).to_bytes();
            if entry.starts_with(restore_prefix) && entry.get(restore_prefix.len()) == Some(&b'=') {
                restore = (*env.add(i)).add(restore_prefix.len() + 1);
            }
            i += 1;
        }
    }
    let mut write = 0;
    let mut read = 0;
    // SAFETY: compacting the array in place; every pointer we keep was in it already.
    unsafe {
        while !(*env.add(read)).is_null() {
            let entry_ptr = *env.add(read);
            let entry = core::ffi::CStr::from_ptr(entry_ptr).to_bytes();
            read += 1;
            if entry.starts_with(names::PREFIX.as_bytes()) {
                continue;
            }
            if entry.starts_with(b"LD_PRELOAD=") {
                if !restore.is_null() {
                    *env.add(write) = restore;
                    write += 1;
                }
                continue;
            }
            *env.add(write) = entry_ptr;
            write += 1;
        }
        *env.add(write) = core::ptr::null_mut();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn settings_of(entries: &[&str]) -> Settings {
        let mut settings = Settings::DEFAULT;
        for entry in entries {
            apply(&mut settings, entry.as_bytes());
        }
        settings
    }

    #[test]
    fn an_environment_without_the_agents_variables_keeps_the_defaults() {
        let settings = settings_of(&["PATH=/usr/bin", "LEAKSCOPE_PROFILEX=/tmp/p", "HOME=/root"]);
        assert_eq!(settings.profile_path_len, 0);
        assert_eq!(settings.max_frames, names::DEFAULT_MAX_FRAMES as usize);
        assert_eq!(settings.sample_rate, 0);
        assert_eq!(settings.interval_ms, names::DEFAULT_INTERVAL_MS);
        assert_eq!(settings.scan_every_ms, 0);
        assert!(!settings.follow_children);
    }

    #[test]
    fn every_variable_sets_its_setting() {
        let settings = settings_of(&[
            "LEAKSCOPE_PROFILE=/tmp/run.profile",
            "LEAKSCOPE_MAX_FRAMES=24",
            "LEAKSCOPE_SAMPLE_RATE=524288",
            "LEAKSCOPE_INTERVAL_MS=250",
            "LEAKSCOPE_SCAN_EVERY_MS=1000",
            "LEAKSCOPE_FOLLOW_CHILDREN=1",
        ]);
        assert_eq!(
            &settings.profile_path[..settings.profile_path_len + 1],
            b"/tmp/run.profile\0"
        );
        assert_eq!(settings.max_frames, 24);
        assert_eq!(settings.sample_rate, 524_288);
        assert_eq!(settings.interval_ms, 250);
        assert_eq!(settings.scan_every_ms, 1000);
        assert!(settings.follow_children);
    }

    #[test]
    fn bad_values_are_bounded_not_fatal() {
        let settings = settings_of(&[
            "LEAKSCOPE_MAX_FRAMES=0",
            "LEAKSCOPE_INTERVAL_MS=0",
            "LEAKSCOPE_SAMPLE_RATE=12abc",
            "LEAKSCOPE_SCAN_EVERY_MS=soon",
            "LEAKSCOPE_FOLLOW_CHILDREN=yes",
        ]);
        assert_eq!(settings.max_frames, 1, "at least one frame");
        assert_eq!(settings.interval_ms, 1, "at least a millisecond");
        assert_eq!(settings.sample_rate, 12, "read up to the first non-digit");
        assert_eq!(settings.scan_every_ms, 0);
        assert!(!settings.follow_children, "only 1 turns it on");
        let settings = settings_of(&["LEAKSCOPE_MAX_FRAMES=99999999999999999999999"]);
        assert_eq!(settings.max_frames, MAX_FRAMES_LIMIT);
    }

    #[test]
    fn a_profile_path_longer_than_the_limit_is_cut_and_stays_nul_terminated() {
        let long = format!("LEAKSCOPE_PROFILE={}", "p".repeat(MAX_PATH + 10));
        let settings = settings_of(&[&long]);
        assert_eq!(settings.profile_path_len, MAX_PATH - 1);
        assert_eq!(settings.profile_path[MAX_PATH - 1], 0);
    }

    #[test]
    fn a_later_entry_wins() {
        let settings = settings_of(&["LEAKSCOPE_SAMPLE_RATE=1", "LEAKSCOPE_SAMPLE_RATE=2"]);
        assert_eq!(settings.sample_rate, 2);
    }
}
