//! Servers on 127.0.0.1 for the suite: free ports, waiting until one listens, a background
//! process whose output goes to files, and the tallies of redis-benchmark and ab.

use std::net::{TcpListener, TcpStream};
use std::path::Path;
use std::process::{Command, Stdio};
use std::thread;
use std::time::{Duration, Instant};

use super::Guard;

/// A port on 127.0.0.1 that nothing listened on a moment ago.
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free port on 127.0.0.1")
}

/// Starts `command` in the background, its stdout and stderr going to `log`.
pub fn background(command: &mut Command, log: &Path) -> Result<Guard, String> {
    let file = std::fs::File::create(log).map_err(|e| format!("{}: {e}", log.display()))?;
    let copy = file.try_clone().map_err(|e| e.to_string())?;
    command
        .stdin(Stdio::null())
        .stdout(Stdio::from(file))
        .stderr(Stdio::from(copy));
    Guard::spawn(command)
}

/// Waits until something accepts connections on `port`, at most `limit`; fails early if the
/// server ends first.
pub fn wait_for_port(
    server: &mut Guard,
    port: u16,
    limit: Duration,
    log: &Path,
) -> Result<(), String> {
    let start = Instant::now();
    loop {
        if TcpStream::connect(("127.0.0.1", port)).is_ok() {
            return Ok(());
        }
        if let Ok(Some(status)) = server.child().try_wait() {
            return Err(format!(
                "the server ended ({}) before it listened on port {port}; its log:\n{}",
                super::describe_status(status),
                super::tail(&std::fs::read_to_string(log).unwrap_or_default(), 30)
            ));
        }
        if start.elapsed() > limit {
            return Err(format!(
                "nothing listened on port {port} after {:.0} s; the server's log:\n{}",
                limit.as_secs_f64(),
                super::tail(&std::fs::read_to_string(log).unwrap_or_default(), 30)
            ));
        }
        thread::sleep(Duration::from_millis(20));
    }
}

/// One redis-benchmark test's result: its name and requests per second.
#[derive(Debug, Clone, PartialEq)]
pub struct Throughput {
    pub test: String,
    pub per_second: f64,
}

/// The final lines of `redis-benchmark -q` ("SET: 81037.28 requests per second, p50=0.135
/// msec"); progress lines end with a carriage return and are skipped.
pub fn parse_redis_benchmark(output: &str) -> Vec<Throughput> {
    output
        .split(['\n', '\r'])
        .filter_map(|line| {
            let (test, rest) = line.split_once(": ")?;
            let (number, _) = rest.split_once(" requests per second")?;
            Some(Throughput {
                test: test.trim().to_string(),
                per_second: number.trim().parse().ok()?,
            })
        })
        .collect()
}

/// ab's "Complete requests", "Failed requests" and "Non-2xx responses" (0 when absent).
pub fn parse_ab(output: &str) -> Option<(u64, u64, u64)> {
    let field = |name: &str| {
        output.lines().find_map(|line| {
            line.strip_prefix(name)?
                .split_whitespace()
                .next()?
                .parse::<u64>()
                .ok()
        })
    };
    Some((
        field("Complete requests:")?,
        field("Failed requests:")?,
        field("Non-2xx responses:").unwrap_or(0),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn redis_benchmark_lines_are_read() {
        let out = "SET: 0.00\rSET: 81037.28 requests per second, p50=0.135 msec    \n\
                   GET: 90000.00 requests per second, p50=0.1 msec\n";
        let parsed = parse_redis_benchmark(out);
        assert_eq!(parsed.len(), 2);
        assert_eq!(parsed[0].test, "SET");
        assert_eq!(parsed[1].per_second, 90000.0);
    }

    #[test]
    fn ab_tallies_are_read() {
        let out = "Complete requests:      2000\nFailed requests:        0\n";
        assert_eq!(parse_ab(out), Some((2000, 0, 0)));
    }
}
