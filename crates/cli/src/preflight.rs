//! Checks made before the target runs, so that what cannot work fails with one clear line
//! instead of a silent run with no report.

use std::ffi::OsStr;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use crate::error::{ExitCode, Failure};

/// Find `program` as `execvp` would, and check that the agent can be preloaded into it.
pub fn check_program(program: &OsStr) -> Result<PathBuf, Failure> {
    let name = Path::new(program);
    let path = resolve(name).ok_or_else(|| {
        Failure::new(
            ExitCode::NotFound,
            format!(
                "cannot run '{}': not found{}",
                name.display(),
                if name.components().count() > 1 {
                    ""
                } else {
                    " (no such file in the current directory's path or in PATH)"
                }
            ),
        )
    })?;
    let metadata = std::fs::metadata(&path).map_err(|e| {
        Failure::new(
            ExitCode::NotFound,
            format!("cannot run '{}': {e}", path.display()),
        )
    })?;
    if metadata.is_dir() || metadata.permissions().mode() & 0o111 == 0 {
        return Err(Failure::new(
            ExitCode::NotExecutable,
            format!(
                "cannot run '{}': not executable (it is {}; check its permissions)",
                path.display(),
                if metadata.is_dir() {
                    "a directory"
                } else {
                    "a file without execute permission"
                }
            ),
        ));
    }
    if metadata.permissions().mode() & 0o6000 != 0 {
        return Err(Failure::new(
            ExitCode::Unsupported,
            format!(
                "cannot track '{}': it is setuid or setgid, and the dynamic linker ignores LD_PRELOAD for such programs (run a copy without the setuid/setgid bit)",
                path.display()
            ),
        ));
    }
    let head = read_head(&path);
    if head.starts_with(b"\x7fELF") {
        check_elf(&path, &head)?;
    }
    Ok(path)
}

fn resolve(name: &Path) -> Option<PathBuf> {
    if name.components().count() > 1 || name.is_absolute() {
        return name.exists().then(|| name.to_path_buf());
    }
    let path_var =
        std::env::var_os("PATH").unwrap_or_else(|| "/usr/local/bin:/usr/bin:/bin".into());
    let mut fallback = None;
    for dir in std::env::split_paths(&path_var) {
        let candidate = dir.join(name);
        if let Ok(metadata) = std::fs::metadata(&candidate) {
            if metadata.is_file() && metadata.permissions().mode() & 0o111 != 0 {
                return Some(candidate);
            }
            fallback.get_or_insert(candidate);
        }
    }
    fallback
}

fn read_head(path: &Path) -> Vec<u8> {
    use std::io::Read;
    let mut buf = Vec::new();
    if let Ok(file) = std::fs::File::open(path) {
        let _ = file.take(1 << 16).read_to_end(&mut buf);
    }
    buf
}

/// Refuse ELF files the agent cannot enter: other architectures, and static executables (no
/// `PT_INTERP`: no dynamic linker runs, so nothing reads `LD_PRELOAD`).
fn check_elf(path: &Path, head: &[u8]) -> Result<(), Failure> {
    let unsupported = |what: String| Failure::new(ExitCode::Unsupported, what);
    if head.len() < 64 {
        return Ok(()); // let the kernel say what is wrong
    }
    let class = head[4];
    let machine = u16::from_le_bytes([head[18], head[19]]);
    if class != 2 || machine != 62 {
        return Err(unsupported(format!(
            "cannot track '{}': it is not an x86-64 program, and leakscope's agent is x86-64 only",
            path.display()
        )));
    }
    let kind = u16::from_le_bytes([head[16], head[17]]);
    let field = |at: usize, len: usize| -> u64 {
        head.get(at..at + len).map_or(0, |b| {
            b.iter().rev().fold(0u64, |v, &x| (v << 8) | x as u64)
        })
    };
    let phoff = field(32, 8) as usize;
    let phentsize = field(54, 2) as usize;
    let phnum = field(56, 2) as usize;
    let mut has_interp = false;
    let mut has_dynamic = false;
    for i in 0..phnum {
        let at = phoff + i * phentsize;
        if at + 4 > head.len() {
            return Ok(()); // program headers beyond what we read: assume dynamic
        }
        match field(at, 4) {
            3 => has_interp = true,
            2 => has_dynamic = true,
            _ => {}
        }
    }
    // ET_EXEC without an interpreter is a classic static executable; ET_DYN without one is a
    // static PIE, unless it is the dynamic linker itself, run directly with the program as
    // its argument (then it reads LD_PRELOAD as usual).
    let is_dynamic_linker = path
        .file_name()
        .and_then(OsStr::to_str)
        .is_some_and(|name| name.starts_with("ld-linux") || name.starts_with("ld64"));
    let static_exec = kind == 2 && !has_interp;
    let static_pie = kind == 3 && has_dynamic && !has_interp && !is_dynamic_linker;
    if static_exec || static_pie {
        return Err(unsupported(format!(
            "cannot track '{}': it is statically linked, so no dynamic linker runs to preload the agent (build it without -static)",
            path.display()
        )));
    }
    Ok(())
}

/// Check, before anything runs, that a file can be written at `path` (`what`: "write the
/// report to", "keep the profile at"): an existing file must be a writable file, and a new
/// one's directory must exist and be writable. A run whose report could not be written would
/// be a run for nothing.
pub fn check_output(path: &Path, what: &str) -> Result<(), Failure> {
    let refuse = |why: String| {
        Failure::new(
            ExitCode::Failed,
            format!("cannot {what} '{}': {why}", path.display()),
        )
    };
    match std::fs::metadata(path) {
        Ok(metadata) if metadata.is_dir() => return Err(refuse("it is a directory".into())),
        Ok(metadata) if metadata.is_file() => {
            // Opened for writing without truncating: nothing changes until the report is
            // written.
            return std::fs::OpenOptions::new()
                .write(true)
                .open(path)
                .map(drop)
                .map_err(|e| refuse(e.to_string()));
        }
        // A pipe or a device (`/dev/stdout`): opening it could block or have effects.
        Ok(_) if writable(path) => return Ok(()),
        Ok(_) => return Err(refuse("it is not writable".into())),
        Err(_) => {}
    }
    let dir = match path.parent() {
        Some(dir) if !dir.as_os_str().is_empty() => dir,
        _ => Path::new("."),
    };
    if !dir.is_dir() {
        return Err(refuse(format!("no directory '{}'", dir.display())));
    }
    if !writable(dir) {
        return Err(refuse(format!(
            "the directory '{}' is not writable",
            dir.display()
        )));
    }
    Ok(())
}

/// Whether this process may write to `path` (for a directory: create files in it), as
/// access(2) says.
fn writable(path: &Path) -> bool {
    use std::os::unix::ffi::OsStrExt;
    let Ok(name) = std::ffi::CString::new(path.as_os_str().as_bytes()) else {
        return false;
    };
    let mode = if path.is_dir() {
        libc::W_OK | libc::X_OK
    } else {
        libc::W_OK
    };
    // SAFETY: a NUL-terminated path; access only reads it.
    unsafe { libc::access(name.as_ptr(), mode) == 0 }
}
