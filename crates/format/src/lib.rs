//! The leakscope profile file.
//!
//! The agent inside the target process writes it; the CLI reads it. It is the only thing that
//! crosses from one to the other, so its layout is a contract, written down here.
//!
//! # Layout
//!
//! A 16-byte header, then chunks, each complete in itself:
//!
//! ```text
//! header:  magic "LEAKSCOP" (8 bytes) | format version u32 (2) | reserved u32 (0)
//! chunk:   kind u16 | reserved u16 | payload length u32 | CRC-32 u32 | payload
//! ```
//!
//! The CRC-32 covers the kind, reserved and length fields and the payload.
//!
//! All integers are little-endian. Strings are a `u32` byte length followed by UTF-8 bytes
//! (paths may hold any bytes; the reader replaces invalid UTF-8). A reader stops at the first
//! chunk that is cut short, whose checksum does not match or whose payload does not decode,
//! keeps everything before it, and says where (the byte offset) and why in
//! [`Profile::damage`]: a target killed with `SIGKILL` leaves a file that still reads up to its
//! last whole chunk. Unknown chunk kinds are skipped, and bytes after a payload's last known
//! field are ignored, so that later versions can add kinds and fields without breaking older
//! readers. A count is checked against the bytes its chunk holds before anything is allocated
//! for it. The file never holds memory contents: only addresses, sizes and counts.
//!
//! Every chunk kind has one typed struct (its name is the chunk's: [`Process`], [`Stacks`],
//! [`Exit`], ...) with one `encode` (no allocation, `no_std`: the agent calls it) and one
//! `decode`: nothing outside this crate spells out fields.
//!
//! # Chunk kinds and payloads
//!
//! | kind | name | payload |
//! |---|---|---|
//! | 1 | [`ChunkKind::Process`] | pid u32, ppid u32, start time (ns since the Unix epoch) u64, max frames u32, flags u32 ([`process_flags`]), argc u32, argv strings, executable path string, agent version string, kernel start ticks u64 (absent in files of older agents) |
//! | 2 | [`ChunkKind::Module`] | load bias u64, mapped start u64, mapped end u64, path string, build id (u32 length + bytes) |
//! | 3 | [`ChunkKind::Stacks`] | count u32, then per stack: id u32, frame count u16, then per frame (innermost first): kind u8 ([`FrameKind`]) and value u64: for a native frame its return address, for an interpreter frame the id of its interned frame (a `Frames` record; below 2^32), or, for a Python frame, a code location: 2^55 + code id × 2^24 + instruction offset in code units (a `PythonCode` record's code) |
//! | 4 | [`ChunkKind::Exit`] | how u8 ([`ExitHow`]), exit code i32, signal i32, time (ns since start) u64 |
//! | 5 | [`ChunkKind::Leaks`] | count u32, then per record: stack id u32, kind u8 ([`LeakKind`]), bytes u64, blocks u64 |
//! | 6 | [`ChunkKind::Scan`] | duration ns u64, threads stopped u32, threads not stopped u32, root bytes scanned u64, live blocks u64, runtime blocks left out u64, flags u32 ([`scan_flags`]) |
//! | 7 | [`ChunkKind::Warning`] | message string |
//! | 8 | [`ChunkKind::End`] | empty: the agent finished the file |
//! | 9 | [`ChunkKind::RunResult`] | exit code i32 (-1 if none), signal i32 (0 if none), wall time ns u64: appended by `leakscope run` after the process ended, as the parent saw it |
//! | 10 | [`ChunkKind::Sampling`] | sample rate in bytes u64: only allocations chosen by Poisson sampling at this mean distance in bytes have a stack; all others are recorded with stack 0 |
//! | 11 | [`ChunkKind::LeakEstimates`] | count u32, then per record: stack id u32, kind u8, estimated bytes u64, estimated blocks u64 (sampling only: what the sampled blocks of that stack stand for) |
//! | 12 | [`ChunkKind::Snapshot`] | time (ns since start) u64, process RSS bytes u64, machine's available memory bytes u64 (`MemAvailable`, 0 if unknown), live bytes u64, live blocks u64, site count u32, then per site that changed since the previous snapshot: stack id u32, live bytes u64, live blocks u64 (absolute values, so a lost chunk loses no later state). A snapshot with more sites than fit one chunk continues in chunks with the same time, which the reader merges. |
//! | 13 | [`ChunkKind::SiteAges`] | time (ns since start) u64, count u32, then per site with live blocks: stack id u32, allocation time of its oldest live block (ns since start) u64. Continued like a snapshot. |
//! | 14 | [`ChunkKind::LiveScan`] | time (ns since start) u64, pause ns u64 (how long the program's threads were stopped), duration ns u64 (the whole scan), threads stopped u32, threads not stopped u32, outcome u8 ([`LiveScanOutcome`]), trigger u8 ([`LiveScanTrigger`]), live blocks u64, then per kind in [`LeakKind`] order: bytes u64, blocks u64; then count u32 and per record of a lost kind: stack id u32, kind u8, bytes u64, blocks u64. A scan with more records than fit one chunk continues in chunks with the same time, which the reader merges. |
//! | 15 | [`ChunkKind::Exec`] | time (ns since start) u64, function u8 ([`ExecCall`]), program path string, argc u32, argument strings (as many as fit one chunk) |
//! | 16 | [`ChunkKind::ExecFailed`] | time (ns since start) u64, errno i32: the `exec` of the previous `Exec` chunk failed |
//! | 17 | [`ChunkKind::Spawn`] | time (ns since start) u64, how u8 ([`SpawnHow`]), child pid u32 (0 if not known), program or command string (at most 4096 bytes) |
//! | 18 | [`ChunkKind::Frames`] | count u32, then per interned interpreter frame: id u32, kind u8 ([`FrameKind`], never native), function string, file string, line u32 (0: unknown), column u32 (0: unknown), identity u64 (what the runtime identifies the code by: a code object's address, a method id; 0 if none). The writer writes each frame once, before the first stack that uses it. |
//! | 19 | [`ChunkKind::PythonCode`] | count u32, then per code object: id u32, address u64, first line u32 (`co_firstlineno`), name string (`co_qualname`; `co_name` before 3.11), file string (`co_filename`), line table (u32 length + bytes: `co_lnotab` on 3.9, `co_linetable` after). Written before the first stack that uses it; the reader resolves each code location with [`python_lines::position`] and the version of the `Runtime` chunk. |
//! | 20 | [`ChunkKind::Runtime`] | time (ns since start) u64, runtime u8 ([`RuntimeKind`]), event u8 ([`RuntimeEvent`]), version u32 (as `PY_VERSION_HEX`), code address u64 (in the runtime's own code, which tells its module: CPython's evaluation function; 0 if not known) |
//! | 21 | [`ChunkKind::JavaVm`] | found at (ns since the Unix epoch) u64, status u8 ([`JavaStatus`]), pid u32, version string, max heap bytes u64 (0: unknown), collector string, histogram interval ns u64, reason string (why not watched; empty if watched). Written by `leakscope run`, like kinds 22 to 26 ([`java`]) |
//! | 22 | [`ChunkKind::JavaClasses`] | count u32, then per class: id u32, name string (as the class histogram spells it). Written before the first chunk that names the class |
//! | 23 | [`ChunkKind::JavaHistogram`] | taken at (ns since the Unix epoch) u64, duration ns u64 (as leakscope measured it), total instances u64, total bytes u64, count u32, then per class whose counts changed since the previous histogram: class id u32, instances u64, bytes u64 (absolute; zeros for a class no longer listed) |
//! | 24 | [`ChunkKind::JavaPauses`] | count u32, then per pause a histogram caused (from the flight recorder): began at (ns since the Unix epoch) u64, VM operation ns u64, GC pauses ns u64 |
//! | 25 | [`ChunkKind::JavaOldObject`] | one old object sample: allocated at u64, seen alive at u64 (ns since the Unix epoch), class id u32, array length (u8 present, u32), root system, type and description strings, path count u32 and per object from the root on: class id u32, description string, field string, element (u8 present, index u32, length u32), skipped u32; stack truncated u8, frame count u32 and per frame (innermost first): method string, line u32, how string |
//! | 26 | [`ChunkKind::JavaCode`] | count u32, then per blob of the JVM's code cache (from its perf maps, `Compiler.perfmap`; JDK 17 and later): start address u64, size u64, name string (`long java.util.zip.Inflater.init(boolean)`, `Interpreter`). Every blob seen during the run; several chunks append |
//! | 30 | [`ChunkKind::ScriptRecord`] | runtime u8 ([`FrameKind::JavaScript`]), process id u32, record string: one JSON line written by the runtime's preload inside the process (`crates/cli/src/node/preload.js`; its records are documented in `docs/decisions/0014-node.md`), in the order written. Appended by `leakscope run` after the process ended; the analysis parses them. |
//!
//! Stack id 0 means "no stack was recorded" (an allocation made while the unwinder could not
//! run); its blocks still count in every total.
//!
//! # Versions
//!
//! - **3** (written since issue 9): Python frames as code locations (`Stacks` values with
//!   [`tagged::PYTHON_CODE`] set), the `PythonCode` and `Runtime` chunks; since issue 12 also
//!   the Java chunks (kinds 21 to 26), which `leakscope run` appends: new kinds, which an
//!   older reader skips, so the version stays 3.
//! - **2** (written since issue 11): frames carry a kind; the `Frames` chunk.
//! - **1**: the same chunks except `Frames`, and a `Stacks` chunk without kind bytes: per stack
//!   id u32, frame count u16, frames u64 each, every one a return address. The reader reads
//!   version 1 files as stacks of native frames. Other versions are refused
//!   ([`ReadError::UnsupportedVersion`]).
//!
//! In the agent's stack table a frame is one `u64`; an interpreter frame carries its kind in
//! the top byte (see [`tagged`]).
#![cfg_attr(not(feature = "std"), no_std)]

