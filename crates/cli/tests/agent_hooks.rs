//! The allocation hooks never allocate.
//!
//! `agent_hooks/workload.cpp` calls every allocation function the agent hooks (`malloc`,
//! `calloc`, `realloc`, `memalign`, `posix_memalign`, `aligned_alloc`, `valloc`, `new[]`,
//! `new`, `delete`, `free`) on four threads at once under `leakscope run`, then reads the
//! agent's two counters of allocations made from inside a hook: through the program's
//! allocator (a hook, or libc on its behalf, called `malloc` and re-entered the agent) and from
//! the agent's own heap (see `crates/agent/src/test_hooks.rs` for how they count). Both must
//! be 0. Then the agent's self-check allocates once each way from inside a hook's section: each
//! counter must read exactly 1, which shows that the counters do see such an allocation (the
//! test can fail).

use std::path::PathBuf;
use std::process::Command;

fn compile_workload(dir: &std::path::Path) -> PathBuf {
    let source = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/agent_hooks/workload.cpp");
    let binary = dir.join("workload");
    let compiler = std::env::var("CXX").unwrap_or_else(|_| "c++".into());
    let status = Command::new(&compiler)
        .args(["-g", "-O1", "-pthread", "-o"])
        .arg(&binary)
        .arg(&source)
        .args(["-ldl"])
        .status()
        .unwrap_or_else(|e| panic!("cannot run {compiler}: {e}"));
    assert!(
        status.success(),
        "{compiler} failed on {}",
        source.display()
    );
    binary
}

/// The counters as the workload printed them at `moment`: (through malloc, from the agent's
/// heap).
fn counters_at(stdout: &str, moment: &str) -> (u64, u64) {
    let line = stdout
        .lines()
        .find_map(|line| line.strip_prefix(moment)?.strip_prefix(": "))
        .unwrap_or_else(|| panic!("no line '{moment}: ...' in:\n{stdout}"));
    let value = |name: &str| -> u64 {
        line.split(' ')
            .find_map(|field| field.strip_prefix(name)?.strip_prefix('='))
            .and_then(|n| n.parse().ok())
            .unwrap_or_else(|| panic!("no {name}= in '{line}'"))
    };
    (value("through_malloc"), value("from_agent_heap"))
}

#[test]
fn allocation_hooks_never_allocate() {
    let dir = std::env::temp_dir().join(format!("leakscope-agent-hooks-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let workload = compile_workload(&dir);
    let output = Command::new(env!("CARGO_BIN_EXE_leakscope"))
        .arg("run")
        .arg("--output")
        .arg(dir.join("report.txt"))
        .arg("--keep")
        .arg(dir.join("workload.profile"))
        .arg("--")
        .arg(&workload)
        .current_dir(&dir)
        .output()
        .expect("leakscope run");
    let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
    let stderr = String::from_utf8_lossy(&output.stderr);
    let _ = std::fs::remove_dir_all(&dir);
    assert!(
        output.status.success(),
        "leakscope run failed:\n{stdout}\n{stderr}"
    );

    let start = counters_at(&stdout, "at start");
    let set_up = counters_at(&stdout, "after thread set-up");
    let workload = counters_at(&stdout, "after workload");
    let self_check = counters_at(&stdout, "after self-check");
    // No hook ever called the program's allocator.
    assert_eq!(
        [start.0, set_up.0, workload.0],
        [0, 0, 0],
        "allocations through malloc from inside a hook:\n{stdout}"
    );
    // The agent's heap is used from a hook only to set up a thread's stack capture (its
    // unwinder cache, once per thread at its first allocation): the four threads cost the same,
    // and the whole workload after that costs nothing.
    let per_thread = (set_up.1 - start.1) / 4;
    assert!(per_thread > 0, "{stdout}");
    assert_eq!(set_up.1 - start.1, 4 * per_thread, "{stdout}");
    assert_eq!(
        workload.1, set_up.1,
        "agent-heap allocations from a hook in the workload:\n{stdout}"
    );
    // The counters see an allocation made inside a hook's section, each way.
    assert_eq!(self_check, (workload.0 + 1, workload.1 + 1), "{stdout}");
}
