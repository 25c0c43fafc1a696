//! `ListCommentsResponse`, written by hand so that a page of comments can be
//! sent as bytes encoded once and shared, not re-encoded on every call.
//!
//! On the wire it is exactly the message `replyguard.proto` declares: a
//! page's comments encoded once are the bytes of field 1, repeated, as prost
//! would write them. Clients decode it as any prost message.

use bytes::{Buf, BufMut, Bytes, BytesMut};
use prost::{
    DecodeError, Message,
    encoding::{self, DecodeContext, WireType},
};

use crate::proto::Comment;

/// Response of `ListComments`.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct ListCommentsResponse {
    /// The comments, a parent before its replies.
    pub comments: Vec<Comment>,
    /// Pass as `page_token` for the next page; empty on the last page.
    pub next_page_token: String,
    /// How many approved comments the article has in all.
    pub total_count: u64,
    /// A moderator closed the article to new replies.
    pub closed: bool,
    /// Comments already encoded as field 1, sent after `comments`.
    encoded_comments: Bytes,
}

impl ListCommentsResponse {
    /// A response whose comments are `encoded`, as made by [`encode_comments`].
    pub fn encoded(
        encoded: Bytes,
        next_page_token: String,
        total_count: u64,
        closed: bool,
    ) -> Self {
        ListCommentsResponse {
            comments: Vec::new(),
            next_page_token,
            total_count,
            closed,
            encoded_comments: encoded,
        }
    }
}

/// `comments` as field 1 of a `ListCommentsResponse`, for
/// [`ListCommentsResponse::encoded`].
pub fn encode_comments(comments: impl IntoIterator<Item = Comment>) -> Bytes {
    let mut buf = BytesMut::new();
    for comment in comments {
        encoding::message::encode(1, &comment, &mut buf);
    }
    buf.freeze()
}

impl Message for ListCommentsResponse {
    fn encode_raw(&self, buf: &mut impl BufMut) {
        for comment in &self.comments {
            encoding::message::encode(1, comment, buf);
        }
        buf.put_slice(&self.encoded_comments);
        if !self.next_page_token.is_empty() {
            encoding::string::encode(2, &self.next_page_token, buf);
        }
        if self.total_count != 0 {
            encoding::uint64::encode(3, &self.total_count, buf);
        }
        if self.closed {
            encoding::bool::encode(4, &self.closed, buf);
        }
    }

    fn merge_field(
        &mut self,
        tag: u32,
        wire_type: WireType,
        buf: &mut impl Buf,
        ctx: DecodeContext,
    ) -> Result<(), DecodeError> {
        let in_field = |field: &'static str| {
            move |mut error: DecodeError| {
                error.push("ListCommentsResponse", field);
                error
            }
        };
        match tag {
            1 => encoding::message::merge_repeated(wire_type, &mut self.comments, buf, ctx)
                .map_err(in_field("comments")),
            2 => encoding::string::merge(wire_type, &mut self.next_page_token, buf, ctx)
                .map_err(in_field("next_page_token")),
            3 => encoding::uint64::merge(wire_type, &mut self.total_count, buf, ctx)
                .map_err(in_field("total_count")),
            4 => encoding::bool::merge(wire_type, &mut self.closed, buf, ctx)
                .map_err(in_field("closed")),
            _ => encoding::skip_field(wire_type, tag, buf, ctx),
        }
    }

    fn encoded_len(&self) -> usize {
        encoding::message::encoded_len_repeated(1, &self.comments)
            + self.encoded_comments.len()
            + if self.next_page_token.is_empty() {
                0
            } else {
                encoding::string::encoded_len(2, &self.next_page_token)
            }
            + if self.total_count == 0 {
                0
            } else {
                encoding::uint64::encoded_len(3, &self.total_count)
            }
            + if self.closed {
                encoding::bool::encoded_len(4, &self.closed)
            } else {
                0
            }
    }

    fn clear(&mut self) {
        *self = ListCommentsResponse::default();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The generated type of the same message, for comparison.
    #[derive(Clone, PartialEq, prost::Message)]
    struct Generated {
        #[prost(message, repeated, tag = "1")]
        comments: Vec<Comment>,
        #[prost(string, tag = "2")]
        next_page_token: String,
        #[prost(uint64, tag = "3")]
        total_count: u64,
        #[prost(bool, tag = "4")]
        closed: bool,
    }

    fn comment(n: u32) -> Comment {
        Comment {
            id: format!("id-{n}"),
            article: "story".to_owned(),
            author_name: "Ada".to_owned(),
            body: format!("Reply {n}, with ünïcode."),
            body_html: format!("<p>Reply {n}, with ünïcode.</p>"),
            depth: n % 3,
            ..Comment::default()
        }
    }

    fn generated(comments: Vec<Comment>, token: &str, total: u64, closed: bool) -> Generated {
        Generated {
            comments,
            next_page_token: token.to_owned(),
            total_count: total,
            closed,
        }
    }

    #[test]
    fn encoded_comments_are_the_bytes_prost_writes() {
        for (n, token, total, closed) in [
            (0, "", 0, false),
            (1, "", 1, true),
            (3, "next", 120, false),
            (3, "next", 120, true),
        ] {
            let comments: Vec<Comment> = (0..n).map(comment).collect();
            let ours = ListCommentsResponse::encoded(
                encode_comments(comments.clone()),
                token.to_owned(),
                total,
                closed,
            );
            let theirs = generated(comments, token, total, closed);
            assert_eq!(ours.encode_to_vec(), theirs.encode_to_vec());
            assert_eq!(ours.encoded_len(), theirs.encoded_len());
        }
    }

    #[test]
    fn a_response_decodes_into_its_comments() {
        let comments: Vec<Comment> = (0..4).map(comment).collect();
        let bytes = generated(comments.clone(), "next", 9, true).encode_to_vec();
        let decoded = ListCommentsResponse::decode(bytes.as_slice()).expect("decodes");
        assert_eq!(decoded.comments, comments);
        assert_eq!(decoded.next_page_token, "next");
        assert_eq!(decoded.total_count, 9);
        assert!(decoded.closed);
        assert_eq!(decoded.encode_to_vec(), bytes, "and encodes back the same");
    }

    #[test]
    fn unknown_fields_are_skipped_and_bad_ones_refused() {
        let mut bytes = generated(vec![comment(1)], "", 2, false).encode_to_vec();
        encoding::string::encode(9, &"later field".to_owned(), &mut bytes);
        let decoded = ListCommentsResponse::decode(bytes.as_slice()).expect("decodes");
        assert_eq!(decoded.comments, vec![comment(1)]);
        assert!(ListCommentsResponse::decode(&[0x0a, 0x05, 0x01][..]).is_err());
    }
}