mod chunks;
mod encode;
#[cfg(feature = "std")]
pub mod java;
pub use chunks::*;
pub use encode::{encode_file_header, EncodeError, Encoded};
#[cfg(feature = "std")]
pub use java::{
    ClassCount, JavaClass, JavaClasses, JavaCode, JavaCodeMap, JavaFrame, JavaHistogram,
    JavaOldObject, JavaPause, JavaPauses, JavaReferrer, JavaStatus, JavaVm,
};

#[cfg(feature = "std")]
mod decode;
#[cfg(feature = "std")]
mod model;
#[cfg(feature = "std")]
pub mod python_lines;
#[cfg(feature = "std")]
pub use decode::{read_profile, read_profile_bytes, ReadError};
#[cfg(feature = "std")]
pub use model::*;
#[cfg(feature = "std")]
pub mod tree;

/// The first eight bytes of every profile file.
pub const MAGIC: [u8; 8] = *b"LEAKSCOP";
/// The version of the layout described in the crate docs, which the agent writes.
pub const FORMAT_VERSION: u32 = 3;
/// The oldest version the reader still reads (version 1: every frame a native address).
pub const OLDEST_FORMAT_VERSION: u32 = 1;
/// Size of the file header in bytes.
pub const HEADER_LEN: usize = 16;
/// Size of a chunk header in bytes.
pub const CHUNK_HEADER_LEN: usize = 12;

