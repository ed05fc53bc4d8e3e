//! The Java classes of a JVM that `leakscope run` watched (the Java chunks of the profile):
//! each class's live bytes over the class histograms get the verdict native sites get
//! ([`crate::growth::classify`], the same statistics and thresholds), with the rate and the
//! time until the Java heap (its maximum size) and the machine would run out; a growing class
//! gets the path from a GC root that the flight recorder's old object samples show, and the
//! allocation stack of the sampled objects. See docs/decisions/0013-jvm.md.

use std::collections::BTreeMap;

use leakscope_format::{JavaFrame, JavaOldObject, JavaStatus, Profile};

use crate::growth::{self, Verdict, MIN_POINTS, MIN_SPAN_S};

/// Bounded classes kept (the largest by peak bytes): growing and plateau classes are all kept.
pub const BOUNDED_CLASSES_SHOWN: usize = 10;
/// Points kept of each class's series for the charts.
pub const CHART_POINTS: usize = 200;

/// What the analysis found about the JVM of one process image.
#[derive(Clone, Debug, PartialEq)]
pub struct JavaFindings {
    /// How far `leakscope run` got with the JVM.
    pub status: JavaStatus,
    /// Why it did not get further (the status is not `Watched`).
    pub reason: Option<String>,
    /// The JDK's version (`17.0.15`), if known.
    pub version: Option<String>,
    /// The garbage collector (`G1`, `Serial`), if known.
    pub collector: Option<String>,
    /// The Java heap's maximum size, if known.
    pub max_heap_bytes: Option<u64>,
    /// The first interval between histograms, in seconds.
    pub interval_s: f64,
    /// The Java heap in use after each histogram's collection.
    pub heap: Vec<HeapPoint>,
    /// What the histograms cost the program.
    pub pauses: Option<Pauses>,
    /// Verdicts per class, growing first (fastest first), then plateaus, then the largest
    /// bounded classes.
    pub classes: Vec<ClassGrowth>,
    /// Old object samples the flight recorder kept.
    pub old_object_samples: usize,
    /// The flight recording was read (paths to GC roots can be shown).
    pub recorded: bool,
    /// Blobs of the JVM's code cache its perf maps listed (0: JIT-compiled frames in native
    /// stacks are not named).
    pub code_blobs: usize,
}

/// The Java heap at one histogram.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct HeapPoint {
    /// Seconds since the process started.
    pub t_s: f64,
    /// Bytes of live objects.
    pub bytes: u64,
    /// Live objects.
    pub instances: u64,
}

/// The pauses of the class histograms.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Pauses {
    /// How many.
    pub count: usize,
    /// Measured by the JVM's flight recorder (the stop-the-world operation); false: by
    /// leakscope, from asking to the end of the answer (an upper bound).
    pub by_the_jvm: bool,
    /// The longest, in ms.
    pub max_ms: f64,
    /// The median, in ms.
    pub median_ms: f64,
    /// All of them together, in ms.
    pub total_ms: f64,
    /// The longest garbage collection within them, in ms (flight recorder only).
    pub gc_max_ms: Option<f64>,
}

/// One class's verdict and the numbers behind it.
#[derive(Clone, Debug, PartialEq)]
pub struct ClassGrowth {
    /// The class, as the histogram names it.
    pub class: String,
    /// What its live bytes did.
    pub verdict: Verdict,
    /// How sure the verdict is, 0..1.
    pub confidence: f64,
    /// Theil–Sen slope of its live bytes, bytes per second.
    pub bytes_per_s: f64,
    /// Theil–Sen slope of its live instances, per second.
    pub instances_per_s: f64,
    /// Instances at the last histogram.
    pub instances_last: u64,
    /// Bytes at the last histogram.
    pub bytes_last: u64,
    /// The most bytes at any histogram.
    pub bytes_peak: u64,
    /// The oldest sampled object of this class, seconds before the recording ended.
    pub oldest_sample_age_s: Option<f64>,
    /// Growing only: seconds until the Java heap's free room (its maximum size less what was
    /// in use at the last histogram) is used up at `bytes_per_s`.
    pub heap_exhaustion_s: Option<f64>,
    /// Growing only: seconds until the machine's available memory is used up.
    pub machine_exhaustion_s: Option<f64>,
    /// The most common path from a GC root to objects of this class, among the old object
    /// samples.
    pub held_by: Option<PathToRoot>,
    /// The most common allocation stack of sampled objects of this class (or of objects it
    /// holds, when none of its own was sampled).
    pub allocated_at: Option<AllocationSite>,
    /// Its live bytes over time, `(seconds, bytes)`, thinned to [`CHART_POINTS`].
    pub series: Vec<(f64, u64)>,
}

