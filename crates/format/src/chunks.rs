//! One typed struct per chunk kind, each with one `encode` (into a caller's buffer: `no_std`,
//! no allocation, callable from inside the agent's `malloc`) and one `decode` (std).
//!
//! A struct whose chunk holds text or a list is generic over how it holds them, so that the
//! agent encodes borrowed bytes and the reader decodes owned `String`s and `Vec`s into the same
//! struct: `Module<&[u8]>` is what the agent writes, `Module` (`Module<String>`) what the
//! reader gives.
//!
//! Chunks that carry a batch of records (Stacks, Frames, Leaks, LeakEstimates, Snapshot,
//! SiteAges, LiveScan) encode from a [`Peekable`] iterator of records: they take as many as fit
//! and say how many they took ([`Encoded::taken`]); the writer continues in the next chunk,
//! which the reader merges (Snapshot and LiveScan chunks of one moment share their time).

use core::cell::RefCell;
use core::iter::Peekable;

use crate::encode::ChunkEncoder;
use crate::{
    ChunkKind, EncodeError, Encoded, ExecCall, ExitHow, FrameId, FrameKind, LeakKind,
    LiveScanOutcome, LiveScanTrigger, RuntimeEvent, RuntimeKind, SpawnHow, StackFrame, StackId,
};

#[cfg(feature = "std")]
pub use decoding::DecodeError;

// What the decoded structs hold (the default type parameters). Without `std` (in the agent)
// nothing is decoded, and the defaults are borrowed stand-ins that are never used.
#[cfg(feature = "std")]
type Text = String;
#[cfg(feature = "std")]
type List<T> = Vec<T>;
#[cfg(not(feature = "std"))]
type Text = &'static [u8];
#[cfg(not(feature = "std"))]
type List<T> = &'static [T];

/// A list of byte strings to encode (an argument vector).
pub trait Strings {
    /// Call `f` with each string, in order, until it returns `false`.
    fn visit(&self, f: &mut dyn FnMut(&[u8]) -> bool);
}

impl<T: AsRef<[u8]>> Strings for [T] {
    fn visit(&self, f: &mut dyn FnMut(&[u8]) -> bool) {
        for item in self {
            if !f(item.as_ref()) {
                return;
            }
        }
    }
}

impl<T: AsRef<[u8]>, const N: usize> Strings for [T; N] {
    fn visit(&self, f: &mut dyn FnMut(&[u8]) -> bool) {
        self[..].visit(f)
    }
}

impl<T: AsRef<[u8]>> Strings for &[T] {
    fn visit(&self, f: &mut dyn FnMut(&[u8]) -> bool) {
        (**self).visit(f)
    }
}

#[cfg(feature = "std")]
impl<T: AsRef<[u8]>> Strings for Vec<T> {
    fn visit(&self, f: &mut dyn FnMut(&[u8]) -> bool) {
        self[..].visit(f)
    }
}

/// Strings separated (and optionally ended) by NUL bytes, as `/proc/self/cmdline` holds the
/// command line. An empty buffer is no string at all.
#[derive(Clone, Copy, Debug)]
pub struct NulSeparated<'a>(pub &'a [u8]);

impl Strings for NulSeparated<'_> {
    fn visit(&self, f: &mut dyn FnMut(&[u8]) -> bool) {
        if self.0.is_empty() {
            return;
        }
        let strings = self.0.strip_suffix(&[0]).unwrap_or(self.0);
        for string in strings.split(|&b| b == 0) {
            if !f(string) {
                return;
            }
        }
    }
}

/// Strings from an iterator that can be walked once (a C `argv` array): the chunk that
/// encodes it must not be encoded twice.
pub struct OnePass<'i, 'a>(pub RefCell<&'i mut dyn Iterator<Item = &'a [u8]>>);

impl Strings for OnePass<'_, '_> {
    fn visit(&self, f: &mut dyn FnMut(&[u8]) -> bool) {
        let Ok(mut strings) = self.0.try_borrow_mut() else {
            return;
        };
        for string in &mut **strings {
            if !f(string) {
                return;
            }
        }
    }
}

/// The frames of one stack to encode.
pub trait FrameList {
    /// How many.
    fn count(&self) -> usize;
    /// The `index`th, innermost first.
    fn frame(&self, index: usize) -> StackFrame;
}

impl FrameList for [StackFrame] {
    fn count(&self) -> usize {
        self.len()
    }
    fn frame(&self, index: usize) -> StackFrame {
        self[index]
    }
}

#[cfg(feature = "std")]
impl FrameList for Vec<StackFrame> {
    fn count(&self) -> usize {
        self.len()
    }
    fn frame(&self, index: usize) -> StackFrame {
        self[index]
    }
}

impl FrameList for &[StackFrame] {
    fn count(&self) -> usize {
        self.len()
    }
    fn frame(&self, index: usize) -> StackFrame {
        self[index]
    }
}

/// The agent's stack-table words (see [`crate::tagged`]): one `u64` per frame.
#[derive(Clone, Copy, Debug)]
pub struct TaggedFrames<'a>(pub &'a [u64]);

impl FrameList for TaggedFrames<'_> {
    fn count(&self) -> usize {
        self.0.len()
    }
    fn frame(&self, index: usize) -> StackFrame {
        StackFrame::from_tagged(self.0[index])
    }
}

