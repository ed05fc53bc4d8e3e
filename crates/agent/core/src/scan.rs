//! The reachability scan, as memcheck counts it (`mc_leakcheck.c`).
//!
//! Roots are every readable and writable mapping of the process, as memcheck scans every
//! client mapping, except: the malloc heap itself (the brk heap, the arenas of other threads
//! and the own mappings of large blocks), the agent's own memory, device mappings, and the
//! part of each thread's stack below its stack pointer (dead frames, which memcheck sees as
//! unaddressable). The registers of stopped threads are roots too.
//!
//! From the roots, a block pointed at to its start is *reachable*; one pointed at only in its
//! interior is *possibly lost*, unless one of memcheck's default heuristics explains the
//! interior pointer (std::string, length64, new[], multiple inheritance), in which case it is
//! reachable. What is reached from a possibly lost block can only be possibly lost. Then, for
//! every block still unreached, in address order, the blocks it reaches that are unreached
//! become *indirectly lost* (an unreached "clique leader" reached later is demoted too); what
//! remains unreached is *definitely lost*.

use leakscope_format::LeakKind;

use crate::stop::StoppedThread;
use crate::sys;

const UNREACHED: u8 = 0;
const POSSIBLE: u8 = 1;
const REACHABLE: u8 = 2;
const INDIRECT: u8 = 3;

/// What the scan needs besides the live table.
pub struct ScanInput<'a> {
    /// Threads stopped for the scan, with their registers and stack pointers.
    pub stopped: &'a [StoppedThread],
    /// Scan the scanning thread's own stack from this address up.
    pub scanner_stack_from: u64,
    /// More root words (the scanning thread's registers where they matter).
    pub extra_roots: &'a [u64],
    /// Start addresses of runtime blocks to leave out entirely.
    pub excluded: &'a [u64],
    /// Ranges that are no roots (start == end: none).
    pub not_roots: [(u64, u64); 2],
    /// Sampling mode's rate (0: not sampling): the records then carry estimates too.
    pub sample_rate: u64,
}

/// One leak record: the blocks of one kind allocated at one stack (encoded as a record of the
/// profile's `Leaks`, `LeakEstimates` and `LiveScan` chunks).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct LeakRecord {
    /// Stack id.
    pub stack: u32,
    /// Its blocks' kind.
    pub kind: LeakKind,
    /// Exact bytes.
    pub bytes: u64,
    /// Exact blocks.
    pub blocks: u64,
    /// Sampling mode: the bytes the sampled blocks stand for.
    pub estimated_bytes: f64,
    /// Sampling mode: the blocks the sampled blocks stand for.
    pub estimated_blocks: f64,
}

/// What the scan found.
pub struct ScanOutput {
    /// Records, one per (stack, kind).
    pub records: &'static [LeakRecord],
    /// Root bytes scanned.
    pub root_bytes: u64,
    /// Blocks classified.
    pub live_blocks: u64,
    /// Runtime blocks left out.
    pub runtime_blocks: u64,
    /// Per site: the allocation time of its oldest live block, in ns since start.
    pub site_ages: &'static [(u32, u64)],
    /// Per kind, in `LeakKind` order: (bytes, blocks).
    pub totals: [(u64, u64); 4],
    /// Bytes of heap blocks and roots that could not be read (an unmapped or PROT_NONE page
    /// in a block, say): what only they point to may be reported as lost.
    pub unreadable_bytes: u64,
    /// The scan's memory, which `records` and `site_ages` point into: they are valid for as
    /// long as the output lives. (The exit path keeps it for the rest of the process.)
    _arena: Arena,
}

#[derive(Clone, Copy)]
#[repr(C)]
struct Block {
    start: u64,
    /// One past the last byte a pointer may point at (a zero-sized block counts as one byte,
    /// as in memcheck).
    end: u64,
    size: u64,
    stack: u32,
    state: u8,
    /// [`block_flags`] bits.
    flags: u8,
    _pad: [u8; 2],
    /// Allocation time, in ticks of `sites::NOW_TICKS`.
    born: u32,
}

/// What the scan found out about a block's memory before reading it.
mod block_flags {
    /// The block lies wholly inside one readable anonymous mapping: its words are read with
    /// plain loads. Otherwise each stretch is read only where the mappings allow it.
    pub const PLAIN: u8 = 1;
    /// The 16-byte chunk header before the block lies in readable memory.
    pub const HEADER_READABLE: u8 = 2;
    /// The block has its own mapping (glibc's `IS_MMAPPED` chunk bit).
    pub const OWN_MAPPING: u8 = 4;
    /// An object of a runtime's own allocator (`live::RUNTIME_OBJECT`): a root, never
    /// reported; its memory is not glibc's (no chunk header to read).
    pub const RUNTIME_OBJECT: u8 = 8;
}

/// The scan's scratch memory, sized exactly for `capacity` blocks: the takes in [`scan`].
fn arena_len(capacity: usize) -> usize {
    use core::mem::size_of;
    let takes = [
        capacity * size_of::<Block>(),
        MAPS_TEXT_LEN,
        MAX_MAPPINGS * size_of::<Mapping>(),
        (MAX_OWN_MAPPINGS + 3 + capacity) * size_of::<(usize, usize)>(),
        BOUNCE_WORDS * 8,
        mark_stack_len(capacity) * 4,
        capacity * size_of::<LeakRecord>(),
        capacity * size_of::<(u32, u64)>(),
    ];
    // Each take is aligned to 16 bytes.
    takes.iter().map(|bytes| bytes + 16).sum()
}

