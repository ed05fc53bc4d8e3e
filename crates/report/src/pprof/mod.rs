//! The pprof profile: gzipped `profile.proto`, as `go tool pprof`, Pyroscope, Parca and
//! speedscope read it.
//!
//! One sample per loss record (a stack and a memcheck kind), with six values: Go's heap
//! profile's `inuse_objects`/`inuse_space` (every block still allocated at exit), then
//! `lost_objects`/`lost_space` (definitely and indirectly lost) and
//! `possibly_lost_objects`/`possibly_lost_space`. Go's `alloc_objects`/`alloc_space` are left
//! out: the profile records what is live, not what each stack allocated over the run. Labels
//! carry what is not a value: the kind, the process, and the site's growth verdict.
//!
//! A JavaScript allocation site (V8's sampling heap profiler, per isolate) is one sample more,
//! with its JavaScript stack: `inuse_space` is the site's estimated live bytes at the last
//! heap sample, and its other values are 0 (V8's profile gives bytes, not objects, and a
//! garbage-collected heap has no lost blocks). Its `runtime` label is `javascript`, with the
//! isolate's `thread` and the site's verdict, rate and times to exhaustion as labels.

mod proto;

use std::collections::HashMap;
use std::io::Write as _;

use flate2::{write::GzEncoder, Compression};
use prost::Message as _;

use leakscope_analysis::{LossRecord, ScriptFrame, ScriptIsolate, ScriptSite, SiteGrowth};
use leakscope_format::{Frame, FrameKind, LeakKind, StackId};

use crate::folded::{stack_caveats, Weight};
use crate::{ProcessReport, Report};

/// The sample types, in the order of each sample's values; Go's names where Go has the
/// measure. A count at index 0, as profile.proto asks.
pub const SAMPLE_TYPES: [(&str, &str); 6] = [
    ("inuse_objects", "count"),
    ("inuse_space", "bytes"),
    ("lost_objects", "count"),
    ("lost_space", "bytes"),
    ("possibly_lost_objects", "count"),
    ("possibly_lost_space", "bytes"),
];

impl Weight {
    /// The pprof sample type that weighs what this weight does, if there is one: pprof's
    /// values are fixed, and the kinds without their own (definitely, indirectly lost, still
    /// reachable alone) are told apart by the samples' `kind` label instead.
    pub fn pprof_sample_type(self) -> Option<&'static str> {
        match self {
            Weight::Lost => Some("lost_space"),
            Weight::Possible => Some("possibly_lost_space"),
            Weight::Live => Some("inuse_space"),
            Weight::Definite | Weight::Indirect | Weight::Reachable => None,
        }
    }
}

/// The gzipped profile, with `default` (see [`Weight::pprof_sample_type`]) as the sample type a
/// viewer shows first, or `None` when that weight has no sample type of its own. The
/// [`stack_caveats`] are in its comments.
pub fn render_pprof(report: &Report, default: Weight) -> Option<Vec<u8>> {
    let default_type = default.pprof_sample_type()?;
    let mut builder = Builder::default();
    builder.string(""); // string_table[0] must be "".
    let mut profile = proto::Profile {
        sample_type: SAMPLE_TYPES
            .iter()
            .map(|&(kind, unit)| builder.value_type(kind, unit))
            .collect(),
        default_sample_type: builder.string(default_type),
        ..proto::Profile::default()
    };
    let root = ProcessReport::root(report);
    // The main binary is mapping[0], as the format wants: the first module the agent saw.
    if let Some(main) = report
        .facts
        .get(root.findings.profile)
        .and_then(|facts| facts.modules.first())
    {
        builder.mapping(root.findings.profile, 0, main);
    }
    for process in root.every() {
        let growth: HashMap<StackId, &SiteGrowth> = process
            .findings
            .growth
            .iter()
            .map(|site| (site.stack, site))
            .collect();
        for record in &process.leaks.records {
            let sample = builder.sample(report, &process, record, growth.get(&record.stack));
            profile.sample.push(sample);
        }
        for isolate in &process.findings.scripts {
            for site in &isolate.sites {
                let sample = builder.script_sample(&process, isolate, site);
                profile.sample.push(sample);
            }
        }
    }
    if let Some(facts) = report.facts.get(root.findings.profile) {
        profile.time_nanos = facts.start_unix_ns.map_or(0, saturating_i64);
    }
    if root.duration_s.is_finite() && root.duration_s > 0.0 {
        profile.duration_nanos = (root.duration_s * 1e9) as i64;
    }
    // As Go's heap profiles: the period is the sampling distance in bytes; 1 when every
    // allocation's stack was recorded (the values need no scaling either way: sampling's
    // estimates are already scaled up).
    profile.period_type = Some(builder.value_type("space", "bytes"));
    profile.period = root.leaks.sample_rate.map_or(1, saturating_i64);
    for caveat in stack_caveats(report, default) {
        let index = builder.string(&caveat);
        profile.comment.push(index);
    }
    builder.finish(&mut profile);
    let mut encoder = GzEncoder::new(Vec::new(), Compression::default());
    encoder
        .write_all(&profile.encode_to_vec())
        .expect("gzip into memory does not fail");
    Some(encoder.finish().expect("gzip into memory does not fail"))
}

