//! Separate debug info (by build id and by `.gnu_debuglink`), binaries that changed since the
//! run, and modules that cannot be read.

use std::path::{Path, PathBuf};
use std::process::Command;

use leakscope_symbolize::Symbolizer;

use crate::harness::*;

const SOURCE: &str = "leak.c";

/// leak.c built with debug info, the return address of its malloc call, and the expected
/// description of that frame.
fn leak_binary(workdir: &Workdir) -> (PathBuf, u64, String) {
    let binary = workdir.compile("gcc", SOURCE, "leak", &["-g", "-O2", "-Wl,--build-id"]);
    let malloc_return = return_address(&binary, "process_request", "malloc@plt");
    let expected = format!("process_request (leak.c:{})", line_of(SOURCE, "@malloc"));
    (binary, malloc_return, expected)
}

fn only_keep_debug(binary: &Path, output: &Path) {
    run(Command::new("objcopy")
        .arg("--only-keep-debug")
        .arg(binary)
        .arg(output));
}

/// Install `binary`'s debug info under `debug_dir` by build id, as distributions do; returns
/// the build id.
fn install_debug_file_by_build_id(binary: &Path, debug_dir: &Path) -> Vec<u8> {
    let build_id = build_id(binary);
    let hex: String = build_id.iter().map(|byte| format!("{byte:02x}")).collect();
    let debug_file = debug_dir
        .join(".build-id")
        .join(&hex[..2])
        .join(format!("{}.debug", &hex[2..]));
    std::fs::create_dir_all(debug_file.parent().unwrap()).unwrap();
    only_keep_debug(binary, &debug_file);
    build_id
}

#[test]
fn debug_info_is_found_by_build_id() {
    let workdir = Workdir::new();
    let (binary, malloc_return, expected) = leak_binary(&workdir);
    let debug_dir = workdir.path("debug");
    let build_id = install_debug_file_by_build_id(&binary, &debug_dir);
    let stripped = workdir.strip(&binary, "leak.stripped", &["--strip-all"]);
    let profile = profile_with(
        vec![module_at(&stripped, PROGRAM_BIAS, build_id)],
        &[vec![malloc_return + PROGRAM_BIAS]],
    );

    let with_debug_dir = Symbolizer::with_debug_dirs([&debug_dir]).symbolize(&profile, &[1]);
    let without = Symbolizer::with_debug_dirs(Vec::<PathBuf>::new()).symbolize(&profile, &[1]);

    assert_eq!(describe(&with_debug_dir[&1]), [expected]);
    assert_eq!(
        with_debug_dir[&1][0].module.as_deref(),
        Some(&*stripped.to_string_lossy())
    );
    assert_eq!(describe(&without[&1]), ["???"]);
}

#[test]
fn debug_info_is_found_by_debug_link_beside_the_binary() {
    let workdir = Workdir::new();
    let (binary, malloc_return, expected) = leak_binary(&workdir);
    let debug_file = workdir.path("leak.debug");
    only_keep_debug(&binary, &debug_file);
    let linked = workdir.path("leak.linked");
    run(Command::new("objcopy")
        .arg("--strip-debug")
        .arg(format!("--add-gnu-debuglink={}", debug_file.display()))
        .arg(&binary)
        .arg(&linked));
    let profile = profile_with(
        vec![module_at(&linked, PROGRAM_BIAS, Vec::new())],
        &[vec![malloc_return + PROGRAM_BIAS]],
    );

    let linked_frames =
        Symbolizer::with_debug_dirs(Vec::<PathBuf>::new()).symbolize(&profile, &[1]);
    std::fs::remove_file(&debug_file).unwrap();
    let unlinked_frames =
        Symbolizer::with_debug_dirs(Vec::<PathBuf>::new()).symbolize(&profile, &[1]);

    assert_eq!(describe(&linked_frames[&1]), [expected]);
    // Without its debug file, only the symbol table that --strip-debug left is there.
    assert_eq!(describe(&unlinked_frames[&1]), ["process_request"]);
}

#[test]
fn a_binary_rebuilt_since_the_run_is_not_trusted() {
    let workdir = Workdir::new();
    let (binary, malloc_return, _) = leak_binary(&workdir);
    let recorded_build_id = vec![0xde, 0xad, 0xbe, 0xef, 0x01, 0x02, 0x03, 0x04];
    let profile = profile_with(
        vec![module_at(&binary, PROGRAM_BIAS, recorded_build_id)],
        &[vec![malloc_return + PROGRAM_BIAS]],
    );

    let mut symbolizer = Symbolizer::new();
    let frames = symbolizer.symbolize(&profile, &[1]);

    assert_eq!(describe(&frames[&1]), ["???"]);
    assert_eq!(frames[&1][0].module_offset, Some(malloc_return));
    assert_eq!(symbolizer.notes().len(), 1, "{:?}", symbolizer.notes());
    assert!(
        symbolizer.notes()[0].contains("has changed since the run (build id deadbeef01020304"),
        "{:?}",
        symbolizer.notes()
    );
}

