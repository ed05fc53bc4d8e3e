//! Thread creation and end: when a thread other than the main one ends, the dead part of its
//! stack is zeroed (`deadstack::zero_dead_thread_stack`). memcheck stops seeing a thread's
//! stack when the thread ends; its stack memory, though, stays: glibc keeps it for the next
//! thread (and frees it in `__libc_freeres` only when it can), and a stack the program gave
//! the thread (`pthread_attr_setstack`) stays mapped as long as the program keeps it. Scanned
//! as plain memory, the popped frames there would make blocks they pointed to look reachable.

use crate::symbols::{Scope, Symbol};
use core::ffi::{c_int, c_void};

use leakscope_agent_core as core_;
use leakscope_agent_core::thread::AgentSection;

type StartRoutine = extern "C" fn(*mut c_void) -> *mut c_void;
type CreateFn = unsafe extern "C" fn(
    *mut libc::pthread_t,
    *const libc::pthread_attr_t,
    StartRoutine,
    *mut c_void,
) -> c_int;

static NEXT_PTHREAD_CREATE: Symbol = Symbol::new(c"pthread_create", Scope::Next);
static NEXT_PTHREAD_EXIT: Symbol = Symbol::new(c"pthread_exit", Scope::Next);

/// What the trampoline starts: the program's routine and argument.
///
/// These live in agent memory, never in glibc's heap: glibc keeps the argument pointer (in
/// its `struct pthread`, which lies in the thread's stack, a root), and a glibc block freed
/// by the new thread would soon be another block (the thread's first allocation of that size
/// comes from the same cache): a pointer to the start of it, from a root, forever.
#[repr(C)]
struct Start {
    routine: StartRoutine,
    arg: *mut c_void,
    /// The next free entry (while free).
    next: *mut Start,
}

/// Free `Start` entries, in slabs the agent maps (and never unmaps).
struct StartPool {
    lock: leakscope_agent_core::sync::SpinLock,
    free: core::cell::UnsafeCell<*mut Start>,
}

// SAFETY: `free` is only touched with `lock` held.
unsafe impl Sync for StartPool {}

static STARTS: StartPool = StartPool {
    lock: leakscope_agent_core::sync::SpinLock::new(),
    free: core::cell::UnsafeCell::new(core::ptr::null_mut()),
};

/// Entries per slab (64 KiB).
const STARTS_PER_SLAB: usize = 65536 / core::mem::size_of::<Start>();

impl StartPool {
    fn take(&self) -> *mut Start {
        let _guard = self.lock.lock();
        // SAFETY: the lock is held; entries on the free list are ours and unused.
        unsafe {
            let free = &mut *self.free.get();
            if free.is_null() {
                let slab = core_::sys::map_anonymous(
                    STARTS_PER_SLAB * core::mem::size_of::<Start>(),
                    false,
                ) as *mut Start;
                if slab.is_null() {
                    return slab;
                }
                for i in 0..STARTS_PER_SLAB {
                    (*slab.add(i)).next = if i + 1 < STARTS_PER_SLAB {
                        slab.add(i + 1)
                    } else {
                        core::ptr::null_mut()
                    };
                }
                *free = slab;
            }
            let entry = *free;
            *free = (*entry).next;
            entry
        }
    }

    fn give_back(&self, entry: *mut Start) {
        let _guard = self.lock.lock();
        // SAFETY: the lock is held; `entry` came from `take` and is no longer used.
        unsafe {
            (*entry).next = *self.free.get();
            *self.free.get() = entry;
        }
    }
}

/// `pthread_create(3)`: the program's routine runs inside [`thread_start`].
#[no_mangle]
pub unsafe extern "C" fn pthread_create(
    thread: *mut libc::pthread_t,
    attr: *const libc::pthread_attr_t,
    routine: StartRoutine,
    arg: *mut c_void,
) -> c_int {
    let create = NEXT_PTHREAD_CREATE.address();
    if create == 0 {
        return libc::ENOSYS;
    }
    // SAFETY: glibc's pthread_create, found by dlsym, with the caller's arguments or with
    // the trampoline and a block that holds them.
    unsafe {
        let create: CreateFn = core::mem::transmute(create);
        if !core_::is_active() {
            return create(thread, attr, routine, arg);
        }
        let start = {
            let _section = AgentSection::enter_nested();
            STARTS.take()
        };
        if start.is_null() {
            return create(thread, attr, routine, arg);
        }
        start.write(Start {
            routine,
            arg,
            next: core::ptr::null_mut(),
        });
        let result = create(thread, attr, thread_start, start as *mut c_void);
        if result != 0 {
            let _section = AgentSection::enter_nested();
            STARTS.give_back(start);
        }
        result
    }
}

/// The start routine of every thread the program creates.
extern "C" fn thread_start(start: *mut c_void) -> *mut c_void {
    // SAFETY: `start` is the entry pthread_create filled for this thread alone.
    let (routine, arg) = unsafe {
        let entry = &*(start as *const Start);
        (entry.routine, entry.arg)
    };
    {
        let _section = AgentSection::enter_nested();
        STARTS.give_back(start as *mut Start);
    }
    core_::thread::record_own_stack();
    let result = routine(arg);
    let _section = AgentSection::enter_nested();
    core_::deadstack::zero_dead_thread_stack();
    result
}

/// `pthread_exit(3)`: the dead stack is zeroed first.
#[no_mangle]
pub unsafe extern "C" fn pthread_exit(value: *mut c_void) -> ! {
    if core_::is_active() && !core_::is_main_thread() {
        let _section = AgentSection::enter_nested();
        core_::deadstack::zero_dead_thread_stack();
    }
    let exit = NEXT_PTHREAD_EXIT.address();
    // SAFETY: glibc's pthread_exit, found by dlsym; it does not return.
    unsafe {
        let exit: unsafe extern "C" fn(*mut c_void) -> ! = core::mem::transmute(exit);
        exit(value)
    }
}