/// An interned call stack, as numbered by the agent. 0 is "no stack".
pub type StackId = u32;
/// An interned interpreter frame (the `Frames` chunk), as numbered by the agent.
pub type FrameId = u32;

/// What kind of code a frame of a stack is in.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
#[repr(u8)]
pub enum FrameKind {
    /// Machine code: the frame is a return address, symbolized offline from the modules.
    #[default]
    Native = 0,
    /// A Python function (the frame is an interned [`InterpreterFrame`]).
    Python = 1,
    /// A JavaScript function.
    JavaScript = 2,
    /// A Java method.
    Java = 3,
}

impl FrameKind {
    /// Every kind, in value order.
    pub const ALL: [FrameKind; 4] = [
        FrameKind::Native,
        FrameKind::Python,
        FrameKind::JavaScript,
        FrameKind::Java,
    ];

    /// The kind for a raw value.
    pub fn from_u8(value: u8) -> Option<Self> {
        Some(match value {
            0 => Self::Native,
            1 => Self::Python,
            2 => Self::JavaScript,
            3 => Self::Java,
            _ => return None,
        })
    }

    /// The name used in JSON and in the text report (`native`, `python`, ...).
    pub fn name(self) -> &'static str {
        match self {
            Self::Native => "native",
            Self::Python => "python",
            Self::JavaScript => "javascript",
            Self::Java => "java",
        }
    }
}

