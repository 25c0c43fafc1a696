//! Files that hold secrets (the key files, the SQLite database with its `-wal` and `-shm`)
//! must be their owner's alone, as ssh insists for a private key: a key file others can read
//! unseals every stored email, and the database holds every reader's sealed contact details
//! with their keyed hashes.
//!
//! This module refuses such a file with the `chmod` that fixes it; it never changes a mode
//! itself, since the operator may have a reason for it that only they can weigh. It also names
//! the files that sit beside a SQLite database.

use std::{
    fmt,
    fs::File,
    io,
    path::{Path, PathBuf},
};

/// Files that group or others may read or write.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Exposed {
    /// Each file, with its permission bits.
    pub files: Vec<(PathBuf, u32)>,
}

impl std::error::Error for Exposed {}

impl fmt::Display for Exposed {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, (path, mode)) in self.files.iter().enumerate() {
            if i > 0 {
                f.write_str(", and ")?;
            }
            write!(
                f,
                "{} is {} (mode {:04o})",
                path.display(),
                exposure(*mode),
                mode
            )?;
        }
        f.write_str(": run `chmod 600")?;
        for (path, _) in &self.files {
            write!(f, " {}", shell_word(path))?;
        }
        f.write_str("`, since it must be readable by its owner only")
    }
}

/// What a mode lets others do, in words: `readable by others`, `writable by its group`.
fn exposure(mode: u32) -> String {
    let how = if mode & 0o044 != 0 {
        "readable"
    } else {
        "writable"
    };
    let who = if mode & 0o007 != 0 {
        "others"
    } else {
        "its group"
    };
    format!("{how} by {who}")
}

/// `path` as one word for a POSIX shell: bare when it is plainly safe, else single-quoted.
fn shell_word(path: &Path) -> String {
    let text = path.display().to_string();
    let plain = !text.is_empty()
        && text
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "/._-+,:@%".contains(c));
    if plain {
        text
    } else {
        format!("'{}'", text.replace('\'', r"'\''"))
    }
}

/// Group and others' permission bits.
#[cfg(unix)]
const NOT_OWNERS: u32 = 0o077;

#[cfg(unix)]
fn mode_of(metadata: &std::fs::Metadata) -> u32 {
    use std::os::unix::fs::PermissionsExt;
    metadata.permissions().mode() & 0o7777
}

/// Refuses `file`, opened from `path`, unless it is its owner's alone. Checks the open file
/// itself, so the answer is about what is read, whatever happens to the name meanwhile.
pub fn check_open(file: &File, path: &Path) -> Result<(), CheckError> {
    #[cfg(unix)]
    {
        let mode = mode_of(&file.metadata().map_err(|e| CheckError::io(e, path))?);
        if mode & NOT_OWNERS != 0 {
            return Err(CheckError::Exposed(Exposed {
                files: vec![(path.to_owned(), mode)],
            }));
        }
    }
    #[cfg(not(unix))]
    let _ = (file, path);
    Ok(())
}

/// Refuses every one of `paths` that exists and is not its owner's alone, all named in one
/// error; a missing file is none of its business.
pub fn check_paths(paths: &[PathBuf]) -> Result<(), CheckError> {
    #[cfg(unix)]
    {
        let mut files = Vec::new();
        for path in paths {
            let mode = match std::fs::metadata(path) {
                Ok(metadata) => mode_of(&metadata),
                Err(e) if e.kind() == io::ErrorKind::NotFound => continue,
                Err(e) => return Err(CheckError::io(e, path)),
            };
            if mode & NOT_OWNERS != 0 {
                files.push((path.clone(), mode));
            }
        }
        if !files.is_empty() {
            return Err(CheckError::Exposed(Exposed { files }));
        }
    }
    #[cfg(not(unix))]
    let _ = paths;
    Ok(())
}

/// Creates `path` empty and readable by its owner only, unless a file is there already: so that
/// what is written into it later (SQLite's pages) never sits in a file others can read.
pub fn create_private(path: &Path) -> Result<(), CheckError> {
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    match options.open(path) {
        Ok(_) => Ok(()),
        Err(e) if e.kind() == io::ErrorKind::AlreadyExists => Ok(()),
        Err(e) => Err(CheckError::io(e, path)),
    }
}

