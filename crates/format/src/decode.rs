//! The reader: turns the bytes of a profile file into a [`Profile`], keeping everything before
//! a cut-off or damaged tail and never panicking on bad input.

use std::fmt;
use std::path::Path;

use crate::model::*;
use crate::ScanInfo;
use crate::{
    checksum, ChunkKind, ExitHow, LeakKind, LiveScanOutcome, LiveScanTrigger, CHUNK_HEADER_LEN,
    FORMAT_VERSION, HEADER_LEN, MAGIC,
};

/// Why a file could not be read at all. (A file that is merely cut short is not an error: the
/// reader returns what it could read and says why it stopped in [`Profile::damage`].)
#[derive(Debug)]
pub enum ReadError {
    /// The file could not be opened or read.
    Io(std::io::Error),
    /// The file does not start with the leakscope magic bytes.
    NotAProfile,
    /// The file was written by a different version of the format.
    UnsupportedVersion(u32),
    /// The file is shorter than its header.
    Empty,
}

impl fmt::Display for ReadError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ReadError::Io(err) => write!(f, "{err}"),
            ReadError::NotAProfile => write!(f, "not a leakscope profile (wrong magic bytes)"),
            ReadError::UnsupportedVersion(v) => write!(
                f,
                "profile format version {v} is not supported (this leakscope reads version {FORMAT_VERSION})"
            ),
            ReadError::Empty => write!(
                f,
                "the profile is empty or shorter than its header (the program may have been killed before it started)"
            ),
        }
    }
}

impl std::error::Error for ReadError {}

/// Read a profile file from disk.
pub fn read_profile(path: &Path) -> Result<Profile, ReadError> {
    let bytes = std::fs::read(path).map_err(ReadError::Io)?;
    read_profile_bytes(&bytes)
}

/// Read a profile from its bytes.
pub fn read_profile_bytes(bytes: &[u8]) -> Result<Profile, ReadError> {
    if bytes.len() < HEADER_LEN {
        if !bytes.is_empty() && !MAGIC.starts_with(&bytes[..bytes.len().min(8)]) {
            return Err(ReadError::NotAProfile);
        }
        return Err(ReadError::Empty);
    }
    if bytes[..8] != MAGIC {
        return Err(ReadError::NotAProfile);
    }
    let version = u32::from_le_bytes(bytes[8..12].try_into().unwrap_or_default());
    if version != FORMAT_VERSION {
        return Err(ReadError::UnsupportedVersion(version));
    }

    let mut profile = Profile::default();
    let mut offset = HEADER_LEN;
    while offset < bytes.len() {
        let rest = &bytes[offset..];
        if rest.len() < CHUNK_HEADER_LEN {
            profile.damage = Some(format!(
                "the file ends inside a chunk header at byte {offset} (cut short)"
            ));
            break;
        }
        let kind = u16::from_le_bytes([rest[0], rest[1]]);
        let len = u32::from_le_bytes([rest[4], rest[5], rest[6], rest[7]]) as usize;
        let crc = u32::from_le_bytes([rest[8], rest[9], rest[10], rest[11]]);
        let Some(payload) = rest.get(CHUNK_HEADER_LEN..CHUNK_HEADER_LEN + len) else {
            profile.damage = Some(format!(
                "the file ends inside a chunk at byte {offset} (cut short: {} of {len} payload bytes present)",
                rest.len() - CHUNK_HEADER_LEN
            ));
            break;
        };
        if checksum(&rest[..8], payload) != crc {
            profile.damage = Some(format!(
                "the chunk at byte {offset} is damaged (checksum mismatch); nothing after it was read"
            ));
            break;
        }
        if let Err(what) = apply_chunk(&mut profile, kind, payload) {
            profile.damage = Some(format!(
                "the chunk at byte {offset} is malformed ({what}); nothing after it was read"
            ));
            break;
        }
        offset += CHUNK_HEADER_LEN + len;
    }
    Ok(profile)
}

