//! The machinery of the real-program suite (`tests/real_programs.rs`, docs/real-programs.md):
//! running a program natively and under `leakscope run` with the same environment, in the same
//! directory, with a time limit; memcheck's leak summary; reading leakscope's JSON report; the
//! table of results.

pub mod case;
// memcheck's command line, shared with the fixture corpus.
#[path = "../harness/memcheck.rs"]
mod memcheck;
// The harness's process guard and runner, shared with the end-to-end tests, which use parts of
// it that this suite does not (`TIMEOUT`, `signal`, `Output::exit`).
#[path = "../harness/process.rs"]
#[allow(dead_code)]
pub mod process;
pub mod servers;

pub use process::{describe_command, run, tail, Guard, Output};

use std::ffi::OsString;
use std::fmt::Write as _;
use std::os::unix::process::ExitStatusExt;
use std::path::{Path, PathBuf};
use std::process::{Command, ExitStatus};
use std::time::Duration;

use serde_json::Value;

/// A run under leakscope may take at most `SLOWDOWN` times the native wall time, or the native
/// time plus `GRACE`, whichever is larger (a generous bound: the suite runs on a shared, noisy
/// two-core machine, and leakscope's report of a short run costs a fixed fraction of a second).
pub const SLOWDOWN: f64 = 10.0;
pub const GRACE: Duration = Duration::from_secs(3);

/// The slowdown bound for one run whose native time is `native`.
pub fn bound(native: Duration) -> Duration {
    native.mul_f64(SLOWDOWN).max(native + GRACE)
}

/// A tracked run is killed 10 s after its bound (at least 20 s after its start): by then it has
/// failed, the 10 s tell a run that is slow from one that hangs, and the suite must stay within
/// its share of CI's time.
pub fn kill_after(native: Duration) -> Duration {
    (bound(native) + Duration::from_secs(10)).max(Duration::from_secs(20))
}

/// How long a native run, or a memcheck run, may take.
pub const NATIVE_LIMIT: Duration = Duration::from_secs(60);
pub const MEMCHECK_LIMIT: Duration = Duration::from_secs(120);

/// The leakscope executable cargo built for this test binary, or the one named by
/// `LEAKSCOPE_REAL_BIN` (e.g. a release build, or another branch's, to compare).
pub fn leakscope() -> PathBuf {
    match std::env::var_os("LEAKSCOPE_REAL_BIN") {
        Some(path) if !path.is_empty() => PathBuf::from(path),
        _ => PathBuf::from(env!("CARGO_BIN_EXE_leakscope")),
    }
}

/// Where the suite keeps its cases' directories and its table: under the target directory, so
/// that a failed case can be looked at afterwards (each run of a case starts it anew).
pub fn suite_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("real-programs")
}

/// The installed program `name` from Debian's packages (`/usr/bin`, `/usr/sbin`, `/bin`), not
/// whatever else `PATH` may find first.
pub fn program(name: &str) -> Option<PathBuf> {
    ["/usr/bin", "/usr/sbin", "/bin", "/sbin"]
        .iter()
        .map(|dir| Path::new(dir).join(name))
        .find(|path| is_executable(path))
}

fn is_executable(path: &Path) -> bool {
    use std::os::unix::fs::PermissionsExt;
    std::fs::metadata(path).is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
}

/// Resolves every program a case needs. `Err` names the missing ones: the case is skipped with
/// that message, except in CI (`CI` set), where `.ci/setup.sh` installed them all, so that a
/// missing program there is a failure and never a silent skip.
pub fn require(names: &[&str]) -> Result<Vec<PathBuf>, String> {
    let mut found = Vec::new();
    let mut missing = Vec::new();
    for name in names {
        match program(name) {
            Some(path) => found.push(path),
            None => missing.push(*name),
        }
    }
    if missing.is_empty() {
        return Ok(found);
    }
    let message = format!(
        "not installed: {} (bash .ci/setup.sh installs them)",
        missing.join(", ")
    );
    if std::env::var_os("CI").is_some_and(|v| !v.is_empty()) {
        panic!("{message}; CI must run every real program");
    }
    Err(message)
}