/// Why a secret file was refused.
#[derive(Debug, thiserror::Error)]
pub enum CheckError {
    /// Others may read or write it.
    #[error(transparent)]
    Exposed(#[from] Exposed),
    /// It could not be looked at.
    #[error("{}: {source}", path.display())]
    Io { path: PathBuf, source: io::Error },
}

impl CheckError {
    fn io(source: io::Error, path: &Path) -> CheckError {
        CheckError::Io {
            path: path.to_owned(),
            source,
        }
    }
}

/// The SQLite file a `sqlite:` URL names, if it names one.
pub fn sqlite_path(url: &str) -> Option<PathBuf> {
    let rest = url.strip_prefix("sqlite:")?;
    let rest = rest.strip_prefix("//").unwrap_or(rest);
    let path = rest.split('?').next().unwrap_or_default();
    (!path.is_empty() && path != ":memory:").then(|| PathBuf::from(path))
}

/// The key file that sits beside a SQLite database: `replyguard.db` →
/// `replyguard.key`.
pub fn key_file_beside(database: &Path) -> PathBuf {
    database.with_extension("key")
}

/// The file named as `path` with `suffix` appended: `replyguard.db` and `-lock` give
/// `replyguard.db-lock`.
pub fn with_suffix(path: &Path, suffix: &str) -> PathBuf {
    let mut name = path.as_os_str().to_owned();
    name.push(suffix);
    PathBuf::from(name)
}

#[cfg(all(test, unix))]
mod tests {
    use std::os::unix::fs::PermissionsExt;

    use super::*;

    fn file_with_mode(dir: &Path, name: &str, mode: u32) -> PathBuf {
        let path = dir.join(name);
        std::fs::write(&path, "x").expect("write");
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(mode)).expect("chmod");
        path
    }

    #[test]
    fn a_file_others_can_read_is_refused_with_the_chmod_that_fixes_it() {
        let dir = tempfile::tempdir().expect("dir");
        let path = file_with_mode(dir.path(), "replyguard.key", 0o644);
        let refused = check_paths(std::slice::from_ref(&path)).expect_err("refused");
        let message = refused.to_string();
        assert!(
            message.contains(&format!(
                "{} is readable by others (mode 0644): run `chmod 600 {}`",
                path.display(),
                path.display()
            )),
            "{message}"
        );
    }

    #[test]
    fn group_access_is_refused_and_owner_only_access_is_accepted() {
        let dir = tempfile::tempdir().expect("dir");
        let group_reads = file_with_mode(dir.path(), "a.key", 0o640);
        let group_writes = file_with_mode(dir.path(), "b.key", 0o620);
        let private = file_with_mode(dir.path(), "c.key", 0o600);
        let read_only = file_with_mode(dir.path(), "d.key", 0o400);
        let message = check_paths(&[group_reads, group_writes, private.clone()])
            .expect_err("refused")
            .to_string();
        assert!(
            message.contains("is readable by its group (mode 0640)"),
            "{message}"
        );
        assert!(
            message.contains("is writable by its group (mode 0620)"),
            "{message}"
        );
        assert!(!message.contains("c.key"), "{message}");
        assert!(check_paths(&[private, read_only, dir.path().join("missing")]).is_ok());
    }

    #[test]
    fn an_open_file_is_judged_by_its_own_mode() {
        let dir = tempfile::tempdir().expect("dir");
        let path = file_with_mode(dir.path(), "k", 0o604);
        let file = File::open(&path).expect("open");
        assert!(matches!(
            check_open(&file, &path),
            Err(CheckError::Exposed(_))
        ));
    }

    #[test]
    fn a_path_with_spaces_is_quoted_for_the_shell() {
        assert_eq!(
            shell_word(Path::new("/srv/my data/x.key")),
            "'/srv/my data/x.key'"
        );
        assert_eq!(shell_word(Path::new("/srv/it's")), r"'/srv/it'\''s'");
        assert_eq!(shell_word(Path::new("/srv/rg/x.key")), "/srv/rg/x.key");
    }

    #[test]
    fn a_created_file_is_private_and_an_existing_one_left_alone() {
        let dir = tempfile::tempdir().expect("dir");
        let path = dir.path().join("replyguard.db");
        create_private(&path).expect("created");
        let mode = std::fs::metadata(&path).expect("meta").permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
        let existing = file_with_mode(dir.path(), "old.db", 0o644);
        create_private(&existing).expect("left alone");
        assert_eq!(std::fs::read_to_string(&existing).expect("read"), "x");
    }
}

#[cfg(test)]
mod paths_tests {
    use super::*;

    #[test]
    fn sqlite_urls_name_their_file() {
        assert_eq!(
            sqlite_path("sqlite://replyguard.db"),
            Some(PathBuf::from("replyguard.db"))
        );
        assert_eq!(
            sqlite_path("sqlite:///var/lib/rg/data.db?mode=rwc"),
            Some(PathBuf::from("/var/lib/rg/data.db"))
        );
        assert_eq!(sqlite_path("sqlite::memory:"), None);
        assert_eq!(sqlite_path("postgres://localhost/x"), None);
    }

    #[test]
    fn the_key_file_sits_beside_the_database() {
        assert_eq!(
            key_file_beside(Path::new("/data/replyguard.db")),
            PathBuf::from("/data/replyguard.key")
        );
    }
}
