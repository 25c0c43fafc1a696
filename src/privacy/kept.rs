//! A reply's text as it is kept at rest: in the clear only where it holds no contact details.

use super::{Vault, render_html};
use crate::ids::{CommentId, SiteId};

/// The four stored forms of one reply's text.
#[derive(Clone, Debug, PartialEq)]
pub struct KeptText {
    /// The raw text, or, when that holds contact details, the public text.
    pub body: String,
    /// The raw text sealed with [`Vault::seal_body`], when it holds contact details.
    pub body_sealed: Option<Vec<u8>>,
    /// What the public sees: the text with every email address and phone number masked.
    pub body_public: String,
    /// The public text as sanitised HTML.
    pub body_html: String,
}

impl KeptText {
    /// `raw`, the text of `comment` on `site`, as it is stored; `public` is
    /// [`super::mask_contacts`] of it, which every caller has at hand already.
    pub fn new(vault: &Vault, site: SiteId, comment: CommentId, raw: &str, public: String) -> Self {
        let body_sealed = (public != raw).then(|| vault.seal_body(site, comment, raw));
        KeptText {
            body: if body_sealed.is_some() {
                public.clone()
            } else {
                raw.to_owned()
            },
            body_sealed,
            body_html: render_html(&public),
            body_public: public,
        }
    }
}
