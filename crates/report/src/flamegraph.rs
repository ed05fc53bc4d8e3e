//! The SVG flamegraph: the folded stacks drawn by inferno (flamegraph.pl's renderer, ported to
//! Rust), with its search and zoom scripts, in the memory palette.

use std::fmt::Write as _;

use inferno::flamegraph::{self, color::BasicPalette, color::Palette, Options};

use crate::folded::{weighed_stacks, Weight};
use crate::text::command_line;
use crate::Report;

/// The flamegraph of `weight` over every process of the report, as an SVG document. With
/// nothing to draw (no process has any of the weighed bytes) it is a small SVG that says so:
/// a clean run still gives a valid file where a pipeline expects one.
pub fn render_flamegraph(report: &Report, weight: Weight) -> String {
    let stacks = weighed_stacks(report, weight);
    let title = format!("leakscope: {}", weight.words());
    let subtitle = command_line(&report.findings.command);
    if stacks.is_empty() {
        return nothing_to_draw(&title, &subtitle, weight);
    }
    let lines: Vec<String> = stacks
        .iter()
        .map(|(stack, bytes)| format!("{stack} {bytes}"))
        .collect();
    let mut options = Options::default();
    options.title = title;
    options.subtitle = Some(subtitle);
    options.count_name = "bytes".to_owned();
    options.colors = Palette::Basic(BasicPalette::Mem);
    // Colours from the names' hashes, not a random generator: the same report gives the same
    // bytes, and a function keeps its colour from one run to the next.
    options.hash = true;
    let mut svg = Vec::new();
    flamegraph::from_lines(&mut options, lines.iter().map(String::as_str), &mut svg)
        .expect("inferno draws non-empty folded stacks into memory without failing");
    String::from_utf8(svg).expect("inferno writes UTF-8 (the names are Rust strings)")
}

/// A valid SVG of the title and one line saying that nothing was weighed.
fn nothing_to_draw(title: &str, subtitle: &str, weight: Weight) -> String {
    let mut svg = String::new();
    let _ = write!(
        svg,
        concat!(
            "<?xml version=\"1.0\" standalone=\"no\"?>\n",
            "<svg version=\"1.1\" width=\"1200\" height=\"100\" viewBox=\"0 0 1200 100\" ",
            "xmlns=\"http://www.w3.org/2000/svg\">\n",
            "<rect x=\"0\" y=\"0\" width=\"100%\" height=\"100%\" fill=\"#eeeeee\"/>\n",
            "<text x=\"600\" y=\"24\" text-anchor=\"middle\" font-family=\"Verdana\" ",
            "font-size=\"17\">{}</text>\n",
            "<text x=\"600\" y=\"48\" text-anchor=\"middle\" font-family=\"Verdana\" ",
            "font-size=\"12\" fill=\"#a0a0a0\">{}</text>\n",
            "<text x=\"600\" y=\"80\" text-anchor=\"middle\" font-family=\"Verdana\" ",
            "font-size=\"14\">No {} in any process: nothing to draw.</text>\n",
            "</svg>\n"
        ),
        xml_escaped(title),
        xml_escaped(subtitle),
        xml_escaped(weight.words()),
    );
    svg
}

fn xml_escaped(text: &str) -> String {
    let mut escaped = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => escaped.push_str("&amp;"),
            '<' => escaped.push_str("&lt;"),
            '>' => escaped.push_str("&gt;"),
            '"' => escaped.push_str("&quot;"),
            '\'' => escaped.push_str("&apos;"),
            c => escaped.push(c),
        }
    }
    escaped
}
