//! `python_lines::position` against the interpreters themselves.
//!
//! Every CPython 3.9 to 3.13 found on the machine runs `python_lines/dump_code.py`, which
//! compiles `python_lines/sample.py` and a few synthetic sources and prints, for every code
//! object, its raw line table and the position the interpreter reports for each of its code
//! units (its own `co_positions()`, `co_lines()` or `dis.findlinestarts`). The decoder must give
//! the same answer at every code unit. From 3.11 on each interpreter runs twice, the second time
//! with `-X no_debug_ranges`, which makes the compiler write its tables without columns (the
//! only way to get the location table's "no column" entries from real code).
//!
//! The expected values come from the interpreter, never from this file, and each test also
//! checks that the tables it compared hold every kind of entry of their format, so that a
//! sample that stopped exercising one would fail rather than pass on less.
//!
//! A version with no interpreter here is skipped with a message (a CI machine may have only
//! some). Interpreters are looked for in pyenv (`$PYENV_ROOT` or `~/.pyenv`), `/usr/bin`,
//! `/usr/local/bin` and `PATH`, each asked for its own version.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::Command;

use leakscope_format::python_lines::{position, PythonPosition};

#[test]
fn python_3_9() {
    check_version(9);
}

#[test]
fn python_3_10() {
    check_version(10);
}

#[test]
fn python_3_11() {
    check_version(11);
}

#[test]
fn python_3_12() {
    check_version(12);
}

#[test]
fn python_3_13() {
    check_version(13);
}

/// An interpreter and the version it reported.
struct Interpreter {
    path: PathBuf,
    version: String,
}

fn check_version(minor: u8) {
    let (interpreters, looked) = interpreters(minor);
    if interpreters.is_empty() {
        println!("skipped: no Python 3.{minor} interpreter found (looked at: {looked})");
        return;
    }
    for interpreter in &interpreters {
        let mut coverage = Coverage::default();
        let variants: &[&[&str]] = if minor >= 11 {
            &[&[], &["-X", "no_debug_ranges"]]
        } else {
            &[&[]]
        };
        for options in variants {
            compare(minor, interpreter, options, &mut coverage);
        }
        coverage.check(minor, interpreter);
    }
}

/// Runs the generator under one interpreter and compares every code unit of every code object.
fn compare(minor: u8, interpreter: &Interpreter, options: &[&str], coverage: &mut Coverage) {
    let directory = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/python_lines");
    let output = Command::new(&interpreter.path)
        // -I: neither PYTHON* variables (PYTHONNODEBUGRANGES would drop the columns) nor the
        // user's site-packages change what is compiled.
        .arg("-I")
        .args(options)
        .arg(directory.join("dump_code.py"))
        .arg(directory.join("sample.py"))
        .output()
        .unwrap_or_else(|error| panic!("running {}: {error}", interpreter.path.display()));
    let run = format!(
        "Python {} ({}{}{})",
        interpreter.version,
        interpreter.path.display(),
        if options.is_empty() { "" } else { " " },
        options.join(" ")
    );
    assert!(
        output.status.success(),
        "{run}: dump_code.py failed ({}):\n{}",
        output.status,
        String::from_utf8_lossy(&output.stderr)
    );
    let text = String::from_utf8(output.stdout).expect("the generator prints UTF-8");
    let dump = Json::parse(&text);

    let reported = dump.get("version").array();
    assert_eq!(
        (reported[0].number(), reported[1].number()),
        (3, i64::from(minor)),
        "{run}: the generator ran under another version"
    );

    let mut mismatches = Vec::new();
    let (mut codes, mut units_compared, mut with_line, mut with_column) = (0, 0, 0, 0);
    for code in dump.get("codes").array() {
        codes += 1;
        let source = code.get("source").string();
        let name = code.get("name").string();
        let first_line = u32::try_from(code.get("first_line").number()).unwrap();
        let table = hex(code.get("table").string());
        let units = u32::try_from(code.get("units").number()).unwrap();
        let expected = code.get("expected").array();
        assert_eq!(expected.len(), units as usize, "{run}: {source} {name}");
        coverage.add_table(minor, &table);
        for (unit, expected) in (0..units).zip(expected) {
            let expected = expected_position(expected);
            let got = position((3, minor), first_line, &table, unit);
            units_compared += 1;
            if let Some(position) = expected {
                with_line += 1;
                with_column += usize::from(position.column.is_some());
                coverage.max_line = coverage.max_line.max(position.line);
                coverage.max_column = coverage.max_column.max(position.column.unwrap_or(0));
            }
            if got != expected {
                mismatches.push(format!(
                    "{run}: {source} code {name} (first line {first_line}), offset {unit} of \
                     {units}: the interpreter says {expected:?}, position() says {got:?}"
                ));
            }
        }
        // From 3.10 on the table ends with the bytecode, and so does every answer (3.9's lnotab
        // does not know where the code ends: its last line goes on, as in the interpreter).
        if minor >= 10 {
            for unit in [units, units + 1, units + 1000] {
                let got = position((3, minor), first_line, &table, unit);
                if got.is_some() {
                    mismatches.push(format!(
                        "{run}: {source} code {name}: offset {unit} is past the end of its \
                         {units} code units, but position() says {got:?}"
                    ));
                }
            }
        }
    }
    println!(
        "{run}: {codes} code objects, {units_compared} code units compared ({with_line} with a \
         line, {with_column} of them with a column), {} mismatches",
        mismatches.len()
    );
    assert!(
        codes > 40,
        "{run}: only {codes} code objects: the sample did not compile?"
    );
    assert!(
        mismatches.is_empty(),
        "{} mismatches, the first ones:\n{}",
        mismatches.len(),
        mismatches[..mismatches.len().min(30)].join("\n")
    );
}

