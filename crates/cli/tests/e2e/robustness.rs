//! The profile file and the process edges that the corpus does not cover: `--max-frames`,
//! `--keep` and `leakscope report`, a target killed with SIGKILL, damaged profiles, `fork` while
//! other threads allocate, and threads still allocating when the program exits.

use std::fs;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::Stdio;

use crate::harness::build::{compile_file, compile_text, corpus};
use crate::harness::expect::{Exit, Level};
use crate::harness::leakscope::{invoke, wait_for_profile, Invocation};
use crate::harness::os_args;
use crate::harness::process;
use crate::harness::report::read_json;

fn fixture(name: &str) -> PathBuf {
    corpus().program(name, Level::O0)
}

/// Compile a C program given as text into `dir` at an optimisation level.
fn compile_at(dir: &Path, name: &str, source: &str, level: &str) -> PathBuf {
    compile_text(dir, &format!("{name}.c"), source, &[level, "-pthread"], &[])
}

/// Compile a C program given as text into `dir`.
fn compile(dir: &Path, name: &str, source: &str) -> PathBuf {
    compile_at(dir, name, source, "-O1")
}

#[test]
fn max_frames_bounds_every_stack() {
    let dir = tempfile::tempdir().unwrap();
    let program = fixture("tree_root_lost");
    let report = Invocation::new(&program)
        .extra(["--max-frames", "2"])
        .run_ok(dir.path());
    let leaks = report["leaks"].as_array().unwrap();
    assert!(!leaks.is_empty());
    for leak in leaks {
        let mut addresses: Vec<&str> = leak["stack"]
            .as_array()
            .unwrap()
            .iter()
            .map(|f| f["address"].as_str().unwrap())
            .collect();
        addresses.dedup();
        assert!(
            addresses.len() <= 2,
            "a stack of {} frames: {leak}",
            addresses.len()
        );
    }
    // The totals do not depend on how deep stacks are.
    assert_eq!(report["summary"]["indirectly_lost"]["blocks"], 14);
}

#[test]
fn a_kept_profile_reports_the_same_again() {
    let dir = tempfile::tempdir().unwrap();
    let profile = dir.path().join("kept.profile");
    let program = fixture("fork_child_leak");
    let (output, first) = Invocation::new(&program)
        .extra([std::ffi::OsStr::new("--keep"), profile.as_os_str()])
        .run(dir.path())
        .unwrap();
    assert_eq!(output.exit(), Exit::Code(0), "{}", output.stderr_text());
    let again = dir.path().join("again.json");
    let output = invoke(
        dir.path(),
        &os_args!["report", profile, "--format", "json", "--output", again],
    );
    assert_eq!(output.exit(), Exit::Code(0), "{}", output.stderr_text());
    assert_eq!(read_json(&first), read_json(&again));
    assert_eq!(read_json(&again)["children"].as_array().unwrap().len(), 1);
}

#[test]
fn a_target_killed_with_sigkill_leaves_a_readable_profile() {
    let dir = tempfile::tempdir().unwrap();
    let program = compile(
        dir.path(),
        "sleeper",
        r#"
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>
static void *volatile sink;
int main(void) {
    for (int i = 0; i < 100; i++) { sink = malloc(64); }
    printf("%d\n", (int)getpid());
    fflush(stdout);
    for (;;) pause();
}
"#,
    );
    let profile = dir.path().join("killed.profile");
    let invocation = Invocation::new(&program).extra(os_args!["--keep", profile]);
    let report = invocation.report(dir.path());
    let mut child = invocation
        .command(dir.path())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut line = String::new();
    BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    let pid: i32 = line.trim().parse().unwrap();
    // Wait for the writer thread's first flush (every 200 ms), then kill.
    wait_for_profile(&profile);
    process::signal(pid, libc::SIGKILL);
    let status = child.wait().unwrap();
    use std::os::unix::process::ExitStatusExt;
    assert_eq!(
        status.signal(),
        Some(libc::SIGKILL),
        "leakscope dies as its target did"
    );
    let report = read_json(&report);
    assert_eq!(report["exit"]["signal"], 9);
    let notes = report["notes"].to_string();
    assert!(notes.contains("did not finish normally"), "notes: {notes}");
}

