//! Newtype ids: a `CommentId` can never be passed where a `SiteId` is meant.
//!
//! Every id is a UUIDv7, so ids sort by creation time and serve as cursors.

use std::{fmt, str::FromStr};

use uuid::Uuid;

macro_rules! uuid_id {
    ($(#[$doc:meta])* $name:ident) => {
        $(#[$doc])*
        #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
        pub struct $name(pub Uuid);

        impl $name {
            /// A new id for something created now.
            pub fn new() -> Self {
                Self(Uuid::now_v7())
            }
        }

        impl Default for $name {
            fn default() -> Self {
                Self::new()
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                self.0.fmt(f)
            }
        }

        impl FromStr for $name {
            type Err = uuid::Error;

            fn from_str(s: &str) -> Result<Self, Self::Err> {
                Uuid::parse_str(s).map(Self)
            }
        }
    };
}

uuid_id!(
    /// One comment (a reader's reply).
    CommentId
);
uuid_id!(
    /// One site: an article host such as `news.example.com`.
    SiteId
);
uuid_id!(
    /// One issued credential (site key or moderator token).
    TokenId
);
uuid_id!(
    /// One row of the audit log.
    AuditId
);