/// The directories of one case: `work` (the current directory of every step, laid anew before
/// each pass, at the same path, so that output naming it is the same), `home` (`HOME`), `tmp`
/// (`TMPDIR`), and `out` (reports, profiles, logs; kept across passes).
#[derive(Clone, Debug)]
pub struct Dirs {
    pub root: PathBuf,
    pub work: PathBuf,
    pub home: PathBuf,
    pub tmp: PathBuf,
    pub out: PathBuf,
}

impl Dirs {
    /// `root` is emptied; `out` is made, the others by [`Dirs::fresh`].
    pub fn new(root: PathBuf) -> Dirs {
        let _ = std::fs::remove_dir_all(&root);
        let dirs = Dirs {
            work: root.join("work"),
            home: root.join("home"),
            tmp: root.join("tmp"),
            out: root.join("out"),
            root,
        };
        std::fs::create_dir_all(&dirs.out).expect("the case's output directory");
        dirs
    }

    /// Empties `work`, `home` and `tmp` for a new pass.
    pub fn fresh(&self) {
        for dir in [&self.work, &self.home, &self.tmp] {
            let _ = std::fs::remove_dir_all(dir);
            std::fs::create_dir_all(dir).expect("a case directory");
        }
    }
}

/// The one environment of every run of a case, natively and under leakscope alike: nothing of
/// the developer's own (their `PATH`, git or gpg configuration, locale) reaches the programs.
/// `XDG_CACHE_HOME` stays the developer's, so that leakscope reuses the agent it unpacked there.
pub fn environment(dirs: &Dirs) -> Vec<(OsString, OsString)> {
    let cache = std::env::var_os("XDG_CACHE_HOME")
        .filter(|v| !v.is_empty())
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| Path::new(&h).join(".cache")))
        .unwrap_or_else(|| dirs.root.join("cache"));
    let user = std::env::var_os("USER").unwrap_or_else(|| "root".into());
    let mut env: Vec<(OsString, OsString)> = vec![
        ("PATH".into(), "/usr/sbin:/usr/bin:/sbin:/bin".into()),
        ("HOME".into(), dirs.home.clone().into()),
        ("TMPDIR".into(), dirs.tmp.clone().into()),
        ("XDG_CACHE_HOME".into(), cache.into()),
        ("LANG".into(), "C.UTF-8".into()),
        ("LC_ALL".into(), "C.UTF-8".into()),
        ("TZ".into(), "UTC".into()),
        ("TERM".into(), "dumb".into()),
        ("USER".into(), user.clone()),
        ("LOGNAME".into(), user),
    ];
    env.sort();
    env
}

/// "exit 0", "signal 11 (core dumped)".
pub fn describe_status(status: ExitStatus) -> String {
    match (status.code(), status.signal()) {
        (Some(code), _) => format!("exit {code}"),
        (None, Some(signal)) if status.core_dumped() => format!("signal {signal} (core dumped)"),
        (None, Some(signal)) => format!("signal {signal}"),
        _ => format!("{status:?}"),
    }
}

/// `leakscope run --format json --output REPORT --keep PROFILE [options] -- program args`.
pub fn tracked(
    program: &Path,
    args: &[OsString],
    report: &Path,
    profile: &Path,
    options: &[&str],
) -> Command {
    let mut command = Command::new(leakscope());
    command
        .arg("run")
        .args(["--format", "json", "--output"])
        .arg(report)
        .arg("--keep")
        .arg(profile)
        // memcheck runs with --default-suppressions=no (MEMCHECK_OPTIONS): every block is
        // counted by both.
        .arg("--no-default-suppressions")
        .args(options)
        .arg("--")
        .arg(program)
        .args(args);
    command
}