#[test]
fn damaged_profiles_say_so_and_foreign_files_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let profile = dir.path().join("whole.profile");
    let program = fixture("lost_malloc");
    let (output, _) = Invocation::new(&program)
        .extra([std::ffi::OsStr::new("--keep"), profile.as_os_str()])
        .run(dir.path())
        .unwrap();
    assert_eq!(output.exit(), Exit::Code(0), "{}", output.stderr_text());
    let bytes = fs::read(&profile).unwrap();

    let cut = dir.path().join("cut.profile");
    fs::write(&cut, &bytes[..bytes.len() * 2 / 3]).unwrap();
    let output = invoke(dir.path(), &os_args!["report", cut]);
    assert_eq!(output.exit(), Exit::Code(0), "{}", output.stderr_text());
    assert!(
        output.stdout_text().contains("cut short"),
        "{}",
        output.stdout_text()
    );

    let foreign = dir.path().join("foreign.profile");
    fs::write(&foreign, b"#!/bin/sh\necho not a profile\n").unwrap();
    let output = invoke(dir.path(), &os_args!["report", foreign]);
    assert_eq!(output.exit(), Exit::Code(1));
    assert!(output.stderr_text().contains("not a leakscope profile"));
    assert_eq!(
        output.stderr_text().lines().count(),
        1,
        "{}",
        output.stderr_text()
    );

    let missing = dir.path().join("missing.profile");
    let output = invoke(dir.path(), &os_args!["report", missing]);
    assert_eq!(output.exit(), Exit::Code(1));
    assert!(output.stderr_text().contains("no such file"));
}

#[test]
fn fork_while_other_threads_allocate_does_not_deadlock() {
    let dir = tempfile::tempdir().unwrap();
    let program = compile(
        dir.path(),
        "fork_storm",
        r#"
#include <pthread.h>
#include <stdlib.h>
#include <sys/wait.h>
#include <unistd.h>
static volatile int stop;
static void *churn(void *arg) {
    while (!stop) { void *p = malloc(16 + (rand() % 500)); free(p); }
    return arg;
}
int main(void) {
    pthread_t threads[3];
    for (int i = 0; i < 3; i++) pthread_create(&threads[i], 0, churn, 0);
    for (int i = 0; i < 100; i++) {
        pid_t pid = fork();
        if (pid == 0) { void *p = malloc(100); free(p); _exit(0); }
        int status;
        waitpid(pid, &status, 0);
        if (!WIFEXITED(status)) return 2;
    }
    stop = 1;
    for (int i = 0; i < 3; i++) pthread_join(threads[i], 0);
    return 0;
}
"#,
    );
    let report = Invocation::new(&program).run_ok(dir.path());
    assert_eq!(report["children"].as_array().unwrap().len(), 100);
}

/// Threads still allocating when the program ends are stopped for the scan, and the block
/// the program dropped just before `exit` or `quick_exit` is definitely lost: neither the
/// running threads nor what the exit path left on the stack (an earlier call's words in a
/// frame slot nobody wrote again) holds it.
#[test]
fn threads_still_allocating_at_exit_are_stopped_for_the_scan() {
    let dir = tempfile::tempdir().unwrap();
    for ending in ["exit", "quick_exit"] {
        let source = r#"
#include <pthread.h>
#include <stdlib.h>
#include <unistd.h>
static void *volatile sink;
static void *churn(void *arg) {
    for (;;) { void *p = malloc(16 + (rand() % 500)); free(p); }
    return arg;
}
int main(void) {
    pthread_t threads[6];
    for (int i = 0; i < 6; i++) pthread_create(&threads[i], 0, churn, 0);
    usleep(100000);
    sink = malloc(4321);
    sink = 0;
    ENDING(0);
}
"#
        .replace("ENDING", ending);
        let program = compile(dir.path(), &format!("busy_{ending}"), &source);
        for _ in 0..3 {
            let report = Invocation::new(&program).run_ok(dir.path());
            let lost = report["leaks"]
                .as_array()
                .unwrap()
                .iter()
                .filter(|l| l["kind"] == "definitely_lost" && l["bytes"] == 4321)
                .count();
            assert_eq!(lost, 1, "after {ending}: {report}");
        }
    }
}

