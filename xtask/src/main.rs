//! Developer commands: `cargo xtask demo` and `cargo xtask test` (the two set-up commands of
//! the README; `.ci/run` calls the second), `cargo xtask check-layering` (the crate dependency
//! rules, which `test` checks too) and `cargo xtask bench` (the benchmark suite,
//! docs/benchmarks.md).

mod layering;

use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode};

fn main() -> ExitCode {
    let task = std::env::args().nth(1).unwrap_or_default();
    let result = match task.as_str() {
        "demo" => demo(),
        "test" => test(),
        "check-layering" => check_layering(),
        "bench" => bench(std::env::args().skip(2).collect()),
        _ => {
            eprintln!("usage: cargo xtask <demo|test|check-layering|bench>");
            eprintln!("  demo            build leakscope and run it on examples/leaky.c");
            eprintln!("  test            the crate dependency rules, formatting, lints, and every test (what CI runs)");
            eprintln!("  check-layering  the crate dependency rules of the data flow (README.md)");
            eprintln!("  bench           the benchmark suite (docs/benchmarks.md; --help for its options)");
            return ExitCode::from(2);
        }
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(message) => {
            eprintln!("xtask: {message}");
            ExitCode::FAILURE
        }
    }
}

fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("xtask lies in the workspace root")
        .to_path_buf()
}

fn cargo() -> Command {
    let mut command = Command::new(std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into()));
    command.current_dir(workspace_root());
    command
}

fn run(command: &mut Command) -> Result<(), String> {
    let status = command
        .status()
        .map_err(|e| format!("cannot run {command:?}: {e}"))?;
    if status.success() {
        Ok(())
    } else {
        Err(format!("{command:?} failed ({status})"))
    }
}

fn target_dir() -> PathBuf {
    std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| workspace_root().join("target"))
}

/// Build leakscope, compile the example, and run it under leakscope.
fn demo() -> Result<(), String> {
    run(cargo().args(["build", "--release", "-p", "leakscope"]))?;
    let examples = target_dir().join("examples-c");
    std::fs::create_dir_all(&examples).map_err(|e| e.to_string())?;
    let binary = examples.join("leaky");
    run(Command::new("cc")
        .args(["-g", "-O0", "-o"])
        .arg(&binary)
        .arg(workspace_root().join("examples/leaky.c")))?;
    let leakscope = target_dir().join("release/leakscope");
    println!("$ leakscope run -- {}", binary.display());
    // The example leaks on purpose; its report is the point, not its exit status.
    let status = Command::new(&leakscope)
        .args(["run", "--"])
        .arg(&binary)
        .status()
        .map_err(|e| format!("cannot run {}: {e}", leakscope.display()))?;
    if !status.success() {
        return Err(format!("leakscope exited with {status}"));
    }
    Ok(())
}

/// The crate dependency rules of the data flow (layering.rs), over both workspaces: every
/// broken rule is printed, and any fails the task.
fn check_layering() -> Result<(), String> {
    let mut edges =
        layering::edges_of_workspace(&mut cargo(), &workspace_root().join("Cargo.toml"))?;
    edges.extend(layering::edges_of_workspace(
        &mut cargo(),
        &workspace_root().join("crates/agent/Cargo.toml"),
    )?);
    let broken = layering::violations(&edges);
    if broken.is_empty() {
        println!(
            "xtask: the crate dependency rules hold ({} edges)",
            edges.len()
        );
        return Ok(());
    }
    for message in &broken {
        eprintln!("xtask: {message}");
    }
    Err(format!(
        "{} crate dependency rule(s) broken (README.md, \"Dependency rules\")",
        broken.len()
    ))
}

/// The packages the tests need, then the crate dependency rules, formatting, lints, then every
/// test, of both workspaces (the root one and the agent's, which is separate so that no std
/// feature is unified into the no_std agent).
fn test() -> Result<(), String> {
    // The Debian packages the tests run (gcc, valgrind, the real-program suite's programs),
    // installed where missing; on a machine that has them all, nothing happens.
    run(Command::new("bash")
        .arg(workspace_root().join(".ci/setup.sh"))
        .current_dir(workspace_root()))?;
    check_layering()?;
    let agent_manifest = workspace_root().join("crates/agent/Cargo.toml");
    let agent_target = target_dir().join("agent-workspace");
    for manifest in [None, Some(&agent_manifest)] {
        let with_manifest = |command: &mut Command| {
            if let Some(manifest) = manifest {
                command.arg("--manifest-path").arg(manifest);
                command.env("CARGO_TARGET_DIR", &agent_target);
            }
        };
        let mut fmt = cargo();
        fmt.arg("fmt");
        with_manifest(&mut fmt);
        run(fmt.args(["--all", "--", "--check"]))?;
        let mut clippy = cargo();
        clippy.arg("clippy");
        with_manifest(&mut clippy);
        run(clippy.args([
            "--workspace",
            "--all-targets",
            "--locked",
            "--",
            "-D",
            "warnings",
        ]))?;
    }
    let mut agent_tests = cargo();
    agent_tests
        .arg("test")
        .arg("--manifest-path")
        .arg(&agent_manifest)
        .env("CARGO_TARGET_DIR", &agent_target)
        .args(["--workspace", "--locked"]);
    run(&mut agent_tests)?;
    let nextest = Command::new("cargo")
        .args(["nextest", "--version"])
        .output()
        .is_ok_and(|o| o.status.success());
    if nextest {
        run(cargo().args([
            "nextest",
            "run",
            "--workspace",
            "--locked",
            "--no-fail-fast",
        ]))
    } else {
        run(cargo().args(["test", "--workspace", "--locked", "--no-fail-fast"]))
    }
}

/// The benchmark suite: bench/run.py (Python 3, standard library only) builds leakscope and
/// the workloads, runs them natively and under each tool, and prints the tables.
fn bench(args: Vec<String>) -> Result<(), String> {
    let python = std::env::var_os("PYTHON").unwrap_or_else(|| "python3".into());
    run(Command::new(python)
        .arg(workspace_root().join("bench/run.py"))
        .args(args)
        .current_dir(workspace_root()))
}
