//! Suppression files: memcheck's syntax and LeakSanitizer's `leak:` lines, read and matched
//! against the symbolized stack of a loss record.
//!
//! The syntax is memcheck's, as its manual documents it ("Suppressing errors", and memcheck's
//! "Writing suppression files"):
//!
//! ```text
//! # a comment
//! {
//!    name-of-the-suppression
//!    Memcheck:Leak
//!    match-leak-kinds: definite,possible
//!    fun:malloc
//!    fun:make_*
//!    ...
//!    obj:/usr/lib/libfoo.so*
//!    src:foo.c:12
//! }
//! ```
//!
//! and LeakSanitizer's one-line suppressions, `leak:PATTERN`, which may stand in the same file.
//! What matches what:
//!
//! - A memcheck suppression's location lines are matched against the stack, innermost frame
//!   first, and must match its first frames (the stack may go on after them). `...` matches
//!   zero or more frames. `fun:` matches the function name (`???` when it has none), `obj:`
//!   the module's path, `src:` the source file's base name and, if given, the line; `*` and
//!   `?` are wildcards, `\` makes the next character literal (memcheck's `VG_(string_match)`).
//! - memcheck's stacks start with the allocation function (`malloc`, `operator new`...);
//!   leakscope's start at its caller, and the profile does not say which allocation function
//!   it was. So for memcheck suppressions the stack is matched with one more frame on top,
//!   [`ALLOCATION_FUNCTIONS`]: a `fun:` pattern that matches any of their names matches it,
//!   as does an `obj:` pattern that matches memcheck's preload library. A file written for
//!   memcheck (`fun:malloc` first) therefore works unchanged, and so does one that
//!   `--gen-suppressions` wrote (`fun:*` first).
//! - A suppression applies to the kinds of its `match-leak-kinds:` line (all four without
//!   one), and only to memcheck's leak errors: a suppression for another memcheck error
//!   (`Memcheck:Cond`, `Memcheck:Addr8`...) or for another tool (`Helgrind:Race`) is read
//!   and skipped, as memcheck skips another tool's.
//! - `leak:PATTERN` matches a loss record of any kind when the pattern matches the module path,
//!   the function or the source file (full path) of any frame, as LeakSanitizer matches it:
//!   a substring match, with `*` for any characters, `^` anchoring at the start and `$` at the
//!   end (sanitizer_common's `TemplateMatch`, reproduced here with its quirks).
//!
//! C++ functions: memcheck matches `fun:` against mangled names (`_ZN3Foo3barEv`); leakscope
//! has demangled names only (`Foo::bar()`), so a `fun:` pattern must name a C++ function as
//! the report shows it. [`Suppressions::mangled_patterns`] lists the patterns that look mangled,
//! so that the report can say that they cannot match.

use std::fmt;

use leakscope_format::{Frame, LeakKind};

use crate::Amount;

/// The functions memcheck's stacks start with and leakscope's do not: the allocation entry
/// points memcheck replaces (in `vgpreload_memcheck`), by the names a memcheck suppression
/// uses for them (C++'s `operator new` mangled, as memcheck wants it, and demangled).
pub const ALLOCATION_FUNCTIONS: &[&str] = &[
    "malloc",
    "calloc",
    "realloc",
    "reallocarray",
    "memalign",
    "posix_memalign",
    "aligned_alloc",
    "valloc",
    "pvalloc",
    "_Znwm",
    "_Znam",
    "_ZnwmRKSt9nothrow_t",
    "_ZnamRKSt9nothrow_t",
    "_ZnwmSt11align_val_t",
    "_ZnamSt11align_val_t",
    "_ZnwmSt11align_val_tRKSt9nothrow_t",
    "_ZnamSt11align_val_tRKSt9nothrow_t",
    "operator new(unsigned long)",
    "operator new[](unsigned long)",
    "operator new(unsigned long, std::nothrow_t const&)",
    "operator new[](unsigned long, std::nothrow_t const&)",
    "operator new(unsigned long, std::align_val_t)",
    "operator new[](unsigned long, std::align_val_t)",
];

/// Where memcheck's allocation functions live, for `obj:` patterns on the allocation frame.
const MEMCHECK_PRELOAD: &[&str] = &[
    "/usr/libexec/valgrind/vgpreload_memcheck-amd64-linux.so",
    "/usr/lib/x86_64-linux-gnu/valgrind/vgpreload_memcheck-amd64-linux.so",
];

/// The name of the default set's file in reports (it is built in, not read from disk).
pub const DEFAULT_SET_ORIGIN: &str = "<default suppressions>";

/// The suppressions applied unless `--no-default-suppressions`: exactly the leak
/// suppressions of memcheck's own default set (valgrind 3.19's `default.supp`), so that
/// leakscope and memcheck, each with its defaults, hide the same blocks. The other things
/// runtimes keep on purpose are handled elsewhere: glibc's and libstdc++'s `freeres` (stdio
/// buffers, the exception-handling emergency pool) run before the exit scan, and what the
/// Python interpreter keeps is recognised by its modules (`runtimes.rs`).
pub const DEFAULT_SET: &str = include_str!("default.supp");

/// The set of leak kinds a suppression or an option names, in memcheck's words.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct LeakKinds {
    bits: u8,
}

