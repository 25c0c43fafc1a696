//! Closing an article: a moderator stops new replies to one article (a story
//! under legal hold, an old one that draws only spam) and can open it again.
//! The replies already there keep their status and stay listed.

use chrono::{DateTime, Utc};

use crate::ids::SiteId;

/// A closed article, as `ListClosedArticles` shows it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ClosedArticle {
    pub article: String,
    /// Who closed it: a token prefix.
    pub actor: String,
    pub closed_at: DateTime<Utc>,
    /// The moderator's note, empty when there was none.
    pub note: String,
}

/// A moderator closes an article to new replies, or opens it again.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ArticleClosing<'a> {
    pub site: SiteId,
    /// The host's article key, as a submission names it.
    pub article: &'a str,
    /// True to close the article, false to open it again.
    pub closed: bool,
    /// The prefix of the moderator's token.
    pub actor: &'a str,
    pub note: Option<&'a str>,
}

impl ArticleClosing<'_> {
    /// The audit row's action.
    pub fn action(&self) -> &'static str {
        if self.closed {
            super::audit_action::CLOSE_ARTICLE
        } else {
            super::audit_action::REOPEN_ARTICLE
        }
    }

    /// The audit note: the article, then the moderator's note.
    pub fn audit_note(&self) -> String {
        match self.note {
            Some(note) => format!("{}: {note}", self.article),
            None => self.article.to_owned(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_audit_row_names_the_article_and_the_note() {
        let closing = ArticleClosing {
            site: SiteId::new(),
            article: "2026/flood",
            closed: true,
            actor: "rg_mod_abc",
            note: Some("legal hold"),
        };
        assert_eq!(closing.action(), "close_article");
        assert_eq!(closing.audit_note(), "2026/flood: legal hold");
        let reopening = ArticleClosing {
            closed: false,
            note: None,
            ..closing
        };
        assert_eq!(reopening.action(), "reopen_article");
        assert_eq!(reopening.audit_note(), "2026/flood");
    }
}
