//! The machine-readable header of a fixture: what memcheck (and so leakscope) must report.
//!
//! The syntax is described in `tests/programs/README.md`. In short, among the leading `//` comment
//! lines of a fixture:
//!
//! ```text
//! // expect definitely_lost 4096 1          bytes and blocks, one line per kind (all four needed)
//! // expect leak-function definitely_lost f  some loss record of that kind has f in its stack
//! // expect exit-code 3                      default 0
//! // expect signal 6                         the process dies by this signal instead
//! // expect child definitely_lost 100 1      a forked child's own report (all four kinds needed)
//! // expect child leak-function definitely_lost g
//! // expect@O2 possibly_lost 0 0             overrides a line for one optimisation level
//! // args one "two words" ''                 arguments ({shared-lib}: the built library's path)
//! // build-extra -ldl                        extra compiler arguments
//! // shared-lib support/plugin.c             a library built beside the fixture
//! ```

use std::fmt;

/// The four kinds of memcheck's leak summary, in its order.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Kind {
    DefinitelyLost,
    IndirectlyLost,
    PossiblyLost,
    StillReachable,
}

impl Kind {
    pub const ALL: [Kind; 4] = [
        Kind::DefinitelyLost,
        Kind::IndirectlyLost,
        Kind::PossiblyLost,
        Kind::StillReachable,
    ];

    /// The name used in headers and in leakscope's JSON report.
    pub fn key(self) -> &'static str {
        match self {
            Kind::DefinitelyLost => "definitely_lost",
            Kind::IndirectlyLost => "indirectly_lost",
            Kind::PossiblyLost => "possibly_lost",
            Kind::StillReachable => "still_reachable",
        }
    }

    pub fn from_key(key: &str) -> Option<Kind> {
        Kind::ALL.into_iter().find(|k| k.key() == key)
    }

    /// The words memcheck uses ("definitely lost").
    pub fn memcheck_words(self) -> &'static str {
        match self {
            Kind::DefinitelyLost => "definitely lost",
            Kind::IndirectlyLost => "indirectly lost",
            Kind::PossiblyLost => "possibly lost",
            Kind::StillReachable => "still reachable",
        }
    }

    pub fn index(self) -> usize {
        self as usize
    }
}

impl fmt::Display for Kind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.key())
    }
}

/// Bytes and blocks of one kind.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Amount {
    pub bytes: u64,
    pub blocks: u64,
}

impl fmt::Display for Amount {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} bytes in {} blocks", self.bytes, self.blocks)
    }
}

/// Bytes and blocks of each kind, indexed by [`Kind::index`].
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Totals(pub [Amount; 4]);

impl Totals {
    pub fn get(&self, kind: Kind) -> Amount {
        self.0[kind.index()]
    }

    pub fn set(&mut self, kind: Kind, amount: Amount) {
        self.0[kind.index()] = amount;
    }

    pub fn is_zero(&self) -> bool {
        self.0.iter().all(|a| *a == Amount::default())
    }
}

impl fmt::Display for Totals {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let parts: Vec<String> = Kind::ALL
            .iter()
            .map(|k| {
                let a = self.get(*k);
                format!("{k} {} {}", a.bytes, a.blocks)
            })
            .collect();
        f.write_str(&parts.join(", "))
    }
}

pub use super::process::Exit;

/// What one process (the program, or a child it forked) must report.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ProcessExpect {
    pub totals: Totals,
    /// (kind, function): some loss record of that kind has the function in its stack.
    pub functions: Vec<(Kind, String)>,
}

/// Everything a fixture expects at one optimisation level.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Expect {
    pub main: ProcessExpect,
    pub child: Option<ProcessExpect>,
    pub exit: Exit,
}

/// The optimisation levels every fixture is built at.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Level {
    O0,
    O2,
}

impl Level {
    pub const ALL: [Level; 2] = [Level::O0, Level::O2];

    pub fn name(self) -> &'static str {
        match self {
            Level::O0 => "O0",
            Level::O2 => "O2",
        }
    }

    /// The digit given to `-O` and to rustc's `-C opt-level=`.
    pub fn digit(self) -> &'static str {
        match self {
            Level::O0 => "0",
            Level::O2 => "2",
        }
    }

    pub fn index(self) -> usize {
        self as usize
    }
}

impl fmt::Display for Level {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// A parsed fixture header.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Header {
    /// Indexed by [`Level::index`].
    pub expect: [Expect; 2],
    pub args: Vec<String>,
    pub build_extra: Vec<String>,
    pub shared_lib: Option<String>,
}

