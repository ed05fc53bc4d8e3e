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

use leakscope_agent_core::thread::StartRoutine;
type CreateFn = unsafe extern "C" fn(
    *mut libc::pthread_t,
    *const libc::pthread_attr_t,
    StartRoutine,
    *mut c_void,
) -> c_int;

static NEXT_PTHREAD_CREATE: Symbol = Symbol::new(c"pthread_create", Scope::Next);
static NEXT_PTHREAD_EXIT: Symbol = Symbol::new(c"pthread_exit", Scope::Next);

use leakscope_agent_core::thread::{Start, STARTS};

/// Look the functions up now, in the constructor (not on a thread's first `pthread_create`).
pub fn resolve() {
    NEXT_PTHREAD_CREATE.resolve();
    NEXT_PTHREAD_EXIT.resolve();
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
    // the trampoline and the pool entry that holds them.
    unsafe {
        let create: CreateFn = core::mem::transmute(create);
        if !core_::is_active() {
            return create(thread, attr, routine, arg);
        }
        let start = {
            let _section = AgentSection::enter_nested();
            STARTS.take(routine, arg)
        };
        if start.is_null() {
            return create(thread, attr, routine, arg);
        }
        let result = create(thread, attr, thread_start, start as *mut c_void);
        if result != 0 {
            let _section = AgentSection::enter_nested();
            // No thread was made: the entry is unused.
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
        // SAFETY: this thread's entry, from `take`, read above and not used again.
        unsafe { STARTS.give_back(start as *mut Start) };
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
