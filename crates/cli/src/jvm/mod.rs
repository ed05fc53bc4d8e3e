//! Watching a JVM in the program with the JVM's own instruments (docs/decisions/0013-jvm.md):
//! a thread of `leakscope run` waits for `libjvm.so` to appear in the program's process (also
//! after an `exec`: a launcher script that execs `java` keeps the pid), attaches to it
//! (HotSpot's attach mechanism, as `jcmd` does), starts a flight recording of its own, and
//! takes class histograms at an interval. After the program ended, the recording is read
//! back and everything is appended to the profile as Java chunks.

mod answers;
mod attach;
mod perfmap;
mod recording;

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant, SystemTime};

use leakscope_format::java::HISTOGRAMS_PER_INTERVAL;
use leakscope_format::{
    ClassCount, JavaClass, JavaClasses, JavaCode, JavaCodeMap, JavaHistogram, JavaPauses,
    JavaStatus, JavaVm, Warning,
};

use attach::{AttachError, Attached};

/// The oldest JDK whose flight recorder has old object samples with paths to GC roots.
const OLDEST_JDK: u32 = 11;
/// The functions of the flight recorder's old object sampler (mangled-name prefixes in
/// `libjvm.so`'s symbol table): the sample list it keeps grows during a run (up to its 256
/// samples), and would otherwise be reported as a growing native site of the program.
const OBJECT_SAMPLER_SYMBOLS: [&str; 3] =
    ["_ZN10SampleList", "_ZN13ObjectSampler", "_ZN12ObjectSample"];
/// The oldest JDK with the diagnostic command `Compiler.perfmap`, which names JIT code.
const OLDEST_JDK_WITH_PERF_MAP: u32 = 17;
/// How often the thread looks for a JVM in the process, and for the end of the program.
const POLL: Duration = Duration::from_millis(20);
/// How long after `libjvm.so` appears the JVM may take to finish starting before leakscope
/// gives up on it.
const JVM_START_WAIT: Duration = Duration::from_secs(30);

/// What the watching thread is told.
pub struct Settings {
    /// The first interval between class histograms.
    pub interval: Duration,
}

/// The watching thread.
pub struct Watch {
    stop: Arc<AtomicBool>,
    thread: JoinHandle<Collected>,
    pid: i32,
}

/// A class histogram as taken, with class names.
struct Taken {
    unix_ns: u64,
    duration_ns: u64,
    histogram: answers::Histogram,
}

/// What the thread collected.
#[derive(Default)]
struct Collected {
    vm: Option<JavaVm>,
    histograms: Vec<Taken>,
    /// The recording's file and the tool that reads it, when one was started.
    recording: Option<(PathBuf, PathBuf)>,
    /// Sentences for the report.
    notes: Vec<String>,
    /// leakscope's own directory for the recording and its settings.
    workdir: Option<PathBuf>,
    /// The JVM's perf maps, taken with each histogram, while they can be.
    perf_maps: Option<perfmap::PerfMaps>,
    /// The blobs of every perf map taken.
    code: BTreeSet<JavaCode>,
    /// The JVM's `libjvm.so`, as the process mapped it.
    library: Option<String>,
}

/// Start watching the process `pid` for a JVM.
pub fn watch(pid: i32, settings: Settings) -> std::io::Result<Watch> {
    let stop = Arc::new(AtomicBool::new(false));
    let stopping = Arc::clone(&stop);
    let thread = std::thread::Builder::new()
        .name("jvm-watch".into())
        .spawn(move || run(pid, &settings, &stopping))?;
    Ok(Watch { stop, thread, pid })
}

impl Watch {
    /// The program has ended: stop, read the recording and append what was collected to the
    /// profile of the JVM's process image (`profile` is the run's root profile).
    pub fn finish(self, profile: &Path) {
        self.stop.store(true, Ordering::SeqCst);
        let Ok(collected) = self.thread.join() else {
            eprintln!(
                "leakscope: the thread watching the JVM failed; the report has no Java classes"
            );
            return;
        };
        if collected.vm.is_none() {
            return;
        }
        let target = image_profile(profile, self.pid as u32);
        if let Err(e) = append(&target, collected) {
            eprintln!(
                "leakscope: cannot add the JVM's classes to the profile {}: {e}",
                target.display()
            );
        }
    }
}

