//! The reader, fuzzed: garbage, truncated and bit-flipped files, and structurally valid
//! chunks (right lengths, right checksums) with random or mutated contents, so that the
//! checksum does not hide the decoders.
//!
//! For every input: no panic; `Ok` or a known error; every damage message names a byte
//! offset; and no single allocation larger than a small multiple of the input's size (an
//! allocation sized by a corrupt count or length field would be far larger), checked by a
//! counting global allocator.
//!
//! Bounded for CI (a few seconds). `LEAKSCOPE_FUZZ_CASES=N` runs N cases per strategy
//! instead, `LEAKSCOPE_FUZZ_SEED=S` another seed (a failure prints the seed and case to
//! replay).

mod common;

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;

use common::*;
use leakscope_format::*;

/// Records, per thread, the largest single allocation since the last reset.
struct LargestAllocation;

thread_local! {
    static LARGEST: Cell<usize> = const { Cell::new(0) };
}

// SAFETY: every call is passed on to the system allocator unchanged; the bookkeeping only
// reads the size and touches a const-initialized thread-local `Cell` (no allocation).
unsafe impl GlobalAlloc for LargestAllocation {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        note(layout.size());
        // SAFETY: the caller's promises about `layout` hold for `System` too.
        unsafe { System.alloc(layout) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: `ptr` came from `System` with this layout.
        unsafe { System.dealloc(ptr, layout) }
    }
    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        note(layout.size());
        // SAFETY: as for `alloc`.
        unsafe { System.alloc_zeroed(layout) }
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        note(new_size);
        // SAFETY: `ptr` came from `System` with `layout`; the caller's promises about
        // `new_size` hold for `System` too.
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

fn note(size: usize) {
    // `try_with`: the thread-local may be gone while a thread exits.
    let _ = LARGEST.try_with(|largest| largest.set(largest.get().max(size)));
}

#[global_allocator]
static ALLOCATOR: LargestAllocation = LargestAllocation;

fn cases() -> usize {
    std::env::var("LEAKSCOPE_FUZZ_CASES")
        .ok()
        .and_then(|n| n.parse().ok())
        .unwrap_or(2_000)
}

fn seed() -> u64 {
    std::env::var("LEAKSCOPE_FUZZ_SEED")
        .ok()
        .and_then(|n| n.parse().ok())
        .unwrap_or(0x1ea6_5c09)
}

/// Read `file` and check the reader's promises.
fn check(file: &[u8], what: &str) {
    LARGEST.with(|largest| largest.set(0));
    let result = read_profile_bytes(file);
    let largest = LARGEST.with(Cell::get);
    // Decoded strings may grow 3-fold (a replacement character for each invalid byte),
    // records somewhat (a frame of 9 bytes is 16 in memory) and vectors double as they
    // grow: 8 times the input and a page is generous for honest allocations and far below
    // what a count field of up to 2^32 would ask for.
    let bound = 8 * file.len() + 4096;
    assert!(
        largest <= bound,
        "{what}: an allocation of {largest} bytes for a {}-byte file",
        file.len()
    );
    match result {
        Ok(profile) => {
            if let Some(damage) = &profile.damage {
                assert!(damage.contains("at byte "), "{what}: {damage}");
            }
        }
        Err(error) => {
            let text = error.to_string();
            assert!(text.contains("byte"), "{what}: {text}");
        }
    }
}

fn random_bytes(rng: &mut fastrand::Rng, len: usize) -> Vec<u8> {
    (0..len).map(|_| rng.u8(..)).collect()
}

/// A value a decoder is likely to trip over: small counts, lengths near the payload's,
/// extremes.
fn nasty_u32(rng: &mut fastrand::Rng, payload_len: usize) -> u32 {
    match rng.u8(..6) {
        0 => rng.u32(..4),
        1 => rng.u32(..64),
        2 => payload_len as u32 + rng.u32(..3),
        3 => u32::MAX - rng.u32(..2),
        4 => 1 << rng.u32(..32),
        _ => rng.u32(..),
    }
}

/// Flip a bit, replace a byte, or overwrite 4 bytes (a count or length, where it lands on
/// one) with a nasty value, one to three times.
fn mutate_payload(rng: &mut fastrand::Rng, payload: &mut [u8]) {
    if payload.is_empty() {
        return;
    }
    for _ in 0..rng.usize(1..4) {
        match rng.u8(..3) {
            0 => {
                let at = rng.usize(..payload.len());
                payload[at] ^= 1 << rng.u8(..8);
            }
            1 => {
                let at = rng.usize(..payload.len());
                payload[at] = rng.u8(..);
            }
            _ if payload.len() >= 4 => {
                let at = rng.usize(..=payload.len() - 4);
                let value = nasty_u32(rng, payload.len());
                payload[at..at + 4].copy_from_slice(&value.to_le_bytes());
            }
            _ => {}
        }
    }
}

/// Rebuild `file` with one chunk's payload mutated (or cut, or grown) and its checksum
/// made right again.
fn with_valid_checksum_mutation(rng: &mut fastrand::Rng, file: &[u8]) -> Vec<u8> {
    let boundaries = chunk_boundaries(file);
    let target = rng.usize(..boundaries.len() - 1);
    let mut out = file[..HEADER_LEN].to_vec();
    for (index, pair) in boundaries.windows(2).enumerate() {
        let (at, end) = (pair[0], pair[1]);
        let kind = u16::from_le_bytes([file[at], file[at + 1]]);
        let mut payload = file[at + CHUNK_HEADER_LEN..end].to_vec();
        if index == target {
            match rng.u8(..4) {
                0 => payload.truncate(rng.usize(..=payload.len())),
                1 => {
                    let len = rng.usize(..16);
                    payload.extend(random_bytes(rng, len));
                }
                _ => mutate_payload(rng, &mut payload),
            }
        }
        push_chunk(&mut out, kind, &payload);
    }
    out
}

#[test]
fn garbage_never_panics_nor_allocates_by_its_fields() {
    let mut rng = fastrand::Rng::with_seed(seed());
    for case in 0..cases() {
        let len = rng.usize(..600);
        let mut file = random_bytes(&mut rng, len);
        // Half of them get a valid header, so that the chunk reader is reached.
        if rng.bool() && file.len() >= HEADER_LEN {
            file[..HEADER_LEN].copy_from_slice(&header(rng.u32(1..=2)));
        }
        check(&file, &format!("seed {} garbage case {case}", seed()));
    }
}

#[test]
fn truncated_and_flipped_files_never_panic() {
    let mut rng = fastrand::Rng::with_seed(seed() ^ 1);
    let file = encode_profile(&sample_profile(), 400);
    for case in 0..cases() {
        let mut bad = file.clone();
        for _ in 0..rng.usize(1..4) {
            let at = rng.usize(..bad.len());
            bad[at] ^= 1 << rng.u8(..8);
        }
        bad.truncate(rng.usize(..=bad.len()));
        check(&bad, &format!("seed {} flip case {case}", seed()));
    }
}

#[test]
fn valid_chunks_with_mutated_contents_never_panic() {
    let mut rng = fastrand::Rng::with_seed(seed() ^ 2);
    let files = [
        encode_profile(&sample_profile(), 160),
        encode_profile(&sample_profile(), 1 << 16),
    ];
    for case in 0..cases() {
        let file = &files[case % 2];
        let mut bad = with_valid_checksum_mutation(&mut rng, file);
        if rng.u8(..4) == 0 {
            // And as a version 1 file: the v2 stacks read with the v1 layout.
            bad[8..12].copy_from_slice(&1u32.to_le_bytes());
        }
        check(&bad, &format!("seed {} mutation case {case}", seed()));
    }
}

#[test]
fn valid_chunks_of_random_contents_never_panic() {
    let mut rng = fastrand::Rng::with_seed(seed() ^ 3);
    for case in 0..cases() {
        let mut file = header(rng.u32(1..=2));
        for _ in 0..rng.usize(1..6) {
            let kind = if rng.u8(..8) == 0 {
                rng.u16(..)
            } else {
                rng.u16(1..=18)
            };
            let len = rng.usize(..200);
            let mut payload = random_bytes(&mut rng, len);
            // Counts and lengths where decoders look for them: at the start and after the
            // fixed fields of the batch chunks.
            for at in [0, 8, 40, 66, 114] {
                if rng.bool() && at + 4 <= payload.len() {
                    let value = nasty_u32(&mut rng, payload.len());
                    payload[at..at + 4].copy_from_slice(&value.to_le_bytes());
                }
            }
            push_chunk(&mut file, kind, &payload);
        }
        check(&file, &format!("seed {} random chunk case {case}", seed()));
    }
}
