//! Builds the fixture programs in `tests/programs/` with the system's compilers and finds real
//! addresses in them with binutils, so that the tests symbolize genuine return addresses
//! without running the agent.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;

use leakscope_format::{Frame, Module, Profile, StackFrame, StackId};
use tempfile::TempDir;

/// Where the fixture sources live.
pub fn program_source(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/programs")
        .join(name)
}

/// A scratch directory for one test's binaries; removed when dropped.
pub struct Workdir {
    dir: TempDir,
}

impl Workdir {
    pub fn new() -> Self {
        Workdir {
            dir: tempfile::Builder::new()
                .prefix("leakscope-symbolize-")
                .tempdir()
                .expect("create a temporary directory"),
        }
    }

    pub fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    /// Compile `source` (a file in `tests/programs/`) with `compiler` and `flags` into
    /// `output` inside this directory.
    pub fn compile(&self, compiler: &str, source: &str, output: &str, flags: &[&str]) -> PathBuf {
        let output_path = self.path(output);
        let mut command = Command::new(compiler);
        command
            .args(flags)
            .arg(program_source(source))
            .arg("-o")
            .arg(&output_path);
        run(&mut command);
        output_path
    }

    /// Copy of `binary` named `output` with `strip_flags` applied by `strip`.
    pub fn strip(&self, binary: &Path, output: &str, strip_flags: &[&str]) -> PathBuf {
        let output_path = self.path(output);
        run(Command::new("strip")
            .args(strip_flags)
            .arg(binary)
            .arg("-o")
            .arg(&output_path));
        output_path
    }
}

