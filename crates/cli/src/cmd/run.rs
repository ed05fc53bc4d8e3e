//! `leakscope run -- PROGRAM [ARGS]`: preflight, spawn the program with the agent preloaded,
//! pass signals on, wait, keep the program's exit status, then report.

use std::ffi::OsString;
use std::os::unix::process::{CommandExt, ExitStatusExt};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Instant;

use leakscope_analysis::Gate;
use leakscope_format::settings as names;
use leakscope_format::RunResult;

use crate::args::RunArgs;
use crate::cmd::{analysis_options, check_output_args, emit, leak_options, DefaultSink};
use crate::error::{ExitCode, Failure};
use crate::progress::Progress;
use crate::{agent, pipeline, preflight, signals};

/// Run the subcommand; returns the exit code (or does not return, re-raising the program's
/// fatal signal).
pub fn run(args: RunArgs) -> Result<i32, Failure> {
    let program = args.command[0].clone();
    check_output_args(&args.output, DefaultSink::Stderr)?;
    let program_path = preflight::check_program(&program)?;
    if let Some(output) = &args.output.output {
        preflight::check_output(output, "write the report to")?;
    }
    let options = leak_options(&args.leaks, &args.output, args.fail_on)?;
    if args.fail_on.is_some() && args.error_exitcode.is_none() {
        return Err(Failure::new(
            ExitCode::Usage,
            "--fail-on decides what fails --error-exitcode: give --error-exitcode N too".to_owned(),
        ));
    }
    let quiet = args.leaks.quiet;
    let agent_path =
        agent::locate().map_err(|e| Failure::new(ExitCode::Unsupported, format!("{e:#}")))?;
    let profile_path = profile_path(args.keep.as_deref(), &program)?;
    remove_old_profiles(&profile_path);
    create_profile(&profile_path)?;

    let mut command = Command::new(&program);
    command.args(&args.command[1..]);
    let mut preload = OsString::from(&agent_path);
    if let Some(existing) = std::env::var_os("LD_PRELOAD").filter(|v| !v.is_empty()) {
        preload.push(":");
        preload.push(&existing);
        let mut restore = OsString::from("LD_PRELOAD=");
        restore.push(&existing);
        command.env(names::RESTORE_PRELOAD, restore);
    }
    command
        .env("LD_PRELOAD", preload)
        .env(names::PROFILE, &profile_path)
        .env(names::MAX_FRAMES, args.max_frames.to_string())
        .env(
            names::INTERVAL_MS,
            (args.interval.as_millis().max(1)).to_string(),
        );
    if let Some(rate) = args.sample_rate {
        command.env(names::SAMPLE_RATE, rate.to_string());
    }
    if args.native {
        command.env(names::NATIVE_FRAMES, "1");
    }
    if args.follow_children {
        command.env(names::FOLLOW_CHILDREN, "1");
    }
    if let Some(every) = args.scan_every {
        command.env(names::SCAN_EVERY_MS, every.as_millis().max(1).to_string());
    }
    let node_preload = if crate::node::is_node_program(&program_path) {
        match crate::node::Preload::install(
            &mut command,
            &profile_path,
            &agent_path,
            args.interval,
            args.js_heap_snapshot_limit,
            args.follow_children,
        ) {
            Ok(preload) => Some(preload),
            Err(e) => {
                eprintln!("leakscope: {e:#}; the JavaScript side is not recorded");
                None
            }
        }
    } else {
        None
    };
    // SAFETY: the closure runs in the child between fork and exec and only calls `signal`,
    // `sigemptyset`, `sigaddset` and `pthread_sigmask`, which are async-signal-safe: it undoes
    // the dispositions and the mask leakscope set for itself.
    unsafe {
        command.pre_exec(|| {
            signals::reset_in_child();
            let mut set: libc::sigset_t = std::mem::zeroed();
            libc::sigemptyset(&mut set);
            libc::sigaddset(&mut set, libc::SIGUSR1);
            libc::pthread_sigmask(libc::SIG_UNBLOCK, &set, std::ptr::null_mut());
            Ok(())
        });
    }

    // Ctrl-C, Ctrl-\ and a hang-up reach the program from the terminal; leakscope outlives
    // them to report. Sent to leakscope alone, SIGINT, SIGQUIT, SIGTERM and SIGHUP are passed
    // on to the program.
    signals::pass_on_to_target();
    let scan_requests = block_scan_request_signal();
    let started = Instant::now();
    let mut child = command.spawn().map_err(|e| {
        let _ = std::fs::remove_file(&profile_path);
        Failure::new(
            ExitCode::NotExecutable,
            format!("cannot run '{}': {e}", Path::new(&program).display()),
        )
    })?;
    signals::target_started(child.id() as i32);
    let child_pid = child.id();
    if !quiet {
        eprintln!(
            "leakscope: watching PID {} (profile {})",
            child.id(),
            profile_path.display()
        );
    }
    let java_watch = if args.no_java {
        None
    } else {
        let settings = crate::jvm::Settings {
            interval: args.java_interval,
        };
        match crate::jvm::watch(child.id() as i32, settings) {
            Ok(watch) => Some(watch),
            Err(e) => {
                eprintln!("leakscope: a JVM in the program will not be watched: {e}");
                None
            }
        }
    };
    if scan_requests {
        let agent = std::fs::canonicalize(&agent_path).unwrap_or_else(|_| agent_path.clone());
        pass_on_scan_requests(child.id() as i32, agent);
    }
    let mut stopped_by_duration = false;
    let mut deadline = args.duration;
    let status = loop {
        let waited = match deadline {
            None => child.wait().map(Some),
            Some(duration) => wait_at_most(&mut child, duration.saturating_sub(started.elapsed())),
        };
        match waited {
            Ok(Some(status)) => break status,
            Ok(None) => {
                // --duration is up: ask the program to end (the agent reports on SIGTERM),
                // and insist after a grace period.
                stopped_by_duration = true;
                deadline = None;
                // SAFETY: signals the program this run started.
                unsafe { libc::kill(child.id() as i32, libc::SIGTERM) };
                if let Ok(Some(status)) = wait_at_most(&mut child, GRACE) {
                    break status;
                }
                let _ = child.kill();
            }
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(e) => {
                return Err(Failure::new(
                    ExitCode::Failed,
                    format!("waiting for the program failed: {e}"),
                ))
            }
        }
    };
    let wall = started.elapsed();
    signals::target_ended();

    let (code, signal) = (status.code(), status.signal());
    if std::fs::metadata(&profile_path).map_or(0, |m| m.len()) == 0 {
        let _ = std::fs::remove_file(&profile_path);
        eprintln!(
            "leakscope: the agent did not run inside '{}' (no profile was written): the program may be statically linked in a way leakscope did not recognise, or clear LD_PRELOAD before it starts",
            Path::new(&program).display()
        );
        if let Some(error_code) = args.error_exitcode {
            return Ok(
                gated(error_code, &Gate::without_profile(), &Default::default())
                    .unwrap_or(error_code),
            );
        }
        return Ok(finish_like(code, signal));
    }
    if let Some(watch) = java_watch {
        watch.finish(&profile_path);
    }
    append_run_result(&profile_path, code, signal, wall.as_nanos() as u64);
    if let Some(preload) = node_preload {
        for note in preload.collect(&profile_path, child_pid) {
            eprintln!("leakscope: {note}");
        }
    }
    let progress = Progress::start_unless(args.leaks.quiet);
    progress.stage("reading the profile...");
    let tree = pipeline::read_tree(&profile_path)?;
    let (report, gate) = pipeline::build_report(
        &tree,
        analysis_options(args.output.format),
        &progress,
        &options,
    );
    progress.stage("writing the report...");
    emit(&report, &args.output, &args.leaks, DefaultSink::Stderr)?;
    progress.finish();
    if !quiet {
        eprintln!(
            "leakscope: profile kept at {} (`leakscope report {}` prints this report again)",
            profile_path.display(),
            profile_path.display()
        );
    }

    if let Some(error_code) = args
        .error_exitcode
        .and_then(|code| gated(code, &gate, &report))
    {
        return Ok(error_code);
    }
    if stopped_by_duration && signal == Some(libc::SIGTERM) {
        // The end leakscope asked for, not a failure of the program.
        return Ok(0);
    }
    Ok(finish_like(code, signal))
}