/// The profile of the last image of process `pid`: an image that followed an `exec` writes
/// `<root>.<pid>.e` (`.e.e`, ...) with `--follow-children`; otherwise the root profile (whose
/// process the JVM then ran in after an `exec`, untracked by the agent).
fn image_profile(root: &Path, pid: u32) -> PathBuf {
    let Some(name) = root.file_name().and_then(|n| n.to_str()) else {
        return root.to_path_buf();
    };
    let prefix = format!("{name}.{pid}.e");
    leakscope_format::tree::child_profile_paths(root)
        .into_iter()
        .filter(|path| {
            path.file_name()
                .and_then(|n| n.to_str())
                .and_then(|n| n.strip_prefix(&prefix))
                .is_some_and(|rest| rest.split(".e").all(str::is_empty))
        })
        .max_by_key(|path| path.as_os_str().len())
        .unwrap_or_else(|| root.to_path_buf())
}

fn unix_now_ns() -> u64 {
    SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos() as u64)
}

/// Sleep until `until` or until told to stop (true: stop).
fn pause_until(until: Instant, stop: &AtomicBool) -> bool {
    loop {
        if stop.load(Ordering::SeqCst) {
            return true;
        }
        let now = Instant::now();
        if now >= until {
            return false;
        }
        std::thread::sleep((until - now).min(POLL));
    }
}

/// The thread: find the JVM, attach, record, take histograms until the program ends.
fn run(pid: i32, settings: &Settings, stop: &AtomicBool) -> Collected {
    let mut collected = Collected::default();
    // Wait for a JVM in the process (it may come after an exec).
    while !attach::has_jvm(pid) {
        if pause_until(Instant::now() + POLL, stop) || !attach::alive(pid) {
            return collected;
        }
    }
    collected.library = attach::jvm_library(pid);
    let found_ns = unix_now_ns();
    let mut vm = JavaVm {
        unix_ns: found_ns,
        status: JavaStatus::Watched,
        pid: pid as u32,
        version: String::new(),
        max_heap_bytes: 0,
        collector: String::new(),
        interval_ns: settings.interval.as_nanos() as u64,
        reason: String::new(),
    };
    let waiting_since = Instant::now();
    let mut dispatcher_seen = None;
    loop {
        match attach::readiness(pid, &mut dispatcher_seen) {
            attach::Readiness::Ready => break,
            attach::Readiness::NoSignalDispatcher => {
                vm.status = JavaStatus::AttachRefused;
                vm.reason = "the JVM runs without its signal dispatcher (-Xrs or -XX:+ReduceSignalUsage), so it cannot be attached to".to_owned();
                collected.vm = Some(vm);
                return collected;
            }
            attach::Readiness::Starting => {}
        }
        if pause_until(Instant::now() + POLL, stop) || !attach::alive(pid) {
            return collected; // ended while starting: nothing to say about it
        }
        if waiting_since.elapsed() > JVM_START_WAIT {
            vm.status = JavaStatus::AttachRefused;
            vm.reason = format!(
                "the JVM had not finished starting (no signal dispatcher) {} s after it was loaded, so it was not attached to",
                JVM_START_WAIT.as_secs()
            );
            collected.vm = Some(vm);
            return collected;
        }
    }
    let attached = match attach::attach(pid) {
        Ok(attached) => attached,
        Err(AttachError::Gone) => return collected,
        Err(AttachError::Refused(why)) => {
            vm.status = JavaStatus::AttachRefused;
            vm.reason = why;
            collected.vm = Some(vm);
            return collected;
        }
        Err(AttachError::Failed(why)) => {
            vm.status = JavaStatus::Failed;
            vm.reason = why;
            collected.vm = Some(vm);
            return collected;
        }
    };
    let outcome = watch_attached(&attached, pid, settings, stop, &mut vm, &mut collected);
    match outcome {
        Ok(()) | Err(AttachError::Gone) => {}
        Err(AttachError::Refused(why)) => {
            vm.status = JavaStatus::AttachRefused;
            vm.reason = why;
        }
        Err(AttachError::Failed(why)) => {
            vm.status = JavaStatus::Failed;
            vm.reason = why;
        }
    }
    collected.vm = Some(vm);
    collected
}