/// `exit` called on a coroutine's stack (a heap block, here) wipes nothing: below that stack
/// pointer lies the program's heap, not a dead stack. The program's own exit handler finds
/// its data intact, and the leak check runs. (The wipe once zeroed the heap from its start up
/// to the coroutine's stack pointer, and the program crashed in its exit handlers.)
#[test]
fn exit_on_a_coroutine_stack_leaves_the_heap_below_it_alone() {
    let dir = tempfile::tempdir().unwrap();
    let program = compile(
        dir.path(),
        "coroutine_exit",
        r#"
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <ucontext.h>
#include <unistd.h>
static char *data;
static ucontext_t main_context, coroutine;
static void check(void) {
    for (int i = 0; i < 4096; i++)
        if (data[i] != 'x') { puts("the heap was overwritten"); fflush(stdout); _exit(3); }
    puts("the heap is intact");
}
static void body(void) { exit(0); }
int main(void) {
    data = malloc(4096);
    memset(data, 'x', 4096);
    char *stack = malloc(64 * 1024);
    atexit(check);
    getcontext(&coroutine);
    coroutine.uc_stack.ss_sp = stack;
    coroutine.uc_stack.ss_size = 64 * 1024;
    coroutine.uc_link = &main_context;
    makecontext(&coroutine, body, 0);
    swapcontext(&main_context, &coroutine);
    return 1;
}
"#,
    );
    let (output, report) = Invocation::new(&program).run_json(dir.path());
    assert_eq!(
        output.stdout_text().lines().next(),
        Some("the heap is intact"),
        "{}",
        output.stderr_text()
    );
    assert_eq!(report["exit"]["code"], 0, "{report}");
    assert_eq!(report["leak_check"]["status"], "complete", "{report}");
}

/// A library's constructor runs before the agent's own (a preloaded object is initialised
/// after the libraries it precedes): its allocations are tracked all the same, with stacks.
#[test]
fn allocations_before_the_agents_constructor_are_tracked() {
    let dir = tempfile::tempdir().unwrap();
    let library_source = dir.path().join("early.c");
    fs::write(
        &library_source,
        "#include <stdlib.h>\n\
         void *volatile early_sink;\n\
         __attribute__((constructor)) static void early_init(void) {\n\
         early_sink = malloc(111); early_sink = 0; }\n",
    )
    .unwrap();
    let library = dir.path().join("libearly.so");
    compile_file(&library_source, &library, &["-shared", "-fPIC"], &[])
        .unwrap_or_else(|e| panic!("{e}"));
    let program = compile_text(
        dir.path(),
        "uses_early.c",
        "extern void *volatile early_sink;\nint main(void) { return early_sink != 0; }\n",
        &[],
        &[
            &format!("-L{}", dir.path().display()),
            "-learly",
            &format!("-Wl,-rpath,{}", dir.path().display()),
        ],
    );
    let report = Invocation::new(&program).run_ok(dir.path());
    assert_eq!(report["summary"]["definitely_lost"]["bytes"], 111);
    assert_eq!(report["leaks"][0]["stack"][0]["function"], "early_init");
}

/// 100 000 blocks from one call site make one stack in the profile, not 100 000.
#[test]
fn identical_stacks_are_stored_once() {
    let dir = tempfile::tempdir().unwrap();
    let profile = dir.path().join("many.profile");
    let program = fixture("many_leaks_100k");
    let (output, _) = Invocation::new(&program)
        .extra([std::ffi::OsStr::new("--keep"), profile.as_os_str()])
        .run(dir.path())
        .unwrap();
    assert_eq!(output.exit(), Exit::Code(0), "{}", output.stderr_text());
    let dump = invoke(dir.path(), &os_args!["dump", profile]);
    let stacks = dump
        .stdout_text()
        .lines()
        .filter(|l| l.starts_with("stack "))
        .count();
    assert!(
        (1..50).contains(&stacks),
        "{stacks} stacks for 100 000 allocations from one site"
    );
    let size = fs::metadata(&profile).unwrap().len();
    assert!(size < 64 * 1024, "the profile is {size} bytes");
}

/// The agent reuses the previous stack walk above the first frame both walks share. Every
/// way for the stack to change under that cache must still give each allocation its own
/// true stack: another caller at the same depth, alloca frames of another size, recursion
/// of another depth, one call site reaching two functions through a pointer, and longjmp
/// out of deep frames. Each leak has its own size, so its stack can be checked exactly.
#[test]
fn incremental_stack_walks_follow_every_change() {
    let dir = tempfile::tempdir().unwrap();
    for level in ["-O0", "-O2"] {
        check_changing_stacks(dir.path(), level);
    }
}