/// Fill one chunk of `kind` into `buf`; its size.
pub(crate) fn encode_chunk(
    buf: &mut [u8],
    kind: ChunkKind,
    fill: impl FnOnce(&mut ChunkEncoder<'_>),
) -> Result<usize, EncodeError> {
    let mut encoder = ChunkEncoder::new(buf, kind);
    fill(&mut encoder);
    encoder.finish()
}

/// Fill a batch chunk: `head` writes its fixed fields, then a count and as many records as
/// fit (`size` says how many bytes a record needs, `put` writes it).
fn encode_batch<R, I: Iterator<Item = R>>(
    buf: &mut [u8],
    kind: ChunkKind,
    head: impl FnOnce(&mut ChunkEncoder<'_>),
    records: &mut Peekable<I>,
    size: impl Fn(&R) -> usize,
    put: impl Fn(&mut ChunkEncoder<'_>, &R),
) -> Result<Encoded, EncodeError> {
    let mut encoder = ChunkEncoder::new(buf, kind);
    head(&mut encoder);
    let count_at = encoder.payload_len();
    encoder.put_u32(0);
    let mut taken = 0usize;
    while let Some(record) = records.peek() {
        // (A head that did not fit leaves the chunk unusable: take nothing, so that the
        // caller can retry with every record still there.)
        let full = encoder.overflowed() || encoder.remaining() < size(record);
        if full || taken == u32::MAX as usize {
            break;
        }
        put(&mut encoder, record);
        records.next();
        taken += 1;
    }
    encoder.patch_u32(count_at, taken as u32);
    let len = encoder.finish()?;
    Ok(Encoded { len, taken })
}

/// Bytes of a length-prefixed string.
fn text_len(bytes: &[u8]) -> usize {
    4 + bytes.len()
}

/// The `Process` chunk: who the process is.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Process<T = Text, L = List<Text>> {
    /// Process id.
    pub pid: u32,
    /// Parent process id.
    pub ppid: u32,
    /// When the agent started, in nanoseconds since the Unix epoch.
    pub start_unix_ns: u64,
    /// The `--max-frames` setting the agent ran with.
    pub max_frames: u32,
    /// [`crate::process_flags`] bits.
    pub flags: u32,
    /// The command line.
    pub argv: L,
    /// The executable's path.
    pub exe: T,
    /// The agent's version.
    pub agent_version: T,
    /// When the process started, in clock ticks since boot (`/proc/self/stat`'s `starttime`):
    /// the same in every image of one process (`exec` keeps it), different for a later
    /// process that reuses the pid. (Absent in profiles of older agents.)
    pub kernel_start_ticks: Option<u64>,
}

impl<T: AsRef<[u8]>, L: Strings> Process<T, L> {
    /// Encode into `buf`; the chunk's size. Every argument must fit.
    pub fn encode(&self, buf: &mut [u8]) -> Result<usize, EncodeError> {
        encode_chunk(buf, ChunkKind::Process, |c| {
            c.put_u32(self.pid);
            c.put_u32(self.ppid);
            c.put_u64(self.start_unix_ns);
            c.put_u32(self.max_frames);
            c.put_u32(self.flags);
            let count_at = c.payload_len();
            c.put_u32(0);
            let mut argc = 0u32;
            self.argv.visit(&mut |arg| {
                c.put_bytes(arg);
                argc += 1;
                true
            });
            c.patch_u32(count_at, argc);
            c.put_bytes(self.exe.as_ref());
            c.put_bytes(self.agent_version.as_ref());
            if let Some(ticks) = self.kernel_start_ticks {
                c.put_u64(ticks);
            }
        })
    }
}

#[cfg(feature = "std")]
impl Process<String, Vec<String>> {
    /// Did this image begin as a `fork` of its parent's?
    pub fn forked(&self) -> bool {
        self.flags & crate::process_flags::FORKED != 0
    }
}

/// The `Module` chunk: one executable or shared library mapped into the process.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Module<T = Text, B = List<u8>> {
    /// Difference between the addresses in the process and those in the file (`dlpi_addr`).
    pub load_bias: u64,
    /// First mapped address.
    pub start: u64,
    /// One past the last mapped address.
    pub end: u64,
    /// Path of the file.
    pub path: T,
    /// GNU build id, if the module has one (empty if not).
    pub build_id: B,
}

impl<T: AsRef<[u8]>, B: AsRef<[u8]>> Module<T, B> {
    /// Encode into `buf`; the chunk's size.
    pub fn encode(&self, buf: &mut [u8]) -> Result<usize, EncodeError> {
        encode_chunk(buf, ChunkKind::Module, |c| {
            c.put_u64(self.load_bias);
            c.put_u64(self.start);
            c.put_u64(self.end);
            c.put_bytes(self.path.as_ref());
            c.put_bytes(self.build_id.as_ref());
        })
    }

    /// Does this module's mapping contain `address`?
    pub fn contains(&self, address: u64) -> bool {
        self.start <= address && address < self.end
    }
}

/// One record of the `Stacks` chunk: an interned call stack.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Stack<F = List<StackFrame>> {
    /// Its id (never 0).
    pub id: StackId,
    /// Its frames, innermost first.
    pub frames: F,
}

/// The `Stacks` chunk: a batch of interned stacks.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Stacks(pub List<Stack>);

impl Stacks {
    /// Encode as many of `stacks` as fit into `buf` (a stack of more than `u16::MAX` frames
    /// keeps its innermost `u16::MAX`).
    pub fn encode<F: FrameList, I: Iterator<Item = Stack<F>>>(
        buf: &mut [u8],
        stacks: &mut Peekable<I>,
    ) -> Result<Encoded, EncodeError> {
        let frames_of = |stack: &Stack<F>| stack.frames.count().min(u16::MAX as usize);
        encode_batch(
            buf,
            ChunkKind::Stacks,
            |_| {},
            stacks,
            |stack| 6 + 9 * frames_of(stack),
            |c, stack| {
                let count = frames_of(stack);
                c.put_u32(stack.id);
                c.put_u16(count as u16);
                for index in 0..count {
                    match stack.frames.frame(index) {
                        StackFrame::Native(address) => {
                            c.put_u8(FrameKind::Native as u8);
                            c.put_u64(address);
                        }
                        frame @ (StackFrame::Interpreter(..) | StackFrame::PythonCode { .. }) => {
                            c.put_u8(frame.kind() as u8);
                            c.put_u64(frame.value());
                        }
                    }
                }
            },
        )
    }
}

