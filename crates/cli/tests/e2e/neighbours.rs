//! Programs whose allocator is not glibc's alone, or that look into it; very large heaps; ends
//! in the first instant.

use std::ffi::OsStr;
use std::path::{Path, PathBuf};

use serde_json::Value;

use crate::harness::build::compile_text;
use crate::harness::expect::Exit;
use crate::harness::leakscope::Invocation;
use crate::harness::os_args;
use crate::harness::process::Output;

const JEMALLOC: &str = "/usr/lib/x86_64-linux-gnu/libjemalloc.so.2";

/// Compiles `file_name` (`.c` or `.cpp`), given as text, at -O1 into `dir`, linked with `after`.
fn compile(dir: &Path, file_name: &str, source: &str, after: &[&str]) -> PathBuf {
    compile_text(dir, file_name, source, &["-O1"], after)
}

/// `leakscope run -- PROGRAM...` in `dir`, and its JSON report.
fn run<S: AsRef<OsStr>>(dir: &Path, program: &[S]) -> (Output, Value) {
    Invocation::new(Path::new(&program[0]))
        .args(program[1..].iter().map(AsRef::as_ref))
        .run_json(dir)
}

fn lost(report: &Value) -> (u64, u64) {
    let kind = &report["summary"]["definitely_lost"];
    (
        kind["bytes"].as_u64().unwrap(),
        kind["blocks"].as_u64().unwrap(),
    )
}

/// Asks glibc's heap functions about its blocks, prints what it can compare natively, and
/// loses 100 bytes.
const HEAP_QUESTIONS: &str = r#"
#include <malloc.h>
#include <stdio.h>
#include <stdlib.h>
static void *volatile sink;
__attribute__((noinline)) static void lose_hundred(void) { sink = malloc(100); sink = 0; }
int main(void) {
    char *p = malloc(100);
    size_t usable = malloc_usable_size(p);
    struct mallinfo2 info = mallinfo2();
    FILE *devnull = fopen("/dev/null", "w");
    int ok = malloc_trim(0) >= 0 && mallopt(M_TRIM_THRESHOLD, 1 << 20) == 1
        && malloc_info(0, devnull) == 0 && info.uordblks > 0;
    fclose(devnull);
    printf("usable>=100 %d ok %d\n", usable >= 100, ok);
    free(p);
    lose_hundred();
    return 0;
}
"#;

#[test]
fn glibc_heap_functions_work_on_the_agents_blocks_with_or_without_jemalloc() {
    let dir = tempfile::tempdir().unwrap();
    let mut builds = vec![compile(dir.path(), "plain.c", HEAP_QUESTIONS, &[])];
    if Path::new(JEMALLOC).exists() {
        builds.push(compile(
            dir.path(),
            "with_jemalloc.c",
            HEAP_QUESTIONS,
            &[JEMALLOC],
        ));
    } else {
        eprintln!("jemalloc case skipped: {JEMALLOC} is missing (.ci/setup.sh installs it)");
    }
    for program in builds {
        // (Natively, a program linked with jemalloc has nothing in glibc's heap, so its
        // mallinfo2 is empty; under the agent every block is glibc's. Only the plain build
        // must print exactly what it prints natively.)
        let native = std::process::Command::new(&program).output().unwrap();
        let (output, report) = run(dir.path(), &[program.as_os_str()]);
        assert_eq!(output.exit(), Exit::Code(0), "{}", output.stderr_text());
        if program.ends_with("plain") {
            assert_eq!(
                output.stdout_text(),
                String::from_utf8_lossy(&native.stdout)
            );
        }
        assert_eq!(output.stdout_text(), "usable>=100 1 ok 1\n");
        assert_eq!(lost(&report), (100, 1), "{}", program.display());
    }
}

