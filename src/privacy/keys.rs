//! The service's one secret, and the file it lives in.
//!
//! The key must never reach a log, an error message or a `Debug` dump, and an existing key file
//! is never overwritten: losing it makes every stored email unreadable.

use std::{
    fmt,
    fs::{self, File, OpenOptions},
    io::{self, Read, Write},
    os::unix::fs::OpenOptionsExt,
    path::{Path, PathBuf},
};

use base64::{Engine, engine::general_purpose::STANDARD};

use super::{PrivacyError, os_random};
use crate::secret_files::{self, CheckError};

/// The 32-byte secret every other privacy key is derived from.
///
/// Deliberately neither `Display`, `Clone` nor `PartialEq`: it is read once at start-up, turned
/// into a [`Vault`](super::Vault), and dropped.
pub struct SecretKey([u8; 32]);

impl SecretKey {
    /// Reads a key written by [`SecretKey::to_base64`]: standard base64 of exactly 32 bytes,
    /// surrounding whitespace (such as the file's trailing newline) ignored.
    pub fn from_base64(text: &str) -> Result<SecretKey, PrivacyError> {
        let bytes = STANDARD
            .decode(text.trim())
            .map_err(|_| PrivacyError::BadKey("is not standard base64".to_owned()))?;
        let len = bytes.len();
        let bytes: [u8; 32] = bytes
            .try_into()
            .map_err(|_| PrivacyError::BadKey(format!("must be 32 bytes, found {len}")))?;
        Ok(SecretKey(bytes))
    }

    /// A fresh key from the operating system's generator.
    pub fn generate() -> SecretKey {
        SecretKey(os_random())
    }

    /// Standard base64, the form [`SecretKey::from_base64`] reads back.
    pub fn to_base64(&self) -> String {
        STANDARD.encode(self.0)
    }

    pub(super) fn as_bytes(&self) -> &[u8; 32] {
        &self.0
    }
}

impl fmt::Debug for SecretKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("SecretKey(redacted)")
    }
}

/// Reads the key at `path`, or creates the file with a fresh key if there is none yet.
///
/// A new file is readable by its owner only (mode 0600). When several processes start at once
/// on the same path, exactly one key wins and every process returns it.
pub fn load_or_create_key_file(path: &Path) -> Result<SecretKey, PrivacyError> {
    match read_key_file(path) {
        Err(PrivacyError::Io(e)) if e.kind() == io::ErrorKind::NotFound => create_key_file(path),
        other => other,
    }
}

/// Reads the key at `path`, which must exist.
///
/// A file that group or others may read or write is refused, with the `chmod` that fixes it.
pub fn read_key_file(path: &Path) -> Result<SecretKey, PrivacyError> {
    let mut file = File::open(path).map_err(|e| with_path(e, path))?;
    secret_files::check_open(&file, path).map_err(|e| match e {
        CheckError::Exposed(exposed) => PrivacyError::Exposed(exposed),
        CheckError::Io { source, .. } => with_path(source, path),
    })?;
    let mut text = String::new();
    file.read_to_string(&mut text)
        .map_err(|e| with_path(e, path))?;
    SecretKey::from_base64(&text)
        .map_err(|e| PrivacyError::BadKey(format!("{}: {e}", path.display())))
}

/// Writes `key` to a new file at `path`, readable by its owner only, and makes it durable;
/// refuses (`AlreadyExists`) when there is a file there already. The file appears whole or not
/// at all.
pub fn write_new_key_file(path: &Path, key: &SecretKey) -> Result<(), PrivacyError> {
    link_key_file(path, key).map_err(|e| with_path(e, path))
}

/// Creates a key file, or reads the one a process that won the race created.
fn create_key_file(path: &Path) -> Result<SecretKey, PrivacyError> {
    let key = SecretKey::generate();
    match link_key_file(path, &key) {
        Ok(()) => Ok(key),
        Err(e) if e.kind() == io::ErrorKind::AlreadyExists => read_key_file(path),
        Err(e) => Err(with_path(e, path)),
    }
}

