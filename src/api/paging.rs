//! Opaque page tokens: what a client passes back to get the next page.
//!
//! Tokens are base64url text around a cursor; a token that does not decode
//! is the client's error, never a panic or a silent first page.

use base64::{Engine, engine::general_purpose::URL_SAFE_NO_PAD};
use tonic::Status;
use uuid::Uuid;

use super::error::invalid_field;
use crate::{
    domain::{BlockKind, Blocked},
    ids::{AuditId, CommentId},
    store::{ThreadCursor, ThreadOrder},
};

/// Trims a page that was fetched with one row more than `size` and returns
/// the next page's token, made from the page's last row; empty on the last
/// page, where the extra row was not there.
pub fn next_token<T>(page: &mut Vec<T>, size: u32, token: impl FnOnce(&T) -> String) -> String {
    let (shown, next) = split_page(page, size, token);
    let shown = shown.len();
    page.truncate(shown);
    next
}

/// [`next_token`] for a page that is shared: the rows to show, and the
/// next page's token.
pub fn split_page<T>(page: &[T], size: u32, token: impl FnOnce(&T) -> String) -> (&[T], String) {
    let shown = &page[..page.len().min(size as usize)];
    if shown.len() == page.len() {
        return (shown, String::new());
    }
    (shown, shown.last().map(token).unwrap_or_default())
}

/// The error of a token that no listing made, or another listing did.
fn not_a_token() -> Status {
    invalid_field("page_token", "is not a page token of this listing")
}

/// A page size: `default` when unset, never above `max`.
pub fn page_size(requested: u32, default: u32, max: u32) -> u32 {
    match requested {
        0 => default,
        n => n.min(max),
    }
}

fn order_tag(order: ThreadOrder) -> char {
    match order {
        ThreadOrder::OldestFirst => 'o',
        ThreadOrder::NewestFirst => 'n',
    }
}

pub fn encode_thread(order: ThreadOrder, cursor: &ThreadCursor) -> String {
    URL_SAFE_NO_PAD.encode(format!("{}{}", order_tag(order), cursor.path))
}

pub fn decode_thread(order: ThreadOrder, token: &str) -> Result<Option<ThreadCursor>, Status> {
    decode_text(token, |text| {
        let path = text.strip_prefix(order_tag(order))?;
        let well_formed = path
            .split('.')
            .all(|segment| segment.len() == 32 && segment.bytes().all(|b| b.is_ascii_hexdigit()));
        let root = Uuid::try_parse(path.split('.').next()?).ok()?;
        well_formed.then(|| ThreadCursor {
            root: CommentId(root),
            path: path.to_owned(),
        })
    })
}

pub fn encode_queue(last: CommentId) -> String {
    URL_SAFE_NO_PAD.encode(last.0.as_bytes())
}

pub fn decode_queue(token: &str) -> Result<Option<CommentId>, Status> {
    decode(token, |bytes| Uuid::from_slice(&bytes).ok().map(CommentId))
}

/// Marks an audit token, so that a queue's token is not taken for one.
const AUDIT_TAG: u8 = b'a';

pub fn encode_audit(last: AuditId) -> String {
    let mut bytes = vec![AUDIT_TAG];
    bytes.extend_from_slice(last.0.as_bytes());
    URL_SAFE_NO_PAD.encode(bytes)
}

pub fn decode_audit(token: &str) -> Result<Option<AuditId>, Status> {
    decode(token, |bytes| match bytes.split_first() {
        Some((&AUDIT_TAG, id)) => Uuid::from_slice(id).ok().map(AuditId),
        _ => None,
    })
}

/// Marks a blocklist token; the entry's kind and value follow, split by a line break.
const BLOCK_TAG: char = 'b';

pub fn encode_block(last: &Blocked) -> String {
    URL_SAFE_NO_PAD.encode(format!("{BLOCK_TAG}{}\n{}", last.kind(), last.value()))
}

pub fn decode_block(token: &str) -> Result<Option<Blocked>, Status> {
    decode_text(token, |text| {
        let (kind, value) = text.strip_prefix(BLOCK_TAG)?.split_once('\n')?;
        Blocked::parse(BlockKind::parse(kind)?, value).ok()
    })
}

/// Marks a closed-articles token; the last article's key follows.
const CLOSED_TAG: char = 'c';

pub fn encode_closed(last: &str) -> String {
    URL_SAFE_NO_PAD.encode(format!("{CLOSED_TAG}{last}"))
}

pub fn decode_closed(token: &str) -> Result<Option<String>, Status> {
    decode_text(token, |text| {
        text.strip_prefix(CLOSED_TAG).map(str::to_owned)
    })
}

/// Longer than any token a listing makes: a thread's 16 levels of ids, or a blocked domain or
/// a closed article's key with their tags, in base64.
const MAX_TOKEN_CHARS: usize = 1_024;

