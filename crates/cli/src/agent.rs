//! Where the agent library comes from: `LEAKSCOPE_AGENT` if set, otherwise the copy embedded
//! in this binary at build time, written once to a cache directory.

use std::io::Write;
use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};

const EMBEDDED_AGENT: &[u8] = include_bytes!(concat!(env!("OUT_DIR"), "/libleakscope_agent.so"));

/// The path of an agent library to preload.
pub fn locate() -> Result<PathBuf> {
    if let Some(path) = std::env::var_os("LEAKSCOPE_AGENT") {
        let path = PathBuf::from(path);
        if !path.is_file() {
            bail!(
                "the agent library '{}' is missing (LEAKSCOPE_AGENT names it; unset LEAKSCOPE_AGENT to use the agent built into leakscope)",
                path.display()
            );
        }
        return Ok(std::fs::canonicalize(&path).unwrap_or(path));
    }
    extract_embedded()
}

fn extract_embedded() -> Result<PathBuf> {
    let dir = cache_dir().join(format!(
        "agent-{}-{:016x}",
        env!("CARGO_PKG_VERSION"),
        fingerprint(EMBEDDED_AGENT)
    ));
    let path = dir.join("libleakscope_agent.so");
    if std::fs::read(&path).is_ok_and(|bytes| bytes == EMBEDDED_AGENT) {
        return Ok(path);
    }
    std::fs::create_dir_all(&dir).with_context(|| {
        format!(
            "cannot create '{}' to unpack the agent library (set XDG_CACHE_HOME to a writable directory)",
            dir.display()
        )
    })?;
    // Write to a temporary name and rename, so that concurrent runs never see half a file.
    let temporary = dir.join(format!("libleakscope_agent.so.{}", std::process::id()));
    let mut file = std::fs::File::create(&temporary).with_context(|| {
        format!(
            "cannot write the agent library to '{}'",
            temporary.display()
        )
    })?;
    file.write_all(EMBEDDED_AGENT)?;
    drop(file);
    std::fs::rename(&temporary, &path)?;
    Ok(path)
}

fn cache_dir() -> PathBuf {
    if let Some(dir) = std::env::var_os("XDG_CACHE_HOME").filter(|d| !d.is_empty()) {
        return PathBuf::from(dir).join("leakscope");
    }
    if let Some(home) = std::env::var_os("HOME").filter(|d| !d.is_empty()) {
        let dir = Path::new(&home).join(".cache");
        if dir.is_dir() || std::fs::create_dir_all(&dir).is_ok() {
            return dir.join("leakscope");
        }
    }
    // SAFETY: getuid has no preconditions and cannot fail.
    let uid = unsafe { libc::getuid() };
    std::env::temp_dir().join(format!("leakscope-{uid}"))
}

/// FNV-1a over the bytes: distinguishes agent builds in the cache directory's name.
fn fingerprint(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325u64, |h, &b| {
        (h ^ b as u64).wrapping_mul(0x0000_0100_0000_01b3)
    })
}