/// leakscope's own lines on stderr ("leakscope: profile kept at ...") are not the program's: they
/// are taken out before the program's stderr is compared with its native one.
pub fn without_leakscope_lines(stderr: &[u8]) -> (Vec<u8>, Vec<String>) {
    let mut program = Vec::new();
    let mut own = Vec::new();
    for line in stderr.split_inclusive(|&b| b == b'\n') {
        if line.starts_with(b"leakscope:") || line.starts_with(b"leakscope ") {
            own.push(String::from_utf8_lossy(line).trim_end().to_string());
        } else {
            program.extend_from_slice(line);
        }
    }
    (program, own)
}

/// Where two outputs first differ, for a failure message.
pub fn first_difference(native: &[u8], tracked: &[u8]) -> String {
    let at = native
        .iter()
        .zip(tracked)
        .position(|(a, b)| a != b)
        .unwrap_or(native.len().min(tracked.len()));
    let line = native[..at].iter().filter(|&&b| b == b'\n').count() + 1;
    let excerpt = |data: &[u8]| {
        let from = at.saturating_sub(60);
        let to = (at + 100).min(data.len());
        format!("{:?}", String::from_utf8_lossy(&data[from..to]))
    };
    format!(
        "{} bytes natively, {} under leakscope; first difference at byte {at} (line {line}):\n      \
         native:    {}\n      leakscope: {}",
        native.len(),
        tracked.len(),
        excerpt(native),
        excerpt(tracked)
    )
}

/// Bytes and blocks of one kind.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Amount {
    pub bytes: u64,
    pub blocks: u64,
}

impl std::fmt::Display for Amount {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} B/{} blk", self.bytes, self.blocks)
    }
}

/// memcheck's four kinds, in its order, with the JSON report's key and memcheck's words.
pub const KINDS: [(&str, &str); 4] = [
    ("definitely_lost", "definitely lost"),
    ("indirectly_lost", "indirectly lost"),
    ("possibly_lost", "possibly lost"),
    ("still_reachable", "still reachable"),
];

/// A leak summary: the four kinds in [`KINDS`] order.
pub type Summary = [Amount; 4];

/// What leakscope's JSON report said about a run.
#[derive(Debug, Clone)]
pub struct Report {
    pub summary: Summary,
    pub exit_code: Option<i64>,
    pub exit_signal: Option<i64>,
    pub notes: Vec<String>,
    pub children: Vec<Value>,
    pub doc: Value,
}

/// Reads and checks the shape of a report written by `--format json --output FILE`.
pub fn read_report(path: &Path) -> Result<Report, String> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| format!("leakscope wrote no report at {} ({e})", path.display()))?;
    let doc: Value = serde_json::from_str(&text)
        .map_err(|e| format!("the report at {} is not JSON: {e}", path.display()))?;
    if doc["format_version"] != 1 {
        return Err(format!(
            "the report's format_version is {}, not 1",
            doc["format_version"]
        ));
    }
    let mut summary = Summary::default();
    for (i, (key, _)) in KINDS.iter().enumerate() {
        let entry = &doc["summary"][key];
        match (entry["bytes"].as_u64(), entry["blocks"].as_u64()) {
            (Some(bytes), Some(blocks)) => summary[i] = Amount { bytes, blocks },
            _ => {
                return Err(format!(
                    "the report has no summary.{key}: {}",
                    doc["summary"]
                ))
            }
        }
    }
    let notes = doc["notes"]
        .as_array()
        .map(|n| {
            n.iter()
                .filter_map(|v| v.as_str().map(str::to_string))
                .collect()
        })
        .unwrap_or_default();
    let children = doc["children"].as_array().cloned().unwrap_or_default();
    Ok(Report {
        summary,
        exit_code: doc["exit"]["code"].as_i64(),
        exit_signal: doc["exit"]["signal"].as_i64(),
        notes,
        children,
        doc,
    })
}