/// Run a build tool, failing the test with its output (and a hint if the tool is missing).
pub fn run(command: &mut Command) -> String {
    let program = command.get_program().to_string_lossy().into_owned();
    let output = command.output().unwrap_or_else(|error| {
        panic!("could not run `{program}` ({error}); these tests need gcc, g++, rustc and binutils")
    });
    assert!(
        output.status.success(),
        "{command:?} failed:\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8(output.stdout).expect("tool output is UTF-8")
}

/// The 1-based line of `source` that holds `marker` (such as `@malloc`), which must be unique.
pub fn line_of(source: &str, marker: &str) -> u32 {
    let text = std::fs::read_to_string(program_source(source)).expect("read fixture source");
    let lines: Vec<usize> = text
        .lines()
        .enumerate()
        .filter(|(_, line)| {
            line.split_whitespace()
                .any(|word| word.trim_end_matches("*/") == marker)
        })
        .map(|(index, _)| index + 1)
        .collect();
    assert_eq!(
        lines.len(),
        1,
        "marker {marker} must appear once in {source}"
    );
    lines[0] as u32
}

/// The disassembly of `binary` (of `start..stop` only, if given), with demangled names.
pub fn disassemble(binary: &Path, range: Option<(u64, u64)>) -> String {
    let mut command = Command::new("objdump");
    command.args(["-d", "-C", "--no-show-raw-insn", "-w"]);
    if let Some((start, stop)) = range {
        command
            .arg(format!("--start-address={start:#x}"))
            .arg(format!("--stop-address={stop:#x}"));
    }
    run(command.arg(binary))
}

/// A symbol name without its version (`operator new(unsigned long)@@GLIBCXX_3.4`).
fn unversioned(name: &str) -> &str {
    name.split('@').next().unwrap_or(name)
}

/// Return addresses of the calls in `function` (of a `disassemble` listing) whose target
/// matches `callee`: the address of the instruction after each call.
pub fn return_addresses_in(
    listing: &str,
    function: &str,
    callee: impl Fn(&str) -> bool,
) -> Vec<u64> {
    let mut in_function = false;
    let mut after_call = false;
    let mut found = Vec::new();
    for line in listing.lines() {
        if let Some(header) = line.strip_suffix(">:").filter(|_| !line.starts_with(' ')) {
            let name = header.split_once('<').map_or("", |(_, name)| name);
            in_function = unversioned(name) == function;
            after_call = false;
            continue;
        }
        if !in_function {
            continue;
        }
        let Some((address, instruction)) = line.trim_start().split_once(":\t") else {
            continue;
        };
        let Ok(address) = u64::from_str_radix(address, 16) else {
            continue;
        };
        if after_call {
            found.push(address);
            after_call = false;
        }
        if instruction.starts_with("call") {
            let target = instruction
                .split_once('<')
                .and_then(|(_, rest)| rest.rsplit_once('>'))
                .map_or("", |(target, _)| target);
            after_call = callee(target);
        }
    }
    assert!(!found.is_empty(), "no matching call found in {function}");
    found
}

/// The one return address after a call to `callee` (a symbol such as `malloc@plt`) inside
/// `function`.
pub fn return_address(binary: &Path, function: &str, callee: &str) -> u64 {
    let found = return_addresses_in(&disassemble(binary, None), function, |target| {
        target == callee
    });
    assert_eq!(found.len(), 1, "{function} calls {callee} more than once");
    found[0]
}

/// The start addresses of the symbols in `binary`'s symbol table (`dynamic`: the dynamic
/// one) whose names, as `nm -C` prints them without a version, `matches` accepts.
pub fn symbol_addresses(binary: &Path, dynamic: bool, matches: impl Fn(&str) -> bool) -> Vec<u64> {
    let mut command = Command::new("nm");
    command.args(["-C", "--defined-only"]);
    if dynamic {
        command.arg("-D");
    }
    let listing = run(command.arg(binary));
    listing
        .lines()
        .filter_map(|line| {
            let mut fields = line.splitn(3, ' ');
            let address = u64::from_str_radix(fields.next()?, 16).ok()?;
            let _kind = fields.next()?;
            matches(unversioned(fields.next()?)).then_some(address)
        })
        .collect()
}

/// The GNU build id of `binary`, from `readelf -n`.
pub fn build_id(binary: &Path) -> Vec<u8> {
    let notes = run(Command::new("readelf").arg("-n").arg(binary));
    let hex = notes
        .lines()
        .find_map(|line| line.trim().strip_prefix("Build ID: "))
        .expect("the binary has a build id");
    (0..hex.len())
        .step_by(2)
        .map(|index| u8::from_str_radix(&hex[index..index + 2], 16).expect("hex build id"))
        .collect()
}

/// A module as the agent would record it: loaded at `load_bias`, with a mapping large enough
/// for any test binary.
pub fn module_at(path: &Path, load_bias: u64, build_id: Vec<u8>) -> Module {
    Module {
        load_bias,
        start: load_bias,
        end: load_bias + 0x1000_0000,
        path: path.to_string_lossy().into_owned(),
        build_id,
    }
}

/// Where tests load the program under test and a shared library, as a process would.
pub const PROGRAM_BIAS: u64 = 0x5555_0000_0000;
pub const LIBRARY_BIAS: u64 = 0x7f00_0000_0000;

/// A profile holding `modules` and `stacks` (stack ids from 1), with nothing else.
pub fn profile_with(modules: Vec<Module>, stacks: &[Vec<u64>]) -> Profile {
    Profile {
        modules,
        stacks: (1..)
            .zip(
                stacks
                    .iter()
                    .map(|addresses| addresses.iter().map(|&a| StackFrame::Native(a)).collect()),
            )
            .collect::<BTreeMap<StackId, Vec<StackFrame>>>(),
        ..Profile::default()
    }
}

/// `function (file:line)` for each frame, `[inlined]` marked, the file as its base name: what
/// the assertions compare.
pub fn describe(frames: &[Frame]) -> Vec<String> {
    frames
        .iter()
        .map(|frame| {
            let function = frame.function.as_deref().unwrap_or("???");
            let file = frame.file.as_deref().map(|file| {
                Path::new(file)
                    .file_name()
                    .map_or(file.to_owned(), |name| name.to_string_lossy().into_owned())
            });
            let location = match (file, frame.line) {
                (Some(file), Some(line)) => format!(" ({file}:{line})"),
                (Some(file), None) => format!(" ({file})"),
                _ => String::new(),
            };
            let inlined = if frame.inlined { " [inlined]" } else { "" };
            format!("{function}{location}{inlined}")
        })
        .collect()
}
