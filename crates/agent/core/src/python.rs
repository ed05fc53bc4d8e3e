//! CPython: the Python frames of a stack, and the interpreter's own allocator seen block by
//! block (issue 9; the design and its cost are in docs/decisions/0009-python.md).
//!
//! **Frames.** When the process runs CPython 3.9 to 3.13 (in the executable, as Debian's
//! `/usr/bin/python3.11`, or in `libpython3.X.so`), every stack capture of a thread that has a
//! Python thread state also walks that thread's own chain of Python frames, from its thread
//! state (`PyGILState_GetThisThreadState`: a `pthread_getspecific`, no lock, no allocation,
//! no GIL) through the frames' `previous` links. Each frame gives a code object and the
//! instruction it runs; the stack records a code location (code id and instruction offset,
//! see `leakscope_format::tagged`), never a line: the reader finds the line in the code's line
//! table. A code object seen for the first time is copied (qualified name, file, first line,
//! line table) into the agent's code table, which the writer writes as `PythonCode` chunks.
//!
//! The native and the Python frames are then merged: each native frame of the evaluation loop
//! (`_PyEval_EvalFrameDefault`) is replaced by the Python frames it runs (one per call before
//! 3.11, a run of inlined frames since), and, unless `--native` asked for every frame, the
//! interpreter's own native frames are left out (frames of C extensions and other libraries
//! stay where they are). The layouts of the structures read are per version tables, checked
//! against the interpreters' own headers by this module's tests; 3.13's
//! come from the offsets the interpreter publishes at the start of `_PyRuntime`
//! (`_Py_DebugOffsets`).
//!
//! **Allocator.** Python objects come from pymalloc's arenas, which `malloc` never sees: the
//! live bytes of a site that keeps Python objects would be invisible (or, through the arenas'
//! own `malloc`s, wrong). So once the interpreter is initialised, the agent asks it (through
//! `Py_AddPendingCall`, which runs the request on the main thread with the GIL held) to
//! install the agent's wrappers around its `PYMEM_DOMAIN_MEM` and `PYMEM_DOMAIN_OBJ`
//! allocators (PEP 445): each object is then a block of its own, recorded with the Python
//! stack that made it, while pymalloc still does the allocating. What the wrapped allocator
//! asks `malloc` for meanwhile is not recorded a second time.
//!
//! **Finalization.** When `Py_IsInitialized()` turns false again the interpreter is shutting
//! down: the agent stops walking frames (the thread states are being torn down) and records
//! the moment, and the analysis judges growth on the snapshots before it (what the
//! interpreter frees at shutdown does not make a leak "bounded").

use core::cell::UnsafeCell;
use core::sync::atomic::{AtomicU32, AtomicU64, AtomicUsize, Ordering};

use leakscope_format::{tagged, FrameKind, StackId};

use crate::modules::MODULES;
use crate::stacks::STACKS;
use crate::sync::SpinLock;
use crate::sys;
use crate::table::{ShardedTable, TableSlot};

/// How a version lays out its frames.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum FrameModel {
    /// 3.9 and 3.10: `PyFrameObject`s linked by `f_back`, one evaluation call each, the
    /// instruction in `f_lasti` (bytes in 3.9, code units in 3.10).
    FrameObjects,
    /// 3.11: `_PyInterpreterFrame`s linked by `previous`; the frame an evaluation call entered
    /// has `is_entry` set.
    EntryFlag,
    /// 3.12 and 3.13: as 3.11, but each evaluation call pushes a shim frame owned by the C
    /// stack (`FRAME_OWNED_BY_CSTACK`) below the frames it runs.
    CStackShim,
}

/// Where a version keeps what the walk reads (byte offsets, x86-64 release builds).
#[derive(Clone, Copy, Debug)]
pub(crate) struct Layout {
    /// (3, minor).
    minor: u8,
    model: FrameModel,
    /// 3.9/3.10: `tstate->frame`; 3.11/3.12: `tstate->cframe`; 3.13: `tstate->current_frame`.
    tstate_frame: usize,
    /// 3.11/3.12: `_PyCFrame.current_frame` (the frame pointer is `tstate->cframe->...`).
    cframe_current: Option<usize>,
    frame_previous: usize,
    frame_code: usize,
    /// `f_lasti` (an `int`) or `prev_instr` / `instr_ptr` (a pointer into the bytecode).
    frame_instruction: usize,
    frame_owner: Option<usize>,
    frame_is_entry: Option<usize>,
    code_filename: usize,
    /// `co_qualname` since 3.11, `co_name` before.
    code_name: usize,
    code_first_line: usize,
    /// `co_lnotab` (3.9) or `co_linetable`.
    code_line_table: usize,
    /// Where the bytecode starts in the code object (`co_code_adaptive`, 3.11 on).
    code_bytecode: Option<usize>,
    /// `_co_firsttraceable` (3.11, 3.12): frames before it have not started.
    code_first_traceable: Option<usize>,
    unicode_length: usize,
    unicode_state: usize,
    /// `sizeof(PyASCIIObject)`: where a compact ASCII string's characters start.
    unicode_ascii_size: usize,
    /// `sizeof(PyCompactUnicodeObject)`: where other compact strings' characters start.
    unicode_compact_size: usize,
    bytes_size: usize,
    bytes_data: usize,
}

/// `FRAME_OWNED_BY_GENERATOR` (3.11 to 3.13).
const OWNED_BY_GENERATOR: u8 = 1;
/// `FRAME_OWNED_BY_CSTACK` (3.12, 3.13).
const OWNED_BY_CSTACK: u8 = 3;

/// The layouts of 3.9 to 3.12, from the interpreters' headers (`offsetof` of each field; a
/// test compiles a program that prints them and compares).
pub(crate) fn layout_of(minor: u8) -> Option<Layout> {
    let common = Layout {
        minor,
        model: FrameModel::FrameObjects,
        tstate_frame: 24,
        cframe_current: None,
        frame_previous: 24,
        frame_code: 32,
        frame_instruction: 104,
        frame_owner: None,
        frame_is_entry: None,
        code_filename: 104,
        code_name: 112,
        code_first_line: 40,
        code_line_table: 120,
        code_bytecode: None,
        code_first_traceable: None,
        unicode_length: 16,
        unicode_state: 32,
        unicode_ascii_size: 48,
        unicode_compact_size: 72,
        bytes_size: 16,
        bytes_data: 32,
    };
    Some(match minor {
        9 => common,
        10 => Layout {
            frame_instruction: 96,
            ..common
        },
        11 => Layout {
            model: FrameModel::EntryFlag,
            tstate_frame: 56,
            cframe_current: Some(8),
            frame_previous: 48,
            frame_code: 32,
            frame_instruction: 56,
            frame_owner: Some(69),
            frame_is_entry: Some(68),
            code_filename: 112,
            code_name: 128,
            code_first_line: 72,
            code_line_table: 136,
            code_bytecode: Some(184),
            code_first_traceable: Some(168),
            ..common
        },
        12 => Layout {
            model: FrameModel::CStackShim,
            tstate_frame: 56,
            cframe_current: Some(0),
            frame_previous: 8,
            frame_code: 0,
            frame_instruction: 56,
            frame_owner: Some(70),
            frame_is_entry: None,
            code_filename: 112,
            code_name: 128,
            code_first_line: 68,
            code_line_table: 136,
            code_bytecode: Some(192),
            code_first_traceable: Some(176),
            unicode_ascii_size: 40,
            unicode_compact_size: 56,
            ..common
        },
        _ => return None,
    })
}

