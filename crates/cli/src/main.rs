//! `leakscope`: the start and the end of the pipe. It runs the target with the agent
//! preloaded, then reads the profile, analyses it, symbolizes what the findings name, and
//! renders the report. See `pipeline.rs` for the data flow in one place.

mod agent;
mod args;
mod cmd;
mod error;
mod jvm;
mod node;
mod pipeline;
mod preflight;
mod progress;
mod signals;

use clap::Parser;

use crate::args::{Cli, Command};

fn main() {
    let cli = Cli::parse();
    let outcome = match cli.command {
        Command::Run(args) => cmd::run::run(args),
        Command::Report(args) => cmd::report::report(args),
        Command::Diff(args) => cmd::diff::diff(args),
        Command::Dump { file } => cmd::dump::dump(&file),
    };
    match outcome {
        Ok(code) => std::process::exit(code),
        Err(failure) => {
            eprintln!("leakscope: {failure}");
            std::process::exit(failure.code as i32);
        }
    }
}
