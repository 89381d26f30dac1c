//! A real HTTP server that counts side effects: every request answers `{}` and is recorded by
//! its path with when it arrived, so a test can tell how often a task really ran.

use std::collections::HashMap;
use std::fmt::Write as _;
use std::io::{BufRead, BufReader, Write};
use std::net::TcpListener;
use std::sync::{Arc, Mutex};

/// Every request an HTTP server got, by path, with when it arrived.
#[derive(Clone, Default)]
pub struct Effects(Arc<Mutex<HashMap<String, Vec<jiff::Timestamp>>>>);

impl Effects {
    /// Serves on a free port; every request answers `{}` and is counted by its path.
    pub fn serve() -> (Self, u16) {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let effects = Self::default();
        let seen = effects.clone();
        std::thread::spawn(move || {
            for stream in listener.incoming().flatten() {
                let seen = seen.clone();
                std::thread::spawn(move || {
                    let mut reader = BufReader::new(stream.try_clone().unwrap());
                    let mut first = String::new();
                    if reader.read_line(&mut first).is_err() {
                        return;
                    }
                    let mut length = 0;
                    loop {
                        let mut header = String::new();
                        if reader.read_line(&mut header).unwrap_or(0) == 0 || header == "\r\n" {
                            break;
                        }
                        if let Some(value) = header.to_ascii_lowercase().strip_prefix("content-length:") {
                            length = value.trim().parse().unwrap_or(0);
                        }
                    }
                    let mut body = vec![0; length];
                    let _ = std::io::Read::read_exact(&mut reader, &mut body);
                    let path = first.split_whitespace().nth(1).unwrap_or("").to_owned();
                    seen.0.lock().unwrap().entry(path).or_default().push(jiff::Timestamp::now());
                    let mut stream = stream;
                    let _ = stream.write_all(
                        b"HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: 2\r\nconnection: close\r\n\r\n{}",
                    );
                });
            }
        });
        (effects, port)
    }

    /// When each request to `path` arrived.
    pub fn times(&self, path: &str) -> Vec<jiff::Timestamp> {
        self.0.lock().unwrap().get(path).cloned().unwrap_or_default()
    }
}

/// A workflow document that POSTs to the server on `port` once per name in `calls`, at
/// `/<execution id>/<name>`, resting a second between two calls.
pub fn workflow(port: u16, calls: &[&str]) -> String {
    let mut text = String::from("document: { dsl: '1.0.0', namespace: test, name: effects, version: '0.1.0' }\ndo:\n");
    for (n, task) in calls.iter().enumerate() {
        if n > 0 {
            let _ = write!(text, "  - rest-{n}:\n      wait: PT1S\n");
        }
        let _ = write!(
            text,
            "  - {task}:\n      call: http\n      with:\n        method: post\n        endpoint: ${{ \"http://127.0.0.1:{port}/\" + $workflow.id + \"/{task}\" }}\n"
        );
    }
    text
}

/// The JSON-pointer reference of call `task` in [`workflow`]`(_, calls)`.
pub fn reference(calls: &[&str], task: &str) -> String {
    let at = calls.iter().position(|c| *c == task).unwrap_or_default();
    format!("/do/{}/{task}", at * 2)
}