/// 3.13's layout, from the `_Py_DebugOffsets` at the start of `_PyRuntime` (the struct's own
/// layout is stable within a minor version). None if the cookie or version is not 3.13's, or
/// the build is free-threaded (its objects have another header).
///
/// # Safety
/// `runtime` is the address of the interpreter's `_PyRuntime`.
unsafe fn layout_from_debug_offsets(runtime: usize) -> Option<Layout> {
    // SAFETY: `_PyRuntime` is a static of well over 584 bytes (the debug offsets alone).
    let word = |at: usize| unsafe { core::ptr::read((runtime + at) as *const u64) } as usize;
    // SAFETY: as above.
    let cookie = unsafe { core::ptr::read(runtime as *const [u8; 8]) };
    if &cookie != b"xdebugpy" {
        return None;
    }
    let version = word(8) as u32;
    if version >> 16 != 0x030d || word(16) != 0 {
        return None;
    }
    // Offsets of the fields of 3.13's `_Py_DebugOffsets` (pycore_runtime.h).
    let ascii_size = word(560);
    Some(Layout {
        minor: 13,
        model: FrameModel::CStackShim,
        tstate_frame: word(184),
        cframe_current: None,
        frame_previous: word(232),
        frame_code: word(240),
        frame_instruction: word(248),
        frame_owner: Some(word(264)),
        frame_is_entry: None,
        code_filename: word(280),
        code_name: word(296),
        code_first_line: word(312),
        code_line_table: word(304),
        code_bytecode: Some(word(344)),
        code_first_traceable: None,
        unicode_length: word(552),
        unicode_state: word(544),
        unicode_ascii_size: ascii_size,
        // PyCompactUnicodeObject adds `utf8_length` and `utf8` to PyASCIIObject (3.12 on).
        unicode_compact_size: ascii_size + 16,
        bytes_size: word(520),
        bytes_data: word(528),
    })
}

/// The interpreter found in the process.
struct Runtime {
    layout: Layout,
    is_initialized: extern "C" fn() -> i32,
    this_thread_state: extern "C" fn() -> usize,
    add_pending_call: Option<extern "C" fn(extern "C" fn(usize) -> i32, usize) -> i32>,
    get_allocator: Option<extern "C" fn(i32, *mut Allocator)>,
    set_allocator: Option<extern "C" fn(i32, *const Allocator)>,
    code_type: usize,
    unicode_type: usize,
    bytes_type: usize,
    /// `_PyEval_EvalFrameDefault`: `[start, end)`.
    eval: (u64, u64),
    /// The module the interpreter is in (libpython, or the executable).
    interpreter: (u64, u64),
    /// The executable, when it is a `python` launcher linking a shared libpython.
    launcher: (u64, u64),
    /// The C library: its frames outward of the outermost Python frame are the thread's start.
    libc: (u64, u64),
}

/// `PyMemAllocatorEx`.
#[repr(C)]
#[derive(Clone, Copy)]
pub struct Allocator {
    /// Passed to each function.
    pub ctx: usize,
    /// `void *malloc(void *ctx, size_t size)`.
    pub malloc: usize,
    /// `void *calloc(void *ctx, size_t nelem, size_t elsize)`.
    pub calloc: usize,
    /// `void *realloc(void *ctx, void *ptr, size_t new_size)`.
    pub realloc: usize,
    /// `void free(void *ctx, void *ptr)`.
    pub free: usize,
}

impl Allocator {
    const NONE: Allocator = Allocator {
        ctx: 0,
        malloc: 0,
        calloc: 0,
        realloc: 0,
        free: 0,
    };
}

/// `PYMEM_DOMAIN_MEM` and `PYMEM_DOMAIN_OBJ`.
const DOMAIN_MEM: i32 = 1;
const DOMAIN_OBJ: i32 = 2;

struct RuntimeCell(UnsafeCell<Option<Runtime>>);
// SAFETY: written once by `detect` before `STATE` leaves `NONE` (Release), read only after
// (Acquire); never written again.
unsafe impl Sync for RuntimeCell {}
static RUNTIME: RuntimeCell = RuntimeCell(UnsafeCell::new(None));

/// No interpreter (or not looked for yet).
const NONE: u32 = 0;
/// Found; not initialised yet (its thread states may not exist).
const WAITING: u32 = 1;
/// Initialised: frames are walked.
const RUNNING: u32 = 2;
/// Finalising or finalised: no more walks.
const FINISHED: u32 = 3;
static STATE: AtomicU32 = AtomicU32::new(NONE);

/// `--native`: keep the interpreter's own frames.
static KEEP_NATIVE: AtomicU32 = AtomicU32::new(0);

/// What the writer reports (`Runtime` chunks): each time is ns since start + 1 (0: not yet).
pub(crate) struct Events {
    /// `PY_VERSION_HEX` of the interpreter found.
    pub version: AtomicU32,
    /// 1: supported, frames recorded; 2: found but not supported.
    pub detected: AtomicU32,
    pub detected_at: AtomicU64,
    /// The evaluation function's address.
    pub eval_address: AtomicU64,
    pub wrapped_at: AtomicU64,
    pub finalizing_at: AtomicU64,
}

pub(crate) static EVENTS: Events = Events {
    version: AtomicU32::new(0),
    detected: AtomicU32::new(0),
    detected_at: AtomicU64::new(0),
    eval_address: AtomicU64::new(0),
    wrapped_at: AtomicU64::new(0),
    finalizing_at: AtomicU64::new(0),
};

/// The agent's wrappers of the two domains (set by the cdylib, which exports them), and the
/// interpreter's allocators they call.
pub struct Wrappers {
    /// The wrapper functions (their `ctx` is ignored: each domain has its own functions).
    pub mem: Allocator,
    /// The same for the object domain.
    pub obj: Allocator,
}

struct AllocatorCell(UnsafeCell<[Allocator; 4]>);
// SAFETY: entries 0 and 1 (the wrappers) are written once at start, before any interpreter
// runs; entries 2 and 3 (the originals) before the wrappers that read them are installed:
// at start (before `main`, one thread, no Python code running), or by the pending call with
// the GIL held, which every caller of the wrapped domains holds too (and the interpreter's
// `PyMem_SetAllocator` publishes them); the pending call writes them only when the
// interpreter had replaced the wrappers, so no wrapper of the old ones runs any more.
unsafe impl Sync for AllocatorCell {}
static ALLOCATORS: AllocatorCell = AllocatorCell(UnsafeCell::new([Allocator::NONE; 4]));
static WRAP_REQUESTED: AtomicU32 = AtomicU32::new(0);
/// The wrappers were installed before the interpreter started and were still in place once it
/// ran: every object of its allocator is a block the agent knows.
static TRACKED_FROM_START: AtomicU32 = AtomicU32::new(0);
/// The wrappers were installed before the interpreter started (it may replace them while it
/// starts, when `PYTHONMALLOC` asks for another allocator).
static WRAPPED_EARLY: AtomicU32 = AtomicU32::new(0);

/// Is every object of the interpreter's allocator a block the agent knows (so that its arenas
/// hold nothing else the leak check must read as a root)?
pub fn objects_tracked_from_start() -> bool {
    TRACKED_FROM_START.load(Ordering::Acquire) != 0
}

/// Give the agent the wrapper functions (from the cdylib's constructor).
pub fn set_wrappers(wrappers: Wrappers) {
    // SAFETY: see `AllocatorCell`: called once, before any Python code runs.
    unsafe {
        let table = &mut *ALLOCATORS.0.get();
        table[0] = wrappers.mem;
        table[1] = wrappers.obj;
    }
}