/// One record of the `Frames` chunk: an interned interpreter frame.
#[derive(Clone, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct InterpreterFrame<T = Text> {
    /// Its id, as stacks refer to it.
    pub id: FrameId,
    /// Its kind (never [`FrameKind::Native`]).
    pub kind: FrameKind,
    /// The function (or method) name.
    pub function: T,
    /// The source file.
    pub file: T,
    /// The line (0: unknown).
    pub line: u32,
    /// The column (0: unknown).
    pub column: u32,
    /// What the runtime identifies the code by (a code object's address, a method id; 0 if
    /// none).
    pub identity: u64,
}

/// The `Frames` chunk: a batch of interned interpreter frames.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Frames(pub List<InterpreterFrame>);

impl Frames {
    /// Encode as many of `frames` as fit into `buf`.
    pub fn encode<T: AsRef<[u8]>, I: Iterator<Item = InterpreterFrame<T>>>(
        buf: &mut [u8],
        frames: &mut Peekable<I>,
    ) -> Result<Encoded, EncodeError> {
        encode_batch(
            buf,
            ChunkKind::Frames,
            |_| {},
            frames,
            |f| 4 + 1 + text_len(f.function.as_ref()) + text_len(f.file.as_ref()) + 16,
            |c, f| {
                c.put_u32(f.id);
                c.put_u8(f.kind as u8);
                c.put_bytes(f.function.as_ref());
                c.put_bytes(f.file.as_ref());
                c.put_u32(f.line);
                c.put_u32(f.column);
                c.put_u64(f.identity);
            },
        )
    }
}

/// One record of the `PythonCode` chunk: a Python code object, as much of it as the line of
/// a frame running it needs.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct PythonCode<T = Text, B = List<u8>> {
    /// Its id, as [`StackFrame::PythonCode`] frames refer to it.
    pub id: u32,
    /// The code object's address (two records may share one: a code object freed and
    /// another made at its address).
    pub address: u64,
    /// `co_firstlineno`.
    pub first_line: u32,
    /// `co_qualname` (`co_name` before Python 3.11, whose code objects have no qualified
    /// name).
    pub name: T,
    /// `co_filename`.
    pub file: T,
    /// The raw line table: `co_lnotab` on 3.9, `co_linetable` after.
    pub line_table: B,
}

/// The `PythonCode` chunk: a batch of code objects.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct PythonCodes(pub List<PythonCode>);

impl PythonCodes {
    /// Encode as many of `codes` as fit into `buf`.
    pub fn encode<T: AsRef<[u8]>, B: AsRef<[u8]>, I: Iterator<Item = PythonCode<T, B>>>(
        buf: &mut [u8],
        codes: &mut Peekable<I>,
    ) -> Result<Encoded, EncodeError> {
        encode_batch(
            buf,
            ChunkKind::PythonCode,
            |_| {},
            codes,
            |code| {
                4 + 8
                    + 4
                    + text_len(code.name.as_ref())
                    + text_len(code.file.as_ref())
                    + text_len(code.line_table.as_ref())
            },
            |c, code| {
                c.put_u32(code.id);
                c.put_u64(code.address);
                c.put_u32(code.first_line);
                c.put_bytes(code.name.as_ref());
                c.put_bytes(code.file.as_ref());
                c.put_bytes(code.line_table.as_ref());
            },
        )
    }
}

/// The `Runtime` chunk: something a language runtime in the process did.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Runtime {
    /// Nanoseconds since the agent started.
    pub time_ns: u64,
    /// Which runtime.
    pub runtime: RuntimeKind,
    /// What happened.
    pub event: RuntimeEvent,
    /// The runtime's version (CPython: `PY_VERSION_HEX`, e.g. `0x030b07f0` for 3.11.7).
    pub version: u32,
    /// An address in the runtime's own code (CPython: its evaluation function), which tells
    /// the module it is in; 0 if not known.
    pub code_address: u64,
}

impl Runtime {
    /// Encode into `buf`; the chunk's size.
    pub fn encode(&self, buf: &mut [u8]) -> Result<usize, EncodeError> {
        encode_chunk(buf, ChunkKind::Runtime, |c| {
            c.put_u64(self.time_ns);
            c.put_u8(self.runtime as u8);
            c.put_u8(self.event as u8);
            c.put_u32(self.version);
            c.put_u64(self.code_address);
        })
    }

    /// The version as (major, minor).
    pub fn major_minor(&self) -> (u8, u8) {
        ((self.version >> 24) as u8, (self.version >> 16) as u8)
    }
}

/// The `Exit` chunk: how the process ended, as the agent saw it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Exit {
    /// How the process ended.
    pub how: ExitHow,
    /// The exit code (for `exit` and `_exit`).
    pub code: i32,
    /// The signal number (for [`ExitHow::Signal`]).
    pub signal: i32,
    /// Nanoseconds since the agent started.
    pub time_ns: u64,
}

impl Exit {
    /// Encode into `buf`; the chunk's size.
    pub fn encode(&self, buf: &mut [u8]) -> Result<usize, EncodeError> {
        encode_chunk(buf, ChunkKind::Exit, |c| {
            c.put_u8(self.how as u8);
            c.put_i32(self.code);
            c.put_i32(self.signal);
            c.put_u64(self.time_ns);
        })
    }
}

/// One record of the `Leaks`, `LeakEstimates` and `LiveScan` chunks: the blocks of one kind
/// allocated at one stack.
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

/// Bytes of one [`LeakRecord`] in a chunk.
const LEAK_RECORD_LEN: usize = 4 + 1 + 8 + 8;

