//! The modules loaded in the process, and the unwinder that knows their unwind tables.
//!
//! The list comes from `dl_iterate_phdr`: at start, whenever a stack walk ends at an address
//! that no known module covers (a library just loaded with `dlopen`), and from the writer
//! thread, which notices `dlclose` too.
//!
//! Readers take no lock: the table is an immutable snapshot behind an atomic pointer. A refresh
//! builds a new snapshot and swaps it in; old snapshots are never freed (a thread may still be
//! walking with one), which costs a few kilobytes per `dlopen` or `dlclose`. Each module's `.eh_frame_hdr` and `.eh_frame` are *copied*
//! into the agent's own memory: a library unloaded by `dlclose` would otherwise leave the
//! unwinder reading unmapped memory until the next refresh.

use alloc::string::String;
use alloc::vec::Vec;
use core::ops::Deref;
use core::sync::atomic::{AtomicU64, Ordering};

use framehop::x86_64::UnwinderX86_64;
use framehop::{ExplicitModuleSectionInfo, MustNotAllocateDuringUnwind, Unwinder};

use alloc::boxed::Box;
use core::sync::atomic::AtomicPtr;

use crate::sync::SpinLock;
use crate::sys;

/// Unwind data copied into agent-owned memory; unmapped when framehop drops the module.
pub struct CopiedSection {
    ptr: *mut u8,
    len: usize,
}

// SAFETY: the copy is immutable after construction and owned by the module that holds it.
unsafe impl Send for CopiedSection {}
// SAFETY: as above: shared access is read-only.
unsafe impl Sync for CopiedSection {}

impl CopiedSection {
    /// Copy `len` bytes at `src`.
    ///
    /// # Safety
    /// `src..src+len` must be readable.
    unsafe fn copy_from(src: *const u8, len: usize) -> Option<CopiedSection> {
        let ptr = sys::map_anonymous(len.max(1), false);
        if ptr.is_null() {
            return None;
        }
        // SAFETY: the caller guarantees the source is readable; the destination is a fresh
        // mapping of at least `len` bytes.
        unsafe { core::ptr::copy_nonoverlapping(src, ptr, len) };
        Some(CopiedSection { ptr, len })
    }
}

impl Deref for CopiedSection {
    type Target = [u8];
    fn deref(&self) -> &[u8] {
        // SAFETY: `ptr..ptr+len` is our own mapping, initialised in `copy_from`.
        unsafe { core::slice::from_raw_parts(self.ptr, self.len) }
    }
}

impl Drop for CopiedSection {
    fn drop(&mut self) {
        // SAFETY: the mapping was made by `copy_from` and nothing refers to it any more (the
        // module that owned it is being dropped under the write lock).
        unsafe { sys::unmap(self.ptr, self.len) };
    }
}

/// The unwinder type the agent uses.
pub type AgentUnwinder = UnwinderX86_64<CopiedSection, MustNotAllocateDuringUnwind>;

/// One module, as the profile file records it.
#[derive(Clone)]
pub struct ModuleRecord {
    /// `dlpi_addr`.
    pub load_bias: u64,
    /// Lowest mapped address.
    pub start: u64,
    /// One past the highest mapped address.
    pub end: u64,
    /// File path.
    pub path: String,
    /// GNU build id.
    pub build_id: Vec<u8>,
    /// Still loaded (false after `dlclose`).
    pub loaded: bool,
}

/// A snapshot of the module table and unwinder.
#[derive(Clone)]
pub struct ModuleTable {
    /// Every module seen, in order; the writer writes those it has not written yet.
    pub records: Vec<ModuleRecord>,
    /// Sorted address ranges of the modules loaded now.
    ranges: Vec<(u64, u64)>,
    /// The unwinder with every loaded module's tables.
    pub unwinder: AgentUnwinder,
    /// The address range of the agent's own code (its frames are left out of stacks).
    pub agent_range: (u64, u64),
}

/// The process's modules.
pub struct Modules {
    /// Serialises refreshes (readers never take it).
    refresh_lock: SpinLock<()>,
    /// The current snapshot (null before the first refresh).
    current: AtomicPtr<ModuleTable>,
    /// `dlpi_adds + dlpi_subs` when the table was last built.
    generation: AtomicU64,
    /// Monotonic time of the last generation check made from the hot path.
    last_check_ns: AtomicU64,
}

/// The process's modules.
pub static MODULES: Modules = Modules {
    refresh_lock: SpinLock::new(()),
    current: AtomicPtr::new(core::ptr::null_mut()),
    generation: AtomicU64::new(u64::MAX),
    last_check_ns: AtomicU64::new(0),
};