/// The interpreter's own allocator of the memory domain (`obj` false) or the object domain,
/// which the agent's wrapper calls.
#[inline(always)]
pub fn original_allocator(obj: bool) -> &'static Allocator {
    // SAFETY: see `AllocatorCell`: the wrappers run only after the originals were written.
    unsafe { &(*ALLOCATORS.0.get())[2 + obj as usize] }
}

/// Native frames walked for an object of the wrapped allocator (without `--native`): enough
/// for the C code that made it (an extension's function, inside the interpreter's
/// `PyDict_New` or `PyList_New`) and the evaluation frame that called that code; the Python
/// frames outward come from the frame chain. The walk through the evaluation loop's frames
/// and out to `main` is what an allocation of a Python object would otherwise spend most of
/// its cost on (decision 0009), and without `--native` all it would add is a C extension's
/// frame between two Python frames further out, which is then not shown. `malloc`'s blocks,
/// which the leak check is about, always get every frame.
pub const OBJECT_NATIVE_FRAMES: usize = 8;

/// The native frames to walk for a runtime's object, given `--max-frames`.
#[inline(always)]
pub fn object_native_frames(max_frames: usize) -> usize {
    if KEEP_NATIVE.load(Ordering::Relaxed) != 0 {
        max_frames
    } else {
        max_frames.min(OBJECT_NATIVE_FRAMES)
    }
}

/// Keep the interpreter's native frames (`--native`).
pub fn set_keep_native(keep: bool) {
    KEEP_NATIVE.store(keep as u32, Ordering::Relaxed);
}

fn runtime() -> Option<&'static Runtime> {
    if STATE.load(Ordering::Acquire) == NONE {
        return None;
    }
    // SAFETY: see `RuntimeCell`.
    unsafe { (*RUNTIME.0.get()).as_ref() }
}

/// Look for CPython in the process (at start, after the module table is built). Quiet when
/// there is none; a version or build it cannot read is reported (`Runtime` chunk), never
/// guessed at.
pub fn detect() {
    let symbol = |name: &core::ffi::CStr| sys::symbol_address(name);
    let is_initialized = symbol(c"Py_IsInitialized");
    let this_thread_state = symbol(c"PyGILState_GetThisThreadState");
    let eval = symbol(c"_PyEval_EvalFrameDefault");
    let code_type = symbol(c"PyCode_Type");
    if is_initialized == 0 || this_thread_state == 0 || eval == 0 || code_type == 0 {
        return;
    }
    let version = python_version();
    EVENTS.version.store(version, Ordering::Relaxed);
    EVENTS.eval_address.store(eval as u64, Ordering::Relaxed);
    EVENTS
        .detected_at
        .store(crate::activation::now_ns() + 1, Ordering::Relaxed);
    let layout = if version >> 16 == 0x030d {
        let runtime = symbol(c"_PyRuntime");
        // SAFETY: `_PyRuntime` is the interpreter's runtime state, whose first member is its
        // debug offsets.
        (runtime != 0)
            .then(|| unsafe { layout_from_debug_offsets(runtime) })
            .flatten()
    } else if version >> 24 == 3 {
        layout_of((version >> 16) as u8)
    } else {
        None
    };
    let eval_size = sys::symbol_size(eval).unwrap_or(0);
    let (Some(layout), true) = (layout, eval_size > 0) else {
        EVENTS.detected.store(2, Ordering::Release);
        return;
    };
    let Some(modules) = MODULES.read() else {
        EVENTS.detected.store(2, Ordering::Release);
        return;
    };
    let containing = |address: u64| {
        modules
            .records
            .iter()
            .find(|m| m.loaded && m.start <= address && address < m.end)
            .map(|m| (m.start, m.end))
    };
    let interpreter = containing(eval as u64).unwrap_or((0, 0));
    let libc = containing(symbol(c"getpid") as u64).unwrap_or((0, 0));
    let launcher = modules
        .records
        .first()
        .filter(|m| {
            let name = m.path.rsplit('/').next().unwrap_or("");
            name.starts_with("python") && (m.start, m.end) != interpreter
        })
        .map_or((0, 0), |m| (m.start, m.end));
    // SAFETY: the symbols are the interpreter's functions of these C signatures
    // (`int Py_IsInitialized(void)`, `PyThreadState *PyGILState_GetThisThreadState(void)`,
    // `int Py_AddPendingCall(int (*)(void *), void *)`,
    // `void PyMem_GetAllocator(PyMemAllocatorDomain, PyMemAllocatorEx *)` and
    // `void PyMem_SetAllocator(PyMemAllocatorDomain, PyMemAllocatorEx *)`).
    let runtime = unsafe {
        Runtime {
            layout,
            is_initialized: core::mem::transmute::<usize, extern "C" fn() -> i32>(is_initialized),
            this_thread_state: core::mem::transmute::<usize, extern "C" fn() -> usize>(
                this_thread_state,
            ),
            add_pending_call: function(symbol(c"Py_AddPendingCall")),
            get_allocator: function(symbol(c"PyMem_GetAllocator")),
            set_allocator: function(symbol(c"PyMem_SetAllocator")),
            code_type,
            unicode_type: symbol(c"PyUnicode_Type"),
            bytes_type: symbol(c"PyBytes_Type"),
            eval: (eval as u64, eval as u64 + eval_size),
            interpreter,
            launcher,
            libc,
        }
    };
    let not_started = (runtime.is_initialized)() == 0;
    // SAFETY: see `RuntimeCell`: the only write, before `STATE` publishes it.
    unsafe { *RUNTIME.0.get() = Some(runtime) };
    EVENTS.detected.store(1, Ordering::Release);
    STATE.store(WAITING, Ordering::Release);
    if not_started {
        // Before `main`: the interpreter has made no object yet and no other thread runs, so
        // the wrappers can go in now (PEP 445 allows it before initialization), and every
        // object it makes is recorded. (If `PYTHONMALLOC` makes it set up other allocators as
        // it starts, the pending call puts the wrappers back once it runs.)
        if install_wrappers(0) == 0 && EVENTS.wrapped_at.load(Ordering::Relaxed) != 0 {
            WRAPPED_EARLY.store(1, Ordering::Relaxed);
        }
    }
}

/// A function pointer from a symbol address (None for 0).
///
/// # Safety
/// A non-zero `address` is a function of type `F`.
unsafe fn function<F: Copy>(address: usize) -> Option<F> {
    const { assert!(core::mem::size_of::<F>() == core::mem::size_of::<usize>()) };
    // SAFETY: the caller's promise; `F` is a function pointer type of pointer size.
    (address != 0).then(|| unsafe { core::mem::transmute_copy::<usize, F>(&address) })
}

/// The interpreter's `PY_VERSION_HEX`: `Py_Version` (3.11 on), else parsed from
/// `Py_GetVersion()` ("3.10.13 (main, ...)"), 0 if neither.
fn python_version() -> u32 {
    let py_version = sys::symbol_address(c"Py_Version");
    if py_version != 0 {
        // SAFETY: `const unsigned long Py_Version`.
        return unsafe { core::ptr::read(py_version as *const u64) } as u32;
    }
    let get_version = sys::symbol_address(c"Py_GetVersion");
    if get_version == 0 {
        return 0;
    }
    // SAFETY: `const char *Py_GetVersion(void)`, which formats into a static buffer.
    let text = unsafe {
        let f =
            core::mem::transmute::<usize, extern "C" fn() -> *const core::ffi::c_char>(get_version);
        core::ffi::CStr::from_ptr(f())
    };
    let mut parts = text.to_bytes().split(|&b| b == b'.' || b == b' ');
    let mut number = || parts.next().map(sys::parse_decimal).unwrap_or(0) as u32;
    let (major, minor, micro) = (number(), number(), number());
    (major << 24) | (minor << 16) | (micro.min(255) << 8)
}