/// The generator's `null` or `[line, column or null]`.
fn expected_position(value: &Json) -> Option<PythonPosition> {
    match value {
        Json::Null => None,
        Json::Array(pair) => Some(PythonPosition {
            line: u32::try_from(pair[0].number()).unwrap(),
            column: match &pair[1] {
                Json::Null => None,
                column => Some(u32::try_from(column.number()).unwrap()),
            },
        }),
        other => panic!("an expected position is null or a pair, not {other:?}"),
    }
}

/// What kinds of entries the compared tables held, so that a sample that no longer exercises
/// one of them fails instead of passing on less.
#[derive(Default)]
struct Coverage {
    /// 3.9 and 3.10: pairs with a negative line delta, with a zero address or length delta
    /// (a split one), with the largest byte delta the compiler writes (255 on 3.9, 254 on 3.10)
    /// and, 3.10, "no line" (-128).
    negative: usize,
    zero_length: usize,
    longest: usize,
    no_line: usize,
    /// 3.11 on: the entry codes seen, and entries of the greatest length (8 code units).
    codes: BTreeSet<u8>,
    eight_units: usize,
    max_line: u32,
    max_column: u32,
}

impl Coverage {
    fn add_table(&mut self, minor: u8, table: &[u8]) {
        if minor <= 10 {
            for pair in table.chunks_exact(2) {
                let delta = pair[1] as i8;
                self.negative += usize::from(delta < 0 && delta != -128);
                self.zero_length += usize::from(pair[0] == 0);
                self.longest += usize::from(pair[0] >= 254);
                self.no_line += usize::from(delta == -128);
            }
        } else {
            for &byte in table.iter().filter(|byte| *byte & 0x80 != 0) {
                self.codes.insert((byte >> 3) & 15);
                self.eight_units += usize::from(byte & 7 == 7);
            }
        }
    }

    fn check(&self, minor: u8, interpreter: &Interpreter) {
        let run = format!(
            "Python {} ({})",
            interpreter.version,
            interpreter.path.display()
        );
        if minor <= 10 {
            println!(
                "{run}: pairs with a negative line delta {}, with a byte delta of 0 {}, of 254 \
                 or more {}, without a line {}; largest line {}",
                self.negative, self.zero_length, self.longest, self.no_line, self.max_line
            );
        } else {
            println!(
                "{run}: entry codes {:?}, entries of 8 code units {}; largest line {}, largest \
                 column {}",
                self.codes, self.eight_units, self.max_line, self.max_column
            );
        }
        assert!(self.max_line > 100_000, "{run}: no line above 100000");
        if minor <= 10 {
            assert!(self.negative > 0, "{run}: no negative line delta");
            assert!(self.zero_length > 0, "{run}: no split delta");
            assert!(self.longest > 0, "{run}: no byte delta of 254 or more");
            if minor == 10 {
                assert!(self.no_line > 0, "{run}: no range without a line");
            }
        } else {
            let short_forms = self.codes.iter().filter(|code| **code < 10).count();
            assert!(short_forms >= 3, "{run}: short forms {:?}", self.codes);
            for code in 10..=15 {
                assert!(self.codes.contains(&code), "{run}: no entry of code {code}");
            }
            assert!(self.eight_units > 0, "{run}: no entry of 8 code units");
            assert!(self.max_column > 4096, "{run}: no column above 4096");
        }
    }
}

