//! Thread creation and end: when a thread other than the main one ends, the dead part of its
//! stack is zeroed (`deadstack::zero_dead_thread_stack`). memcheck stops seeing a thread's
//! stack when the thread ends; its stack memory, though, stays: glibc keeps it for the next
//! thread (and frees it in `__libc_freeres` only when it can), and a stack the program gave
//! the thread (`pthread_attr_setstack`) stays mapped as long as the program keeps it. Scanned
//! as plain memory, the popped frames there would make blocks they pointed to look reachable.

use core::ffi::{c_int, c_void};
use core::sync::atomic::{AtomicUsize, Ordering};

use leakscope_agent_core as core_;
use leakscope_agent_core::thread::AgentSection;

use crate::{__libc_free, __libc_malloc};

type StartRoutine = extern "C" fn(*mut c_void) -> *mut c_void;
type CreateFn = unsafe extern "C" fn(
    *mut libc::pthread_t,
    *const libc::pthread_attr_t,
    StartRoutine,
    *mut c_void,
) -> c_int;

static NEXT_PTHREAD_CREATE: AtomicUsize = AtomicUsize::new(0);
static NEXT_PTHREAD_EXIT: AtomicUsize = AtomicUsize::new(0);

fn next(cache: &AtomicUsize, name: &core::ffi::CStr) -> usize {
    let mut address = cache.load(Ordering::Acquire);
    if address == 0 {
        address = crate::init::lookup_next(name);
        cache.store(address, Ordering::Release);
    }
    address
}

/// What the trampoline starts: the program's routine and argument (in a glibc block of the
/// agent's own, untracked).
#[repr(C)]
struct Start {
    routine: StartRoutine,
    arg: *mut c_void,
}

/// `pthread_create(3)`: the program's routine runs inside [`thread_start`].
#[no_mangle]
pub unsafe extern "C" fn pthread_create(
    thread: *mut libc::pthread_t,
    attr: *const libc::pthread_attr_t,
    routine: StartRoutine,
    arg: *mut c_void,
) -> c_int {
    let create = next(&NEXT_PTHREAD_CREATE, c"pthread_create");
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
        let start = __libc_malloc(core::mem::size_of::<Start>()) as *mut Start;
        if start.is_null() {
            return create(thread, attr, routine, arg);
        }
        start.write(Start { routine, arg });
        let result = create(thread, attr, thread_start, start as *mut c_void);
        if result != 0 {
            __libc_free(start as *mut c_void);
        }
        result
    }
}

/// The start routine of every thread the program creates.
extern "C" fn thread_start(start: *mut c_void) -> *mut c_void {
    // SAFETY: `start` is the block pthread_create filled for this thread alone.
    let Start { routine, arg } = unsafe { (start as *const Start).read() };
    // SAFETY: the block came from __libc_malloc and is freed once, here.
    unsafe { __libc_free(start) };
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
    let exit = next(&NEXT_PTHREAD_EXIT, c"pthread_exit");
    // SAFETY: glibc's pthread_exit, found by dlsym; it does not return.
    unsafe {
        let exit: unsafe extern "C" fn(*mut c_void) -> ! = core::mem::transmute(exit);
        exit(value)
    }
}
