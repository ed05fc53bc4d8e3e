//! Running `leakscope run` on a program and reading its JSON report (see DESIGN.md, "The JSON
//! report").

use std::ffi::{OsStr, OsString};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use serde_json::Value;

use super::expect::{Amount, Exit, Kind, Totals};
use super::observed::{Leak, ProcessReport, Run};
use super::process::{self, Output};

/// The leakscope executable cargo built for these tests, or the one named by
/// `LEAKSCOPE_E2E_BIN` (an absolute path; e.g. `harness/reference_leakscope.py`, to check the
/// harness itself).
pub fn bin() -> PathBuf {
    match std::env::var_os("LEAKSCOPE_E2E_BIN") {
        Some(path) if !path.is_empty() => {
            let path = PathBuf::from(path);
            std::fs::canonicalize(&path).unwrap_or(path)
        }
        _ => PathBuf::from(env!("CARGO_BIN_EXE_leakscope")),
    }
}

/// `leakscope` with an environment free of a preload of the harness's own.
pub fn command() -> Command {
    let mut command = Command::new(bin());
    command.env_remove("LD_PRELOAD");
    command
}

/// A `leakscope run --format json --output DIR/report.json [extra] -- program args` invocation,
/// run in DIR.
pub struct Invocation<'a> {
    pub program: &'a Path,
    pub args: Vec<OsString>,
    pub extra: Vec<OsString>,
    pub env: Vec<(OsString, OsString)>,
    pub stdin: Option<Vec<u8>>,
}

impl<'a> Invocation<'a> {
    pub fn new(program: &'a Path) -> Self {
        Invocation {
            program,
            args: Vec::new(),
            extra: Vec::new(),
            env: Vec::new(),
            stdin: None,
        }
    }

    pub fn args<I: IntoIterator<Item = S>, S: Into<OsString>>(mut self, args: I) -> Self {
        self.args.extend(args.into_iter().map(Into::into));
        self
    }

    pub fn extra<I: IntoIterator<Item = S>, S: Into<OsString>>(mut self, extra: I) -> Self {
        self.extra.extend(extra.into_iter().map(Into::into));
        self
    }

    pub fn env(mut self, key: &str, value: &str) -> Self {
        self.env.push((key.into(), value.into()));
        self
    }

    pub fn stdin(mut self, data: Vec<u8>) -> Self {
        self.stdin = Some(data);
        self
    }

    /// Runs leakscope; returns its output and the report file's path (which may not exist).
    pub fn run(self, dir: &Path) -> Result<(Output, PathBuf), String> {
        let mut command = self.command(dir);
        let output = process::run(&mut command, self.stdin.as_deref(), process::TIMEOUT)?;
        Ok((output, self.report(dir)))
    }

    /// Where the report goes when run in `dir`.
    pub fn report(&self, dir: &Path) -> PathBuf {
        dir.join("report.json")
    }

    /// The command, not started (for a test that signals leakscope while it runs); stdin is
    /// the caller's to set.
    pub fn command(&self, dir: &Path) -> Command {
        let mut command = command();
        command
            .arg("run")
            .args(["--format", "json", "--output"])
            .arg(self.report(dir))
            .args(&self.extra)
            .arg("--")
            .arg(self.program)
            .args(&self.args)
            .current_dir(dir);
        for (key, value) in &self.env {
            command.env(key, value);
        }
        command
    }
}

impl Invocation<'_> {
    /// Runs leakscope in a fresh temporary directory; panics if it cannot run.
    pub fn output(self) -> Output {
        let dir = tempfile::tempdir().expect("a temporary directory");
        self.run(dir.path()).unwrap_or_else(|e| panic!("{e}")).0
    }

    /// Runs leakscope in `dir` and reads its JSON report; panics if there is none.
    pub fn run_json(self, dir: &Path) -> (Output, Value) {
        let (output, report) = self.run(dir).unwrap_or_else(|e| panic!("{e}"));
        let text = std::fs::read_to_string(&report).unwrap_or_else(|e| {
            panic!(
                "no report at {}: {e}; leakscope ended with {}; its stderr:\n{}",
                report.display(),
                output.exit(),
                output.stderr_text()
            )
        });
        let json = serde_json::from_str(&text).unwrap_or_else(|e| panic!("bad JSON: {e}\n{text}"));
        (output, json)
    }
}