/// A token's cursor: none for an empty token (the first page), else what `parse` makes of the
/// decoded bytes; a token it makes nothing of is the client's error, and so is one longer
/// than any listing makes, refused before it is decoded.
fn decode<T>(token: &str, parse: impl FnOnce(Vec<u8>) -> Option<T>) -> Result<Option<T>, Status> {
    if token.is_empty() {
        return Ok(None);
    }
    if token.len() > MAX_TOKEN_CHARS {
        return Err(not_a_token());
    }
    URL_SAFE_NO_PAD
        .decode(token)
        .ok()
        .and_then(parse)
        .map(Some)
        .ok_or_else(not_a_token)
}

/// [`decode`] for a cursor written as text.
fn decode_text<T>(token: &str, parse: impl FnOnce(&str) -> Option<T>) -> Result<Option<T>, Status> {
    decode(token, |bytes| parse(&String::from_utf8(bytes).ok()?))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_blocklist_token_names_its_last_entry_and_nothing_else_passes() {
        for entry in [
            Blocked::parse(BlockKind::Ip, "2001:db8::1"),
            Blocked::parse(BlockKind::EmailDomain, "spam.example"),
            Blocked::parse(BlockKind::Author, &"ab".repeat(32)),
        ] {
            let entry = entry.expect("an entry");
            assert_eq!(decode_block(&encode_block(&entry)).ok(), Some(Some(entry)));
        }
        assert_eq!(decode_block("").ok(), Some(None));
        let queue = encode_queue(CommentId(Uuid::nil()));
        for bad in ["garbage", "YWJj", queue.as_str()] {
            assert!(decode_block(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn a_closed_articles_token_names_its_last_article_and_nothing_else_passes() {
        for article in ["story", "2026/05/flood-report", "ünïcode ✓"] {
            let token = encode_closed(article);
            assert_eq!(decode_closed(&token).ok(), Some(Some(article.to_owned())));
        }
        assert_eq!(decode_closed("").ok(), Some(None));
        let block = encode_block(&Blocked::parse(BlockKind::Ip, "2001:db8::1").expect("an entry"));
        for bad in ["garbage", "YWJj", block.as_str()] {
            assert!(decode_closed(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn thread_tokens_round_trip_and_refuse_the_other_order() {
        let root = CommentId::new();
        let child = CommentId::new();
        let cursor = ThreadCursor {
            root,
            path: format!("{}.{}", root.0.simple(), child.0.simple()),
        };
        let token = encode_thread(ThreadOrder::NewestFirst, &cursor);
        assert_eq!(
            decode_thread(ThreadOrder::NewestFirst, &token).ok(),
            Some(Some(cursor))
        );
        assert!(decode_thread(ThreadOrder::OldestFirst, &token).is_err());
    }

    #[test]
    fn garbage_tokens_are_refused() {
        for token in ["!!", "bm90IGEgdG9rZW4", "o", "bw"] {
            assert!(
                decode_thread(ThreadOrder::OldestFirst, token).is_err(),
                "{token}"
            );
            assert!(decode_queue(token).is_err(), "{token}");
            assert!(decode_audit(token).is_err(), "{token}");
        }
    }

    #[test]
    fn the_deepest_threads_token_is_read_and_a_longer_token_refused_unread() {
        let ids: Vec<CommentId> = (0..=crate::submission::MAX_DEPTH)
            .map(|_| CommentId::new())
            .collect();
        let path: Vec<String> = ids.iter().map(|id| id.0.simple().to_string()).collect();
        let cursor = ThreadCursor {
            root: ids[0],
            path: path.join("."),
        };
        let token = encode_thread(ThreadOrder::OldestFirst, &cursor);
        assert_eq!(
            decode_thread(ThreadOrder::OldestFirst, &token).ok(),
            Some(Some(cursor))
        );
        // Well formed, but longer than any listing makes.
        let long = encode_closed(&"a".repeat(MAX_TOKEN_CHARS));
        assert!(decode_closed(&long).is_err());
    }

    #[test]
    fn audit_tokens_round_trip_and_are_not_queue_tokens() {
        let last = AuditId::new();
        assert_eq!(decode_audit(&encode_audit(last)).ok(), Some(Some(last)));
        assert!(decode_audit(&encode_queue(CommentId(last.0))).is_err());
    }

    #[test]
    fn a_page_fetched_with_one_row_more_is_trimmed_and_tells_the_next() {
        let token = |n: &u32| format!("after {n}");
        assert_eq!(
            split_page(&[1, 2, 3], 2, token),
            (&[1, 2][..], "after 2".to_owned())
        );
        assert_eq!(split_page(&[1, 2], 2, token), (&[1, 2][..], String::new()));
        assert_eq!(
            split_page(&[] as &[u32], 2, token),
            (&[][..], String::new())
        );
        let mut page = vec![1, 2, 3];
        assert_eq!(next_token(&mut page, 2, token), "after 2");
        assert_eq!(page, [1, 2]);
        assert_eq!(next_token(&mut page, 2, token), "");
        assert_eq!(page, [1, 2]);
    }

    #[test]
    fn page_sizes_default_and_cap() {
        assert_eq!(page_size(0, 50, 200), 50);
        assert_eq!(page_size(1000, 50, 200), 200);
        assert_eq!(page_size(7, 50, 200), 7);
    }
}