/// The interpreters of 3.`minor` on this machine, one per executable, and where they were
/// looked for.
fn interpreters(minor: u8) -> (Vec<Interpreter>, String) {
    let mut candidates: Vec<PathBuf> = Vec::new();
    let pyenv = std::env::var_os("PYENV_ROOT")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|home| Path::new(&home).join(".pyenv")));
    if let Some(pyenv) = &pyenv {
        if let Ok(entries) = std::fs::read_dir(pyenv.join("versions")) {
            let mut versions: Vec<_> = entries.flatten().map(|entry| entry.path()).collect();
            versions.sort();
            candidates.extend(
                versions
                    .into_iter()
                    .map(|version| version.join("bin/python3")),
            );
        }
    }
    let name = format!("python3.{minor}");
    candidates.push(Path::new("/usr/bin").join(&name));
    candidates.push(Path::new("/usr/local/bin").join(&name));
    if let Some(path) = std::env::var_os("PATH") {
        candidates.extend(std::env::split_paths(&path).map(|directory| directory.join(&name)));
    }
    let looked = format!(
        "{}/versions/*/bin/python3, /usr/bin/{name}, /usr/local/bin/{name}, {name} on PATH",
        pyenv.as_deref().unwrap_or(Path::new("~/.pyenv")).display()
    );

    let mut found: Vec<Interpreter> = Vec::new();
    let mut executables: BTreeSet<String> = BTreeSet::new();
    for candidate in candidates {
        if !candidate.is_file() {
            continue;
        }
        // Each candidate says what it is: a pyenv directory's name or a shim on PATH is no
        // proof, and two paths may be one interpreter.
        let Ok(output) = Command::new(&candidate)
            .args([
                "-I",
                "-c",
                "import os, sys; print('%d.%d.%d' % sys.version_info[:3]); \
                 print(os.path.realpath(sys.executable))",
            ])
            .output()
        else {
            continue;
        };
        if !output.status.success() {
            continue;
        }
        let text = String::from_utf8_lossy(&output.stdout);
        let mut lines = text.lines();
        let (Some(version), Some(executable)) = (lines.next(), lines.next()) else {
            continue;
        };
        if !version.starts_with(&format!("3.{minor}.")) || !executables.insert(executable.into()) {
            continue;
        }
        found.push(Interpreter {
            path: candidate,
            version: version.to_string(),
        });
    }
    (found, looked)
}

fn hex(text: &str) -> Vec<u8> {
    assert!(text.len().is_multiple_of(2), "odd hex length");
    (0..text.len())
        .step_by(2)
        .map(|at| u8::from_str_radix(&text[at..at + 2], 16).expect("hex digits"))
        .collect()
}

/// The JSON the generator prints, parsed minimally: its numbers are all integers.
#[derive(Debug)]
enum Json {
    Null,
    Bool(#[allow(dead_code)] bool),
    Number(i64),
    String(String),
    Array(Vec<Json>),
    Object(Vec<(String, Json)>),
}

impl Json {
    fn parse(text: &str) -> Json {
        let mut parser = Parser {
            bytes: text.as_bytes(),
            at: 0,
        };
        let value = parser.value();
        parser.whitespace();
        assert_eq!(parser.at, parser.bytes.len(), "bytes after the JSON value");
        value
    }

    fn get(&self, key: &str) -> &Json {
        match self {
            Json::Object(fields) => fields
                .iter()
                .find(|(name, _)| name == key)
                .map(|(_, value)| value)
                .unwrap_or_else(|| panic!("no field {key:?}")),
            other => panic!("{key:?} of a non-object {other:?}"),
        }
    }

