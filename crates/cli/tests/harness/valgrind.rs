//! Running a fixture under memcheck, the oracle, and reading its logs (one per process).

use std::ffi::OsString;
use std::path::Path;
use std::process::Command;
use std::sync::OnceLock;

use super::expect::{Amount, Kind, Totals};
use super::memcheck;
use super::observed::{Leak, ProcessReport, Run};
use super::process;

/// The options the corpus expectations were derived with, beside memcheck's leak check: one
/// log file per process (`%p`), children's included.
pub const OPTIONS: &[&str] = &["--child-silent-after-fork=no"];

/// `valgrind --version`, or None when valgrind cannot be run.
pub fn version() -> Option<&'static str> {
    static VERSION: OnceLock<Option<String>> = OnceLock::new();
    VERSION
        .get_or_init(|| {
            let output = Command::new("valgrind").arg("--version").output().ok()?;
            output
                .status
                .success()
                .then(|| String::from_utf8_lossy(&output.stdout).trim().to_string())
        })
        .as_deref()
}

/// True when valgrind can be run; otherwise prints why the calling test is skipped.
pub fn available_or_skip(test: &str) -> bool {
    if version().is_some() {
        return true;
    }
    println!("skipping {test}: valgrind is not installed (apt-get install valgrind)");
    false
}

/// Runs `program args` under memcheck with one log file per process.
pub fn run(program: &Path, args: &[OsString]) -> Result<Run, String> {
    let logs = tempfile::Builder::new()
        .prefix("leakscope-vg-")
        .tempdir()
        .map_err(|e| format!("cannot make a temporary directory: {e}"))?;
    let log = format!("{}/vg.%p.log", logs.path().display());
    let mut command = memcheck::command(OPTIONS, &log, program, args);
    command.current_dir(logs.path());
    let output = process::run(&mut command, None, process::TIMEOUT)?;
    let mut main = None;
    let mut children = Vec::new();
    let entries = std::fs::read_dir(logs.path()).map_err(|e| e.to_string())?;
    for entry in entries {
        let path = entry.map_err(|e| e.to_string())?.path();
        let Some(pid) = path
            .file_name()
            .and_then(|n| n.to_str())
            .and_then(|n| n.strip_prefix("vg.")?.strip_suffix(".log"))
            .and_then(|n| n.parse::<u32>().ok())
        else {
            continue;
        };
        let text = std::fs::read_to_string(&path).map_err(|e| e.to_string())?;
        let report = parse_log(&text).map_err(|e| format!("{}: {e}\n{text}", path.display()))?;
        if pid == output.pid {
            main = Some(report.ok_or_else(|| {
                format!("memcheck printed no leak summary for the program:\n{text}")
            })?);
        } else if let Some(mut report) = report {
            // A child that ran to its end; one that called exec has no summary.
            report.pid = Some(pid);
            children.push(report);
        }
    }
    let mut main = main.ok_or_else(|| {
        format!(
            "memcheck wrote no log for pid {}; stderr: {}",
            output.pid,
            output.stderr_text()
        )
    })?;
    main.pid = Some(output.pid);
    Ok(Run {
        exit: output.exit(),
        main,
        children,
        stderr: output.stderr,
    })
}

