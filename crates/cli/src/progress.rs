//! What leakscope is doing while it produces a report, on standard error, once that has taken
//! a second: a fast report stays quiet, a slow one (a large profile, thousands of stacks to
//! symbolize) does not look like a hang.
//!
//! `LEAKSCOPE_PROGRESS_AFTER_MS` changes the second (0: always show the stages).

use std::sync::{Arc, Condvar, Mutex};
use std::time::{Duration, Instant};

/// How long a report may take before its stages are shown.
const DEFAULT_AFTER: Duration = Duration::from_secs(1);

/// The environment variable that overrides [`DEFAULT_AFTER`], in milliseconds.
const AFTER_VARIABLE: &str = "LEAKSCOPE_PROGRESS_AFTER_MS";

#[derive(Default)]
struct State {
    /// The stage in progress.
    stage: Option<String>,
    /// The time is up: every stage is shown as it begins.
    showing: bool,
    /// The report is done.
    done: bool,
}

struct Shared {
    state: Mutex<State>,
    changed: Condvar,
}

/// The stages of one report.
pub struct Progress {
    shared: Arc<Shared>,
    watcher: Option<std::thread::JoinHandle<()>>,
}

impl Progress {
    /// Start the clock.
    pub fn start() -> Progress {
        let after = std::env::var(AFTER_VARIABLE)
            .ok()
            .and_then(|ms| ms.trim().parse().ok())
            .map_or(DEFAULT_AFTER, Duration::from_millis);
        Progress::start_after(after)
    }

    /// No stage is ever shown (`--quiet`).
    pub fn silent() -> Progress {
        Progress {
            shared: Arc::new(Shared {
                state: Mutex::new(State::default()),
                changed: Condvar::new(),
            }),
            watcher: None,
        }
    }

    /// `start`, or `silent` when `quiet`.
    pub fn start_unless(quiet: bool) -> Progress {
        if quiet {
            Progress::silent()
        } else {
            Progress::start()
        }
    }

    fn start_after(after: Duration) -> Progress {
        let shared = Arc::new(Shared {
            state: Mutex::new(State::default()),
            changed: Condvar::new(),
        });
        if after.is_zero() {
            shared
                .state
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .showing = true;
            return Progress {
                shared,
                watcher: None,
            };
        }
        let watched = Arc::clone(&shared);
        let deadline = Instant::now() + after;
        let builder = std::thread::Builder::new().name("progress".into());
        let watcher = crate::signals::spawn_helper(builder, move || {
            let mut state = watched.state.lock().unwrap_or_else(|e| e.into_inner());
            loop {
                if state.done {
                    return;
                }
                let now = Instant::now();
                if now >= deadline {
                    break;
                }
                state = watched
                    .changed
                    .wait_timeout(state, deadline - now)
                    .unwrap_or_else(|e| e.into_inner())
                    .0;
            }
            state.showing = true;
            if let Some(stage) = &state.stage {
                show(stage);
            }
        })
        .ok();
        Progress { shared, watcher }
    }

    /// A new stage begins: "reading the profile...", "symbolizing 120 stacks...".
    pub fn stage(&self, what: impl Into<String>) {
        let what = what.into();
        let mut state = self.shared.state.lock().unwrap_or_else(|e| e.into_inner());
        if state.showing {
            show(&what);
        }
        state.stage = Some(what);
    }

    /// The report is done.
    pub fn finish(mut self) {
        self.stop();
    }

    fn stop(&mut self) {
        self.shared
            .state
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .done = true;
        self.shared.changed.notify_all();
        if let Some(watcher) = self.watcher.take() {
            let _ = watcher.join();
        }
    }
}

impl Drop for Progress {
    fn drop(&mut self) {
        self.stop();
    }
}

fn show(stage: &str) {
    eprintln!("leakscope: {stage}");
}

#[cfg(test)]
mod tests {
    use super::*;

    fn stages_of(progress: &Progress) -> bool {
        progress
            .shared
            .state
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .showing
    }

    #[test]
    fn a_fast_report_stays_quiet() {
        let progress = Progress::start_after(Duration::from_secs(60));
        progress.stage("reading the profile...");
        assert!(!stages_of(&progress));
        let started = Instant::now();
        progress.finish();
        assert!(started.elapsed() < Duration::from_secs(5), "finish waited");
    }

    #[test]
    fn a_slow_report_shows_its_stages_once_the_time_is_up() {
        let progress = Progress::start_after(Duration::from_millis(20));
        progress.stage("reading the profile...");
        let deadline = Instant::now() + Duration::from_secs(10);
        while !stages_of(&progress) && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(5));
        }
        assert!(stages_of(&progress));
        progress.finish();
        assert!(stages_of(&Progress::start_after(Duration::ZERO)));
    }
}