/// `--error-exitcode`'s code if the gate fails, saying why.
fn gated(error_code: i32, gate: &Gate, report: &leakscope_report::Report) -> Option<i32> {
    let why = leakscope_report::gate_failure(gate, report)?;
    eprintln!("leakscope: exit code {error_code} (--error-exitcode): {why}");
    Some(error_code)
}

/// How long a program stopped by `--duration` has to end after SIGTERM before SIGKILL.
const GRACE: std::time::Duration = std::time::Duration::from_secs(5);

/// Wait for the child for at most `limit`; `None` if it is still running.
fn wait_at_most(
    child: &mut std::process::Child,
    limit: std::time::Duration,
) -> std::io::Result<Option<std::process::ExitStatus>> {
    let deadline = Instant::now() + limit;
    loop {
        if let Some(status) = child.try_wait()? {
            return Ok(Some(status));
        }
        let now = Instant::now();
        if now >= deadline {
            return Ok(None);
        }
        std::thread::sleep((deadline - now).min(std::time::Duration::from_millis(20)));
    }
}

/// The exit code that reproduces the program's end: its code, or its signal raised again.
fn finish_like(code: Option<i32>, signal: Option<i32>) -> i32 {
    if let Some(code) = code {
        return code;
    }
    if let Some(signal) = signal {
        // SAFETY: resets a signal to its default action and raises it in leakscope itself,
        // with core dumps off (the program already dumped if it was going to).
        unsafe {
            let no_core = libc::rlimit {
                rlim_cur: 0,
                rlim_max: 0,
            };
            libc::setrlimit(libc::RLIMIT_CORE, &no_core);
            libc::signal(signal, libc::SIG_DFL);
            let mut set: libc::sigset_t = std::mem::zeroed();
            libc::sigemptyset(&mut set);
            libc::sigaddset(&mut set, signal);
            libc::sigprocmask(libc::SIG_UNBLOCK, &set, std::ptr::null_mut());
            libc::raise(signal);
        }
        return 128 + signal;
    }
    1
}

