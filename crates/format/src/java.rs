//! The chunks of a JVM's own instruments (format version 3 files, kinds 21 to 26): what
//! `leakscope run` learnt from the Java virtual machine it watched through the JVM's attach
//! mechanism (class histograms) and from a Java Flight Recorder recording of its own (old
//! object samples with their paths to GC roots, and the pauses of the histograms).
//!
//! `leakscope run` appends them after the program ended, as it appends `RunResult`; the agent
//! never writes them, so they are built with `std` only and encode into a buffer they size
//! themselves. Times are nanoseconds since the Unix epoch (`unix_ns`): the JVM's clock and
//! leakscope's, not the agent's; [`crate::Profile::java_seconds`] turns them into seconds since
//! the process started, as every other time of the profile is.

use crate::chunks::decoding::Reader;
use crate::chunks::encode_chunk;
use crate::encode::ChunkEncoder;
use crate::{ChunkKind, DecodeError, EncodeError};

/// How far `leakscope run` got with the JVM (the `JavaVm` chunk).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(u8)]
pub enum JavaStatus {
    /// Attached: class histograms were taken (and a recording started, unless a note says
    /// otherwise).
    Watched = 1,
    /// The JVM refused to attach (`-XX:+DisableAttachMechanism`, another user, signals reduced
    /// with `-Xrs`): only the native report.
    AttachRefused = 2,
    /// A JDK older than the oldest leakscope reads (11): only the native report.
    TooOld = 3,
    /// The attach worked but then failed (the JVM ended while leakscope asked, an answer
    /// leakscope could not read): what was collected until then is kept.
    Failed = 4,
}

impl JavaStatus {
    /// The status for a raw byte.
    pub fn from_u8(value: u8) -> Option<Self> {
        Some(match value {
            1 => Self::Watched,
            2 => Self::AttachRefused,
            3 => Self::TooOld,
            4 => Self::Failed,
            _ => return None,
        })
    }

    /// The name used in JSON.
    pub fn json_name(self) -> &'static str {
        match self {
            Self::Watched => "watched",
            Self::AttachRefused => "attach_refused",
            Self::TooOld => "too_old",
            Self::Failed => "failed",
        }
    }
}

/// The `JavaVm` chunk: the JVM leakscope found in the process, and how watching it went.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct JavaVm {
    /// When it was found (ns since the Unix epoch).
    pub unix_ns: u64,
    /// How far leakscope got.
    pub status: JavaStatus,
    /// The process the JVM runs in.
    pub pid: u32,
    /// The JDK's version (`17.0.15`), empty if not known.
    pub version: String,
    /// The Java heap's maximum size (`MaxHeapSize`, what `-Xmx` sets), 0 if not known.
    pub max_heap_bytes: u64,
    /// The garbage collector (`G1`, `Serial`, `Parallel`, `Z`, `Shenandoah`), empty if not known.
    pub collector: String,
    /// The interval between class histograms leakscope started with (it doubles every
    /// [`HISTOGRAMS_PER_INTERVAL`] histograms), in nanoseconds.
    pub interval_ns: u64,
    /// Why the status is not `Watched`, in one sentence; empty when it is.
    pub reason: String,
}

/// Class histograms taken at one interval before the interval doubles (as the agent's
/// snapshots do), so that a week-long run keeps a bounded number of them.
pub const HISTOGRAMS_PER_INTERVAL: u64 = 100;

impl JavaVm {
    /// Encode the chunk.
    pub fn encode(&self) -> Result<Vec<u8>, EncodeError> {
        let mut buf = vec![0; 64 + self.version.len() + self.collector.len() + self.reason.len()];
        let len = encode_chunk(&mut buf, ChunkKind::JavaVm, |c| {
            c.put_u64(self.unix_ns);
            c.put_u8(self.status as u8);
            c.put_u32(self.pid);
            c.put_bytes(self.version.as_bytes());
            c.put_u64(self.max_heap_bytes);
            c.put_bytes(self.collector.as_bytes());
            c.put_u64(self.interval_ns);
            c.put_bytes(self.reason.as_bytes());
        })?;
        buf.truncate(len);
        Ok(buf)
    }

    /// Decode a `JavaVm` payload.
    pub fn decode(payload: &[u8]) -> Result<Self, DecodeError> {
        let mut r = Reader::new(payload);
        let vm = JavaVm {
            unix_ns: r.u64()?,
            status: r.known(JavaStatus::from_u8, "an unknown Java status")?,
            pid: r.u32()?,
            version: r.string()?,
            max_heap_bytes: r.u64()?,
            collector: r.string()?,
            interval_ns: r.u64()?,
            reason: r.string()?,
        };
        r.end(vm)
    }
}