impl ModuleTable {
    /// Is `address` inside a loaded module?
    pub fn covers(&self, address: u64) -> bool {
        self.range_of(address).is_some()
    }

    /// The `[start, end)` of the loaded module's range that holds `address`, if one does.
    pub fn range_of(&self, address: u64) -> Option<(u64, u64)> {
        let i = self.ranges.partition_point(|r| r.0 <= address);
        let (start, end) = *self.ranges.get(i.checked_sub(1)?)?;
        (address < end).then_some((start, end))
    }
}

impl Modules {
    /// The current snapshot, building the first one if needed.
    pub fn read(&self) -> Option<&'static ModuleTable> {
        let mut table = self.current.load(Ordering::Acquire);
        if table.is_null() {
            self.refresh();
            table = self.current.load(Ordering::Acquire);
        }
        // SAFETY: snapshots are leaked boxes, never freed or changed once published.
        unsafe { table.as_ref() }
    }

    /// The current snapshot, without building one (for exit paths).
    pub fn try_read(&self) -> Option<&'static ModuleTable> {
        // SAFETY: as in `read`.
        unsafe { self.current.load(Ordering::Acquire).as_ref() }
    }

    /// From the hot path, after a stack walk met an unknown address: rebuild the table if the
    /// set of loaded objects changed, checking at most every few milliseconds (code with no
    /// module, such as JIT output, would otherwise make every walk pay for the check).
    /// Returns true if the table changed.
    pub fn refresh_after_unknown_address(&self) -> bool {
        let now = sys::monotonic_ns();
        let last = self.last_check_ns.load(Ordering::Relaxed);
        if now.saturating_sub(last) < 5_000_000 {
            return false;
        }
        self.last_check_ns.store(now, Ordering::Relaxed);
        self.refresh_if_changed()
    }

    /// Rebuild the table if objects were loaded or unloaded since it was built.
    pub fn refresh_if_changed(&self) -> bool {
        let _errno = sys::ErrnoGuard::new();
        if loaded_objects_generation() == self.generation.load(Ordering::Acquire) {
            return false;
        }
        self.refresh();
        true
    }

    /// Take the refresh lock before `fork`.
    pub fn lock_for_fork(&self) {
        self.refresh_lock.lock_for_fork();
    }

    /// Release it in the parent after `fork`.
    ///
    /// # Safety
    /// The calling thread took it with [`Modules::lock_for_fork`].
    pub unsafe fn unlock_after_fork(&self) {
        // SAFETY: the caller's promise.
        unsafe { self.refresh_lock.unlock_after_fork() };
    }

    /// Release it in the child after `fork`.
    ///
    /// # Safety
    /// Only in the child of a `fork` whose parent called [`Modules::lock_for_fork`].
    pub unsafe fn reset_in_child(&self) {
        // SAFETY: the caller's promise: no refresh was halfway.
        unsafe { self.refresh_lock.reset_in_child() };
    }

    fn refresh(&self) {
        let _errno = sys::ErrnoGuard::new();
        let mut found: Vec<FoundObject> = Vec::new();
        let mut generation = 0u64;
        sys::for_each_loaded_object(|info| {
            generation = info.dlpi_adds.wrapping_add(info.dlpi_subs);
            collect_object(info, &mut found);
            false
        });

        let _guard = self.refresh_lock.lock();
        let mut table = match self.try_read() {
            Some(current) => current.clone(),
            None => ModuleTable {
                records: Vec::new(),
                ranges: Vec::new(),
                unwinder: AgentUnwinder::new(),
                agent_range: agent_code_range(),
            },
        };

        // Modules that went away.
        for record in table.records.iter_mut().filter(|r| r.loaded) {
            if !found
                .iter()
                .any(|f| f.start == record.start && f.load_bias == record.load_bias)
            {
                record.loaded = false;
                table.unwinder.remove_module(record.start);
            }
        }
        // Modules that are new.
        for object in found {
            let known = table
                .records
                .iter()
                .any(|r| r.loaded && r.start == object.start && r.load_bias == object.load_bias);
            if known {
                continue;
            }
            if let Some(module) = object.unwind_module() {
                table.unwinder.add_module(module);
            }
            table.records.push(ModuleRecord {
                load_bias: object.load_bias,
                start: object.start,
                end: object.end,
                path: object.path,
                build_id: object.build_id,
                loaded: true,
            });
        }
        table.ranges = table
            .records
            .iter()
            .filter(|r| r.loaded)
            .map(|r| (r.start, r.end))
            .collect();
        table.ranges.sort_unstable();
        self.current
            .store(Box::into_raw(Box::new(table)), Ordering::Release);
        self.generation.store(generation, Ordering::Release);
    }
}

