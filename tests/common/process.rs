//! `replyguard serve` as the operator runs it: the real binary, on a database URL, its address
//! read from its log.

use std::{
    io::{BufRead, BufReader},
    process::{Child, Command, ExitStatus, Stdio},
    time::Duration,
};

use replyguard::proto::comments_client::CommentsClient;
use tonic::transport::Channel;

use super::{Comments, bearer};

/// Adds a site with `replyguard site add`; its site key and moderator token.
pub fn add_site(database: &str, name: &str) -> (String, String) {
    let added = Command::new(env!("CARGO_BIN_EXE_replyguard"))
        .args(["site", "add", name, "--output", "env"])
        .args(["--database", database])
        .output()
        .expect("site add runs");
    assert!(added.status.success(), "{added:?}");
    let env = String::from_utf8_lossy(&added.stdout);
    let value = |name: &str| {
        env.lines()
            .find_map(|line| line.strip_prefix(name))
            .map(|value| value.trim_matches(['\'', '"']).to_owned())
            .unwrap_or_else(|| panic!("{name} in {env}"))
    };
    (
        value("REPLYGUARD_SITE_KEY="),
        value("REPLYGUARD_MOD_TOKEN="),
    )
}

/// Starts `replyguard serve --listen 127.0.0.1:0` on `database` with `args` more; the child
/// and its endpoint, once its log says where it listens. The log is drained from then on, so
/// the server never blocks on a full pipe.
pub fn serve(database: &str, args: &[&str], env: &[(&str, &str)]) -> (Child, String) {
    let mut child = Command::new(env!("CARGO_BIN_EXE_replyguard"))
        .args(["serve", "--listen", "127.0.0.1:0", "--database", database])
        .args(args)
        .envs(env.iter().copied())
        .env("RUST_LOG", "info")
        .env("NO_COLOR", "1")
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("serve starts");
    let mut stderr = BufReader::new(child.stderr.take().expect("stderr"));
    let mut line = String::new();
    let endpoint = loop {
        line.clear();
        assert!(
            stderr.read_line(&mut line).expect("read the log") > 0,
            "serve ended before serving"
        );
        if let Some(addr) = line
            .split_whitespace()
            .find_map(|field| field.strip_prefix("addr="))
        {
            break format!("http://{addr}");
        }
    };
    std::thread::spawn(move || std::io::copy(&mut stderr, &mut std::io::sink()));
    (child, endpoint)
}

/// A new secret key file in `dir`, written by `replyguard key generate`, as an operator of a
/// PostgreSQL deployment makes one; its path.
pub fn key_file(dir: &std::path::Path) -> String {
    let path = dir.join("replyguard.key");
    let generated = Command::new(env!("CARGO_BIN_EXE_replyguard"))
        .args(["key", "generate"])
        .arg(&path)
        .output()
        .expect("key generate runs");
    assert!(generated.status.success(), "{generated:?}");
    path.display().to_string()
}

/// A `Comments` client of the server at `endpoint`, sending `token`.
pub async fn comments(endpoint: &str, token: &str) -> Comments {
    let channel = Channel::from_shared(endpoint.to_owned())
        .expect("endpoint")
        .connect()
        .await
        .expect("connects");
    CommentsClient::with_interceptor(channel, bearer(Some(token)))
}

/// Sends SIGTERM to `child` and waits for it to exit; a test fails if that takes longer than
/// `bound`, rather than hang, and the process is killed so that it does not outlive the test.
pub fn terminate(mut child: Child, bound: Duration) -> ExitStatus {
    let pid = child.id().to_string();
    let signal = |name: &str| {
        Command::new("kill")
            .args([name, &pid])
            .status()
            .expect("kill runs")
    };
    assert!(signal("-TERM").success());
    let (sent, exited) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let _ = sent.send(child.wait());
    });
    let Ok(status) = exited.recv_timeout(bound) else {
        signal("-KILL");
        panic!("replyguard serve did not exit within {bound:?} of SIGTERM");
    };
    status.expect("wait")
}