/// Reads one memcheck log: its leak summary and loss records. `None` when the process did not
/// reach a leak check (it called exec).
pub fn parse_log(text: &str) -> Result<Option<ProcessReport>, String> {
    let lines: Vec<&str> = text.lines().map(strip_pid_prefix).collect();
    let mut report = ProcessReport::default();
    let mut summarized = false;
    let mut i = 0;
    while i < lines.len() {
        let line = lines[i].trim();
        if line.starts_with("All heap blocks were freed") {
            summarized = true;
        } else if line == "LEAK SUMMARY:" {
            summarized = true;
            for kind in Kind::ALL {
                let words = format!("{}:", kind.memcheck_words());
                let found = lines[i + 1..]
                    .iter()
                    .map(|l| l.trim())
                    .take_while(|l| !l.is_empty())
                    .find_map(|l| l.strip_prefix(words.as_str()));
                let amount = match found {
                    Some(rest) => parse_amount(rest)?,
                    None => {
                        return Err(format!(
                            "no {:?} line in the leak summary",
                            kind.memcheck_words()
                        ))
                    }
                };
                report.totals.set(kind, amount);
            }
            report.suppressed = lines[i + 1..]
                .iter()
                .map(|l| l.trim())
                .take_while(|l| !l.is_empty())
                .find_map(|l| l.strip_prefix("suppressed:"))
                .map(parse_amount)
                .transpose()?;
        } else if let Some((kind, amount)) = parse_record_header(line)? {
            let mut functions = Vec::new();
            i += 1;
            while i < lines.len() && !lines[i].trim().is_empty() {
                if let Some(function) = parse_frame(lines[i]) {
                    functions.push(function);
                }
                i += 1;
            }
            report.leaks.push(Leak {
                kind,
                amount,
                functions,
            });
            continue;
        }
        i += 1;
    }
    Ok(summarized.then_some(report))
}

/// "==123== text" -> "text".
fn strip_pid_prefix(line: &str) -> &str {
    if let Some(rest) = line.strip_prefix("==") {
        if let Some(end) = rest.find("== ") {
            return &rest[end + 3..];
        }
        if let Some(end) = rest.strip_suffix("==") {
            if end.chars().all(|c| c.is_ascii_digit()) {
                return "";
            }
        }
    }
    line
}

fn parse_number(text: &str) -> Result<u64, String> {
    text.replace(',', "")
        .parse()
        .map_err(|_| format!("{text:?} is not a number"))
}

/// " 1,000 bytes in 2 blocks" -> Amount.
fn parse_amount(text: &str) -> Result<Amount, String> {
    let words: Vec<&str> = text.split_whitespace().collect();
    match words[..] {
        [bytes, "bytes", "in", blocks, "blocks"] => Ok(Amount {
            bytes: parse_number(bytes)?,
            blocks: parse_number(blocks)?,
        }),
        _ => Err(format!("cannot read {text:?}")),
    }
}

/// "1,000 bytes in 1 blocks are definitely lost in loss record 1 of 2", or with
/// "80 (16 direct, 64 indirect) bytes in ...": the kind and the amount (direct bytes only, as the
/// summary counts them).
fn parse_record_header(line: &str) -> Result<Option<(Kind, Amount)>, String> {
    let Some((head, tail)) = line.split_once(" are ") else {
        return Ok(None);
    };
    if !tail.contains(" in loss record ") {
        return Ok(None);
    }
    let kind = Kind::ALL
        .into_iter()
        .find(|k| tail.starts_with(k.memcheck_words()))
        .ok_or_else(|| format!("unknown kind in {line:?}"))?;
    let (bytes_part, blocks_part) = head
        .split_once(" bytes in ")
        .ok_or_else(|| format!("cannot read {line:?}"))?;
    let bytes = match bytes_part.split_once(" (") {
        Some((_, detail)) => {
            let direct = detail
                .split_once(" direct")
                .ok_or_else(|| format!("cannot read {line:?}"))?
                .0;
            parse_number(direct)?
        }
        None => parse_number(bytes_part)?,
    };
    let blocks = parse_number(
        blocks_part
            .strip_suffix(" blocks")
            .ok_or_else(|| format!("cannot read {line:?}"))?,
    )?;
    Ok(Some((kind, Amount { bytes, blocks })))
}

/// "   by 0x10916B: make_tree(int) (tree.c:12)" -> "make_tree(int)".
fn parse_frame(line: &str) -> Option<String> {
    let line = line.trim();
    let rest = line
        .strip_prefix("at ")
        .or_else(|| line.strip_prefix("by "))?;
    let (_, rest) = rest.split_once(": ")?;
    let function = match rest.rfind(" (") {
        Some(i) if rest.ends_with(')') => &rest[..i],
        _ => rest,
    };
    Some(function.trim().to_string())
}

