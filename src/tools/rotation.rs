//! `replyguard key generate`, `key check` and `key rotate`: making a secret key, telling
//! whether a database is under one, and moving a deployment to a new one, as after a leak,
//! with every replica stopped.
//!
//! The database changes in one transaction ([`store::Keys::rekey`]). A SQLite database is locked
//! against a server for the while ([`SqliteLock`]); PostgreSQL's replicas must be stopped by
//! the operator. Where the key lives in the key
//! file beside a SQLite database, the new key is written beside it first (`….key.next`), and
//! only once the database is committed does it take the key file's place; the old key stays as
//! `….key.previous` so that the server still accepts the form tokens readers' open pages hold.
//! A rotation cut short between the two is finished by running it again; a new key the
//! database is not under is never removed by another run, since its rotation may be running.

use std::path::{Path, PathBuf};

use clap::Args;

use crate::{
    config::{DatabaseArgs, SecretKeyArgs},
    deployment::{DeploymentKey, KeyStanding, check_key, key_standing, previous_key_file},
    privacy::{Rekeying, SecretKey, Vault, read_key_file, replace_key_file, write_new_key_file},
    secret_files::{sqlite_path, with_suffix},
    server::SqliteLock,
    store::{self, RekeyReport, Store},
};

/// Where the database is, and the key it is under now.
#[derive(Args, Clone, Debug)]
pub struct KeyArgs {
    #[command(flatten)]
    pub database: DatabaseArgs,
    /// The deployment's key now. A rotation puts the new key in the place of a key file, and
    /// leaves the old one beside it as `FILE.previous`.
    #[command(flatten)]
    pub key: SecretKeyArgs,
}

impl KeyArgs {
    /// The key given, or the key file given, or else the key file beside the SQLite database,
    /// which must exist; with
    /// the key file's path when the key is one.
    fn current(&self) -> Result<(SecretKey, Option<PathBuf>), String> {
        if let Some(given) = self.key.given().map_err(|e| e.to_string())? {
            return Ok(given);
        }
        let path = self
            .key
            .key_file(&self.database.url)
            .ok_or("REPLYGUARD_SECRET_KEY must be set to the key this database was written with")?;
        let key = read_key_file(&path).map_err(|e| e.to_string())?;
        Ok((key, Some(path)))
    }
}

/// The settings of `replyguard key rotate`.
#[derive(Args, Clone, Debug)]
pub struct RotateArgs {
    #[command(flatten)]
    pub key: KeyArgs,
    /// A file holding the new key, as `replyguard key generate` writes it. Needed when the key
    /// is given by REPLYGUARD_SECRET_KEY; with a key file, a new key is made when it is not
    /// given.
    #[arg(long, value_name = "PATH")]
    pub new_key_file: Option<PathBuf>,
}

/// What a rotation did.
#[derive(Debug)]
pub struct Rotated {
    /// What changed in the database; `None` when a rotation an earlier run committed was only
    /// finished, its key file put in place.
    pub report: Option<RekeyReport>,
    /// Where the key is now, when it is a key file.
    pub key_file: Option<PathBuf>,
}

impl Rotated {
    /// What the operator reads, and what to do next.
    pub fn summary(&self) -> String {
        let mut lines = Vec::new();
        match &self.report {
            Some(report) => {
                lines.push(format!(
                    "sealed {} replies again under the new key; blocked authors kept: {}, \
                     dropped: {} (no reply left to key them again by); idempotency keys \
                     forgotten: {}",
                    report.comments,
                    report.blocks_kept,
                    report.blocks_dropped,
                    report.idempotency_keys_dropped
                ));
            }
            None => lines.push(
                "the database was already under the new key: an earlier rotation was finished"
                    .to_owned(),
            ),
        }
        match &self.key_file {
            Some(path) => lines.push(format!(
                "the new key is in {}; the old one is in {}, which the server reads to accept \
                 the form tokens of pages opened before the rotation: delete it in two days, \
                 and back up the new key file with the database",
                path.display(),
                previous_key_file(path).display()
            )),
            None => lines.push(
                "start every replica with REPLYGUARD_SECRET_KEY set to the new key, and for two \
                 days with REPLYGUARD_PREVIOUS_SECRET_KEY set to the old one, so that the form \
                 tokens of pages opened before the rotation are still accepted"
                    .to_owned(),
            ),
        }
        lines.join("\n")
    }
}

/// Where a rotation writes the new key before the database is committed.
fn next_key_file(key_file: &Path) -> PathBuf {
    with_suffix(key_file, ".next")
}

/// Writes a fresh key to a new file at `path`, readable by its owner only.
pub fn generate(path: &Path) -> Result<(), String> {
    write_new_key_file(path, &SecretKey::generate()).map_err(|e| e.to_string())
}