/// A path from a GC root to an object of a class.
#[derive(Clone, Debug, PartialEq)]
pub struct PathToRoot {
    /// What kind of root (`Class Loader Data`, `Threads`, `JNI Global`), and its type and
    /// description where the recorder gives them.
    pub root: String,
    /// The objects, from the root to one of the class.
    pub links: Vec<PathLink>,
    /// Samples whose path has this shape.
    pub samples: usize,
    /// Samples of the class (or holding it) with any path.
    pub of_samples: usize,
}

/// One object on a path to a root.
#[derive(Clone, Debug, PartialEq)]
pub struct PathLink {
    /// Its class.
    pub class: String,
    /// What the JVM says of it (`Size: 4343`; `Class Name: Main` for a class object).
    pub description: String,
    /// The field of it that points to the next object (empty: an array element, or the end).
    pub field: String,
    /// The array element that points to the next object: `(index, length)`.
    pub element: Option<(u32, u32)>,
    /// Objects the recorder left out after this one.
    pub skipped: u32,
}

/// Where sampled objects were allocated.
#[derive(Clone, Debug, PartialEq)]
pub struct AllocationSite {
    /// The sampled objects' class: the class itself, or (when none of its own objects was
    /// sampled) a class of objects it holds.
    pub sampled_class: String,
    /// The stack, innermost first.
    pub frames: Vec<JavaFrame>,
    /// Samples with this stack.
    pub samples: usize,
}