fn apply_chunk(profile: &mut Profile, kind: u16, payload: &[u8]) -> Result<(), &'static str> {
    let mut r = Reader { bytes: payload };
    match ChunkKind::from_u16(kind) {
        Some(ChunkKind::Process) => {
            let mut info = ProcessInfo {
                pid: r.u32()?,
                ppid: r.u32()?,
                start_unix_ns: r.u64()?,
                max_frames: r.u32()?,
                flags: r.u32()?,
                ..ProcessInfo::default()
            };
            let argc = r.u32()?;
            for _ in 0..argc {
                info.argv.push(r.string()?);
            }
            info.exe = r.string()?;
            info.agent_version = r.string()?;
            if !r.bytes.is_empty() {
                info.kernel_start_ticks = Some(r.u64()?);
            }
            profile.process = Some(info);
        }
        Some(ChunkKind::Module) => {
            let module = ModuleInfo {
                load_bias: r.u64()?,
                start: r.u64()?,
                end: r.u64()?,
                path: r.string()?,
                build_id: r.bytes()?.to_vec(),
            };
            // A module reported again (after a fork, say) replaces the old entry.
            if let Some(existing) = profile
                .modules
                .iter_mut()
                .find(|m| m.start == module.start && m.path == module.path)
            {
                *existing = module;
            } else {
                profile.modules.push(module);
            }
        }
        Some(ChunkKind::Stacks) => {
            let count = r.u32()?;
            for _ in 0..count {
                let id = r.u32()?;
                let frames = r.u16()? as usize;
                let mut stack = Vec::with_capacity(frames);
                for _ in 0..frames {
                    stack.push(r.u64()?);
                }
                profile.stacks.insert(id, stack);
            }
        }
        Some(ChunkKind::Exit) => {
            let how = ExitHow::from_u8(r.u8()?).ok_or("unknown exit kind")?;
            profile.exit = Some(ExitInfo {
                how,
                code: r.i32()?,
                signal: r.i32()?,
                time_ns: r.u64()?,
            });
        }
        Some(ChunkKind::Leaks) => {
            let count = r.u32()?;
            for _ in 0..count {
                let stack = r.u32()?;
                let kind = LeakKind::from_u8(r.u8()?).ok_or("unknown leak kind")?;
                profile.leaks.push(LeakRecord {
                    stack,
                    kind,
                    bytes: r.u64()?,
                    blocks: r.u64()?,
                });
            }
        }
        Some(ChunkKind::Sampling) => {
            let rate = r.u64()?;
            profile.sample_rate = (rate > 0).then_some(rate);
        }
        Some(ChunkKind::LeakEstimates) => {
            let count = r.u32()?;
            for _ in 0..count {
                let stack = r.u32()?;
                let kind = LeakKind::from_u8(r.u8()?).ok_or("unknown leak kind")?;
                profile.leak_estimates.push(LeakRecord {
                    stack,
                    kind,
                    bytes: r.u64()?,
                    blocks: r.u64()?,
                });
            }
        }
        Some(ChunkKind::Snapshot) => {
            let mut snapshot = Snapshot {
                time_ns: r.u64()?,
                rss_bytes: r.u64()?,
                available_bytes: r.u64()?,
                live_bytes: r.u64()?,
                live_blocks: r.u64()?,
                sites: Vec::new(),
            };
            let count = r.u32()?;
            for _ in 0..count {
                snapshot.sites.push(SiteLive {
                    stack: r.u32()?,
                    live_bytes: r.u64()?,
                    live_blocks: r.u64()?,
                });
            }
            // A snapshot too large for one chunk continues in chunks with the same time.
            match profile.snapshots.last_mut() {
                Some(last) if last.time_ns == snapshot.time_ns => {
                    last.sites.append(&mut snapshot.sites);
                    last.live_bytes = snapshot.live_bytes;
                    last.live_blocks = snapshot.live_blocks;
                }
                _ => profile.snapshots.push(snapshot),
            }
        }
        Some(ChunkKind::SiteAges) => {
            let mut ages = SiteAges {
                time_ns: r.u64()?,
                oldest: Vec::new(),
            };
            let count = r.u32()?;
            for _ in 0..count {
                ages.oldest.push((r.u32()?, r.u64()?));
            }
            profile.site_ages = ages;
        }
        Some(ChunkKind::LiveScan) => {
            let time_ns = r.u64()?;
            let pause_ns = r.u64()?;
            let duration_ns = r.u64()?;
            let threads_stopped = r.u32()?;
            let threads_missed = r.u32()?;
            let outcome = LiveScanOutcome::from_u8(r.u8()?).ok_or("unknown live scan outcome")?;
            let trigger = LiveScanTrigger::from_u8(r.u8()?).ok_or("unknown live scan trigger")?;
            let live_blocks = r.u64()?;
            let mut totals = [(0, 0); 4];
            for total in &mut totals {
                *total = (r.u64()?, r.u64()?);
            }
            let count = r.u32()?;
            let mut records = Vec::new();
            for _ in 0..count {
                let stack = r.u32()?;
                let kind = LeakKind::from_u8(r.u8()?).ok_or("unknown leak kind")?;
                records.push(LeakRecord {
                    stack,
                    kind,
                    bytes: r.u64()?,
                    blocks: r.u64()?,
                });
            }
            // A scan with too many records for one chunk continues with the same time.
            match profile.live_scans.last_mut() {
                Some(last) if last.time_ns == time_ns => last.records.append(&mut records),
                _ => profile.live_scans.push(LiveScan {
                    time_ns,
                    pause_ns,
                    duration_ns,
                    threads_stopped,
                    threads_missed,
                    outcome,
                    trigger,
                    live_blocks,
                    totals,
                    records,
                }),
            }
        }
        Some(ChunkKind::Scan) => {
            profile.scan = Some(ScanInfo {
                duration_ns: r.u64()?,
                threads_stopped: r.u32()?,
                threads_missed: r.u32()?,
                root_bytes: r.u64()?,
                live_blocks: r.u64()?,
                runtime_blocks: r.u64()?,
                flags: r.u32()?,
            });
        }
        Some(ChunkKind::Warning) => profile.warnings.push(r.string()?),
        Some(ChunkKind::Exec) => {
            let time_ns = r.u64()?;
            let call = crate::ExecCall::from_u8(r.u8()?).ok_or("unknown exec function")?;
            let path = r.string()?;
            let argc = r.u32()?;
            let mut argv = Vec::new();
            for _ in 0..argc {
                argv.push(r.string()?);
            }
            profile.execs.push(ExecEvent {
                time_ns,
                call,
                path,
                argv,
                failed: None,
            });
        }
        Some(ChunkKind::ExecFailed) => {
            let _time_ns = r.u64()?;
            let errno = r.i32()?;
            let exec = profile
                .execs
                .last_mut()
                .ok_or("an exec failure without an exec")?;
            exec.failed = Some(errno);
        }
        Some(ChunkKind::Spawn) => {
            let time_ns = r.u64()?;
            let how = crate::SpawnHow::from_u8(r.u8()?).ok_or("unknown spawn kind")?;
            let pid = r.u32()?;
            profile.spawns.push(SpawnEvent {
                time_ns,
                how,
                pid: (pid != 0).then_some(pid),
                program: r.string()?,
            });
        }
        Some(ChunkKind::End) => profile.complete = true,
        Some(ChunkKind::RunResult) => {
            let code = r.i32()?;
            let signal = r.i32()?;
            profile.run_result = Some(RunResult {
                code: (code >= 0).then_some(code),
                signal: (signal > 0).then_some(signal),
                wall_ns: r.u64()?,
            });
        }
        None => {} // a kind from a later version: skip it
    }
    Ok(())
}