    fn array(&self) -> &[Json] {
        match self {
            Json::Array(items) => items,
            other => panic!("not an array: {other:?}"),
        }
    }

    fn string(&self) -> &str {
        match self {
            Json::String(text) => text,
            other => panic!("not a string: {other:?}"),
        }
    }

    fn number(&self) -> i64 {
        match self {
            Json::Number(number) => *number,
            other => panic!("not a number: {other:?}"),
        }
    }
}

struct Parser<'a> {
    bytes: &'a [u8],
    at: usize,
}

impl Parser<'_> {
    fn whitespace(&mut self) {
        while self.bytes.get(self.at).is_some_and(u8::is_ascii_whitespace) {
            self.at += 1;
        }
    }

    fn peek(&mut self) -> u8 {
        self.whitespace();
        *self
            .bytes
            .get(self.at)
            .unwrap_or_else(|| panic!("JSON ends early"))
    }

    fn expect(&mut self, byte: u8) {
        assert_eq!(self.peek(), byte, "JSON: at byte {}", self.at);
        self.at += 1;
    }

    fn literal(&mut self, word: &str, value: Json) -> Json {
        assert!(
            self.bytes[self.at..].starts_with(word.as_bytes()),
            "JSON: a bad literal at byte {}",
            self.at
        );
        self.at += word.len();
        value
    }

    fn value(&mut self) -> Json {
        match self.peek() {
            b'n' => self.literal("null", Json::Null),
            b't' => self.literal("true", Json::Bool(true)),
            b'f' => self.literal("false", Json::Bool(false)),
            b'"' => Json::String(self.string()),
            b'[' => {
                self.at += 1;
                let mut items = Vec::new();
                if self.peek() == b']' {
                    self.at += 1;
                    return Json::Array(items);
                }
                loop {
                    items.push(self.value());
                    if self.peek() == b']' {
                        self.at += 1;
                        return Json::Array(items);
                    }
                    self.expect(b',');
                }
            }
            b'{' => {
                self.at += 1;
                let mut fields = Vec::new();
                if self.peek() == b'}' {
                    self.at += 1;
                    return Json::Object(fields);
                }
                loop {
                    self.whitespace();
                    let key = self.string();
                    self.expect(b':');
                    fields.push((key, self.value()));
                    if self.peek() == b'}' {
                        self.at += 1;
                        return Json::Object(fields);
                    }
                    self.expect(b',');
                }
            }
            _ => {
                let start = self.at;
                if self.bytes[self.at] == b'-' {
                    self.at += 1;
                }
                while self.bytes.get(self.at).is_some_and(u8::is_ascii_digit) {
                    self.at += 1;
                }
                let digits = std::str::from_utf8(&self.bytes[start..self.at]).unwrap();
                Json::Number(
                    digits
                        .parse()
                        .unwrap_or_else(|_| panic!("JSON: not an integer at byte {start}")),
                )
            }
        }
    }

    fn string(&mut self) -> String {
        self.expect(b'"');
        let mut text = String::new();
        loop {
            let start = self.at;
            // Runs of plain characters are copied whole (they are valid UTF-8: the input is a
            // str).
            while !matches!(self.bytes.get(self.at), Some(b'"' | b'\\') | None) {
                self.at += 1;
            }
            text.push_str(std::str::from_utf8(&self.bytes[start..self.at]).unwrap());
            match self.bytes.get(self.at) {
                Some(b'"') => {
                    self.at += 1;
                    return text;
                }
                Some(b'\\') => {
                    let escape = self.bytes[self.at + 1];
                    self.at += 2;
                    text.push(match escape {
                        b'n' => '\n',
                        b't' => '\t',
                        b'r' => '\r',
                        b'b' => '\u{8}',
                        b'f' => '\u{c}',
                        b'u' => {
                            let digits = std::str::from_utf8(&self.bytes[self.at..self.at + 4])
                                .expect("JSON: \\u digits");
                            self.at += 4;
                            // Surrogate halves (never in code names) become U+FFFD.
                            char::from_u32(u32::from_str_radix(digits, 16).expect("hex"))
                                .unwrap_or(char::REPLACEMENT_CHARACTER)
                        }
                        other => char::from(other),
                    });
                }
                _ => panic!("JSON: a string not closed"),
            }
        }
    }
}