/// Whether the key `args` gives is the one the database is under, as for a backup and the key
/// kept with it: by the stored key check, or on a database from before key checks by its newest
/// sealed email. Stores nothing of the key (the store migrates the database, as for every
/// command): a database with nothing sealed yet is said to take any key.
pub async fn check(args: &KeyArgs) -> Result<String, String> {
    let url = &args.database.url;
    if let Some(path) = sqlite_path(url)
        && !path.exists()
    {
        return Err(format!("there is no database at {}", path.display()));
    }
    let (key, _) = args.current()?;
    let store = store::open(url).await.map_err(|e| e.to_string())?;
    match key_standing(store.as_ref(), &Vault::new(&key))
        .await
        .map_err(|e| e.to_string())?
    {
        KeyStanding::Checked(true) | KeyStanding::Unchecked(Some(true)) => {
            Ok("the key is the one the database is under".to_owned())
        }
        KeyStanding::Unchecked(None) => {
            Ok("the database holds nothing sealed yet: any key will do".to_owned())
        }
        KeyStanding::Checked(false) | KeyStanding::Unchecked(Some(false)) => {
            Err("the key is not the one the database is under".to_owned())
        }
    }
}

/// Moves the database `args` names, and its key file if it has one, to a new key.
pub async fn rotate(args: &RotateArgs) -> Result<Rotated, String> {
    let url = &args.key.database.url;
    let (current, key_file) = args.key.current()?;
    let _lock = SqliteLock::take(url).map_err(|e| e.to_string())?;
    let store = store::open(url).await.map_err(|e| e.to_string())?;

    if let Some(path) = &key_file
        && finish_cut_short(store.as_ref(), path).await?
    {
        return Ok(Rotated {
            report: None,
            key_file: Some(path.clone()),
        });
    }
    let current = DeploymentKey::given(current);
    check_key(store.as_ref(), &current)
        .await
        .map_err(|e| e.to_string())?;
    let new = match (&args.new_key_file, &key_file) {
        (Some(file), _) => read_key_file(file).map_err(|e| e.to_string())?,
        (None, Some(_)) => SecretKey::generate(),
        (None, None) => {
            return Err("give the new key with --new-key-file PATH (make one with \
                        `replyguard key generate PATH`)"
                .to_owned());
        }
    };
    if Vault::new(&new).key_check() == Vault::new(current.key()).key_check() {
        return Err("the new key is the one the database is under already".to_owned());
    }
    let Some(path) = key_file else {
        let report = rekey(store.as_ref(), current.key(), &new).await?;
        return Ok(Rotated {
            report: Some(report),
            key_file: None,
        });
    };
    let next = next_key_file(&path);
    write_new_key_file(&next, &new).map_err(|e| e.to_string())?;
    let report = match rekey(store.as_ref(), current.key(), &new).await {
        Ok(report) => report,
        Err(message) => {
            // The new key is of no use unless the commit went through after all (its answer
            // lost), which the next run finishes.
            if !is_under(store.as_ref(), &new).await.unwrap_or(true) {
                let _ = std::fs::remove_file(&next);
            }
            return Err(message);
        }
    };
    replace_key_file(&path, &next, &previous_key_file(&path)).map_err(|e| {
        format!(
            "the database is under the new key, in {}, but it could not take the key file's \
             place ({e}): run `replyguard key rotate` again to finish",
            next.display()
        )
    })?;
    Ok(Rotated {
        report: Some(report),
        key_file: Some(path),
    })
}

async fn rekey(store: &dyn Store, old: &SecretKey, new: &SecretKey) -> Result<RekeyReport, String> {
    store
        .rekey(&Rekeying::new(old, new))
        .await
        .map_err(|e| format!("nothing was changed: {e}"))
}

/// Whether the database is under `key`.
async fn is_under(store: &dyn Store, key: &SecretKey) -> Result<bool, String> {
    let standing = key_standing(store, &Vault::new(key)).await;
    Ok(standing.map_err(|e| e.to_string())? == KeyStanding::Checked(true))
}

/// A rotation cut short after its commit left the new key beside the key file: when the
/// database is under it, puts it in place (true). Any other new key there is refused rather
/// than removed: it may be another rotation's, running now.
async fn finish_cut_short(store: &dyn Store, key_file: &Path) -> Result<bool, String> {
    let next = next_key_file(key_file);
    if !next.exists() {
        return Ok(false);
    }
    let pending = read_key_file(&next).map_err(|e| e.to_string())?;
    if !is_under(store, &pending).await? {
        return Err(format!(
            "{} holds a new key the database is not under: another rotation is running, or one \
             stopped before it changed anything; if none is running, remove the file and run \
             again",
            next.display()
        ));
    }
    replace_key_file(key_file, &next, &previous_key_file(key_file)).map_err(|e| e.to_string())?;
    Ok(true)
}