/// Is the interpreter running (frames may be walked)? Moves the state on as the interpreter
/// starts and stops; called on every stack capture of a process with an interpreter.
#[inline]
fn running(runtime: &Runtime) -> bool {
    match STATE.load(Ordering::Relaxed) {
        RUNNING => {
            if (runtime.is_initialized)() != 0 {
                return true;
            }
            note_finalizing();
            false
        }
        WAITING => {
            if (runtime.is_initialized)() == 0 {
                return false;
            }
            STATE.store(RUNNING, Ordering::Relaxed);
            request_allocator_wrap(runtime);
            true
        }
        _ => false,
    }
}

/// The interpreter is finalising: stop walking, and record when.
#[cold]
fn note_finalizing() {
    note_finalizing_at(crate::activation::now_ns());
}

/// Record that finalization began at `time_ns` at the latest (the earliest report stands).
fn note_finalizing_at(time_ns: u64) {
    STATE.store(FINISHED, Ordering::Relaxed);
    let _ = EVENTS
        .finalizing_at
        .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |at| {
            (at == 0 || at > time_ns + 1).then_some(time_ns + 1)
        });
}

/// From the writer, before and after each snapshot of time `time_ns`: has finalization
/// begun? If so it is noted at `time_ns` at the latest, so that the snapshot counts as one of
/// the teardown. (Between two allocations the interpreter may free much: the hot path alone
/// could note it after a snapshot that already shows the teardown.)
pub fn check_finalizing(time_ns: u64) {
    let Some(runtime) = runtime() else { return };
    match STATE.load(Ordering::Relaxed) {
        RUNNING if (runtime.is_initialized)() == 0 => note_finalizing_at(time_ns),
        FINISHED if EVENTS.finalizing_at.load(Ordering::Relaxed) > time_ns + 1 => {
            note_finalizing_at(time_ns)
        }
        _ => {}
    }
}

/// Ask the interpreter, once, to install the allocator wrappers on its main thread.
#[cold]
fn request_allocator_wrap(runtime: &Runtime) {
    let (Some(add_pending_call), Some(_), Some(_)) = (
        runtime.add_pending_call,
        runtime.get_allocator,
        runtime.set_allocator,
    ) else {
        return;
    };
    // SAFETY: reads the wrappers written at start.
    if unsafe { (*ALLOCATORS.0.get())[0].malloc } == 0 {
        return;
    }
    if WRAP_REQUESTED
        .compare_exchange(0, 1, Ordering::Relaxed, Ordering::Relaxed)
        .is_ok()
    {
        // Takes only the pending-calls lock (no allocation); the interpreter never holds
        // that lock while it allocates, so this allocation cannot be inside it.
        add_pending_call(install_wrappers, 0);
    }
}

/// The pending call: runs on the main thread with the GIL held, in the evaluation loop.
extern "C" fn install_wrappers(_arg: usize) -> i32 {
    let Some(runtime) = runtime() else { return 0 };
    let (Some(get), Some(set)) = (runtime.get_allocator, runtime.set_allocator) else {
        return 0;
    };
    let _section = crate::thread::AgentSection::enter_nested();
    // SAFETY: see `AllocatorCell`: the callers are those it names, and nothing reads an
    // original before its wrapper is installed below.
    let table = unsafe { &mut *ALLOCATORS.0.get() };
    if table[0].malloc == 0 || table[1].malloc == 0 {
        return 0; // no wrappers to install (the core without its cdylib, in tests)
    }
    let mut still_wrapped = true;
    for (index, domain) in [(0, DOMAIN_MEM), (1, DOMAIN_OBJ)] {
        let mut original = Allocator::NONE;
        get(domain, &mut original);
        if original.malloc == 0 || original.malloc == table[index].malloc {
            continue; // nothing to wrap, or wrapped already (early, or a fork's child)
        }
        still_wrapped = false;
        table[2 + index] = original;
        // The wrappers' ctx is the original's, so that a caller which read the old
        // functions with the new ctx (or the reverse) still calls pymalloc correctly.
        let wrapper = Allocator {
            ctx: original.ctx,
            ..table[index]
        };
        set(domain, &wrapper);
    }
    if STATE.load(Ordering::Relaxed) == RUNNING {
        // The interpreter runs: were the early wrappers still in place?
        let complete = still_wrapped && WRAPPED_EARLY.load(Ordering::Relaxed) != 0;
        TRACKED_FROM_START.store(complete as u32, Ordering::Release);
    }
    if still_wrapped && EVENTS.wrapped_at.load(Ordering::Relaxed) != 0 {
        return 0; // the time of the first wrap stands
    }
    EVENTS
        .wrapped_at
        .store(crate::activation::now_ns() + 1, Ordering::Relaxed);
    0
}

// ---------------------------------------------------------------------------------------
// The frame walk

/// Most Python frames a stack records.
const MAX_PYTHON_FRAMES: usize = 128;
/// Per-thread code cache slots (direct-mapped by code address).
const CODE_CACHE: usize = 256;
/// Most frames of a merged stack.
const MAX_MERGED: usize = crate::unwind::MAX_FRAMES_LIMIT;
/// Merged stacks remembered per thread (direct-mapped by a hash of their parts).
const RECENT_MERGES: usize = 16;
/// Python frames a remembered merge can hold.
const RECENT_MERGE_FRAMES: usize = 32;

/// A merge remembered: native stack `native` with these Python frames is stack `id`.
#[derive(Clone, Copy)]
struct RecentMerge {
    native: StackId,
    len: u32,
    id: StackId,
    /// Which of the frames end an evaluation call's (bit per frame).
    ends: u32,
    words: [u64; RECENT_MERGE_FRAMES],
}

/// What a thread keeps between captures (inside its `unwind::ThreadCapture`; all zero at first, see `RuntimeCapture::new_boxed`).
pub struct ThreadPython {
    /// Code locations of the last walk, innermost first, and which of them end an
    /// evaluation call's frames.
    words: [u64; MAX_PYTHON_FRAMES],
    group_ends: [bool; MAX_PYTHON_FRAMES],
    /// Recent merges: an object allocation's Python frames differ from the previous one's
    /// more often than not (another instruction of the same function), but come back.
    recent: [RecentMerge; RECENT_MERGES],
    merged: [u64; MAX_MERGED],
    /// (code object address, code id) recently seen by this thread.
    codes: [CachedCode; CODE_CACHE],
}

/// A code object a thread saw, with what identified it then (kept here, not only in the
/// code table, so that a repeat reads nothing but the code object and this entry).
#[derive(Clone, Copy)]
struct CachedCode {
    code: u64,
    identity: (u64, u64, u64, u32),
    id: u32,
}

/// Is there an interpreter whose frames a capture should look for? (One relaxed load.)
#[inline(always)]
pub fn present() -> bool {
    STATE.load(Ordering::Relaxed) != NONE
}