/// Problems with a report for a run that ended with `status`: the report must record that end.
pub fn check_report_end(report: &Report, status: ExitStatus) -> Option<String> {
    let recorded = (report.exit_code, report.exit_signal);
    let actual = (status.code().map(i64::from), status.signal().map(i64::from));
    // leakscope dies of the program's signal, or exits with its code.
    if recorded == actual {
        return None;
    }
    Some(format!(
        "the report records the end as code {:?} signal {:?}, but the program ended with {}{}",
        report.exit_code,
        report.exit_signal,
        describe_status(status),
        if report.notes.is_empty() {
            String::new()
        } else {
            format!("; its notes: {:?}", report.notes)
        }
    ))
}

/// The memcheck options of the comparison, beside memcheck's leak check (those of the fixture
/// corpus, `tests/harness/memcheck.rs`): one log for the program alone, and no default
/// suppressions, as leakscope runs with --no-default-suppressions: every block is counted by
/// both.
pub const MEMCHECK_OPTIONS: &[&str] =
    &["--child-silent-after-fork=yes", "--default-suppressions=no"];

/// `valgrind OPTIONS --log-file=LOG program args`.
pub fn memcheck(program: &Path, args: &[OsString], log: &Path) -> Command {
    memcheck::command(MEMCHECK_OPTIONS, &log.display().to_string(), program, args)
}

/// memcheck's LEAK SUMMARY (or "All heap blocks were freed") in a log; `None` if there is none.
pub fn parse_memcheck(log: &str) -> Option<Summary> {
    let lines: Vec<&str> = log
        .lines()
        .map(|line| match line.strip_prefix("==") {
            Some(rest) => rest.split_once("== ").map_or("", |(_, text)| text),
            None => line,
        })
        .map(str::trim)
        .collect();
    if lines
        .iter()
        .any(|l| l.starts_with("All heap blocks were freed"))
    {
        return Some(Summary::default());
    }
    let start = lines.iter().position(|l| *l == "LEAK SUMMARY:")?;
    let mut summary = Summary::default();
    for (i, (_, words)) in KINDS.iter().enumerate() {
        let prefix = format!("{words}:");
        let rest = lines[start + 1..]
            .iter()
            .take_while(|l| !l.is_empty())
            .find_map(|l| l.strip_prefix(prefix.as_str()))?;
        let numbers: Vec<u64> = rest
            .split_whitespace()
            .filter_map(|w| w.replace(',', "").parse().ok())
            .collect();
        match numbers[..] {
            [bytes, blocks] => summary[i] = Amount { bytes, blocks },
            _ => return None,
        }
    }
    Some(summary)
}

/// memcheck's and leakscope's totals side by side: `Ok` with a remark when definitely and
/// indirectly lost agree exactly (the remark names any difference in the other two kinds),
/// `Err` naming the difference otherwise.
pub fn compare_summaries(memcheck: &Summary, leakscope: &Summary) -> Result<String, String> {
    let mut lost = Vec::new();
    let mut other = Vec::new();
    for (i, (key, _)) in KINDS.iter().enumerate() {
        if memcheck[i] != leakscope[i] {
            let line = format!(
                "{key}: memcheck {}, leakscope {}",
                memcheck[i], leakscope[i]
            );
            if i < 2 {
                lost.push(line);
            } else {
                other.push(line);
            }
        }
    }
    if lost.is_empty() {
        Ok(other.join("; "))
    } else {
        lost.extend(other);
        Err(lost.join("; "))
    }
}

/// One line of the suite's table.
#[derive(Debug, Clone, Default)]
pub struct Row {
    pub program: String,
    /// Wall time natively and under leakscope, summed over the tracked runs.
    pub native: Duration,
    pub tracked: Option<Duration>,
    /// A tracked run was killed at its limit: `tracked` is then a lower bound.
    pub killed: bool,
    pub stdout_same: Option<bool>,
    pub status_same: Option<bool>,
    /// "yes", "NO", or "-" (not compared).
    pub memcheck: String,
    pub problems: Vec<String>,
    /// Remarks that are not failures (memcheck's other kinds, notes, throughput).
    pub remarks: Vec<String>,
    pub skipped: Option<String>,
}

