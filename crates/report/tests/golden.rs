//! Golden tests of both renderers: each report is rendered and compared with a file in
//! `tests/golden/`. To accept new output after a deliberate change, run the tests with
//! `LEAKSCOPE_BLESS=1` and review the diff of the golden files.

mod common;

use std::path::PathBuf;

use leakscope_report::{render_json, render_text, Report, TextOptions};

fn check_golden(name: &str, actual: &str) {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/golden")
        .join(name);
    if std::env::var_os("LEAKSCOPE_BLESS").is_some() {
        std::fs::write(&path, actual).expect("write golden file");
        return;
    }
    let expected = std::fs::read_to_string(&path).unwrap_or_else(|error| {
        panic!(
            "cannot read {} ({error}); run with LEAKSCOPE_BLESS=1 to create it",
            path.display()
        )
    });
    assert!(
        expected == actual,
        "{name} differs from its golden file; if the change is intended, rerun with \
         LEAKSCOPE_BLESS=1 and review the diff.\n--- expected\n{expected}\n--- actual\n{actual}"
    );
}

fn plain(report: &Report) -> String {
    render_text(
        report,
        TextOptions {
            color: false,
            ..TextOptions::default()
        },
    )
}

#[test]
fn text_of_a_leaky_process() {
    check_golden("leaky.txt", &plain(&common::leaky()));
}

#[test]
fn text_of_a_leaky_process_in_colour() {
    check_golden(
        "leaky.color.txt",
        &render_text(
            &common::leaky(),
            TextOptions {
                color: true,
                ..TextOptions::default()
            },
        ),
    );
}

#[test]
fn text_of_a_watched_run() {
    check_golden("watched.txt", &plain(&common::watched()));
}

#[test]
fn json_of_a_watched_run() {
    check_golden("watched.json", &json_without_version(&common::watched()));
}

#[test]
fn text_of_a_sampled_run() {
    check_golden("sampled.txt", &plain(&common::sampled()));
}

#[test]
fn json_of_a_sampled_run() {
    check_golden("sampled.json", &json_without_version(&common::sampled()));
}

#[test]
fn text_of_a_process_that_freed_everything() {
    check_golden("clean.txt", &plain(&common::clean()));
}

#[test]
fn text_of_a_process_with_children() {
    check_golden("children.txt", &plain(&common::with_children()));
}

/// The JSON with the tool's version replaced by `<version>`, so that a release does not
/// change every golden file (the contract test checks the version itself).
fn json_without_version(report: &Report) -> String {
    let version = format!("\"version\": \"{}\"", env!("CARGO_PKG_VERSION"));
    render_json(report).replace(&version, "\"version\": \"<version>\"")
}

#[test]
fn json_of_a_leaky_process() {
    check_golden("leaky.json", &json_without_version(&common::leaky()));
}

#[test]
fn json_of_a_process_that_freed_everything() {
    check_golden("clean.json", &json_without_version(&common::clean()));
}

#[test]
fn json_of_a_process_with_children() {
    check_golden(
        "children.json",
        &json_without_version(&common::with_children()),
    );
}

#[test]
fn text_of_a_process_whose_leak_check_did_not_run() {
    let text = plain(&common::not_run());
    assert!(!text.contains("All heap blocks were freed"), "{text}");
    check_golden("not_run.txt", &text);
}

#[test]
fn json_of_a_process_whose_leak_check_did_not_run() {
    check_golden("not_run.json", &json_without_version(&common::not_run()));
}

#[test]
fn text_of_a_process_whose_leak_check_is_incomplete() {
    check_golden("incomplete.txt", &plain(&common::incomplete()));
}

#[test]
fn json_of_a_process_whose_leak_check_is_incomplete() {
    check_golden(
        "incomplete.json",
        &json_without_version(&common::incomplete()),
    );
}

#[test]
fn text_of_a_tree_whose_root_was_not_checked() {
    check_golden(
        "not_run_children.txt",
        &plain(&common::not_run_with_children()),
    );
}

/// Only a complete check may say that everything was freed, in any process of the tree.
#[test]
fn no_unchecked_process_is_called_clean() {
    let text = plain(&common::not_run_with_children());
    let sections: Vec<&str> = text.split("\n\nChild process ").collect();
    assert_eq!(sections.len(), 3, "{text}");
    assert!(sections[0].contains("LEAK SUMMARY: the leak check did not run: the agent could not map the memory the scan needs."));
    assert!(!sections[0].contains("All heap blocks were freed"));
    assert!(sections[1].contains("All heap blocks were freed"));
    assert!(
        sections[2].contains("LEAK SUMMARY: the leak check is incomplete: 1 thread did not stop")
    );
    assert!(sections[2].contains("definitely lost: 0 bytes in 0 blocks"));
    assert!(!sections[2].contains("All heap blocks were freed"));
}

#[test]
fn the_check_is_coloured_by_how_far_it_got() {
    let not_run = render_text(
        &common::not_run(),
        TextOptions {
            color: true,
            ..TextOptions::default()
        },
    );
    assert!(
        not_run.contains("\x1b[31mThe leak check did not run: "),
        "{not_run}"
    );
    let incomplete = render_text(
        &common::incomplete(),
        TextOptions {
            color: true,
            ..TextOptions::default()
        },
    );
    assert!(
        incomplete.contains("\x1b[33mThe leak check is incomplete: "),
        "{incomplete}"
    );
}

#[test]
fn plain_text_has_no_escape_codes_and_colour_text_has_them() {
    let report = common::leaky();
    assert!(!plain(&report).contains('\x1b'));
    let coloured = render_text(
        &report,
        TextOptions {
            color: true,
            ..TextOptions::default()
        },
    );
    assert!(coloured.contains("\x1b[31mdefinitely lost\x1b[0m"));
    assert!(coloured.contains("\x1b[1mprocess_request\x1b[0m"));
}

#[test]
fn rendering_is_deterministic() {
    let report = common::with_children();
    assert_eq!(plain(&report), plain(&report.clone()));
    assert_eq!(render_json(&report), render_json(&report.clone()));
}