/// One interned Java class name (the `JavaClasses` chunk), as the histogram names it
/// (`java.util.HashMap$Node`, `[B`, `[Ljava.lang.Object;`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct JavaClass {
    /// Its id in the Java chunks of this profile.
    pub id: u32,
    /// Its name.
    pub name: String,
}

/// The `JavaClasses` chunk: class names, each written once before the first chunk that
/// names it.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct JavaClasses(pub Vec<JavaClass>);

impl JavaClasses {
    /// Encode the chunk.
    pub fn encode(&self) -> Result<Vec<u8>, EncodeError> {
        let size: usize = self.0.iter().map(|c| 8 + c.name.len()).sum();
        let mut buf = vec![0; 32 + size];
        let len = encode_chunk(&mut buf, ChunkKind::JavaClasses, |c| {
            c.put_u32(self.0.len() as u32);
            for class in &self.0 {
                c.put_u32(class.id);
                c.put_bytes(class.name.as_bytes());
            }
        })?;
        buf.truncate(len);
        Ok(buf)
    }

    /// Decode a `JavaClasses` payload.
    pub fn decode(payload: &[u8]) -> Result<Self, DecodeError> {
        let mut r = Reader::new(payload);
        let count = r.count(8)?;
        let mut classes = Vec::with_capacity(count);
        for _ in 0..count {
            classes.push(JavaClass {
                id: r.u32()?,
                name: r.string()?,
            });
        }
        r.end(JavaClasses(classes))
    }
}

/// One class's line of a class histogram.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ClassCount {
    /// The class (a `JavaClasses` id).
    pub class: u32,
    /// Live instances.
    pub instances: u64,
    /// Their bytes (shallow sizes: an object's own fields, not what it points to).
    pub bytes: u64,
}

/// The `JavaHistogram` chunk: a class histogram (`GC.class_histogram`: a full collection,
/// then a count of the live objects of every class). It lists the classes whose counts
/// changed since the previous histogram, with their new (absolute) values, and a class no
/// longer listed with zeros, as a `Snapshot` does for sites.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct JavaHistogram {
    /// When leakscope asked for it (ns since the Unix epoch).
    pub unix_ns: u64,
    /// How long the JVM took to answer, as leakscope measured it (the collection, the count
    /// and the transfer of the text): an upper bound on the program's pause.
    pub duration_ns: u64,
    /// Live instances of every class.
    pub total_instances: u64,
    /// Their bytes: the Java heap in use right after the collection.
    pub total_bytes: u64,
    /// The classes that changed.
    pub classes: Vec<ClassCount>,
}

impl JavaHistogram {
    /// Encode the chunk.
    pub fn encode(&self) -> Result<Vec<u8>, EncodeError> {
        let mut buf = vec![0; 64 + 20 * self.classes.len()];
        let len = encode_chunk(&mut buf, ChunkKind::JavaHistogram, |c| {
            c.put_u64(self.unix_ns);
            c.put_u64(self.duration_ns);
            c.put_u64(self.total_instances);
            c.put_u64(self.total_bytes);
            c.put_u32(self.classes.len() as u32);
            for class in &self.classes {
                c.put_u32(class.class);
                c.put_u64(class.instances);
                c.put_u64(class.bytes);
            }
        })?;
        buf.truncate(len);
        Ok(buf)
    }

    /// Decode a `JavaHistogram` payload.
    pub fn decode(payload: &[u8]) -> Result<Self, DecodeError> {
        let mut r = Reader::new(payload);
        let mut histogram = JavaHistogram {
            unix_ns: r.u64()?,
            duration_ns: r.u64()?,
            total_instances: r.u64()?,
            total_bytes: r.u64()?,
            classes: Vec::new(),
        };
        let count = r.count(20)?;
        histogram.classes.reserve_exact(count);
        for _ in 0..count {
            histogram.classes.push(ClassCount {
                class: r.u32()?,
                instances: r.u64()?,
                bytes: r.u64()?,
            });
        }
        r.end(histogram)
    }
}

/// A pause of the program that a class histogram caused, as the JVM's flight recorder
/// measured it.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct JavaPause {
    /// When it began (ns since the Unix epoch).
    pub unix_ns: u64,
    /// The whole stop-the-world operation (`jdk.ExecuteVMOperation` `GC_HeapInspection`: the
    /// collection and the count), in ns.
    pub operation_ns: u64,
    /// The collection's pauses within it (`jdk.GarbageCollection` with cause "Heap Inspection
    /// Initiated GC", `sumOfPauses`), in ns; 0 if the recording has none.
    pub gc_ns: u64,
}

