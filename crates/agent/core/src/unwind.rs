//! Stack capture: DWARF CFI unwinding of the calling thread, in process, with framehop.
//!
//! Debian's glibc and libstdc++ are built without frame pointers, so a frame-pointer walk
//! would lose every caller of code that passes through them; CFI from `.eh_frame` does not.
//! framehop caches the unwind rule per return address, so a warm walk is a few table look-ups
//! and stack reads per frame.

use alloc::boxed::Box;
use core::ptr;
use core::sync::atomic::Ordering;

use framehop::{FrameAddress, MustNotAllocateDuringUnwind, Unwinder};

use leakscope_format::StackId;

use crate::modules::MODULES;
use crate::stacks::STACKS;
use crate::thread;

/// framehop's per-thread cache (rule cache and DWARF evaluation space).
pub type UnwindCache = framehop::CacheNative<MustNotAllocateDuringUnwind>;

/// The most frames any stack may have (`--max-frames` is clamped to this).
pub const MAX_FRAMES_LIMIT: usize = 256;

/// Most unwinding steps a walk records (agent frames included).
const MAX_STEPS: usize = MAX_FRAMES_LIMIT + 16;

/// One unwinding step: the return address found, and the stack and frame pointers of the
/// frame it returns into (the stack pointer is the CFA of the frame unwound; the return
/// address was read from the 8 bytes below it).
#[derive(Clone, Copy, Default, PartialEq, Eq)]
struct Step {
    return_address: u64,
    sp: u64,
    bp: u64,
}

/// Recent stacks remembered per thread, to find a stack's id without the global table's lock.
const RECENT_STACKS: usize = 64;

/// What a thread keeps between stack captures.
pub struct ThreadCapture {
    unwind_cache: UnwindCache,
    /// The walks of `malloc`'s blocks.
    native: WalkHistory,
    /// What a thread of a process with a language runtime keeps besides (mapped at its first
    /// capture that needs it: a program without one pays no memory for it).
    runtime: Option<Box<RuntimeCapture>>,
}

/// The per-thread state of captures in a process with a language runtime.
struct RuntimeCapture {
    /// The walks of a runtime's objects (few frames, see `python::OBJECT_NATIVE_FRAMES`):
    /// kept apart, so that each kind of walk is matched against its own kind's previous one.
    objects: WalkHistory,
    /// Recent walks of objects, by their first frame (see [`recent_object_walk`]).
    object_walks: [RecentWalk; RECENT_OBJECT_WALKS],
    /// The thread's Python frames and code cache (see [`crate::python`]).
    python: crate::python::ThreadPython,
}

impl RuntimeCapture {
    /// A new one, made in place on the heap (it is tens of kilobytes: a thread's stack, where
    /// a hook may run with little room, never holds it).
    fn new_boxed() -> Option<Box<RuntimeCapture>> {
        let layout = core::alloc::Layout::new::<RuntimeCapture>();
        // SAFETY: the layout is of a type of non-zero size.
        let memory = unsafe { alloc::alloc::alloc_zeroed(layout) } as *mut RuntimeCapture;
        if memory.is_null() {
            return None;
        }
        // SAFETY: `memory` was allocated by the global allocator with this type's layout, and
        // every field is made of integers, booleans and arrays of them (walk steps, stack ids,
        // code cache entries), for which all-zero bytes are valid values, and zero is each
        // one's initial state (`WalkHistory::new`; an empty `RecentWalk` has length 0; an
        // empty code cache entry or remembered merge has id 0).
        Some(unsafe { Box::from_raw(memory) })
    }
}

/// Object walks remembered per thread.
const RECENT_OBJECT_WALKS: usize = 64;
/// Most steps a remembered object walk has.
const RECENT_WALK_STEPS: usize = 12;

/// A walk remembered whole: its steps and the stack id they gave.
#[derive(Clone, Copy)]
struct RecentWalk {
    steps: [Step; RECENT_WALK_STEPS],
    len: usize,
    id: StackId,
}