fn saturating_i64(value: u64) -> i64 {
    i64::try_from(value).unwrap_or(i64::MAX)
}

/// The tables of a profile being built: strings, functions, locations and mappings, each
/// interned, with ids in the order of first use (so the same report gives the same bytes).
#[derive(Default)]
struct Builder {
    strings: Vec<String>,
    string_ids: HashMap<String, i64>,
    functions: Vec<proto::Function>,
    function_ids: HashMap<(i64, i64), u64>,
    locations: Vec<proto::Location>,
    location_ids: HashMap<LocationKey, u64>,
    mappings: Vec<proto::Mapping>,
    /// By (profile of the tree, index of the module in its profile).
    mapping_ids: HashMap<(usize, usize), u64>,
}

/// What makes two locations the same: their mapping, address and lines.
#[derive(Clone, PartialEq, Eq, Hash)]
struct LocationKey {
    mapping_id: u64,
    address: u64,
    lines: Vec<(u64, i64)>,
}

impl Builder {
    fn string(&mut self, text: &str) -> i64 {
        if let Some(&id) = self.string_ids.get(text) {
            return id;
        }
        let id = self.strings.len() as i64;
        self.strings.push(text.to_owned());
        self.string_ids.insert(text.to_owned(), id);
        id
    }

    fn value_type(&mut self, kind: &str, unit: &str) -> proto::ValueType {
        proto::ValueType {
            r#type: self.string(kind),
            unit: self.string(unit),
        }
    }

    fn label_str(&mut self, key: &str, value: &str) -> proto::Label {
        proto::Label {
            key: self.string(key),
            str: self.string(value),
            ..proto::Label::default()
        }
    }

    fn label_num(&mut self, key: &str, num: i64, unit: &str) -> proto::Label {
        proto::Label {
            key: self.string(key),
            num,
            num_unit: if unit.is_empty() {
                0
            } else {
                self.string(unit)
            },
            ..proto::Label::default()
        }
    }

    /// The sample of one loss record of `process`.
    fn sample(
        &mut self,
        report: &Report,
        process: &ProcessReport,
        record: &LossRecord,
        growth: Option<&&SiteGrowth>,
    ) -> proto::Sample {
        let (bytes, blocks) = (
            saturating_i64(record.amount.bytes),
            saturating_i64(record.amount.blocks),
        );
        let lost = matches!(
            record.kind,
            LeakKind::DefinitelyLost | LeakKind::IndirectlyLost
        );
        let possibly = record.kind == LeakKind::PossiblyLost;
        let value = vec![
            blocks,
            bytes,
            if lost { blocks } else { 0 },
            if lost { bytes } else { 0 },
            if possibly { blocks } else { 0 },
            if possibly { bytes } else { 0 },
        ];
        let location_id = self.locations_of(report, process, process.frames_of(record.stack));
        let mut label = vec![
            self.label_str("kind", record.kind.json_name()),
            self.label_num("pid", i64::from(process.pid), ""),
        ];
        if let Some(program) = process.command.first() {
            label.push(self.label_str("program", program));
        }
        if let Some(site) = growth {
            self.growth_labels(
                &mut label,
                site.verdict.json_name(),
                site.bytes_per_s,
                &[("seconds_to_exhaustion", site.exhaustion_s)],
            );
        }
        proto::Sample {
            location_id,
            value,
            label,
        }
    }

