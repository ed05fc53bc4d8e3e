//! `leakscope dump FILE`: what a profile holds, for debugging leakscope itself.

use std::path::Path;

use anyhow::Context;

use crate::error::Failure;

/// `println!` into the dump's text, which is written out at once at the end (through
/// [`super::write_out`], so that `leakscope dump FILE | head` ends quietly).
macro_rules! say {
    ($out:expr, $($arg:tt)*) => {{
        use std::fmt::Write as _;
        // Writing to a String cannot fail.
        let _ = writeln!($out, $($arg)*);
    }};
}

/// Run the subcommand; returns the exit code.
pub fn dump(path: &Path) -> Result<i32, Failure> {
    let profile = leakscope_format::read_profile(path)
        // The reader's error names the file.
        .context("cannot read the profile")?;
    let mut out = String::new();
    say!(out, "format version: {}", profile.version);
    if let Some(process) = &profile.process {
        say!(out, "process: {process:?}");
    }
    for module in &profile.modules {
        say!(
            out,
            "module: {:#x}-{:#x} bias {:#x} {} build-id {}",
            module.start,
            module.end,
            module.load_bias,
            module.path,
            module
                .build_id
                .iter()
                .map(|b| format!("{b:02x}"))
                .collect::<String>()
        );
    }
    for (id, frames) in &profile.stacks {
        let frames: Vec<String> = frames
            .iter()
            .map(|frame| match frame {
                leakscope_format::StackFrame::Native(address) => format!("{address:#x}"),
                leakscope_format::StackFrame::Interpreter(kind, id) => {
                    format!("{}#{id}", kind.name())
                }
                leakscope_format::StackFrame::PythonCode { code, offset } => {
                    format!("python-code#{code}+{offset}")
                }
            })
            .collect();
        say!(out, "stack {id}: {}", frames.join(" "));
    }
    for frame in profile.frames.values() {
        say!(
            out,
            "frame {}: {} {} ({}:{}:{}) identity {:#x}",
            frame.id,
            frame.kind.name(),
            frame.function,
            frame.file,
            frame.line,
            frame.column,
            frame.identity
        );
    }
    for record in &profile.script_records {
        say!(
            out,
            "script record ({}, pid {}): {}",
            record.runtime.name(),
            record.pid,
            record.line
        );
    }
    for snapshot in &profile.snapshots {
        let sites: Vec<String> = snapshot
            .sites
            .iter()
            .map(|s| format!("{}:{}/{}", s.stack, s.live_bytes, s.live_blocks))
            .collect();
        say!(
            out,
            "snapshot {:.3}s: live {} bytes in {} blocks, rss {}, available {}; changed {}",
            snapshot.time_ns as f64 / 1e9,
            snapshot.live_bytes,
            snapshot.live_blocks,
            snapshot.rss_bytes,
            snapshot.available_bytes,
            sites.join(" ")
        );
    }
    if !profile.site_ages.oldest.is_empty() {
        let ages: Vec<String> = profile
            .site_ages
            .oldest
            .iter()
            .map(|age| format!("{}@{:.2}s", age.stack, age.oldest_ns as f64 / 1e9))
            .collect();
        say!(out, "oldest live block per site: {}", ages.join(" "));
    }
    for leak in &profile.leaks {
        say!(out, "leak: {leak:?}");
    }
    for scan in &profile.live_scans {
        let records: Vec<String> = scan
            .records
            .iter()
            .map(|r| format!("{}:{:?}:{}/{}", r.stack, r.kind, r.bytes, r.blocks))
            .collect();
        say!(
            out,
            "live scan {:.3}s ({:?}, {:?}): pause {} us, duration {} us, threads {} stopped {} missed, {} blocks, totals {:?}; lost {}",
            scan.time_ns as f64 / 1e9,
            scan.trigger,
            scan.outcome,
            scan.pause_ns / 1000,
            scan.duration_ns / 1000,
            scan.threads_stopped,
            scan.threads_missed,
            scan.live_blocks,
            scan.totals,
            records.join(" ")
        );
    }
    if let Some(scan) = &profile.scan {
        say!(out, "scan: {scan:?}");
    }
    if let Some(exit) = &profile.exit {
        say!(out, "exit: {exit:?}");
    }
    if let Some(run) = &profile.run_result {
        say!(out, "run result: {run:?}");
    }
    for exec in &profile.execs {
        say!(
            out,
            "exec at {:.3}s: {} {:?} {:?}{}",
            exec.time_ns as f64 / 1e9,
            exec.call.name(),
            exec.path,
            exec.argv,
            exec.failed
                .map(|e| format!(" (failed, errno {e})"))
                .unwrap_or_default()
        );
    }
    for spawn in &profile.spawns {
        say!(
            out,
            "spawn at {:.3}s: {} pid {} {:?}",
            spawn.time_ns as f64 / 1e9,
            spawn.how.name(),
            spawn.pid.unwrap_or(0),
            spawn.program
        );
    }
    for warning in &profile.warnings {
        say!(out, "warning: {warning}");
    }
    dump_java(&profile, &mut out);
    say!(out, "complete: {}", profile.complete);
    if let Some(damage) = &profile.damage {
        say!(out, "damage: {damage}");
    }
    super::write_out(out.as_bytes(), None, super::DefaultSink::Stdout)?;
    Ok(0)
}

/// The Java chunks: the JVM, each histogram (the classes that changed), the pauses, the old
/// object samples and the code cache's blobs.
fn dump_java(profile: &leakscope_format::Profile, out: &mut String) {
    let java = &profile.java;
    if let Some(vm) = &java.vm {
        say!(out, "java vm: {vm:?}");
    }
    say!(out, "java classes: {}", java.classes.len());
    for histogram in &java.histograms {
        let classes: Vec<String> = histogram
            .classes
            .iter()
            .map(|c| format!("{}={}/{}", java.class_name(c.class), c.instances, c.bytes))
            .collect();
        say!(
            out,
            "java histogram {:.3}s: {} us, {} instances, {} bytes; changed {}",
            profile.java_seconds(histogram.unix_ns),
            histogram.duration_ns / 1000,
            histogram.total_instances,
            histogram.total_bytes,
            classes.join(" ")
        );
    }
    for pause in &java.pauses {
        say!(
            out,
            "java pause {:.3}s: operation {} us, gc {} us",
            profile.java_seconds(pause.unix_ns),
            pause.operation_ns / 1000,
            pause.gc_ns / 1000
        );
    }
    for object in &java.old_objects {
        let path: Vec<String> = object
            .path
            .iter()
            .map(|r| {
                format!(
                    "{}{}{}",
                    java.class_name(r.class),
                    if r.field.is_empty() {
                        String::new()
                    } else {
                        format!(".{}", r.field)
                    },
                    r.element
                        .map(|(i, n)| format!("[{i}/{n}]"))
                        .unwrap_or_default()
                )
            })
            .collect();
        let stack: Vec<String> = object
            .stack
            .iter()
            .map(|f| format!("{}:{}", f.method, f.line))
            .collect();
        say!(
            out,
            "java old object {} allocated {:.3}s, root {:?}/{:?}/{:?}, path {}; stack {}",
            java.class_name(object.class),
            profile.java_seconds(object.allocated_unix_ns),
            object.root_system,
            object.root_type,
            object.root_description,
            path.join(" -> "),
            stack.join(" < ")
        );
    }
    for blob in &java.code {
        say!(
            out,
            "java code {:#x}+{:#x}: {}",
            blob.start,
            blob.size,
            blob.name
        );
    }
}