/// The Java findings of a profile; None when `leakscope run` found no JVM in it.
pub fn java(profile: &Profile) -> Option<JavaFindings> {
    let record = &profile.java;
    let vm = record.vm.as_ref()?;
    let non_empty = |text: &str| (!text.is_empty()).then(|| text.to_owned());
    let heap: Vec<HeapPoint> = record
        .histograms
        .iter()
        .map(|h| HeapPoint {
            t_s: profile.java_seconds(h.unix_ns),
            bytes: h.total_bytes,
            instances: h.total_instances,
        })
        .collect();
    let available = crate::growth::last_available_bytes(profile);
    let max_heap = (vm.max_heap_bytes > 0).then_some(vm.max_heap_bytes);
    let heap_free = max_heap.map(|max| max.saturating_sub(heap.last().map_or(0, |p| p.bytes)));

    let times: Vec<f64> = heap.iter().map(|p| p.t_s).collect();
    let run_length_s = match (times.first(), times.last()) {
        (Some(first), Some(last)) => last - first,
        _ => 0.0,
    };
    let mut classes = Vec::new();
    for (class_id, series) in record.class_series() {
        let peak = series.iter().map(|&(_, _, bytes)| bytes).max().unwrap_or(0);
        if peak == 0 {
            continue;
        }
        let first_t = profile.java_seconds(series[0].0);
        // A class first listed after the first histogram had no live objects before.
        let index = times.partition_point(|&t| t < first_t);
        let mut bytes_points: Vec<(f64, f64)> = Vec::with_capacity(series.len() + 1);
        let mut instance_points: Vec<(f64, f64)> = Vec::with_capacity(series.len() + 1);
        if index > 0 {
            bytes_points.push((times[index - 1], 0.0));
            instance_points.push((times[index - 1], 0.0));
        }
        for &(unix_ns, instances, bytes) in &series {
            let t = profile.java_seconds(unix_ns);
            bytes_points.push((t, bytes as f64));
            instance_points.push((t, instances as f64));
        }
        let span = bytes_points.last().map_or(0.0, |p| p.0) - bytes_points[0].0;
        if bytes_points.len() < MIN_POINTS || span < MIN_SPAN_S {
            continue; // too few histograms for a verdict
        }
        let name = record.class_name(class_id);
        let own_samples: Vec<&JavaOldObject> = record
            .old_objects
            .iter()
            .filter(|o| o.class == class_id)
            .collect();
        let oldest_sample_age_s = own_samples
            .iter()
            .map(|o| o.seen_unix_ns.saturating_sub(o.allocated_unix_ns) as f64 / 1e9)
            .reduce(f64::max);
        let (verdict, confidence, bytes_per_s) =
            growth::classify(&bytes_points, oldest_sample_age_s, run_length_s);
        let (_, _, instances_per_s) = growth::classify(&instance_points, None, run_length_s);
        let growing = verdict == Verdict::Growing && bytes_per_s > 0.0;
        let &(_, instances_last, bytes_last) = series.last().expect("a series has a point");
        classes.push(ClassGrowth {
            held_by: held_by(profile, class_id),
            allocated_at: allocated_at(profile, class_id),
            class: name,
            verdict,
            confidence,
            bytes_per_s,
            instances_per_s,
            instances_last,
            bytes_last,
            bytes_peak: peak,
            oldest_sample_age_s,
            heap_exhaustion_s: heap_free
                .filter(|_| growing)
                .map(|free| free as f64 / bytes_per_s),
            machine_exhaustion_s: available
                .filter(|_| growing)
                .map(|bytes| bytes as f64 / bytes_per_s),
            series: growth::even_in_time(
                &bytes_points
                    .iter()
                    .map(|&(t, bytes)| (t, bytes as u64))
                    .collect::<Vec<_>>(),
                |p| p.0,
                CHART_POINTS,
            ),
        });
    }
    classes.sort_by(|a, b| {
        crate::growth::listing_order(
            (a.verdict, a.bytes_per_s, a.bytes_peak),
            (b.verdict, b.bytes_per_s, b.bytes_peak),
        )
        .then_with(|| a.class.cmp(&b.class))
    });
    let mut bounded = 0;
    classes.retain(|class| {
        class.verdict != Verdict::Bounded || {
            bounded += 1;
            bounded <= BOUNDED_CLASSES_SHOWN
        }
    });
    Some(JavaFindings {
        status: vm.status,
        reason: non_empty(&vm.reason),
        version: non_empty(&vm.version),
        collector: non_empty(&vm.collector),
        max_heap_bytes: max_heap,
        interval_s: vm.interval_ns as f64 / 1e9,
        pauses: pauses(profile),
        heap,
        classes,
        old_object_samples: record.old_objects.len(),
        recorded: !record.old_objects.is_empty() || !record.pauses.is_empty(),
        code_blobs: record.code.len(),
    })
}

/// The histograms' pauses: the flight recorder's measure where the recording has them, else
/// leakscope's own.
fn pauses(profile: &Profile) -> Option<Pauses> {
    let record = &profile.java;
    let (mut values, by_the_jvm): (Vec<f64>, bool) = if record.pauses.is_empty() {
        let values = record
            .histograms
            .iter()
            .map(|h| h.duration_ns as f64 / 1e6)
            .collect();
        (values, false)
    } else {
        let values = record
            .pauses
            .iter()
            .map(|p| p.operation_ns as f64 / 1e6)
            .collect();
        (values, true)
    };
    if values.is_empty() {
        return None;
    }
    values.sort_by(f64::total_cmp);
    let gc_max_ms = by_the_jvm.then(|| {
        record
            .pauses
            .iter()
            .map(|p| p.gc_ns as f64 / 1e6)
            .fold(0.0, f64::max)
    });
    Some(Pauses {
        count: values.len(),
        by_the_jvm,
        max_ms: *values.last().expect("not empty"),
        median_ms: values[values.len() / 2],
        total_ms: values.iter().sum(),
        gc_max_ms,
    })
}

/// The root of a sample, in words.
fn root_of(sample: &JavaOldObject) -> String {
    let mut words = vec![sample.root_system.clone()];
    if !sample.root_type.is_empty() && sample.root_type != "<unknown>" {
        words.push(sample.root_type.clone());
    }
    if !sample.root_description.is_empty() {
        words.push(sample.root_description.clone());
    }
    words.join(", ")
}

/// A path's classes and fields (whether each link is an array element), whatever the indices.
type PathShape = Vec<(u32, String, bool)>;