/// One fact stated by an `expect` line, before the lines are folded per level.
enum Fact {
    Amount {
        child: bool,
        kind: Kind,
        amount: Amount,
    },
    Function {
        child: bool,
        kind: Kind,
        name: String,
    },
    Exit(Exit),
}

/// Parses the leading `//` comment block of a fixture's source.
pub fn parse_header(source: &str) -> Result<Header, String> {
    let mut facts: Vec<(Option<Level>, Fact)> = Vec::new();
    let mut args = Vec::new();
    let mut build_extra = Vec::new();
    let mut shared_lib = None;
    for (number, line) in source.lines().enumerate() {
        let Some(comment) = line.trim_start().strip_prefix("//") else {
            break;
        };
        let comment = comment.trim();
        let at = |e: String| format!("line {}: {e}: {line:?}", number + 1);
        let (word, rest) = comment
            .split_once(char::is_whitespace)
            .unwrap_or((comment, ""));
        let rest = rest.trim();
        if let Some(level) = word.strip_prefix("expect") {
            let level = match level {
                "" => None,
                "@O0" => Some(Level::O0),
                "@O2" => Some(Level::O2),
                _ => return Err(at(format!("unknown level in {word:?}"))),
            };
            facts.push((level, parse_fact(rest).map_err(at)?));
        } else if word == "args" {
            args = split_words(rest).map_err(at)?;
        } else if word == "build-extra" {
            build_extra = split_words(rest).map_err(at)?;
        } else if word == "shared-lib" {
            if rest.is_empty() {
                return Err(at("shared-lib needs a path".into()));
            }
            shared_lib = Some(rest.to_string());
        }
    }
    let expect = [fold(&facts, Level::O0)?, fold(&facts, Level::O2)?];
    Ok(Header {
        expect,
        args,
        build_extra,
        shared_lib,
    })
}

fn parse_fact(rest: &str) -> Result<Fact, String> {
    let words: Vec<&str> = rest.split_whitespace().collect();
    let (child, words) = match words.split_first() {
        Some((&"child", tail)) => (true, tail),
        _ => (false, &words[..]),
    };
    let number = |s: &str| -> Result<u64, String> {
        s.parse::<u64>()
            .map_err(|_| format!("{s:?} is not a whole number"))
    };
    match words {
        ["leak-function", kind, name] => Ok(Fact::Function {
            child,
            kind: parse_kind(kind)?,
            name: name.to_string(),
        }),
        ["exit-code", code] if !child => Ok(Fact::Exit(Exit::Code(
            code.parse()
                .map_err(|_| format!("bad exit code {code:?}"))?,
        ))),
        ["signal", signal] if !child => Ok(Fact::Exit(Exit::Signal(
            signal
                .parse()
                .map_err(|_| format!("bad signal {signal:?}"))?,
        ))),
        [kind, bytes, blocks] => Ok(Fact::Amount {
            child,
            kind: parse_kind(kind)?,
            amount: Amount {
                bytes: number(bytes)?,
                blocks: number(blocks)?,
            },
        }),
        _ => Err("not an expectation".into()),
    }
}

fn parse_kind(word: &str) -> Result<Kind, String> {
    Kind::from_key(word).ok_or_else(|| {
        format!("unknown kind {word:?} (definitely_lost, indirectly_lost, possibly_lost, still_reachable)")
    })
}

/// The expectations for one level: the plain lines, then the lines for that level on top.
fn fold(facts: &[(Option<Level>, Fact)], level: Level) -> Result<Expect, String> {
    let mut main_seen = [false; 4];
    let mut child_seen = [false; 4];
    let mut main = ProcessExpect::default();
    let mut child = ProcessExpect::default();
    let mut exit = Exit::Code(0);
    let general = facts.iter().filter(|(l, _)| l.is_none());
    let specific = facts.iter().filter(|(l, _)| *l == Some(level));
    for (_, fact) in general.chain(specific) {
        match fact {
            Fact::Amount {
                child: is_child,
                kind,
                amount,
            } => {
                let (seen, target) = if *is_child {
                    (&mut child_seen, &mut child)
                } else {
                    (&mut main_seen, &mut main)
                };
                seen[kind.index()] = true;
                target.totals.set(*kind, *amount);
            }
            Fact::Function {
                child: is_child,
                kind,
                name,
            } => {
                let target = if *is_child { &mut child } else { &mut main };
                if !target.functions.contains(&(*kind, name.clone())) {
                    target.functions.push((*kind, name.clone()));
                }
            }
            Fact::Exit(e) => exit = *e,
        }
    }
    let missing = |seen: &[bool; 4], who: &str| -> Result<(), String> {
        match Kind::ALL.iter().find(|k| !seen[k.index()]) {
            Some(k) => Err(format!(
                "no `expect {who}{k} BYTES BLOCKS` line (at {level})"
            )),
            None => Ok(()),
        }
    };
    missing(&main_seen, "")?;
    let any_child = child_seen.iter().any(|s| *s) || !child.functions.is_empty();
    let child = if any_child {
        missing(&child_seen, "child ")?;
        Some(child)
    } else {
        None
    };
    for (kind, name) in main
        .functions
        .iter()
        .chain(child.iter().flat_map(|c| c.functions.iter()))
    {
        let totals = if main.functions.contains(&(*kind, name.clone())) {
            &main.totals
        } else {
            &child
                .as_ref()
                .expect("child functions imply a child")
                .totals
        };
        if totals.get(*kind).blocks == 0 {
            return Err(format!(
                "leak-function {name} expected for {kind}, which has no blocks (at {level})"
            ));
        }
    }
    Ok(Expect { main, child, exit })
}