/// The `JavaPauses` chunk.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct JavaPauses(pub Vec<JavaPause>);

impl JavaPauses {
    /// Encode the chunk.
    pub fn encode(&self) -> Result<Vec<u8>, EncodeError> {
        let mut buf = vec![0; 32 + 24 * self.0.len()];
        let len = encode_chunk(&mut buf, ChunkKind::JavaPauses, |c| {
            c.put_u32(self.0.len() as u32);
            for pause in &self.0 {
                c.put_u64(pause.unix_ns);
                c.put_u64(pause.operation_ns);
                c.put_u64(pause.gc_ns);
            }
        })?;
        buf.truncate(len);
        Ok(buf)
    }

    /// Decode a `JavaPauses` payload.
    pub fn decode(payload: &[u8]) -> Result<Self, DecodeError> {
        let mut r = Reader::new(payload);
        let count = r.count(24)?;
        let mut pauses = Vec::with_capacity(count);
        for _ in 0..count {
            pauses.push(JavaPause {
                unix_ns: r.u64()?,
                operation_ns: r.u64()?,
                gc_ns: r.u64()?,
            });
        }
        r.end(JavaPauses(pauses))
    }
}

/// One blob of the JVM's code cache, as its perf map (`Compiler.perfmap`) lists it: a
/// JIT-compiled method (`long java.util.zip.Inflater.init(boolean)`), a native method's
/// wrapper, or a stub (`Interpreter`, `StubRoutines (1)`).
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct JavaCode {
    /// Its first byte's address in the process.
    pub start: u64,
    /// Its length in bytes.
    pub size: u64,
    /// What the JVM calls it.
    pub name: String,
}

/// The `JavaCode` chunk: code cache blobs, every one seen in any of the perf maps taken
/// during the run (a blob freed and its space reused by another shows as two entries that
/// overlap).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct JavaCodeMap(pub Vec<JavaCode>);

/// At most this many blobs per `JavaCode` chunk: a large application's code cache lists
/// tens of thousands, which go into several chunks the reader appends.
pub const JAVA_CODE_PER_CHUNK: usize = 4096;

impl JavaCodeMap {
    /// Encode the chunk.
    pub fn encode(&self) -> Result<Vec<u8>, EncodeError> {
        let size: usize = self.0.iter().map(|code| 20 + code.name.len()).sum();
        let mut buf = vec![0; 32 + size];
        let len = encode_chunk(&mut buf, ChunkKind::JavaCode, |c| {
            c.put_u32(self.0.len() as u32);
            for code in &self.0 {
                c.put_u64(code.start);
                c.put_u64(code.size);
                c.put_bytes(code.name.as_bytes());
            }
        })?;
        buf.truncate(len);
        Ok(buf)
    }

    /// Decode a `JavaCode` payload.
    pub fn decode(payload: &[u8]) -> Result<Self, DecodeError> {
        let mut r = Reader::new(payload);
        let count = r.count(20)?;
        let mut blobs = Vec::with_capacity(count);
        for _ in 0..count {
            blobs.push(JavaCode {
                start: r.u64()?,
                size: r.u64()?,
                name: r.string()?,
            });
        }
        r.end(JavaCodeMap(blobs))
    }
}

/// One object on the path from a GC root to a sampled object.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct JavaReferrer {
    /// Its class (a `JavaClasses` id).
    pub class: u32,
    /// What the JVM says of it (`Size: 4343` for a map, `Class Name: Main` for a class), empty
    /// if nothing.
    pub description: String,
    /// The field of this object that points to the next object towards the sample (empty: an
    /// array element, or the sample itself).
    pub field: String,
    /// The array element that points to the next object, if this object is an array:
    /// `(index, length)`.
    pub element: Option<(u32, u32)>,
    /// Objects the recorder left out between this one and the next (a long chain is
    /// shortened in its middle).
    pub skipped: u32,
}

/// One frame of a sampled object's allocation stack.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct JavaFrame {
    /// `class.method` (`Main$Session.<init>`).
    pub method: String,
    /// The source line, 0 if not known.
    pub line: u32,
    /// How the method ran: `Interpreted`, `JIT compiled`, `Inlined`, `Native`.
    pub how: String,
}