fn check_changing_stacks(dir: &Path, level: &str) {
    let name = format!("changing_stacks{level}");
    let program = compile_at(
        dir,
        &name,
        r#"
#include <alloca.h>
#include <setjmp.h>
#include <stdlib.h>
#define NOINLINE __attribute__((noipa))
static void *volatile sink;
static jmp_buf escape_hatch;
NOINLINE void leak_at(int tag) { sink = malloc(100 + tag); sink = 0; }
NOINLINE void via_a(int tag) { leak_at(tag); __asm__ volatile("" ::: "memory"); }
NOINLINE void via_b(int tag) { leak_at(tag); __asm__ volatile("" ::: "memory"); }
NOINLINE void with_alloca(int size, int tag) {
    char *buffer = alloca(size);
    buffer[0] = 1;
    __asm__ volatile("" : : "r"(buffer) : "memory");
    via_a(tag);
    __asm__ volatile("" ::: "memory");
}
NOINLINE void deep(int depth, int tag) {
    if (depth > 0) { deep(depth - 1, tag); __asm__ volatile("" ::: "memory"); return; }
    via_b(tag);
    __asm__ volatile("" ::: "memory");
}
NOINLINE void deep_then_jump(int depth, int tag) {
    if (depth > 0) { deep_then_jump(depth - 1, tag); __asm__ volatile("" ::: "memory"); return; }
    leak_at(tag);
    longjmp(escape_hatch, 1);
}
NOINLINE void call_through(void (*f)(int), int tag) { f(tag); __asm__ volatile("" ::: "memory"); }
int main(void) {
    for (int round = 0; round < 2; round++) {
        int base = round * 20;
        via_a(base + 1); via_b(base + 2); via_a(base + 3);
        with_alloca(16, base + 4); with_alloca(4096, base + 5);
        deep(3, base + 6); deep(7, base + 7); deep(3, base + 8);
        call_through(via_a, base + 9); call_through(via_b, base + 10);
        if (!setjmp(escape_hatch)) deep_then_jump(6, base + 11);
        via_a(base + 12);
    }
    return 0;
}
"#,
        level,
    );
    let report = Invocation::new(&program).run_ok(dir);
    // Both rounds leak from the same call sites, so the record of tag t holds two blocks,
    // of 100 + t and 120 + t bytes.
    let stack_of = |tag: u64| -> Vec<String> {
        let leak = report["leaks"]
            .as_array()
            .unwrap()
            .iter()
            .find(|l| l["bytes"] == 220 + 2 * tag && l["blocks"] == 2)
            .unwrap_or_else(|| panic!("no record for tag {tag}: {report}"));
        leak["stack"]
            .as_array()
            .unwrap()
            .iter()
            .map(|f| f["function"].as_str().unwrap_or("?").to_string())
            .take_while(|f| f != "main")
            .collect()
    };
    let deep = |n: usize| vec!["deep"; n];
    let expect: Vec<(u64, Vec<&str>)> = vec![
        (1, vec!["leak_at", "via_a"]),
        (2, vec!["leak_at", "via_b"]),
        (3, vec!["leak_at", "via_a"]),
        (4, vec!["leak_at", "via_a", "with_alloca"]),
        (5, vec!["leak_at", "via_a", "with_alloca"]),
        (6, [vec!["leak_at", "via_b"], deep(4)].concat()),
        (7, [vec!["leak_at", "via_b"], deep(8)].concat()),
        (8, [vec!["leak_at", "via_b"], deep(4)].concat()),
        (9, vec!["leak_at", "via_a", "call_through"]),
        (10, vec!["leak_at", "via_b", "call_through"]),
        (11, [vec!["leak_at"], vec!["deep_then_jump"; 7]].concat()),
        (12, vec!["leak_at", "via_a"]),
    ];
    for (tag, functions) in expect {
        assert_eq!(
            stack_of(tag),
            functions,
            "the stack of the leak tagged {tag}"
        );
    }
    assert_eq!(report["leaks"].as_array().unwrap().len(), 12);
}

/// `leakscope diff` matches sites across two runs of one binary (loaded at other
/// addresses) and lists the growth: 100 then 1000 blocks kept from `remember`.
/// Stacks that change at outer frames while every frame keeps its stack pointer: six levels
/// of a chain come in two variants each, chosen anew for every allocation, so one unwinding
/// step (the same return address, stack and frame pointer) leads to either variant's frame,
/// and only the word in the return address's slot tells which. The incremental walk (which
/// takes over the previous walk's steps that still hold) must follow it: each of the 64
/// stacks gets exactly its own 100 leaked blocks, whose size names the variants on the stack.
#[test]
fn outer_frames_that_change_at_the_same_stack_pointers_are_followed() {
    let dir = tempfile::tempdir().unwrap();
    for level in ["-O0", "-O2"] {
        check_outer_variants(dir.path(), level);
    }
}

