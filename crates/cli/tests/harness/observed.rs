//! What a tool (memcheck or leakscope) reported about one run of a fixture.

use super::expect::{Amount, Exit, Kind, Totals};

/// One loss record: blocks of one kind allocated from one stack.
#[derive(Clone, Debug)]
pub struct Leak {
    pub kind: Kind,
    pub amount: Amount,
    /// Function names of the stack, allocating frame first, as the tool printed them.
    pub functions: Vec<String>,
}

/// The leak report of one process.
#[derive(Clone, Debug, Default)]
pub struct ProcessReport {
    pub pid: Option<u32>,
    pub totals: Totals,
    pub leaks: Vec<Leak>,
    /// How the tool says the process ended, where its report says so.
    pub exit: Option<Exit>,
    /// What the tool's suppressions hid, where it says so.
    pub suppressed: Option<Amount>,
}

impl ProcessReport {
    /// Every function printed in a loss record of `kind`, for error messages.
    pub fn functions_of(&self, kind: Kind) -> Vec<String> {
        let mut names: Vec<String> = self
            .leaks
            .iter()
            .filter(|l| l.kind == kind)
            .flat_map(|l| l.functions.iter().cloned())
            .collect();
        names.dedup();
        names.truncate(40);
        names
    }
}

/// One run of a fixture under a tool.
#[derive(Debug)]
pub struct Run {
    /// How the process the harness started ended (the tool's own exit status).
    pub exit: Exit,
    pub main: ProcessReport,
    pub children: Vec<ProcessReport>,
    /// The tool's stderr (the program's too), for error messages.
    pub stderr: Vec<u8>,
}