#[test]
fn the_recorded_build_id_matching_the_file_is_used() {
    let workdir = Workdir::new();
    let (binary, malloc_return, expected) = leak_binary(&workdir);
    let profile = profile_with(
        vec![module_at(&binary, PROGRAM_BIAS, build_id(&binary))],
        &[vec![malloc_return + PROGRAM_BIAS]],
    );

    let mut symbolizer = Symbolizer::new();
    let frames = symbolizer.symbolize(&profile, &[1]);

    assert_eq!(describe(&frames[&1]), [expected]);
    assert!(symbolizer.notes().is_empty(), "{:?}", symbolizer.notes());
}

#[test]
fn a_module_that_cannot_be_read_does_not_fail_the_others() {
    let workdir = Workdir::new();
    let (binary, malloc_return, expected) = leak_binary(&workdir);
    let missing = workdir.path("libmissing.so");
    let not_elf = workdir.path("libtext.so");
    std::fs::write(&not_elf, "not an ELF file").unwrap();
    let profile = profile_with(
        vec![
            module_at(&missing, LIBRARY_BIAS, Vec::new()),
            module_at(&binary, PROGRAM_BIAS, Vec::new()),
            module_at(&not_elf, LIBRARY_BIAS + 0x1000_0000, Vec::new()),
        ],
        &[vec![
            LIBRARY_BIAS + 0x1234,
            malloc_return + PROGRAM_BIAS,
            LIBRARY_BIAS + 0x1000_0000 + 0x42,
        ]],
    );

    let mut symbolizer = Symbolizer::new();
    let frames = symbolizer.symbolize(&profile, &[1]);

    assert_eq!(
        describe(&frames[&1]),
        ["???".to_owned(), expected, "???".to_owned()]
    );
    assert_eq!(
        frames[&1][0].module.as_deref(),
        Some(&*missing.to_string_lossy())
    );
    assert_eq!(frames[&1][0].module_offset, Some(0x1234));
    assert_eq!(frames[&1][2].module_offset, Some(0x42));
    let notes = symbolizer.notes();
    assert_eq!(notes.len(), 2, "{notes:?}");
    for (note, module) in notes.iter().zip([&missing, &not_elf]) {
        let start = format!("could not read symbols from {} (", module.display());
        assert!(note.starts_with(&start), "{notes:?}");
    }
}

#[test]
fn a_debug_link_to_a_stale_debug_file_falls_back_to_the_symbol_table() {
    let workdir = Workdir::new();
    let (binary, malloc_return, _) = leak_binary(&workdir);
    let debug_file = workdir.path("leak.debug");
    only_keep_debug(&binary, &debug_file);
    let linked = workdir.path("leak.linked");
    run(Command::new("objcopy")
        .arg("--strip-debug")
        .arg(format!("--add-gnu-debuglink={}", debug_file.display()))
        .arg(&binary)
        .arg(&linked));
    // Rebuild the debug file from another build: the link's checksum no longer matches.
    let other_build = workdir.compile("gcc", SOURCE, "leak.other", &["-g", "-O0"]);
    only_keep_debug(&other_build, &debug_file);
    let profile = profile_with(
        vec![module_at(&linked, PROGRAM_BIAS, Vec::new())],
        &[vec![malloc_return + PROGRAM_BIAS]],
    );

    let mut symbolizer = Symbolizer::with_debug_dirs(Vec::<PathBuf>::new());
    let frames = symbolizer.symbolize(&profile, &[1]);

    assert_eq!(describe(&frames[&1]), ["process_request"]);
    let notes = symbolizer.notes();
    assert_eq!(notes.len(), 1, "{notes:?}");
    let start = format!("could not read the debug info of {} (", linked.display());
    assert!(notes[0].starts_with(&start), "{notes:?}");
    assert!(
        notes[0].ends_with("its frames show function names only"),
        "{notes:?}"
    );
}

#[test]
fn a_rebuilt_binary_is_still_symbolized_from_the_old_builds_debug_file() {
    let workdir = Workdir::new();
    let (binary, malloc_return, expected) = leak_binary(&workdir);
    let debug_dir = workdir.path("debug");
    let recorded_build_id = install_debug_file_by_build_id(&binary, &debug_dir);
    // The binary that ran is replaced by another build at the same path.
    let rebuilt = workdir.compile("gcc", SOURCE, "leak", &["-g", "-O0", "-Wl,--build-id"]);
    assert_ne!(build_id(&rebuilt), recorded_build_id);
    let profile = profile_with(
        vec![module_at(&rebuilt, PROGRAM_BIAS, recorded_build_id)],
        &[vec![malloc_return + PROGRAM_BIAS]],
    );

    let mut symbolizer = Symbolizer::with_debug_dirs([&debug_dir]);
    let frames = symbolizer.symbolize(&profile, &[1]);

    assert_eq!(describe(&frames[&1]), [expected]);
    assert!(symbolizer.notes().is_empty(), "{:?}", symbolizer.notes());
}