/// One kind of walk's history: the previous walk and what it gave.
struct WalkHistory {
    /// Two walks: the previous one (read while matching) and the one being recorded.
    walks: [[Step; MAX_STEPS]; 2],
    lengths: [usize; 2],
    /// The walk ended because it hit the frame limit, not the end of the stack.
    truncated: [bool; 2],
    /// The walk met a return address outside every known module.
    outside: [bool; 2],
    /// The frames each walk produced (agent frames left out), and their stack ids.
    outputs: [[u64; MAX_FRAMES_LIMIT]; 2],
    output_lengths: [usize; 2],
    output_ids: [StackId; 2],
    /// (hash, id) of recently interned stacks, indexed by hash.
    recent: [(u64, StackId); RECENT_STACKS],
    /// Stack ids by (previous stack, new innermost frames): see [`Walk::Patched`].
    transitions: [Transition; TRANSITIONS],
    previous: usize,
}

impl WalkHistory {
    fn new() -> Self {
        WalkHistory {
            walks: [[Step::default(); MAX_STEPS]; 2],
            lengths: [0; 2],
            truncated: [false; 2],
            outside: [false; 2],
            outputs: [[0; MAX_FRAMES_LIMIT]; 2],
            output_lengths: [0; 2],
            output_ids: [0; 2],
            recent: [(0, 0); RECENT_STACKS],
            transitions: [Transition::default(); TRANSITIONS],
            previous: 0,
        }
    }
}

/// Transitions remembered per thread.
const TRANSITIONS: usize = 64;
/// Innermost frames a transition can replace.
const TRANSITION_FRAMES: usize = 4;

/// "After stack `from`, a walk that replaced its first `count` frames by `frames` is stack `to`."
/// The previous stack's id fixes everything but those frames, so a hit needs no comparison.
#[derive(Clone, Copy, Default)]
struct Transition {
    from: StackId,
    count: u8,
    frames: [u64; TRANSITION_FRAMES],
    to: StackId,
}

extern "C" {
    /// Set by the dynamic linker: the stack pointer at process entry, i.e. just below argc.
    static __libc_stack_end: *const u8;
}

/// The program's frame at its call of an allocation function, as the agent's entry point
/// found it on entry (see the agent's `hooks`): the walk starts here, so that none of the
/// agent's own frames is unwound.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct CallerFrame {
    /// The return address into the program: the stack's first frame.
    pub return_address: u64,
    /// The program's stack pointer once the call returns: the entry point's CFA (its stack
    /// pointer on entry + 8). Stack reads are bounded below by it.
    pub sp: u64,
    /// The frame pointer on entry: the program's (rbp is callee-saved, so the call did not
    /// change it). framehop's initial frame pointer; in code without frame pointers it is an
    /// ordinary register value, which the CFI rules then do not use.
    pub bp: u64,
}

/// Capture the calling thread's stack from `caller` up (at most `max_frames` frames, the
/// agent's own left out) and return its stack id.
///
/// `caller` must be a frame of the calling thread that is live for the whole call (the
/// program's frame that called the agent's entry point): the walk reads the stack above
/// `caller.sp`.
///
/// Must be called inside a [`thread::AgentSection`]: it may allocate (the first time a thread
/// unwinds, for its cache).
///
/// `object`: the allocation is an object of a runtime's own allocator, whose walks are
/// matched against their own history (see [`RuntimeCapture::objects`]).
#[inline(never)]
pub fn capture_stack(max_frames: usize, caller: CallerFrame, object: bool) -> StackId {
    let Some(capture) = thread_capture() else {
        return 0;
    };
    if !object && !crate::python::present() {
        return capture_native_stack(
            &mut capture.unwind_cache,
            &mut capture.native,
            max_frames,
            caller,
        );
    }
    if capture.runtime.is_none() {
        let _errno = crate::sys::ErrnoGuard::new(); // the allocation may set it
        capture.runtime = RuntimeCapture::new_boxed();
    }
    let Some(runtime) = capture.runtime.as_deref_mut() else {
        // No memory for it: the native stack only.
        return capture_native_stack(
            &mut capture.unwind_cache,
            &mut capture.native,
            max_frames,
            caller,
        );
    };
    let native = if object {
        match recent_object_walk(runtime, caller) {
            Some(id) => id,
            None => {
                let id = capture_native_stack(
                    &mut capture.unwind_cache,
                    &mut runtime.objects,
                    max_frames,
                    caller,
                );
                remember_object_walk(runtime, caller, id);
                id
            }
        }
    } else {
        capture_native_stack(
            &mut capture.unwind_cache,
            &mut capture.native,
            max_frames,
            caller,
        )
    };
    crate::python::with_python_frames(&mut runtime.python, native)
}