fn put_leak_record(c: &mut ChunkEncoder<'_>, record: &LeakRecord) {
    c.put_u32(record.stack);
    c.put_u8(record.kind as u8);
    c.put_u64(record.bytes);
    c.put_u64(record.blocks);
}

/// The `Leaks` chunk: leak records of the exit scan (exact bytes and blocks).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Leaks(pub List<LeakRecord>);

impl Leaks {
    /// Encode as many of `records` as fit into `buf`.
    pub fn encode<I: Iterator<Item = LeakRecord>>(
        buf: &mut [u8],
        records: &mut Peekable<I>,
    ) -> Result<Encoded, EncodeError> {
        let size = |_: &LeakRecord| LEAK_RECORD_LEN;
        encode_batch(
            buf,
            ChunkKind::Leaks,
            |_| {},
            records,
            size,
            put_leak_record,
        )
    }
}

/// The `LeakEstimates` chunk (sampling only): per (stack, kind), the bytes and blocks that the
/// sampled blocks stand for.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct LeakEstimates(pub List<LeakRecord>);

impl LeakEstimates {
    /// Encode as many of `records` as fit into `buf`.
    pub fn encode<I: Iterator<Item = LeakRecord>>(
        buf: &mut [u8],
        records: &mut Peekable<I>,
    ) -> Result<Encoded, EncodeError> {
        let size = |_: &LeakRecord| LEAK_RECORD_LEN;
        let kind = ChunkKind::LeakEstimates;
        encode_batch(buf, kind, |_| {}, records, size, put_leak_record)
    }
}

/// The `Scan` chunk: facts about the exit scan.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Scan {
    /// How long the scan took (threads stopped), in nanoseconds.
    pub duration_ns: u64,
    /// Threads stopped for the scan (not counting the scanning thread).
    pub threads_stopped: u32,
    /// Threads that did not stop in time; their registers were not scanned.
    pub threads_missed: u32,
    /// Bytes of root memory scanned.
    pub root_bytes: u64,
    /// Live blocks examined.
    pub live_blocks: u64,
    /// Blocks owned by the C/C++ runtime and left out, as memcheck frees them at exit.
    pub runtime_blocks: u64,
    /// [`crate::scan_flags`] bits.
    pub flags: u32,
}

impl Scan {
    /// Encode into `buf`; the chunk's size.
    pub fn encode(&self, buf: &mut [u8]) -> Result<usize, EncodeError> {
        encode_chunk(buf, ChunkKind::Scan, |c| {
            c.put_u64(self.duration_ns);
            c.put_u32(self.threads_stopped);
            c.put_u32(self.threads_missed);
            c.put_u64(self.root_bytes);
            c.put_u64(self.live_blocks);
            c.put_u64(self.runtime_blocks);
            c.put_u32(self.flags);
        })
    }
}

/// The `Warning` chunk: something the agent wants the user to know.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Warning<T = Text>(pub T);

impl<T: AsRef<[u8]>> Warning<T> {
    /// Encode into `buf`; the chunk's size.
    pub fn encode(&self, buf: &mut [u8]) -> Result<usize, EncodeError> {
        encode_chunk(buf, ChunkKind::Warning, |c| c.put_bytes(self.0.as_ref()))
    }
}

/// The `End` chunk: the agent finished the file.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct End;

impl End {
    /// Encode into `buf`; the chunk's size.
    pub fn encode(&self, buf: &mut [u8]) -> Result<usize, EncodeError> {
        encode_chunk(buf, ChunkKind::End, |_| {})
    }
}

/// The `RunResult` chunk: how the process ended as `leakscope run` saw it.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct RunResult {
    /// Exit code, if the process exited (encoded as -1 if not).
    pub code: Option<i32>,
    /// Signal, if a signal killed it (encoded as 0 if not).
    pub signal: Option<i32>,
    /// Wall time from start to end, in nanoseconds.
    pub wall_ns: u64,
}

impl RunResult {
    /// Encode into `buf`; the chunk's size.
    pub fn encode(&self, buf: &mut [u8]) -> Result<usize, EncodeError> {
        encode_chunk(buf, ChunkKind::RunResult, |c| {
            c.put_i32(self.code.filter(|&code| code >= 0).unwrap_or(-1));
            c.put_i32(self.signal.filter(|&signal| signal > 0).unwrap_or(0));
            c.put_u64(self.wall_ns);
        })
    }
}

/// The `ScriptRecord` chunk: one JSON line of a script runtime's preload (Node.js), which
/// `leakscope run` appends to the profile of the process that wrote it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ScriptRecord<T = Text> {
    /// Which runtime wrote it ([`FrameKind::JavaScript`]).
    pub runtime: FrameKind,
    /// The process that wrote it.
    pub pid: u32,
    /// The record, one line of JSON without its newline.
    pub line: T,
}

impl<T: AsRef<[u8]>> ScriptRecord<T> {
    /// Bytes an encoded chunk of this record takes.
    pub fn encoded_len(&self) -> usize {
        crate::CHUNK_HEADER_LEN + 1 + 4 + 4 + self.line.as_ref().len()
    }

    /// Encode into `buf`; the chunk's size.
    pub fn encode(&self, buf: &mut [u8]) -> Result<usize, EncodeError> {
        encode_chunk(buf, ChunkKind::ScriptRecord, |c| {
            c.put_u8(self.runtime as u8);
            c.put_u32(self.pid);
            c.put_bytes(self.line.as_ref());
        })
    }
}

/// The `Sampling` chunk: sampling mode and its rate.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Sampling {
    /// The mean distance in bytes between sampled allocations.
    pub rate_bytes: u64,
}