impl Row {
    pub fn new(program: &str) -> Row {
        Row {
            program: program.to_string(),
            memcheck: "-".into(),
            ..Row::default()
        }
    }

    pub fn result(&self) -> &'static str {
        if self.skipped.is_some() {
            "skipped"
        } else if self.problems.is_empty() {
            "ok"
        } else {
            "FAIL"
        }
    }

    fn to_json(&self) -> Value {
        serde_json::json!({
            "program": self.program,
            "native_s": self.native.as_secs_f64(),
            "tracked_s": self.tracked.map(|t| t.as_secs_f64()),
            "killed": self.killed,
            "stdout_same": self.stdout_same,
            "status_same": self.status_same,
            "memcheck": self.memcheck,
            "problems": self.problems,
            "remarks": self.remarks,
            "skipped": self.skipped,
        })
    }

    fn from_json(value: &Value) -> Option<Row> {
        let strings = |key: &str| -> Vec<String> {
            value[key]
                .as_array()
                .map(|a| {
                    a.iter()
                        .filter_map(|v| v.as_str().map(str::to_string))
                        .collect()
                })
                .unwrap_or_default()
        };
        Some(Row {
            program: value["program"].as_str()?.to_string(),
            native: Duration::from_secs_f64(value["native_s"].as_f64()?),
            tracked: value["tracked_s"].as_f64().map(Duration::from_secs_f64),
            killed: value["killed"].as_bool().unwrap_or(false),
            stdout_same: value["stdout_same"].as_bool(),
            status_same: value["status_same"].as_bool(),
            memcheck: value["memcheck"].as_str()?.to_string(),
            problems: strings("problems"),
            remarks: strings("remarks"),
            skipped: value["skipped"].as_str().map(str::to_string),
        })
    }
}

fn yes_no(value: Option<bool>) -> &'static str {
    match value {
        Some(true) => "yes",
        Some(false) => "NO",
        None => "-",
    }
}

/// The table of `rows` (program, native time, leakscope time, ratio, stdout same, status same,
/// memcheck agrees, result), then (with `details`) each row's problems and remarks.
pub fn table(rows: &[Row], details: bool) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "{:<16} {:>9} {:>11} {:>7} {:>6} {:>6} {:>8}  result",
        "program", "native s", "leakscope s", "ratio", "stdout", "status", "memcheck"
    );
    for row in rows {
        let (tracked, ratio) = match row.tracked {
            Some(t) if row.skipped.is_none() => (
                format!(
                    "{}{:.2}",
                    if row.killed { ">" } else { "" },
                    t.as_secs_f64()
                ),
                format!(
                    "{}{:.1}x",
                    if row.killed { ">" } else { "" },
                    t.as_secs_f64() / row.native.as_secs_f64().max(1e-6)
                ),
            ),
            _ => ("-".into(), "-".into()),
        };
        let native = if row.skipped.is_some() {
            "-".into()
        } else {
            format!("{:.2}", row.native.as_secs_f64())
        };
        let _ = writeln!(
            out,
            "{:<16} {:>9} {:>11} {:>7} {:>6} {:>6} {:>8}  {}",
            row.program,
            native,
            tracked,
            ratio,
            yes_no(row.stdout_same),
            yes_no(row.status_same),
            row.memcheck,
            row.result()
        );
    }
    for row in rows.iter().filter(|_| details) {
        if let Some(why) = &row.skipped {
            let _ = writeln!(out, "\n{} skipped: {why}", row.program);
        }
        if !row.problems.is_empty() {
            let _ = writeln!(out, "\n{} FAILED:", row.program);
            for problem in &row.problems {
                let _ = writeln!(out, "  - {}", problem.replace('\n', "\n    "));
            }
        }
        if !row.remarks.is_empty() {
            let _ = writeln!(out, "\n{} remarks:", row.program);
            for remark in &row.remarks {
                let _ = writeln!(out, "  - {}", remark.replace('\n', "\n    "));
            }
        }
    }
    out
}

