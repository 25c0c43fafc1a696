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

/// The start of an id as a person types it, as git takes the start of a commit's hash: at
/// least [`IdPrefix::MIN_DIGITS`] hexadecimal digits, dashes anywhere ignored, either case.
/// It stands for every id from [`IdPrefix::first`] to [`IdPrefix::last`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct IdPrefix {
    first: Uuid,
    last: Uuid,
}

impl IdPrefix {
    /// The fewest digits a prefix may have, as git asks.
    pub const MIN_DIGITS: usize = 4;

    /// Reads a prefix; `None` when it holds anything but hex digits and dashes, or too few
    /// or too many digits.
    pub fn parse(text: &str) -> Option<Self> {
        let digits: String = text.trim().chars().filter(|c| *c != '-').collect();
        if digits.len() < Self::MIN_DIGITS
            || digits.len() > 32
            || !digits.chars().all(|c| c.is_ascii_hexdigit())
        {
            return None;
        }
        let padded = |pad: char| {
            let mut full = digits.clone();
            full.extend(std::iter::repeat_n(pad, 32 - digits.len()));
            Uuid::parse_str(&full).ok()
        };
        Some(Self {
            first: padded('0')?,
            last: padded('f')?,
        })
    }

    /// The smallest id that starts so.
    pub fn first(&self) -> Uuid {
        self.first
    }

    /// The largest id that starts so.
    pub fn last(&self) -> Uuid {
        self.last
    }
}

/// The shortest starts of `ids`, at least `min` characters of their hyphenated form, that
/// tell each apart from every other of them, as git abbreviates hashes; a prefix never
/// ends on a dash.
pub fn short_ids(ids: &[&str], min: usize) -> Vec<String> {
    let mut sorted: Vec<&str> = ids.to_vec();
    sorted.sort_unstable();
    sorted.dedup();
    let common = |a: &str, b: &str| a.chars().zip(b.chars()).take_while(|(x, y)| x == y).count();
    ids.iter()
        .map(|id| {
            let at = sorted.binary_search(id).unwrap_or(0);
            let before = at.checked_sub(1).and_then(|i| sorted.get(i));
            let after = sorted.get(at + 1);
            let shared = before
                .into_iter()
                .chain(after)
                .map(|other| common(id, other))
                .max()
                .unwrap_or(0);
            let mut len = min.max(shared + 1).min(id.len());
            while len < id.len() && id.get(..len).is_some_and(|start| start.ends_with('-')) {
                len += 1;
            }
            id.get(..len).unwrap_or(id).to_owned()
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_prefix_stands_for_every_id_that_starts_so() {
        let prefix = IdPrefix::parse("0193A2b4-5").expect("a prefix");
        assert_eq!(
            prefix.first().to_string(),
            "0193a2b4-5000-0000-0000-000000000000"
        );
        assert_eq!(
            prefix.last().to_string(),
            "0193a2b4-5fff-ffff-ffff-ffffffffffff"
        );
        let whole = "0193a2b4-5c6d-7e8f-9a0b-1c2d3e4f5a6b";
        let exact = IdPrefix::parse(whole).expect("a whole id");
        assert_eq!(
            (exact.first().to_string(), exact.last().to_string()),
            (whole.to_owned(), whole.to_owned())
        );
        for bad in [
            "",
            "019",
            "---0-1-9",
            "0193g",
            "0193a2b4-5c6d-7e8f-9a0b-1c2d3e4f5a6b0",
            "01 93",
        ] {
            assert_eq!(IdPrefix::parse(bad), None, "{bad:?}");
        }
    }

    #[test]
    fn short_ids_are_as_long_as_it_takes_to_tell_them_apart() {
        let ids = [
            "0193a2b4-5c6d-7e8f-9a0b-1c2d3e4f5a6b",
            "0193a2b4-5c6e-7000-8000-000000000000",
            "0193a2b5-0000-7000-8000-000000000000",
            "0193a2b4-5c6d-7e8f-9a0b-1c2d3e4f5a6b",
        ];
        assert_eq!(
            short_ids(&ids, 8),
            [
                "0193a2b4-5c6d",
                "0193a2b4-5c6e",
                "0193a2b5",
                "0193a2b4-5c6d",
            ]
        );
        assert_eq!(short_ids(&ids[2..3], 8), ["0193a2b5"]);
        assert!(short_ids(&[], 8).is_empty());
    }
}
