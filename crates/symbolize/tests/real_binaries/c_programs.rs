//! C programs: DWARF at -O0 and -O2 (with an always-inlined function), the ELF symbol table
//! alone, and nothing at all.

use leakscope_symbolize::Symbolizer;

use crate::harness::*;

const SOURCE: &str = "leak.c";

/// The two stacks of leak.c, as return addresses in the file: malloc in process_request, and
/// strdup in make_copy (inlined into copy_name).
fn leak_c_stacks(binary: &std::path::Path) -> [Vec<u64>; 2] {
    [
        vec![
            return_address(binary, "process_request", "malloc@plt"),
            return_address(binary, "main", "process_request"),
        ],
        vec![
            return_address(binary, "copy_name", "strdup@plt"),
            return_address(binary, "main", "copy_name"),
        ],
    ]
}

fn relocated(stack: &[u64], bias: u64) -> Vec<u64> {
    stack.iter().map(|address| address + bias).collect()
}

fn check_full_debug_info(optimization: &str) {
    let workdir = Workdir::new();
    let binary = workdir.compile("gcc", SOURCE, "leak", &["-g", optimization]);
    let [malloc_stack, strdup_stack] = leak_c_stacks(&binary);
    let profile = profile_with(
        vec![module_at(&binary, PROGRAM_BIAS, Vec::new())],
        &[
            relocated(&malloc_stack, PROGRAM_BIAS),
            relocated(&strdup_stack, PROGRAM_BIAS),
        ],
    );

    let mut symbolizer = Symbolizer::new();
    let frames = symbolizer.symbolize(&profile, &[1, 2]);

    assert_eq!(
        describe(&frames[&1]),
        [
            format!("process_request (leak.c:{})", line_of(SOURCE, "@malloc")),
            format!("main (leak.c:{})", line_of(SOURCE, "@process_request")),
        ]
    );
    assert_eq!(
        describe(&frames[&2]),
        [
            format!(
                "make_copy (leak.c:{}) [inlined]",
                line_of(SOURCE, "@strdup")
            ),
            format!("copy_name (leak.c:{})", line_of(SOURCE, "@make_copy")),
            format!("main (leak.c:{})", line_of(SOURCE, "@copy_name")),
        ]
    );

    // Frames report the return address the agent recorded, not the looked-up one, and the
    // inlined frame shares the address of the function it was inlined into.
    let binary_path = binary.to_string_lossy();
    for (frame, address) in frames[&1].iter().zip(&malloc_stack) {
        assert_eq!(frame.address, address + PROGRAM_BIAS);
        assert_eq!(frame.module_offset, Some(*address));
        assert_eq!(frame.module.as_deref(), Some(&*binary_path));
    }
    assert_eq!(frames[&2][0].address, strdup_stack[0] + PROGRAM_BIAS);
    assert_eq!(frames[&2][1].address, strdup_stack[0] + PROGRAM_BIAS);
    assert!(symbolizer.notes().is_empty(), "{:?}", symbolizer.notes());
}

#[test]
fn debug_info_names_functions_files_lines_and_inlining_at_o0() {
    check_full_debug_info("-O0");
}

#[test]
fn debug_info_names_functions_files_lines_and_inlining_at_o2() {
    check_full_debug_info("-O2");
}

#[test]
fn a_binary_without_debug_info_falls_back_to_its_symbol_table() {
    let workdir = Workdir::new();
    let binary = workdir.compile("gcc", SOURCE, "leak", &["-g", "-O2"]);
    let [malloc_stack, strdup_stack] = leak_c_stacks(&binary);
    let stripped = workdir.strip(&binary, "leak.nodebug", &["--strip-debug"]);
    let profile = profile_with(
        vec![module_at(&stripped, PROGRAM_BIAS, Vec::new())],
        &[
            relocated(&malloc_stack, PROGRAM_BIAS),
            relocated(&strdup_stack, PROGRAM_BIAS),
        ],
    );

    let frames = Symbolizer::new().symbolize(&profile, &[1, 2]);

    assert_eq!(describe(&frames[&1]), ["process_request", "main"]);
    // Without DWARF there is no record of make_copy having been inlined.
    assert_eq!(describe(&frames[&2]), ["copy_name", "main"]);
    assert!(frames[&1]
        .iter()
        .all(|frame| frame.file.is_none() && frame.line.is_none()));
}