/// Room for `/proc/self/maps` (the kernel allows 65,530 mappings by default, each a line of at
/// most a few hundred bytes).
const MAPS_TEXT_LEN: usize = 32 << 20;
/// Most mappings the scan considers.
const MAX_MAPPINGS: usize = 131_072;
/// Most agent mappings left out of the roots (as many as the registry holds).
const MAX_OWN_MAPPINGS: usize = crate::sys::MAX_OWN_MAPPINGS;
/// Words read at a time from memory that must be read through the kernel.
const BOUNCE_WORDS: usize = 8192;

fn mark_stack_len(capacity: usize) -> usize {
    2 * capacity + 64
}

#[derive(Clone, Copy, Default)]
struct Mapping {
    start: u64,
    end: u64,
    readable: bool,
    writable: bool,
    executable: bool,
    file_backed: bool,
    skip: bool,
}

/// Scratch memory for one scan, mapped and unmapped as a unit.
struct Arena {
    base: *mut u8,
    len: usize,
    used: usize,
}

impl Arena {
    fn new(len: usize) -> Option<Arena> {
        let base = sys::map_anonymous(len, true);
        (!base.is_null()).then_some(Arena { base, len, used: 0 })
    }
    fn take<T: Copy>(&mut self, count: usize) -> Option<&'static mut [T]> {
        let align = core::mem::align_of::<T>().max(16);
        let start = (self.used + align - 1) & !(align - 1);
        let bytes = count * core::mem::size_of::<T>();
        if start + bytes > self.len {
            return None;
        }
        self.used = start + bytes;
        // SAFETY: a fresh, zeroed, suitably aligned region of our mapping, handed out once.
        // The 'static lifetime is a lie the caller keeps: the arena outlives every use
        // (records are copied out before it is dropped, or it is kept for the process).
        Some(unsafe { core::slice::from_raw_parts_mut(self.base.add(start) as *mut T, count) })
    }
}

impl Drop for Arena {
    fn drop(&mut self) {
        // SAFETY: our own mapping, not used after the scan.
        unsafe { sys::unmap(self.base, self.len) };
    }
}

struct Scanner<'a> {
    blocks: &'a mut [Block],
    mark_stack: &'a mut [u32],
    mark_len: usize,
    mappings: &'a [Mapping],
    lowest: u64,
    highest: u64,
    bounce: &'a mut [u64],
    /// Bytes of blocks and roots that could not be read.
    unreadable_bytes: u64,
    /// [`Scanner::is_vtable`]'s answers, direct-mapped by address: `address | answer`
    /// (addresses are 8-aligned, so bit 0 is free; 0 is an empty slot). Memory does not
    /// change during a scan, and a program with C++ objects asks about the same few vtables
    /// again and again, each a `process_vm_readv`: the exit scan of a JVM with 200 MB of
    /// roots took 0.77 s without the memo and 0.17-0.26 s with it.
    vtable_answers: [u64; VTABLE_ANSWERS],
}

/// Slots of [`Scanner::vtable_answers`].
const VTABLE_ANSWERS: usize = 256;