/// `dlpi_adds + dlpi_subs`: changes whenever an object is loaded or unloaded.
fn loaded_objects_generation() -> u64 {
    let mut generation = 0u64;
    sys::for_each_loaded_object(|info| {
        generation = info.dlpi_adds.wrapping_add(info.dlpi_subs);
        true // stop after the first object: the counters are the same in every callback
    });
    generation
}

/// The address range of the agent's own code, found from the address of one of its functions.
fn agent_code_range() -> (u64, u64) {
    let probe = agent_code_range as *const () as u64;
    let mut range = (probe, probe + 1);
    sys::for_each_loaded_object(|info| {
        let (start, end) = load_range(info);
        let found = start <= probe && probe < end;
        if found {
            range = (start, end);
        }
        found
    });
    range
}

struct FoundObject {
    load_bias: u64,
    start: u64,
    end: u64,
    path: String,
    build_id: Vec<u8>,
    eh_frame_hdr: Option<(u64, usize)>,
    /// The end of the segment that holds `.eh_frame_hdr` (bounds the `.eh_frame` walk).
    eh_segment_end: u64,
}

fn load_range(info: &libc::dl_phdr_info) -> (u64, u64) {
    let mut lo = u64::MAX;
    let mut hi = 0;
    for ph in phdrs(info) {
        if ph.p_type == libc::PT_LOAD {
            lo = lo.min(ph.p_vaddr);
            hi = hi.max(ph.p_vaddr + ph.p_memsz);
        }
    }
    if lo == u64::MAX {
        return (0, 0);
    }
    (
        info.dlpi_addr.wrapping_add(lo),
        info.dlpi_addr.wrapping_add(hi),
    )
}

fn phdrs(info: &libc::dl_phdr_info) -> &[libc::Elf64_Phdr] {
    if info.dlpi_phdr.is_null() {
        return &[];
    }
    // SAFETY: the dynamic linker gives `dlpi_phnum` program headers at `dlpi_phdr`.
    unsafe { core::slice::from_raw_parts(info.dlpi_phdr, info.dlpi_phnum as usize) }
}

/// Add the loaded object `info` describes to `found` (if it has a load segment).
fn collect_object(info: &libc::dl_phdr_info, found: &mut Vec<FoundObject>) {
    let (start, end) = load_range(info);
    if start >= end {
        return;
    }
    let name = if info.dlpi_name.is_null() {
        &[][..]
    } else {
        // SAFETY: dlpi_name is a NUL-terminated string owned by the dynamic linker.
        unsafe { core::ffi::CStr::from_ptr(info.dlpi_name) }.to_bytes()
    };
    let path = if name.is_empty() {
        main_executable_path()
    } else {
        String::from_utf8_lossy(name).into_owned()
    };
    let mut object = FoundObject {
        load_bias: info.dlpi_addr,
        start,
        end,
        path,
        build_id: Vec::new(),
        eh_frame_hdr: None,
        eh_segment_end: 0,
    };
    for ph in phdrs(info) {
        match ph.p_type {
            libc::PT_GNU_EH_FRAME => {
                object.eh_frame_hdr = Some((ph.p_vaddr, ph.p_memsz as usize));
            }
            libc::PT_NOTE if object.build_id.is_empty() => {
                let at = info.dlpi_addr.wrapping_add(ph.p_vaddr);
                // SAFETY: PT_NOTE segments are mapped readable with the object.
                object.build_id = unsafe { gnu_build_id(at as *const u8, ph.p_memsz as usize) };
            }
            _ => {}
        }
    }
    if let Some((hdr_vaddr, _)) = object.eh_frame_hdr {
        for ph in phdrs(info) {
            if ph.p_type == libc::PT_LOAD
                && ph.p_vaddr <= hdr_vaddr
                && hdr_vaddr < ph.p_vaddr + ph.p_memsz
            {
                object.eh_segment_end = ph.p_vaddr + ph.p_filesz;
            }
        }
    }
    found.push(object);
}

