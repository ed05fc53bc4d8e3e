//! A case of the suite: a few steps (runs of real programs) in one working directory, run in
//! three passes — natively, with the tracked steps under `leakscope run`, and with the memcheck
//! steps under valgrind — each pass in a freshly laid directory at the same path.

use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use super::{
    bound, check_report_end, compare_summaries, describe_command, describe_status, environment,
    first_difference, kill_after, memcheck, parse_memcheck, program, read_report, run, tail,
    tracked, without_leakscope_lines, Dirs, Guard, Output, Row, Summary, MEMCHECK_LIMIT,
    NATIVE_LIMIT,
};

/// One run of a program.
pub struct Step {
    pub program: PathBuf,
    pub args: Vec<OsString>,
    pub stdin: Option<Vec<u8>>,
    pub env: Vec<(OsString, OsString)>,
    /// Compare the program's stderr with its native stderr (leakscope's own lines taken out).
    pub compare_stderr: bool,
    /// Run under leakscope in the second pass (otherwise natively in every pass: a step that
    /// only prepares or checks, such as running the program gcc built).
    pub tracked: bool,
    /// Also run under memcheck, and compare its leak summary with leakscope's.
    pub memcheck: bool,
}

impl Step {
    pub fn new<I: IntoIterator<Item = S>, S: Into<OsString>>(program: &Path, args: I) -> Step {
        Step {
            program: program.to_path_buf(),
            args: args.into_iter().map(Into::into).collect(),
            stdin: None,
            env: Vec::new(),
            compare_stderr: true,
            tracked: true,
            memcheck: false,
        }
    }

    pub fn stdin(mut self, data: impl Into<Vec<u8>>) -> Step {
        self.stdin = Some(data.into());
        self
    }

    pub fn env(mut self, key: &str, value: impl Into<OsString>) -> Step {
        self.env.push((key.into(), value.into()));
        self
    }

    /// The program's stderr is not deterministic (times, addresses): not compared.
    pub fn stderr_varies(mut self) -> Step {
        self.compare_stderr = false;
        self
    }

    pub fn untracked(mut self) -> Step {
        self.tracked = false;
        self
    }

    pub fn memcheck(mut self) -> Step {
        self.memcheck = true;
        self
    }

    fn describe(&self, index: usize) -> String {
        let mut words = vec![self.program.display().to_string()];
        words.extend(self.args.iter().map(|a| a.to_string_lossy().into_owned()));
        let mut line = words.join(" ");
        if line.len() > 100 {
            line.truncate(100);
            line.push_str("...");
        }
        format!("step {} ({line})", index + 1)
    }
}

/// Lays out the working directory for a pass (input files, a compiled class).
pub type Setup = Box<dyn Fn(&Dirs) -> Result<(), String>>;

pub struct Case {
    pub name: &'static str,
    pub setup: Setup,
    pub steps: Vec<Step>,
    /// Files (relative to the working directory) that the steps write, which must be the same
    /// bytes natively and under leakscope.
    pub artifacts: Vec<&'static str>,
    /// Processes the steps need (a server the client talks to), killed when the case is dropped.
    pub helpers: Vec<Guard>,
}

impl Case {
    /// A case of `steps`, with nothing to set up, no artifacts and no helpers.
    pub fn new(name: &'static str, steps: Vec<Step>) -> Case {
        Case {
            name,
            setup: Box::new(|_| Ok(())),
            steps,
            artifacts: Vec::new(),
            helpers: Vec::new(),
        }
    }

    pub fn setup(mut self, setup: impl Fn(&Dirs) -> Result<(), String> + 'static) -> Case {
        self.setup = Box::new(setup);
        self
    }