/// Run the scan over the live table. The caller must have stopped every other thread.
///
/// Returns `None` only if the agent could not map memory for the scan.
pub fn scan(input: &ScanInput<'_>) -> Option<ScanOutput> {
    // SAFETY: every other thread is stopped (the scan's precondition).
    let capacity = unsafe { crate::live::LIVE.len_unlocked() } + 1024;
    let mut arena = Arena::new(arena_len(capacity))?;

    // 1. The live blocks, by address, minus the runtime's own.
    let blocks = arena.take::<Block>(capacity)?;
    let mut n = 0;
    // SAFETY: every other thread is stopped (the caller's promise).
    unsafe {
        crate::live::LIVE.for_each_unlocked(|live| {
            if n < blocks.len() {
                blocks[n] = Block {
                    start: live.address,
                    end: live.address + live.size.max(1),
                    size: live.size,
                    stack: live.site(),
                    state: UNREACHED,
                    flags: if live.is_runtime_object() {
                        block_flags::RUNTIME_OBJECT
                    } else {
                        0
                    },
                    _pad: [0; 2],
                    born: live.born,
                };
                n += 1;
            }
        });
    }
    let blocks = &mut blocks[..n];
    blocks.sort_unstable_by_key(|b| b.start);
    let mut runtime_blocks = 0u64;
    let mut kept = 0;
    for i in 0..blocks.len() {
        if input.excluded.contains(&blocks[i].start) {
            runtime_blocks += 1;
            continue;
        }
        blocks[kept] = blocks[i];
        kept += 1;
    }
    let blocks = &mut blocks[..kept];

    // 2. The mappings, and what in them is not a root.
    let maps_text = arena.take::<u8>(MAPS_TEXT_LEN)?;
    let maps_len = sys::procfs::read_maps(maps_text);
    let mappings = arena.take::<Mapping>(MAX_MAPPINGS)?;
    let mapping_count = parse_maps(&maps_text[..maps_len], mappings);
    let mappings = &mut mappings[..mapping_count];
    classify_block_memory(mappings, blocks);
    let exclusions = arena.take::<(usize, usize)>(MAX_OWN_MAPPINGS + 3 + capacity)?;
    let mut exclusion_count =
        crate::sys::OWN_MAPPINGS.snapshot(&mut exclusions[..MAX_OWN_MAPPINGS]);
    if let Some(arena) = crate::runtime::main_arena() {
        exclusions[exclusion_count] = arena;
        exclusion_count += 1;
    }
    for &(start, end) in input.not_roots.iter().filter(|(start, end)| start < end) {
        exclusions[exclusion_count] = (start as usize, end as usize);
        exclusion_count += 1;
    }
    for block in blocks
        .iter()
        .filter(|b| b.flags & block_flags::HEADER_READABLE != 0)
    {
        // SAFETY: every block in the table came from glibc's allocator and is still live, and
        // its chunk header was just found to lie in readable memory.
        if let Some((lo, hi)) = unsafe { crate::runtime::own_mapping_of_block(block.start) } {
            exclusions[exclusion_count] = (lo as usize, hi as usize);
            exclusion_count += 1;
        }
    }
    let exclusions = &mut exclusions[..exclusion_count];
    exclusions.sort_unstable();
    mark_heap_arenas(mappings, blocks);

    let bounce = arena.take::<u64>(BOUNCE_WORDS)?;
    let mark_stack = arena.take::<u32>(mark_stack_len(capacity))?;
    let mut scanner = Scanner::new(blocks, mark_stack, mappings, bounce);

    // 3. Mark from the roots.
    let mut root_bytes = 0u64;
    for thread in input.stopped {
        for &r in &thread.registers {
            scanner.push_without_clique(r, true);
        }
    }
    for &r in input.extra_roots {
        scanner.push_without_clique(r, true);
    }
    scanner.process_mark_stack();
    // A runtime's objects are roots: what they point to is held (the runtime frees them when
    // it decides, by reference counts or its collector, not when a pointer is lost).
    for i in 0..scanner.blocks.len() {
        let block = &mut scanner.blocks[i];
        if block.flags & block_flags::RUNTIME_OBJECT != 0 && block.state != REACHABLE {
            block.state = REACHABLE;
            scanner.push(i);
            scanner.process_mark_stack();
        }
    }
    // A block in the middle of `realloc` is in no table, but its contents are still the
    // program's: scan them as roots. (Read safely: glibc may have unmapped or reused it.)
    for thread in input.stopped {
        let (address, size) = thread.moving_block;
        if address != 0 {
            root_bytes += scanner.scan_root_range(address, address.saturating_add(size), true);
        }
    }
    for mi in 0..scanner.mappings.len() {
        let m = scanner.mappings[mi];
        if m.skip || !m.readable || !m.writable {
            continue;
        }
        let mut from = m.start;
        let stack_pointers = input
            .stopped
            .iter()
            .map(|t| t.sp)
            .chain(core::iter::once(input.scanner_stack_from));
        for sp in stack_pointers {
            if m.start <= sp && sp < m.end {
                // From the stack pointer up. memcheck also counts the red zone below it, but
                // only the words written since the stack pointer last moved up: the frames
                // of functions that just returned are dead to it. Here they are plain
                // memory, and the red zone usually holds such a dead frame (with the pointers
                // it had), while a leaf function's live red-zone data is rarely a block's
                // only pointer: so the red zone is left out.
                from = from.max(sp & !7);
            }
        }
        let mut at = from;
        for &(lo, hi) in exclusions.iter() {
            let (lo, hi) = (lo as u64, hi as u64);
            if hi <= at || lo >= m.end {
                continue;
            }
            if lo > at {
                root_bytes += scanner.scan_root_range(at, lo, m.file_backed);
            }
            at = at.max(hi);
        }
        if at < m.end {
            root_bytes += scanner.scan_root_range(at, m.end, m.file_backed);
        }
    }

    // 4. Cliques: what each unreached block reaches is indirectly lost.
    scanner.mark_cliques();

    // 5. Records per (stack, kind).
    let live_blocks = scanner.blocks.len() as u64;
    let unreadable_bytes = scanner.unreadable_bytes;
    let blocks = scanner.blocks;
    blocks.sort_unstable_by_key(|b| (b.stack, kind_of(b.state)));
    let records = arena.take::<LeakRecord>(capacity)?;
    let site_ages = arena.take::<(u32, u64)>(capacity)?;
    let mut age_count = 0;
    for block in blocks.iter() {
        let ticks_at_start =
            crate::sites::TICKS_AT_START.load(core::sync::atomic::Ordering::Relaxed);
        let born_ns = block.born.saturating_sub(ticks_at_start) as u64 * crate::sites::TICK_NS;
        if age_count > 0 && site_ages[age_count - 1].0 == block.stack {
            site_ages[age_count - 1].1 = site_ages[age_count - 1].1.min(born_ns);
        } else {
            site_ages[age_count] = (block.stack, born_ns);
            age_count += 1;
        }
    }
    let mut count = 0;
    let mut totals = [(0u64, 0u64); 4];
    for block in blocks.iter() {
        if block.flags & block_flags::RUNTIME_OBJECT != 0 {
            runtime_blocks += 1; // a site age, not a record
            continue;
        }
        let kind = kind_of(block.state);
        if let Some(total) = totals.get_mut(kind as usize) {
            total.0 += block.size;
            total.1 += 1;
        }
        if count == 0 || records[count - 1].stack != block.stack || records[count - 1].kind != kind
        {
            records[count] = LeakRecord {
                stack: block.stack,
                kind,
                bytes: 0,
                blocks: 0,
                estimated_bytes: 0.0,
                estimated_blocks: 0.0,
            };
            count += 1;
        }
        let record = &mut records[count - 1];
        record.bytes += block.size;
        record.blocks += 1;
        if input.sample_rate > 0 && block.stack != 0 {
            let weight = crate::sampling::weight(block.size, input.sample_rate);
            record.estimated_blocks += weight;
            record.estimated_bytes += weight * block.size as f64;
        }
    }
    Some(ScanOutput {
        site_ages: &site_ages[..age_count],
        records: &records[..count],
        unreadable_bytes,
        root_bytes,
        live_blocks,
        runtime_blocks,
        totals,
        _arena: arena,
    })
}