    /// A site's verdict, growth rate and times to exhaustion (those known and finite), as
    /// labels.
    fn growth_labels(
        &mut self,
        label: &mut Vec<proto::Label>,
        verdict: &str,
        bytes_per_s: f64,
        exhaustion: &[(&str, Option<f64>)],
    ) {
        label.push(self.label_str("verdict", verdict));
        if bytes_per_s.is_finite() {
            label.push(self.label_num(
                "growth_bytes_per_second",
                bytes_per_s.round() as i64,
                "bytes",
            ));
        }
        for &(key, seconds) in exhaustion {
            if let Some(seconds) = seconds.filter(|s| s.is_finite()) {
                label.push(self.label_num(key, seconds.round() as i64, "seconds"));
            }
        }
    }

    /// The sample of one JavaScript allocation site of an isolate of `process`.
    fn script_sample(
        &mut self,
        process: &ProcessReport,
        isolate: &ScriptIsolate,
        site: &ScriptSite,
    ) -> proto::Sample {
        let location_id = site
            .frames
            .iter()
            .map(|frame| self.script_location(frame))
            .collect();
        let mut label = vec![
            self.label_str("runtime", "javascript"),
            self.label_num("pid", i64::from(process.pid), ""),
            self.label_num("thread", i64::from(isolate.thread), ""),
        ];
        if let Some(program) = process.command.first() {
            label.push(self.label_str("program", program));
        }
        self.growth_labels(
            &mut label,
            site.verdict.json_name(),
            site.bytes_per_s,
            &[
                ("seconds_to_exhaustion", site.exhaustion_s),
                ("seconds_to_heap_limit", site.heap_exhaustion_s),
            ],
        );
        proto::Sample {
            location_id,
            value: vec![0, saturating_i64(site.live_bytes_last), 0, 0, 0, 0],
            label,
        }
    }

    /// The location of a JavaScript frame: in no mapping, one line.
    fn script_location(&mut self, frame: &ScriptFrame) -> u64 {
        let name = self.string(&frame.function);
        let filename = self.string(&frame.url);
        let function = self.function_id(name, filename);
        self.location_id(LocationKey {
            mapping_id: 0,
            address: 0,
            lines: vec![(function, i64::from(frame.line))],
        })
    }

    /// The locations of a stack, leaf first. A native frame and the frames inlined into it
    /// (which repeat its address, marked `inlined`, before it) are one location with a line
    /// each; an interpreter frame is a location of its own, in no mapping.
    fn locations_of(
        &mut self,
        report: &Report,
        process: &ProcessReport,
        frames: &[Frame],
    ) -> Vec<u64> {
        let mut ids = Vec::new();
        let mut group: Vec<&Frame> = Vec::new();
        for frame in frames {
            group.push(frame);
            if frame.kind == FrameKind::Native && frame.inlined {
                continue; // its caller, at the same address, closes the location
            }
            ids.push(self.location(report, process, &group));
            group.clear();
        }
        if !group.is_empty() {
            // A stack cut (by --max-frames) after an inlined frame.
            ids.push(self.location(report, process, &group));
        }
        ids
    }

    fn location(&mut self, report: &Report, process: &ProcessReport, group: &[&Frame]) -> u64 {
        let last = group.last().expect("a location has at least one frame");
        let (mapping_id, address) = if last.kind == FrameKind::Native {
            (self.mapping_of(report, process, last.address), last.address)
        } else {
            (0, 0)
        };
        let lines: Vec<(u64, i64)> = group
            .iter()
            .filter_map(|frame| {
                let function = self.function(frame)?;
                Some((function, frame.line.map_or(0, i64::from)))
            })
            .collect();
        self.location_id(LocationKey {
            mapping_id,
            address,
            lines,
        })
    }

