//! The deployment's secret key: which one it is (given, or the key file beside a SQLite
//! database), whether the database is under it, and the key before a rotation.
//!
//! The server resolves and checks the key here at start, and the operator's tools (`key
//! check`, `key rotate`, `seed`) by the same rules, so that no command seals under a key the
//! server would refuse. It sits below both and depends on neither: the tools start the server,
//! and the server must never reach up into the tools.

use std::path::{Path, PathBuf};

use crate::{
    config::{SecretKeyArgs, ServeSettings},
    privacy::{PrivacyError, SecretKey, Vault, load_or_create_key_file, read_key_file},
    secret_files::{key_file_beside, sqlite_path, with_suffix},
    store::{Store, StoreError},
};

/// Why the deployment's key cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum KeyError {
    /// The key, or the file holding it or the previous key, cannot be read or is open to others.
    #[error("secret key: {0}")]
    Unusable(#[from] PrivacyError),
    #[error("database: {0}")]
    Store(#[from] StoreError),
    #[error(
        "REPLYGUARD_SECRET_KEY or REPLYGUARD_SECRET_KEY_FILE must be set for this database: \
         every replica must share one key"
    )]
    Missing,
    #[error(
        "the secret key is not the one this database was written with: start with the \
         deployment's key (REPLYGUARD_SECRET_KEY, or on SQLite the key file beside the database, \
         restored with it from the backup)"
    )]
    Wrong,
    #[error(
        "no key file was found at {}, but the database was written under a key: restore the key \
         file that was backed up with the database (or set REPLYGUARD_SECRET_KEY)",
        path.display()
    )]
    LostFile { path: PathBuf },
}

/// The deployment's secret key, as [`secret_key_for`] found it.
pub struct DeploymentKey {
    key: SecretKey,
    /// The key file made just now, none being there; [`check_key`] removes it again when the
    /// database was written under a key, since the one it replaces was lost.
    created: Option<PathBuf>,
}

impl DeploymentKey {
    /// A key the operator gave, no file being made for it.
    pub fn given(key: SecretKey) -> DeploymentKey {
        DeploymentKey { key, created: None }
    }

    pub fn key(&self) -> &SecretKey {
        &self.key
    }
}

/// The secret key: from the settings, or from the key file beside a SQLite
/// database (created on first start). Other databases must be given one.
pub fn secret_key(settings: &ServeSettings) -> Result<DeploymentKey, KeyError> {
    secret_key_for(&settings.key, &settings.database.url)
}

/// The secret key given, or the key file given, or else the key file beside the SQLite
/// database `database_url` names: what the server would use, for the operator's commands that
/// seal emails. A key file group or others may read is refused.
pub fn secret_key_for(
    given: &SecretKeyArgs,
    database_url: &str,
) -> Result<DeploymentKey, KeyError> {
    if let Some((key, _)) = given.given()? {
        return Ok(DeploymentKey { key, created: None });
    }
    let database = sqlite_path(database_url).ok_or(KeyError::Missing)?;
    let path = key_file_beside(&database);
    let existed = path.exists();
    let key = load_or_create_key_file(&path)?;
    if existed {
        tracing::info!(path = %path.display(), "using the key file beside the database");
    } else {
        tracing::info!(
            path = %path.display(),
            "created a key file beside the database: back it up with the database, since \
             without it stored emails cannot be read"
        );
    }
    Ok(DeploymentKey {
        key,
        created: (!existed).then_some(path),
    })
}

/// The key's vault, once the key is shown to be the one the database's emails are sealed
/// with: a replica given another key would seal emails no other could open, key author hashes
/// that match no earlier reply, and sign form tokens the others call forged. A key file made
/// just now for a database that has a key means the old file was lost (a database restored
/// without it): the new file goes, so that restoring the old one is all it takes.
pub async fn check_key(store: &dyn Store, key: &DeploymentKey) -> Result<Vault, KeyError> {
    let vault = Vault::new(&key.key);
    match (key_matches(store, &vault).await, &key.created) {
        (Err(KeyError::Wrong), Some(path)) => {
            let _ = std::fs::remove_file(path);
            Err(KeyError::LostFile { path: path.clone() })
        }
        (checked, _) => checked.map(|()| vault),
    }
}

/// What a database says of a key, by reading alone.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum KeyStanding {
    /// The stored key check is the key's (`true`) or another's.
    Checked(bool),
    /// No check is stored (a database from before key checks): whether the key opens the
    /// newest sealed email, `None` when there is none, so any key would do.
    Unchecked(Option<bool>),
}

/// Judges `vault`'s key against the database without storing anything.
pub async fn key_standing(store: &dyn Store, vault: &Vault) -> Result<KeyStanding, StoreError> {
    if let Some(stored) = store.key_check().await? {
        return Ok(KeyStanding::Checked(stored == vault.key_check()));
    }
    let newest = store.newest_sealed_email().await?;
    Ok(KeyStanding::Unchecked(newest.map(|(site, sealed)| {
        vault.decrypt_email(site, &sealed).is_ok()
    })))
}

/// Whether the vault's key is the database's. The first start stores the key's check
/// (`Vault::key_check`); on a database from before key checks, the key must first open the
/// newest sealed email.
async fn key_matches(store: &dyn Store, vault: &Vault) -> Result<(), KeyError> {
    match key_standing(store, vault).await? {
        KeyStanding::Checked(true) => Ok(()),
        KeyStanding::Checked(false) | KeyStanding::Unchecked(Some(false)) => Err(KeyError::Wrong),
        KeyStanding::Unchecked(_) => {
            let ours = vault.key_check();
            if store.claim_key_check(&ours).await? == ours {
                Ok(())
            } else {
                Err(KeyError::Wrong)
            }
        }
    }
}

/// Where the old key of a key file stays after a rotation.
pub fn previous_key_file(key_file: &Path) -> PathBuf {
    with_suffix(key_file, ".previous")
}

/// The key before a rotation, whose form tokens are still accepted: from the settings, or the
/// file `replyguard key rotate` left beside the key file (the one given, or the one beside a
/// SQLite database).
pub fn previous_key(settings: &ServeSettings) -> Result<Option<SecretKey>, KeyError> {
    let key_file = settings.key.key_file(&settings.database.url);
    let (key, from) = match (
        &settings.previous_secret_key,
        &settings.previous_secret_key_file,
    ) {
        (Some(previous), _) => (
            SecretKey::from_base64(previous.expose())?,
            "REPLYGUARD_PREVIOUS_SECRET_KEY".to_owned(),
        ),
        (None, Some(path)) => (read_key_file(path)?, path.display().to_string()),
        (None, None) => {
            let Some(path) = key_file.map(|file| previous_key_file(&file)) else {
                return Ok(None);
            };
            if !path.exists() {
                return Ok(None);
            }
            (read_key_file(&path)?, path.display().to_string())
        }
    };
    tracing::info!(
        %from,
        "accepting form tokens signed under the previous key too: remove it two days after \
         the rotation"
    );
    Ok(Some(key))
}