impl Sampling {
    /// Encode into `buf`; the chunk's size.
    pub fn encode(&self, buf: &mut [u8]) -> Result<usize, EncodeError> {
        encode_chunk(buf, ChunkKind::Sampling, |c| c.put_u64(self.rate_bytes))
    }
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

/// The `Snapshot` chunk: live memory per site at a moment.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Snapshot<S = List<SiteLive>> {
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
    /// new (absolute) values. (Not read by [`Snapshot::encode`], which takes them from its
    /// iterator.)
    pub sites: S,
}

impl<S> Snapshot<S> {
    /// Encode this snapshot's fields and as many of `sites` as fit into `buf`.
    pub fn encode<I: Iterator<Item = SiteLive>>(
        &self,
        buf: &mut [u8],
        sites: &mut Peekable<I>,
    ) -> Result<Encoded, EncodeError> {
        let head = |c: &mut ChunkEncoder<'_>| {
            c.put_u64(self.time_ns);
            c.put_u64(self.rss_bytes);
            c.put_u64(self.available_bytes);
            c.put_u64(self.live_bytes);
            c.put_u64(self.live_blocks);
        };
        let put = |c: &mut ChunkEncoder<'_>, site: &SiteLive| {
            c.put_u32(site.stack);
            c.put_u64(site.live_bytes);
            c.put_u64(site.live_blocks);
        };
        encode_batch(buf, ChunkKind::Snapshot, head, sites, |_| 20, put)
    }
}

/// One record of the `SiteAges` chunk.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct SiteAge {
    /// The site.
    pub stack: StackId,
    /// When its oldest live block was allocated, in ns since start.
    pub oldest_ns: u64,
}

/// The `SiteAges` chunk: the age of each site's oldest live block.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct SiteAges<S = List<SiteAge>> {
    /// When the ages were taken, in nanoseconds since the agent started.
    pub time_ns: u64,
    /// Per site with live blocks. (Not read by [`SiteAges::encode`].)
    pub oldest: S,
}

impl<S> SiteAges<S> {
    /// Encode the time and as many of `ages` as fit into `buf`.
    pub fn encode<I: Iterator<Item = SiteAge>>(
        &self,
        buf: &mut [u8],
        ages: &mut Peekable<I>,
    ) -> Result<Encoded, EncodeError> {
        let head = |c: &mut ChunkEncoder<'_>| c.put_u64(self.time_ns);
        let put = |c: &mut ChunkEncoder<'_>, age: &SiteAge| {
            c.put_u32(age.stack);
            c.put_u64(age.oldest_ns);
        };
        encode_batch(buf, ChunkKind::SiteAges, head, ages, |_| 12, put)
    }
}

/// The `LiveScan` chunk: a reachability scan made while the program ran.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LiveScan<R = List<LeakRecord>> {
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
    pub outcome: LiveScanOutcome,
    /// Why it ran.
    pub trigger: LiveScanTrigger,
    /// Blocks classified.
    pub live_blocks: u64,
    /// Per kind, in `LeakKind` order: (bytes, blocks).
    pub totals: [(u64, u64); 4],
    /// Per (stack, lost kind): bytes and blocks. Still reachable blocks are only in `totals`.
    /// (Not read by [`LiveScan::encode`].)
    pub records: R,
}

impl<R> LiveScan<R> {
    /// Encode this scan's fields and as many of `records` as fit into `buf`.
    pub fn encode<I: Iterator<Item = LeakRecord>>(
        &self,
        buf: &mut [u8],
        records: &mut Peekable<I>,
    ) -> Result<Encoded, EncodeError> {
        let head = |c: &mut ChunkEncoder<'_>| {
            c.put_u64(self.time_ns);
            c.put_u64(self.pause_ns);
            c.put_u64(self.duration_ns);
            c.put_u32(self.threads_stopped);
            c.put_u32(self.threads_missed);
            c.put_u8(self.outcome as u8);
            c.put_u8(self.trigger as u8);
            c.put_u64(self.live_blocks);
            for &(bytes, blocks) in &self.totals {
                c.put_u64(bytes);
                c.put_u64(blocks);
            }
        };
        let size = |_: &LeakRecord| LEAK_RECORD_LEN;
        encode_batch(
            buf,
            ChunkKind::LiveScan,
            head,
            records,
            size,
            put_leak_record,
        )
    }
}

/// The `Exec` chunk: the process is about to replace its image.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Exec<T = Text, L = List<Text>> {
    /// When, in ns since the agent started.
    pub time_ns: u64,
    /// The function called.
    pub call: ExecCall,
    /// The program it was asked to run.
    pub path: T,
    /// Its arguments (as many as fit one chunk).
    pub argv: L,
}

impl<T: AsRef<[u8]>, L: Strings> Exec<T, L> {
    /// Encode into `buf`, with as many arguments as fit (leaving 64 bytes of `buf` free);
    /// the chunk's size.
    pub fn encode(&self, buf: &mut [u8]) -> Result<usize, EncodeError> {
        encode_chunk(buf, ChunkKind::Exec, |c| {
            c.put_u64(self.time_ns);
            c.put_u8(self.call as u8);
            c.put_bytes(self.path.as_ref());
            let count_at = c.payload_len();
            c.put_u32(0);
            let mut argc = 0u32;
            self.argv.visit(&mut |arg| {
                if c.remaining() < arg.len() + 64 {
                    return false;
                }
                c.put_bytes(arg);
                argc += 1;
                true
            });
            c.patch_u32(count_at, argc);
        })
    }
}

/// The `ExecFailed` chunk: the `exec` announced by the previous `Exec` chunk failed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ExecFailed {
    /// When, in ns since the agent started.
    pub time_ns: u64,
    /// The `errno`.
    pub errno: i32,
}

impl ExecFailed {
    /// Encode into `buf`; the chunk's size.
    pub fn encode(&self, buf: &mut [u8]) -> Result<usize, EncodeError> {
        encode_chunk(buf, ChunkKind::ExecFailed, |c| {
            c.put_u64(self.time_ns);
            c.put_i32(self.errno);
        })
    }
}