/// The stack id of an object allocation whose walk is one remembered: a runtime's objects are
/// made by a few functions (a dict's, a tuple's, a string's constructor...) called, in turn,
/// from the same frame further out, so the previous walk alone rarely matches while one of
/// the last few does. A remembered walk holds if its first frame is `caller` (the same return
/// address at the same stack pointer) and each later return address is still in its stack
/// slot (see [`previous_walk_still_holds`]).
fn recent_object_walk(capture: &RuntimeCapture, caller: CallerFrame) -> Option<StackId> {
    let walk = &capture.object_walks[object_walk_slot(caller)];
    let first = walk.steps[0];
    if walk.len == 0 || first.return_address != caller.return_address || first.sp != caller.sp {
        return None;
    }
    let (_, stack_high) = own_stack();
    let sp = caller.sp;
    let readable = |address: u64| {
        address >= sp && address.saturating_add(8) <= stack_high && address.is_multiple_of(8)
    };
    let steps = &walk.steps[..walk.len];
    (previous_walk_still_holds(steps, 0, first.bp == caller.bp, &readable) == steps.len())
        .then_some(walk.id)
}

fn object_walk_slot(caller: CallerFrame) -> usize {
    ((caller.return_address ^ (caller.sp >> 4)).wrapping_mul(0x9e37_79b9_7f4a_7c15) >> 58) as usize
        % RECENT_OBJECT_WALKS
}

/// Remember the object walk just made (the objects history's current walk), unless it met
/// code of no known module or is too long to keep.
fn remember_object_walk(capture: &mut RuntimeCapture, caller: CallerFrame, id: StackId) {
    let history = &capture.objects;
    let current = history.previous;
    let len = history.lengths[current];
    let slot = object_walk_slot(caller);
    let walk = &mut capture.object_walks[slot];
    if id == 0 || len == 0 || len > RECENT_WALK_STEPS || history.outside[current] {
        walk.len = 0;
        return;
    }
    let steps = &history.walks[current][..len];
    if steps[0].return_address != caller.return_address || steps[0].sp != caller.sp {
        walk.len = 0; // a walk on a foreign stack records no steps
        return;
    }
    walk.steps[..len].copy_from_slice(steps);
    walk.len = len;
    walk.id = id;
}

/// [`capture_stack`]'s native walk: the id of the stack of return addresses.
#[inline(always)]
fn capture_native_stack(
    cache: &mut UnwindCache,
    capture: &mut WalkHistory,
    max_frames: usize,
    caller: CallerFrame,
) -> StackId {
    let max_frames = max_frames.clamp(1, MAX_FRAMES_LIMIT);
    let mut walk = capture_once(cache, capture, max_frames, caller);
    if let Walk::OutsideKnownModules(_) = walk {
        if MODULES.refresh_after_unknown_address() {
            // The walk ended outside every known module: a library was probably just loaded.
            // Forget that walk (its output and id were never recorded, so the retry must not
            // match against it) and walk again, against the previous one.
            capture.previous = 1 - capture.previous;
            walk = capture_once(cache, capture, max_frames, caller);
        }
    }
    let len = match walk {
        Walk::SameAsPrevious => return capture.output_ids[capture.previous],
        Walk::Patched { from, count } => return patched_id(capture, from, count),
        Walk::New(len) | Walk::OutsideKnownModules(len) => len,
    };
    let new = capture.previous; // capture_once made the new walk the previous one
    let old = 1 - new;
    let frames = &capture.outputs[new][..len];
    capture.output_lengths[new] = len;
    let id = if len == capture.output_lengths[old] && frames == &capture.outputs[old][..len] {
        capture.output_ids[old]
    } else {
        let hash = STACKS.hash(frames);
        let slot = &mut capture.recent[(hash as usize) % RECENT_STACKS];
        if slot.0 == hash && slot.1 != 0 && STACKS.frames_of(slot.1) == Some(frames) {
            slot.1
        } else {
            let id = STACKS.intern_hashed(frames, hash);
            *slot = (hash, id);
            id
        }
    };
    capture.output_ids[new] = id;
    id
}