fn check_outer_variants(dir: &Path, level: &str) {
    let program = compile_at(
        dir,
        &format!("outer_variants{level}"),
        r#"
#include <stdlib.h>
#include <stdint.h>
#define NI __attribute__((noinline))
volatile uintptr_t sink;
volatile unsigned touched; /* keeps the variants of a level different code */
static unsigned mask;
NI static void leaf(int depth) {
    (void)depth;
    free(malloc(24)); /* a walk that is not a leak, between the leaks */
    sink = (uintptr_t)malloc(8 + mask); /* the size names the stack */
    __asm__ volatile("");
}
static void level(int depth);
#define VARIANTS(n) \
    NI static void v##n##_a(int depth) { touched = 2 * n; level(depth + 1); __asm__ volatile(""); } \
    NI static void v##n##_b(int depth) { touched = 2 * n + 1; level(depth + 1); __asm__ volatile(""); }
VARIANTS(0) VARIANTS(1) VARIANTS(2) VARIANTS(3) VARIANTS(4) VARIANTS(5)
static void (*const a[6])(int) = {v0_a, v1_a, v2_a, v3_a, v4_a, v5_a};
static void (*const b[6])(int) = {v0_b, v1_b, v2_b, v3_b, v4_b, v5_b};
NI static void level(int depth) {
    if (depth == 6) { leaf(depth); return; }
    ((mask >> depth) & 1 ? b : a)[depth](depth);
    __asm__ volatile("");
}
int main(void) {
    for (unsigned i = 0; i < 6400; i++) {
        mask = (i * 37u) % 64u; /* every mask 100 times, in a scrambled order */
        level(0);
    }
    sink = 0;
    return 0;
}
"#,
        level,
    );
    let report = Invocation::new(&program).run_ok(dir);
    let leaks = report["leaks"].as_array().unwrap();
    for mask in 0..64u64 {
        let record = leaks
            .iter()
            .find(|l| l["bytes"] == 100 * (8 + mask))
            .unwrap_or_else(|| panic!("{level}: no record of mask {mask}: {report}"));
        assert_eq!(record["blocks"], 100, "{level}: mask {mask}: {record}");
        let functions: Vec<&str> = record["stack"]
            .as_array()
            .unwrap()
            .iter()
            .filter_map(|f| f["function"].as_str())
            .filter(|f| f.starts_with('v') && f.len() == 4)
            .collect();
        let expected: Vec<String> = (0..6)
            .rev()
            .map(|n| format!("v{n}_{}", if (mask >> n) & 1 == 1 { 'b' } else { 'a' }))
            .collect();
        assert_eq!(functions, expected, "{level}: mask {mask}: {record}");
    }
    let lost: u64 = leaks.iter().map(|l| l["blocks"].as_u64().unwrap()).sum();
    assert_eq!(lost, 6400, "{level}: {report}");
}

#[test]
fn diff_lists_what_grew_between_two_runs() {
    let dir = tempfile::tempdir().unwrap();
    let program = compile(
        dir.path(),
        "keeper",
        r#"
#include <stdlib.h>
static void **kept;
__attribute__((noinline)) void remember(int i) { kept[i] = malloc(100); }
int main(int argc, char **argv) {
    int n = atoi(argv[1]);
    kept = malloc(sizeof(void *) * n);
    for (int i = 0; i < n; i++) remember(i);
    return 0;
}
"#,
    );
    let run_keeping = |n: &str, profile: &Path| {
        let (output, _) = Invocation::new(&program)
            .args([n])
            .extra([std::ffi::OsStr::new("--keep"), profile.as_os_str()])
            .run(dir.path())
            .unwrap();
        assert_eq!(output.exit(), Exit::Code(0), "{}", output.stderr_text());
    };
    let (before, after) = (
        dir.path().join("100.profile"),
        dir.path().join("1000.profile"),
    );
    run_keeping("100", &before);
    run_keeping("1000", &after);
    let diff_json = dir.path().join("diff.json");
    let output = invoke(
        dir.path(),
        &os_args!["diff", before, after, "--format", "json", "--output", diff_json],
    );
    assert_eq!(output.exit(), Exit::Code(0), "{}", output.stderr_text());
    let diff = read_json(&diff_json);
    let top = &diff["sites"][0];
    assert_eq!(top["blocks_delta"], 900, "{diff}");
    assert_eq!(top["bytes_delta"], 90_000);
    assert_eq!(top["stack"][0]["function"], "remember");
}