/// Sums of the loss records per kind, to cross-check the summary parser.
pub fn totals_of_records(report: &ProcessReport) -> Totals {
    let mut totals = Totals::default();
    for leak in &report.leaks {
        let mut a = totals.get(leak.kind);
        a.bytes += leak.amount.bytes;
        a.blocks += leak.amount.blocks;
        totals.set(leak.kind, a);
    }
    totals
}

#[cfg(test)]
mod tests {
    use super::*;

    const LOG: &str = "\
==42== Memcheck, a memory error detector
==42== 
==42== HEAP SUMMARY:
==42==     in use at exit: 1,460 bytes in 17 blocks
==42==   total heap usage: 18 allocs, 1 frees, 1,484 bytes allocated
==42== 
==42== 360 (24 direct, 336 indirect) bytes in 1 blocks are definitely lost in loss record 2 of 3
==42==    at 0x48417B4: malloc (in /usr/libexec/valgrind/vgpreload_memcheck-amd64-linux.so)
==42==    by 0x10916B: make_tree(int) (tree.cpp:12)
==42==    by 0x1091D0: main (tree.cpp:30)
==42== 
==42== 336 bytes in 14 blocks are indirectly lost in loss record 1 of 3
==42==    at 0x48417B4: malloc (in /usr/libexec/valgrind/vgpreload_memcheck-amd64-linux.so)
==42==    by 0x10916B: make_tree(int) (tree.cpp:12)
==42== 
==42== 1,100 bytes in 2 blocks are still reachable in loss record 3 of 3
==42==    at 0x48417B4: malloc (in /usr/libexec/valgrind/vgpreload_memcheck-amd64-linux.so)
==42==    by 0x4010CB2: pthread_create@@GLIBC_2.34 (pthread_create.c:650)
==42== 
==42== LEAK SUMMARY:
==42==    definitely lost: 24 bytes in 1 blocks
==42==    indirectly lost: 336 bytes in 14 blocks
==42==      possibly lost: 0 bytes in 0 blocks
==42==    still reachable: 1,100 bytes in 2 blocks
==42==         suppressed: 0 bytes in 0 blocks
==42== 
==42== ERROR SUMMARY: 1 errors from 1 contexts (suppressed: 0 from 0)
";

    #[test]
    fn memcheck_logs_are_read() {
        let report = parse_log(LOG).unwrap().unwrap();
        assert_eq!(
            report.totals.get(Kind::DefinitelyLost),
            Amount {
                bytes: 24,
                blocks: 1
            }
        );
        assert_eq!(
            report.totals.get(Kind::StillReachable),
            Amount {
                bytes: 1100,
                blocks: 2
            }
        );
        assert_eq!(report.suppressed, Some(Amount::default()));
        assert_eq!(report.leaks.len(), 3);
        assert_eq!(report.leaks[0].kind, Kind::DefinitelyLost);
        assert_eq!(
            report.leaks[0].functions,
            vec!["malloc", "make_tree(int)", "main"]
        );
        assert_eq!(report.leaks[2].functions[1], "pthread_create@@GLIBC_2.34");
        assert_eq!(totals_of_records(&report), report.totals);
    }

    #[test]
    fn logs_without_a_leak_check_are_none_and_clean_ones_are_zero() {
        assert!(parse_log("==7== Memcheck, a memory error detector\n")
            .unwrap()
            .is_none());
        let clean = "==7== HEAP SUMMARY:\n==7==     in use at exit: 0 bytes in 0 blocks\n\
                     ==7== All heap blocks were freed -- no leaks are possible\n";
        assert!(parse_log(clean).unwrap().unwrap().totals.is_zero());
    }
}