/// The id of the previous walk's output after its first `count` frames were replaced: from
/// the transition table if this change was seen before, else interned (and remembered).
fn patched_id(capture: &mut WalkHistory, from: StackId, count: usize) -> StackId {
    let current = capture.previous;
    let len = capture.output_lengths[current];
    let frames = &capture.outputs[current][..len];
    let changed = &frames[..count.min(len)];
    let usable = changed.len() <= TRANSITION_FRAMES && from != 0;
    let mut key = [0u64; TRANSITION_FRAMES];
    if usable {
        key[..changed.len()].copy_from_slice(changed);
    }
    let slot = (from as usize)
        .wrapping_mul(0x9e37_79b9)
        .wrapping_add(key[0] as usize >> 4)
        % TRANSITIONS;
    if usable {
        let t = capture.transitions[slot];
        if t.from == from && t.count as usize == count && t.frames == key && t.to != 0 {
            capture.output_ids[current] = t.to;
            return t.to;
        }
    }
    let hash = STACKS.hash(frames);
    let recent = &mut capture.recent[(hash as usize) % RECENT_STACKS];
    let id = if recent.0 == hash && recent.1 != 0 && STACKS.frames_of(recent.1) == Some(frames) {
        recent.1
    } else {
        let id = STACKS.intern_hashed(frames, hash);
        *recent = (hash, id);
        id
    };
    if usable {
        capture.transitions[slot] = Transition {
            from,
            count: count as u8,
            frames: key,
            to: id,
        };
    }
    capture.output_ids[current] = id;
    id
}

fn thread_capture() -> Option<&'static mut ThreadCapture> {
    let state = thread::current();
    let mut capture = state.capture.load(Ordering::Relaxed);
    if capture.is_null() {
        let _errno = crate::sys::ErrnoGuard::new();
        capture = Box::into_raw(Box::new(ThreadCapture {
            unwind_cache: UnwindCache::new_in(),
            native: WalkHistory::new(),
            runtime: None,
        }));
        state.capture.store(capture, Ordering::Relaxed);
    }
    // SAFETY: the capture state belongs to this thread alone (created here, never shared),
    // and is used only inside an agent section, which is never re-entered on a thread.
    unsafe { capture.as_mut() }
}

/// What one walk found.
enum Walk {
    /// The stack is exactly the previous walk's (nothing was recorded: the previous walk
    /// and its output and id stand).
    SameAsPrevious,
    /// The stack is the previous walk's with its innermost frames changed (a match at the
    /// same depth): the previous walk and output were patched in place, their first `count`
    /// output frames replaced; `from` is the previous stack's id.
    Patched { from: StackId, count: usize },
    /// A new walk, recorded as the thread's previous walk, with this many output frames.
    New(usize),
    /// As `New`, but the walk ended outside every known module (so that the caller can
    /// refresh the module list and try again).
    OutsideKnownModules(usize),
}

