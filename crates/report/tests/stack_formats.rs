//! The stack formats on the hand-built reports of `common`: folded stacks line by line, the
//! SVG flamegraph parsed as XML, and the caveats the CLI prints beside them. (The pprof
//! encoder's own tests are beside it; `crates/cli/tests/e2e/formats.rs` decodes its output
//! with an independent protobuf library.)

#[allow(dead_code)] // each test file uses some of the shared reports
mod common;

use leakscope_report::{render_flamegraph, render_folded, stack_caveats, Report, Weight};

fn lines(text: &str) -> Vec<&str> {
    text.lines().collect()
}

#[test]
fn folded_stacks_weigh_lost_bytes_outermost_frame_first() {
    assert_eq!(
        lines(&render_folded(&common::leaky(), Weight::Lost)),
        [
            "pid 4242: ./prog;main (leak.c:12);process_request (leak.c:7) 4096",
            "pid 4242: ./prog;main (leak.c:13);copy_name (leak.c:22);make_copy (leak.c:15) (inlined) 64",
        ]
    );
}

#[test]
fn each_weight_takes_its_kinds() {
    let report = common::leaky();
    assert_eq!(
        lines(&render_folded(&report, Weight::Definite)),
        ["pid 4242: ./prog;main (leak.c:12);process_request (leak.c:7) 4096"]
    );
    assert_eq!(
        lines(&render_folded(&report, Weight::Indirect)),
        ["pid 4242: ./prog;main (leak.c:13);copy_name (leak.c:22);make_copy (leak.c:15) (inlined) 64"]
    );
    // Unknown frames as the text report names them: module+offset, function (in module), ???.
    let possible = "pid 4242: ./prog;shapes::Factory::build(int) (widgets.cpp:19);???;/opt/plugins/libplugin.so+0x1234;strdup (in /usr/lib/x86_64-linux-gnu/libc.so.6) 1048576";
    assert_eq!(lines(&render_folded(&report, Weight::Possible)), [possible]);
    let unrecorded = "pid 4242: ./prog;[no stack recorded] 24";
    assert_eq!(
        lines(&render_folded(&report, Weight::Reachable)),
        [unrecorded]
    );
    let live = render_folded(&report, Weight::Live);
    assert_eq!(live.lines().count(), 4);
    let total: u64 = live
        .lines()
        .map(|line| line.rsplit_once(' ').unwrap().1.parse::<u64>().unwrap())
        .sum();
    assert_eq!(
        total,
        4096 + 64 + 1_048_576 + 24,
        "every block of every kind"
    );
}

#[test]
fn each_process_of_a_tree_is_a_root_frame() {
    let report = common::with_children();
    assert_eq!(
        lines(&render_folded(&report, Weight::Lost)),
        ["pid 5000: ./server;accept_client (server.c:40) 100"]
    );
    let caveats = stack_caveats(&report, Weight::Lost);
    assert!(
        caveats.iter().any(|c| c.starts_with(
            "pid 5001: ./server: the leak check did not run: the process was killed by SIGKILL"
        ) && c.ends_with("its blocks are missing from these stacks")),
        "{caveats:#?}"
    );
    // An image that exec started has its own root frame, not merged with the one before it.
    let mut executed = common::leaky();
    executed.findings.started_by = leakscope_analysis::StartedBy::Exec;
    assert!(render_folded(&executed, Weight::Lost).starts_with("pid 4242: ./prog (after exec);"));
}

#[test]
fn caveats_say_what_the_stacks_cannot() {
    let sampled = stack_caveats(&common::sampled(), Weight::Lost);
    assert!(
        sampled
            .iter()
            .any(|c| c.contains("the bytes of each stack are estimates")
                && c.contains("1200 bytes in 3 blocks that were not sampled")),
        "{sampled:#?}"
    );
    let leaky = stack_caveats(&common::leaky(), Weight::Lost);
    assert!(
        leaky
            .iter()
            .any(|c| c.starts_with("pid 4242: ./prog: note: the agent's stack walks")),
        "{leaky:#?}"
    );
    assert!(!leaky.iter().any(|c| c.contains("nothing to draw")));
    assert_eq!(
        stack_caveats(&common::clean(), Weight::Lost),
        ["no definitely and indirectly lost bytes in any process: there is nothing to draw"]
    );
    assert!(render_folded(&common::clean(), Weight::Lost).is_empty());
}

/// The SVG parsed as XML. inferno's SVG declares the SVG 1.1 DTD, which roxmltree refuses
/// unless asked (it does not fetch it, nor need it).
fn parsed(svg: &str) -> roxmltree::Document<'_> {
    let options = roxmltree::ParsingOptions {
        allow_dtd: true,
        ..roxmltree::ParsingOptions::default()
    };
    roxmltree::Document::parse_with_options(svg, options)
        .expect("the flamegraph is well-formed XML")
}

/// The `<title>` texts of the SVG's frames (inferno's tooltips: `name (N bytes, P%)`).
fn titles(svg: &str) -> Vec<String> {
    let document = parsed(svg);
    assert_eq!(document.root_element().tag_name().name(), "svg");
    document
        .descendants()
        .filter(|node| node.has_tag_name("title"))
        .filter_map(|node| node.text().map(str::to_owned))
        .collect()
}

#[test]
fn the_flamegraph_is_svg_with_a_frame_per_function() {
    let svg = render_flamegraph(&common::leaky(), Weight::Lost);
    let titles = titles(&svg);
    for expected in [
        "pid 4242: ./prog (4,160 bytes, 100.00%)",
        "process_request (leak.c:7) (4,096 bytes, 98.46%)",
        "make_copy (leak.c:15) (inlined) (64 bytes, 1.54%)",
    ] {
        assert!(
            titles.iter().any(|t| t == expected),
            "no frame titled {expected:?} in {titles:#?}"
        );
    }
    assert!(svg.contains("definitely and indirectly lost bytes"));
    assert_eq!(
        svg,
        render_flamegraph(&common::leaky(), Weight::Lost),
        "the same report gives the same SVG"
    );
}

#[test]
fn a_flamegraph_of_nothing_says_so_in_valid_svg() {
    let report: Report = common::clean();
    let svg = render_flamegraph(&report, Weight::Lost);
    parsed(&svg);
    assert!(
        svg.contains("No definitely and indirectly lost bytes in any process: nothing to draw."),
        "{svg}"
    );
}
