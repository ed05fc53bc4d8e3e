//! C++: demangled names from DWARF and from the symbol table, and libstdc++'s `operator new`
//! (resolved from its dynamic symbol table) dropped from the top of the stack.

use std::path::PathBuf;
use std::process::Command;

use leakscope_symbolize::Symbolizer;

use crate::harness::*;

const SOURCE: &str = "widgets.cpp";

/// The libstdc++ that g++ links against, and the return address inside its
/// `operator new(unsigned long)` after the call to malloc.
fn libstdcxx_operator_new_return() -> (PathBuf, u64) {
    let reported = run(Command::new("g++").arg("-print-file-name=libstdc++.so.6"));
    let library = std::fs::canonicalize(reported.trim()).expect("libstdc++.so.6 exists");
    let starts = symbol_addresses(&library, true, |name| name == "operator new(unsigned long)");
    assert_eq!(
        starts.len(),
        1,
        "one operator new(unsigned long) in {}",
        library.display()
    );
    let listing = disassemble(&library, Some((starts[0], starts[0] + 0x100)));
    let returns = return_addresses_in(&listing, "operator new(unsigned long)", |target| {
        target == "malloc@plt"
    });
    (library, returns[0])
}

#[test]
fn cxx_frames_are_demangled_and_operator_new_is_dropped() {
    let workdir = Workdir::new();
    let binary = workdir.compile("g++", SOURCE, "widgets", &["-g", "-O0"]);
    let listing = disassemble(&binary, None);
    let call_new = |function: &str, operator: &str| {
        return_addresses_in(&listing, function, |target| {
            target == format!("{operator}(unsigned long)@plt")
        })[0]
    };
    let build_new = call_new("shapes::Factory::build(int)", "operator new");
    let scratch_new = call_new("shapes::Factory::scratch(unsigned long)", "operator new[]");
    let main_build = return_addresses_in(&listing, "main", |target| {
        target == "shapes::Factory::build(int)"
    })[0];
    let (library, operator_new_return) = libstdcxx_operator_new_return();
    let in_library = operator_new_return + LIBRARY_BIAS;

    let profile = profile_with(
        vec![
            module_at(&binary, PROGRAM_BIAS, Vec::new()),
            module_at(&library, LIBRARY_BIAS, Vec::new()),
        ],
        &[
            vec![
                in_library,
                build_new + PROGRAM_BIAS,
                main_build + PROGRAM_BIAS,
            ],
            // operator new[] tail-calls operator new, so it leaves no frame of its own.
            vec![in_library, scratch_new + PROGRAM_BIAS],
            vec![in_library],
        ],
    );

    let frames = Symbolizer::new().symbolize(&profile, &[1, 2, 3]);

    assert_eq!(
        describe(&frames[&1]),
        [
            format!(
                "shapes::Factory::build(int) (widgets.cpp:{})",
                line_of(SOURCE, "@new")
            ),
            format!("main (widgets.cpp:{})", line_of(SOURCE, "@build")),
        ]
    );
    assert_eq!(
        describe(&frames[&2]),
        [format!(
            "shapes::Factory::scratch(unsigned long) (widgets.cpp:{})",
            line_of(SOURCE, "@new[]")
        )]
    );
    // A stack that is nothing but the allocator keeps its frame, which shows that the
    // library frame was named (from libstdc++'s dynamic symbols) before it was dropped above.
    assert_eq!(describe(&frames[&3]), ["operator new(unsigned long)"]);
    assert_eq!(frames[&3][0].module_offset, Some(operator_new_return));
}

#[test]
fn cxx_names_from_the_symbol_table_are_demangled() {
    let workdir = Workdir::new();
    let binary = workdir.compile("g++", SOURCE, "widgets", &["-g", "-O0"]);
    let build_new = return_addresses_in(
        &disassemble(&binary, None),
        "shapes::Factory::build(int)",
        |target| target == "operator new(unsigned long)@plt",
    )[0];
    let stripped = workdir.strip(&binary, "widgets.nodebug", &["--strip-debug"]);
    let profile = profile_with(
        vec![module_at(&stripped, PROGRAM_BIAS, Vec::new())],
        &[vec![build_new + PROGRAM_BIAS]],
    );

    let frames = Symbolizer::new().symbolize(&profile, &[1]);

    assert_eq!(describe(&frames[&1]), ["shapes::Factory::build(int)"]);
}