/// One walk, from the program's frame `caller` up.
///
/// The walk's first step is `caller` itself, as the entry point found it: the agent's own
/// frames below it are never unwound. framehop resumes from it as from any step, with its
/// return address (looked up at address - 1, in the call instruction).
///
/// The walk is incremental. framehop unwinds frame by frame (DWARF CFI, with its rule cache)
/// only until it reaches a frame identical to one of the thread's previous walk: the same
/// return address at the same stack pointer with the same frame pointer. The rest of the
/// previous walk is then checked instead of recomputed: each recorded return address must
/// still be in its stack slot (and, where the frame's CFA was its frame pointer, the saved
/// frame pointer in its slot). Nothing is written to the program's stack: there are no
/// return-address trampolines to break exceptions or longjmp.
#[inline(never)] // called twice by `capture_stack`; one copy
fn capture_once(
    cache: &mut UnwindCache,
    capture: &mut WalkHistory,
    max_frames: usize,
    caller: CallerFrame,
) -> Walk {
    let here: u64;
    // SAFETY: copies the stack pointer into a register; no memory is touched.
    unsafe {
        core::arch::asm!(
            "mov {here}, rsp",
            here = out(reg) here,
            options(nomem, nostack, preserves_flags),
        );
    }
    // The program's frame lies above the agent's: anything else is not a frame the walk may
    // start from (and the reads below rely on it).
    if caller.sp < here {
        return empty_walk(capture);
    }
    let sp = caller.sp;
    let Some(modules) = MODULES.read() else {
        return empty_walk(capture);
    };
    let (stack_low, stack_high) = own_stack();
    if !(stack_low <= sp && sp < stack_high) {
        // A coroutine's stack (makecontext, a heap block), a sigaltstack, a stack the program
        // switched to by hand: its bounds are not known, so nothing there is read directly.
        return capture_foreign(cache, capture, max_frames, caller, modules);
    }
    let readable = |address: u64| {
        address >= sp && address.saturating_add(8) <= stack_high && address.is_multiple_of(8)
    };
    let mut read_stack = |address: u64| -> Result<u64, ()> {
        if readable(address) {
            // SAFETY: the address lies between the program's stack pointer at its call (above
            // this function's own, checked above) and the top of this thread's stack: live
            // stack, mapped and readable.
            Ok(unsafe { ptr::read(address as *const u64) })
        } else {
            Err(())
        }
    };
    let old_index = capture.previous;
    let new_index = 1 - old_index;
    let old_len = capture.lengths[old_index];
    let old_truncated = capture.truncated[old_index];
    let old_outside = capture.outside[old_index];
    let [walk_a, walk_b] = &mut capture.walks;
    let (old, new) = if old_index == 0 {
        (&walk_a[..old_len], &mut walk_b[..])
    } else {
        (&walk_b[..old_len], &mut walk_a[..])
    };
    let out = &mut capture.outputs[new_index][..max_frames];
    let (agent_lo, agent_hi) = modules.agent_range;

    // The first step is the program's frame, known without unwinding. framehop's registers
    // are made from it only if the walk needs to unwind further (not when the previous walk
    // matches at once); `address` is set from the first step before framehop first uses it.
    let mut regs: Option<framehop::UnwindRegsNative> = None;
    let mut address = FrameAddress::from_instruction_pointer(caller.return_address);
    let mut first = Some(Step {
        return_address: caller.return_address,
        sp: caller.sp,
        bp: caller.bp,
    });
    let mut steps = 0;
    let mut written = 0;
    let mut truncated = false;
    let mut old_at = 0;
    let mut matching = old_len > 0;
    let mut outside_known = false;
    // Steps were taken over from a previous walk that met an unknown module (they are not
    // checked again here, but the next walk that matches them must check them).
    let mut took_outside = false;
    // The module range that last held a return address: consecutive frames are mostly in
    // one module, and the binary search over every range took a fifth of the walk loop's
    // own samples on stacks that change at outer frames.
    let mut last_module = (0u64, 0u64);
    let mut in_known_module = |address: u64| {
        if last_module.0 <= address && address < last_module.1 {
            return true;
        }
        match modules.range_of(address) {
            Some(range) => {
                last_module = range;
                true
            }
            None => false,
        }
    };
    'walk: while steps < MAX_STEPS {
        let step = match first.take() {
            Some(step) => step,
            None => {
                let regs = regs.get_or_insert_with(|| {
                    framehop::UnwindRegsNative::new(caller.return_address, caller.sp, caller.bp)
                });
                let Ok(Some(return_address)) =
                    modules
                        .unwinder
                        .unwind_frame(address, regs, cache, &mut read_stack)
                else {
                    break;
                };
                Step {
                    return_address,
                    sp: regs.sp(),
                    bp: regs.bp(),
                }
            }
        };
        let return_address = step.return_address;
        let Some(next) = FrameAddress::from_return_address(return_address) else {
            break;
        };
        address = next;
        new[steps] = step;
        steps += 1;
        if !(agent_lo..agent_hi).contains(&return_address) {
            if written == out.len() {
                truncated = true;
                break;
            }
            out[written] = return_address;
            written += 1;
        }
        // The previous walk's step at this stack pointer, if it has one.
        let mut candidate = None;
        if matching {
            while old_at < old.len() && old[old_at].sp < step.sp {
                old_at += 1;
            }
            candidate = old.get(old_at).copied();
            matching = candidate.is_some();
        }
        let Some(candidate) =
            candidate.filter(|c| c.return_address == step.return_address && c.sp == step.sp)
        else {
            // A step the previous walk did not have. framehop unwinds code of a module it
            // does not know with the frame-pointer rule, which may well work, leaving the
            // module unrecorded: notice it here. (A step the previous walk had, or took over
            // from the walk before, was checked when it was first unwound: checked again
            // only if that walk met an unknown module.)
            outside_known |= !in_known_module(return_address);
            continue;
        };
        if old_outside {
            outside_known |= !in_known_module(return_address);
        }
        let same_bp = candidate.bp == step.bp;
        let holds_to = previous_walk_still_holds(old, old_at, same_bp, &readable);
        if holds_to < old.len() {
            // The stack changed above the match (another caller further out). The steps up to
            // `holds_to` still hold: take them, and unwind for real from the last of them
            // (only when the frame pointer matched too, so that its registers are exact).
            if !same_bp || holds_to <= old_at + 1 {
                continue;
            }
            let taken = &old[old_at + 1..holds_to];
            took_outside |= old_outside;
            if !take_steps(
                taken,
                new,
                &mut steps,
                out,
                &mut written,
                (agent_lo, agent_hi),
            ) {
                truncated = written == out.len();
                break 'walk;
            }
            let last = new[steps - 1];
            regs = Some(framehop::UnwindRegsNative::new(
                last.return_address,
                last.sp,
                last.bp,
            ));
            let Some(resume) = FrameAddress::from_return_address(last.return_address) else {
                break;
            };
            address = resume;
            old_at = holds_to;
            continue;
        }
        if old_at + 1 == steps
            && new[..steps]
                .iter()
                .zip(&old[..steps])
                .all(|(a, b)| a.return_address == b.return_address && a.sp == b.sp)
            && capture.output_lengths[old_index] <= max_frames
        {
            // Every step is the previous walk's, at the same depth: the same stack (the usual
            // case in a loop). Keep the previous walk, output and id as they are.
            return Walk::SameAsPrevious;
        }
        let old_output_len = capture.output_lengths[old_index];
        let same_depth = old_at + 1 == steps;
        let old_prefix_outputs = if same_depth {
            old[..steps]
                .iter()
                .filter(|o| !(agent_lo..agent_hi).contains(&o.return_address))
                .count()
        } else {
            usize::MAX
        };
        if same_depth
            && old_prefix_outputs == written
            && old_output_len <= max_frames
            && written <= old_output_len
        {
            // The same depth, other innermost frames (another call site in the same function,
            // say): patch the previous walk and output in place rather than copying the rest.
            let from = capture.output_ids[old_index];
            let (outputs_a, outputs_b) = capture.outputs.split_at_mut(1);
            let (old_out, new_out) = if old_index == 0 {
                (&mut outputs_a[0], &outputs_b[0])
            } else {
                (&mut outputs_b[0], &outputs_a[0])
            };
            old_out[..written].copy_from_slice(&new_out[..written]);
            let (walks_a, walks_b) = capture.walks.split_at_mut(1);
            let (old_walk, new_walk) = if old_index == 0 {
                (&mut walks_a[0], &walks_b[0])
            } else {
                (&mut walks_b[0], &walks_a[0])
            };
            old_walk[..steps].copy_from_slice(&new_walk[..steps]);
            capture.outside[old_index] |= outside_known;
            return Walk::Patched {
                from,
                count: written,
            };
        }
        // The rest of the stack is the previous walk's.
        let taken = &old[old_at + 1..];
        took_outside |= old_outside;
        if !take_steps(
            taken,
            new,
            &mut steps,
            out,
            &mut written,
            (agent_lo, agent_hi),
        ) {
            truncated = written == out.len();
            break 'walk;
        }
        if !old_truncated {
            break;
        }
        // The previous walk stopped at its frame limit; this one has room for more.
        let last = new[steps - 1];
        regs = Some(framehop::UnwindRegsNative::new(
            last.return_address,
            last.sp,
            last.bp,
        ));
        let Some(resume) = FrameAddress::from_return_address(last.return_address) else {
            break;
        };
        address = resume;
        matching = false;
    }
    capture.lengths[new_index] = steps;
    capture.truncated[new_index] = truncated;
    capture.outside[new_index] = outside_known || took_outside;
    capture.previous = new_index;
    if outside_known {
        return Walk::OutsideKnownModules(written);
    }
    Walk::New(written)
}