struct Reader<'a> {
    bytes: &'a [u8],
}

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize) -> Result<&'a [u8], &'static str> {
        if self.bytes.len() < n {
            return Err("field runs past the end of the chunk");
        }
        let (head, tail) = self.bytes.split_at(n);
        self.bytes = tail;
        Ok(head)
    }
    fn u8(&mut self) -> Result<u8, &'static str> {
        Ok(self.take(1)?[0])
    }
    fn u16(&mut self) -> Result<u16, &'static str> {
        let b = self.take(2)?;
        Ok(u16::from_le_bytes([b[0], b[1]]))
    }
    fn u32(&mut self) -> Result<u32, &'static str> {
        let b = self.take(4)?;
        Ok(u32::from_le_bytes([b[0], b[1], b[2], b[3]]))
    }
    fn i32(&mut self) -> Result<i32, &'static str> {
        Ok(self.u32()? as i32)
    }
    fn u64(&mut self) -> Result<u64, &'static str> {
        let b = self.take(8)?;
        let mut a = [0u8; 8];
        a.copy_from_slice(b);
        Ok(u64::from_le_bytes(a))
    }
    fn bytes(&mut self) -> Result<&'a [u8], &'static str> {
        let len = self.u32()? as usize;
        self.take(len)
    }
    fn string(&mut self) -> Result<String, &'static str> {
        Ok(String::from_utf8_lossy(self.bytes()?).into_owned())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ChunkEncoder;

    fn sample_file() -> Vec<u8> {
        let mut out = vec![0u8; 4096];
        let mut pos = ChunkEncoder::file_header(&mut out).unwrap();

        let mut c = ChunkEncoder::new(&mut out[pos..], ChunkKind::Process);
        c.put_u32(42);
        c.put_u32(1);
        c.put_u64(7);
        c.put_u32(64);
        c.put_u32(0);
        c.put_u32(2);
        c.put_bytes(b"./prog");
        c.put_bytes(b"arg");
        c.put_bytes(b"/bin/prog");
        c.put_bytes(b"0.1.0");
        pos += c.finish().unwrap();

        let mut c = ChunkEncoder::new(&mut out[pos..], ChunkKind::Stacks);
        c.put_u32(1);
        c.put_u32(5);
        c.put_u16(2);
        c.put_u64(0x1000);
        c.put_u64(0x2000);
        pos += c.finish().unwrap();

        let mut c = ChunkEncoder::new(&mut out[pos..], ChunkKind::Leaks);
        c.put_u32(1);
        c.put_u32(5);
        c.put_u8(LeakKind::DefinitelyLost as u8);
        c.put_u64(4096);
        c.put_u64(1);
        pos += c.finish().unwrap();

        let c = ChunkEncoder::new(&mut out[pos..], ChunkKind::End);
        pos += c.finish().unwrap();
        out.truncate(pos);
        out
    }

    #[test]
    fn round_trip() {
        let profile = read_profile_bytes(&sample_file()).unwrap();
        let process = profile.process.unwrap();
        assert_eq!(process.pid, 42);
        assert_eq!(process.argv, vec!["./prog", "arg"]);
        assert_eq!(profile.stacks[&5], vec![0x1000, 0x2000]);
        assert_eq!(profile.leaks.len(), 1);
        assert_eq!(profile.leaks[0].bytes, 4096);
        assert!(profile.complete);
        assert!(profile.damage.is_none());
    }

    #[test]
    fn every_truncation_keeps_the_whole_chunks_before_it() {
        let file = sample_file();
        let mut boundaries = vec![HEADER_LEN];
        let mut at = HEADER_LEN;
        while at < file.len() {
            let len = u32::from_le_bytes(file[at + 4..at + 8].try_into().unwrap()) as usize;
            at += CHUNK_HEADER_LEN + len;
            boundaries.push(at);
        }
        for cut in HEADER_LEN..file.len() {
            let profile = read_profile_bytes(&file[..cut]).unwrap();
            assert!(!profile.complete, "cut at {cut}");
            // A cut between chunks is indistinguishable from a finished write; any other cut
            // is reported.
            assert_eq!(
                profile.damage.is_none(),
                boundaries.contains(&cut),
                "cut at {cut}"
            );
        }
        // Cut right after the Process chunk: the process survives, nothing else.
        let process_end = HEADER_LEN + CHUNK_HEADER_LEN + 4 + 4 + 8 + 4 + 4 + 4 + 10 + 7 + 13 + 9;
        let profile = read_profile_bytes(&file[..process_end]).unwrap();
        assert_eq!(profile.process.unwrap().pid, 42);
        assert!(profile.stacks.is_empty());
        assert!(profile.damage.is_none());
    }

    #[test]
    fn a_flipped_byte_is_damage_not_a_panic() {
        let file = sample_file();
        for at in HEADER_LEN..file.len() {
            let mut bad = file.clone();
            bad[at] ^= 0x5a;
            let profile = read_profile_bytes(&bad).unwrap();
            assert!(profile.damage.is_some(), "byte {at}");
            assert!(!profile.complete, "byte {at}");
        }
    }

    #[test]
    fn refuses_other_files() {
        assert!(matches!(
            read_profile_bytes(b"#!/bin/sh\necho hello world\n"),
            Err(ReadError::NotAProfile)
        ));
        assert!(matches!(read_profile_bytes(b""), Err(ReadError::Empty)));
        let mut file = sample_file();
        file[8] = 99;
        assert!(matches!(
            read_profile_bytes(&file),
            Err(ReadError::UnsupportedVersion(99))
        ));
    }
}