/// Splits `one "two words" 'three'` into words, as a shell would (quotes, no expansions).
pub fn split_words(text: &str) -> Result<Vec<String>, String> {
    let mut words = Vec::new();
    let mut chars = text.chars().peekable();
    loop {
        while chars.peek().is_some_and(|c| c.is_whitespace()) {
            chars.next();
        }
        if chars.peek().is_none() {
            return Ok(words);
        }
        let mut word = String::new();
        while let Some(&c) = chars.peek() {
            if c.is_whitespace() {
                break;
            }
            chars.next();
            match c {
                '"' | '\'' => loop {
                    match chars.next() {
                        Some(q) if q == c => break,
                        Some(other) => word.push(other),
                        None => return Err(format!("unclosed {c} in {text:?}")),
                    }
                },
                _ => word.push(c),
            }
        }
        words.push(word);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const FULL: &str = "// A fixture.\n\
        // expect definitely_lost 4096 1\n\
        // expect indirectly_lost 0 0\n\
        // expect possibly_lost 0 0\n\
        // expect still_reachable 0 0\n\
        // expect@O2 still_reachable 8 1\n\
        // expect leak-function definitely_lost process_request\n\
        // expect signal 6\n\
        // args a \"b c\" ''\n\
        // build-extra -ldl -pthread\n\
        #include <stdlib.h>\n\
        // expect definitely_lost 1 1\n";

    #[test]
    fn header_is_parsed_per_level() {
        let h = parse_header(FULL).unwrap();
        let o0 = &h.expect[Level::O0.index()];
        let o2 = &h.expect[Level::O2.index()];
        assert_eq!(
            o0.main.totals.get(Kind::DefinitelyLost),
            Amount {
                bytes: 4096,
                blocks: 1
            }
        );
        assert_eq!(o0.main.totals.get(Kind::StillReachable), Amount::default());
        assert_eq!(o2.main.totals.get(Kind::StillReachable).bytes, 8);
        assert_eq!(o0.exit, Exit::Signal(6));
        assert_eq!(
            o0.main.functions,
            vec![(Kind::DefinitelyLost, "process_request".to_string())]
        );
        assert!(o0.child.is_none());
        assert_eq!(h.args, vec!["a", "b c", ""]);
        assert_eq!(h.build_extra, vec!["-ldl", "-pthread"]);
    }

    #[test]
    fn missing_kinds_and_typos_are_errors() {
        assert!(parse_header("// expect definitely_lost 1 1\n").is_err());
        let typo = FULL.replace("indirectly_lost 0 0", "indirect_lost 0 0");
        assert!(parse_header(&typo).unwrap_err().contains("unknown kind"));
        let bad = FULL.replace("4096 1", "4k 1");
        assert!(parse_header(&bad).is_err());
        let child_only_one = FULL.replace(
            "// expect signal 6",
            "// expect child definitely_lost 100 1",
        );
        assert!(parse_header(&child_only_one)
            .unwrap_err()
            .contains("child "));
        let function_without_blocks =
            FULL.replace("definitely_lost process_request", "possibly_lost f");
        assert!(parse_header(&function_without_blocks).is_err());
    }

    #[test]
    fn words_split_like_a_shell() {
        assert_eq!(
            split_words(r#" one  "two words" 'x y' a"b"c '' "#).unwrap(),
            vec!["one", "two words", "x y", "abc", ""]
        );
        assert!(split_words("\"open").is_err());
    }
}
