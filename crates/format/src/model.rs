//! The in-memory profile that the later stages (analysis, symbolization, reports) consume.

use std::collections::BTreeMap;

use crate::{ExitHow, LeakKind, ScanInfo, StackId};

/// Everything read from one profile file.
#[derive(Clone, Debug, Default)]
pub struct Profile {
    /// Who the process was (absent only if the file was cut before the first chunk).
    pub process: Option<ProcessInfo>,
    /// Loaded modules, in the order the agent saw them.
    pub modules: Vec<ModuleInfo>,
    /// Interned stacks: raw return addresses, innermost first.
    pub stacks: BTreeMap<StackId, Vec<u64>>,
    /// How the process ended, if the agent saw it end.
    pub exit: Option<ExitInfo>,
    /// Leak records from the exit scan, one per (stack, kind): exact bytes and blocks.
    pub leaks: Vec<LeakRecord>,
    /// Sampling mode's rate in bytes, if the agent sampled.
    pub sample_rate: Option<u64>,
    /// Sampling mode: per (stack, kind), what the sampled blocks stand for (bytes and blocks
    /// are estimates). Empty when not sampling.
    pub leak_estimates: Vec<LeakRecord>,
    /// Facts about the exit scan.
    pub scan: Option<ScanInfo>,
    /// Warnings the agent wrote into the file.
    pub warnings: Vec<String>,
    /// Live memory over time, oldest first. Each snapshot lists only the sites that changed
    /// since the previous one; [`Profile::site_series`] carries values forward.
    pub snapshots: Vec<Snapshot>,
    /// When each site's oldest live block was allocated, as of the last `SiteAges` chunk.
    pub site_ages: SiteAges,
    /// Reachability scans made while the program ran, in time order.
    pub live_scans: Vec<LiveScan>,
    /// How the process ended as `leakscope run` saw it.
    pub run_result: Option<RunResult>,
    /// Calls of `exec` (the last one, unless it failed, ended this image).
    pub execs: Vec<ExecEvent>,
    /// Processes this image started.
    pub spawns: Vec<SpawnEvent>,
    /// The agent wrote its end marker: the file is whole.
    pub complete: bool,
    /// Why reading stopped early, if it did (the file was cut short or damaged).
    pub damage: Option<String>,
}

/// The `Process` chunk.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ProcessInfo {
    /// Process id.
    pub pid: u32,
    /// Parent process id.
    pub ppid: u32,
    /// When the agent started, in nanoseconds since the Unix epoch.
    pub start_unix_ns: u64,
    /// The `--max-frames` setting the agent ran with.
    pub max_frames: u32,
    /// Reserved flags.
    pub flags: u32,
    /// The command line.
    pub argv: Vec<String>,
    /// The executable's path.
    pub exe: String,
    /// The agent's version.
    pub agent_version: String,
    /// When the process started, in clock ticks since boot (`/proc/self/stat`'s `starttime`):
    /// the same in every image of one process (`exec` keeps it), different for a later
    /// process that reuses the pid. (Absent in profiles of older agents.)
    pub kernel_start_ticks: Option<u64>,
}

impl ProcessInfo {
    /// Did this image begin as a `fork` of its parent's?
    pub fn forked(&self) -> bool {
        self.flags & crate::process_flags::FORKED != 0
    }
}

/// An `Exec` chunk, with the outcome the `ExecFailed` chunk after it gives.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ExecEvent {
    /// When, in ns since the agent started.
    pub time_ns: u64,
    /// The function called.
    pub call: crate::ExecCall,
    /// The program it was asked to run.
    pub path: String,
    /// Its arguments.
    pub argv: Vec<String>,
    /// The `errno` of a failed exec (the image went on).
    pub failed: Option<i32>,
}

/// A `Spawn` chunk.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SpawnEvent {
    /// When, in ns since the agent started.
    pub time_ns: u64,
    /// How.
    pub how: crate::SpawnHow,
    /// The child's pid, if known (`fork`, `posix_spawn`).
    pub pid: Option<u32>,
    /// The program (`posix_spawn`) or the shell command (`system`, `popen`); empty for
    /// `fork`.
    pub program: String,
}

/// A `Module` chunk: one executable or shared library mapped into the process.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ModuleInfo {
    /// Difference between the addresses in the process and those in the file (`dlpi_addr`).
    pub load_bias: u64,
    /// First mapped address.
    pub start: u64,
    /// One past the last mapped address.
    pub end: u64,
    /// Path of the file.
    pub path: String,
    /// GNU build id, if the module has one.
    pub build_id: Vec<u8>,
}

impl ModuleInfo {
    /// Does this module's mapping contain `address`?
    pub fn contains(&self, address: u64) -> bool {
        self.start <= address && address < self.end
    }
}

/// The `Exit` chunk.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ExitInfo {
    /// How the process ended.
    pub how: ExitHow,
    /// The exit code (for `exit` and `_exit`).
    pub code: i32,
    /// The signal number (for [`ExitHow::Signal`]).
    pub signal: i32,
    /// Nanoseconds since the agent started.
    pub time_ns: u64,
}