/// The stack to record for an allocation whose native stack is `native`: the same if the
/// thread runs no Python code now, else the merged stack (see the module's docs).
pub fn with_python_frames(state: &mut ThreadPython, native: StackId) -> StackId {
    let Some(runtime) = runtime() else {
        return native;
    };
    if !running(runtime) {
        return native;
    }
    let tstate = (runtime.this_thread_state)();
    if !plausible(tstate as u64) {
        return native;
    }
    let count = walk(runtime, tstate, state);
    if count == 0 {
        return native;
    }
    let words = &state.words[..count];
    let mut hash = (native as u64).wrapping_mul(0x9e37_79b9_7f4a_7c15);
    for &word in words {
        hash = (hash.rotate_left(7) ^ word).wrapping_mul(0x5175_6f2d_0b4e_9a6b);
    }
    let slot = (hash >> 58) as usize % RECENT_MERGES;
    let ends = state.group_ends[..count.min(RECENT_MERGE_FRAMES)]
        .iter()
        .enumerate()
        .fold(0u32, |mask, (i, &end)| mask | ((end as u32) << i));
    let recent = &state.recent[slot];
    if recent.id != 0
        && recent.native == native
        && recent.len as usize == count
        && recent.ends == ends
        && recent.words[..count] == *words
    {
        return recent.id;
    }
    let native_frames = if native == 0 {
        &[][..]
    } else {
        STACKS.frames_of(native).unwrap_or(&[])
    };
    let keep_native = KEEP_NATIVE.load(Ordering::Relaxed) != 0;
    let len = merge(
        runtime,
        native_frames,
        &state.words[..count],
        &state.group_ends[..count],
        keep_native,
        &mut state.merged,
    );
    let id = STACKS.intern(&state.merged[..len]);
    if count <= RECENT_MERGE_FRAMES {
        let recent = &mut state.recent[slot];
        recent.native = native;
        recent.len = count as u32;
        recent.id = id;
        recent.ends = ends;
        recent.words[..count].copy_from_slice(&state.words[..count]);
    }
    id
}

/// An address the interpreter could have stored as a pointer to one of its objects.
#[inline(always)]
fn plausible(address: u64) -> bool {
    (0x1_0000..(1 << 47)).contains(&address) && address.is_multiple_of(8)
}

/// Read a `T` at `address` (a field of one of the interpreter's own structures).
///
/// # Safety
/// `address` lies in a live structure of the interpreter that this thread may read (its own
/// thread state and frames, a code object one of its frames runs, that code's strings).
#[inline(always)]
unsafe fn read<T: Copy>(address: u64) -> T {
    // SAFETY: the caller's promise.
    unsafe { core::ptr::read_unaligned(address as *const T) }
}

/// Walk the calling thread's Python frames into `state.words`; how many.
fn walk(runtime: &Runtime, tstate: usize, state: &mut ThreadPython) -> usize {
    let layout = &runtime.layout;
    let tstate = tstate as u64;
    // SAFETY: every read here is of the interpreter's own structures that this thread may
    // read. The thread state is this thread's own, alive while it runs (the interpreter
    // deletes it only from this thread, or after the thread ended); its frames are this
    // thread's, linked and unlinked only by this thread, so none can change or go away during
    // this call. Each pointer read is checked to be plausible before it is followed, and each
    // code object's type before its fields are read.
    unsafe {
        let mut frame: u64 = read(tstate + layout.tstate_frame as u64);
        if let Some(current) = layout.cframe_current {
            if !plausible(frame) {
                return 0;
            }
            frame = read(frame + current as u64);
        }
        let mut count = 0;
        let mut steps = 0;
        while plausible(frame) && count < MAX_PYTHON_FRAMES && steps < 4 * MAX_PYTHON_FRAMES {
            steps += 1;
            let previous: u64 = read(frame + layout.frame_previous as u64);
            let owner: u8 = match layout.frame_owner {
                Some(at) => read(frame + at as u64),
                None => 0,
            };
            if layout.model == FrameModel::CStackShim && owner == OWNED_BY_CSTACK {
                // The shim of an evaluation call: the frame before it was that call's first.
                if count > 0 {
                    state.group_ends[count - 1] = true;
                }
                frame = previous;
                continue;
            }
            let code: u64 = read(frame + layout.frame_code as u64);
            if !plausible(code) || read::<u64>(code + 8) != runtime.code_type as u64 {
                frame = previous;
                continue;
            }
            let offset = match layout.code_bytecode {
                None => {
                    let lasti: i32 = read(frame + layout.frame_instruction as u64);
                    let lasti = lasti.max(0) as u64;
                    // 3.9 counts bytes, 3.10 code units.
                    if layout.minor == 9 {
                        lasti / 2
                    } else {
                        lasti
                    }
                }
                Some(bytecode) => {
                    let instruction: u64 = read(frame + layout.frame_instruction as u64);
                    let start = code + bytecode as u64;
                    if let Some(first) = layout.code_first_traceable {
                        let first_traceable: i32 = read(code + first as u64);
                        if owner != OWNED_BY_GENERATOR
                            && instruction < start + 2 * first_traceable.max(0) as u64
                        {
                            // An incomplete frame (not started yet): no frame of the stack.
                            frame = previous;
                            continue;
                        }
                    }
                    instruction.saturating_sub(start) / 2
                }
            };
            let is_entry = match (layout.model, layout.frame_is_entry) {
                (FrameModel::FrameObjects, _) => true,
                (FrameModel::EntryFlag, Some(at)) => read::<u8>(frame + at as u64) != 0,
                _ => false,
            };
            let id = code_id(runtime, code, state);
            if id != 0 {
                state.words[count] = ((FrameKind::Python as u64) << tagged::KIND_SHIFT)
                    | tagged::PYTHON_CODE
                    | ((id as u64 & tagged::CODE_MASK) << tagged::CODE_SHIFT)
                    | offset.min(tagged::OFFSET_MASK);
                state.group_ends[count] = is_entry;
                count += 1;
            } else if is_entry && count > 0 {
                state.group_ends[count - 1] = true;
            }
            frame = previous;
        }
        count
    }
}

/// Merge `native` (return addresses, innermost first) with the Python frames `python` into
/// `out`; the merged length. Each frame inside the evaluation function gives way to the
/// Python frames of its call (up to the next group end); without `keep_native`, frames of
/// the interpreter, and of the C library outward of the outermost Python frame (the thread's
/// start), are left out. Python frames left when the native frames end (a walk cut short) go
/// last.
fn merge(
    runtime: &Runtime,
    native: &[u64],
    python: &[u64],
    group_ends: &[bool],
    keep_native: bool,
    out: &mut [u64],
) -> usize {
    let within = |range: (u64, u64), address: u64| range.0 < address && address <= range.1;
    let mut len = 0;
    let mut push = |word: u64, len: &mut usize| {
        if *len < out.len() {
            out[*len] = word;
            *len += 1;
        }
    };
    let mut next = 0;
    for &address in native {
        // A return address points just after its call: compare with (start, end].
        if within(runtime.eval, address) {
            while next < python.len() {
                push(python[next], &mut len);
                next += 1;
                if group_ends[next - 1] {
                    break;
                }
            }
            if keep_native {
                push(address, &mut len);
            }
            continue;
        }
        if !keep_native
            && (within(runtime.interpreter, address)
                || within(runtime.launcher, address)
                || (next == python.len() && within(runtime.libc, address)))
        {
            continue;
        }
        push(address, &mut len);
    }
    for &word in &python[next..] {
        push(word, &mut len);
    }
    len
}

// ---------------------------------------------------------------------------------------
// The code table

