//! Issue 4: a real long-running server, watched for 30 s under load, must get a report with no
//! growing site. nginx from Debian's packages (`.ci/run` installs it), in one process
//! (`master_process off`), so that the process leakscope watches is the one serving.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::harness::expect::Exit;
use crate::harness::leakscope::Invocation;
use crate::harness::report::read_json;

fn nginx() -> Option<std::path::PathBuf> {
    ["/usr/sbin/nginx", "/usr/bin/nginx"]
        .into_iter()
        .map(std::path::PathBuf::from)
        .find(|p| p.exists())
}

/// Keep-alive GET requests until `until`; returns how many got a response.
fn load(port: u16, until: Instant) -> u64 {
    let mut served = 0;
    while Instant::now() < until {
        let Ok(stream) = TcpStream::connect(("127.0.0.1", port)) else {
            std::thread::sleep(Duration::from_millis(50));
            continue;
        };
        let _ = stream.set_read_timeout(Some(Duration::from_secs(2)));
        let mut writer = stream.try_clone().unwrap();
        let mut reader = BufReader::new(stream);
        while Instant::now() < until {
            let path = format!("/index.html?request={served}");
            let request = format!("GET {path} HTTP/1.1\r\nHost: localhost\r\n\r\n");
            if writer.write_all(request.as_bytes()).is_err() {
                break;
            }
            let mut length = None;
            let mut line = String::new();
            loop {
                line.clear();
                if reader.read_line(&mut line).unwrap_or(0) == 0 {
                    break;
                }
                if line == "\r\n" {
                    break;
                }
                if let Some(value) = line.to_ascii_lowercase().strip_prefix("content-length:") {
                    length = value.trim().parse::<usize>().ok();
                }
            }
            let Some(length) = length else { break };
            let mut body = vec![0; length];
            if reader.read_exact(&mut body).is_err() {
                break;
            }
            served += 1;
        }
    }
    served
}

#[test]
fn nginx_watched_for_30_seconds_under_load_has_no_growing_site() {
    let Some(nginx) = nginx() else {
        eprintln!("SKIPPED: nginx is not installed (.ci/run installs it)");
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    for sub in ["logs", "html"] {
        std::fs::create_dir_all(root.join(sub)).unwrap();
    }
    std::fs::write(root.join("html/index.html"), "hello from nginx\n").unwrap();
    let port = TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let conf = root.join("nginx.conf");
    std::fs::write(
        &conf,
        format!(
            "daemon off;\nmaster_process off;\nworker_processes 1;\n\
             error_log {root}/logs/error.log;\npid {root}/nginx.pid;\n\
             events {{ worker_connections 64; }}\n\
             http {{ access_log off; server {{ listen 127.0.0.1:{port}; \
             location / {{ root {root}/html; }} }} }}\n",
            root = root.display()
        ),
    )
    .unwrap();
    let started = Instant::now();
    let loader = std::thread::spawn(move || load(port, started + Duration::from_secs(28)));
    let (output, report) = Invocation::new(&nginx)
        .args([
            "-p".as_ref(),
            root.as_os_str(),
            "-c".as_ref(),
            conf.as_os_str(),
        ])
        .extra(["--duration", "30s"])
        .run(root)
        .unwrap();
    let served = loader.join().unwrap();
    assert_eq!(output.exit(), Exit::Code(0), "{}", output.stderr_text());
    assert!(served > 1000, "only {served} requests were served");
    let report = read_json(&report);
    assert!(report["timeline"].as_array().unwrap().len() >= 100);
    let growing: Vec<&Value> = report["growth"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|g| g["verdict"] == "growing")
        .collect();
    assert!(growing.is_empty(), "after {served} requests: {growing:#?}");
}