impl LeakKinds {
    /// Every kind.
    pub const ALL: LeakKinds = LeakKinds { bits: 0b1111 };
    /// No kind.
    pub const NONE: LeakKinds = LeakKinds { bits: 0 };
    /// memcheck's default of `--show-leak-kinds` and `--errors-for-leak-kinds`.
    pub const DEFINITE_POSSIBLE: LeakKinds = LeakKinds {
        bits: 1 << LeakKind::DefinitelyLost as u8 | 1 << LeakKind::PossiblyLost as u8,
    };

    /// The set of the given kinds.
    pub fn of(kinds: &[LeakKind]) -> LeakKinds {
        LeakKinds {
            bits: kinds.iter().fold(0, |bits, &kind| bits | 1 << kind as u8),
        }
    }

    /// Whether `kind` is in the set.
    pub fn contains(self, kind: LeakKind) -> bool {
        self.bits & (1 << kind as u8) != 0
    }

    /// The kinds in the set, in memcheck's order.
    pub fn kinds(self) -> impl Iterator<Item = LeakKind> {
        LeakKind::ALL
            .into_iter()
            .filter(move |&kind| self.contains(kind))
    }

    /// memcheck's list syntax: `definite,indirect,possible,reachable` (any of them, in any
    /// order), `all` or `none`.
    pub fn parse(text: &str) -> Result<LeakKinds, String> {
        let text = text.trim();
        match text {
            "all" => return Ok(LeakKinds::ALL),
            "none" => return Ok(LeakKinds::NONE),
            _ => {}
        }
        let mut kinds = LeakKinds::NONE;
        for word in text.split(',') {
            let kind = match word.trim() {
                "definite" => LeakKind::DefinitelyLost,
                "indirect" => LeakKind::IndirectlyLost,
                "possible" => LeakKind::PossiblyLost,
                "reachable" => LeakKind::StillReachable,
                other => {
                    return Err(format!(
                        "'{other}' is not a leak kind (definite, indirect, possible, reachable; or all, or none)"
                    ))
                }
            };
            kinds.bits |= 1 << kind as u8;
        }
        Ok(kinds)
    }

    /// memcheck's word for one kind (`definite`...).
    pub fn word(kind: LeakKind) -> &'static str {
        match kind {
            LeakKind::DefinitelyLost => "definite",
            LeakKind::IndirectlyLost => "indirect",
            LeakKind::PossiblyLost => "possible",
            LeakKind::StillReachable => "reachable",
        }
    }
}

impl fmt::Display for LeakKinds {
    /// memcheck's list syntax, as [`LeakKinds::parse`] reads it.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            LeakKinds::ALL => f.write_str("all"),
            LeakKinds::NONE => f.write_str("none"),
            kinds => {
                let words: Vec<&str> = kinds.kinds().map(LeakKinds::word).collect();
                f.write_str(&words.join(","))
            }
        }
    }
}

/// A suppression file that cannot be read as one: which file, which line, what is wrong.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SuppressionError {
    /// The file, as named on the command line.
    pub file: String,
    /// The line, from 1.
    pub line: usize,
    /// What is wrong there.
    pub message: String,
}

impl fmt::Display for SuppressionError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}: {}", self.file, self.line, self.message)
    }
}

impl std::error::Error for SuppressionError {}

/// One location line of a memcheck suppression.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum FramePattern {
    /// `fun:PATTERN`: the function's name.
    Function(String),
    /// `obj:PATTERN`: the module's path.
    Object(String),
    /// `src:FILE[:LINE]`: the source file's base name, and the line if given.
    Source {
        /// The pattern of the file name.
        file: String,
        /// The line, if given.
        line: Option<u32>,
    },
    /// `...`: zero or more frames.
    AnyFrames,
}

/// What a suppression matches.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Rule {
    /// A memcheck `Memcheck:Leak` suppression.
    Memcheck {
        /// Its `match-leak-kinds:` (all kinds without that line).
        kinds: LeakKinds,
        /// Its location lines, innermost first.
        frames: Vec<FramePattern>,
    },
    /// A LeakSanitizer `leak:PATTERN` line.
    LeakSanitizer {
        /// The pattern.
        pattern: String,
    },
}

/// One suppression, with where it was read.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Suppression {
    /// Its name (for `leak:` lines, the pattern).
    pub name: String,
    /// The file it was read from ([`DEFAULT_SET_ORIGIN`] for the default set).
    pub file: String,
    /// The line of its name (memcheck's `used_suppression:` lines give that one), or of the
    /// `leak:` line.
    pub line: usize,
    /// What it matches.
    pub rule: Rule,
}

impl Suppression {
    /// Whether it suppresses a loss record of `kind` whose stack has `frames` (innermost
    /// first).
    pub fn matches(&self, kind: LeakKind, frames: &[Frame]) -> bool {
        match &self.rule {
            Rule::Memcheck {
                kinds,
                frames: patterns,
            } => {
                if !kinds.contains(kind) {
                    return false;
                }
                // The allocation function's frame that memcheck's stacks have on top.
                let mut stack: Vec<Candidate> = Vec::with_capacity(frames.len() + 1);
                stack.push(Candidate::AllocationFunction);
                stack.extend(frames.iter().map(Candidate::Frame));
                frames_match(patterns, &stack)
            }
            Rule::LeakSanitizer { pattern } => frames.iter().any(|frame| {
                [
                    frame.module.as_deref(),
                    frame.function.as_deref(),
                    frame.file.as_deref(),
                ]
                .into_iter()
                .flatten()
                .any(|text| sanitizer_template_match(pattern, text))
            }),
        }
    }

