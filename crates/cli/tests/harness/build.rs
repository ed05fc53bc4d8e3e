//! Finding the fixtures in `tests/programs/` and compiling each at every level, once.
//!
//! `cargo test` runs all tests in one process, nextest runs each test in a process of its own:
//! so the build is cached on disk, in a directory under `CARGO_TARGET_TMPDIR` named after a hash
//! of everything that goes into it (the sources, the compilers' versions, the recipe). The first
//! process to need it builds it, in parallel, under a file lock; the others wait for the lock and
//! find it done. Editing a fixture changes the hash, and so rebuilds.

use std::collections::hash_map::DefaultHasher;
use std::ffi::OsString;
use std::fs::{self, File};
use std::hash::{Hash, Hasher};
use std::os::fd::AsRawFd;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;
use std::time::Duration;

use super::expect::{parse_header, Expect, Header, Level};
use super::process;

/// Changes whenever the recipe below changes, so that old builds are not reused.
const RECIPE: &str = "recipe 1: -g, -O0/-O2, -pthread, fixture.h, padded shared-lib path";

/// The length of the path given for `{shared-lib}`: ld.so keeps copies of that path in blocks
/// that memcheck reports as still reachable, so its length must not depend on where the build
/// directory is.
pub const SHARED_LIB_PATH_LEN: usize = 200;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Lang {
    C,
    Cpp,
    Rust,
}

#[derive(Debug)]
pub struct Fixture {
    pub name: String,
    pub source: PathBuf,
    pub lang: Lang,
    pub header: Header,
}

impl Fixture {
    pub fn expect(&self, level: Level) -> &Expect {
        &self.header.expect[level.index()]
    }
}

#[derive(Debug)]
pub struct Corpus {
    pub programs: PathBuf,
    pub out: PathBuf,
    pub fixtures: Vec<Fixture>,
}

impl Corpus {
    pub fn fixture(&self, name: &str) -> &Fixture {
        self.fixtures
            .iter()
            .find(|f| f.name == name)
            .unwrap_or_else(|| panic!("no fixture {name} in {}", self.programs.display()))
    }

    pub fn binary(&self, fixture: &Fixture, level: Level) -> PathBuf {
        self.out.join(level.name()).join(&fixture.name)
    }

    /// The binary of the fixture called `name` at `level`.
    pub fn program(&self, name: &str, level: Level) -> PathBuf {
        self.binary(self.fixture(name), level)
    }

    /// "fixture NAME at LEVEL (its command line)", for failure messages.
    pub fn describe(&self, fixture: &Fixture, level: Level) -> String {
        let mut command = vec![self.binary(fixture, level).display().to_string()];
        command.extend(self.args(fixture, level).iter().map(|a| format!("{a:?}")));
        format!(
            "fixture {} at {level} ({})",
            fixture.name,
            command.join(" ")
        )
    }

    /// The fixed-length path of the fixture's shared library at `level`.
    pub fn shared_lib(&self, fixture: &Fixture, level: Level) -> Option<PathBuf> {
        let source = fixture.header.shared_lib.as_ref()?;
        let stem = Path::new(source)
            .file_stem()?
            .to_string_lossy()
            .into_owned();
        padded_lib_path(&self.out.join(level.name()).join("dl"), &stem).ok()
    }

    /// The fixture's arguments at `level`, with `{shared-lib}` replaced.
    pub fn args(&self, fixture: &Fixture, level: Level) -> Vec<OsString> {
        fixture
            .header
            .args
            .iter()
            .map(|a| {
                if a == "{shared-lib}" {
                    self.shared_lib(fixture, level)
                        .expect("{shared-lib} needs a shared-lib line")
                        .into_os_string()
                } else {
                    OsString::from(a)
                }
            })
            .collect()
    }
}

pub fn programs_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests")
        .join("programs")
}

/// The corpus, built: panics (in every test that needs it) if it cannot be.
pub fn corpus() -> &'static Corpus {
    static CORPUS: OnceLock<Result<Corpus, String>> = OnceLock::new();
    match CORPUS.get_or_init(build) {
        Ok(corpus) => corpus,
        Err(e) => panic!("the fixture corpus could not be built:\n{e}"),
    }
}

