//! Node.js programs: the JavaScript side, from V8's own instruments
//! (docs/decisions/0014-node.md).
//!
//! For a program that is `node` (or `nodejs`), or a script whose `#!` line runs node,
//! `leakscope run` writes `node/preload.js` beside the profile with this run's settings and
//! adds `--require` of it to `NODE_OPTIONS`. In each watched node process it records, as JSON
//! lines in a file of its own, live bytes per JavaScript allocation site (V8's sampling heap
//! profiler, through an in-process inspector session: no port) and EventEmitter and
//! EventTarget listeners per emitter class and event. When the program has ended,
//! [`Preload::collect`] moves every line into the profile of the process that wrote it
//! (`ScriptRecord` chunks), so that `leakscope report` has them too, and removes the files.

use std::ffi::{OsStr, OsString};
use std::io::{BufRead, Write};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use anyhow::{Context, Result};
use leakscope_format::{FrameKind, ScriptRecord};

const PRELOAD: &str = include_str!("node/preload.js");

/// The sampling heap profiler's mean distance between samples, in bytes (V8's default is
/// 32 KiB too): a live-byte figure per site is an estimate with about this resolution.
const SAMPLING_BYTES: u64 = 32 * 1024;

/// The shortest interval between two samples: each one walks the profiler's whole tree.
const MIN_INTERVAL: Duration = Duration::from_millis(250);

/// A preload written for one run.
pub struct Preload {
    script: PathBuf,
    /// Each process writes `<out>.<pid>`.
    out: PathBuf,
}

/// Is `path` (the program as found on PATH) node, or a script that node runs?
pub fn is_node_program(path: &Path) -> bool {
    let name = path.file_name().and_then(OsStr::to_str).unwrap_or("");
    if name == "node" || name == "nodejs" {
        return true;
    }
    // `#!/usr/bin/env node`, `#!/usr/bin/node --flag`: the first line names node.
    let Ok(file) = std::fs::File::open(path) else {
        return false;
    };
    let mut first = Vec::new();
    let mut reader = std::io::BufReader::new(std::io::Read::take(file, 256));
    if reader.read_until(b'\n', &mut first).is_err() || !first.starts_with(b"#!") {
        return false;
    }
    let line = String::from_utf8_lossy(&first);
    line[2..].split_whitespace().take(2).any(|word| {
        let base = word.rsplit('/').next().unwrap_or(word);
        base == "node" || base == "nodejs"
    })
}

impl Preload {
    /// Write the preload beside `profile` and add it to `command`'s `NODE_OPTIONS`.
    pub fn install(
        command: &mut Command,
        profile: &Path,
        agent: &Path,
        interval: Duration,
        snapshot_limit: u64,
        follow_children: bool,
    ) -> Result<Preload> {
        let script = sibling(profile, ".node-preload.js");
        let out = sibling(profile, ".node");
        let original = std::env::var("NODE_OPTIONS").ok();
        let settings = serde_json::json!({
            "out": out.to_string_lossy(),
            "interval_ms": interval.max(MIN_INTERVAL).as_millis() as u64,
            "sampling_bytes": SAMPLING_BYTES,
            "snapshot_limit": snapshot_limit,
            "node_options": original,
            "follow_children": follow_children,
            "agent": agent.file_name().map(|n| n.to_string_lossy().into_owned()),
        });
        let text = PRELOAD.replacen("/*LEAKSCOPE_SETTINGS*/ null", &settings.to_string(), 1);
        std::fs::write(&script, text)
            .with_context(|| format!("cannot write the Node.js preload '{}'", script.display()))?;
        let mut options = OsString::new();
        if let Some(original) = &original {
            options.push(original);
            options.push(" ");
        }
        options.push("--require ");
        options.push(quoted(&script));
        command.env("NODE_OPTIONS", options);
        Ok(Preload { script, out })
    }

