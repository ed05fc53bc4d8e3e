//! The in-memory profile that the later stages (analysis, symbolization, reports) consume.

use std::collections::BTreeMap;

use crate::{
    Exit, FrameId, FrameKind, InterpreterFrame, LeakRecord, LiveScan, Module, Process, PythonCode,
    RunResult, Runtime, RuntimeEvent, Scan, SiteAges, Snapshot, Spawn, StackFrame, StackId,
};

/// Everything read from one profile file.
#[derive(Clone, Debug, Default)]
pub struct Profile {
    /// Who the process was (absent only if the file was cut before the first chunk).
    pub process: Option<Process>,
    /// The format version of the file (1 or 2).
    pub version: u32,
    /// Loaded modules, in the order the agent saw them.
    pub modules: Vec<Module>,
    /// Interned stacks: their frames, innermost first.
    pub stacks: BTreeMap<StackId, Vec<StackFrame>>,
    /// Interned interpreter frames, which stacks' [`StackFrame::Interpreter`] frames name.
    pub frames: BTreeMap<FrameId, InterpreterFrame>,
    /// Python code objects, by id, that Python frames ran (the reader has already turned
    /// every code location of `stacks` into an interned frame with its line).
    pub python_codes: BTreeMap<u32, PythonCode>,
    /// What language runtimes in the process did, in time order.
    pub runtimes: Vec<Runtime>,
    /// How the process ended, if the agent saw it end.
    pub exit: Option<Exit>,
    /// Leak records from the exit scan, one per (stack, kind): exact bytes and blocks.
    pub leaks: Vec<LeakRecord>,
    /// Sampling mode's rate in bytes, if the agent sampled.
    pub sample_rate: Option<u64>,
    /// Sampling mode: per (stack, kind), what the sampled blocks stand for (bytes and blocks
    /// are estimates). Empty when not sampling.
    pub leak_estimates: Vec<LeakRecord>,
    /// Facts about the exit scan.
    pub scan: Option<Scan>,
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
    /// What a script runtime's preload recorded (Node.js), in the order written.
    pub script_records: Vec<crate::ScriptRecord>,
    /// Calls of `exec` (the last one, unless it failed, ended this image).
    pub execs: Vec<ExecEvent>,
    /// Processes this image started.
    pub spawns: Vec<Spawn>,
    /// The agent wrote its end marker: the file is whole.
    pub complete: bool,
    /// Why reading stopped early, if it did (the file was cut short or damaged).
    pub damage: Option<String>,
    /// What `leakscope run` learnt from a JVM in the process (the Java chunks); empty when it
    /// found none.
    pub java: JavaRecord,
}

/// The Java chunks of a profile (see [`crate::java`]).
#[derive(Clone, Debug, Default)]
pub struct JavaRecord {
    /// The JVM and how watching it went (absent: no JVM was found).
    pub vm: Option<crate::JavaVm>,
    /// Class names by id.
    pub classes: BTreeMap<u32, String>,
    /// Class histograms, oldest first; each lists only the classes that changed since the one
    /// before ([`JavaRecord::class_series`] carries values forward).
    pub histograms: Vec<crate::JavaHistogram>,
    /// The pauses the histograms caused, as the flight recorder measured them.
    pub pauses: Vec<crate::JavaPause>,
    /// The flight recorder's old object samples.
    pub old_objects: Vec<crate::JavaOldObject>,
    /// The blobs of the JVM's code cache its perf maps listed, in the order read.
    pub code: Vec<crate::JavaCode>,
}

impl JavaRecord {
    /// A class's name (`<class #id>` for an id no `JavaClasses` chunk named: a file cut short).
    pub fn class_name(&self, id: u32) -> String {
        self.classes
            .get(&id)
            .cloned()
            .unwrap_or_else(|| format!("<class #{id}>"))
    }

    /// Every class's instances and bytes at every histogram, values carried forward between
    /// the histograms that mention it: `(class, [(unix_ns, instances, bytes)])`, one point per
    /// histogram from the class's first appearance on.
    pub fn class_series(&self) -> BTreeMap<u32, Vec<(u64, u64, u64)>> {
        let mut current: BTreeMap<u32, (u64, u64)> = BTreeMap::new();
        let mut series: BTreeMap<u32, Vec<(u64, u64, u64)>> = BTreeMap::new();
        for histogram in &self.histograms {
            for class in &histogram.classes {
                current.insert(class.class, (class.instances, class.bytes));
            }
            for (&class, &(instances, bytes)) in &current {
                series
                    .entry(class)
                    .or_default()
                    .push((histogram.unix_ns, instances, bytes));
            }
        }
        series
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

/// One frame of a symbolized stack, as reports show it. A stack lists the allocating frame
/// first (the caller of `malloc`), outermost last; inlined functions come before the function
/// they were inlined into, with `inlined: true`.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Frame {
    /// What kind of code the frame is in. For an interpreter frame, `address` is 0 and
    /// `module` is `None`.
    pub kind: FrameKind,
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

impl Profile {
    /// A time of the Java chunks (ns since the Unix epoch) in seconds since the process
    /// started, as the profile's other times are; without a `Process` chunk (a file cut
    /// short), since the first class histogram.
    pub fn java_seconds(&self, unix_ns: u64) -> f64 {
        let origin = self.process.as_ref().map_or_else(
            || {
                self.java
                    .histograms
                    .first()
                    .map_or(unix_ns, |histogram| histogram.unix_ns)
            },
            |process| process.start_unix_ns,
        );
        (unix_ns as f64 - origin as f64) / 1e9
    }

    /// When a runtime of the process began to shut down (CPython's finalization), in ns since
    /// start: what it freed from then on was its teardown, not the program's doing.
    pub fn runtime_finalizing_ns(&self) -> Option<u64> {
        self.runtimes
            .iter()
            .filter(|r| r.event == RuntimeEvent::Finalizing)
            .map(|r| r.time_ns)
            .min()
    }

    /// The runtime the agent found in the process and recorded frames of, if any.
    pub fn detected_runtime(&self) -> Option<&Runtime> {
        self.runtimes
            .iter()
            .find(|r| r.event == RuntimeEvent::Detected)
    }

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