    /// Whether it is one of the built-in defaults.
    pub fn is_default(&self) -> bool {
        self.file == DEFAULT_SET_ORIGIN
    }
}

/// A frame of the stack being matched: a real one, or memcheck's allocation function.
enum Candidate<'a> {
    AllocationFunction,
    Frame(&'a Frame),
}

impl Candidate<'_> {
    fn matches(&self, pattern: &FramePattern) -> bool {
        match (self, pattern) {
            (_, FramePattern::AnyFrames) => true,
            (Candidate::AllocationFunction, FramePattern::Function(p)) => ALLOCATION_FUNCTIONS
                .iter()
                .any(|name| valgrind_string_match(p, name)),
            (Candidate::AllocationFunction, FramePattern::Object(p)) => MEMCHECK_PRELOAD
                .iter()
                .any(|path| valgrind_string_match(p, path)),
            // memcheck's allocation functions are in vg_replace_malloc.c; a src: line for them
            // is not worth imitating.
            (Candidate::AllocationFunction, FramePattern::Source { .. }) => false,
            (Candidate::Frame(frame), FramePattern::Function(p)) => {
                valgrind_string_match(p, frame.function.as_deref().unwrap_or("???"))
            }
            (Candidate::Frame(frame), FramePattern::Object(p)) => {
                valgrind_string_match(p, frame.module.as_deref().unwrap_or("???"))
            }
            (Candidate::Frame(frame), FramePattern::Source { file, line }) => {
                let Some(path) = frame.file.as_deref() else {
                    return false;
                };
                let base = path.rsplit('/').next().unwrap_or(path);
                valgrind_string_match(file, base)
                    && line.is_none_or(|line| frame.line == Some(line))
            }
        }
    }
}

/// Do the patterns match the first frames of the stack (`...` matching zero or more)?
fn frames_match(patterns: &[FramePattern], stack: &[Candidate]) -> bool {
    match patterns.split_first() {
        // Every pattern matched: the rest of the stack does not matter.
        None => true,
        Some((FramePattern::AnyFrames, rest)) => {
            (0..=stack.len()).any(|skipped| frames_match(rest, &stack[skipped..]))
        }
        Some((pattern, rest)) => match stack.split_first() {
            Some((frame, deeper)) => frame.matches(pattern) && frames_match(rest, deeper),
            None => false,
        },
    }
}

/// memcheck's `VG_(string_match)`: `*` matches any characters (none too), `?` any one
/// character, `\` makes the next one literal; the whole text must match.
pub fn valgrind_string_match(pattern: &str, text: &str) -> bool {
    let pattern: Vec<char> = pattern.chars().collect();
    let text: Vec<char> = text.chars().collect();
    fn go(pattern: &[char], text: &[char]) -> bool {
        match pattern.split_first() {
            None => text.is_empty(),
            Some(('*', rest)) => {
                // Runs of stars are one star: keeps the search linear in the text per star.
                let rest = {
                    let mut rest = rest;
                    while let Some(('*', more)) = rest.split_first() {
                        rest = more;
                    }
                    rest
                };
                (0..=text.len()).any(|skipped| go(rest, &text[skipped..]))
            }
            Some(('?', rest)) => !text.is_empty() && go(rest, &text[1..]),
            Some(('\\', rest)) if !rest.is_empty() => {
                text.first() == Some(&rest[0]) && go(&rest[1..], &text[1..])
            }
            Some((c, rest)) => text.first() == Some(c) && go(rest, &text[1..]),
        }
    }
    go(&pattern, &text)
}

/// sanitizer_common's `TemplateMatch`, as LeakSanitizer matches `leak:` patterns: the pattern
/// is split at `*` into parts found in order, each at its first occurrence after the
/// previous one (no backtracking, as there); without `^` the first part may be anywhere,
/// without `$` the text may go on after the last part. An empty text never matches.
pub fn sanitizer_template_match(template: &str, text: &str) -> bool {
    if text.is_empty() {
        return false;
    }
    let (mut template, mut anchored_start) = match template.strip_prefix('^') {
        Some(rest) => (rest, true),
        None => (template, false),
    };
    let mut text = text;
    let mut after_star = false;
    while !template.is_empty() {
        if let Some(rest) = template.strip_prefix('*') {
            template = rest;
            anchored_start = false;
            after_star = true;
            continue;
        }
        if template.starts_with('$') {
            return text.is_empty() || after_star;
        }
        if text.is_empty() {
            return false;
        }
        let end = template.find(['*', '$']).unwrap_or(template.len());
        let part = &template[..end];
        let Some(at) = text.find(part) else {
            return false;
        };
        if anchored_start && at != 0 {
            return false;
        }
        text = &text[at + part.len()..];
        template = &template[end..];
        anchored_start = false;
        after_star = false;
    }
    true
}