/// The `JavaOldObject` chunk: one object of the flight recorder's old object sample
/// (`jdk.OldObjectSample`): an object sampled at its allocation and still alive when the
/// recording ended, with its allocation stack and the path the recorder found from a GC root
/// to it.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct JavaOldObject {
    /// When it was allocated (ns since the Unix epoch).
    pub allocated_unix_ns: u64,
    /// When the recording ended and found it alive (ns since the Unix epoch).
    pub seen_unix_ns: u64,
    /// Its class (a `JavaClasses` id).
    pub class: u32,
    /// Its length, if it is an array.
    pub array_length: Option<u32>,
    /// The root: what kind of root (`Class Loader Data`, `Threads`, `JNI Global`, ...),
    /// empty if the recorder found no path.
    pub root_system: String,
    /// The root's type (`Stack Variable`, `Global Object Handle`, ...), empty if not known.
    pub root_type: String,
    /// What the root is (a thread's name, a local variable), empty if not known.
    pub root_description: String,
    /// The path, from the root (first) to the object just above the sample (last); empty if
    /// the object is a root itself or no path was found.
    pub path: Vec<JavaReferrer>,
    /// Its allocation stack, innermost frame first.
    pub stack: Vec<JavaFrame>,
    /// The allocation stack was cut (more frames than the recorder keeps).
    pub stack_truncated: bool,
}

impl JavaOldObject {
    /// Encode the chunk.
    pub fn encode(&self) -> Result<Vec<u8>, EncodeError> {
        let path: usize = self
            .path
            .iter()
            .map(|r| 32 + r.description.len() + r.field.len())
            .sum();
        let stack: usize = self
            .stack
            .iter()
            .map(|f| 16 + f.method.len() + f.how.len())
            .sum();
        let text = self.root_system.len() + self.root_type.len() + self.root_description.len();
        let mut buf = vec![0; 96 + text + path + stack];
        let len = encode_chunk(&mut buf, ChunkKind::JavaOldObject, |c| {
            c.put_u64(self.allocated_unix_ns);
            c.put_u64(self.seen_unix_ns);
            c.put_u32(self.class);
            put_optional_u32(c, self.array_length);
            c.put_bytes(self.root_system.as_bytes());
            c.put_bytes(self.root_type.as_bytes());
            c.put_bytes(self.root_description.as_bytes());
            c.put_u32(self.path.len() as u32);
            for referrer in &self.path {
                c.put_u32(referrer.class);
                c.put_bytes(referrer.description.as_bytes());
                c.put_bytes(referrer.field.as_bytes());
                match referrer.element {
                    Some((index, length)) => {
                        c.put_u8(1);
                        c.put_u32(index);
                        c.put_u32(length);
                    }
                    None => c.put_u8(0),
                }
                c.put_u32(referrer.skipped);
            }
            c.put_u8(self.stack_truncated as u8);
            c.put_u32(self.stack.len() as u32);
            for frame in &self.stack {
                c.put_bytes(frame.method.as_bytes());
                c.put_u32(frame.line);
                c.put_bytes(frame.how.as_bytes());
            }
        })?;
        buf.truncate(len);
        Ok(buf)
    }

    /// Decode a `JavaOldObject` payload.
    pub fn decode(payload: &[u8]) -> Result<Self, DecodeError> {
        let mut r = Reader::new(payload);
        let mut object = JavaOldObject {
            allocated_unix_ns: r.u64()?,
            seen_unix_ns: r.u64()?,
            class: r.u32()?,
            array_length: optional_u32(&mut r)?,
            root_system: r.string()?,
            root_type: r.string()?,
            root_description: r.string()?,
            ..JavaOldObject::default()
        };
        let count = r.count(4 + 4 + 4 + 1 + 4)?;
        object.path.reserve_exact(count);
        for _ in 0..count {
            let class = r.u32()?;
            let description = r.string()?;
            let field = r.string()?;
            let element = match r.u8()? {
                0 => None,
                _ => Some((r.u32()?, r.u32()?)),
            };
            object.path.push(JavaReferrer {
                class,
                description,
                field,
                element,
                skipped: r.u32()?,
            });
        }
        object.stack_truncated = r.u8()? != 0;
        let count = r.count(4 + 4 + 4)?;
        object.stack.reserve_exact(count);
        for _ in 0..count {
            object.stack.push(JavaFrame {
                method: r.string()?,
                line: r.u32()?,
                how: r.string()?,
            });
        }
        r.end(object)
    }
}