impl FoundObject {
    /// Build framehop's module, copying the unwind tables.
    fn unwind_module(&self) -> Option<framehop::Module<CopiedSection>> {
        let (hdr_vaddr, hdr_len) = self.eh_frame_hdr?;
        let hdr_addr = self.load_bias.wrapping_add(hdr_vaddr);
        // SAFETY: PT_GNU_EH_FRAME lies inside a loaded, readable segment.
        let hdr = unsafe { core::slice::from_raw_parts(hdr_addr as *const u8, hdr_len) };
        let eh_frame_addr = eh_frame_address(hdr, hdr_addr)?;
        let segment_end = self.load_bias.wrapping_add(self.eh_segment_end);
        let eh_frame_vaddr = eh_frame_addr.wrapping_sub(self.load_bias);
        let eh_frame_len = if (self.start..segment_end).contains(&eh_frame_addr) {
            // SAFETY: the walk stays below the end of the segment's file-backed part.
            unsafe { eh_frame_length(eh_frame_addr, segment_end) }
        } else {
            0
        };
        if eh_frame_len == 0 {
            return None;
        }
        // SAFETY: both ranges were just checked to lie in mapped, readable segments.
        let hdr_copy = unsafe { CopiedSection::copy_from(hdr_addr as *const u8, hdr_len) }?;
        // SAFETY: as above.
        let eh_frame_copy =
            unsafe { CopiedSection::copy_from(eh_frame_addr as *const u8, eh_frame_len) }?;
        let info = ExplicitModuleSectionInfo {
            base_svma: 0,
            eh_frame_hdr_svma: Some(hdr_vaddr..hdr_vaddr + hdr_len as u64),
            eh_frame_hdr: Some(hdr_copy),
            eh_frame_svma: Some(eh_frame_vaddr..eh_frame_vaddr + eh_frame_len as u64),
            eh_frame: Some(eh_frame_copy),
            text_svma: None,
            text: None,
            stubs_svma: None,
            stub_helper_svma: None,
            got_svma: None,
            unwind_info: None,
            debug_frame: None,
            text_segment_svma: None,
            text_segment: None,
        };
        Some(framehop::Module::new(
            self.path.clone(),
            self.start..self.end,
            self.load_bias,
            info,
        ))
    }
}

/// Decode the `eh_frame_ptr` field of an `.eh_frame_hdr` (version 1).
fn eh_frame_address(hdr: &[u8], hdr_addr: u64) -> Option<u64> {
    if hdr.len() < 8 || hdr[0] != 1 {
        return None;
    }
    let encoding = hdr[1];
    let value = i32::from_le_bytes([hdr[4], hdr[5], hdr[6], hdr[7]]) as i64;
    match encoding {
        0x1b => Some((hdr_addr + 4).wrapping_add(value as u64)), // pcrel | sdata4
        0x3b => Some(hdr_addr.wrapping_add(value as u64)),       // datarel | sdata4
        0x03 | 0x0b => None, // absolute: an address in the file, not the process
        _ => None,
    }
}

/// Walk the CIE/FDE records of an `.eh_frame` to its zero terminator.
///
/// # Safety
/// `start..limit` must be readable.
unsafe fn eh_frame_length(start: u64, limit: u64) -> usize {
    let mut at = start;
    while at + 4 <= limit {
        // SAFETY: `at + 4 <= limit` and the caller guarantees the range is readable.
        let len = unsafe { (at as *const u32).read_unaligned() } as u64;
        if len == 0 {
            return (at + 4 - start) as usize;
        }
        let next = if len == 0xffff_ffff {
            if at + 12 > limit {
                break;
            }
            // SAFETY: as above, checked against `limit`.
            at + 12 + unsafe { ((at + 4) as *const u64).read_unaligned() }
        } else {
            at + 4 + len
        };
        if next > limit || next <= at {
            break;
        }
        at = next;
    }
    (at.min(limit) - start) as usize
}

/// The GNU build id in a PT_NOTE segment.
///
/// # Safety
/// `notes..notes+len` must be readable.
unsafe fn gnu_build_id(notes: *const u8, len: usize) -> Vec<u8> {
    // SAFETY: the caller guarantees the range is readable.
    let bytes = unsafe { core::slice::from_raw_parts(notes, len) };
    let mut at = 0;
    while at + 12 <= bytes.len() {
        let field =
            |i: usize| u32::from_le_bytes([bytes[i], bytes[i + 1], bytes[i + 2], bytes[i + 3]]);
        let name_size = field(at) as usize;
        let desc_size = field(at + 4) as usize;
        let kind = field(at + 8);
        let name_start = at + 12;
        let desc_start = name_start + ((name_size + 3) & !3);
        let end = desc_start + ((desc_size + 3) & !3);
        if end > bytes.len() {
            break;
        }
        if kind == 3 && &bytes[name_start..name_start + name_size] == b"GNU\0" {
            return bytes[desc_start..desc_start + desc_size].to_vec();
        }
        at = end;
    }
    Vec::new()
}

/// The main executable's path, from `/proc/self/exe`.
fn main_executable_path() -> String {
    let mut buf = [0u8; 4096];
    let n = sys::procfs::own_executable(&mut buf);
    if n == 0 {
        return String::from("[main executable]");
    }
    String::from_utf8_lossy(&buf[..n]).into_owned()
}