/// Every suppression in force, in the order they were read (the first that matches a loss
/// record is the one that suppresses it, and the one counted as used).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Suppressions {
    /// The suppressions.
    pub list: Vec<Suppression>,
}

impl Suppressions {
    /// The built-in default set ([`DEFAULT_SET`]).
    pub fn defaults() -> Suppressions {
        Suppressions {
            list: parse(DEFAULT_SET, DEFAULT_SET_ORIGIN)
                .expect("the built-in default suppressions parse (a unit test checks it)"),
        }
    }

    /// Add the suppressions of one more file.
    pub fn extend(&mut self, more: Vec<Suppression>) {
        self.list.extend(more);
    }

    /// The first suppression that matches a loss record of `kind` with `frames`.
    pub fn first_match(&self, kind: LeakKind, frames: &[Frame]) -> Option<usize> {
        self.list
            .iter()
            .position(|suppression| suppression.matches(kind, frames))
    }

    /// `fun:` patterns that look like C++ mangled names (other than memcheck's names for
    /// `operator new`, which the allocation frame answers): they cannot match leakscope's
    /// demangled names. The suppression, and the pattern.
    pub fn mangled_patterns(&self) -> Vec<(&Suppression, &str)> {
        let mut found = Vec::new();
        for suppression in &self.list {
            if let Rule::Memcheck { frames, .. } = &suppression.rule {
                for frame in frames {
                    if let FramePattern::Function(pattern) = frame {
                        let mangled = pattern.starts_with("_Z")
                            && !ALLOCATION_FUNCTIONS
                                .iter()
                                .any(|name| valgrind_string_match(pattern, name));
                        if mangled {
                            found.push((suppression, pattern.as_str()));
                        }
                    }
                }
            }
        }
        found
    }
}

/// How often one suppression was used in one process, as memcheck's `used_suppression:`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SuppressionUse {
    /// The suppression's index in [`Suppressions::list`].
    pub index: usize,
    /// Its name.
    pub name: String,
    /// Its file.
    pub file: String,
    /// The line of its name.
    pub line: usize,
    /// How many loss records it suppressed.
    pub records: u64,
    /// Their bytes and blocks.
    pub amount: Amount,
}

/// Read a suppression file. `file` names it in errors and in the reports.
pub fn parse(text: &str, file: &str) -> Result<Vec<Suppression>, SuppressionError> {
    let error = |line: usize, message: String| SuppressionError {
        file: file.to_owned(),
        line,
        message,
    };
    // memcheck's reader: each line trimmed; blank lines and lines whose first character
    // after blanks is '#' skipped.
    let mut lines = text
        .lines()
        .enumerate()
        .map(|(index, line)| (index + 1, line.trim()))
        .filter(|(_, line)| !line.is_empty() && !line.starts_with('#'));
    let mut suppressions = Vec::new();
    while let Some((number, line)) = lines.next() {
        if let Some(pattern) = line.strip_prefix("leak:") {
            let pattern = pattern.trim();
            if pattern.is_empty() {
                return Err(error(number, "'leak:' without a pattern".to_owned()));
            }
            suppressions.push(Suppression {
                name: pattern.to_owned(),
                file: file.to_owned(),
                line: number,
                rule: Rule::LeakSanitizer {
                    pattern: pattern.to_owned(),
                },
            });
            continue;
        }
        if line != "{" {
            let message = match line.split_once(':') {
                Some((kind, _)) if !kind.contains(char::is_whitespace) => format!(
                    "'{kind}:' is not a suppression leakscope reads: a LeakSanitizer line must be 'leak:PATTERN' (LeakSanitizer supports no other kind), and a memcheck suppression starts with a line '{{'"
                ),
                _ => format!("expected '{{' (a memcheck suppression) or 'leak:PATTERN' (LeakSanitizer), found '{line}'"),
            };
            return Err(error(number, message));
        }
        let open = number;
        let unclosed = || {
            error(
                open,
                "this suppression has no closing '}' before the end of the file".to_owned(),
            )
        };
        let (name_line, name) = lines.next().ok_or_else(unclosed)?;
        if name == "}" || name == "{" {
            return Err(error(
                name_line,
                format!("expected the suppression's name, found '{name}'"),
            ));
        }
        let (kind_line, kind) = lines.next().ok_or_else(unclosed)?;
        let Some((tools, error_kind)) = kind.split_once(':') else {
            return Err(error(
                kind_line,
                format!("expected 'Tool:kind' (such as 'Memcheck:Leak'), found '{kind}'"),
            ));
        };
        // Tools ignore suppressions that are not directed to them; memcheck reads only
        // those that name it.
        let for_memcheck = tools.split(',').any(|tool| tool == "Memcheck");
        if for_memcheck && !MEMCHECK_ERROR_KINDS.contains(&error_kind) {
            return Err(error(
                kind_line,
                format!("'{error_kind}' is not a kind of memcheck error (Leak, Cond, Value8, Addr8, Param, Free, Overlap...)"),
            ));
        }
        let leak = for_memcheck && error_kind == "Leak";
        let mut kinds = LeakKinds::ALL;
        let mut frames = Vec::new();
        let mut first_body_line = true;
        let closed = loop {
            let Some((number, line)) = lines.next() else {
                break false;
            };
            if line == "}" {
                break true;
            }
            if line == "{" {
                return Err(error(
                    number,
                    format!(
                        "a '{{' inside the suppression opened at line {open}: its '}}' is missing"
                    ),
                ));
            }
            if !leak {
                // Another error kind's or tool's lines (a Param suppression's parameter
                // line, its frames): not leakscope's to read.
                continue;
            }
            if first_body_line {
                first_body_line = false;
                if let Some(list) = line.strip_prefix("match-leak-kinds:") {
                    kinds = LeakKinds::parse(list).map_err(|message| error(number, message))?;
                    continue;
                }
            }
            frames.push(parse_location(line).map_err(|message| error(number, message))?);
        };
        if !closed {
            return Err(unclosed());
        }
        if leak {
            if frames.is_empty() {
                return Err(error(
                    open,
                    format!("the suppression '{name}' has no location lines (fun:, obj:, src: or ...): memcheck requires at least one"),
                ));
            }
            suppressions.push(Suppression {
                name: name.to_owned(),
                file: file.to_owned(),
                line: name_line,
                rule: Rule::Memcheck { kinds, frames },
            });
        }
    }
    Ok(suppressions)
}