/// One frame of an interned stack, as the file holds it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum StackFrame {
    /// A return address (innermost frame: the caller of the allocator).
    Native(u64),
    /// An interpreter frame: its kind and the id of its [`InterpreterFrame`] in the `Frames`
    /// chunks.
    Interpreter(FrameKind, FrameId),
    /// A Python frame as the agent records it: the code object (the id of its `PythonCode`
    /// record) and the instruction being run, in code units (2-byte `_Py_CODEUNIT`s) from the
    /// start of the code's bytecode. The reader turns it into an [`StackFrame::Interpreter`]
    /// frame with the line the code's line table gives (`python_lines`): no profile that
    /// [`read_profile`] returns holds one.
    PythonCode {
        /// The code object's id.
        code: u32,
        /// The instruction's offset in code units (below 2^24).
        offset: u32,
    },
}

impl StackFrame {
    /// The frame's kind.
    pub fn kind(self) -> FrameKind {
        match self {
            Self::Native(_) => FrameKind::Native,
            Self::Interpreter(kind, _) => kind,
            Self::PythonCode { .. } => FrameKind::Python,
        }
    }

    /// The return address of a native frame.
    pub fn address(self) -> Option<u64> {
        match self {
            Self::Native(address) => Some(address),
            Self::Interpreter(..) | Self::PythonCode { .. } => None,
        }
    }

    /// The frame for one word of the agent's stack table (see [`tagged`]).
    pub fn from_tagged(word: u64) -> Self {
        match FrameKind::from_u8((word >> tagged::KIND_SHIFT) as u8) {
            Some(FrameKind::Native) | None => Self::Native(word),
            Some(FrameKind::Python) if word & tagged::PYTHON_CODE != 0 => Self::PythonCode {
                code: ((word >> tagged::CODE_SHIFT) & tagged::CODE_MASK) as u32,
                offset: (word & tagged::OFFSET_MASK) as u32,
            },
            Some(kind) => Self::Interpreter(kind, word as u32),
        }
    }

    /// The agent's stack-table word for this frame (see [`tagged`]).
    pub fn to_tagged(self) -> u64 {
        match self {
            Self::Native(address) => address,
            Self::Interpreter(kind, id) => ((kind as u64) << tagged::KIND_SHIFT) | id as u64,
            Self::PythonCode { .. } => {
                ((FrameKind::Python as u64) << tagged::KIND_SHIFT) | self.value()
            }
        }
    }

    /// The value the `Stacks` chunk holds after the kind byte: a native frame's address, an
    /// interpreter frame's id, or a Python code location
    /// ([`tagged::PYTHON_CODE`] | code id << [`tagged::CODE_SHIFT`] | offset).
    pub fn value(self) -> u64 {
        match self {
            Self::Native(address) => address,
            Self::Interpreter(_, id) => id as u64,
            Self::PythonCode { code, offset } => {
                tagged::PYTHON_CODE
                    | ((code as u64 & tagged::CODE_MASK) << tagged::CODE_SHIFT)
                    | (offset as u64).min(tagged::OFFSET_MASK)
            }
        }
    }
}

/// A language runtime the agent recognises in the process.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
#[repr(u8)]
pub enum RuntimeKind {
    /// CPython (the `python3` interpreter, in the executable or in `libpython3.X.so`).
    CPython = 1,
}

impl RuntimeKind {
    /// The kind for a raw value.
    pub fn from_u8(value: u8) -> Option<Self> {
        (value == 1).then_some(Self::CPython)
    }
}