/// How far above its start a walk on a foreign stack may read (its end is not known).
const FOREIGN_STACK_REACH: u64 = 8 << 20;

/// A walk on a stack that is not the thread's own: every read goes through the kernel
/// (`process_vm_readv`, a window of words at a time), which reports unmapped memory instead of
/// faulting, and reads start at the program's stack pointer or lie in the thread's own stack
/// (where a signal frame on an alternate stack leads back to). The walk is not incremental,
/// and it is recorded as an empty previous walk, so that the next walk (back on the thread's
/// own stack, perhaps) never matches against its steps.
fn capture_foreign(
    cache: &mut UnwindCache,
    capture: &mut WalkHistory,
    max_frames: usize,
    caller: CallerFrame,
    modules: &crate::modules::ModuleTable,
) -> Walk {
    let sp = caller.sp;
    let (own_low, own_high) = own_stack();
    let mut window_start = 0u64;
    let mut window_len = 0usize;
    let mut window = [0u64; 64];
    let mut read_stack = |address: u64| -> Result<u64, ()> {
        let allowed = (address >= sp && address - sp < FOREIGN_STACK_REACH)
            || (own_low <= address && address.saturating_add(8) <= own_high);
        if !allowed || !address.is_multiple_of(8) {
            return Err(());
        }
        if address < window_start || address >= window_start + window_len as u64 * 8 {
            window_start = address;
            window_len = crate::sys::read_words(address, &mut window);
            if window_len == 0 {
                return Err(());
            }
        }
        Ok(window[((address - window_start) / 8) as usize])
    };
    let new_index = 1 - capture.previous;
    let out = &mut capture.outputs[new_index][..max_frames];
    let (agent_lo, agent_hi) = modules.agent_range;
    let mut regs = framehop::UnwindRegsNative::new(caller.return_address, caller.sp, caller.bp);
    let mut return_address = caller.return_address;
    let mut written = 0;
    let mut outside_known = false;
    for _ in 0..MAX_STEPS {
        if !(agent_lo..agent_hi).contains(&return_address) {
            if written == out.len() {
                break;
            }
            out[written] = return_address;
            written += 1;
        }
        outside_known |= !modules.covers(return_address);
        let Some(address) = FrameAddress::from_return_address(return_address) else {
            break;
        };
        match modules
            .unwinder
            .unwind_frame(address, &mut regs, cache, &mut read_stack)
        {
            Ok(Some(next)) => return_address = next,
            _ => break,
        }
    }
    capture.lengths[new_index] = 0;
    capture.truncated[new_index] = false;
    capture.outside[new_index] = false;
    capture.previous = new_index;
    if outside_known {
        return Walk::OutsideKnownModules(written);
    }
    Walk::New(written)
}