fn put_optional_u32(c: &mut ChunkEncoder<'_>, value: Option<u32>) {
    match value {
        Some(value) => {
            c.put_u8(1);
            c.put_u32(value);
        }
        None => c.put_u8(0),
    }
}

fn optional_u32(r: &mut Reader<'_>) -> Result<Option<u32>, DecodeError> {
    Ok(match r.u8()? {
        0 => None,
        _ => Some(r.u32()?),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn payload(chunk: &[u8], kind: ChunkKind) -> &[u8] {
        assert_eq!(u16::from_le_bytes([chunk[0], chunk[1]]), kind as u16);
        &chunk[crate::CHUNK_HEADER_LEN..]
    }

    #[test]
    fn every_java_chunk_round_trips() {
        let vm = JavaVm {
            unix_ns: 1,
            status: JavaStatus::Watched,
            pid: 42,
            version: "17.0.15".into(),
            max_heap_bytes: 64 << 20,
            collector: "G1".into(),
            interval_ns: 10_000_000_000,
            reason: String::new(),
        };
        let chunk = vm.encode().unwrap();
        assert_eq!(
            JavaVm::decode(payload(&chunk, ChunkKind::JavaVm)),
            Ok(vm.clone())
        );

        let classes = JavaClasses(vec![
            JavaClass {
                id: 1,
                name: "[B".into(),
            },
            JavaClass {
                id: 2,
                name: "Main$Session".into(),
            },
        ]);
        let chunk = classes.encode().unwrap();
        assert_eq!(
            JavaClasses::decode(payload(&chunk, ChunkKind::JavaClasses)),
            Ok(classes)
        );

        let histogram = JavaHistogram {
            unix_ns: 5,
            duration_ns: 7,
            total_instances: 9,
            total_bytes: 11,
            classes: vec![ClassCount {
                class: 2,
                instances: 3,
                bytes: 72,
            }],
        };
        let chunk = histogram.encode().unwrap();
        assert_eq!(
            JavaHistogram::decode(payload(&chunk, ChunkKind::JavaHistogram)),
            Ok(histogram)
        );

        let pauses = JavaPauses(vec![JavaPause {
            unix_ns: 3,
            operation_ns: 12_000_000,
            gc_ns: 9_000_000,
        }]);
        let chunk = pauses.encode().unwrap();
        assert_eq!(
            JavaPauses::decode(payload(&chunk, ChunkKind::JavaPauses)),
            Ok(pauses)
        );

        let object = JavaOldObject {
            allocated_unix_ns: 100,
            seen_unix_ns: 200,
            class: 1,
            array_length: Some(256),
            root_system: "Class Loader Data".into(),
            root_type: String::new(),
            root_description: String::new(),
            path: vec![
                JavaReferrer {
                    class: 3,
                    description: "Class Name: Main".into(),
                    field: "SESSIONS".into(),
                    element: None,
                    skipped: 0,
                },
                JavaReferrer {
                    class: 4,
                    description: String::new(),
                    field: String::new(),
                    element: Some((964, 8192)),
                    skipped: 2,
                },
            ],
            stack: vec![JavaFrame {
                method: "Main$Session.<init>".into(),
                line: 4,
                how: "JIT compiled".into(),
            }],
            stack_truncated: true,
        };
        let chunk = object.encode().unwrap();
        assert_eq!(
            JavaOldObject::decode(payload(&chunk, ChunkKind::JavaOldObject)),
            Ok(object)
        );

        let code = JavaCodeMap(vec![
            JavaCode {
                start: 0x7f20_4cec_7ca0,
                size: 0x1d8,
                name: "long java.util.zip.Inflater.init(boolean)".into(),
            },
            JavaCode {
                start: 0x7f20_4500_0000,
                size: 0x2_0000,
                name: "Interpreter".into(),
            },
        ]);
        let chunk = code.encode().unwrap();
        assert_eq!(
            JavaCodeMap::decode(payload(&chunk, ChunkKind::JavaCode)),
            Ok(code)
        );
    }

    #[test]
    fn a_count_beyond_the_payload_is_refused_before_allocating() {
        let histogram = JavaHistogram::default();
        let mut chunk = histogram.encode().unwrap();
        let count_at = crate::CHUNK_HEADER_LEN + 32;
        chunk[count_at..count_at + 4].copy_from_slice(&u32::MAX.to_le_bytes());
        let error = JavaHistogram::decode(payload(&chunk, ChunkKind::JavaHistogram)).unwrap_err();
        assert_eq!(error.at, 32);
    }
}