/// What a `Runtime` chunk reports.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
#[repr(u8)]
pub enum RuntimeEvent {
    /// The runtime was found and its frames are recorded in stacks.
    Detected = 1,
    /// The runtime was found but this version or build is not supported: its frames are not
    /// recorded (stacks are native only).
    Unsupported = 2,
    /// The runtime's own allocator (CPython's object and memory domains, PEP 445) is wrapped:
    /// from now on each object the runtime allocates is a block of its own.
    AllocatorWrapped = 3,
    /// The runtime began to shut down (CPython's finalization): what it frees from now on is
    /// its teardown, not the program's doing.
    Finalizing = 4,
}

impl RuntimeEvent {
    /// The event for a raw value.
    pub fn from_u8(value: u8) -> Option<Self> {
        Some(match value {
            1 => Self::Detected,
            2 => Self::Unsupported,
            3 => Self::AllocatorWrapped,
            4 => Self::Finalizing,
            _ => return None,
        })
    }
}

/// How the agent's stack table, which keeps one `u64` per frame, tells an interpreter frame
/// from a return address: the frame's [`FrameKind`] in the top byte (bits 56 to 63) and the
/// [`FrameId`] in the low 32 bits. A native frame is the return address itself: no user-space
/// address on x86_64 (below 2^47) has any of the top byte's bits set, so a word whose top byte
/// is 0 is native, and a top byte that is no interpreter kind is read as native too (it
/// cannot occur).
pub mod tagged {
    /// Where the kind starts.
    pub const KIND_SHIFT: u32 = 56;
    /// In a Python frame's word (and its `Stacks` value): set for a code location (code id
    /// and instruction offset) rather than an interned frame's id.
    pub const PYTHON_CODE: u64 = 1 << 55;
    /// Where a code location's code id starts (31 bits, up to [`PYTHON_CODE`]'s bit).
    pub const CODE_SHIFT: u32 = 24;
    /// A code id's bits (after shifting).
    pub const CODE_MASK: u64 = (1 << 31) - 1;
    /// A code location's instruction offset (the low 24 bits; larger offsets are clamped).
    pub const OFFSET_MASK: u64 = (1 << 24) - 1;
}

/// The kinds of chunk. See the crate docs for each payload.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(u16)]
pub enum ChunkKind {
    /// Who the process is.
    Process = 1,
    /// One loaded module (executable or shared library).
    Module = 2,
    /// A batch of interned stacks.
    Stacks = 3,
    /// How the process ended.
    Exit = 4,
    /// Leak records from the reachability scan at exit.
    Leaks = 5,
    /// Facts about the reachability scan itself.
    Scan = 6,
    /// Something the agent wants the user to know.
    Warning = 7,
    /// The agent finished the file.
    End = 8,
    /// How the process ended as `leakscope run` saw it (written by the CLI, not the agent).
    RunResult = 9,
    /// Sampling mode and its rate.
    Sampling = 10,
    /// Per-site estimates in sampling mode.
    LeakEstimates = 11,
    /// Live memory per site at a moment.
    Snapshot = 12,
    /// The age of each site's oldest live block.
    SiteAges = 13,
    /// A reachability scan made while the program ran.
    LiveScan = 14,
    /// The process is about to replace its image with `exec` (the image's end, unless an
    /// `ExecFailed` follows): time (u64 ns), the exec function (u8, [`ExecCall`]), the
    /// program's path (bytes), argc (u32) and each argument (bytes).
    Exec = 15,
    /// The `exec` announced by the previous `Exec` chunk failed: time (u64 ns), errno (i32).
    ExecFailed = 16,
    /// The process started another one: time (u64 ns), how (u8, [`SpawnHow`]), its pid (u32,
    /// 0 if not known), the program or command (bytes).
    Spawn = 17,
    /// A batch of interned interpreter frames (format version 2).
    Frames = 18,
    /// A batch of Python code objects that stacks' [`StackFrame::PythonCode`] frames name
    /// (format version 3).
    PythonCode = 19,
    /// Something a language runtime in the process did (format version 3).
    Runtime = 20,
    /// The JVM `leakscope run` found in the process, and how watching it went.
    JavaVm = 21,
    /// Interned Java class names.
    JavaClasses = 22,
    /// A class histogram of the JVM.
    JavaHistogram = 23,
    /// The pauses the class histograms caused, as the JVM's flight recorder measured them.
    JavaPauses = 24,
    /// An old object sample of the JVM's flight recorder, with its path to a GC root.
    JavaOldObject = 25,
    /// Blobs of the JVM's code cache (JIT-compiled methods, stubs), from its perf maps.
    JavaCode = 26,
    /// One record of a script runtime's own instruments (Node.js), appended by `leakscope
    /// run` after the process ended (format version 3; older readers skip it).
    ScriptRecord = 30,
}