#[test]
fn jemallocs_own_api_is_served_and_tracked() {
    if !Path::new(JEMALLOC).exists() {
        eprintln!("skipped: {JEMALLOC} is missing (.ci/setup.sh installs it)");
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let program = compile(
        dir.path(),
        "jemalloc_api.c",
        r#"
#include <stdio.h>
#include <stdint.h>
#include <string.h>
void *mallocx(size_t size, int flags);
void *rallocx(void *ptr, size_t size, int flags);
size_t xallocx(void *ptr, size_t size, size_t extra, int flags);
size_t sallocx(const void *ptr, int flags);
void dallocx(void *ptr, int flags);
void sdallocx(void *ptr, size_t size, int flags);
size_t nallocx(size_t size, int flags);
#define ALIGN(lg) (lg)
#define ZERO 0x40
static void *volatile sink;
__attribute__((noinline)) static void lose_through_mallocx(void) { sink = mallocx(300, 0); sink = 0; }
int main(void) {
    char *a = mallocx(1000, ALIGN(12) | ZERO);
    int aligned = ((uintptr_t)a & 4095) == 0, zeroed = 1;
    for (int i = 0; i < 1000; i++) zeroed &= a[i] == 0;
    memset(a, 1, 1000);
    a = rallocx(a, 5000, ZERO);
    int kept = a[999] == 1 && a[4999] == 0;
    int sizes = sallocx(a, 0) >= 5000 && xallocx(a, 6000, 0, 0) >= 5000 && nallocx(40, 0) >= 40;
    sdallocx(a, 5000, 0);
    char *b = mallocx(64, 0);
    dallocx(b, 0);
    lose_through_mallocx();
    printf("%d %d %d %d\n", aligned, zeroed, kept, sizes);
    return 0;
}
"#,
        &[JEMALLOC],
    );
    let (output, report) = run(dir.path(), &[program.as_os_str()]);
    assert_eq!(output.exit(), Exit::Code(0), "{}", output.stderr_text());
    assert_eq!(output.stdout_text(), "1 1 1 1\n");
    assert_eq!(lost(&report), (300, 1), "{report:#}");
    let stack = report["leaks"][0]["stack"].to_string();
    assert!(stack.contains("lose_through_mallocx"), "{stack}");
}

#[test]
fn cxx_new_is_tracked_even_where_jemalloc_defines_it() {
    let dir = tempfile::tempdir().unwrap();
    let source = r#"
#include <cstdio>
#include <new>
struct Node { char payload[40]; Node *next; };
static Node *volatile sink;
__attribute__((noinline)) void lose_nodes() {
    sink = new Node();
    sink = nullptr;
    sink = new (std::nothrow) Node[2];
    sink = nullptr;
    Node *kept = new Node();
    delete kept;
}
int main() { lose_nodes(); std::puts("done"); }
"#;
    let mut builds = vec![compile(dir.path(), "plain.cpp", source, &[])];
    if Path::new(JEMALLOC).exists() {
        builds.push(compile(
            dir.path(),
            "with_jemalloc.cpp",
            source,
            &[JEMALLOC],
        ));
    }
    for program in builds {
        let (output, report) = run(dir.path(), &[program.as_os_str()]);
        assert_eq!(output.exit(), Exit::Code(0), "{}", output.stderr_text());
        // One Node (48 bytes) and an array of two (96 bytes, plus no cookie: trivial type).
        assert_eq!(lost(&report), (144, 2), "{}: {report:#}", program.display());
        let stacks = report["leaks"].to_string();
        assert!(stacks.contains("lose_nodes"), "{stacks}");
    }
}

#[test]
fn a_program_with_its_own_malloc_gets_a_note_instead_of_an_all_clear() {
    let dir = tempfile::tempdir().unwrap();
    let program = compile(
        dir.path(),
        "own_malloc.c",
        r#"
#include <stddef.h>
#include <string.h>
static char arena[1 << 20];
static size_t used;
void *malloc(size_t n) { void *p = arena + used; used += (n + 15) & ~(size_t)15; return p; }
void free(void *p) { (void)p; }
void *calloc(size_t a, size_t b) { void *p = malloc(a * b); memset(p, 0, a * b); return p; }
void *realloc(void *p, size_t n) { void *q = malloc(n); if (p) memcpy(q, p, n); return q; }
int main(void) { void *volatile p = malloc(100); p = 0; return 0; }
"#,
        &[],
    );
    let (_, report) = run(dir.path(), &[program.as_os_str()]);
    let notes = report["notes"].to_string();
    assert!(notes.contains("defines its own malloc"), "{notes}");
}

#[test]
fn two_and_a_half_million_live_blocks_are_all_scanned() {
    let dir = tempfile::tempdir().unwrap();
    let program = compile(
        dir.path(),
        "many_blocks.c",
        r#"
#include <stdlib.h>
void **volatile kept; /* volatile: the compiler may not drop the allocations */
__attribute__((noinline)) static void allocate(long n) {
    kept = malloc(n * sizeof *kept);
    for (long i = 0; i < n; i++) kept[i] = malloc(16);
    for (long i = 0; i < n; i += 2) kept[i] = 0; /* half of them lost */
}
int main(void) {
    allocate(2500000);
    kept = 0; /* and the array too, with the other half: indirectly lost */
    return 0;
}
"#,
        &[],
    );
    let (output, report) = run(dir.path(), &[program.as_os_str()]);
    assert_eq!(output.exit(), Exit::Code(0), "{}", output.stderr_text());
    assert_eq!(
        report["leak_check"]["status"], "complete",
        "{}",
        report["leak_check"]
    );
    assert_eq!(lost(&report), (20_000_000 + 1_250_000 * 16, 1_250_001));
    let indirect = &report["summary"]["indirectly_lost"];
    assert_eq!(indirect["blocks"], 1_250_000);
    assert_eq!(indirect["bytes"], 1_250_000 * 16);
}

#[test]
fn a_program_killed_in_its_first_instant_still_has_a_report_that_says_so() {
    let dir = tempfile::tempdir().unwrap();
    let (output, report) = run(dir.path(), &os_args!["sh", "-c", "kill -9 $$"]);
    assert_eq!(output.exit(), Exit::Signal(9), "{}", output.stderr_text());
    assert_eq!(report["command"][0], "sh");
    assert_eq!(report["leak_check"]["status"], "not_run");
    assert!(
        report["leak_check"]["reasons"]
            .to_string()
            .contains("SIGKILL"),
        "{report:#}"
    );
}
