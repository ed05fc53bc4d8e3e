//! The functions that change the process's user or group: before each, the agent makes sure
//! its profile stays writable by the new ids (`children::before_credentials_change`). nginx's
//! workers, for one, drop from root to `nobody` after they start.

use crate::symbols::{Scope, Symbol};
use core::ffi::c_int;

use leakscope_agent_core::children;
use leakscope_agent_core::sys::set_errno;

/// An id argument: -1 (as `uid_t`, all ones) leaves it unchanged.
fn changed(id: u32) -> Option<u32> {
    (id != u32::MAX).then_some(id)
}

macro_rules! credential_call {
    ($(
        $(#[$doc:meta])*
        fn $name:ident($($arg:ident),*) => uid $uid:expr, gid $gid:expr;
    )*) => {$(
        $(#[$doc])*
        #[no_mangle]
        pub unsafe extern "C" fn $name($($arg: u32),*) -> c_int {
            // SAFETY: the function's name with a NUL, as a C string.
            static NEXT: Symbol = Symbol::new(unsafe {
                core::ffi::CStr::from_bytes_with_nul_unchecked(
                    concat!(stringify!($name), "\0").as_bytes(),
                )
            }, Scope::Next);
            let next = NEXT.address();
            if next == 0 {
                set_errno(libc::ENOSYS);
                return -1;
            }
            children::before_credentials_change($uid, $gid);
            // SAFETY: glibc's function of the same name and signature, found by dlsym.
            unsafe {
                let next: unsafe extern "C" fn($($arg: u32),*) -> c_int =
                    core::mem::transmute(next);
                next($($arg),*)
            }
        }
    )*};
}

credential_call! {
    /// `setuid(2)`.
    fn setuid(uid) => uid changed(uid), gid None;
    /// `seteuid(2)`.
    fn seteuid(euid) => uid changed(euid), gid None;
    /// `setreuid(2)`.
    fn setreuid(ruid, euid) => uid changed(euid), gid None;
    /// `setresuid(2)`.
    fn setresuid(ruid, euid, suid) => uid changed(euid), gid None;
    /// `setgid(2)`.
    fn setgid(gid) => uid None, gid changed(gid);
    /// `setegid(2)`.
    fn setegid(egid) => uid None, gid changed(egid);
    /// `setregid(2)`.
    fn setregid(rgid, egid) => uid None, gid changed(egid);
    /// `setresgid(2)`.
    fn setresgid(rgid, egid, sgid) => uid None, gid changed(egid);
}
