//! Erasing an author: what is left of their comments afterwards.
//!
//! An erased comment keeps its place in its thread, its status and its
//! assessment's rule names and weights; it loses everything that could lead
//! back to the person: name, email, website, the keyed hash that links it to
//! their other comments, avatar, client details, the spam reasons' texts
//! (they quote hosts and addresses), the raw text (the public, masked text
//! stays unless bodies are removed), and the text's fingerprint and
//! classifier features, which are derived from the raw words. The email is never written anywhere,
//! not even in the audit note.

use crate::{
    domain::{ERASED_REASON, REMOVED_TEXT},
    ids::SiteId,
    privacy::{AuthorHash, render_html},
    spam::Reason,
    store::{ErasedComment, Erasing},
};

/// One erasure request, as the store carries it out.
#[derive(Clone, Debug)]
pub struct Erasure<'a> {
    pub site: SiteId,
    /// The keyed hash of the author's normalised email.
    pub author_hash: &'a AuthorHash,
    /// Replace the text too, instead of keeping its masked public form.
    pub remove_bodies: bool,
    /// Who asked: the token's prefix.
    pub actor: &'a str,
}

impl Erasing for Erasure<'_> {
    fn site(&self) -> SiteId {
        self.site
    }

    fn author_hash(&self) -> &AuthorHash {
        self.author_hash
    }

    fn actor(&self) -> &str {
        self.actor
    }

    /// The erased form of a comment with this public text and these reasons.
    fn erase(&self, body_public: &str, body_html: &str, reasons: &[Reason]) -> ErasedComment {
        let (body, body_public, body_html) = if self.remove_bodies {
            (
                REMOVED_TEXT.to_owned(),
                REMOVED_TEXT.to_owned(),
                render_html(REMOVED_TEXT),
            )
        } else {
            // The raw text may hold contact details the author typed; the
            // public text has them masked already.
            (
                body_public.to_owned(),
                body_public.to_owned(),
                body_html.to_owned(),
            )
        };
        ErasedComment {
            author_hash: AuthorHash::random(),
            body,
            body_public,
            body_html,
            reasons: reasons
                .iter()
                .map(|reason| Reason {
                    reason: ERASED_REASON.to_owned(),
                    ..reason.clone()
                })
                .collect(),
        }
    }

    /// The audit note: how many comments, never whose.
    fn note(&self, count: u64) -> String {
        let comments = if count == 1 { "comment" } else { "comments" };
        if self.remove_bodies {
            format!("{count} {comments} erased, text removed")
        } else {
            format!("{count} {comments} anonymised, text kept")
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn erasure(remove_bodies: bool) -> (SiteId, AuthorHash, bool) {
        (SiteId::new(), AuthorHash([1; 32]), remove_bodies)
    }

    #[test]
    fn an_erased_comment_keeps_its_public_text_and_rule_weights_only() {
        let (site, hash, remove) = erasure(false);
        let erasure = Erasure {
            site,
            author_hash: &hash,
            remove_bodies: remove,
            actor: "rg_mod_test",
        };
        let reasons = [Reason {
            rule: "blocked-ip".to_owned(),
            weight: 3.0,
            reason: "IP 203.0.113.7 is blocked".to_owned(),
            log_only: false,
        }];
        let erased = erasure.erase("Write to [email hidden].", "<p>Write</p>", &reasons);
        assert_eq!(erased.body, "Write to [email hidden].");
        assert_eq!(erased.body_html, "<p>Write</p>");
        assert_eq!(erased.reasons[0].rule, "blocked-ip");
        assert_eq!(erased.reasons[0].weight, 3.0);
        assert_eq!(erased.reasons[0].reason, ERASED_REASON);
        assert_ne!(erased.author_hash, hash);
        assert_ne!(
            erasure.erase("", "", &[]).author_hash,
            erased.author_hash,
            "no two erased comments share a hash"
        );
        assert_eq!(erasure.note(1), "1 comment anonymised, text kept");
    }

    #[test]
    fn removing_bodies_leaves_a_placeholder() {
        let (site, hash, remove) = erasure(true);
        let erasure = Erasure {
            site,
            author_hash: &hash,
            remove_bodies: remove,
            actor: "rg_mod_test",
        };
        let erased = erasure.erase("Secret plans.", "<p>Secret plans.</p>", &[]);
        assert_eq!(erased.body, REMOVED_TEXT);
        assert_eq!(erased.body_public, REMOVED_TEXT);
        assert!(!erased.body_html.contains("Secret"));
        assert_eq!(erasure.note(3), "3 comments erased, text removed");
    }
}