/// Writes the whole key to a private temporary file first and only then links it into place, so
/// a process that loses the race, or starts after a crash, never sees a half-written key file.
fn link_key_file(path: &Path, key: &SecretKey) -> io::Result<()> {
    let staging = staging_path(path);
    let written = write_private_file(&staging, format!("{}\n", key.to_base64()).as_bytes());
    // `hard_link` refuses to replace an existing file, unlike `rename`.
    let linked = written.and_then(|()| fs::hard_link(&staging, path));
    // The staging name is only scaffolding; failing to remove it must not hide the outcome.
    let _ = fs::remove_file(&staging);
    linked?;
    sync_parent_dir(path)
}

/// Puts the key file at `next` in the place of the one at `path`, which stays as `previous`
/// (replacing any file there). A file is at `path` throughout, holding the old key or the new.
pub fn replace_key_file(path: &Path, next: &Path, previous: &Path) -> Result<(), PrivacyError> {
    match fs::remove_file(previous) {
        Err(e) if e.kind() != io::ErrorKind::NotFound => return Err(with_path(e, previous)),
        _ => {}
    }
    fs::hard_link(path, previous).map_err(|e| with_path(e, previous))?;
    fs::rename(next, path).map_err(|e| with_path(e, path))?;
    sync_parent_dir(path).map_err(|e| with_path(e, path))
}

fn staging_path(path: &Path) -> PathBuf {
    let mut name = path.as_os_str().to_owned();
    name.push(format!(".{}.tmp", hex::encode(os_random::<8>())));
    PathBuf::from(name)
}

fn write_private_file(path: &Path, contents: &[u8]) -> io::Result<()> {
    let mut file = OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)?;
    file.write_all(contents)?;
    file.sync_all()
}

/// Makes the new directory entry itself durable, not only the file's contents.
fn sync_parent_dir(path: &Path) -> io::Result<()> {
    match path.parent() {
        Some(dir) if !dir.as_os_str().is_empty() => File::open(dir)?.sync_all(),
        _ => File::open(".")?.sync_all(),
    }
}

fn with_path(e: io::Error, path: &Path) -> PrivacyError {
    PrivacyError::Io(io::Error::new(e.kind(), format!("{}: {e}", path.display())))
}

#[cfg(test)]
mod tests {
    use std::os::unix::fs::PermissionsExt;

    use super::*;

    #[test]
    fn a_key_survives_base64_and_back() -> Result<(), PrivacyError> {
        let key = SecretKey::generate();
        let again = SecretKey::from_base64(&format!("  {}\n", key.to_base64()))?;
        assert_eq!(key.as_bytes(), again.as_bytes());
        Ok(())
    }

    #[test]
    fn a_key_of_the_wrong_length_is_refused() {
        let short = STANDARD.encode([7u8; 31]);
        assert!(matches!(
            SecretKey::from_base64(&short),
            Err(PrivacyError::BadKey(m)) if m.contains("32 bytes")
        ));
    }

    #[test]
    fn a_key_that_is_not_base64_is_refused() {
        assert!(matches!(
            SecretKey::from_base64("not base64 at all!"),
            Err(PrivacyError::BadKey(_))
        ));
    }

    #[test]
    fn a_url_safe_key_is_refused_because_keys_are_standard_base64() {
        let url_safe = base64::engine::general_purpose::URL_SAFE.encode([0xfb_u8; 32]);
        assert!(SecretKey::from_base64(&url_safe).is_err());
    }

    #[test]
    fn debug_output_never_shows_the_key() {
        let key = SecretKey::generate();
        let shown = format!("{key:?}");
        assert_eq!(shown, "SecretKey(redacted)");
        assert!(!shown.contains(&key.to_base64()));
    }

    #[test]
    fn two_generated_keys_differ() {
        assert_ne!(
            SecretKey::generate().as_bytes(),
            SecretKey::generate().as_bytes()
        );
    }

    #[test]
    fn a_new_key_file_is_private_and_read_back_on_the_next_start() -> Result<(), PrivacyError> {
        let dir = tempfile::tempdir()?;
        let path = dir.path().join("secret.key");

        let first = load_or_create_key_file(&path)?;
        let mode = fs::metadata(&path)?.permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
        assert_eq!(
            fs::read_to_string(&path)?,
            format!("{}\n", first.to_base64())
        );

        let second = load_or_create_key_file(&path)?;
        assert_eq!(first.as_bytes(), second.as_bytes());
        Ok(())
    }