/// The most common path from a root to an object of `class`: from the samples of the class
/// (their whole path, then the object) and from the samples it holds (their path up to the
/// class's object). Paths of the same shape (classes and fields, whatever the array indices)
/// count together; the first sample of the most common shape is shown.
fn held_by(profile: &Profile, class: u32) -> Option<PathToRoot> {
    let record = &profile.java;
    let mut shapes: BTreeMap<PathShape, (usize, String, Vec<PathLink>)> = BTreeMap::new();
    let mut of_samples = 0;
    for sample in &record.old_objects {
        if sample.root_system.is_empty() {
            continue; // no path was found for it
        }
        let end = if sample.class == class {
            sample.path.len()
        } else if let Some(at) = sample.path.iter().position(|link| link.class == class) {
            at
        } else {
            continue;
        };
        of_samples += 1;
        let mut links: Vec<PathLink> = sample.path[..end]
            .iter()
            .map(|link| PathLink {
                class: record.class_name(link.class),
                description: link.description.clone(),
                field: link.field.clone(),
                element: link.element,
                skipped: link.skipped,
            })
            .collect();
        let last_description = match sample.path.get(end) {
            Some(link) => link.description.clone(),
            None => String::new(),
        };
        links.push(PathLink {
            class: record.class_name(class),
            description: last_description,
            field: String::new(),
            element: None,
            skipped: 0,
        });
        let shape: PathShape = sample.path[..end]
            .iter()
            .map(|link| (link.class, link.field.clone(), link.element.is_some()))
            .collect();
        let entry = shapes
            .entry(shape)
            .or_insert_with(|| (0, root_of(sample), links));
        entry.0 += 1;
    }
    let (count, root, links) = shapes.into_values().max_by_key(|(count, ..)| *count)?;
    Some(PathToRoot {
        root,
        links,
        samples: count,
        of_samples,
    })
}

/// The most common allocation stack of sampled objects of `class`, else of the objects it
/// holds.
fn allocated_at(profile: &Profile, class: u32) -> Option<AllocationSite> {
    let record = &profile.java;
    let most_common = |samples: Vec<&JavaOldObject>| -> Option<AllocationSite> {
        let mut stacks: BTreeMap<Vec<(String, u32)>, (usize, &JavaOldObject)> = BTreeMap::new();
        for sample in samples.into_iter().filter(|s| !s.stack.is_empty()) {
            let key = sample
                .stack
                .iter()
                .map(|f| (f.method.clone(), f.line))
                .collect();
            stacks.entry(key).or_insert((0, sample)).0 += 1;
        }
        let (count, sample) = stacks.into_values().max_by_key(|(count, _)| *count)?;
        Some(AllocationSite {
            sampled_class: record.class_name(sample.class),
            frames: sample.stack.clone(),
            samples: count,
        })
    };
    let own: Vec<&JavaOldObject> = record
        .old_objects
        .iter()
        .filter(|s| s.class == class)
        .collect();
    most_common(own).or_else(|| {
        most_common(
            record
                .old_objects
                .iter()
                .filter(|s| s.path.iter().any(|link| link.class == class))
                .collect(),
        )
    })
}

/// What a reader of a Java program's native report must know: the flight recorder leakscope
/// started allocates natively itself, and where JIT-compiled frames got their names.
pub fn notes(java: &JavaFindings) -> Vec<String> {
    let mut notes = Vec::new();
    if java.status == JavaStatus::Watched {
        notes.push(if java.code_blobs > 0 {
            format!("native frames in the JVM's code cache are named from its perf maps ({} blobs, module [JVM code cache]; a map is taken with each class histogram, so code compiled after the last one shows as ???); the Java allocation stacks of sampled objects are in the Java section", java.code_blobs)
        } else {
            "native frames in JIT-compiled Java code show as ??? (no perf map of the JVM was read); the Java allocation stacks of sampled objects are in the Java section".to_owned()
        });
    }
    if java.recorded {
        notes.push("the JVM's flight recorder that leakscope started allocates natively too: sites with Jfr*, ObjectSampler or SampleList frames are the recorder's, not the program's (its old object sampler's are left out when libjvm.so has a symbol table to find them by)".to_owned());
    }
    notes
}