/// Record an empty walk (no frames) as the thread's previous one, so that the previous walk's
/// steps and its output, which `capture_stack` then sets, stay consistent.
fn empty_walk(capture: &mut WalkHistory) -> Walk {
    let new_index = 1 - capture.previous;
    capture.lengths[new_index] = 0;
    capture.truncated[new_index] = false;
    capture.outside[new_index] = false;
    capture.previous = new_index;
    Walk::New(0)
}

/// Append steps taken over from the previous walk to the new walk, and their return addresses
/// (the agent's left out) to the output. False if the walk or the output filled up first.
fn take_steps(
    taken: &[Step],
    new: &mut [Step],
    steps: &mut usize,
    out: &mut [u64],
    written: &mut usize,
    (agent_lo, agent_hi): (u64, u64),
) -> bool {
    for &step in taken {
        if *steps == MAX_STEPS {
            return false;
        }
        new[*steps] = step;
        *steps += 1;
        if !(agent_lo..agent_hi).contains(&step.return_address) {
            if *written == out.len() {
                return false;
            }
            out[*written] = step.return_address;
            *written += 1;
        }
    }
    true
}

/// How far does the part of the previous walk above step `at` still describe the stack? Returns
/// the index of the first step that does not hold (`old.len()` if all do). Each step's
/// return address must still be in its slot, 8 bytes below the step's stack pointer; where
/// the step's CFA was the frame pointer (`sp == previous bp + 16`), the saved frame pointer
/// must still be in its slot 16 bytes below. `same_bp`: the frame pointer at the match point is
/// the previous walk's; if not, the match holds only if no step above used it (in code built
/// without frame pointers, rbp is an ordinary register whose value varies from call to call,
/// and the frames above do not depend on it).
fn previous_walk_still_holds(
    old: &[Step],
    at: usize,
    same_bp: bool,
    readable: &impl Fn(u64) -> bool,
) -> usize {
    for m in at + 1..old.len() {
        let step = old[m];
        let slot = step.sp.wrapping_sub(8);
        if !readable(slot) {
            return m;
        }
        // SAFETY: `readable` checked that the slot lies in this thread's live stack.
        if unsafe { ptr::read(slot as *const u64) } != step.return_address {
            return m;
        }
        if old[m - 1].bp.wrapping_add(16) == step.sp {
            if !same_bp {
                return m;
            }
            let saved_bp = step.sp.wrapping_sub(16);
            // SAFETY: as above, checked.
            if !readable(saved_bp) || unsafe { ptr::read(saved_bp as *const u64) } != step.bp {
                return m;
            }
        }
    }
    old.len()
}