const MAX_CODES: usize = 1 << 20;
const CODE_BYTES: usize = 1 << 30;
/// Longest name or file name copied (characters past it are cut).
const MAX_TEXT: usize = 1024;
/// Longest line table copied (a longer one is left empty: its lines are unknown).
const MAX_LINE_TABLE: usize = 1 << 20;

/// One code object, as copied when first seen.
#[repr(C)]
pub(crate) struct CodeRecord {
    pub address: u64,
    /// What tells this code object from a later one at the same address.
    filename: u64,
    name: u64,
    line_table: u64,
    pub first_line: u32,
    ready: AtomicU32,
    /// Where its texts are in the byte store: name, then file, then line table.
    bytes_at: u64,
    name_len: u32,
    file_len: u32,
    line_table_len: u32,
    _pad: u32,
}

#[derive(Clone, Copy)]
#[repr(C)]
struct CodeSlot {
    hash: u64,
    address: u64,
    id: u32,
    _pad: u32,
}

impl TableSlot for CodeSlot {
    const EMPTY: CodeSlot = CodeSlot {
        hash: 0,
        address: 0,
        id: 0,
        _pad: 0,
    };
    const INITIAL_SLOTS: usize = 1024;

    fn is_empty(&self) -> bool {
        self.id == 0
    }

    fn hash(&self) -> u64 {
        self.hash
    }
}

struct CodeTable {
    index: ShardedTable<CodeSlot, 16>,
    records: AtomicUsize,
    bytes: AtomicUsize,
    bytes_used: AtomicU64,
    /// Ids are 1-based; the next one to give.
    next_id: AtomicU32,
    init_lock: SpinLock<()>,
}

static CODES: CodeTable = CodeTable {
    index: ShardedTable::new(),
    records: AtomicUsize::new(0),
    bytes: AtomicUsize::new(0),
    bytes_used: AtomicU64::new(0),
    next_id: AtomicU32::new(1),
    init_lock: SpinLock::new(()),
};

impl CodeTable {
    fn storage(&self) -> Option<(*mut CodeRecord, *mut u8)> {
        let records = self.records.load(Ordering::Acquire);
        if records != 0 {
            return Some((
                records as *mut CodeRecord,
                self.bytes.load(Ordering::Acquire) as _,
            ));
        }
        let _guard = self.init_lock.lock();
        if self.records.load(Ordering::Acquire) == 0 {
            let bytes = sys::map_anonymous(CODE_BYTES, true);
            let records = sys::map_anonymous(MAX_CODES * core::mem::size_of::<CodeRecord>(), true);
            if bytes.is_null() || records.is_null() {
                return None;
            }
            self.bytes.store(bytes as usize, Ordering::Release);
            self.records.store(records as usize, Ordering::Release);
        }
        Some((
            self.records.load(Ordering::Acquire) as *mut CodeRecord,
            self.bytes.load(Ordering::Acquire) as *mut u8,
        ))
    }

    /// The record of code id `id`, if it is ready.
    pub(crate) fn record(&self, id: u32) -> Option<&'static CodeRecord> {
        let records = self.records.load(Ordering::Acquire) as *const CodeRecord;
        if records.is_null() || id == 0 || id as usize >= MAX_CODES {
            return None;
        }
        // SAFETY: ids below MAX_CODES index the mapped record array; a record is read only
        // once its `ready` flag (set with Release after it was written) is seen.
        let record = unsafe { &*records.add(id as usize) };
        (record.ready.load(Ordering::Acquire) != 0).then_some(record)
    }
}

/// The fields that tell a code object from another at the same address.
fn identity(layout: &Layout, code: u64) -> (u64, u64, u64, u32) {
    // SAFETY: `code` is a live code object (its type was checked by the caller).
    unsafe {
        (
            read(code + layout.code_filename as u64),
            read(code + layout.code_name as u64),
            read(code + layout.code_line_table as u64),
            read(code + layout.code_first_line as u64),
        )
    }
}

fn matches(record: &CodeRecord, identity: (u64, u64, u64, u32)) -> bool {
    (
        record.filename,
        record.name,
        record.line_table,
        record.first_line,
    ) == identity
}

/// The id of code object `code`, copying it into the table when first seen; 0 if the table
/// is full or cannot be mapped.
fn code_id(runtime: &Runtime, code: u64, state: &mut ThreadPython) -> u32 {
    let layout = &runtime.layout;
    let seen = identity(layout, code);
    let slot = ((code >> 4) as usize) % CODE_CACHE;
    let cached = state.codes[slot];
    if cached.code == code && cached.identity == seen && cached.id != 0 {
        return cached.id;
    }
    let hash = code.wrapping_mul(0x9e37_79b9_7f4a_7c15) | 1;
    let mut shard = CODES.index.shard(hash);
    if !shard.ensure_slots() {
        return 0;
    }
    let found = shard
        .find(hash, |s| s.address == code)
        .map(|s| s.id)
        .filter(|&id| CODES.record(id).is_some_and(|r| matches(r, seen)));
    let id = match found {
        Some(id) => id,
        None => {
            let id = copy_code(runtime, code, seen);
            if id != 0 {
                let new = CodeSlot {
                    hash,
                    address: code,
                    id,
                    _pad: 0,
                };
                shard.insert_or_replace(hash, new, |s| s.address == code);
            }
            id
        }
    };
    drop(shard);
    if id != 0 {
        state.codes[slot] = CachedCode {
            code,
            identity: seen,
            id,
        };
    }
    id
}

/// Copy a code object into the table; its id (0 if full).
fn copy_code(runtime: &Runtime, code: u64, seen: (u64, u64, u64, u32)) -> u32 {
    let Some((records, bytes)) = CODES.storage() else {
        return 0;
    };
    let id = CODES.next_id.fetch_add(1, Ordering::Relaxed);
    if id as usize >= MAX_CODES {
        return 0;
    }
    let (filename, name, line_table, first_line) = seen;
    let mut name_buf = [0u8; 4 * MAX_TEXT];
    let mut file_buf = [0u8; 4 * MAX_TEXT];
    let name_len = copy_text(runtime, name, &mut name_buf);
    let file_len = copy_text(runtime, filename, &mut file_buf);
    let (table_ptr, table_len) = bytes_of(runtime, line_table);
    let table_len = if table_len > MAX_LINE_TABLE {
        0
    } else {
        table_len
    };
    let total = name_len + file_len + table_len;
    let at = CODES.bytes_used.fetch_add(total as u64, Ordering::Relaxed);
    let (name_len, file_len, table_len) = if at as usize + total > CODE_BYTES {
        (0, 0, 0)
    } else {
        (name_len, file_len, table_len)
    };
    // SAFETY: `[at, at + total)` was reserved in the byte store above (inside its mapping,
    // checked), for this record alone; the record slot `id` is this call's alone (from
    // `next_id`), inside the record mapping; the line table's bytes are the live bytes
    // object's, `table_len` long.
    unsafe {
        let dst = bytes.add(at as usize);
        core::ptr::copy_nonoverlapping(name_buf.as_ptr(), dst, name_len);
        core::ptr::copy_nonoverlapping(file_buf.as_ptr(), dst.add(name_len), file_len);
        if table_len > 0 {
            core::ptr::copy_nonoverlapping(
                table_ptr as *const u8,
                dst.add(name_len + file_len),
                table_len,
            );
        }
        let record = &mut *records.add(id as usize);
        record.address = code;
        record.filename = filename;
        record.name = name;
        record.line_table = line_table;
        record.first_line = first_line;
        record.bytes_at = at;
        record.name_len = name_len as u32;
        record.file_len = file_len as u32;
        record.line_table_len = table_len as u32;
        record.ready.store(1, Ordering::Release);
    }
    id
}