/// Records `row` under the suite's directory and rewrites the table of every case run since
/// this test binary was built (`real-programs/table.txt`, in `order`), under a lock, since the
/// cases run in parallel. Returns the table's lines, then the problems and remarks of `row`.
pub fn record(row: &Row, order: &[&str]) -> String {
    let rows_dir = suite_dir().join("rows");
    std::fs::create_dir_all(&rows_dir).expect("the rows directory");
    let lock = std::fs::File::create(suite_dir().join("table.lock")).expect("the table's lock");
    // SAFETY: flock(2) on a descriptor this function owns for the whole call; no memory is
    // shared with the kernel.
    unsafe {
        libc::flock(std::os::fd::AsRawFd::as_raw_fd(&lock), libc::LOCK_EX);
    }
    let file = rows_dir.join(format!("{}.json", row.program));
    std::fs::write(&file, row.to_json().to_string()).expect("a row file");
    let built = std::env::current_exe()
        .and_then(std::fs::metadata)
        .and_then(|m| m.modified())
        .ok();
    let mut rows: Vec<Row> = std::fs::read_dir(&rows_dir)
        .map(|entries| {
            entries
                .filter_map(Result::ok)
                .filter(|e| {
                    let modified = e.metadata().and_then(|m| m.modified()).ok();
                    matches!((built, modified), (Some(b), Some(m)) if m >= b)
                })
                .filter_map(|e| std::fs::read_to_string(e.path()).ok())
                .filter_map(|text| serde_json::from_str::<Value>(&text).ok())
                .filter_map(|value| Row::from_json(&value))
                .collect()
        })
        .unwrap_or_default();
    rows.sort_by_key(|r| {
        order
            .iter()
            .position(|name| *name == r.program)
            .unwrap_or(usize::MAX)
    });
    let text = table(&rows, true);
    let path = suite_dir().join("table.txt");
    let temporary = suite_dir().join("table.txt.new");
    std::fs::write(&temporary, &text).expect("the table");
    std::fs::rename(&temporary, &path).expect("the table");
    drop(lock);
    format!(
        "{}\n{}",
        table(&rows, false),
        table(std::slice::from_ref(row), true)
            .split_once("\n\n")
            .map_or("", |(_, details)| details)
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn memcheck_summaries_are_read() {
        let log = "==42== HEAP SUMMARY:\n==42==     in use at exit: 1,460 bytes in 17 blocks\n\
                   ==42== \n==42== LEAK SUMMARY:\n\
                   ==42==    definitely lost: 24 bytes in 1 blocks\n\
                   ==42==    indirectly lost: 336 bytes in 14 blocks\n\
                   ==42==      possibly lost: 0 bytes in 0 blocks\n\
                   ==42==    still reachable: 1,100 bytes in 2 blocks\n\
                   ==42==         suppressed: 0 bytes in 0 blocks\n==42== \n";
        let summary = parse_memcheck(log).unwrap();
        assert_eq!(
            summary[0],
            Amount {
                bytes: 24,
                blocks: 1
            }
        );
        assert_eq!(
            summary[3],
            Amount {
                bytes: 1100,
                blocks: 2
            }
        );
        let clean = "==7== All heap blocks were freed -- no leaks are possible\n";
        assert_eq!(parse_memcheck(clean), Some(Summary::default()));
        assert_eq!(parse_memcheck("==7== Memcheck\n"), None);
    }

    #[test]
    fn the_bound_is_the_larger_of_the_two() {
        assert_eq!(
            bound(Duration::from_millis(10)),
            Duration::from_millis(3010)
        );
        assert_eq!(bound(Duration::from_secs(1)), Duration::from_secs(10));
    }

    #[test]
    fn leakscope_lines_are_taken_out_of_stderr() {
        let (program, own) =
            without_leakscope_lines(b"warning: x\nleakscope: profile kept at /p\nlast");
        assert_eq!(program, b"warning: x\nlast");
        assert_eq!(own, vec!["leakscope: profile kept at /p"]);
    }
}