/// memcheck's error kinds, as its suppressions name them.
const MEMCHECK_ERROR_KINDS: &[&str] = &[
    "Leak",
    "Cond",
    "Value1",
    "Value2",
    "Value4",
    "Value8",
    "Value16",
    "Value32",
    "Addr1",
    "Addr2",
    "Addr4",
    "Addr8",
    "Addr16",
    "Addr32",
    "Jump",
    "Param",
    "Free",
    "Overlap",
    "FishyValue",
    "ReallocZero",
];

/// One location line: `fun:`, `obj:`, `src:` or `...`.
fn parse_location(line: &str) -> Result<FramePattern, String> {
    if line == "..." {
        return Ok(FramePattern::AnyFrames);
    }
    if line == "match-leak-kinds:" || line.starts_with("match-leak-kinds:") {
        return Err("'match-leak-kinds:' must be the first line after 'Memcheck:Leak'".to_owned());
    }
    let nonempty = |pattern: &str, what: &str| {
        if pattern.is_empty() {
            Err(format!("'{what}:' without a pattern"))
        } else {
            Ok(pattern.to_owned())
        }
    };
    if let Some(pattern) = line.strip_prefix("fun:") {
        return Ok(FramePattern::Function(nonempty(pattern, "fun")?));
    }
    if let Some(pattern) = line.strip_prefix("obj:") {
        return Ok(FramePattern::Object(nonempty(pattern, "obj")?));
    }
    if let Some(rest) = line.strip_prefix("src:") {
        // FILE[:LINE]: a last ':' followed by digits only is the line.
        return Ok(match rest.rsplit_once(':') {
            Some((file, line)) if !line.is_empty() && line.bytes().all(|b| b.is_ascii_digit()) => {
                let line: u32 = line
                    .parse()
                    .map_err(|_| format!("'{line}' is not a line number"))?;
                FramePattern::Source {
                    file: nonempty(file, "src")?,
                    line: Some(line),
                }
            }
            _ => FramePattern::Source {
                file: nonempty(rest, "src")?,
                line: None,
            },
        });
    }
    Err(format!(
        "expected a location line (fun:PATTERN, obj:PATTERN, src:FILE[:LINE] or ...), found '{line}'"
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    use LeakKind::*;

    /// A frame as the symbolizer gives it.
    fn frame(function: &str, file: &str, line: u32, module: &str) -> Frame {
        Frame {
            address: 0x1000,
            function: (!function.is_empty()).then(|| function.to_owned()),
            file: (!file.is_empty()).then(|| file.to_owned()),
            line: (line != 0).then_some(line),
            module: (!module.is_empty()).then(|| module.to_owned()),
            ..Frame::default()
        }
    }

    /// A stack from a program linked against a library: innermost first, as the report shows
    /// it (no allocation function on top).
    fn stack() -> Vec<Frame> {
        vec![
            frame(
                "g_strdup",
                "/build/glib/gstrfuncs.c",
                362,
                "/usr/lib/libglib-2.0.so.0.7400.6",
            ),
            frame("make_name", "/src/app/names.c", 12, "/src/app/prog"),
            frame("load_config", "/src/app/config.c", 40, "/src/app/prog"),
            frame("main", "/src/app/main.c", 7, "/src/app/prog"),
            frame(
                "__libc_start_call_main",
                "",
                0,
                "/usr/lib/x86_64-linux-gnu/libc.so.6",
            ),
        ]
    }

    fn one(text: &str) -> Suppression {
        let mut all = parse(text, "test.supp").unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(all.len(), 1, "{all:?}");
        all.remove(0)
    }

    fn memcheck(kinds: &str, frames: &[&str]) -> Suppression {
        let kinds = if kinds.is_empty() {
            String::new()
        } else {
            format!("   match-leak-kinds: {kinds}\n")
        };
        one(&format!(
            "{{\n   a-name\n   Memcheck:Leak\n{kinds}{}\n}}\n",
            frames
                .iter()
                .map(|f| format!("   {f}"))
                .collect::<Vec<_>>()
                .join("\n")
        ))
    }

    fn error_of(text: &str) -> SuppressionError {
        parse(text, "bad.supp").expect_err("a malformed file is an error")
    }

    #[test]
    fn valgrind_wildcards() {
        assert!(valgrind_string_match("malloc", "malloc"));
        assert!(!valgrind_string_match("malloc", "malloc2"));
        assert!(valgrind_string_match("*alloc", "calloc"));
        assert!(valgrind_string_match("*", ""));
        assert!(valgrind_string_match("g_*_new", "g_hash_table_new"));
        assert!(!valgrind_string_match("g_*_new", "g_hash_table_new_full"));
        assert!(valgrind_string_match("?alloc", "calloc"));
        assert!(!valgrind_string_match("?alloc", "alloc"));
        assert!(valgrind_string_match("a**b", "ab"));
        assert!(valgrind_string_match("\\*x", "*x"));
        assert!(!valgrind_string_match("\\*x", "ax"));
        assert!(valgrind_string_match(
            "*/libglib-2.0.so*",
            "/usr/lib/libglib-2.0.so.0.7400.6"
        ));
    }

    #[test]
    fn sanitizer_templates_are_substrings_with_anchors() {
        assert!(sanitizer_template_match("strdup", "g_strdup"));
        assert!(sanitizer_template_match("^g_", "g_strdup"));
        assert!(!sanitizer_template_match("^strdup", "g_strdup"));
        assert!(sanitizer_template_match("dup$", "g_strdup"));
        assert!(!sanitizer_template_match("g_$", "g_strdup"));
        assert!(sanitizer_template_match("g_*dup", "g_strdup"));
        assert!(sanitizer_template_match(
            "libglib*so",
            "/usr/lib/libglib-2.0.so.0"
        ));
        assert!(sanitizer_template_match("*", "x"));
        assert!(!sanitizer_template_match("*", ""));
        // TemplateMatch takes each part at its first occurrence and does not backtrack: "b$"
        // after "a" finds the first "b", which is not at the end.
        assert!(!sanitizer_template_match("a*b$", "abab"));
        assert!(sanitizer_template_match("a*b*$", "abab"));
    }

    #[test]
    fn a_suppression_matches_the_first_frames_under_the_allocation_function() {
        let s = memcheck("", &["fun:malloc", "fun:g_strdup", "fun:make_name"]);
        assert!(s.matches(DefinitelyLost, &stack()));
        // Without the allocation function on top, memcheck would not match it either.
        let s = memcheck("", &["fun:g_strdup", "fun:make_name"]);
        assert!(!s.matches(DefinitelyLost, &stack()));
        // The first frames, in order: not any frames.
        let s = memcheck("", &["fun:malloc", "fun:make_name"]);
        assert!(!s.matches(DefinitelyLost, &stack()));
        // A pattern longer than the stack does not match.
        let mut longer: Vec<String> = vec!["fun:malloc".into()];
        longer.extend(
            stack()
                .iter()
                .map(|f| format!("fun:{}", f.function.as_deref().unwrap())),
        );
        longer.push("fun:_start".into());
        let refs: Vec<&str> = longer.iter().map(String::as_str).collect();
        assert!(!memcheck("", &refs).matches(DefinitelyLost, &stack()));
        assert!(memcheck("", &refs[..refs.len() - 1]).matches(DefinitelyLost, &stack()));
    }

    #[test]
    fn the_allocation_frame_answers_to_any_allocation_function() {
        for top in [
            "fun:calloc",
            "fun:_Znwm",
            "fun:*alloc",
            "fun:*",
            "obj:*vgpreload_memcheck*",
            "...",
        ] {
            let s = memcheck("", &[top, "fun:g_strdup"]);
            assert!(s.matches(DefinitelyLost, &stack()), "{top}");
        }
        for top in ["fun:free", "fun:g_strdup", "obj:/usr/lib/libc.so.6"] {
            let s = memcheck("", &[top, "fun:g_strdup"]);
            assert!(!s.matches(DefinitelyLost, &stack()), "{top}");
        }
    }

    #[test]
    fn frame_wildcards_at_the_start_in_the_middle_and_at_the_end() {
        let start = memcheck("", &["...", "fun:load_config", "fun:main"]);
        assert!(start.matches(DefinitelyLost, &stack()));
        let middle = memcheck("", &["fun:malloc", "fun:g_strdup", "...", "fun:main"]);
        assert!(middle.matches(DefinitelyLost, &stack()));
        let middle_none_skipped =
            memcheck("", &["fun:malloc", "...", "fun:g_strdup", "fun:make_name"]);
        assert!(middle_none_skipped.matches(DefinitelyLost, &stack()));
        let end = memcheck("", &["fun:malloc", "fun:g_strdup", "..."]);
        assert!(end.matches(DefinitelyLost, &stack()));
        let only = memcheck("", &["..."]);
        assert!(only.matches(DefinitelyLost, &stack()));
        // `...` then a frame the stack does not have.
        let missing = memcheck("", &["...", "fun:parse_args", "fun:main"]);
        assert!(!missing.matches(DefinitelyLost, &stack()));
        // After `...`, the frames that follow must still be consecutive.
        let gap = memcheck("", &["...", "fun:make_name", "fun:main"]);
        assert!(!gap.matches(DefinitelyLost, &stack()));
        // Trailing `...` after the whole stack: zero frames.
        let mut all: Vec<String> = vec!["fun:malloc".into()];
        all.extend(
            stack()
                .iter()
                .map(|f| format!("fun:{}", f.function.as_deref().unwrap())),
        );
        all.push("...".into());
        let refs: Vec<&str> = all.iter().map(String::as_str).collect();
        assert!(memcheck("", &refs).matches(DefinitelyLost, &stack()));
    }

    #[test]
    fn obj_matches_the_module_path_and_src_the_file_name_and_line() {
        let obj = memcheck(
            "",
            &["fun:malloc", "obj:*/libglib-2.0.so*", "obj:/src/app/prog"],
        );
        assert!(obj.matches(DefinitelyLost, &stack()));
        let wrong_obj = memcheck("", &["fun:malloc", "obj:*/libgio-2.0.so*"]);
        assert!(!wrong_obj.matches(DefinitelyLost, &stack()));
        let src = memcheck("", &["fun:malloc", "src:gstrfuncs.c", "src:names.c:12"]);
        assert!(src.matches(DefinitelyLost, &stack()));
        let wrong_line = memcheck("", &["fun:malloc", "src:gstrfuncs.c", "src:names.c:13"]);
        assert!(!wrong_line.matches(DefinitelyLost, &stack()));
        // A frame with no function is `???`, as memcheck names it.
        let mut nameless = stack();
        nameless[0].function = None;
        assert!(memcheck("", &["fun:malloc", "fun:???", "fun:make_name"])
            .matches(DefinitelyLost, &nameless));
        assert!(memcheck("", &["fun:malloc", "fun:*", "fun:make_name"])
            .matches(DefinitelyLost, &nameless));
    }

    #[test]
    fn match_leak_kinds_limits_the_kinds() {
        let frames = ["fun:malloc", "fun:g_strdup"];
        let s = memcheck("definite,possible", &frames);
        assert!(s.matches(DefinitelyLost, &stack()));
        assert!(s.matches(PossiblyLost, &stack()));
        assert!(!s.matches(IndirectlyLost, &stack()));
        assert!(!s.matches(StillReachable, &stack()));
        let all = memcheck("all", &frames);
        let unstated = memcheck("", &frames);
        for kind in LeakKind::ALL {
            assert!(all.matches(kind, &stack()));
            assert!(unstated.matches(kind, &stack()));
            assert!(!memcheck("none", &frames).matches(kind, &stack()));
        }
        assert!(memcheck("reachable", &frames).matches(StillReachable, &stack()));
    }

    #[test]
    fn leak_lines_match_function_module_or_file_of_any_frame() {
        let s = one("# LeakSanitizer\nleak:load_config\n");
        assert_eq!(s.name, "load_config");
        assert_eq!(s.line, 2);
        for kind in LeakKind::ALL {
            assert!(s.matches(kind, &stack()));
        }
        assert!(one("leak:libglib-2.0.so").matches(DefinitelyLost, &stack()));
        assert!(one("leak:app/config.c").matches(DefinitelyLost, &stack()));
        assert!(one("leak:^make_*$").matches(DefinitelyLost, &stack()));
        assert!(!one("leak:parse_args").matches(DefinitelyLost, &stack()));
        // The allocation function is not a frame of leakscope's stacks.
        assert!(!one("leak:malloc").matches(DefinitelyLost, &stack()));
    }

    #[test]
    fn a_file_in_the_style_projects_ship_is_read_with_other_tools_skipped() {
        let text = "\
# Suppressions for libexample, in the style of glib.supp.

{
   example-type-registry
   Memcheck:Leak
   match-leak-kinds: possible,reachable
   fun:*alloc
   ...
   fun:example_type_register_static
}

{
   example-cond-in-hash
   Memcheck:Cond
   fun:example_hash
}

  {
   example-param
   Memcheck:Param
   write(buf)
   fun:write
  }

{
   example-race
   Helgrind:Race
   fun:example_worker
}

{
   example-both-tools
   Memcheck,Helgrind:Leak
   fun:malloc
   obj:*/libexample.so*
}
leak:example_cache_
";
        let all = parse(text, "example.supp").unwrap();
        let names: Vec<&str> = all.iter().map(|s| s.name.as_str()).collect();
        assert_eq!(
            names,
            [
                "example-type-registry",
                "example-both-tools",
                "example_cache_"
            ]
        );
        assert_eq!((all[0].file.as_str(), all[0].line), ("example.supp", 4));
        assert_eq!(
            all[0].rule,
            Rule::Memcheck {
                kinds: LeakKinds::of(&[PossiblyLost, StillReachable]),
                frames: vec![
                    FramePattern::Function("*alloc".into()),
                    FramePattern::AnyFrames,
                    FramePattern::Function("example_type_register_static".into()),
                ]
            }
        );
    }

    #[test]
    fn malformed_files_are_errors_with_their_line() {
        let e = error_of("\n{\n   name\n   Memcheck:Leak\n   fun:malloc\n");
        assert_eq!((e.line, e.file.as_str()), (2, "bad.supp"));
        assert!(e.message.contains("no closing '}'"), "{e}");
        assert!(e.to_string().starts_with("bad.supp:2: "), "{e}");

        let e = error_of("{\n   name\n   Memcheck:Leak\n   fun:malloc\n   bogus:thing\n}\n");
        assert_eq!(e.line, 5);
        assert!(e.message.contains("expected a location line"), "{e}");

        let e = error_of(
            "{\n   name\n   Memcheck:Leak\n   match-leak-kinds: definite,lost\n   fun:malloc\n}\n",
        );
        assert_eq!(e.line, 4);
        assert!(e.message.contains("'lost' is not a leak kind"), "{e}");

        let e = error_of(
            "{\n   name\n   Memcheck:Leak\n   fun:malloc\n   match-leak-kinds: definite\n}\n",
        );
        assert_eq!(e.line, 5);
        assert!(e.message.contains("must be the first line"), "{e}");

        let e = error_of("{\n   name\n   Memcheck:Leek\n   fun:malloc\n}\n");
        assert_eq!(e.line, 3);
        assert!(e.message.contains("not a kind of memcheck error"), "{e}");

        let e = error_of("{\n   name\n   MemcheckLeak\n   fun:malloc\n}\n");
        assert_eq!(e.line, 3);

        let e = error_of("{\n   }\n");
        assert_eq!(e.line, 2);
        assert!(e.message.contains("the suppression's name"), "{e}");

        let e = error_of("{\n   name\n   Memcheck:Leak\n}\n");
        assert_eq!(e.line, 1);
        assert!(e.message.contains("no location lines"), "{e}");

        let e = error_of("# fine\nfun:malloc\n");
        assert_eq!(e.line, 2);
        assert!(
            e.message
                .contains("'fun:' is not a suppression leakscope reads"),
            "{e}"
        );

        let e = error_of("leak:\n");
        assert_eq!(e.line, 1);

        let e = error_of("{\n  a\n  Memcheck:Leak\n  fun:f\n{\n  b\n  Memcheck:Leak\n  fun:g\n}\n");
        assert_eq!(e.line, 5);
        assert!(e.message.contains("opened at line 1"), "{e}");

        let e = error_of("{\n  a\n  Memcheck:Leak\n  fun:\n}\n");
        assert_eq!(e.line, 4);
    }

    #[test]
    fn leak_kinds_read_and_write_memchecks_lists() {
        assert_eq!(LeakKinds::parse("all"), Ok(LeakKinds::ALL));
        assert_eq!(LeakKinds::parse("none"), Ok(LeakKinds::NONE));
        assert_eq!(
            LeakKinds::parse("possible,definite"),
            Ok(LeakKinds::DEFINITE_POSSIBLE)
        );
        assert!(LeakKinds::parse("definite,").is_err());
        assert!(LeakKinds::parse("").is_err());
        assert_eq!(
            LeakKinds::DEFINITE_POSSIBLE.to_string(),
            "definite,possible"
        );
        assert_eq!(LeakKinds::ALL.to_string(), "all");
        assert_eq!(
            LeakKinds::of(&[IndirectlyLost, StillReachable]).to_string(),
            "indirect,reachable"
        );
    }

    #[test]
    fn the_default_set_parses_and_matches_only_glibcs_thread_vectors() {
        let defaults = Suppressions::defaults();
        assert_eq!(defaults.list.len(), 3);
        assert!(defaults.list.iter().all(Suppression::is_default));
        let dtv = vec![
            frame(
                "tls_get_addr_tail",
                "dl-tls.c",
                900,
                "/usr/lib64/ld-linux-x86-64.so.2",
            ),
            frame("__tls_get_addr", "", 0, "/usr/lib64/ld-linux-x86-64.so.2"),
            frame(
                "plugin_tls_keep",
                "tls_plugin.c",
                9,
                "/tmp/libtls_plugin.so",
            ),
        ];
        assert_eq!(defaults.first_match(PossiblyLost, &dtv), Some(0));
        assert_eq!(defaults.first_match(StillReachable, &dtv), Some(0));
        // memcheck's defaults do not hide them as definitely lost.
        assert_eq!(defaults.first_match(DefinitelyLost, &dtv), None);
        assert_eq!(defaults.first_match(PossiblyLost, &stack()), None);
        assert!(defaults.mangled_patterns().is_empty());
    }

    #[test]
    fn mangled_function_patterns_are_found_but_not_operator_new() {
        let s = Suppressions {
            list: parse(
                "{\n a\n Memcheck:Leak\n fun:_Znwm\n fun:_ZN3Foo4makeEv\n fun:main\n}\n",
                "cxx.supp",
            )
            .unwrap(),
        };
        let mangled: Vec<&str> = s.mangled_patterns().into_iter().map(|(_, p)| p).collect();
        assert_eq!(mangled, ["_ZN3Foo4makeEv"]);
    }

    #[test]
    fn the_first_matching_suppression_is_the_one_used() {
        let mut s = Suppressions::default();
        s.extend(parse("leak:parse_args\nleak:make_name\nleak:main\n", "a.supp").unwrap());
        assert_eq!(s.first_match(DefinitelyLost, &stack()), Some(1));
    }
}