    /// Move what each node process recorded into its profile: `root` (of process `root_pid`)
    /// or the child profile of the same pid beside it. Returns the notes for the report
    /// (records of a process without a profile).
    pub fn collect(self, root: &Path, root_pid: u32) -> Vec<String> {
        let mut notes = Vec::new();
        let Some(dir) = self.out.parent() else {
            return notes;
        };
        let prefix = format!(
            "{}.",
            self.out.file_name().unwrap_or_default().to_string_lossy()
        );
        let Ok(entries) = std::fs::read_dir(dir) else {
            return notes;
        };
        let children = leakscope_format::tree::child_profile_paths(root);
        for entry in entries.flatten() {
            let name = entry.file_name().to_string_lossy().into_owned();
            let Some(pid) = name
                .strip_prefix(&prefix)
                .and_then(|rest| rest.parse::<u32>().ok())
            else {
                continue;
            };
            let records = entry.path();
            let target = if pid == root_pid {
                Some(root.to_path_buf())
            } else {
                profile_of(root, &children, pid)
            };
            match target {
                Some(profile) => {
                    if let Err(e) = append(&records, &profile, pid)
                        .and_then(|()| append_heap_growth(&records, &profile, pid))
                        .and_then(|()| append_instrument(&profile, pid))
                    {
                        notes.push(format!(
                            "the JavaScript records of process {pid} could not be added to its profile: {e:#}"
                        ));
                    }
                }
                None => notes.push(format!(
                    "process {pid} ran node with leakscope's preload but left no profile; its JavaScript records were dropped"
                )),
            }
            let _ = std::fs::remove_file(&records);
        }
        // The raw snapshots are not kept (their results are in the profile): also those of a
        // process whose records were dropped, or that was killed before it wrote its record.
        if let Ok(entries) = std::fs::read_dir(dir) {
            for entry in entries.flatten() {
                let name = entry.file_name().to_string_lossy().into_owned();
                if name.starts_with(&prefix) && name.ends_with(".heapsnapshot") {
                    let _ = std::fs::remove_file(entry.path());
                }
            }
        }
        notes
    }
}

impl Drop for Preload {
    /// The script is only needed while the program runs.
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.script);
    }
}

/// `path` with `suffix` added to its file name.
fn sibling(path: &Path, suffix: &str) -> PathBuf {
    let mut name = path.file_name().unwrap_or_default().to_os_string();
    name.push(suffix);
    path.with_file_name(name)
}

/// A path as NODE_OPTIONS reads it: in double quotes, with `\` and `"` escaped.
fn quoted(path: &Path) -> OsString {
    let text = path.to_string_lossy();
    let mut out = String::with_capacity(text.len() + 2);
    out.push('"');
    for c in text.chars() {
        if c == '"' || c == '\\' {
            out.push('\\');
        }
        out.push(c);
    }
    out.push('"');
    OsString::from(out)
}

/// The newest profile of process `pid` among the root's children (`<root>.<pid>`, then
/// `<root>.<pid>.e1`... after each exec).
fn profile_of(root: &Path, children: &[PathBuf], pid: u32) -> Option<PathBuf> {
    let base = format!(
        "{}.{pid}",
        root.file_name().unwrap_or_default().to_string_lossy()
    );
    children
        .iter()
        .filter(|path| {
            let name = path.file_name().unwrap_or_default().to_string_lossy();
            name == base.as_str() || name.starts_with(&format!("{base}."))
        })
        .max_by_key(|path| path.file_name().map(|n| n.to_os_string()))
        .cloned()
}

/// The V8 functions of the sampling heap profiler, as the symbol table spells them: what they
/// allocate is the instrument's bookkeeping (a record per sampled object), which grows with the
/// JavaScript heap and must not be reported as the program's.
const SAMPLING_PROFILER_SYMBOLS: &str = "_ZN2v88internal20SamplingHeapProfiler";

/// node's `v8.writeHeapSnapshot` (`node::heap::WriteSnapshot`), which takes and serializes
/// a heap snapshot: tens of MB of native memory per snapshot while it runs, and V8's map of
/// object ids that it keeps for the next one. Also the instrument's.
const HEAP_SNAPSHOT_SYMBOLS: &str = "_ZN4node4heap13WriteSnapshot";

/// Append a record naming the code of the instrument in the node executable that ran (the
/// profile's), so that the analysis leaves out what it allocated.
fn append_instrument(profile: &Path, pid: u32) -> Result<()> {
    let read = leakscope_format::read_profile(profile)
        .with_context(|| format!("cannot read '{}'", profile.display()))?;
    let Some(exe) = read.process.as_ref().map(|p| p.exe.clone()) else {
        return Ok(());
    };
    let mut ranges = Vec::new();
    for symbols in [SAMPLING_PROFILER_SYMBOLS, HEAP_SNAPSHOT_SYMBOLS] {
        ranges.extend(
            leakscope_symbolize::function_ranges(Path::new(&exe), symbols)
                .map_err(|e| anyhow::anyhow!(e))?,
        );
    }
    ranges.sort_unstable();
    let line = serde_json::json!({
        "k": "instrument",
        "what": "V8's sampling heap profiler and heap snapshots",
        "module": exe,
        "ranges": ranges,
    })
    .to_string();
    let mut file = std::fs::OpenOptions::new().append(true).open(profile)?;
    append_line(&mut file, pid, &line)
}