impl ChunkKind {
    /// The kind for a raw value, if it is one this version knows.
    pub fn from_u16(value: u16) -> Option<Self> {
        Some(match value {
            1 => Self::Process,
            2 => Self::Module,
            3 => Self::Stacks,
            4 => Self::Exit,
            5 => Self::Leaks,
            6 => Self::Scan,
            7 => Self::Warning,
            8 => Self::End,
            9 => Self::RunResult,
            10 => Self::Sampling,
            11 => Self::LeakEstimates,
            12 => Self::Snapshot,
            13 => Self::SiteAges,
            14 => Self::LiveScan,
            15 => Self::Exec,
            16 => Self::ExecFailed,
            17 => Self::Spawn,
            18 => Self::Frames,
            19 => Self::PythonCode,
            20 => Self::Runtime,
            21 => Self::JavaVm,
            22 => Self::JavaClasses,
            23 => Self::JavaHistogram,
            24 => Self::JavaPauses,
            25 => Self::JavaOldObject,
            26 => Self::JavaCode,
            30 => Self::ScriptRecord,
            _ => return None,
        })
    }
}

/// memcheck's four kinds of unfreed block.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
#[repr(u8)]
pub enum LeakKind {
    /// No pointer to the block was found anywhere.
    DefinitelyLost = 0,
    /// Only reachable from definitely lost blocks.
    IndirectlyLost = 1,
    /// Reachable, but only through pointers into its interior.
    PossiblyLost = 2,
    /// A pointer to its start is still held by the program.
    StillReachable = 3,
}

impl LeakKind {
    /// All kinds, in the order memcheck reports them.
    pub const ALL: [LeakKind; 4] = [
        LeakKind::DefinitelyLost,
        LeakKind::IndirectlyLost,
        LeakKind::PossiblyLost,
        LeakKind::StillReachable,
    ];

    /// The kind for a raw value.
    pub fn from_u8(value: u8) -> Option<Self> {
        Some(match value {
            0 => Self::DefinitelyLost,
            1 => Self::IndirectlyLost,
            2 => Self::PossiblyLost,
            3 => Self::StillReachable,
            _ => return None,
        })
    }

    /// The name used in JSON (`definitely_lost`, ...).
    pub fn json_name(self) -> &'static str {
        match self {
            Self::DefinitelyLost => "definitely_lost",
            Self::IndirectlyLost => "indirectly_lost",
            Self::PossiblyLost => "possibly_lost",
            Self::StillReachable => "still_reachable",
        }
    }

    /// The words memcheck uses ("definitely lost", ...).
    pub fn words(self) -> &'static str {
        match self {
            Self::DefinitelyLost => "definitely lost",
            Self::IndirectlyLost => "indirectly lost",
            Self::PossiblyLost => "possibly lost",
            Self::StillReachable => "still reachable",
        }
    }
}

/// How the process ended, as the agent saw it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(u8)]
pub enum ExitHow {
    /// `exit()` or a return from `main`: atexit handlers and destructors ran.
    Exit = 0,
    /// `_exit()` or `_Exit()`: no handlers ran.
    UnderscoreExit = 1,
    /// A fatal signal (including `abort()`'s `SIGABRT`).
    Signal = 2,
    /// `quick_exit()`: its `at_quick_exit` handlers ran, no atexit handler or destructor.
    QuickExit = 3,
}

impl ExitHow {
    /// The value for a raw byte.
    pub fn from_u8(value: u8) -> Option<Self> {
        Some(match value {
            0 => Self::Exit,
            1 => Self::UnderscoreExit,
            2 => Self::Signal,
            3 => Self::QuickExit,
            _ => return None,
        })
    }
}