fn command(attached: &Attached, line: &str) -> Result<String, AttachError> {
    attached.command(line)?.map_err(|rejected| {
        AttachError::Failed(format!("the JVM rejected '{line}': {}", rejected.0))
    })
}

fn watch_attached(
    attached: &Attached,
    pid: i32,
    settings: &Settings,
    stop: &AtomicBool,
    vm: &mut JavaVm,
    collected: &mut Collected,
) -> Result<(), AttachError> {
    let version = command(attached, "VM.version")?;
    let (version, feature) = answers::version(&version).ok_or_else(|| {
        AttachError::Failed("the JVM's VM.version names no JDK version".to_owned())
    })?;
    vm.version = version;
    if feature < OLDEST_JDK {
        vm.status = JavaStatus::TooOld;
        vm.reason = format!(
            "JDK {} is older than JDK {OLDEST_JDK}, the oldest whose classes leakscope reads (its flight recorder has no old object samples)",
            vm.version
        );
        return Ok(());
    }
    let (max_heap, collector) = answers::flags(&command(attached, "VM.flags")?);
    vm.max_heap_bytes = max_heap.unwrap_or(0);
    vm.collector = collector.unwrap_or_default();
    start_recording(attached, pid, collected)?;
    if feature < OLDEST_JDK_WITH_PERF_MAP {
        collected.notes.push(format!(
            "JDK {} has no Compiler.perfmap (JDK {OLDEST_JDK_WITH_PERF_MAP} and later), so native frames in JIT-compiled Java code show as ???",
            vm.version
        ));
    } else if let Some(owner) = attach::effective_uid(pid) {
        collected.perf_maps = Some(perfmap::PerfMaps::new(pid, owner));
    }

    let mut interval = settings.interval;
    let mut next = Instant::now();
    loop {
        if pause_until(next, stop) {
            return Ok(());
        }
        let unix_ns = unix_now_ns();
        let asked = Instant::now();
        let text = command(attached, "GC.class_histogram")?;
        let duration_ns = asked.elapsed().as_nanos() as u64;
        let histogram = answers::histogram(&text).ok_or_else(|| {
            AttachError::Failed("the JVM's class histogram could not be read".to_owned())
        })?;
        collected.histograms.push(Taken {
            unix_ns,
            duration_ns,
            histogram,
        });
        take_perf_map(attached, collected)?;
        if (collected.histograms.len() as u64).is_multiple_of(HISTOGRAMS_PER_INTERVAL) {
            interval *= 2;
        }
        next = asked + interval;
    }
}

/// Ask the JVM for its perf map and merge it into what was collected. A map that cannot be
/// had is asked for no more, and a note says why.
fn take_perf_map(attached: &Attached, collected: &mut Collected) -> Result<(), AttachError> {
    let Some(maps) = &collected.perf_maps else {
        return Ok(());
    };
    let read = match attached.command("Compiler.perfmap")? {
        Ok(_) => maps.read(),
        Err(rejected) => Err(format!("the JVM rejected Compiler.perfmap: {}", rejected.0)),
    };
    match read {
        Ok(blobs) => collected.code.extend(blobs),
        Err(why) => {
            collected.notes.push(format!(
                "the JVM's perf map could not be read ({why}), so native frames in JIT-compiled Java code it would have named show as ???"
            ));
            collected.perf_maps = None;
        }
    }
    Ok(())
}