/// A `bytes` object's data and length ((0, 0) if it is not one).
fn bytes_of(runtime: &Runtime, object: u64) -> (u64, usize) {
    let layout = &runtime.layout;
    // SAFETY: a field of a live code object points at a live object; its type is checked
    // before its size is read.
    unsafe {
        if !plausible(object) || read::<u64>(object + 8) != runtime.bytes_type as u64 {
            return (0, 0);
        }
        let size: i64 = read(object + layout.bytes_size as u64);
        (object + layout.bytes_data as u64, size.max(0) as usize)
    }
}

/// A `str` object's text as UTF-8 into `out` (at most [`MAX_TEXT`] characters); its length.
/// "?" for anything but a compact string (which every code object's names are).
fn copy_text(runtime: &Runtime, object: u64, out: &mut [u8; 4 * MAX_TEXT]) -> usize {
    let layout = &runtime.layout;
    // SAFETY: a field of a live code object points at a live object; its type is checked
    // before its fields are read, and characters are read only up to its length.
    unsafe {
        if !plausible(object) || read::<u64>(object + 8) != runtime.unicode_type as u64 {
            out[0] = b'?';
            return 1;
        }
        let length =
            (read::<i64>(object + layout.unicode_length as u64).max(0) as usize).min(MAX_TEXT);
        let state: u32 = read(object + layout.unicode_state as u64);
        let (kind, compact, ascii) = ((state >> 2) & 7, (state >> 5) & 1, (state >> 6) & 1);
        if compact == 0 {
            out[0] = b'?';
            return 1;
        }
        let data = object
            + if ascii != 0 {
                layout.unicode_ascii_size
            } else {
                layout.unicode_compact_size
            } as u64;
        let mut len = 0;
        for i in 0..length as u64 {
            let c = match kind {
                1 => read::<u8>(data + i) as u32,
                2 => read::<u16>(data + 2 * i) as u32,
                4 => read::<u32>(data + 4 * i),
                _ => b'?' as u32,
            };
            let c = char::from_u32(c).unwrap_or(char::REPLACEMENT_CHARACTER);
            len += c.encode_utf8(&mut out[len..]).len();
        }
        len
    }
}

/// Codes `first..` that are ready, in id order, for the writer (stops at the first one not
/// ready yet): (id, address, first line, name, file, line table).
pub(crate) fn ready_codes(first: u32) -> impl Iterator<Item = (u32, &'static CodeRecord)> {
    let end = CODES.next_id.load(Ordering::Acquire).min(MAX_CODES as u32);
    (first.max(1)..end).map_while(|id| CODES.record(id).map(|record| (id, record)))
}

/// A record's name, file and line table.
pub(crate) fn texts(record: &CodeRecord) -> (&'static [u8], &'static [u8], &'static [u8]) {
    let bytes = CODES.bytes.load(Ordering::Acquire) as *const u8;
    let (n, f, t) = (
        record.name_len as usize,
        record.file_len as usize,
        record.line_table_len as usize,
    );
    // SAFETY: the record is ready, so its bytes were written and never change again.
    unsafe {
        let at = bytes.add(record.bytes_at as usize);
        (
            core::slice::from_raw_parts(at, n),
            core::slice::from_raw_parts(at.add(n), f),
            core::slice::from_raw_parts(at.add(n + f), t),
        )
    }
}