/// One record of the `Leaks` chunk: the blocks of one kind allocated at one stack.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct LeakRecord {
    /// Where the blocks were allocated.
    pub stack: StackId,
    /// What the scan found them to be.
    pub kind: LeakKind,
    /// Total bytes.
    pub bytes: u64,
    /// Number of blocks.
    pub blocks: u64,
}

/// One frame of a symbolized stack, as reports show it. A stack lists the allocating frame
/// first (the caller of `malloc`), outermost last; inlined functions come before the function
/// they were inlined into, with `inlined: true`.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Frame {
    /// The return address (or, for inlined frames, the address of the call site they share).
    pub address: u64,
    /// Demangled function name, if known.
    pub function: Option<String>,
    /// Source file, if debug info has it.
    pub file: Option<String>,
    /// Source line, if debug info has it.
    pub line: Option<u32>,
    /// Path of the module the address lies in, if any.
    pub module: Option<String>,
    /// Offset of the address in the module file's address space (`address - load bias`).
    pub module_offset: Option<u64>,
    /// This frame was inlined into the next one.
    pub inlined: bool,
}

/// The `RunResult` chunk.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct RunResult {
    /// Exit code, if the process exited.
    pub code: Option<i32>,
    /// Signal, if a signal killed it.
    pub signal: Option<i32>,
    /// Wall time from start to end, in nanoseconds.
    pub wall_ns: u64,
}

/// A `Snapshot` chunk.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Snapshot {
    /// Nanoseconds since the agent started.
    pub time_ns: u64,
    /// The process's resident set size, in bytes.
    pub rss_bytes: u64,
    /// The machine's available memory (`MemAvailable`), in bytes; 0 if unknown.
    pub available_bytes: u64,
    /// Live heap bytes of the whole process.
    pub live_bytes: u64,
    /// Live heap blocks of the whole process.
    pub live_blocks: u64,
    /// The sites whose live bytes or blocks changed since the previous snapshot, with their
    /// new (absolute) values.
    pub sites: Vec<SiteLive>,
}

/// One site's live memory in a snapshot.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct SiteLive {
    /// The allocation stack (the site).
    pub stack: StackId,
    /// Live bytes allocated there.
    pub live_bytes: u64,
    /// Live blocks allocated there.
    pub live_blocks: u64,
}

/// A `SiteAges` chunk.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct SiteAges {
    /// When the ages were taken, in nanoseconds since the agent started.
    pub time_ns: u64,
    /// (site, allocation time of its oldest live block in ns since start).
    pub oldest: Vec<(StackId, u64)>,
}

impl Profile {
    /// The `exec` that ended this image, if it ended so (the last exec, if it did not fail and
    /// nothing ended the image after it).
    pub fn ended_by_exec(&self) -> Option<&ExecEvent> {
        if self.exit.is_some() {
            return None;
        }
        self.execs.last().filter(|exec| exec.failed.is_none())
    }

    /// Every site's live bytes at every snapshot, values carried forward between the
    /// snapshots that mention the site: `(site, [(time_ns, live_bytes, live_blocks)])`, one
    /// point per snapshot from the site's first appearance on.
    pub fn site_series(&self) -> BTreeMap<StackId, Vec<(u64, u64, u64)>> {
        site_series(&self.snapshots)
    }
}

/// [`Profile::site_series`] over any run of snapshots (such as those before the exit).
pub fn site_series(snapshots: &[Snapshot]) -> BTreeMap<StackId, Vec<(u64, u64, u64)>> {
    let mut current: BTreeMap<StackId, (u64, u64)> = BTreeMap::new();
    let mut series: BTreeMap<StackId, Vec<(u64, u64, u64)>> = BTreeMap::new();
    for snapshot in snapshots {
        for site in &snapshot.sites {
            current.insert(site.stack, (site.live_bytes, site.live_blocks));
        }
        for (&stack, &(bytes, blocks)) in &current {
            series
                .entry(stack)
                .or_default()
                .push((snapshot.time_ns, bytes, blocks));
        }
    }
    series
}

/// One reachability scan made while the program ran.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LiveScan {
    /// When it began, in ns since start.
    pub time_ns: u64,
    /// How long the program's threads were stopped.
    pub pause_ns: u64,
    /// The whole scan, from the first stop signal to the last record.
    pub duration_ns: u64,
    /// Threads stopped.
    pub threads_stopped: u32,
    /// Threads that did not stop in time.
    pub threads_missed: u32,
    /// How the scan ended.
    pub outcome: crate::LiveScanOutcome,
    /// Why it ran.
    pub trigger: crate::LiveScanTrigger,
    /// Blocks classified.
    pub live_blocks: u64,
    /// Per kind, in `LeakKind` order: (bytes, blocks).
    pub totals: [(u64, u64); 4],
    /// Per (stack, lost kind): bytes and blocks. Still reachable blocks are only in `totals`.
    pub records: Vec<LeakRecord>,
}
