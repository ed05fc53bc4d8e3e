//! Builds the agent (`crates/agent`) and embeds it in the `leakscope` binary, so that an
//! installed `leakscope` (`cargo install --path crates/cli`) carries its agent with it.
//!
//! The agent is its own workspace (`crates/agent`, no_std), built by a nested
//! `cargo build --release` into `<target>/agent`, with optimisations whatever profile the CLI
//! itself is built with (it runs inside every `malloc` of the target). The nested build uses
//! its own target directory, so it never waits for the lock the outer build holds.

use std::env;
use std::path::{Path, PathBuf};
use std::process::Command;

fn main() {
    let manifest_dir = PathBuf::from(env::var_os("CARGO_MANIFEST_DIR").expect("set by cargo"));
    let workspace = manifest_dir
        .parent()
        .and_then(Path::parent)
        .expect("crates/cli lies two levels below the workspace root")
        .to_path_buf();
    let out_dir = PathBuf::from(env::var_os("OUT_DIR").expect("set by cargo"));
    for watched in [
        "crates/agent/src",
        "crates/agent/Cargo.toml",
        "crates/agent/Cargo.lock",
        "crates/agent/core/src",
        "crates/agent/core/Cargo.toml",
        "crates/format/src",
        "crates/format/Cargo.toml",
    ] {
        println!(
            "cargo:rerun-if-changed={}",
            workspace.join(watched).display()
        );
    }
    println!("cargo:rerun-if-env-changed=LEAKSCOPE_AGENT_BUILD_DIR");

    let agent_target = match env::var_os("LEAKSCOPE_AGENT_BUILD_DIR") {
        Some(dir) => PathBuf::from(dir),
        None => target_root(&out_dir).join("agent"),
    };
    let cargo = env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let status = Command::new(cargo)
        .current_dir(&workspace)
        .args(["build", "--release", "--locked", "--manifest-path"])
        .arg(workspace.join("crates/agent/Cargo.toml"))
        .arg("--target-dir")
        .arg(&agent_target)
        // Wrappers such as clippy-driver are for the outer build's own crates.
        .env_remove("RUSTC_WORKSPACE_WRAPPER")
        .env_remove("RUSTC_WRAPPER")
        .env_remove("CARGO_TARGET_DIR")
        .status()
        .expect("could not run cargo to build the agent");
    assert!(
        status.success(),
        "building the agent (leakscope-agent) failed"
    );

    let built = agent_target.join("release/libleakscope_agent.so");
    let embedded = out_dir.join("libleakscope_agent.so");
    std::fs::copy(&built, &embedded)
        .unwrap_or_else(|e| panic!("copying {} failed: {e}", built.display()));
}

/// The root of the target directory: the nearest ancestor of OUT_DIR holding CACHEDIR.TAG.
fn target_root(out_dir: &Path) -> PathBuf {
    out_dir
        .ancestors()
        .find(|dir| dir.join("CACHEDIR.TAG").exists())
        .map(Path::to_path_buf)
        .unwrap_or_else(|| out_dir.join("agent-build"))
}