    /// The id of the location `key` describes, made if new.
    fn location_id(&mut self, key: LocationKey) -> u64 {
        if let Some(&id) = self.location_ids.get(&key) {
            return id;
        }
        let id = self.locations.len() as u64 + 1;
        self.locations.push(proto::Location {
            id,
            mapping_id: key.mapping_id,
            address: key.address,
            line: key
                .lines
                .iter()
                .map(|&(function_id, line)| proto::Line { function_id, line })
                .collect(),
        });
        self.location_ids.insert(key, id);
        id
    }

    /// The function of a frame, if it has a name.
    fn function(&mut self, frame: &Frame) -> Option<u64> {
        let name = self.string(frame.function.as_deref()?);
        let filename = frame.file.as_deref().map_or(0, |file| self.string(file));
        Some(self.function_id(name, filename))
    }

    /// The id of the function of these interned name and file name, made if new.
    fn function_id(&mut self, name: i64, filename: i64) -> u64 {
        if let Some(&id) = self.function_ids.get(&(name, filename)) {
            return id;
        }
        let id = self.functions.len() as u64 + 1;
        self.functions.push(proto::Function {
            id,
            name,
            // The symbolizer demangles and keeps no mangled name (and V8 gives one name): the
            // name is all there is.
            system_name: name,
            filename,
        });
        self.function_ids.insert((name, filename), id);
        id
    }

    /// The mapping of the module holding `address` in the process's profile; 0 when the
    /// profile's modules are not known or none holds it (JIT code).
    fn mapping_of(&mut self, report: &Report, process: &ProcessReport, address: u64) -> u64 {
        let Some(facts) = report.facts.get(process.findings.profile) else {
            return 0;
        };
        match facts
            .modules
            .iter()
            .position(|module| module.contains(address))
        {
            Some(index) => self.mapping(process.findings.profile, index, &facts.modules[index]),
            None => 0,
        }
    }

    fn mapping(&mut self, profile: usize, index: usize, module: &leakscope_format::Module) -> u64 {
        if let Some(&id) = self.mapping_ids.get(&(profile, index)) {
            return id;
        }
        let id = self.mappings.len() as u64 + 1;
        let build_id = module.build_id.iter().fold(String::new(), |mut hex, byte| {
            use std::fmt::Write as _;
            let _ = write!(hex, "{byte:02x}");
            hex
        });
        let mapping = proto::Mapping {
            id,
            memory_start: module.start,
            memory_limit: module.end,
            // The agent records where the module's first loaded segment starts, and linkers
            // put that segment at the start of the file.
            file_offset: 0,
            filename: self.string(&module.path),
            build_id: if build_id.is_empty() {
                0
            } else {
                self.string(&build_id)
            },
            ..proto::Mapping::default()
        };
        self.mappings.push(mapping);
        self.mapping_ids.insert((profile, index), id);
        id
    }