    pub fn artifacts(mut self, files: &[&'static str]) -> Case {
        self.artifacts = files.to_vec();
        self
    }

    pub fn helpers(mut self, helpers: Vec<Guard>) -> Case {
        self.helpers = helpers;
        self
    }
}

enum Mode {
    Native,
    Tracked,
    Memcheck,
}

fn command_for(dirs: &Dirs, step: &Step, index: usize, mode: &Mode) -> Command {
    let mut command = match mode {
        Mode::Tracked if step.tracked => tracked(
            &step.program,
            &step.args,
            &report_path(dirs, index),
            &dirs.out.join(format!("step{}.profile", index + 1)),
            &[],
        ),
        Mode::Memcheck if step.memcheck => memcheck(
            &step.program,
            &step.args,
            &dirs.out.join(format!("step{}.memcheck.log", index + 1)),
        ),
        _ => {
            let mut command = Command::new(&step.program);
            command.args(&step.args);
            command
        }
    };
    command
        .env_clear()
        .envs(environment(dirs))
        .envs(step.env.iter().map(|(k, v)| (k, v)))
        .current_dir(&dirs.work);
    command
}

fn report_path(dirs: &Dirs, index: usize) -> PathBuf {
    dirs.out.join(format!("step{}.json", index + 1))
}

/// Runs every step of a pass in a fresh directory; `limits[i]` bounds step i.
fn pass(
    dirs: &Dirs,
    case: &Case,
    mode: &Mode,
    limits: &[Duration],
) -> Result<Vec<Result<Output, String>>, String> {
    dirs.fresh();
    (case.setup)(dirs).map_err(|e| format!("the set-up failed: {e}"))?;
    Ok(case
        .steps
        .iter()
        .enumerate()
        .map(|(i, step)| {
            let mut command = command_for(dirs, step, i, mode);
            run(&mut command, step.stdin.as_deref(), limits[i])
        })
        .collect())
}

fn read_artifacts(dirs: &Dirs, case: &Case) -> Vec<Option<Vec<u8>>> {
    case.artifacts
        .iter()
        .map(|name| std::fs::read(dirs.work.join(name)).ok())
        .collect()
}

/// Runs a case's three passes and compares them: the row of the table.
pub fn run_case(dirs: &Dirs, case: &Case) -> Row {
    let mut row = Row::new(case.name);
    let native_limits = vec![NATIVE_LIMIT; case.steps.len()];
    let native = match pass(dirs, case, &Mode::Native, &native_limits) {
        Ok(native) => native,
        Err(e) => {
            row.problems.push(format!("native pass: {e}"));
            return row;
        }
    };
    let mut native_runs: Vec<Output> = Vec::new();
    for (i, ran) in native.into_iter().enumerate() {
        match ran {
            Ok(ran) => native_runs.push(ran),
            Err(e) => {
                row.problems.push(format!(
                    "{} natively (a fault of the case, not of leakscope): {e}",
                    case.steps[i].describe(i)
                ));
                return row;
            }
        }
    }
    let native_artifacts = read_artifacts(dirs, case);

    let limits: Vec<Duration> = case
        .steps
        .iter()
        .zip(&native_runs)
        .map(|(step, ran)| {
            if step.tracked {
                kill_after(ran.elapsed)
            } else {
                NATIVE_LIMIT
            }
        })
        .collect();
    let tracked_runs = match pass(dirs, case, &Mode::Tracked, &limits) {
        Ok(runs) => runs,
        Err(e) => {
            row.problems.push(format!("leakscope pass: {e}"));
            return row;
        }
    };
    let tracked_artifacts = read_artifacts(dirs, case);
    // A second native pass, after the tracked one, so that neither is favoured by a cold cache
    // (the first run of a program reads it from disk): the native time of a step is the
    // shorter of its two native runs, and both must have the same output.
    match pass(dirs, case, &Mode::Native, &native_limits) {
        Ok(again) => {
            for (i, (first, again)) in native_runs.iter_mut().zip(again).enumerate() {
                match again {
                    Ok(again)
                        if again.stdout == first.stdout
                            && again.status == first.status
                            && (!case.steps[i].compare_stderr || again.stderr == first.stderr) =>
                    {
                        first.elapsed = first.elapsed.min(again.elapsed);
                    }
                    Ok(_) => row.problems.push(format!(
                        "{}: two native runs differ (a fault of the case, not of leakscope)",
                        case.steps[i].describe(i)
                    )),
                    Err(e) => row.problems.push(format!(
                        "{} natively, the second time (a fault of the case): {e}",
                        case.steps[i].describe(i)
                    )),
                }
            }
        }
        Err(e) => row.problems.push(format!("second native pass: {e}")),
    }
    let mut summaries: Vec<Option<Summary>> = vec![None; case.steps.len()];
    let mut stdout_same = true;
    let mut status_same = true;
    let mut total_tracked = Duration::ZERO;
    let mut times = Vec::new();
    for (i, (step, (native, tracked))) in case
        .steps
        .iter()
        .zip(native_runs.iter().zip(&tracked_runs))
        .enumerate()
    {
        let what = step.describe(i);
        if step.tracked {
            row.native += native.elapsed;
        }
        let tracked = match tracked {
            Ok(tracked) => tracked,
            Err(e) => {
                if step.tracked {
                    row.killed = true;
                    total_tracked += limits[i];
                }
                stdout_same = false;
                status_same = false;
                row.problems.push(format!(
                    "{what}{}: {e}",
                    if step.tracked { " under leakscope" } else { "" }
                ));
                continue;
            }
        };
        if native.stdout != tracked.stdout {
            stdout_same = false;
            row.problems.push(format!(
                "{what}: stdout differs: {}",
                first_difference(&native.stdout, &tracked.stdout)
            ));
        }
        if native.status != tracked.status {
            status_same = false;
            row.problems.push(format!(
                "{what}: ended with {} under leakscope, {} natively",
                describe_status(tracked.status),
                describe_status(native.status)
            ));
        }
        let (program_stderr, own_lines) = without_leakscope_lines(&tracked.stderr);
        if step.compare_stderr && program_stderr != native.stderr {
            row.problems.push(format!(
                "{what}: stderr differs: {}",
                first_difference(&native.stderr, &program_stderr)
            ));
        }
        if !step.tracked {
            continue;
        }
        total_tracked += tracked.elapsed;
        times.push(format!(
            "{} {:.3}/{:.3}",
            i + 1,
            native.elapsed.as_secs_f64(),
            tracked.elapsed.as_secs_f64()
        ));
        let limit = bound(native.elapsed);
        if tracked.elapsed > limit {
            row.problems.push(format!(
                "{what}: took {:.2} s under leakscope, {:.3} s natively: over the bound of \
                 {:.2} s (max({}x native, native + {} s))",
                tracked.elapsed.as_secs_f64(),
                native.elapsed.as_secs_f64(),
                limit.as_secs_f64(),
                super::SLOWDOWN,
                super::GRACE.as_secs()
            ));
        }
        match read_report(&report_path(dirs, i)) {
            Ok(report) => {
                if let Some(problem) = check_report_end(&report, tracked.status) {
                    row.problems.push(format!("{what}: {problem}"));
                }
                for note in &report.notes {
                    row.remarks.push(format!("{what}: leakscope's note: {note}"));
                }
                summaries[i] = Some(report.summary);
            }
            Err(e) => row.problems.push(format!(
                "{what}: {e}; leakscope's own lines on stderr: {own_lines:?}; the tail of stderr:\n{}",
                tail(&tracked.stderr_text(), 20)
            )),
        }
    }
    row.tracked = Some(total_tracked);
    if !times.is_empty() {
        row.remarks.push(format!(
            "seconds natively/under leakscope per step: {}",
            times.join(", ")
        ));
    }
    row.stdout_same = Some(stdout_same);
    row.status_same = Some(status_same);
    for ((name, native), tracked) in case
        .artifacts
        .iter()
        .zip(&native_artifacts)
        .zip(&tracked_artifacts)
    {
        match (native, tracked) {
            (Some(a), Some(b)) if a == b => {}
            (Some(a), Some(b)) => {
                row.stdout_same = Some(false);
                row.problems.push(format!(
                    "the file {name} differs: {}",
                    first_difference(a, b)
                ));
            }
            (None, _) => row.problems.push(format!(
                "the file {name} was not written natively (the case is wrong)"
            )),
            (Some(_), None) => {
                row.stdout_same = Some(false);
                row.problems
                    .push(format!("the file {name} was not written under leakscope"));
            }
        }
    }

    if case.steps.iter().any(|s| s.memcheck) {
        memcheck_pass(dirs, case, &native_runs, &summaries, &mut row);
    }
    row
}

fn memcheck_pass(
    dirs: &Dirs,
    case: &Case,
    native_runs: &[Output],
    summaries: &[Option<Summary>],
    row: &mut Row,
) {
    if program("valgrind").is_none() {
        let message = "valgrind is not installed (bash .ci/setup.sh installs it)".to_string();
        if std::env::var_os("CI").is_some_and(|v| !v.is_empty()) {
            row.problems.push(message);
        } else {
            row.remarks
                .push(format!("memcheck not compared: {message}"));
        }
        return;
    }
    let limits: Vec<Duration> = case
        .steps
        .iter()
        .map(|s| {
            if s.memcheck {
                MEMCHECK_LIMIT
            } else {
                NATIVE_LIMIT
            }
        })
        .collect();
    let runs = match pass(dirs, case, &Mode::Memcheck, &limits) {
        Ok(runs) => runs,
        Err(e) => {
            row.memcheck = "NO".into();
            row.problems.push(format!("memcheck pass: {e}"));
            return;
        }
    };
    let mut agrees = true;
    for (i, step) in case.steps.iter().enumerate() {
        if !step.memcheck {
            continue;
        }
        let what = step.describe(i);
        let ran = match &runs[i] {
            Ok(ran) => ran,
            Err(e) => {
                agrees = false;
                row.problems.push(format!("{what} under memcheck: {e}"));
                continue;
            }
        };
        if ran.stdout != native_runs[i].stdout {
            row.remarks
                .push(format!("{what}: stdout under memcheck differs from native"));
        }
        let log_path = dirs.out.join(format!("step{}.memcheck.log", i + 1));
        let log = std::fs::read_to_string(&log_path).unwrap_or_default();
        let Some(memcheck) = parse_memcheck(&log) else {
            agrees = false;
            row.problems.push(format!(
                "{what}: memcheck printed no leak summary in {}:\n{}",
                log_path.display(),
                tail(&log, 20)
            ));
            continue;
        };
        let Some(leakscope) = &summaries[i] else {
            agrees = false;
            row.problems.push(format!(
                "{what}: no leakscope report to compare with memcheck's {}",
                show(&memcheck)
            ));
            continue;
        };
        match compare_summaries(&memcheck, leakscope) {
            Ok(remark) if remark.is_empty() => row.remarks.push(format!(
                "{what}: memcheck and leakscope agree on all four kinds: {}",
                show(leakscope)
            )),
            Ok(remark) => row.remarks.push(format!(
                "{what}: definitely and indirectly lost agree ({}, {}); other kinds differ: {remark}",
                leakscope[0], leakscope[1]
            )),
            Err(difference) => {
                agrees = false;
                row.problems.push(format!(
                    "{what}: memcheck and leakscope disagree on lost blocks: {difference} \
                     (memcheck's log: {}; {})",
                    log_path.display(),
                    describe_command(&command_for(dirs, step, i, &Mode::Memcheck))
                ));
            }
        }
    }
    row.memcheck = if agrees { "yes" } else { "NO" }.into();
}

fn show(summary: &Summary) -> String {
    super::KINDS
        .iter()
        .zip(summary)
        .map(|((key, _), amount)| format!("{key} {amount}"))
        .collect::<Vec<_>>()
        .join(", ")
}