/// The `Spawn` chunk: the process started another one.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Spawn<T = Text> {
    /// When, in ns since the agent started.
    pub time_ns: u64,
    /// How.
    pub how: SpawnHow,
    /// The child's pid, if known (`fork`, `posix_spawn`); encoded as 0 if not.
    pub pid: Option<u32>,
    /// The program (`posix_spawn`) or the shell command (`system`, `popen`); empty for
    /// `fork`.
    pub program: T,
}

impl<T: AsRef<[u8]>> Spawn<T> {
    /// Encode into `buf`, the program cut to 4096 bytes or to what fits; the chunk's size.
    pub fn encode(&self, buf: &mut [u8]) -> Result<usize, EncodeError> {
        encode_chunk(buf, ChunkKind::Spawn, |c| {
            c.put_u64(self.time_ns);
            c.put_u8(self.how as u8);
            c.put_u32(self.pid.unwrap_or(0));
            let program = self.program.as_ref();
            let room = c.remaining().saturating_sub(16);
            c.put_bytes(&program[..program.len().min(room).min(4096)]);
        })
    }
}

#[cfg(feature = "std")]
pub(crate) mod decoding {
    //! The decoders: each reads one chunk's payload, never panicking and never allocating
    //! more than the payload's own bytes can fill.

    use super::*;
    use crate::tagged;

    /// Why a chunk's payload could not be decoded: what was wrong and where (the byte offset
    /// within the payload).
    #[derive(Clone, Copy, Debug, PartialEq, Eq)]
    pub struct DecodeError {
        /// Offset within the payload of the field that was wrong.
        pub at: usize,
        /// What was wrong.
        pub what: &'static str,
    }