/// Which function replaced the process's image (the `Exec` chunk).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(u8)]
pub enum ExecCall {
    Execve = 0,
    Execv = 1,
    Execvp = 2,
    Execvpe = 3,
    Execl = 4,
    Execlp = 5,
    Execle = 6,
    Fexecve = 7,
    Execveat = 8,
}

impl ExecCall {
    /// The value for a raw byte.
    pub fn from_u8(value: u8) -> Option<Self> {
        Some(match value {
            0 => Self::Execve,
            1 => Self::Execv,
            2 => Self::Execvp,
            3 => Self::Execvpe,
            4 => Self::Execl,
            5 => Self::Execlp,
            6 => Self::Execle,
            7 => Self::Fexecve,
            8 => Self::Execveat,
            _ => return None,
        })
    }

    /// The function's name.
    pub fn name(self) -> &'static str {
        match self {
            Self::Execve => "execve",
            Self::Execv => "execv",
            Self::Execvp => "execvp",
            Self::Execvpe => "execvpe",
            Self::Execl => "execl",
            Self::Execlp => "execlp",
            Self::Execle => "execle",
            Self::Fexecve => "fexecve",
            Self::Execveat => "execveat",
        }
    }
}

/// How the process started another (the `Spawn` chunk).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(u8)]
pub enum SpawnHow {
    /// `fork()`: the child runs this image (and has a profile of its own).
    Fork = 0,
    /// `posix_spawn` or `posix_spawnp`.
    PosixSpawn = 1,
    /// `system()`: a shell, `sh -c COMMAND`.
    System = 2,
    /// `popen()`: a shell, `sh -c COMMAND`.
    Popen = 3,
    /// `vfork()` then `exec` (recorded by the child, in its parent's memory): the program.
    VforkExec = 4,
}

impl SpawnHow {
    /// The value for a raw byte.
    pub fn from_u8(value: u8) -> Option<Self> {
        Some(match value {
            0 => Self::Fork,
            1 => Self::PosixSpawn,
            2 => Self::System,
            3 => Self::Popen,
            4 => Self::VforkExec,
            _ => return None,
        })
    }

    /// The function's name.
    pub fn name(self) -> &'static str {
        match self {
            Self::Fork => "fork",
            Self::PosixSpawn => "posix_spawn",
            Self::System => "system",
            Self::Popen => "popen",
            Self::VforkExec => "vfork and exec",
        }
    }
}

/// Bits of the `flags` field of the `Process` chunk.
pub mod process_flags {
    /// This image began as a `fork` of its parent's image (it inherited the parent's blocks).
    pub const FORKED: u32 = 1;
    /// The run follows children (`--follow-children`): programs this one executes are
    /// tracked too, each with its own profile.
    pub const FOLLOWING_CHILDREN: u32 = 2;
}

/// How a live scan (one made while the program runs) ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(u8)]
pub enum LiveScanOutcome {
    /// The scan ran over a stopped world; its figures are complete.
    Done = 0,
    /// Some thread did not stop in time: the scan was abandoned (the live table may have been
    /// changing), and the program resumed.
    ThreadsMissed = 1,
    /// The agent could not map memory for the scan.
    NoMemory = 2,
}

impl LiveScanOutcome {
    pub fn from_u8(value: u8) -> Option<Self> {
        Some(match value {
            0 => Self::Done,
            1 => Self::ThreadsMissed,
            2 => Self::NoMemory,
            _ => return None,
        })
    }
}

/// Why a live scan ran.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(u8)]
pub enum LiveScanTrigger {
    /// `--scan-every`.
    Schedule = 0,
    /// Asked for while the program ran (`SIGUSR1` to `leakscope run`).
    OnDemand = 1,
}

impl LiveScanTrigger {
    pub fn from_u8(value: u8) -> Option<Self> {
        Some(match value {
            0 => Self::Schedule,
            1 => Self::OnDemand,
            _ => return None,
        })
    }
}

