//! The reader: turns the bytes of a profile file into a [`Profile`], keeping everything before
//! a cut-off or damaged tail and never panicking on bad input.

use std::fmt;
use std::path::{Path, PathBuf};

use crate::model::*;
use crate::{
    checksum, ChunkKind, DecodeError, End, Exec, ExecFailed, Exit, Frames, LeakEstimates, Leaks,
    LiveScan, Module, Process, RunResult, Sampling, Scan, SiteAges, Snapshot, Spawn, Stacks,
    Warning, CHUNK_HEADER_LEN, FORMAT_VERSION, HEADER_LEN, MAGIC, OLDEST_FORMAT_VERSION,
};
use crate::{FrameKind, StackFrame};

/// Why a file could not be read at all. (A file that is merely cut short is not an error: the
/// reader returns what it could read and says why it stopped in [`Profile::damage`].)
#[derive(Debug)]
pub enum ReadError {
    /// The file could not be opened or read.
    Io(std::io::Error),
    /// The file does not start with the leakscope magic bytes.
    NotAProfile,
    /// The file was written by a version of the format this reader does not read.
    UnsupportedVersion(u32),
    /// The file is shorter than its header.
    Empty,
    /// One of the above, in the file at `path` (what [`read_profile`] returns).
    InFile {
        /// The file.
        path: PathBuf,
        /// What was wrong with it.
        error: Box<ReadError>,
    },
}

impl ReadError {
    /// What was wrong, whichever file it was in.
    pub fn problem(&self) -> &ReadError {
        match self {
            ReadError::InFile { error, .. } => error.problem(),
            other => other,
        }
    }
}

impl fmt::Display for ReadError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ReadError::Io(err) => write!(f, "{err}"),
            ReadError::NotAProfile => write!(
                f,
                "not a leakscope profile (wrong magic bytes at byte 0)"
            ),
            ReadError::UnsupportedVersion(v) => write!(
                f,
                "profile format version {v} (at byte 8) is not supported (this leakscope reads versions {OLDEST_FORMAT_VERSION} to {FORMAT_VERSION})"
            ),
            ReadError::Empty => write!(
                f,
                "the profile is empty or shorter than its {HEADER_LEN}-byte header (the program may have been killed before it started)"
            ),
            ReadError::InFile { path, error } => write!(f, "{}: {error}", path.display()),
        }
    }
}

impl std::error::Error for ReadError {}

/// Read a profile file from disk. Errors, and the profile's [`Profile::damage`], name the
/// file.
pub fn read_profile(path: &Path) -> Result<Profile, ReadError> {
    let in_file = |error| ReadError::InFile {
        path: path.to_path_buf(),
        error: Box::new(error),
    };
    let bytes = std::fs::read(path).map_err(|err| in_file(ReadError::Io(err)))?;
    let mut profile = read_profile_bytes(&bytes).map_err(in_file)?;
    if let Some(damage) = &mut profile.damage {
        *damage = format!("{}: {damage}", path.display());
    }
    Ok(profile)
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
    let version = u32::from_le_bytes([bytes[8], bytes[9], bytes[10], bytes[11]]);
    if !(OLDEST_FORMAT_VERSION..=FORMAT_VERSION).contains(&version) {
        return Err(ReadError::UnsupportedVersion(version));
    }

    let mut profile = Profile {
        version,
        ..Profile::default()
    };
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
        let Some(payload) = rest[CHUNK_HEADER_LEN..].get(..len) else {
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
        if let Err(error) = apply_chunk(&mut profile, kind, payload) {
            profile.damage = Some(format!(
                "the chunk at byte {offset} is malformed ({} at byte {}); nothing after it was read",
                error.what,
                offset + CHUNK_HEADER_LEN + error.at
            ));
            break;
        }
        offset += CHUNK_HEADER_LEN + len;
    }
    resolve_python_code_locations(&mut profile);
    Ok(profile)
}

/// Turn every [`StackFrame::PythonCode`] frame into an interned interpreter frame with the
/// line (and column) its code's line table gives for the instruction: the agent records the
/// code and the instruction, never the line (finding a line walks the table, which costs more
/// than the rest of an allocation's recording). Frames of one code at one line and column
/// share an interned frame. A code location whose code is missing (a file cut short) becomes
/// a frame named `<unknown Python code #id>`.
fn resolve_python_code_locations(profile: &mut Profile) {
    use std::collections::HashMap;
    let version = profile
        .detected_runtime()
        .map(|runtime| runtime.major_minor())
        .unwrap_or((0, 0));
    let mut next_id = profile
        .frames
        .keys()
        .next_back()
        .map_or(1, |&id| id.saturating_add(1));
    let mut interned: HashMap<(u32, u32, u32), crate::FrameId> = HashMap::new();
    let Profile {
        stacks,
        frames,
        python_codes,
        ..
    } = profile;
    for stack in stacks.values_mut() {
        for frame in stack.iter_mut() {
            let StackFrame::PythonCode { code, offset } = *frame else {
                continue;
            };
            let record = python_codes.get(&code);
            let position = record.and_then(|record| {
                crate::python_lines::position(
                    version,
                    record.first_line,
                    &record.line_table,
                    offset,
                )
            });
            let line = position.map_or(0, |p| p.line);
            let column = position.and_then(|p| p.column).unwrap_or(0);
            let id = *interned.entry((code, line, column)).or_insert_with(|| {
                let id = next_id;
                next_id = next_id.saturating_add(1);
                frames.insert(
                    id,
                    crate::InterpreterFrame {
                        id,
                        kind: FrameKind::Python,
                        function: record.map_or_else(
                            || format!("<unknown Python code #{code}>"),
                            |r| r.name.clone(),
                        ),
                        file: record.map_or_else(String::new, |r| r.file.clone()),
                        line,
                        column,
                        identity: record.map_or(0, |r| r.address),
                    },
                );
                id
            });
            *frame = StackFrame::Interpreter(FrameKind::Python, id);
        }
    }
}

