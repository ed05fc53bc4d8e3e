//! Reading the JVM's answers to diagnostic commands: `VM.version`, `VM.flags` and
//! `GC.class_histogram`.

/// One line of a class histogram.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct HistogramLine {
    /// The class, as the histogram names it (`java.util.HashMap$Node`, `[B`).
    pub class: String,
    pub instances: u64,
    pub bytes: u64,
}

/// A class histogram: its lines and the `Total` line.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Histogram {
    pub lines: Vec<HistogramLine>,
    pub total_instances: u64,
    pub total_bytes: u64,
}

/// Parse the output of `GC.class_histogram`:
///
/// ```text
///  num     #instances         #bytes  class name (module)
/// -------------------------------------------------------
///    1:          8218         608744  [B (java.base@17.0.15)
///   10:          1013          24312  Main$Session
/// Total         28137        1402376
/// ```
///
/// None if no line has that shape (not a histogram).
pub fn histogram(text: &str) -> Option<Histogram> {
    let mut histogram = Histogram::default();
    let mut saw_total = false;
    for line in text.lines() {
        let mut words = line.split_whitespace();
        let Some(first) = words.next() else {
            continue;
        };
        if first == "Total" {
            let (Some(instances), Some(bytes)) = (words.next(), words.next()) else {
                continue;
            };
            if let (Ok(instances), Ok(bytes)) = (instances.parse(), bytes.parse()) {
                histogram.total_instances = instances;
                histogram.total_bytes = bytes;
                saw_total = true;
            }
            continue;
        }
        let Some(rank) = first.strip_suffix(':') else {
            continue;
        };
        if rank.parse::<u64>().is_err() {
            continue;
        }
        let (Some(instances), Some(bytes), Some(class)) =
            (words.next(), words.next(), words.next())
        else {
            continue;
        };
        let (Ok(instances), Ok(bytes)) = (instances.parse(), bytes.parse()) else {
            continue;
        };
        histogram.lines.push(HistogramLine {
            class: class.to_owned(),
            instances,
            bytes,
        });
    }
    (saw_total || !histogram.lines.is_empty()).then_some(histogram)
}

/// The JDK's version from `VM.version` (its line `JDK 17.0.15`), and its feature release
/// (17; 8 for `1.8.0_402`).
pub fn version(text: &str) -> Option<(String, u32)> {
    let version = text
        .lines()
        .find_map(|line| line.trim().strip_prefix("JDK "))?
        .trim()
        .to_owned();
    let mut numbers = version
        .split(|c: char| !c.is_ascii_digit())
        .filter(|part| !part.is_empty());
    let first: u32 = numbers.next()?.parse().ok()?;
    let feature = if first == 1 {
        numbers.next()?.parse().ok()?
    } else {
        first
    };
    Some((version, feature))
}

/// The maximum heap size (`-XX:MaxHeapSize=`) and the collector (`-XX:+UseG1GC`: `G1`) from
/// `VM.flags`.
pub fn flags(text: &str) -> (Option<u64>, Option<String>) {
    let mut max_heap = None;
    let mut collector = None;
    for flag in text.split_whitespace() {
        if let Some(value) = flag.strip_prefix("-XX:MaxHeapSize=") {
            max_heap = value.parse().ok();
        }
        if let Some(name) = flag
            .strip_prefix("-XX:+Use")
            .and_then(|rest| rest.strip_suffix("GC"))
        {
            if !name.is_empty() && !name.contains("Adaptive") && !name.contains("Overhead") {
                collector = Some(name.to_owned());
            }
        }
    }
    (max_heap, collector)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_histogram_gives_each_class_and_the_total() {
        let text = "\
 num     #instances         #bytes  class name (module)
-------------------------------------------------------
   1:          8218         608744  [B (java.base@17.0.15)
   5:          2008          64256  java.util.HashMap$Node (java.base@17.0.15)
  10:          1013          24312  SessionLeak$Session
Total         28137        1402376
";
        let parsed = histogram(text).unwrap();
        assert_eq!(parsed.total_instances, 28137);
        assert_eq!(parsed.total_bytes, 1402376);
        assert_eq!(
            parsed.lines,
            vec![
                HistogramLine {
                    class: "[B".into(),
                    instances: 8218,
                    bytes: 608744
                },
                HistogramLine {
                    class: "java.util.HashMap$Node".into(),
                    instances: 2008,
                    bytes: 64256
                },
                HistogramLine {
                    class: "SessionLeak$Session".into(),
                    instances: 1013,
                    bytes: 24312
                },
            ]
        );
        assert_eq!(histogram("Unknown diagnostic command"), None);
    }

    #[test]
    fn versions_of_every_numbering() {
        let text = "OpenJDK 64-Bit Server VM version 17.0.15+6-Debian-1deb12u1\nJDK 17.0.15\n";
        assert_eq!(version(text), Some(("17.0.15".into(), 17)));
        assert_eq!(version("JDK 25\n"), Some(("25".into(), 25)));
        assert_eq!(version("x\nJDK 1.8.0_402\n"), Some(("1.8.0_402".into(), 8)));
        assert_eq!(version("nothing"), None);
    }

    #[test]
    fn flags_give_the_heap_limit_and_the_collector() {
        let text = "-XX:CICompilerCount=2 -XX:MaxHeapSize=6320816128 -XX:+UseCompressedOops -XX:+UseG1GC \n";
        assert_eq!(flags(text), (Some(6320816128), Some("G1".into())));
        let serial = "-XX:MaxHeapSize=33554432 -XX:+UseSerialGC -XX:-UseAdaptiveSizePolicy";
        assert_eq!(flags(serial), (Some(33554432), Some("Serial".into())));
    }
}
