//! What a language runtime in the process did, as the analysis uses it: which blocks the
//! interpreter itself keeps at exit (left out of the leak check's kinds, counted as
//! suppressed), and the notes a reader of a Python program's report needs.

use leakscope_format::{Profile, RuntimeEvent, StackFrame, StackId};

/// The modules of a CPython process that are the interpreter's own: its library (or the
/// executable it is linked into), a `python` launcher executable, and the C library and
/// dynamic loader below them.
pub struct InterpreterCode {
    ranges: Vec<(u64, u64)>,
}

impl InterpreterCode {
    /// The interpreter's modules, if the profile records a CPython the agent read.
    pub fn of(profile: &Profile) -> Option<InterpreterCode> {
        let runtime = profile.detected_runtime()?;
        let mut ranges = Vec::new();
        for (index, module) in profile.modules.iter().enumerate() {
            let name = module.path.rsplit('/').next().unwrap_or("");
            let interpreter = runtime.code_address != 0 && module.contains(runtime.code_address);
            let launcher = index == 0 && name.starts_with("python");
            let system = name.starts_with("libc.so") || name.starts_with("ld-linux");
            if interpreter || launcher || system || name.starts_with("libpython") {
                ranges.push((module.start, module.end));
            }
        }
        Some(InterpreterCode { ranges })
    }

    /// Were the blocks of `stack` allocated by the interpreter on its own account: no frame
    /// of a C extension, of another library or of an embedding program, only the
    /// interpreter's (and Python frames, which run on it)? Such blocks, unfreed at exit, are
    /// the interpreter's to keep (its caches, free lists and interned objects). A stack the
    /// profile does not have is not.
    pub fn owns(&self, profile: &Profile, stack: StackId) -> bool {
        let Some(frames) = profile.stacks.get(&stack) else {
            return false;
        };
        !frames.is_empty()
            && frames.iter().all(|frame| match *frame {
                StackFrame::Native(address) => self
                    .ranges
                    .iter()
                    .any(|&(start, end)| start <= address && address < end),
                StackFrame::Interpreter(..) | StackFrame::PythonCode { .. } => true,
            })
    }
}

/// Notes on the Python runtime for the report: the version, when the object allocator was
/// wrapped, and when finalization began (what the growth verdicts then leave out).
pub fn python_notes(profile: &Profile) -> Vec<String> {
    let mut notes = Vec::new();
    let version = |v: u32| format!("{}.{}.{}", v >> 24, (v >> 16) & 0xff, (v >> 8) & 0xff);
    let seconds = |ns: u64| ns as f64 / 1e9;
    for runtime in &profile.runtimes {
        match runtime.event {
            RuntimeEvent::Unsupported => notes.push(format!(
                "CPython {} was found, but leakscope cannot read the frames of this version or build (CPython 3.9 to 3.13 are supported, not free-threaded builds): stacks show the interpreter's native frames only",
                version(runtime.version)
            )),
            RuntimeEvent::AllocatorWrapped => {
                let detected_ns = profile.detected_runtime().map_or(0, |d| d.time_ns);
                if runtime.time_ns <= detected_ns + 1_000_000 {
                    notes.push(format!(
                        "CPython {}: each Python object is a block of its own (the agent wrapped the interpreter's object allocator before it started)",
                        version(runtime.version)
                    ));
                } else {
                    notes.push(format!(
                        "CPython {}: from {:.2} s on, each Python object is a block of its own (the interpreter's object allocator was wrapped); objects made before that count only through the memory their allocator took from malloc",
                        version(runtime.version),
                        seconds(runtime.time_ns)
                    ));
                }
            }
            RuntimeEvent::Finalizing => {
                let judged = match crate::growth::life_snapshots(profile).len() {
                    0 => "growth is judged on the snapshots before it (none was taken)".to_string(),
                    1 => "growth is judged on the one snapshot before it".to_string(),
                    n => format!("growth is judged on the {n} snapshots before it"),
                };
                notes.push(format!(
                    "the Python interpreter began to shut down at {:.2} s: what it freed from then on is its teardown, so {judged}",
                    seconds(runtime.time_ns)
                ))
            }
            RuntimeEvent::Detected => {}
        }
    }
    notes
}

/// A language runtime the agent found in the process, as the report states it.
#[derive(Clone, Debug, PartialEq)]
pub struct RuntimeFinding {
    /// `cpython`.
    pub name: &'static str,
    /// Its version (`3.11.2`).
    pub version: String,
    /// Its frames are in the stacks (false: this version or build is not supported).
    pub frames_recorded: bool,
    /// Since when (s after start) each object of its allocator is a block of its own.
    pub objects_tracked_from_s: Option<f64>,
    /// When it began to shut down (s after start); growth is judged on the snapshots before.
    pub finalizing_at_s: Option<f64>,
}

/// The runtimes of a profile.
pub fn runtimes(profile: &Profile) -> Vec<RuntimeFinding> {
    let first = |event: RuntimeEvent| {
        profile
            .runtimes
            .iter()
            .filter(|r| r.event == event)
            .map(|r| r.time_ns as f64 / 1e9)
            .reduce(f64::min)
    };
    let found = profile
        .runtimes
        .iter()
        .find(|r| matches!(r.event, RuntimeEvent::Detected | RuntimeEvent::Unsupported));
    found
        .map(|runtime| RuntimeFinding {
            name: "cpython",
            version: format!(
                "{}.{}.{}",
                runtime.version >> 24,
                (runtime.version >> 16) & 0xff,
                (runtime.version >> 8) & 0xff
            ),
            frames_recorded: runtime.event == RuntimeEvent::Detected,
            objects_tracked_from_s: first(RuntimeEvent::AllocatorWrapped),
            finalizing_at_s: first(RuntimeEvent::Finalizing),
        })
        .into_iter()
        .collect()
}
