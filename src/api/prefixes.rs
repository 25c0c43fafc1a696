//! Comment ids as people type them: a whole id, or any start of one that names one comment
//! of the caller's sites, as git takes the start of a commit's hash.
//!
//! The start is looked up among the sites the credential covers and nowhere else, so an
//! ambiguous start never names another site's comments.

use tonic::{Code, Status};

use super::{
    error::invalid_field,
    fields::{self, CommentRef},
};
use crate::{
    ids::{CommentId, IdPrefix},
    store::{Credential, Role, Store},
};

/// How many candidates an ambiguous start names.
const MAX_CANDIDATES: u32 = 5;

/// Why a typed id names no one comment.
#[derive(Debug)]
pub enum Unresolved {
    /// Neither an id nor the start of one.
    Malformed,
    /// No comment of the caller's sites starts so.
    NoMatch(String),
    /// Several do: the first few, and whether there are more.
    Ambiguous(String, Vec<CommentId>, bool),
}

impl Unresolved {
    /// The gRPC code, for a call's answer or one result of many.
    pub fn code(&self) -> Code {
        match self {
            Self::Malformed | Self::Ambiguous(..) => Code::InvalidArgument,
            Self::NoMatch(_) => Code::NotFound,
        }
    }

    /// What went wrong and what to type instead, without the field's name.
    pub fn describe(&self) -> String {
        match self {
            Self::Malformed => format!(
                "must be a comment id or at least its first {} characters",
                IdPrefix::MIN_DIGITS
            ),
            Self::NoMatch(typed) => format!("no comment {typed}"),
            Self::Ambiguous(typed, candidates, more) => {
                let names: Vec<String> = candidates.iter().map(ToString::to_string).collect();
                format!(
                    "{typed} is the start of several comments' ids ({}{}); type more of it",
                    names.join(", "),
                    if *more { ", …" } else { "" }
                )
            }
        }
    }

    /// The error of a call that names one comment in `field`.
    pub fn status(&self, field: &'static str) -> Status {
        match self {
            Self::NoMatch(_) => Status::not_found(self.describe()),
            _ => invalid_field(field, &self.describe()),
        }
    }
}

/// The comment `typed` names: a whole id as it is (whether it exists is the caller's to
/// find), or the one comment of the credential's sites whose id starts so.
pub async fn comment_id(
    store: &dyn Store,
    credential: &Credential,
    typed: &str,
) -> Result<Result<CommentId, Unresolved>, Status> {
    let typed = typed.trim();
    let prefix = match fields::comment_ref(typed) {
        Some(CommentRef::Whole(id)) => return Ok(Ok(id)),
        Some(CommentRef::Start(prefix)) => prefix,
        None => return Ok(Err(Unresolved::Malformed)),
    };
    let mut found = Vec::new();
    if credential.role == Role::Moderator {
        for &site in &credential.sites {
            found.extend(
                store
                    .comment_ids_starting(site, prefix, MAX_CANDIDATES + 1)
                    .await?,
            );
        }
    }
    found.sort_unstable();
    Ok(match found.as_slice() {
        [] => Err(Unresolved::NoMatch(typed.to_owned())),
        [id] => Ok(*id),
        _ => {
            let limit = usize::try_from(MAX_CANDIDATES).unwrap_or(usize::MAX);
            let more = found.len() > limit;
            found.truncate(limit);
            Err(Unresolved::Ambiguous(typed.to_owned(), found, more))
        }
    })
}

/// The comment one field names, or that field's error.
pub async fn one_comment(
    store: &dyn Store,
    credential: &Credential,
    field: &'static str,
    typed: &str,
) -> Result<CommentId, Status> {
    comment_id(store, credential, typed)
        .await?
        .map_err(|unresolved| unresolved.status(field))
}
