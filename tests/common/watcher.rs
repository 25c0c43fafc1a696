//! `replyctl watch` as a child process, read line by line with a bound, so a watcher that never
//! prints fails its test instead of hanging it.

use std::{
    io::{BufRead, BufReader, Read},
    process::{Child, ChildStderr, Command, Stdio},
    sync::mpsc::{Receiver, channel},
    time::Duration,
};

pub struct Watcher {
    child: Child,
    stderr: BufReader<ChildStderr>,
    lines: Receiver<String>,
}

impl Watcher {
    /// Starts `replyctl --output json watch` against `endpoint` and waits until it says it is
    /// watching.
    pub fn start(endpoint: &str, token: &str) -> Watcher {
        let mut child = Command::new(env!("CARGO_BIN_EXE_replyctl"))
            .env("REPLYGUARD_ENDPOINT", endpoint)
            .env("REPLYGUARD_TOKEN", token)
            .args(["--output", "json", "watch"])
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("replyctl watch starts");
        let mut stderr = BufReader::new(child.stderr.take().expect("stderr"));
        let mut line = String::new();
        stderr.read_line(&mut line).expect("read stderr");
        assert!(line.starts_with("watching"), "{line}");
        // Read on a thread of its own: the test waits on it with a bound.
        let mut stdout = BufReader::new(child.stdout.take().expect("stdout"));
        let (sent, lines) = channel();
        std::thread::spawn(move || {
            loop {
                let mut line = String::new();
                match stdout.read_line(&mut line) {
                    Ok(0) | Err(_) => return,
                    Ok(_) if sent.send(line).is_err() => return,
                    Ok(_) => {}
                }
            }
        });
        Watcher {
            child,
            stderr,
            lines,
        }
    }

    /// The next item it prints, as JSON, within `bound`; `which` names it if none comes.
    pub fn next_item(&mut self, bound: Duration, which: &str) -> serde_json::Value {
        let line = self.lines.recv_timeout(bound).unwrap_or_else(|err| {
            // Stopped first: its stderr ends only when it does.
            let _ = self.child.kill();
            let _ = self.child.wait();
            let mut said = String::new();
            let _ = self.stderr.read_to_string(&mut said);
            panic!("the watcher prints no {which} within {bound:?} ({err}); it said: {said}")
        });
        serde_json::from_str(&line).expect("one JSON item per line")
    }

    /// Stops it, and returns what it said on stderr after it started watching.
    pub fn stop(mut self) -> String {
        self.child.kill().expect("stop the watcher");
        let _ = self.child.wait();
        let mut said = String::new();
        let _ = self.stderr.read_to_string(&mut said);
        said
    }
}