/// The calling thread's own stack, `[low, high)`, whatever stack it runs on now: as recorded
/// in its state (see `thread::ThreadState::stack_low`), or for the main thread from
/// `__libc_stack_end` (argc, argv, envp and auxv lie a few hundred bytes above it) and its
/// stack rlimit. (0, 0) if unknown: a thread the agent did not see start (one created before
/// the agent's constructor ran, or with a raw `clone`); every walk then reads as on a foreign
/// stack.
pub fn own_stack() -> (u64, u64) {
    let state = thread::current();
    let high = state.stack_high.load(Ordering::Relaxed);
    if high != 0 {
        return (state.stack_low.load(Ordering::Relaxed), high);
    }
    if !crate::activation::is_main_thread() {
        return (0, 0);
    }
    let _errno = crate::sys::ErrnoGuard::new();
    // SAFETY: a plain read of a pointer the dynamic linker set before any user code ran.
    let end = unsafe { __libc_stack_end } as u64;
    if end == 0 {
        return (0, 0);
    }
    let high = end + 256;
    let reach = crate::sys::stack_size_limit().unwrap_or(1 << 32);
    let low = high.saturating_sub(reach.max(1 << 20));
    state.stack_low.store(low, Ordering::Relaxed);
    state.stack_high.store(high, Ordering::Relaxed);
    (low, high)
}