/// The fixtures in `programs`: every `.c`, `.cpp` and `.rs` file directly in it.
pub fn discover(programs: &Path) -> Result<Vec<Fixture>, String> {
    let mut fixtures = Vec::new();
    let entries =
        fs::read_dir(programs).map_err(|e| format!("cannot list {}: {e}", programs.display()))?;
    for entry in entries {
        let source = entry.map_err(|e| e.to_string())?.path();
        let lang = match source.extension().and_then(|e| e.to_str()) {
            Some("c") => Lang::C,
            Some("cpp") => Lang::Cpp,
            Some("rs") => Lang::Rust,
            _ => continue,
        };
        let name = source
            .file_stem()
            .and_then(|s| s.to_str())
            .ok_or_else(|| format!("odd file name {}", source.display()))?
            .to_string();
        let text = fs::read_to_string(&source)
            .map_err(|e| format!("cannot read {}: {e}", source.display()))?;
        let header = parse_header(&text).map_err(|e| format!("{}: {e}", source.display()))?;
        fixtures.push(Fixture {
            name,
            source,
            lang,
            header,
        });
    }
    fixtures.sort_by(|a, b| a.name.cmp(&b.name));
    for pair in fixtures.windows(2) {
        if pair[0].name == pair[1].name {
            return Err(format!("two fixtures are named {}", pair[0].name));
        }
    }
    Ok(fixtures)
}

fn tool(var: &str, default: &str) -> String {
    std::env::var(var).unwrap_or_else(|_| default.to_string())
}

pub fn cc() -> String {
    tool("CC", "cc")
}

fn cxx() -> String {
    tool("CXX", "c++")
}

fn rustc() -> String {
    tool("RUSTC", "rustc")
}

/// A hash of every file under `dir`, by relative path and contents.
fn hash_tree(dir: &Path, hasher: &mut DefaultHasher) -> Result<(), String> {
    let mut entries: Vec<PathBuf> = fs::read_dir(dir)
        .map_err(|e| format!("cannot list {}: {e}", dir.display()))?
        .map(|e| e.map(|e| e.path()))
        .collect::<Result<_, _>>()
        .map_err(|e| e.to_string())?;
    entries.sort();
    for path in entries {
        if path.is_dir() {
            hash_tree(&path, hasher)?;
        } else if path.extension().is_none_or(|e| e != "md") {
            // (Documentation does not change what is built.)
            path.file_name().hash(hasher);
            fs::read(&path)
                .map_err(|e| format!("cannot read {}: {e}", path.display()))?
                .hash(hasher);
        }
    }
    Ok(())
}

fn version_of(program: &str, flag: &str) -> String {
    match Command::new(program).arg(flag).output() {
        Ok(o) => String::from_utf8_lossy(&o.stdout).into_owned(),
        Err(e) => format!("{program}: {e}"),
    }
}

/// Holds an exclusive lock on a file until dropped.
struct Lock {
    _file: File,
}

impl Lock {
    fn acquire(path: &Path) -> Result<Lock, String> {
        let file = File::options()
            .create(true)
            .truncate(false)
            .write(true)
            .open(path)
            .map_err(|e| format!("cannot open {}: {e}", path.display()))?;
        loop {
            // SAFETY: flock(2) only reads the descriptor number, which `file` keeps open for
            // the duration of the call; it touches no memory of ours.
            let rc = unsafe { libc::flock(file.as_raw_fd(), libc::LOCK_EX) };
            if rc == 0 {
                return Ok(Lock { _file: file });
            }
            let err = std::io::Error::last_os_error();
            if err.kind() != std::io::ErrorKind::Interrupted {
                return Err(format!("cannot lock {}: {err}", path.display()));
            }
        }
    }
}

