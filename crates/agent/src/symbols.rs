//! Functions of other libraries that the agent calls, looked up once by name.

use core::ffi::CStr;
use core::sync::atomic::{AtomicUsize, Ordering};

use leakscope_agent_core::thread::AgentSection;

/// Where to look a symbol up.
#[derive(Clone, Copy)]
pub enum Scope {
    /// The next definition after the agent's (`dlsym(RTLD_NEXT)`): usually glibc's.
    Next,
    /// The first definition in the lookup order (`dlsym(RTLD_DEFAULT)`).
    Default,
    /// libc.so.6's own, whatever comes before it in the lookup order.
    Libc,
}

/// A function of another library, found by name on first use (or at start, with
/// [`Symbol::resolve`]), and then kept.
pub struct Symbol {
    name: &'static CStr,
    scope: Scope,
    address: AtomicUsize,
}

impl Symbol {
    /// The symbol `name` in `scope`, not looked up yet.
    pub const fn new(name: &'static CStr, scope: Scope) -> Self {
        Symbol {
            name,
            scope,
            address: AtomicUsize::new(0),
        }
    }

    /// Its address (0 if it does not exist).
    pub fn address(&self) -> usize {
        let mut address = self.address.load(Ordering::Acquire);
        if address == 0 {
            address = lookup(self.name, self.scope);
            self.address.store(address, Ordering::Release);
        }
        address
    }

    /// Look it up now (from the constructor: a `vfork` child must not run `dlsym`, which may
    /// allocate and take the loader's lock, in its parent's memory).
    pub fn resolve(&self) {
        self.address();
    }
}

/// `name` in `scope`, or 0.
pub fn lookup(name: &CStr, scope: Scope) -> usize {
    let _section = AgentSection::enter_nested(); // dlsym and dlopen may allocate
                                                 // SAFETY: dlsym and dlopen with NUL-terminated names. RTLD_NOLOAD only finds the already
                                                 // loaded libc (it loads nothing), and its reference is dropped again.
    unsafe {
        match scope {
            Scope::Next => libc::dlsym(libc::RTLD_NEXT, name.as_ptr()) as usize,
            Scope::Default => libc::dlsym(libc::RTLD_DEFAULT, name.as_ptr()) as usize,
            Scope::Libc => {
                let handle =
                    libc::dlopen(c"libc.so.6".as_ptr(), libc::RTLD_LAZY | libc::RTLD_NOLOAD);
                if handle.is_null() {
                    return 0;
                }
                let address = libc::dlsym(handle, name.as_ptr()) as usize;
                libc::dlclose(handle);
                address
            }
        }
    }
}