/// Bits of the `flags` field of a [`ChunkKind::Scan`] chunk.
pub mod scan_flags {
    /// glibc's `__libc_freeres` ran before the scan (so its runtime blocks were freed).
    pub const LIBC_FREERES: u32 = 1;
    /// libstdc++'s `__gnu_cxx::__freeres` ran before the scan.
    pub const CXX_FREERES: u32 = 2;
    /// Some threads could not be stopped; their registers were not scanned.
    pub const THREADS_MISSED: u32 = 4;
    /// The scan did not run: the agent could not map the memory it needs. The chunk's counts
    /// are then zero and say nothing about the program's blocks.
    pub const NOT_RUN_NO_MEMORY: u32 = 8;
    /// Part of the memory the scan had to read could not be read (a page of a heap block or
    /// of a root that was unreadable): what only that memory points to may be reported as
    /// lost.
    pub const UNREADABLE_MEMORY: u32 = 16;
}

/// Compute the checksum stored in a chunk header: CRC-32 over the first eight header bytes
/// (kind, reserved, length) and the payload, so that a damaged kind or length is caught too.
pub fn checksum(header_start: &[u8], payload: &[u8]) -> u32 {
    let mut hasher = crc32fast::Hasher::new();
    hasher.update(header_start);
    hasher.update(payload);
    hasher.finalize()
}

/// The environment variables through which `leakscope run` configures the agent. They are
/// removed from the target's environment by the agent at start, so that programs the target
/// executes run untracked and see the environment the user gave.
pub mod settings {
    /// Absolute path of the profile file to write. Without it the agent stays inactive.
    pub const PROFILE: &str = "LEAKSCOPE_PROFILE";
    /// Most frames kept per stack (default [`DEFAULT_MAX_FRAMES`]).
    pub const MAX_FRAMES: &str = "LEAKSCOPE_MAX_FRAMES";
    /// Sampling mode: the mean distance in bytes between sampled allocations (absent or 0:
    /// every allocation gets its stack).
    pub const SAMPLE_RATE: &str = "LEAKSCOPE_SAMPLE_RATE";
    /// The first interval between snapshots, in milliseconds (default
    /// [`DEFAULT_INTERVAL_MS`]); it doubles every [`SNAPSHOTS_PER_INTERVAL`] snapshots, so that
    /// a short run gets enough points and a long one a bounded number.
    pub const INTERVAL_MS: &str = "LEAKSCOPE_INTERVAL_MS";
    /// Live reachability scans every this many milliseconds (absent or 0: none on a schedule).
    pub const SCAN_EVERY_MS: &str = "LEAKSCOPE_SCAN_EVERY_MS";
    /// `1`: follow children (`--follow-children`): the agent's variables stay in the
    /// environment, so that every program the process executes loads the agent too, and each
    /// process image claims a profile of its own beside the first one.
    pub const FOLLOW_CHILDREN: &str = "LEAKSCOPE_FOLLOW_CHILDREN";
    /// `1`: keep an interpreter's own native frames in stacks (`--native`); by default the
    /// frames of CPython's evaluation loop are replaced by the Python frames they run and its
    /// other frames left out.
    pub const NATIVE_FRAMES: &str = "LEAKSCOPE_NATIVE_FRAMES";
    /// The value `leakscope run` queues with the agent's stop signal (`sigqueue`) to ask for a
    /// live scan now ("LSCS").
    pub const SCAN_REQUEST_VALUE: i32 = 0x4c53_4353;
    /// The default of [`INTERVAL_MS`].
    pub const DEFAULT_INTERVAL_MS: u64 = 100;
    /// Snapshots taken at one interval before it doubles.
    pub const SNAPSHOTS_PER_INTERVAL: u64 = 100;
    /// The complete `LD_PRELOAD=...` entry to put back in the environment in place of the one
    /// that loaded the agent (absent: remove `LD_PRELOAD`).
    pub const RESTORE_PRELOAD: &str = "LEAKSCOPE_RESTORE_PRELOAD";
    /// The default of [`MAX_FRAMES`].
    pub const DEFAULT_MAX_FRAMES: u32 = 64;
    /// The prefix every agent setting shares.
    pub const PREFIX: &str = "LEAKSCOPE_";
}