fn build() -> Result<Corpus, String> {
    let programs = programs_dir();
    let fixtures = discover(&programs)?;
    let mut hasher = DefaultHasher::new();
    RECIPE.hash(&mut hasher);
    hash_tree(&programs, &mut hasher)?;
    for (program, flag) in [(cc(), "--version"), (cxx(), "--version"), (rustc(), "-vV")] {
        program.hash(&mut hasher);
        version_of(&program, flag).hash(&mut hasher);
    }
    let root = Path::new(env!("CARGO_TARGET_TMPDIR")).join("leakscope-e2e");
    fs::create_dir_all(&root).map_err(|e| format!("cannot create {}: {e}", root.display()))?;
    let key = format!("{:016x}", hasher.finish());
    let out = root.join(&key);
    let corpus = Corpus {
        programs,
        out,
        fixtures,
    };
    let _lock = Lock::acquire(&root.join(format!("{key}.lock")))?;
    let done = corpus.out.join(".complete");
    if done.exists() {
        return Ok(corpus);
    }
    prune_old_builds(&root, &key);
    if corpus.out.exists() {
        fs::remove_dir_all(&corpus.out).map_err(|e| e.to_string())?;
    }
    compile_all(&corpus)?;
    fs::write(&done, RECIPE).map_err(|e| e.to_string())?;
    Ok(corpus)
}

/// Removes builds of other versions of the corpus that nobody has touched for a day.
fn prune_old_builds(root: &Path, keep: &str) {
    let Ok(entries) = fs::read_dir(root) else {
        return;
    };
    for entry in entries.flatten() {
        let path = entry.path();
        let name = entry.file_name().to_string_lossy().into_owned();
        let stem = name.trim_end_matches(".lock");
        let old = entry
            .metadata()
            .and_then(|m| m.modified())
            .ok()
            .and_then(|t| t.elapsed().ok())
            .is_some_and(|age| age > Duration::from_secs(24 * 3600));
        if stem != keep && old {
            let _ = if path.is_dir() {
                fs::remove_dir_all(&path)
            } else {
                fs::remove_file(&path)
            };
        }
    }
}

/// A path `dir/<padding>/lib<stem>.so` of exactly [`SHARED_LIB_PATH_LEN`] bytes.
fn padded_lib_path(dir: &Path, stem: &str) -> Result<PathBuf, String> {
    let file = format!("lib{stem}.so");
    let used = dir.as_os_str().len() + 1 + 1 + file.len();
    if used >= SHARED_LIB_PATH_LEN || SHARED_LIB_PATH_LEN - used > 255 {
        return Err(format!(
            "{} is too long for a {SHARED_LIB_PATH_LEN}-byte library path: set CARGO_TARGET_DIR \
             to a shorter directory",
            dir.display()
        ));
    }
    let padding = "d".repeat(SHARED_LIB_PATH_LEN - used);
    let path = dir.join(padding).join(file);
    debug_assert_eq!(path.as_os_str().len(), SHARED_LIB_PATH_LEN);
    Ok(path)
}

/// One compiler invocation.
struct Job {
    program: String,
    args: Vec<OsString>,
    /// Where the result goes, and further paths to copy it to.
    output: PathBuf,
    copies: Vec<PathBuf>,
}

fn compile_all(corpus: &Corpus) -> Result<(), String> {
    let mut jobs = Vec::new();
    let include = corpus.programs.clone();
    for level in Level::ALL {
        let dir = corpus.out.join(level.name());
        fs::create_dir_all(&dir).map_err(|e| e.to_string())?;
        let opt = format!("-O{}", level.digit());
        for fixture in &corpus.fixtures {
            let output = corpus.binary(fixture, level);
            let mut args: Vec<OsString> = Vec::new();
            let program = match fixture.lang {
                Lang::C | Lang::Cpp => {
                    args.extend(["-g", &opt, "-pthread", "-Wall", "-Wextra"].map(OsString::from));
                    if fixture.lang == Lang::Cpp {
                        args.push("-std=c++17".into());
                    }
                    args.push("-I".into());
                    args.push(include.clone().into());
                    args.push("-o".into());
                    args.push(output.clone().into());
                    args.push(fixture.source.clone().into());
                    if fixture.lang == Lang::C {
                        cc()
                    } else {
                        cxx()
                    }
                }
                Lang::Rust => {
                    args.extend(
                        [
                            "--edition=2021",
                            "--crate-name",
                            &fixture.name,
                            "-g",
                            "-C",
                            &format!("opt-level={}", level.digit()),
                            "-o",
                        ]
                        .map(OsString::from),
                    );
                    args.push(output.clone().into());
                    args.push(fixture.source.clone().into());
                    rustc()
                }
            };
            args.extend(fixture.header.build_extra.iter().map(OsString::from));
            jobs.push(Job {
                program,
                args,
                output,
                copies: Vec::new(),
            });
            if let Some(lib) = &fixture.header.shared_lib {
                let source = corpus.programs.join(lib);
                let stem = Path::new(lib)
                    .file_stem()
                    .ok_or_else(|| format!("{}: bad shared-lib {lib:?}", fixture.name))?
                    .to_string_lossy()
                    .into_owned();
                let output = dir.join(format!("lib{stem}.so"));
                let padded = padded_lib_path(&dir.join("dl"), &stem)?;
                let mut args: Vec<OsString> =
                    ["-g", &opt, "-shared", "-fPIC", "-Wall", "-Wextra", "-o"]
                        .map(OsString::from)
                        .to_vec();
                args.push(output.clone().into());
                args.push(source.into());
                jobs.push(Job {
                    program: cc(),
                    args,
                    output,
                    copies: vec![padded],
                });
            }
        }
    }
    // Rust fixtures take longest: start them first.
    jobs.sort_by_key(|j| j.program != rustc());
    run_jobs(&jobs)
}