fn kind_of(state: u8) -> LeakKind {
    match state {
        UNREACHED => LeakKind::DefinitelyLost,
        INDIRECT => LeakKind::IndirectlyLost,
        POSSIBLE => LeakKind::PossiblyLost,
        _ => LeakKind::StillReachable,
    }
}

/// The mapping that contains `address`, if any (`mappings` sorted by start, as the kernel
/// lists them).
fn mapping_containing(mappings: &[Mapping], address: u64) -> Option<&Mapping> {
    let i = mappings.partition_point(|m| m.start <= address);
    (i > 0 && address < mappings[i - 1].end).then(|| &mappings[i - 1])
}

/// Set each block's [`block_flags`] from the mappings: which blocks can be read with plain
/// loads, whose chunk header can be read, and which have their own mapping. Nothing is read
/// where the mappings do not allow it.
fn classify_block_memory(mappings: &[Mapping], blocks: &mut [Block]) {
    for block in blocks.iter_mut() {
        let Some(m) = mapping_containing(mappings, block.start) else {
            continue;
        };
        let plain_readable = m.readable && !m.file_backed;
        if plain_readable && block.start.saturating_add(block.size) <= m.end {
            block.flags |= block_flags::PLAIN;
        }
        if block.flags & block_flags::RUNTIME_OBJECT != 0 {
            continue; // not a glibc chunk: its "header" is its neighbour's bytes
        }
        let header = block.start.wrapping_sub(16);
        if plain_readable && header >= m.start && header < block.start {
            block.flags |= block_flags::HEADER_READABLE;
            // SAFETY: a live glibc block whose chunk header lies in the same readable
            // anonymous mapping.
            if unsafe { crate::runtime::own_mapping_of_block(block.start) }.is_some() {
                block.flags |= block_flags::OWN_MAPPING;
            }
        }
    }
}

/// Anonymous mappings that hold ordinary (not separately mapped) heap blocks are malloc
/// arenas: their free chunks and bookkeeping are not roots. So are the arenas of a runtime's
/// allocator (pymalloc's) once every object in them is a block the agent knows
/// (`python::objects_tracked_from_start`): their free memory holds stale pointers to blocks
/// freed since, which would make a block that reused that memory and was lost "possibly
/// lost". While objects made before the wrap may live there, such a mapping stays a root (the
/// pointers of those objects are real).
fn mark_heap_arenas(mappings: &mut [Mapping], blocks: &[Block]) {
    let runtime_arenas_known = crate::python::objects_tracked_from_start();
    for m in mappings.iter_mut() {
        if m.skip || m.file_backed || !m.writable {
            continue;
        }
        let first = blocks.partition_point(|b| b.start < m.start);
        for block in &blocks[first..] {
            if block.start >= m.end {
                break;
            }
            if block.flags & block_flags::RUNTIME_OBJECT != 0 {
                if runtime_arenas_known {
                    m.skip = true;
                    break;
                }
                continue;
            }
            let own_mapping = block.flags & block_flags::OWN_MAPPING != 0;
            let header_known = block.flags & block_flags::HEADER_READABLE != 0;
            if header_known && !own_mapping {
                m.skip = true;
                break;
            }
        }
    }
}

/// The mappings of a `/proc/self/maps` text, as the scan sees them, into `out`; how many.
fn parse_maps(text: &[u8], out: &mut [Mapping]) -> usize {
    let mut n = 0;
    for entry in sys::procfs::maps_entries(text).take(out.len()) {
        let path = entry.path;
        let device = path.starts_with(b"/dev/") && path != b"/dev/zero";
        let special = path == b"[heap]" || path == b"[vvar]" || path == b"[vsyscall]";
        out[n] = Mapping {
            start: entry.start,
            end: entry.end,
            readable: entry.readable,
            writable: entry.writable,
            executable: entry.executable,
            file_backed: entry.file_backed,
            skip: device || special,
        };
        n += 1;
    }
    n
}

