//! A PostgreSQL cluster of a test's own, in a temporary directory on a free port: a drill
//! may stop, crash and restart it without disturbing any other test.

use std::{
    net::TcpListener,
    path::{Path, PathBuf},
    process::{Command, Output},
};

use tempfile::TempDir;

pub struct Cluster {
    dir: TempDir,
    bin: PathBuf,
    port: u16,
}

impl Cluster {
    /// `initdb` and start a cluster; fails, with what to install, when PostgreSQL's server
    /// programs are missing.
    pub fn start() -> Cluster {
        let bin = server_programs();
        let dir = tempfile::tempdir().expect("temp dir");
        // PostgreSQL refuses to run as root: as root, the cluster belongs to `postgres`.
        if is_root() {
            run(Command::new("chown").arg("postgres").arg(dir.path()));
        }
        let port = TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .expect("a free port")
            .port();
        let cluster = Cluster { dir, bin, port };
        run(cluster.command("initdb").args([
            "-D",
            &cluster.data().display().to_string(),
            "-A",
            "trust",
            "-U",
            "postgres",
            "--no-sync",
        ]));
        cluster.start_again();
        cluster
    }

    /// Where it listens.
    pub fn addr(&self) -> std::net::SocketAddr {
        std::net::SocketAddr::from(([127, 0, 0, 1], self.port))
    }

    /// What `REPLYGUARD_DATABASE_URL` would be.
    pub fn url(&self) -> String {
        format!("postgres://postgres@127.0.0.1:{}/postgres", self.port)
    }

    /// Starts the stopped cluster, and waits until it takes connections.
    pub fn start_again(&self) {
        let options = format!(
            "-p {} -k {} -c listen_addresses=127.0.0.1 -c fsync=off",
            self.port,
            self.dir.path().display()
        );
        run(self.command("pg_ctl").args([
            "-D",
            &self.data().display().to_string(),
            "-l",
            &self.dir.path().join("log").display().to_string(),
            "-o",
            &options,
            "-w",
            "start",
        ]));
    }

    /// Stops the cluster as a crash would: no checkpoint, every session cut.
    pub fn crash(&self) {
        run(self.command("pg_ctl").args([
            "-D",
            &self.data().display().to_string(),
            "-m",
            "immediate",
            "-w",
            "stop",
        ]));
    }

    fn data(&self) -> PathBuf {
        self.dir.path().join("data")
    }

    fn command(&self, program: &str) -> Command {
        command_as_postgres(&self.bin.join(program))
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        let _ = self
            .command("pg_ctl")
            .args([
                "-D",
                &self.data().display().to_string(),
                "-m",
                "immediate",
                "stop",
            ])
            .output();
    }
}

/// The directory of `initdb` and `pg_ctl`: the newest PostgreSQL under `/usr/lib/postgresql`.
fn server_programs() -> PathBuf {
    let mut versions: Vec<PathBuf> = std::fs::read_dir("/usr/lib/postgresql")
        .map(|entries| entries.filter_map(|e| e.ok()).map(|e| e.path()).collect())
        .unwrap_or_default();
    versions.sort_by_key(|path| {
        path.file_name()
            .and_then(|name| name.to_str())
            .and_then(|name| name.parse::<u32>().ok())
    });
    let bin = versions
        .pop()
        .map(|version| version.join("bin"))
        .filter(|bin| bin.join("initdb").exists());
    bin.expect(
        "this drill runs a PostgreSQL cluster of its own and needs PostgreSQL's server programs \
         (Debian: apt-get install postgresql)",
    )
}

fn is_root() -> bool {
    Command::new("id")
        .arg("-u")
        .output()
        .is_ok_and(|out| out.stdout.trim_ascii() == b"0")
}

fn command_as_postgres(program: &Path) -> Command {
    if is_root() {
        let mut command = Command::new("runuser");
        command.args(["-u", "postgres", "--"]).arg(program);
        command
    } else {
        Command::new(program)
    }
}

fn run(command: &mut Command) -> Output {
    let output = command.output().expect("the command runs");
    assert!(
        output.status.success(),
        "{command:?} failed: {}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    output
}