/// The version found, for the `Runtime` chunks.
pub(crate) fn version() -> u32 {
    EVENTS.version.load(Ordering::Relaxed)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::Path;
    use std::process::Command;
    use std::string::{String, ToString};
    use std::vec::Vec;

    /// Prints, for the interpreter whose headers it is compiled with, every offset a
    /// [`Layout`] holds (with `Py_BUILD_CORE`, for the internal frame structures).
    const OFFSETS_PROGRAM: &str = r#"
#define Py_BUILD_CORE 1
#include <Python.h>
#include <stddef.h>
#include <stdio.h>
#if PY_VERSION_HEX >= 0x030b0000
#include "internal/pycore_frame.h"
#include "internal/pycore_code.h"
#else
#include "frameobject.h"
#endif
#if PY_VERSION_HEX >= 0x030d0000
#include "internal/pycore_runtime.h"
#endif
#define P(name, expr) printf("%s %zu\n", name, (size_t)(expr))
int main(void) {
  P("minor", PY_MINOR_VERSION);
  P("unicode_length", offsetof(PyASCIIObject, length));
  P("unicode_state", offsetof(PyASCIIObject, state));
  P("unicode_ascii_size", sizeof(PyASCIIObject));
  P("unicode_compact_size", sizeof(PyCompactUnicodeObject));
  P("bytes_size", offsetof(PyVarObject, ob_size));
  P("bytes_data", offsetof(PyBytesObject, ob_sval));
  P("code_filename", offsetof(PyCodeObject, co_filename));
  P("code_first_line", offsetof(PyCodeObject, co_firstlineno));
#if PY_VERSION_HEX < 0x030a0000
  P("code_line_table", offsetof(PyCodeObject, co_lnotab));
#else
  P("code_line_table", offsetof(PyCodeObject, co_linetable));
#endif
#if PY_VERSION_HEX < 0x030b0000
  P("code_name", offsetof(PyCodeObject, co_name));
  P("tstate_frame", offsetof(PyThreadState, frame));
  P("frame_previous", offsetof(PyFrameObject, f_back));
  P("frame_code", offsetof(PyFrameObject, f_code));
  P("frame_instruction", offsetof(PyFrameObject, f_lasti));
#else
  P("code_name", offsetof(PyCodeObject, co_qualname));
  P("code_bytecode", offsetof(PyCodeObject, co_code_adaptive));
  P("frame_previous", offsetof(_PyInterpreterFrame, previous));
  P("frame_owner", offsetof(_PyInterpreterFrame, owner));
#endif
#if PY_VERSION_HEX >= 0x030b0000 && PY_VERSION_HEX < 0x030d0000
  P("code_first_traceable", offsetof(PyCodeObject, _co_firsttraceable));
  P("tstate_frame", offsetof(PyThreadState, cframe));
  P("cframe_current", offsetof(_PyCFrame, current_frame));
  P("frame_code", offsetof(_PyInterpreterFrame, f_code));
  P("frame_instruction", offsetof(_PyInterpreterFrame, prev_instr));
#endif
#if PY_VERSION_HEX >= 0x030b0000 && PY_VERSION_HEX < 0x030c0000
  P("frame_is_entry", offsetof(_PyInterpreterFrame, is_entry));
#endif
#if PY_VERSION_HEX >= 0x030d0000
  P("tstate_frame", offsetof(PyThreadState, current_frame));
  P("frame_code", offsetof(_PyInterpreterFrame, f_executable));
  P("frame_instruction", offsetof(_PyInterpreterFrame, instr_ptr));
  P("debug.runtime_size", sizeof(_Py_DebugOffsets));
#endif
  return 0;
}
"#;

    fn layout_fields(layout: &Layout) -> Vec<(&'static str, Option<usize>)> {
        vec![
            ("minor", Some(layout.minor as usize)),
            ("unicode_length", Some(layout.unicode_length)),
            ("unicode_state", Some(layout.unicode_state)),
            ("unicode_ascii_size", Some(layout.unicode_ascii_size)),
            ("unicode_compact_size", Some(layout.unicode_compact_size)),
            ("bytes_size", Some(layout.bytes_size)),
            ("bytes_data", Some(layout.bytes_data)),
            ("code_filename", Some(layout.code_filename)),
            ("code_first_line", Some(layout.code_first_line)),
            ("code_line_table", Some(layout.code_line_table)),
            ("code_name", Some(layout.code_name)),
            ("code_bytecode", layout.code_bytecode),
            ("code_first_traceable", layout.code_first_traceable),
            ("tstate_frame", Some(layout.tstate_frame)),
            ("cframe_current", layout.cframe_current),
            ("frame_previous", Some(layout.frame_previous)),
            ("frame_code", Some(layout.frame_code)),
            ("frame_instruction", Some(layout.frame_instruction)),
            ("frame_owner", layout.frame_owner),
            ("frame_is_entry", layout.frame_is_entry),
        ]
    }

    /// The header directories of the interpreters on this machine.
    fn include_dirs() -> Vec<String> {
        let mut dirs = Vec::new();
        for minor in 9..=13 {
            let debian = std::format!("/usr/include/python3.{minor}");
            if Path::new(&debian).join("internal").is_dir() {
                dirs.push(debian);
            }
        }
        if let Ok(entries) = std::fs::read_dir("/root/.pyenv/versions") {
            for entry in entries.flatten() {
                let name = entry.file_name().to_string_lossy().into_owned();
                let Some(minor) = name.strip_prefix("3.").and_then(|r| r.split('.').next()) else {
                    continue;
                };
                let dir = std::format!("{}/include/python3.{minor}", entry.path().display());
                if (9..=13).contains(&minor.parse::<u32>().unwrap_or(0))
                    && Path::new(&dir).join("internal").is_dir()
                {
                    dirs.push(dir);
                }
            }
        }
        dirs.sort();
        dirs
    }

    /// The offsets table of each version matches the interpreter's own headers (and 3.13's,
    /// read from its published debug offsets, too): every interpreter with headers here is
    /// compiled against; one missing is skipped with a message.
    #[test]
    fn layouts_match_the_interpreters_headers() {
        let dirs = include_dirs();
        if dirs.is_empty() {
            std::eprintln!("skipped: no CPython 3.9-3.13 headers with internal/ on this machine");
            return;
        }
        let work =
            std::env::temp_dir().join(std::format!("leakscope-layouts-{}", std::process::id()));
        std::fs::create_dir_all(&work).unwrap();
        let source = work.join("offsets.c");
        std::fs::write(&source, OFFSETS_PROGRAM).unwrap();
        let mut minors_seen = Vec::new();
        for dir in &dirs {
            let binary = work.join("offsets");
            let status = Command::new("gcc")
                .arg(std::format!("-I{dir}"))
                .arg(&source)
                .arg("-o")
                .arg(&binary)
                .status();
            let Ok(status) = status else {
                std::eprintln!("skipped: no gcc");
                return;
            };
            assert!(
                status.success(),
                "offsets program did not compile with {dir}"
            );
            let output = Command::new(&binary).output().unwrap();
            let text = String::from_utf8(output.stdout).unwrap();
            let printed: Vec<(String, usize)> = text
                .lines()
                .map(|line| {
                    let (name, value) = line.split_once(' ').unwrap();
                    (name.to_string(), value.parse().unwrap())
                })
                .collect();
            let minor = printed[0].1 as u8;
            let layout = if minor == 13 {
                // The layout read from a real `_Py_DebugOffsets` (the interpreter's library
                // holds one, initialised, at the start of `_PyRuntime`): see below.
                debug_offsets_layout(dir)
            } else {
                layout_of(minor).expect("a table for every version 3.9-3.12")
            };
            let expected = layout_fields(&layout);
            for (name, value) in printed.iter().filter(|(n, _)| !n.starts_with("debug.")) {
                let ours = expected
                    .iter()
                    .find(|(field, _)| field == name)
                    .unwrap_or_else(|| panic!("no field {name}"))
                    .1;
                assert_eq!(ours, Some(*value), "3.{minor} ({dir}): {name}");
            }
            for (field, ours) in &expected {
                if ours.is_some() {
                    assert!(
                        printed.iter().any(|(name, _)| name == field),
                        "3.{minor}: the table has {field}, the headers do not"
                    );
                }
            }
            minors_seen.push(minor);
        }
        std::eprintln!("layouts checked for Python 3 minor versions {minors_seen:?}");
        let _ = std::fs::remove_dir_all(&work);
    }

    /// 3.13's layout as [`layout_from_debug_offsets`] reads it from the `_PyRuntime` of the
    /// interpreter whose headers are in `include_dir` (its library is `../../lib`).
    fn debug_offsets_layout(include_dir: &str) -> Layout {
        let prefix = Path::new(include_dir).parent().unwrap().parent().unwrap();
        let library = prefix.join("lib/libpython3.13.so.1.0");
        assert!(library.exists(), "no {}", library.display());
        let path = std::ffi::CString::new(library.to_str().unwrap()).unwrap();
        // SAFETY: loads the interpreter's library (its constructors do nothing) and looks up
        // its runtime state, whose debug offsets are initialised statically.
        unsafe {
            let handle = libc::dlopen(path.as_ptr(), libc::RTLD_NOW | libc::RTLD_LOCAL);
            assert!(!handle.is_null());
            let runtime = libc::dlsym(handle, c"_PyRuntime".as_ptr()) as usize;
            assert_ne!(runtime, 0);
            layout_from_debug_offsets(runtime).expect("3.13's debug offsets")
        }
    }

    #[test]
    fn merge_replaces_evaluation_frames_and_drops_the_interpreters() {
        let runtime = Runtime {
            layout: layout_of(11).unwrap(),
            is_initialized: {
                extern "C" fn yes() -> i32 {
                    1
                }
                yes
            },
            this_thread_state: {
                extern "C" fn none() -> usize {
                    0
                }
                none
            },
            add_pending_call: None,
            get_allocator: None,
            set_allocator: None,
            code_type: 0,
            unicode_type: 0,
            bytes_type: 0,
            eval: (0x1000, 0x2000),
            interpreter: (0x1000, 0x9000),
            launcher: (0x100, 0x200),
            libc: (0x7000_0000, 0x7100_0000),
        };
        let py =
            |n: u64| ((FrameKind::Python as u64) << tagged::KIND_SHIFT) | tagged::PYTHON_CODE | n;
        // malloc's caller in a C extension, then the evaluation loop running two inlined
        // Python frames, interpreter frames, a second evaluation call, and the thread's start.
        let native = [0xa000_0010, 0x1500, 0x3000, 0x1600, 0x7000_0100, 0x150];
        let python = [py(1), py(2), py(3)];
        let ends = [false, true, true];
        let mut out = [0u64; 16];
        let len = merge(&runtime, &native, &python, &ends, false, &mut out);
        assert_eq!(&out[..len], &[0xa000_0010, py(1), py(2), py(3)]);
        let len = merge(&runtime, &native, &python, &ends, true, &mut out);
        assert_eq!(
            &out[..len],
            &[
                0xa000_0010,
                py(1),
                py(2),
                0x1500,
                0x3000,
                py(3),
                0x1600,
                0x7000_0100,
                0x150
            ]
        );
        // A walk cut short: the Python frames it did not reach go last.
        let len = merge(&runtime, &native[..2], &python, &ends, false, &mut out);
        assert_eq!(&out[..len], &[0xa000_0010, py(1), py(2), py(3)]);
    }
}
