//! The core of leakscope's agent: everything but the exported symbols (which are the
//! `leakscope-agent` cdylib's).
//!
//! Rules for everything in this crate, because it runs inside `malloc` of a program that does
//! not know it is being watched:
//! - no allocation through `malloc` (the agent's own tables are mapped with `mmap`; the few
//!   `alloc` uses, for the module table, go to glibc's allocator directly, untracked, and never
//!   run on the exit path while other threads are stopped);
//! - no panics on the hot path, bounded work per call, and no lock held by a thread that a
//!   stop-the-world may park ([`thread::AgentSection`] defers stops until agent code is done);
//! - no files opened except the profile (opened and closed per write) and `/proc` files;
//! - every OS call and `/proc` parser goes through [`sys`];
//! - data shared between threads sits in a [`sync::SpinLock`] that owns it, or in atomics.
//!
//! The path of one `malloc` call: the agent's exported `malloc` (a naked stub that hands the
//! program's frame to the hook) calls glibc's `__libc_malloc`, then [`hot_path::on_alloc`]:
//! enter an agent section (or pass through if already inside one), unwind the stack from the
//! program's frame up ([`unwind::capture_stack`]), intern it ([`stacks::STACKS`]), and record
//! the block in the live table ([`live::LIVE`]) and its site's counters ([`sites::SITES`]).
//! `free` removes the block. At exit, [`exit::finish`] stops the other threads, runs the
//! reachability scan ([`scan`]) and writes the leak records.
//!
//! The rooms, one module each:
//! - [`activation`]: whether the agent records, decided at the first allocation; the image's
//!   start time, owner pid and settings;
//! - [`hot_path`]: what `malloc`, `free` and `realloc` call for every block;
//! - [`writer_thread`]: the agent's own thread (clock, snapshots, live scans, exit-time frees)
//!   and [`writer`], the profile file it and the exit path write;
//! - [`live_scan`]: scans while the program runs; [`exit`]: the exit path and its scan;
//! - [`fork`]: the locks around `fork` and the child's own profile; [`children`]: `exec`,
//!   spawns and `vfork` children.
//!
//! Below them: the tables ([`table`], the sharded hash table under [`live`] and [`stacks`];
//! [`sites`]), stack capture ([`unwind`], [`modules`], [`sampling`]), the scan ([`scan`],
//! [`stop`] to stop the world, [`sigcontext`], [`deadstack`], [`runtime`] for glibc's and
//! libstdc++'s internals), [`settings`], [`degraded`] (what the report must be told the agent
//! could not do), and the door to the OS ([`sys`], [`sync`], [`thread`]).
#![cfg_attr(not(test), no_std)]

extern crate alloc;

pub mod activation;
pub mod children;
pub mod deadstack;
pub mod degraded;
pub mod exit;
pub mod fork;
pub mod hot_path;
pub mod live;
pub mod live_scan;
pub mod modules;
pub mod python;
pub mod runtime;
pub mod sampling;
pub mod scan;
pub mod settings;
pub mod sigcontext;
pub mod sites;
pub mod stacks;
pub mod stop;
pub mod sync;
pub mod sys;
pub mod table;
pub mod thread;
pub mod unwind;
pub mod writer;
pub mod writer_thread;

// The entry points the cdylib's exported functions call.
pub use activation::{is_active, is_main_thread, on_start};
pub use exit::{finish, ExitContext};
pub use fork::{after_fork_in_child, after_fork_in_parent, before_fork};
pub use hot_path::{
    free_forgets_only, on_alloc, on_free, on_realloc_failed, on_realloc_start, on_runtime_alloc,
};
pub use sys::real_sigaction;
pub use writer_thread::start_writer_thread;