    /// Move the tables into the profile, with each mapping's `has_*` flags saying what its
    /// locations really carry (a viewer symbolizes again only what is not there).
    fn finish(mut self, profile: &mut proto::Profile) {
        for location in &self.locations {
            let Some(mapping) = location
                .mapping_id
                .checked_sub(1)
                .and_then(|index| self.mappings.get_mut(index as usize))
            else {
                continue;
            };
            mapping.has_functions |= !location.line.is_empty();
            mapping.has_line_numbers |= location.line.iter().any(|line| line.line > 0);
            mapping.has_inline_frames |= location.line.len() > 1;
            mapping.has_filenames |= location.line.iter().any(|line| {
                self.functions
                    .get(line.function_id as usize - 1)
                    .is_some_and(|function| function.filename != 0)
            });
        }
        profile.string_table = std::mem::take(&mut self.strings);
        profile.function = self.functions;
        profile.location = self.locations;
        profile.mapping = self.mappings;
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;
    use std::io::Read as _;

    use leakscope_analysis::growth::Verdict;
    use leakscope_analysis::{Amount, Findings, LeakCheck, Leaks};
    use leakscope_format::Module;

    use super::*;
    use crate::ProfileFacts;

    const PROGRAM: &str = "/srv/prog";

    fn native(address: u64, function: &str, line: u32, inlined: bool) -> Frame {
        Frame {
            address,
            function: Some(function.to_owned()),
            file: Some("/src/prog.c".to_owned()),
            line: Some(line),
            module: Some(PROGRAM.to_owned()),
            module_offset: Some(address - 0x5000),
            inlined,
            ..Frame::default()
        }
    }

    fn record(stack: StackId, kind: LeakKind, bytes: u64, blocks: u64) -> LossRecord {
        LossRecord {
            kind,
            stack,
            amount: Amount { bytes, blocks },
            estimated: false,
        }
    }

    /// One process: a definitely lost record with an inlined frame, a still reachable one at
    /// a growing site with a Python frame, a possibly lost one with an unknown frame.
    fn report() -> Report {
        let findings = Findings {
            pid: 42,
            command: vec!["./prog".to_owned()],
            duration_s: 2.5,
            leaks: Leaks {
                records: vec![
                    record(1, LeakKind::DefinitelyLost, 4096, 2),
                    record(2, LeakKind::StillReachable, 100, 10),
                    record(3, LeakKind::PossiblyLost, 7, 1),
                ],
                leak_check: LeakCheck {
                    shortfalls: Vec::new(),
                },
                ..Leaks::default()
            },
            growth: vec![SiteGrowth {
                stack: 2,
                verdict: Verdict::Growing,
                bytes_per_s: 1234.4,
                live_bytes_first: 0,
                live_bytes_last: 100,
                live_bytes_peak: 100,
                live_blocks_last: 10,
                confidence: 0.99,
                oldest_block_age_s: Some(2.0),
                exhaustion_s: Some(3600.2),
            }],
            ..Findings::default()
        };
        let frames = BTreeMap::from([
            (
                1,
                vec![
                    native(0x5100, "make_copy", 15, true),
                    native(0x5100, "copy_name", 22, false),
                    native(0x5200, "main", 30, false),
                ],
            ),
            (
                2,
                vec![
                    native(0x5300, "PyObject_Malloc", 9, false),
                    Frame {
                        kind: FrameKind::Python,
                        function: Some("make_record".to_owned()),
                        file: Some("job.py".to_owned()),
                        line: Some(5),
                        ..Frame::default()
                    },
                    native(0x5200, "main", 30, false),
                ],
            ),
            (
                3,
                vec![Frame {
                    address: 0xdead_beef,
                    ..Frame::default()
                }],
            ),
        ]);
        let facts = ProfileFacts {
            start_unix_ns: Some(1_700_000_000_000_000_000),
            modules: vec![Module {
                load_bias: 0x5000,
                start: 0x5000,
                end: 0x6000,
                path: PROGRAM.to_owned(),
                build_id: vec![0xab, 0x01],
            }],
        };
        Report::new(findings, vec![frames], &[]).with_facts(vec![facts])
    }

    fn decoded(gzipped: &[u8]) -> proto::Profile {
        let mut bytes = Vec::new();
        flate2::read::GzDecoder::new(gzipped)
            .read_to_end(&mut bytes)
            .expect("the profile is gzipped");
        proto::Profile::decode(bytes.as_slice()).expect("the profile decodes")
    }

    fn text(profile: &proto::Profile, index: i64) -> &str {
        &profile.string_table[index as usize]
    }

    #[test]
    fn samples_carry_every_kind_with_go_names_and_lost_by_default() {
        let profile = decoded(&render_pprof(&report(), Weight::Lost).unwrap());
        assert_eq!(text(&profile, 0), "");
        let types: Vec<(&str, &str)> = profile
            .sample_type
            .iter()
            .map(|t| (text(&profile, t.r#type), text(&profile, t.unit)))
            .collect();
        assert_eq!(types, SAMPLE_TYPES);
        assert_eq!(text(&profile, profile.default_sample_type), "lost_space");
        let values: Vec<&[i64]> = profile.sample.iter().map(|s| s.value.as_slice()).collect();
        assert_eq!(
            values,
            [
                &[2, 4096, 2, 4096, 0, 0][..],
                &[10, 100, 0, 0, 0, 0],
                &[1, 7, 0, 0, 1, 7],
            ]
        );
        assert_eq!(profile.time_nanos, 1_700_000_000_000_000_000);
        assert_eq!(profile.duration_nanos, 2_500_000_000);
        assert_eq!(profile.period, 1);
        let period_type = profile.period_type.as_ref().unwrap();
        assert_eq!(text(&profile, period_type.r#type), "space");
        assert_eq!(text(&profile, period_type.unit), "bytes");
        let live = decoded(&render_pprof(&report(), Weight::Live).unwrap());
        assert_eq!(text(&live, live.default_sample_type), "inuse_space");
        assert!(render_pprof(&report(), Weight::Definite).is_none());
    }

    #[test]
    fn inlined_frames_share_a_location_and_python_frames_have_no_mapping() {
        let profile = decoded(&render_pprof(&report(), Weight::Lost).unwrap());
        let location = |id: u64| &profile.location[id as usize - 1];
        let function_name = |id: u64| {
            let function = &profile.function[id as usize - 1];
            (
                text(&profile, function.name),
                text(&profile, function.filename),
            )
        };
        let lost = &profile.sample[0];
        assert_eq!(
            lost.location_id.len(),
            2,
            "make_copy is inlined into copy_name"
        );
        let leaf = location(lost.location_id[0]);
        assert_eq!(leaf.address, 0x5100);
        assert_eq!(leaf.mapping_id, 1);
        let lines: Vec<_> = leaf
            .line
            .iter()
            .map(|line| (function_name(line.function_id).0, line.line))
            .collect();
        assert_eq!(lines, [("make_copy", 15), ("copy_name", 22)]);

        let reachable = &profile.sample[1];
        assert_eq!(
            reachable.location_id[2], lost.location_id[1],
            "main at the same address is one location"
        );
        let python = location(reachable.location_id[1]);
        assert_eq!((python.mapping_id, python.address), (0, 0));
        assert_eq!(
            function_name(python.line[0].function_id),
            ("make_record", "job.py")
        );
        assert_eq!(python.line[0].line, 5);

        let unknown = location(profile.sample[2].location_id[0]);
        assert_eq!(
            (unknown.mapping_id, unknown.address, unknown.line.len()),
            (0, 0xdead_beef, 0),
            "an address in no module has no mapping and no line"
        );

        assert_eq!(profile.mapping.len(), 1);
        let mapping = &profile.mapping[0];
        assert_eq!(
            (
                mapping.memory_start,
                mapping.memory_limit,
                mapping.file_offset
            ),
            (0x5000, 0x6000, 0)
        );
        assert_eq!(text(&profile, mapping.filename), PROGRAM);
        assert_eq!(text(&profile, mapping.build_id), "ab01");
        assert!(
            mapping.has_functions
                && mapping.has_filenames
                && mapping.has_line_numbers
                && mapping.has_inline_frames
        );
    }

    #[test]
    fn labels_name_the_kind_the_process_and_the_growth_verdict() {
        let profile = decoded(&render_pprof(&report(), Weight::Lost).unwrap());
        let labels = |sample: &proto::Sample| -> Vec<(String, String)> {
            sample
                .label
                .iter()
                .map(|label| {
                    let value = if label.str != 0 {
                        text(&profile, label.str).to_owned()
                    } else if label.num_unit != 0 {
                        format!("{} {}", label.num, text(&profile, label.num_unit))
                    } else {
                        label.num.to_string()
                    };
                    (text(&profile, label.key).to_owned(), value)
                })
                .collect()
        };
        let owned = |pairs: &[(&str, &str)]| -> Vec<(String, String)> {
            pairs
                .iter()
                .map(|&(k, v)| (k.to_owned(), v.to_owned()))
                .collect()
        };
        assert_eq!(
            labels(&profile.sample[0]),
            owned(&[
                ("kind", "definitely_lost"),
                ("pid", "42"),
                ("program", "./prog")
            ])
        );
        assert_eq!(
            labels(&profile.sample[1]),
            owned(&[
                ("kind", "still_reachable"),
                ("pid", "42"),
                ("program", "./prog"),
                ("verdict", "growing"),
                ("growth_bytes_per_second", "1234 bytes"),
                ("seconds_to_exhaustion", "3600 seconds"),
            ])
        );
    }

    #[test]
    fn the_same_report_gives_the_same_bytes() {
        assert_eq!(
            render_pprof(&report(), Weight::Lost),
            render_pprof(&report(), Weight::Lost)
        );
    }
}
