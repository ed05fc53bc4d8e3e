//! Names for the JIT-compiled frames of native stacks: the JVM's perf map.
//!
//! A native allocation made from Java code (a native method such as `Inflater.init`, or
//! `Unsafe.allocateMemory`) has JVM code cache addresses in its stack: the native method's
//! wrapper, compiled methods, the interpreter. No module holds them, so the symbolizer cannot
//! name them. HotSpot can: its diagnostic command `Compiler.perfmap` (JDK 17 and later)
//! writes every blob of its code cache, `START SIZE NAME` per line, to `/tmp/perf-<pid>.map`,
//! the file `perf` reads for JIT code. leakscope asks for one with every class histogram; the
//! caller keeps every blob seen (the code cache frees and reuses space, so a run's maps are
//! merged, not replaced) and stores them in the profile, where the symbolizer finds them.
//!
//! The file is the JVM's, at a fixed path: leakscope reads it without following a symbolic
//! link and only if the JVM's user owns it, and removes it after reading unless it was there
//! before leakscope first asked (then it is the user's, for their own `perf`, and stays).

use std::io::Read;
use std::os::unix::fs::{MetadataExt, OpenOptionsExt};
use std::path::PathBuf;

use leakscope_format::JavaCode;

/// A perf map larger than this is not read: 64 MiB is over half a million blobs, far more
/// than a code cache of the default 240 MiB holds lines of.
const LARGEST_MAP: u64 = 64 << 20;

/// The perf maps of one JVM.
pub struct PerfMaps {
    path: PathBuf,
    /// The JVM's effective user, who must own the file.
    owner: u32,
    /// The file existed before leakscope first asked: it is left in place.
    keep_file: bool,
}

impl PerfMaps {
    /// For the JVM `pid`, running as `owner`.
    pub fn new(pid: i32, owner: u32) -> Self {
        let path = PathBuf::from(format!("/tmp/perf-{pid}.map"));
        let keep_file = std::fs::symlink_metadata(&path).is_ok();
        PerfMaps {
            path,
            owner,
            keep_file,
        }
    }

    /// The blobs of the map the JVM has just written. Err: why it could not be read, in
    /// words for a note.
    pub fn read(&self) -> Result<Vec<JavaCode>, String> {
        let text = self.read_file();
        if !self.keep_file {
            let _ = std::fs::remove_file(&self.path);
        }
        Ok(parse(&text?))
    }

    fn read_file(&self) -> Result<String, String> {
        let shown = self.path.display();
        let file = std::fs::OpenOptions::new()
            .read(true)
            .custom_flags(libc::O_NOFOLLOW)
            .open(&self.path)
            .map_err(|e| format!("cannot open {shown}: {e}"))?;
        let metadata = file
            .metadata()
            .map_err(|e| format!("cannot read {shown}: {e}"))?;
        if !metadata.is_file() || metadata.uid() != self.owner {
            return Err(format!(
                "{shown} is not a file of the JVM's user {}",
                self.owner
            ));
        }
        if metadata.len() > LARGEST_MAP {
            return Err(format!(
                "{shown} has {} bytes, more than the {} MiB leakscope reads",
                metadata.len(),
                LARGEST_MAP >> 20
            ));
        }
        let mut bytes = Vec::with_capacity(metadata.len() as usize);
        file.take(LARGEST_MAP)
            .read_to_end(&mut bytes)
            .map_err(|e| format!("cannot read {shown}: {e}"))?;
        Ok(String::from_utf8_lossy(&bytes).into_owned())
    }
}

/// The blobs of a perf map: `START SIZE NAME` per line, both numbers in hexadecimal (with or
/// without `0x`). Lines that do not read so, and empty blobs, are skipped.
pub fn parse(text: &str) -> Vec<JavaCode> {
    let hex = |field: &str| {
        let digits = field.strip_prefix("0x").unwrap_or(field);
        u64::from_str_radix(digits, 16).ok()
    };
    text.lines()
        .filter_map(|line| {
            let mut fields = line.splitn(3, ' ');
            let start = hex(fields.next()?)?;
            let size = hex(fields.next()?)?;
            let name = fields.next()?.trim();
            (size > 0 && !name.is_empty() && start.checked_add(size).is_some()).then(|| JavaCode {
                start,
                size,
                name: name.to_owned(),
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_hotspot_perf_map_gives_each_blob_its_start_size_and_name() {
        let text =
            "0x00007f204cec7ca0 0x00000000000001d8 long java.util.zip.Inflater.init(boolean)\n\
                    0x00007f2045000000 0x0000000000020000 Interpreter\n\
                    7f2045100000 40 StubRoutines (1)\n\
                    garbage line\n\
                    0x00007f2045200000 0x0000000000000000 empty blob\n\
                    0xffffffffffffffff 0x10 wraps around\n\
                    0x00007f2045300000 0x10 \n";
        assert_eq!(
            parse(text),
            vec![
                JavaCode {
                    start: 0x7f20_4cec_7ca0,
                    size: 0x1d8,
                    name: "long java.util.zip.Inflater.init(boolean)".into(),
                },
                JavaCode {
                    start: 0x7f20_4500_0000,
                    size: 0x2_0000,
                    name: "Interpreter".into(),
                },
                JavaCode {
                    start: 0x7f20_4510_0000,
                    size: 0x40,
                    name: "StubRoutines (1)".into(),
                },
            ]
        );
    }

    #[test]
    fn a_map_that_was_there_before_stays_and_one_leakscope_caused_is_removed() {
        // A pid no process has (pid_max is at most 2^22), so no JVM writes this file.
        let pid = 1 << 23;
        let path = PathBuf::from(format!("/tmp/perf-{pid}.map"));
        let _ = std::fs::remove_file(&path);
        // SAFETY: geteuid has no preconditions.
        let uid = unsafe { libc::geteuid() };

        let maps = PerfMaps::new(pid, uid);
        std::fs::write(&path, "0x1000 0x10 a.b.C.m()\n").unwrap();
        assert_eq!(maps.read().map(|blobs| blobs.len()), Ok(1));
        assert!(!path.exists(), "leakscope's own map is removed");

        std::fs::write(&path, "0x2000 0x10 a.b.C.n()\n").unwrap();
        let kept = PerfMaps::new(pid, uid);
        assert_eq!(kept.read().map(|blobs| blobs.len()), Ok(1));
        assert!(path.exists(), "the user's map stays");
        let other_owner = PerfMaps {
            owner: uid + 1,
            ..PerfMaps::new(pid, uid)
        };
        assert!(other_owner
            .read_file()
            .unwrap_err()
            .contains("not a file of"));
        std::fs::remove_file(&path).unwrap();
    }
}