    /// Reads fields from a payload, keeping the offset for errors.
    pub(crate) struct Reader<'a> {
        bytes: &'a [u8],
        at: usize,
    }

    impl<'a> Reader<'a> {
        pub(crate) fn new(bytes: &'a [u8]) -> Self {
            Reader { bytes, at: 0 }
        }
        pub(crate) fn error(&self, what: &'static str) -> DecodeError {
            DecodeError { at: self.at, what }
        }
        pub(crate) fn take(&mut self, n: usize) -> Result<&'a [u8], DecodeError> {
            let rest = &self.bytes[self.at..];
            if rest.len() < n {
                return Err(self.error("a field runs past the end of the chunk"));
            }
            self.at += n;
            Ok(&rest[..n])
        }
        pub(crate) fn is_at_end(&self) -> bool {
            self.at == self.bytes.len()
        }
        pub(crate) fn remaining(&self) -> usize {
            self.bytes.len() - self.at
        }
        pub(crate) fn u8(&mut self) -> Result<u8, DecodeError> {
            Ok(self.take(1)?[0])
        }
        pub(crate) fn u16(&mut self) -> Result<u16, DecodeError> {
            let b = self.take(2)?;
            Ok(u16::from_le_bytes([b[0], b[1]]))
        }
        pub(crate) fn u32(&mut self) -> Result<u32, DecodeError> {
            let b = self.take(4)?;
            Ok(u32::from_le_bytes([b[0], b[1], b[2], b[3]]))
        }
        pub(crate) fn i32(&mut self) -> Result<i32, DecodeError> {
            Ok(self.u32()? as i32)
        }
        pub(crate) fn u64(&mut self) -> Result<u64, DecodeError> {
            let b = self.take(8)?;
            let mut a = [0u8; 8];
            a.copy_from_slice(b);
            Ok(u64::from_le_bytes(a))
        }
        pub(crate) fn bytes(&mut self) -> Result<&'a [u8], DecodeError> {
            let len = self.u32()? as usize;
            self.take(len)
        }
        pub(crate) fn string(&mut self) -> Result<String, DecodeError> {
            Ok(String::from_utf8_lossy(self.bytes()?).into_owned())
        }
        /// A record count, checked against the bytes left: each record takes at least
        /// `min_record_len` bytes, so a count larger than the payload can hold is an error
        /// before anything is allocated for it.
        pub(crate) fn count(&mut self, min_record_len: usize) -> Result<usize, DecodeError> {
            let count = self.u32()? as usize;
            if count > self.remaining() / min_record_len.max(1) {
                self.at -= 4;
                return Err(self.error("a count larger than the chunk can hold"));
            }
            Ok(count)
        }
        /// A raw byte that must be one of an enum's values.
        pub(crate) fn known<T>(
            &mut self,
            from: impl Fn(u8) -> Option<T>,
            what: &'static str,
        ) -> Result<T, DecodeError> {
            let value = self.u8()?;
            from(value).ok_or(DecodeError {
                at: self.at - 1,
                what,
            })
        }
        pub(crate) fn strings(&mut self) -> Result<Vec<String>, DecodeError> {
            let count = self.count(4)?;
            let mut strings = Vec::with_capacity(count);
            for _ in 0..count {
                strings.push(self.string()?);
            }
            Ok(strings)
        }
        pub(crate) fn leak_record(&mut self) -> Result<LeakRecord, DecodeError> {
            Ok(LeakRecord {
                stack: self.u32()?,
                kind: self.known(LeakKind::from_u8, "an unknown leak kind")?,
                bytes: self.u64()?,
                blocks: self.u64()?,
            })
        }
        pub(crate) fn leak_records(&mut self) -> Result<Vec<LeakRecord>, DecodeError> {
            let count = self.count(LEAK_RECORD_LEN)?;
            let mut records = Vec::with_capacity(count);
            for _ in 0..count {
                records.push(self.leak_record()?);
            }
            Ok(records)
        }
        /// The end of the payload. Bytes after the last known field are not an error: a
        /// later version may append fields to a chunk (as the Process chunk's start ticks
        /// were), which this version does not know.
        pub(crate) fn end<T>(self, value: T) -> Result<T, DecodeError> {
            Ok(value)
        }
    }

    impl Process {
        /// Decode a `Process` payload.
        pub fn decode(payload: &[u8]) -> Result<Self, DecodeError> {
            let mut r = Reader::new(payload);
            let mut process = Process {
                pid: r.u32()?,
                ppid: r.u32()?,
                start_unix_ns: r.u64()?,
                max_frames: r.u32()?,
                flags: r.u32()?,
                argv: r.strings()?,
                exe: r.string()?,
                agent_version: r.string()?,
                kernel_start_ticks: None,
            };
            if !r.is_at_end() {
                process.kernel_start_ticks = Some(r.u64()?);
            }
            r.end(process)
        }
    }

    impl Module {
        /// Decode a `Module` payload.
        pub fn decode(payload: &[u8]) -> Result<Self, DecodeError> {
            let mut r = Reader::new(payload);
            let module = Module {
                load_bias: r.u64()?,
                start: r.u64()?,
                end: r.u64()?,
                path: r.string()?,
                build_id: r.bytes()?.to_vec(),
            };
            r.end(module)
        }
    }

    impl Stacks {
        /// Decode a `Stacks` payload of a file of format `version` (1: every frame a bare
        /// `u64` return address; 2: a kind byte before each frame's value).
        pub fn decode(payload: &[u8], version: u32) -> Result<Self, DecodeError> {
            let mut r = Reader::new(payload);
            let frame_len = if version >= 2 { 9 } else { 8 };
            let count = r.count(6)?;
            let mut stacks = Vec::with_capacity(count);
            for _ in 0..count {
                let id = r.u32()?;
                let frame_count = r.u16()? as usize;
                if frame_count > r.remaining() / frame_len {
                    return Err(DecodeError {
                        at: r.at - 2,
                        what: "a frame count larger than the chunk can hold",
                    });
                }
                let mut frames = Vec::with_capacity(frame_count);
                for _ in 0..frame_count {
                    if version < 2 {
                        frames.push(StackFrame::Native(r.u64()?));
                        continue;
                    }
                    let kind = r.known(FrameKind::from_u8, "an unknown frame kind")?;
                    let at = r.at;
                    let value = r.u64()?;
                    frames.push(match kind {
                        FrameKind::Native => StackFrame::Native(value),
                        FrameKind::Python if version >= 3 && value & tagged::PYTHON_CODE != 0 => {
                            StackFrame::from_tagged(
                                ((FrameKind::Python as u64) << tagged::KIND_SHIFT) | value,
                            )
                        }
                        kind => StackFrame::Interpreter(
                            kind,
                            FrameId::try_from(value).map_err(|_| DecodeError {
                                at,
                                what: "an interpreter frame id beyond 32 bits",
                            })?,
                        ),
                    });
                }
                stacks.push(Stack { id, frames });
            }
            r.end(Stacks(stacks))
        }
    }

    impl Frames {
        /// Decode a `Frames` payload.
        pub fn decode(payload: &[u8]) -> Result<Self, DecodeError> {
            let mut r = Reader::new(payload);
            let count = r.count(4 + 1 + 4 + 4 + 16)?;
            let mut frames = Vec::with_capacity(count);
            for _ in 0..count {
                let id = r.u32()?;
                let kind_at = r.at;
                let kind = r.known(FrameKind::from_u8, "an unknown frame kind")?;
                if kind == FrameKind::Native {
                    return Err(DecodeError {
                        at: kind_at,
                        what: "a native frame among the interpreter frames",
                    });
                }
                frames.push(InterpreterFrame {
                    id,
                    kind,
                    function: r.string()?,
                    file: r.string()?,
                    line: r.u32()?,
                    column: r.u32()?,
                    identity: r.u64()?,
                });
            }
            r.end(Frames(frames))
        }
    }

    impl PythonCodes {
        /// Decode a `PythonCode` payload.
        pub fn decode(payload: &[u8]) -> Result<Self, DecodeError> {
            let mut r = Reader::new(payload);
            let count = r.count(4 + 8 + 4 + 12)?;
            let mut codes = Vec::with_capacity(count);
            for _ in 0..count {
                codes.push(PythonCode {
                    id: r.u32()?,
                    address: r.u64()?,
                    first_line: r.u32()?,
                    name: r.string()?,
                    file: r.string()?,
                    line_table: r.bytes()?.to_vec(),
                });
            }
            r.end(PythonCodes(codes))
        }
    }

    impl Runtime {
        /// Decode a `Runtime` payload.
        pub fn decode(payload: &[u8]) -> Result<Self, DecodeError> {
            let mut r = Reader::new(payload);
            let runtime = Runtime {
                time_ns: r.u64()?,
                runtime: r.known(RuntimeKind::from_u8, "an unknown runtime")?,
                event: r.known(RuntimeEvent::from_u8, "an unknown runtime event")?,
                version: r.u32()?,
                code_address: r.u64()?,
            };
            r.end(runtime)
        }
    }

    impl Exit {
        /// Decode an `Exit` payload.
        pub fn decode(payload: &[u8]) -> Result<Self, DecodeError> {
            let mut r = Reader::new(payload);
            let exit = Exit {
                how: r.known(ExitHow::from_u8, "an unknown exit kind")?,
                code: r.i32()?,
                signal: r.i32()?,
                time_ns: r.u64()?,
            };
            r.end(exit)
        }
    }

    impl Leaks {
        /// Decode a `Leaks` payload.
        pub fn decode(payload: &[u8]) -> Result<Self, DecodeError> {
            let mut r = Reader::new(payload);
            let records = r.leak_records()?;
            r.end(Leaks(records))
        }
    }

    impl LeakEstimates {
        /// Decode a `LeakEstimates` payload.
        pub fn decode(payload: &[u8]) -> Result<Self, DecodeError> {
            let mut r = Reader::new(payload);
            let records = r.leak_records()?;
            r.end(LeakEstimates(records))
        }
    }

    impl Scan {
        /// Decode a `Scan` payload.
        pub fn decode(payload: &[u8]) -> Result<Self, DecodeError> {
            let mut r = Reader::new(payload);
            let scan = Scan {
                duration_ns: r.u64()?,
                threads_stopped: r.u32()?,
                threads_missed: r.u32()?,
                root_bytes: r.u64()?,
                live_blocks: r.u64()?,
                runtime_blocks: r.u64()?,
                flags: r.u32()?,
            };
            r.end(scan)
        }
    }

    impl Warning {
        /// Decode a `Warning` payload.
        pub fn decode(payload: &[u8]) -> Result<Self, DecodeError> {
            let mut r = Reader::new(payload);
            let text = r.string()?;
            r.end(Warning(text))
        }
    }

    impl End {
        /// Decode an `End` payload (empty).
        pub fn decode(payload: &[u8]) -> Result<Self, DecodeError> {
            Reader::new(payload).end(End)
        }
    }

    impl RunResult {
        /// Decode a `RunResult` payload.
        pub fn decode(payload: &[u8]) -> Result<Self, DecodeError> {
            let mut r = Reader::new(payload);
            let code = r.i32()?;
            let signal = r.i32()?;
            let result = RunResult {
                code: (code >= 0).then_some(code),
                signal: (signal > 0).then_some(signal),
                wall_ns: r.u64()?,
            };
            r.end(result)
        }
    }

    impl ScriptRecord {
        /// Decode a `ScriptRecord` payload.
        pub fn decode(payload: &[u8]) -> Result<Self, DecodeError> {
            let mut r = Reader::new(payload);
            let record = ScriptRecord {
                runtime: r.known(FrameKind::from_u8, "a frame kind")?,
                pid: r.u32()?,
                line: r.string()?,
            };
            r.end(record)
        }
    }

    impl Sampling {
        /// Decode a `Sampling` payload.
        pub fn decode(payload: &[u8]) -> Result<Self, DecodeError> {
            let mut r = Reader::new(payload);
            let sampling = Sampling {
                rate_bytes: r.u64()?,
            };
            r.end(sampling)
        }
    }

    impl Snapshot {
        /// Decode a `Snapshot` payload.
        pub fn decode(payload: &[u8]) -> Result<Self, DecodeError> {
            let mut r = Reader::new(payload);
            let mut snapshot = Snapshot {
                time_ns: r.u64()?,
                rss_bytes: r.u64()?,
                available_bytes: r.u64()?,
                live_bytes: r.u64()?,
                live_blocks: r.u64()?,
                sites: Vec::new(),
            };
            let count = r.count(20)?;
            snapshot.sites.reserve_exact(count);
            for _ in 0..count {
                snapshot.sites.push(SiteLive {
                    stack: r.u32()?,
                    live_bytes: r.u64()?,
                    live_blocks: r.u64()?,
                });
            }
            r.end(snapshot)
        }
    }

    impl SiteAges {
        /// Decode a `SiteAges` payload.
        pub fn decode(payload: &[u8]) -> Result<Self, DecodeError> {
            let mut r = Reader::new(payload);
            let time_ns = r.u64()?;
            let count = r.count(12)?;
            let mut oldest = Vec::with_capacity(count);
            for _ in 0..count {
                oldest.push(SiteAge {
                    stack: r.u32()?,
                    oldest_ns: r.u64()?,
                });
            }
            r.end(SiteAges { time_ns, oldest })
        }
    }

    impl LiveScan {
        /// Decode a `LiveScan` payload.
        pub fn decode(payload: &[u8]) -> Result<Self, DecodeError> {
            let mut r = Reader::new(payload);
            let mut scan = LiveScan {
                time_ns: r.u64()?,
                pause_ns: r.u64()?,
                duration_ns: r.u64()?,
                threads_stopped: r.u32()?,
                threads_missed: r.u32()?,
                outcome: r.known(LiveScanOutcome::from_u8, "an unknown live scan outcome")?,
                trigger: r.known(LiveScanTrigger::from_u8, "an unknown live scan trigger")?,
                live_blocks: r.u64()?,
                totals: [(0, 0); 4],
                records: Vec::new(),
            };
            for total in &mut scan.totals {
                *total = (r.u64()?, r.u64()?);
            }
            scan.records = r.leak_records()?;
            r.end(scan)
        }
    }

    impl Exec {
        /// Decode an `Exec` payload.
        pub fn decode(payload: &[u8]) -> Result<Self, DecodeError> {
            let mut r = Reader::new(payload);
            let exec = Exec {
                time_ns: r.u64()?,
                call: r.known(ExecCall::from_u8, "an unknown exec function")?,
                path: r.string()?,
                argv: r.strings()?,
            };
            r.end(exec)
        }
    }

    impl ExecFailed {
        /// Decode an `ExecFailed` payload.
        pub fn decode(payload: &[u8]) -> Result<Self, DecodeError> {
            let mut r = Reader::new(payload);
            let failed = ExecFailed {
                time_ns: r.u64()?,
                errno: r.i32()?,
            };
            r.end(failed)
        }
    }

    impl Spawn {
        /// Decode a `Spawn` payload.
        pub fn decode(payload: &[u8]) -> Result<Self, DecodeError> {
            let mut r = Reader::new(payload);
            let time_ns = r.u64()?;
            let how = r.known(SpawnHow::from_u8, "an unknown spawn kind")?;
            let pid = r.u32()?;
            let spawn = Spawn {
                time_ns,
                how,
                pid: (pid != 0).then_some(pid),
                program: r.string()?,
            };
            r.end(spawn)
        }
    }
}