    #[test]
    fn creating_a_key_file_leaves_no_staging_file_behind() -> Result<(), PrivacyError> {
        let dir = tempfile::tempdir()?;
        load_or_create_key_file(&dir.path().join("secret.key"))?;
        assert_eq!(fs::read_dir(dir.path())?.count(), 1);
        Ok(())
    }

    #[test]
    fn a_new_key_file_is_written_privately_and_never_over_another() -> Result<(), PrivacyError> {
        let dir = tempfile::tempdir()?;
        let path = dir.path().join("next.key");
        let key = SecretKey::generate();
        write_new_key_file(&path, &key)?;
        assert_eq!(fs::metadata(&path)?.permissions().mode() & 0o777, 0o600);
        assert_eq!(read_key_file(&path)?.as_bytes(), key.as_bytes());

        let refused = write_new_key_file(&path, &SecretKey::generate());
        assert!(
            matches!(&refused, Err(PrivacyError::Io(e)) if e.kind() == io::ErrorKind::AlreadyExists),
            "{refused:?}"
        );
        assert_eq!(read_key_file(&path)?.as_bytes(), key.as_bytes());
        Ok(())
    }

    #[test]
    fn an_existing_key_file_is_never_replaced() -> Result<(), PrivacyError> {
        let dir = tempfile::tempdir()?;
        let path = dir.path().join("secret.key");
        let existing = SecretKey::generate();
        write_private_file(&path, existing.to_base64().as_bytes())?;

        let loaded = load_or_create_key_file(&path)?;
        assert_eq!(loaded.as_bytes(), existing.as_bytes());
        Ok(())
    }

    #[test]
    fn a_corrupt_key_file_is_reported_with_its_path_and_left_alone() -> Result<(), PrivacyError> {
        let dir = tempfile::tempdir()?;
        let path = dir.path().join("secret.key");
        write_private_file(&path, b"garbage")?;

        match load_or_create_key_file(&path) {
            Err(PrivacyError::BadKey(m)) => assert!(m.contains("secret.key")),
            other => panic!("expected BadKey, got {other:?}"),
        }
        assert_eq!(fs::read_to_string(&path)?, "garbage");
        Ok(())
    }

    #[test]
    fn a_key_file_others_can_read_is_refused_with_the_chmod_that_fixes_it_and_left_alone()
    -> Result<(), PrivacyError> {
        let dir = tempfile::tempdir()?;
        let path = dir.path().join("replyguard.key");
        let existing = SecretKey::generate();
        write_private_file(&path, existing.to_base64().as_bytes())?;
        fs::set_permissions(&path, fs::Permissions::from_mode(0o644))?;

        match load_or_create_key_file(&path) {
            Err(err @ PrivacyError::Exposed(_)) => assert!(
                err.to_string().contains(&format!(
                    "{} is readable by others (mode 0644): run `chmod 600 {}`",
                    path.display(),
                    path.display()
                )),
                "{err}"
            ),
            other => panic!("expected a refusal, got {other:?}"),
        }
        assert_eq!(fs::read_to_string(&path)?, existing.to_base64());
        assert_eq!(fs::metadata(&path)?.permissions().mode() & 0o777, 0o644);

        fs::set_permissions(&path, fs::Permissions::from_mode(0o600))?;
        assert_eq!(read_key_file(&path)?.as_bytes(), existing.as_bytes());
        Ok(())
    }

    #[test]
    fn racing_creators_all_end_up_with_the_same_key() -> Result<(), PrivacyError> {
        let dir = tempfile::tempdir()?;
        let path = dir.path().join("secret.key");

        let keys: Vec<Result<String, String>> = std::thread::scope(|s| {
            let handles: Vec<_> = (0..8)
                .map(|_| s.spawn(|| load_or_create_key_file(&path).map(|k| k.to_base64())))
                .collect();
            handles
                .into_iter()
                .map(|h| match h.join() {
                    Ok(r) => r.map_err(|e| e.to_string()),
                    Err(_) => Err("thread panicked".to_owned()),
                })
                .collect()
        });

        let on_disk = load_or_create_key_file(&path)?.to_base64();
        for key in keys {
            assert_eq!(key.as_deref(), Ok(on_disk.as_str()));
        }
        Ok(())
    }
}