fn apply_chunk(profile: &mut Profile, kind: u16, payload: &[u8]) -> Result<(), DecodeError> {
    match ChunkKind::from_u16(kind) {
        Some(ChunkKind::Process) => profile.process = Some(Process::decode(payload)?),
        Some(ChunkKind::Module) => {
            let module = Module::decode(payload)?;
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
            for stack in Stacks::decode(payload, profile.version)?.0 {
                profile.stacks.insert(stack.id, stack.frames);
            }
        }
        Some(ChunkKind::PythonCode) => {
            for code in crate::PythonCodes::decode(payload)?.0 {
                profile.python_codes.insert(code.id, code);
            }
        }
        Some(ChunkKind::Runtime) => profile.runtimes.push(crate::Runtime::decode(payload)?),
        Some(ChunkKind::Frames) => {
            for frame in Frames::decode(payload)?.0 {
                profile.frames.insert(frame.id, frame);
            }
        }
        Some(ChunkKind::Exit) => profile.exit = Some(Exit::decode(payload)?),
        Some(ChunkKind::Leaks) => profile.leaks.append(&mut Leaks::decode(payload)?.0),
        Some(ChunkKind::Sampling) => {
            let rate = Sampling::decode(payload)?.rate_bytes;
            profile.sample_rate = (rate > 0).then_some(rate);
        }
        Some(ChunkKind::LeakEstimates) => profile
            .leak_estimates
            .append(&mut LeakEstimates::decode(payload)?.0),
        Some(ChunkKind::Snapshot) => {
            let mut snapshot = Snapshot::decode(payload)?;
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
            let mut ages = SiteAges::decode(payload)?;
            // Ages too many for one chunk continue in chunks with the same time; a later
            // time replaces them.
            if profile.site_ages.time_ns == ages.time_ns {
                profile.site_ages.oldest.append(&mut ages.oldest);
            } else {
                profile.site_ages = ages;
            }
        }
        Some(ChunkKind::LiveScan) => {
            let mut scan = LiveScan::decode(payload)?;
            // A scan with too many records for one chunk continues with the same time.
            match profile.live_scans.last_mut() {
                Some(last) if last.time_ns == scan.time_ns => {
                    last.records.append(&mut scan.records)
                }
                _ => profile.live_scans.push(scan),
            }
        }
        Some(ChunkKind::Scan) => profile.scan = Some(Scan::decode(payload)?),
        Some(ChunkKind::Warning) => profile.warnings.push(Warning::decode(payload)?.0),
        Some(ChunkKind::Exec) => {
            let exec = Exec::decode(payload)?;
            profile.execs.push(ExecEvent {
                time_ns: exec.time_ns,
                call: exec.call,
                path: exec.path,
                argv: exec.argv,
                failed: None,
            });
        }
        Some(ChunkKind::ExecFailed) => {
            let failed = ExecFailed::decode(payload)?;
            let exec = profile.execs.last_mut().ok_or(DecodeError {
                at: 0,
                what: "an exec failure without an exec",
            })?;
            exec.failed = Some(failed.errno);
        }
        Some(ChunkKind::Spawn) => profile.spawns.push(Spawn::decode(payload)?),
        Some(ChunkKind::End) => {
            End::decode(payload)?;
            profile.complete = true;
        }
        Some(ChunkKind::RunResult) => profile.run_result = Some(RunResult::decode(payload)?),
        Some(ChunkKind::ScriptRecord) => profile
            .script_records
            .push(crate::ScriptRecord::decode(payload)?),
        Some(ChunkKind::JavaVm) => profile.java.vm = Some(crate::JavaVm::decode(payload)?),
        Some(ChunkKind::JavaClasses) => {
            for class in crate::JavaClasses::decode(payload)?.0 {
                profile.java.classes.insert(class.id, class.name);
            }
        }
        Some(ChunkKind::JavaHistogram) => profile
            .java
            .histograms
            .push(crate::JavaHistogram::decode(payload)?),
        Some(ChunkKind::JavaPauses) => profile
            .java
            .pauses
            .append(&mut crate::JavaPauses::decode(payload)?.0),
        Some(ChunkKind::JavaOldObject) => profile
            .java
            .old_objects
            .push(crate::JavaOldObject::decode(payload)?),
        Some(ChunkKind::JavaCode) => profile
            .java
            .code
            .append(&mut crate::JavaCodeMap::decode(payload)?.0),
        None => {} // a kind from a later version: skip it
    }
    Ok(())
}