/// Append one JSON line to `profile` as a `ScriptRecord` chunk of process `pid`.
fn append_line(file: &mut std::fs::File, pid: u32, line: &str) -> Result<()> {
    let record = ScriptRecord {
        runtime: FrameKind::JavaScript,
        pid,
        line,
    };
    let mut buf = vec![0; record.encoded_len()];
    let len = record
        .encode(&mut buf)
        .map_err(|e| anyhow::anyhow!("cannot encode a record: {e:?}"))?;
    file.write_all(&buf[..len])?;
    Ok(())
}

/// The heap snapshots that `records` name, per isolate (node's thread id): each one's
/// number (`n`) and file, in the order taken.
type SnapshotFiles = std::collections::BTreeMap<u64, Vec<(u64, PathBuf)>>;

fn snapshot_files(records: &Path) -> Result<SnapshotFiles> {
    let text = std::fs::read_to_string(records)
        .with_context(|| format!("cannot read '{}'", records.display()))?;
    let mut files = SnapshotFiles::new();
    for line in text.lines().filter(|l| l.contains("\"snapshot\"")) {
        let Ok(record) = serde_json::from_str::<serde_json::Value>(line) else {
            continue;
        };
        let (Some(thread), Some(n), Some(file)) = (
            record["th"].as_u64(),
            record["n"].as_u64(),
            record["file"].as_str(),
        ) else {
            continue;
        };
        if record["k"] == "snapshot" {
            files
                .entry(thread)
                .or_default()
                .push((n, PathBuf::from(file)));
        }
    }
    for taken in files.values_mut() {
        taken.sort();
    }
    Ok(files)
}

/// Compare the last two heap snapshots of each isolate (named in `records`; the preload
/// deletes the older ones) and append the result to `profile` as a `heap_growth` record (or
/// an `error` record saying why they could not be compared). The files are deleted by
/// [`Preload::collect`].
fn append_heap_growth(records: &Path, profile: &Path, pid: u32) -> Result<()> {
    use leakscope_analysis::heap_snapshot::{compare, Baseline, HeapSnapshot};
    let files = snapshot_files(records)?;
    if files.is_empty() {
        return Ok(());
    }
    let mut out = std::fs::OpenOptions::new()
        .append(true)
        .open(profile)
        .with_context(|| format!("cannot open '{}'", profile.display()))?;
    for (thread, taken) in files {
        // The isolate may have ended while a snapshot was being written, or before its
        // second one: the last two that are there.
        let present: Vec<&(u64, PathBuf)> = taken.iter().filter(|(_, f)| f.exists()).collect();
        let [.., (early_n, early), (late_n, late)] = present[..] else {
            continue;
        };
        let parse = |path: &Path| {
            let json = std::fs::read(path).map_err(|e| format!("{}: {e}", path.display()))?;
            HeapSnapshot::parse(&json).map_err(|e| format!("{}: {e}", path.display()))
        };
        // One parsed snapshot at a time: the early one's baseline is all the comparison needs.
        let compared = parse(early)
            .map(|early| Baseline::of(&early))
            .and_then(|baseline| Ok(compare(&baseline, &parse(late)?)));
        let line = match compared {
            Ok(growth) => {
                let mut record = serde_json::to_value(growth)?;
                record["k"] = "heap_growth".into();
                record["th"] = thread.into();
                record["compared"] = serde_json::json!([early_n, late_n]);
                record.to_string()
            }
            Err(message) => serde_json::json!({
                "k": "error",
                "th": thread,
                "what": "heap snapshots",
                "message": format!("cannot read a heap snapshot: {message}"),
            })
            .to_string(),
        };
        append_line(&mut out, pid, &line)?;
    }
    Ok(())
}