/// Block SIGUSR1 in leakscope, so that a thread can wait for it (before any other thread
/// exists, so every thread inherits the mask). Returns whether that worked.
fn block_scan_request_signal() -> bool {
    // SAFETY: a valid signal set, changed for this thread only.
    unsafe {
        let mut set: libc::sigset_t = std::mem::zeroed();
        libc::sigemptyset(&mut set);
        libc::sigaddset(&mut set, libc::SIGUSR1);
        libc::pthread_sigmask(libc::SIG_BLOCK, &set, std::ptr::null_mut()) == 0
    }
}

/// SIGUSR1 to leakscope asks the agent for a live scan now: the agent's stop signal, queued
/// with a value it recognises. Only sent while the program is the one the agent is loaded in
/// (the signal's default action would end any other program), as `/proc/PID/maps` shows.
fn pass_on_scan_requests(pid: i32, agent: PathBuf) {
    let builder = std::thread::Builder::new().name("scan-requests".into());
    let spawned = signals::spawn_helper(builder, move || loop {
        let mut set: libc::sigset_t;
        let mut signal = 0;
        // SAFETY: waits for SIGUSR1, which every thread of leakscope blocks.
        unsafe {
            set = std::mem::zeroed();
            libc::sigemptyset(&mut set);
            libc::sigaddset(&mut set, libc::SIGUSR1);
            if libc::sigwait(&set, &mut signal) != 0 {
                return;
            }
        }
        if signals::target_pid() != pid {
            return; // the program has ended
        }
        let maps = std::fs::read_to_string(format!("/proc/{pid}/maps")).unwrap_or_default();
        if !maps.contains(&*agent.to_string_lossy()) {
            eprintln!("leakscope: scan request ignored: the agent is not loaded in process {pid} (not started yet, or it ran exec)");
            continue;
        }
        let value = libc::sigval {
            sival_ptr: names::SCAN_REQUEST_VALUE as usize as *mut libc::c_void,
        };
        // SAFETY: queues a signal with a value to the program this run started; the agent
        // is loaded there and handles it.
        let queued = unsafe { libc::sigqueue(pid, libc::SIGRTMAX() - 5, value) };
        if queued == 0 {
            eprintln!("leakscope: live scan requested");
        }
    });
    if let Err(e) = spawned {
        eprintln!("leakscope: SIGUSR1 will not ask for scans: {e}");
    }
}

/// `--keep FILE`, or a new file in the temporary directory.
fn profile_path(keep: Option<&Path>, program: &OsString) -> Result<PathBuf, Failure> {
    let path = match keep {
        Some(path) => path.to_path_buf(),
        None => {
            let name = Path::new(program)
                .file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_else(|| "program".into());
            let stamp = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(0, |d| d.as_millis());
            std::env::temp_dir().join(format!(
                "leakscope-{name}-{}-{stamp}.profile",
                std::process::id()
            ))
        }
    };
    let path = if path.is_absolute() {
        path
    } else {
        std::env::current_dir()
            .map_err(|e| {
                Failure::new(
                    ExitCode::Failed,
                    format!("cannot read the current directory: {e}"),
                )
            })?
            .join(path)
    };
    preflight::check_output(&path, "keep the profile at")?;
    Ok(path)
}

/// Create the profile file, empty, readable by its owner only (it names the program's
/// modules and allocation sites); the agent appends to it. Creating it here, exclusively,
/// also means that no file or link someone else put at a predictable path is written to.
fn create_profile(path: &Path) -> Result<(), Failure> {
    use std::os::unix::fs::OpenOptionsExt;
    std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)
        .map(drop)
        .map_err(|e| {
            Failure::new(
                ExitCode::Failed,
                format!("cannot create the profile '{}': {e}", path.display()),
            )
        })
}

/// A kept profile from an earlier run would be appended to: remove it and its children.
fn remove_old_profiles(path: &Path) {
    let _ = std::fs::remove_file(path);
    for child in leakscope_format::tree::child_profile_paths(path) {
        let _ = std::fs::remove_file(child);
    }
}

/// Record how the program ended, as seen from here, so that `leakscope report` can say it.
fn append_run_result(path: &Path, code: Option<i32>, signal: Option<i32>, wall_ns: u64) {
    use std::io::Write;
    let mut buf = [0u8; 64];
    let result = RunResult {
        code,
        signal,
        wall_ns,
    };
    if let Ok(len) = result.encode(&mut buf) {
        if let Ok(mut file) = std::fs::OpenOptions::new().append(true).open(path) {
            let _ = file.write_all(&buf[..len]);
        }
    }
}