impl<'a> Scanner<'a> {
    /// A scanner over `blocks` (sorted by start, all unreached, their flags set by
    /// [`classify_block_memory`]) that lie in `mappings` (sorted by start).
    fn new(
        blocks: &'a mut [Block],
        mark_stack: &'a mut [u32],
        mappings: &'a [Mapping],
        bounce: &'a mut [u64],
    ) -> Self {
        let (lowest, highest) = match (blocks.first(), blocks.iter().map(|b| b.end).max()) {
            (Some(first), Some(end)) => (first.start, end),
            _ => (u64::MAX, 0),
        };
        Scanner {
            blocks,
            mark_stack,
            mark_len: 0,
            mappings,
            lowest,
            highest,
            bounce,
            unreadable_bytes: 0,
            vtable_answers: [0; VTABLE_ANSWERS],
        }
    }

    /// After the roots: every block still unreached leads a clique, in address order; the
    /// unreached blocks it reaches are indirectly lost (memcheck's `lc_process_markstack` with
    /// a clique).
    fn mark_cliques(&mut self) {
        for i in 0..self.blocks.len() {
            if self.blocks[i].state == UNREACHED {
                self.push(i);
                self.process_clique(i);
            }
        }
    }

    fn find(&self, pointer: u64) -> Option<usize> {
        if pointer < self.lowest || pointer >= self.highest {
            return None;
        }
        let i = self.blocks.partition_point(|b| b.start <= pointer);
        if i == 0 {
            return None;
        }
        (pointer < self.blocks[i - 1].end).then_some(i - 1)
    }

    fn push(&mut self, index: usize) {
        if self.mark_len < self.mark_stack.len() {
            self.mark_stack[self.mark_len] = index as u32;
            self.mark_len += 1;
        }
    }

    fn pop(&mut self) -> Option<usize> {
        if self.mark_len == 0 {
            return None;
        }
        self.mark_len -= 1;
        Some(self.mark_stack[self.mark_len] as usize)
    }

    /// memcheck's `lc_push_without_clique_if_a_chunk_ptr`.
    fn push_without_clique(&mut self, pointer: u64, prior_definite: bool) {
        let Some(i) = self.find(pointer) else { return };
        let block = self.blocks[i];
        if block.state == REACHABLE {
            return;
        }
        let reached_as_start = pointer == block.start || self.heuristic_applies(pointer, &block);
        if reached_as_start && prior_definite {
            self.blocks[i].state = REACHABLE;
            self.push(i);
        } else if block.state == UNREACHED {
            self.blocks[i].state = POSSIBLE;
            self.push(i);
        }
    }

    fn process_mark_stack(&mut self) {
        while let Some(j) = self.pop() {
            let block = self.blocks[j];
            let prior_definite = block.state == REACHABLE;
            self.for_each_word_of(&block, |scanner, word| {
                scanner.push_without_clique(word, prior_definite);
            });
        }
    }

    fn process_clique(&mut self, leader: usize) {
        while let Some(j) = self.pop() {
            let block = self.blocks[j];
            self.for_each_word_of(&block, |scanner, word| {
                if let Some(k) = scanner.find(word) {
                    if scanner.blocks[k].state == UNREACHED && k != leader {
                        scanner.blocks[k].state = INDIRECT;
                        scanner.push(k);
                    }
                }
            });
        }
    }

    /// Call `f` with every aligned word of `block` that can be read. A block wholly inside
    /// one readable anonymous mapping is read with plain loads; any other is read stretch by
    /// stretch where the mappings allow (a PROT_NONE page inside a block, as in memcheck's
    /// `leak-segv-jmp`, is skipped and counted as unreadable).
    fn for_each_word_of(&mut self, block: &Block, mut f: impl FnMut(&mut Self, u64)) {
        let end = block.start + block.size;
        if block.flags & block_flags::PLAIN != 0 {
            let mut at = block.start;
            while at + 8 <= end {
                // SAFETY: inside a live heap block that lies wholly in a readable anonymous
                // mapping (checked against /proc/self/maps with every other thread stopped).
                let word = unsafe { (at as *const u64).read() };
                f(self, word);
                at += 8;
            }
            return;
        }
        let mut at = block.start;
        let mut buf = [0u64; 64];
        while at + 8 <= end {
            let (count, next) = self.read_stretch(at, end, &mut buf);
            for &word in &buf[..count] {
                f(self, word);
            }
            at = next;
        }
    }