/// Append each line of `records` to `profile` as a `ScriptRecord` chunk. A last line cut
/// short (the process was killed mid-write) is left out.
fn append(records: &Path, profile: &Path, pid: u32) -> Result<()> {
    let text =
        std::fs::read(records).with_context(|| format!("cannot read '{}'", records.display()))?;
    let mut file = std::fs::OpenOptions::new()
        .append(true)
        .open(profile)
        .with_context(|| format!("cannot open '{}'", profile.display()))?;
    let mut buf = Vec::new();
    for line in text.split_inclusive(|&b| b == b'\n') {
        let Some(line) = line.strip_suffix(b"\n") else {
            break;
        };
        let Ok(line) = std::str::from_utf8(line) else {
            continue;
        };
        let record = ScriptRecord {
            runtime: FrameKind::JavaScript,
            pid,
            line,
        };
        buf.resize(record.encoded_len(), 0);
        let len = record
            .encode(&mut buf)
            .map_err(|e| anyhow::anyhow!("cannot encode a record: {e:?}"))?;
        file.write_all(&buf[..len])
            .with_context(|| format!("cannot write '{}'", profile.display()))?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn node_and_node_scripts_are_recognised() {
        let dir = tempfile::tempdir().unwrap();
        let write = |name: &str, text: &str| {
            let path = dir.path().join(name);
            std::fs::write(&path, text).unwrap();
            path
        };
        assert!(is_node_program(Path::new("/usr/bin/node")));
        assert!(is_node_program(Path::new("/usr/bin/nodejs")));
        assert!(is_node_program(&write(
            "a",
            "#!/usr/bin/env node\nconsole.log(1)\n"
        )));
        assert!(is_node_program(&write(
            "b",
            "#!/usr/local/bin/node --max-old-space-size=64\n"
        )));
        assert!(!is_node_program(&write("c", "#!/bin/sh\nnode x.js\n")));
        assert!(!is_node_program(&write("d", "\x7fELF...")));
        assert!(!is_node_program(Path::new("/usr/bin/nodemon-not-there")));
    }

    #[test]
    fn paths_are_quoted_for_node_options() {
        assert_eq!(
            quoted(Path::new("/tmp/a b/x.js")),
            OsString::from("\"/tmp/a b/x.js\"")
        );
        assert_eq!(
            quoted(Path::new("/tmp/q\"\\")),
            OsString::from("\"/tmp/q\\\"\\\\\"")
        );
    }

    #[test]
    fn records_become_chunks_and_a_cut_line_is_left_out() {
        let dir = tempfile::tempdir().unwrap();
        let profile = dir.path().join("run.profile");
        let mut header = vec![0u8; leakscope_format::HEADER_LEN];
        leakscope_format::encode_file_header(&mut header).unwrap();
        std::fs::write(&profile, &header).unwrap();
        let records = dir.path().join("run.profile.node.42");
        std::fs::write(&records, "{\"k\":\"start\"}\n{\"k\":\"end\"}\n{\"k\":\"cut").unwrap();
        append(&records, &profile, 42).unwrap();
        let read = leakscope_format::read_profile(&profile).unwrap();
        let lines: Vec<&str> = read
            .script_records
            .iter()
            .map(|r| r.line.as_str())
            .collect();
        assert_eq!(lines, ["{\"k\":\"start\"}", "{\"k\":\"end\"}"]);
        assert_eq!(read.script_records[0].pid, 42);
    }
    #[test]
    fn the_snapshots_of_each_isolate_are_listed_in_the_order_taken() {
        let dir = tempfile::tempdir().unwrap();
        let records = dir.path().join("run.profile.node.42");
        std::fs::write(
            &records,
            concat!(
                "{\"k\":\"snapshot\",\"th\":0,\"n\":1,\"file\":\"/r/a.0.1.heapsnapshot\"}\n",
                "{\"k\":\"snapshot\",\"th\":0,\"n\":3,\"file\":\"/r/a.0.3.heapsnapshot\"}\n",
                "{\"k\":\"snapshot\",\"th\":0,\"n\":2,\"file\":\"/r/a.0.2.heapsnapshot\"}\n",
                "{\"k\":\"snapshot\",\"th\":0,\"n\":4,\"skipped\":\"above the limit\"}\n",
                "{\"k\":\"snapshot\",\"th\":1,\"n\":1,\"file\":\"/r/a.1.1.heapsnapshot\"}\n",
                "{\"k\":\"site\",\"th\":0,\"id\":1,\"frames\":[[\"snapshot\",\"\",0,0]]}\n",
            ),
        )
        .unwrap();
        let files = snapshot_files(&records).unwrap();
        let listed = |thread: u64| -> Vec<(u64, &str)> {
            files[&thread]
                .iter()
                .map(|(n, path)| (*n, path.to_str().unwrap()))
                .collect()
        };
        assert_eq!(
            listed(0),
            [
                (1, "/r/a.0.1.heapsnapshot"),
                (2, "/r/a.0.2.heapsnapshot"),
                (3, "/r/a.0.3.heapsnapshot")
            ]
        );
        assert_eq!(listed(1), [(1, "/r/a.1.1.heapsnapshot")]);
        assert_eq!(files.len(), 2);
    }
}