fn run_jobs(jobs: &[Job]) -> Result<(), String> {
    let errors: Vec<String> = super::parallel_map(jobs, run_job)
        .into_iter()
        .filter_map(Result::err)
        .collect();
    if errors.is_empty() {
        Ok(())
    } else {
        Err(errors.join("\n\n"))
    }
}

fn run_job(job: &Job) -> Result<(), String> {
    let mut command = Command::new(&job.program);
    command.args(&job.args);
    let output = process::run(&mut command, None, Duration::from_secs(300))?;
    if !output.status.success() {
        return Err(format!(
            "{command:?} failed ({}):\n{}{}",
            output.exit(),
            output.stdout_text(),
            output.stderr_text()
        ));
    }
    for copy in &job.copies {
        let parent = copy.parent().expect("copies are in a directory");
        fs::create_dir_all(parent).map_err(|e| e.to_string())?;
        fs::copy(&job.output, copy)
            .map_err(|e| format!("cannot copy to {}: {e}", copy.display()))?;
    }
    Ok(())
}

/// Compiles the C or C++ file `source` (by its extension) into `binary`: `cc -g FLAGS -o BINARY
/// SOURCE AFTER` (libraries to link go in `after`). `Err` with the compiler's words.
pub fn compile_file(
    source: &Path,
    binary: &Path,
    flags: &[&str],
    after: &[&str],
) -> Result<(), String> {
    let compiler = if source.extension().is_some_and(|e| e == "cpp") {
        cxx()
    } else {
        cc()
    };
    let mut command = Command::new(compiler);
    command
        .arg("-g")
        .args(flags)
        .arg("-o")
        .arg(binary)
        .arg(source)
        .args(after);
    let result = process::run(&mut command, None, Duration::from_secs(300))?;
    if result.status.success() {
        Ok(())
    } else {
        Err(format!(
            "compiling {} failed:\n{}",
            source.display(),
            result.stderr_text()
        ))
    }
}

/// Writes the program `source` given as text to `dir/FILE_NAME` (`.c` or `.cpp`) and compiles
/// it (as [`compile_file`]) into `dir`, named after the file without its extension; panics if
/// it does not compile.
pub fn compile_text(
    dir: &Path,
    file_name: &str,
    source: &str,
    flags: &[&str],
    after: &[&str],
) -> PathBuf {
    let source_path = dir.join(file_name);
    fs::write(&source_path, source)
        .unwrap_or_else(|e| panic!("cannot write {}: {e}", source_path.display()));
    let binary = source_path.with_extension("");
    compile_file(&source_path, &binary, flags, after).unwrap_or_else(|e| panic!("{e}"));
    binary
}

/// Compiles `source` (a C fixture) with `-static` into `output`; Err with the compiler's words
/// when the static C library is not installed.
pub fn compile_static(source: &Path, output: &Path) -> Result<(), String> {
    let mut command = Command::new(cc());
    command
        .args(["-static", "-O0", "-g", "-I"])
        .arg(programs_dir())
        .arg("-o")
        .arg(output)
        .arg(source);
    let result = process::run(&mut command, None, Duration::from_secs(300))?;
    if result.status.success() {
        Ok(())
    } else {
        Err(result.stderr_text())
    }
}
