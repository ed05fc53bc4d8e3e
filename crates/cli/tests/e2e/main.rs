//! End-to-end tests of `leakscope run`, held to memcheck's numbers: one test binary (`e2e`), one
//! module per subject, the shared helpers in `tests/harness/`.
//!
//! The fixtures in `tests/programs/` (see its README) each state in a header exactly what
//! `valgrind --leak-check=full --show-leak-kinds=all` reports for them. The harness builds every
//! fixture at -O0 and -O2 once (cached under `CARGO_TARGET_TMPDIR`), then:
//!
//! - `corpus::<fixture>::valgrind_o0/_o2` check that memcheck agrees with the header: this
//!   validates the corpus itself (skipped, with a message, when valgrind is not installed);
//! - `corpus::<fixture>::leakscope_o0/_o2` check that `leakscope run --format json` reports the
//!   header's totals, leak functions, children and exit status;
//! - `cross_check::valgrind_and_leakscope_agree` runs both tools on everything and prints the
//!   agreement table (also written to `CARGO_TARGET_TMPDIR/leakscope-e2e/agreement.txt`);
//! - `errors::*` are the targets leakscope must refuse, with one line on stderr;
//! - `passthrough::*` check that leakscope is invisible to the program it runs;
//! - `robustness::*`, `sampling::*`, `growth::*`, `live_scans::*`, `real_server::*`, `cli::*`,
//!   `children::*` and `neighbours::*` run programs written for one behaviour each (the
//!   profile file, sampling, growth verdicts, scans while running, nginx under load, honest
//!   results and the command line, started programs, other allocators);
//! - `formats::*` check the folded, flamegraph and pprof formats on fixtures of the corpus
//!   (pprof decoded by Google's protobuf library for Python, not by leakscope's encoder).
//!
//! Run one group with e.g. `cargo nextest run -p leakscope -E 'test(/valgrind_o/)'` or
//! `cargo test -p leakscope --test e2e passthrough`.
//!
//! `LEAKSCOPE_E2E_BIN=/abs/path` runs another `leakscope` instead of the one cargo built. With
//! `harness/reference_leakscope.py`, a stand-in that converts memcheck's own logs, every test
//! must pass: that checks the harness itself.

#[path = "../harness/mod.rs"]
mod harness;

mod children;
mod cli;
mod corpus;
mod cross_check;
mod errors;
mod formats;
mod growth;
mod html;
mod java;
mod live_scans;
mod neighbours;
mod node;
mod passthrough;
mod python;
mod real_server;
mod robustness;
mod sampling;
mod suppressions;