    /// Read the words from `at` towards `end` that lie in one mapping, into `out`: returns how
    /// many were read and where the next stretch starts. Memory in no mapping, or in one that
    /// is not readable, is skipped up to its end (and counted as unreadable).
    fn read_stretch(&mut self, at: u64, end: u64, out: &mut [u64]) -> (usize, u64) {
        let at = (at + 7) & !7;
        let Some(&m) = mapping_containing(self.mappings, at) else {
            let next_start = self
                .mappings
                .get(self.mappings.partition_point(|m| m.start <= at))
                .map_or(end, |m| m.start);
            let next = next_start.min(end).max(at + 8);
            self.unreadable_bytes += next - at;
            return (0, next);
        };
        let stretch_end = m.end.min(end);
        if !m.readable {
            self.unreadable_bytes += stretch_end.saturating_sub(at);
            return (0, stretch_end.max(at + 8));
        }
        let words = (((stretch_end.saturating_sub(at)) / 8) as usize).min(out.len());
        if words == 0 {
            return (0, at + 8);
        }
        if m.file_backed {
            // A file mapping may end past its file (SIGBUS): read through the kernel.
            let got = sys::read_words(at, &mut out[..words]);
            if got == 0 {
                let next = ((at & !4095) + 4096).min(stretch_end).max(at + 8);
                self.unreadable_bytes += next - at;
                return (0, next);
            }
            return (got, at + got as u64 * 8);
        }
        for (i, word) in out[..words].iter_mut().enumerate() {
            // SAFETY: inside a readable anonymous mapping of this process (every other thread
            // is stopped, so the mapping stays as /proc/self/maps listed it).
            *word = unsafe { ((at + i as u64 * 8) as *const u64).read() };
        }
        (words, at + words as u64 * 8)
    }

    /// One word of `block` (at `address`, inside it), where it can be read.
    fn word_of(&mut self, block: &Block, address: u64) -> Option<u64> {
        if block.flags & block_flags::PLAIN != 0 {
            // SAFETY: inside a block that lies wholly in a readable anonymous mapping.
            return Some(unsafe { (address as *const u64).read() });
        }
        let mut word = [0u64];
        let (count, _) = self.read_stretch(address, address + 8, &mut word);
        (count == 1).then_some(word[0])
    }

    /// Scan `[from, to)` as roots. File-backed memory is read through `process_vm_readv`,
    /// which fails cleanly where a direct read would raise `SIGBUS` (a mapping past the end
    /// of its file). Returns the bytes scanned.
    fn scan_root_range(&mut self, from: u64, to: u64, file_backed: bool) -> u64 {
        let from = (from + 7) & !7;
        let to = to & !7;
        if from >= to {
            return 0;
        }
        if !file_backed {
            if to - from < sys::POPULATED_RUNS_THRESHOLD {
                self.scan_anonymous(from, to);
                return to - from;
            }
            // Only the pages that hold data: the rest read as zeros.
            let mut scanned = 0;
            sys::for_each_populated_run(from, to, |lo, hi| {
                self.scan_anonymous(lo, hi);
                scanned += hi - lo;
            });
            return scanned;
        }
        let mut at = from;
        let mut scanned = 0;
        while at < to {
            let words = (((to - at) / 8) as usize).min(self.bounce.len());
            let got = sys::read_words(at, &mut self.bounce[..words]);
            if got == 0 {
                // Unreadable page: skip it.
                at = (at & !4095) + 4096;
                continue;
            }
            for k in 0..got {
                let word = self.bounce[k];
                self.push_without_clique(word, true);
            }
            self.process_mark_stack();
            scanned += got as u64 * 8;
            at += got as u64 * 8;
        }
        scanned
    }

    /// Scan `[from, to)`, 8-byte aligned and inside an anonymous readable mapping, as roots.
    fn scan_anonymous(&mut self, from: u64, to: u64) {
        let mut at = from;
        while at < to {
            // SAFETY: an anonymous, readable mapping of this process, not the heap.
            let word = unsafe { (at as *const u64).read_volatile() };
            self.push_without_clique(word, true);
            at += 8;
            if self.mark_len > 0 {
                self.process_mark_stack();
            }
        }
    }

    /// memcheck's interior-pointer heuristics (`--leak-check-heuristics=all`, its default).
    fn heuristic_applies(&mut self, pointer: u64, block: &Block) -> bool {
        // An unreadable word reads as 0, which no heuristic accepts.
        let first = self.word_of(block, block.start).unwrap_or(0);
        let offset = pointer - block.start;
        // std::string (pre-C++11 ABI): length, capacity, refcount, then the characters.
        if offset == 24 && block.size >= 24 {
            let capacity = self.word_of(block, block.start + 8).unwrap_or(0);
            if capacity.checked_add(25) == Some(block.size) && first <= capacity {
                return true;
            }
        }
        if offset == 8 && block.size >= 8 {
            // length64: the first word is the size of the rest of the block.
            if first > 0 && block.size - 8 == first {
                return true;
            }
            // new[]: the first word is the element count of an array of destructible objects.
            if first > 0 && (block.size - 8).is_multiple_of(first) {
                return true;
            }
        }
        // Multiple inheritance: a pointer to a secondary vtable pointer inside an object whose
        // first word is also a vtable pointer.
        if pointer.is_multiple_of(8) && pointer + 8 <= block.start + block.size && block.size >= 8 {
            let inner = self.word_of(block, pointer).unwrap_or(0);
            if inner.is_multiple_of(8)
                && inner >= 4096
                && first.is_multiple_of(8)
                && first >= 4096
                && self.is_vtable(inner)
                && self.is_vtable(first)
            {
                return true;
            }
        }
        false
    }

    fn mapping_of(&self, address: u64) -> Option<&Mapping> {
        let i = self.mappings.partition_point(|m| m.start <= address);
        (i > 0 && address < self.mappings[i - 1].end).then(|| &self.mappings[i - 1])
    }