/// Start leakscope's own flight recording (a name and a settings file of its own: the
/// program's recordings go on untouched), written when the JVM exits. Without the JDK's
/// `jfr` tool the recording could not be read back, so none is started, and a note says so.
fn start_recording(
    attached: &Attached,
    pid: i32,
    collected: &mut Collected,
) -> Result<(), AttachError> {
    let Some(tool) = recording::find_jfr_tool(pid) else {
        collected.notes.push(
            "no `jfr` tool was found (beside the JVM's `java`, or on PATH), so no flight recording was made: the report has the class histograms, but no paths to GC roots or allocation stacks of Java objects (install the full JDK, such as Debian's openjdk-17-jdk-headless)".to_owned(),
        );
        return Ok(());
    };
    let workdir = std::env::temp_dir().join(format!(
        "leakscope-jvm-{}-{pid}-{}",
        std::process::id(),
        unix_now_ns()
    ));
    {
        use std::os::unix::fs::DirBuilderExt;
        if let Err(e) = std::fs::DirBuilder::new().mode(0o700).create(&workdir) {
            collected.notes.push(format!(
                "no flight recording was made (cannot create {}: {e}): no paths to GC roots",
                workdir.display()
            ));
            return Ok(());
        }
    }
    collected.workdir = Some(workdir.clone());
    let settings_file = workdir.join("leakscope.jfc");
    let recording_file = workdir.join("leakscope.jfr");
    if let Err(e) = std::fs::write(&settings_file, recording::SETTINGS) {
        collected.notes.push(format!(
            "no flight recording was made (cannot write {}: {e}): no paths to GC roots",
            settings_file.display()
        ));
        return Ok(());
    }
    let line = format!(
        "JFR.start name=leakscope-{} settings={} filename={} dumponexit=true path-to-gc-roots=true",
        std::process::id(),
        settings_file.display(),
        recording_file.display()
    );
    match attached.command(&line)? {
        Ok(_) => collected.recording = Some((recording_file, tool)),
        Err(rejected) => collected.notes.push(format!(
            "the JVM did not start leakscope's flight recording ({}): no paths to GC roots",
            rejected.0
        )),
    }
    Ok(())
}

/// Append the Java chunks (and notes as warnings) to the profile.
fn append(profile: &Path, mut collected: Collected) -> std::io::Result<()> {
    use std::io::Write;
    let mut names: HashMap<String, u32> = HashMap::new();
    let mut order: Vec<String> = Vec::new();
    let mut intern = |name: &str| -> u32 {
        if let Some(&id) = names.get(name) {
            return id;
        }
        let id = order.len() as u32 + 1;
        names.insert(name.to_owned(), id);
        order.push(name.to_owned());
        id
    };

    // Histograms as chunks of the classes that changed (zeros for a class gone).
    let mut histograms = Vec::with_capacity(collected.histograms.len());
    let mut previous: BTreeMap<u32, (u64, u64)> = BTreeMap::new();
    for taken in &collected.histograms {
        let mut current: BTreeMap<u32, (u64, u64)> = BTreeMap::new();
        for line in &taken.histogram.lines {
            let entry = current.entry(intern(&line.class)).or_default();
            entry.0 += line.instances;
            entry.1 += line.bytes;
        }
        let mut classes: Vec<ClassCount> = current
            .iter()
            .filter(|(id, counts)| previous.get(id) != Some(counts))
            .map(|(&class, &(instances, bytes))| ClassCount {
                class,
                instances,
                bytes,
            })
            .collect();
        classes.extend(
            previous
                .keys()
                .filter(|id| !current.contains_key(id))
                .map(|&class| ClassCount {
                    class,
                    instances: 0,
                    bytes: 0,
                }),
        );
        histograms.push(JavaHistogram {
            unix_ns: taken.unix_ns,
            duration_ns: taken.duration_ns,
            total_instances: taken.histogram.total_instances,
            total_bytes: taken.histogram.total_bytes,
            classes,
        });
        previous = current;
    }

    let mut read = recording::Read::default();
    if let Some((file, tool)) = &collected.recording {
        if file.exists() {
            match recording::read(tool, file, &mut intern) {
                Ok(done) => read = done,
                Err(why) => collected.notes.push(format!(
                    "leakscope's flight recording could not be read ({why}): no paths to GC roots"
                )),
            }
        } else {
            collected.notes.push(
                "the JVM did not write leakscope's flight recording (it ended without running its shutdown hooks: killed, or halted with Runtime.halt): no paths to GC roots or allocation stacks".to_owned(),
            );
        }
    }
    if let Some(dir) = &collected.workdir {
        let _ = std::fs::remove_dir_all(dir);
    }

    let vm = collected.vm.take().expect("checked by the caller");
    let mut chunks: Vec<Vec<u8>> = vec![encode(vm.encode())?];
    let classes = JavaClasses(
        order
            .iter()
            .enumerate()
            .map(|(index, name)| JavaClass {
                id: index as u32 + 1,
                name: name.clone(),
            })
            .collect(),
    );
    chunks.push(encode(classes.encode())?);
    for histogram in &histograms {
        chunks.push(encode(histogram.encode())?);
    }
    if !read.pauses.is_empty() {
        chunks.push(encode(JavaPauses(read.pauses).encode())?);
    }
    for object in &read.old_objects {
        chunks.push(encode(object.encode())?);
    }
    let code: Vec<JavaCode> = std::mem::take(&mut collected.code).into_iter().collect();
    for blobs in code.chunks(leakscope_format::java::JAVA_CODE_PER_CHUNK) {
        chunks.push(encode(JavaCodeMap(blobs.to_vec()).encode())?);
    }
    for note in &collected.notes {
        let mut buf = vec![0u8; note.len() + 64];
        let len = Warning(note.as_bytes())
            .encode(&mut buf)
            .map_err(|_| std::io::Error::other("a note does not fit its chunk"))?;
        buf.truncate(len);
        chunks.push(buf);
    }
    if let (Some(_), Some(library)) = (&collected.recording, &collected.library) {
        if let Some(chunk) = object_sampler_record(library, vm.pid) {
            chunks.push(chunk);
        }
    }
    let mut file = std::fs::OpenOptions::new().append(true).open(profile)?;
    file.write_all(&chunks.concat())
}

