//! Rust: names demangled without their hash, and the allocator shims and `alloc::raw_vec`
//! internals dropped from the top of the stack.

use std::path::Path;

use leakscope_symbolize::Symbolizer;

use crate::harness::*;

const SOURCE: &str = "leaky.rs";

/// An address inside the one function whose demangled name `matches` accepts, as a return
/// address would point into it.
fn inside_function(binary: &Path, what: &str, matches: impl Fn(&str) -> bool) -> u64 {
    let starts = symbol_addresses(binary, false, matches);
    assert!(!starts.is_empty(), "no {what} in {}", binary.display());
    starts[0] + 2
}

#[test]
fn rust_names_lose_their_hash_and_allocator_frames_are_dropped() {
    let workdir = Workdir::new();
    let binary = workdir.compile("rustc", SOURCE, "leaky", &["-g", "-C", "opt-level=0"]);
    let rust_alloc = inside_function(&binary, "__rust_alloc", |name| {
        name == "__rust_alloc" || name == "__rustc::__rust_alloc"
    });
    let finish_grow = inside_function(&binary, "finish_grow", |name| {
        name.trim_start_matches('<').starts_with("alloc::raw_vec::") && name.contains("finish_grow")
    });
    let push_return = return_addresses_in(
        &disassemble(&binary, None),
        "leaky::make_buffer",
        |target| target.ends_with("::push"),
    )[0];

    let profile = profile_with(
        vec![module_at(&binary, PROGRAM_BIAS, Vec::new())],
        &[vec![
            rust_alloc + PROGRAM_BIAS,
            finish_grow + PROGRAM_BIAS,
            push_return + PROGRAM_BIAS,
        ]],
    );

    let frames = Symbolizer::new().symbolize(&profile, &[1]);

    assert_eq!(
        describe(&frames[&1]),
        [format!(
            "leaky::make_buffer (leaky.rs:{})",
            line_of(SOURCE, "@push")
        )]
    );
}