impl Invocation<'_> {
    /// Runs leakscope in `dir`, checks that it exited with 0 (the program's own code, which
    /// these programs make 0), and reads its JSON report.
    pub fn run_ok(self, dir: &Path) -> Value {
        let (output, report) = self.run_json(dir);
        assert_eq!(output.exit(), Exit::Code(0), "{}", output.stderr_text());
        report
    }
}

/// `leakscope ARGS`, run to its end in `dir`; panics if it cannot run or does not end in time.
pub fn invoke<S: AsRef<OsStr>>(dir: &Path, args: &[S]) -> Output {
    let mut command = command();
    command.args(args).current_dir(dir);
    process::run(&mut command, None, process::TIMEOUT).unwrap_or_else(|e| panic!("{e}"))
}

/// Checks that the program leakscope was asked to run never ran (it prints nothing otherwise).
pub fn assert_program_did_not_run(output: &Output) {
    assert!(
        output.stdout.is_empty(),
        "the program ran: its stdout is {:?}",
        output.stdout_text()
    );
}

/// Waits (at most 20 s) until the agent's writer has put its first chunks in `profile`.
pub fn wait_for_profile(profile: &Path) {
    let deadline = Instant::now() + Duration::from_secs(20);
    while std::fs::metadata(profile).map_or(0, |m| m.len()) < 64 && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Runs a fixture under leakscope and reads the report it wrote.
pub fn run(program: &Path, args: &[OsString]) -> Result<Run, String> {
    run_with(program, args, &[])
}

/// As [`run`], with more options for `leakscope run` (such as `--sample-rate`).
pub fn run_with(program: &Path, args: &[OsString], options: &[&str]) -> Result<Run, String> {
    let dir = tempfile::Builder::new()
        .prefix("leakscope-e2e-")
        .tempdir()
        .map_err(|e| format!("cannot make a temporary directory: {e}"))?;
    let (output, report) = Invocation::new(program)
        .args(args.iter().cloned())
        .extra(options.iter().copied())
        .run(dir.path())?;
    let text = std::fs::read_to_string(&report).map_err(|e| {
        format!(
            "leakscope wrote no report at {} ({e}); it ended with {}; its stderr:\n{}",
            report.display(),
            output.exit(),
            output.stderr_text()
        )
    })?;
    let (main, children) = parse_report(&text).map_err(|e| {
        format!(
            "cannot read leakscope's report: {e}\nleakscope ended with {}; report:\n{text}",
            output.exit()
        )
    })?;
    Ok(Run {
        exit: output.exit(),
        main,
        children,
        stderr: output.stderr,
    })
}

/// Reads a report document: the program's own report and its children's.
pub fn parse_report(text: &str) -> Result<(ProcessReport, Vec<ProcessReport>), String> {
    let doc: Value = serde_json::from_str(text).map_err(|e| format!("not JSON: {e}"))?;
    let version = doc.get("format_version").and_then(Value::as_u64);
    if version != Some(1) {
        return Err(format!("format_version is {version:?}, not 1"));
    }
    let main = parse_process(&doc)?;
    let children = match doc.get("children") {
        None | Some(Value::Null) => Vec::new(),
        Some(Value::Array(children)) => children
            .iter()
            .enumerate()
            .map(|(i, c)| parse_process(c).map_err(|e| format!("children[{i}]: {e}")))
            .collect::<Result<_, _>>()?,
        Some(other) => return Err(format!("children is not an array: {other}")),
    };
    Ok((main, children))
}

fn parse_process(doc: &Value) -> Result<ProcessReport, String> {
    let summary = doc.get("summary").ok_or("no summary")?;
    let mut totals = Totals::default();
    for kind in Kind::ALL {
        let entry = summary
            .get(kind.key())
            .ok_or_else(|| format!("no summary.{kind}"))?;
        totals.set(
            kind,
            parse_amount(entry).map_err(|e| format!("summary.{kind}: {e}"))?,
        );
    }
    let mut leaks = Vec::new();
    if let Some(list) = doc.get("leaks") {
        let list = list.as_array().ok_or("leaks is not an array")?;
        for (i, leak) in list.iter().enumerate() {
            let kind_name = leak.get("kind").and_then(Value::as_str);
            // Kinds beyond the four (e.g. "suppressed") are not compared.
            let Some(kind) = kind_name.and_then(Kind::from_key) else {
                continue;
            };
            let amount = parse_amount(leak).map_err(|e| format!("leaks[{i}]: {e}"))?;
            let functions = leak
                .get("stack")
                .and_then(Value::as_array)
                .ok_or_else(|| format!("leaks[{i}] has no stack array"))?
                .iter()
                .filter_map(|frame| frame.get("function").and_then(Value::as_str))
                .map(str::to_string)
                .collect();
            leaks.push(Leak {
                kind,
                amount,
                functions,
            });
        }
    } else {
        return Err("no leaks array".into());
    }
    let exit = match doc.get("exit") {
        Some(exit) => {
            let code = exit.get("code").and_then(Value::as_i64);
            let signal = exit.get("signal").and_then(Value::as_i64);
            match (code, signal) {
                (_, Some(s)) => Some(Exit::Signal(s as i32)),
                (Some(c), None) => Some(Exit::Code(c as i32)),
                (None, None) => None,
            }
        }
        None => None,
    };
    let pid = doc
        .get("pid")
        .and_then(Value::as_u64)
        .and_then(|p| u32::try_from(p).ok());
    let suppressed = summary
        .get("suppressed")
        .map(parse_amount)
        .transpose()
        .map_err(|e| format!("summary.suppressed: {e}"))?;
    Ok(ProcessReport {
        pid,
        totals,
        leaks,
        exit,
        suppressed,
    })
}

fn parse_amount(entry: &Value) -> Result<Amount, String> {
    let field = |name: &str| {
        entry
            .get(name)
            .and_then(Value::as_u64)
            .ok_or_else(|| format!("no whole number {name:?}"))
    };
    Ok(Amount {
        bytes: field("bytes")?,
        blocks: field("blocks")?,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_design_example_report_is_read() {
        let text = r#"{
          "format_version": 1,
          "tool": {"name": "leakscope", "version": "0.1.0"},
          "pid": 4242,
          "command": ["./prog", "arg"],
          "exit": {"code": null, "signal": 6},
          "summary": {
            "definitely_lost": {"bytes": 4096, "blocks": 1},
            "indirectly_lost": {"bytes": 0, "blocks": 0},
            "possibly_lost":   {"bytes": 0, "blocks": 0},
            "still_reachable": {"bytes": 0, "blocks": 0},
            "suppressed":      {"bytes": 0, "blocks": 0}
          },
          "leaks": [
            {"kind": "definitely_lost", "bytes": 4096, "blocks": 1,
             "stack": [{"address": "0x55d0c0a011a9", "function": "process_request",
                        "file": "leak.c", "line": 7, "module": "/p", "inlined": false},
                       {"address": "0x55d0c0a011b0", "function": null}]}
          ],
          "children": [{
            "pid": 4243, "exit": {"code": 0, "signal": null},
            "summary": {
              "definitely_lost": {"bytes": 100, "blocks": 1},
              "indirectly_lost": {"bytes": 0, "blocks": 0},
              "possibly_lost":   {"bytes": 0, "blocks": 0},
              "still_reachable": {"bytes": 0, "blocks": 0}
            },
            "leaks": []
          }]
        }"#;
        let (main, children) = parse_report(text).unwrap();
        assert_eq!(main.pid, Some(4242));
        assert_eq!(main.exit, Some(Exit::Signal(6)));
        assert_eq!(main.totals.get(Kind::DefinitelyLost).bytes, 4096);
        assert_eq!(main.leaks[0].functions, vec!["process_request"]);
        assert_eq!(children.len(), 1);
        assert_eq!(children[0].exit, Some(Exit::Code(0)));
        assert_eq!(children[0].totals.get(Kind::DefinitelyLost).blocks, 1);
        assert!(parse_report("{\"format_version\": 2}").is_err());
        assert!(parse_report("{\"format_version\": 1, \"leaks\": []}").is_err());
    }
}