/// A record naming the code of the old object sampler of the recording leakscope started
/// (an `instrument` record, as for node's sampling heap profiler, which the analysis reads),
/// so that what it allocates is left out of the program's sites. None when `libjvm.so` has
/// no symbol table to find it by: then the report's note says that such growth is ours.
fn object_sampler_record(library: &str, pid: u32) -> Option<Vec<u8>> {
    let mut ranges = Vec::new();
    for prefix in OBJECT_SAMPLER_SYMBOLS {
        ranges.extend(leakscope_symbolize::function_ranges(Path::new(library), prefix).ok()?);
    }
    if ranges.is_empty() {
        return None;
    }
    let line = serde_json::json!({
        "k": "instrument",
        "what": "the JVM's flight recorder (its old object sampler)",
        "module": library,
        "ranges": ranges,
    })
    .to_string();
    let record = leakscope_format::ScriptRecord {
        runtime: leakscope_format::FrameKind::Java,
        pid,
        line: line.as_str(),
    };
    let mut buf = vec![0; record.encoded_len()];
    let len = record.encode(&mut buf).ok()?;
    buf.truncate(len);
    Some(buf)
}

fn encode(chunk: Result<Vec<u8>, leakscope_format::EncodeError>) -> std::io::Result<Vec<u8>> {
    chunk.map_err(|_| std::io::Error::other("a Java chunk could not be encoded"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_jvm_image_profile_is_the_last_exec_of_its_pid() {
        let dir = std::env::temp_dir().join(format!("leakscope-jvm-test-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let root = dir.join("run.profile");
        std::fs::write(&root, b"").unwrap();
        assert_eq!(image_profile(&root, 77), root);
        for name in [
            "run.profile.77.e",
            "run.profile.77.e.e",
            "run.profile.78.e.e.e",
        ] {
            std::fs::write(dir.join(name), b"").unwrap();
        }
        assert_eq!(image_profile(&root, 77), dir.join("run.profile.77.e.e"));
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