#[test]
fn a_fully_stripped_binary_gives_module_and_offset() {
    let workdir = Workdir::new();
    let binary = workdir.compile("gcc", SOURCE, "leak", &["-g", "-O2"]);
    let [malloc_stack, _] = leak_c_stacks(&binary);
    let stripped = workdir.strip(&binary, "leak.stripped", &["--strip-all"]);
    let profile = profile_with(
        vec![module_at(&stripped, PROGRAM_BIAS, Vec::new())],
        &[relocated(&malloc_stack, PROGRAM_BIAS)],
    );

    let frames = Symbolizer::new().symbolize(&profile, &[1]);

    assert_eq!(describe(&frames[&1]), ["???", "???"]);
    let stripped_path = stripped.to_string_lossy();
    for (frame, address) in frames[&1].iter().zip(&malloc_stack) {
        assert_eq!(frame.module.as_deref(), Some(&*stripped_path));
        assert_eq!(frame.module_offset, Some(*address));
    }
}

#[test]
fn a_libc_function_that_allocates_for_the_program_stays_on_top() {
    let workdir = Workdir::new();
    let binary = workdir.compile("gcc", SOURCE, "leak", &["-g", "-O2"]);
    let [_, strdup_stack] = leak_c_stacks(&binary);
    let reported = run(std::process::Command::new("gcc").arg("-print-file-name=libc.so.6"));
    let libc = std::fs::canonicalize(reported.trim()).expect("libc.so.6 exists");
    let starts = symbol_addresses(&libc, true, |name| name == "strdup");
    assert_eq!(starts.len(), 1, "one strdup in {}", libc.display());
    let listing = disassemble(&libc, Some((starts[0], starts[0] + 0x80)));
    // The listing names the function by whichever alias objdump prefers (__strdup).
    let header = listing
        .lines()
        .find_map(|line| {
            line.strip_suffix(">:")?
                .split_once('<')
                .map(|(_, name)| name)
        })
        .expect("the listing starts with the function");
    let header = header.split('@').next().unwrap();
    let malloc_return = return_addresses_in(&listing, header, |target| target == "malloc@plt")[0];
    let mut stack = vec![malloc_return + LIBRARY_BIAS];
    stack.extend(relocated(&strdup_stack, PROGRAM_BIAS));
    let profile = profile_with(
        vec![
            module_at(&binary, PROGRAM_BIAS, Vec::new()),
            module_at(&libc, LIBRARY_BIAS, Vec::new()),
        ],
        &[stack],
    );

    let frames = Symbolizer::new().symbolize(&profile, &[1]);

    let described = describe(&frames[&1]);
    assert_eq!(described.len(), 4, "{described:?}");
    assert_eq!(
        frames[&1][0].module.as_deref(),
        Some(&*libc.to_string_lossy())
    );
    assert_eq!(
        described[1..],
        [
            format!(
                "make_copy (leak.c:{}) [inlined]",
                line_of(SOURCE, "@strdup")
            ),
            format!("copy_name (leak.c:{})", line_of(SOURCE, "@make_copy")),
            format!("main (leak.c:{})", line_of(SOURCE, "@copy_name")),
        ]
    );
    // The libc frame is named from its symbol table, or from its debug info where libc6-dbg
    // is installed, which names it by glibc's internal alias (`__GI___strdup`, shown without
    // the `__GI_`).
    let libc_function = frames[&1][0].function.as_deref();
    assert!(
        matches!(libc_function, Some("strdup" | "__strdup")),
        "{described:?}"
    );
}