    /// memcheck's `aligned_ptr_above_page0_is_vtable_addr`: the address lies in a readable
    /// file mapping and the table there holds (besides nulls) at least two pointers into
    /// executable file mappings before anything else.
    fn is_vtable(&mut self, address: u64) -> bool {
        let slot = (address as usize >> 3) % VTABLE_ANSWERS;
        let answer = self.vtable_answers[slot];
        if answer != 0 && answer & !1 == address {
            return answer & 1 == 1;
        }
        let is = self.looks_like_vtable(address);
        self.vtable_answers[slot] = address | is as u64;
        is
    }

    /// [`Scanner::is_vtable`] without the memo.
    fn looks_like_vtable(&self, address: u64) -> bool {
        let Some(m) = self.mapping_of(address) else {
            return false;
        };
        if !m.file_backed || !m.readable {
            return false;
        }
        let max = (address + 20 * 8).min(m.end - 8);
        let mut words = [0u64; 21];
        let count = (((max - address) / 8) + 1).min(21) as usize;
        let got = sys::read_words(address, &mut words[..count]);
        let mut function_pointers = 0;
        for &candidate in &words[..got] {
            if candidate == 0 {
                continue;
            }
            match self.mapping_of(candidate) {
                Some(t) if t.file_backed && t.executable => {
                    function_pointers += 1;
                    if function_pointers == 2 {
                        return true;
                    }
                }
                _ => return false,
            }
        }
        false
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const BLOCK_WORDS: usize = 8;
    /// Blocks sit every 16 words of the synthetic heap (the gap stands for chunk headers).
    const STRIDE_WORDS: usize = 16;

    /// A synthetic heap of `count` blocks of 64 bytes, each with the stack id of its index, in
    /// memory of this test, and roots that are plain words.
    struct Heap {
        memory: Vec<u64>,
        count: usize,
    }

    impl Heap {
        fn new(count: usize) -> Heap {
            Heap {
                memory: vec![0; (count + 1) * STRIDE_WORDS],
                count,
            }
        }

        fn address(&self, block: usize) -> u64 {
            self.memory.as_ptr() as u64 + ((block + 1) * STRIDE_WORDS * 8) as u64
        }

        /// Block `from`'s word `word` points at `to`'s start plus `offset` bytes.
        fn link(&mut self, from: usize, word: usize, to: usize, offset: u64) {
            assert!(word < BLOCK_WORDS);
            let target = self.address(to) + offset;
            self.memory[(from + 1) * STRIDE_WORDS + word] = target;
        }

        fn set_word(&mut self, block: usize, word: usize, value: u64) {
            self.memory[(block + 1) * STRIDE_WORDS + word] = value;
        }

        /// Classify with `roots` as root words: each block's kind.
        fn classify(&self, roots: &[u64]) -> Vec<LeakKind> {
            let mut blocks: Vec<Block> = (0..self.count)
                .map(|i| Block {
                    start: self.address(i),
                    end: self.address(i) + (BLOCK_WORDS * 8) as u64,
                    size: (BLOCK_WORDS * 8) as u64,
                    stack: i as u32,
                    state: UNREACHED,
                    flags: 0,
                    _pad: [0; 2],
                    born: 0,
                })
                .collect();
            let start = self.memory.as_ptr() as u64;
            let mappings = [Mapping {
                start,
                end: start + (self.memory.len() * 8) as u64,
                readable: true,
                writable: true,
                executable: false,
                file_backed: false,
                skip: false,
            }];
            // As `classify_block_memory` finds them, without its look at glibc's header.
            for block in &mut blocks {
                block.flags = block_flags::PLAIN;
            }
            let mut mark_stack = vec![0u32; mark_stack_len(self.count)];
            let mut bounce = vec![0u64; BOUNCE_WORDS];
            let mut scanner = Scanner::new(&mut blocks, &mut mark_stack, &mappings, &mut bounce);
            let root_range = roots.as_ptr() as u64;
            scanner.scan_root_range(root_range, root_range + (roots.len() * 8) as u64, false);
            scanner.mark_cliques();
            blocks.iter().map(|b| kind_of(b.state)).collect()
        }
    }

    use LeakKind::{DefinitelyLost as Definite, IndirectlyLost as Indirect};
    use LeakKind::{PossiblyLost as Possible, StillReachable as Reachable};

    #[test]
    fn a_chain_from_a_root_is_still_reachable_and_one_from_nothing_is_lost() {
        let mut heap = Heap::new(5);
        heap.link(0, 3, 1, 0); // root -> 0 -> 1
        heap.link(2, 0, 3, 0); // nothing -> 2 -> 3 -> 4
        heap.link(3, 7, 4, 0);
        let roots = [0, heap.address(0), 7];
        assert_eq!(
            heap.classify(&roots),
            [Reachable, Reachable, Definite, Indirect, Indirect]
        );
    }

    #[test]
    fn an_unreached_cycle_has_its_first_block_definitely_and_the_rest_indirectly_lost() {
        let mut heap = Heap::new(4);
        // 1 -> 2 -> 3 -> 1, and 0 -> 3: leaders go in address order, so 0 leads first and
        // takes 3, then 1 and 2 through the cycle: all but 0 are indirectly lost.
        heap.link(1, 0, 2, 0);
        heap.link(2, 0, 3, 0);
        heap.link(3, 0, 1, 0);
        heap.link(0, 0, 3, 0);
        assert_eq!(heap.classify(&[]), [Definite, Indirect, Indirect, Indirect]);
        // Without 0's pointer the cycle's lowest block leads.
        let mut heap = Heap::new(3);
        heap.link(0, 0, 1, 0);
        heap.link(1, 0, 2, 0);
        heap.link(2, 0, 0, 0);
        assert_eq!(heap.classify(&[]), [Definite, Indirect, Indirect]);
    }

    #[test]
    fn a_leader_reached_from_a_later_clique_is_demoted_to_indirect() {
        let mut heap = Heap::new(2);
        heap.link(1, 0, 0, 0); // 1 -> 0: 0 leads first, then 1's clique takes it
        assert_eq!(heap.classify(&[]), [Indirect, Definite]);
    }

    #[test]
    fn a_reachable_cycle_is_still_reachable() {
        let mut heap = Heap::new(3);
        heap.link(0, 1, 1, 0);
        heap.link(1, 1, 0, 0);
        let roots = [heap.address(1)];
        assert_eq!(heap.classify(&roots), [Reachable, Reachable, Definite]);
    }

    #[test]
    fn an_interior_pointer_makes_a_block_possibly_lost_and_so_what_it_reaches() {
        let mut heap = Heap::new(4);
        heap.link(0, 0, 1, 0); // 0 -> 1 (to its start)
        heap.link(1, 0, 2, 40); // 1 -> inside 2
        heap.link(3, 0, 1, 0); // unreached 3 -> 1 changes nothing: 1 was reached first
        let roots = [heap.address(0) + 16];
        assert_eq!(
            heap.classify(&roots),
            [Possible, Possible, Possible, Definite]
        );
    }

    #[test]
    fn a_pointer_past_a_block_reaches_nothing() {
        let heap = Heap::new(2);
        // The byte after block 0's end, and the gap before block 1: in no block.
        let roots = [heap.address(0) + 64, heap.address(1) - 8];
        assert_eq!(heap.classify(&roots), [Definite, Definite]);
    }

    #[test]
    fn memchecks_length64_and_new_array_heuristics_make_interior_pointers_reachable() {
        let mut heap = Heap::new(3);
        heap.set_word(0, 0, 64 - 8); // length64: the rest of the block's size
        heap.set_word(1, 0, 7); // new[]: 56 bytes of 7 elements of 8
        heap.set_word(2, 0, 5); // neither: 56 is no multiple of 5
        let roots = [
            heap.address(0) + 8,
            heap.address(1) + 8,
            heap.address(2) + 8,
        ];
        assert_eq!(heap.classify(&roots), [Reachable, Reachable, Possible]);
    }

    #[test]
    fn an_interior_root_then_a_start_root_makes_the_block_reachable() {
        let mut heap = Heap::new(2);
        heap.link(0, 0, 1, 0);
        let roots = [heap.address(0) + 16, heap.address(0)];
        assert_eq!(heap.classify(&roots), [Reachable, Reachable]);
    }

    #[test]
    fn vtable_answers_are_remembered_per_address_and_a_shared_slot_is_not_mistaken() {
        // Two "vtables" of two function pointers each, and a table of data, in one
        // file-backed readable mapping; the functions in a file-backed executable one. The
        // second vtable and the data share a memo slot (VTABLE_ANSWERS words apart).
        let code = [0u64; 4];
        let code_start = code.as_ptr() as u64;
        let function = code_start + 8;
        let mut tables = vec![0u64; 2 * VTABLE_ANSWERS + 8];
        tables[0..2].copy_from_slice(&[function, function]);
        tables[VTABLE_ANSWERS..VTABLE_ANSWERS + 2].copy_from_slice(&[function, function]);
        tables[2 * VTABLE_ANSWERS] = 12345;
        let start = tables.as_ptr() as u64;
        let mapping = |start: u64, end: u64, executable: bool| Mapping {
            start,
            end,
            readable: true,
            writable: false,
            executable,
            file_backed: true,
            skip: false,
        };
        let mut mappings = [
            mapping(start, start + (tables.len() * 8) as u64, false),
            mapping(code_start, code_start + 32, true),
        ];
        mappings.sort_by_key(|m| m.start);
        let (mut blocks, mut mark_stack, mut bounce) = (Vec::new(), vec![0u32; 4], vec![0u64; 4]);
        let mut scanner = Scanner::new(&mut blocks, &mut mark_stack, &mappings, &mut bounce);
        let second = start + (VTABLE_ANSWERS * 8) as u64;
        let data = start + (2 * VTABLE_ANSWERS * 8) as u64;
        for _ in 0..2 {
            assert!(scanner.is_vtable(start));
            assert!(scanner.is_vtable(second));
            assert!(!scanner.is_vtable(data));
            assert!(scanner.is_vtable(second));
        }
        assert_eq!(
            scanner.vtable_answers[(second as usize >> 3) % VTABLE_ANSWERS],
            second | 1
        );
    }
}
