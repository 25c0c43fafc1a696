//! Closing an article: a moderator stops new replies to one article (a story
//! under legal hold, an old one that draws only spam), now or from a time on, and
//! can open it again; and a site's `close-after-days` closes every article that
//! many days after it was published (or, when the host never said when, after
//! its first reply). The replies already there keep their status and stay listed.

use chrono::{DateTime, Duration, Utc};

use crate::ids::SiteId;

/// A closed article, as `ListClosedArticles` shows it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ClosedArticle {
    pub article: String,
    /// Who closed it: a token prefix.
    pub actor: String,
    /// When it closed, or closes: a moderator may close an article from a time on.
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
    /// When a close takes effect: `None` for now. A close that has not taken effect yet may be
    /// moved to another time, or called off by opening the article.
    pub at: Option<DateTime<Utc>>,
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

    /// The audit note: the article, when a close takes effect if not at once, then the
    /// moderator's note.
    pub fn audit_note(&self) -> String {
        let article = match (self.closed, self.at) {
            (true, Some(at)) => format!("{} from {}", self.article, at.to_rfc3339()),
            _ => self.article.to_owned(),
        };
        match self.note {
            Some(note) => format!("{article}: {note}"),
            None => article,
        }
    }
}

/// The most days a site may keep its articles open by `close-after-days`: ten years.
pub const MAX_CLOSE_AFTER_DAYS: u32 = 3_650;

/// What decides when an article closes: a moderator's close (now or from a time on), and,
/// with the site's `close-after-days`, when the article was published or had its first reply.
/// It holds times, never whether the article is closed: that is asked with the time of the
/// asking, so a kept clock never goes stale as time passes.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ArticleClock {
    /// When a moderator closed it, or closes it (`CloseArticle`).
    pub closed_at: Option<DateTime<Utc>>,
    /// When it was published, as the host last said with `SubmitComment`.
    pub published_at: Option<DateTime<Utc>>,
    /// When its first reply came in.
    pub first_reply_at: Option<DateTime<Utc>>,
    /// The site's `close-after-days`; 0 closes nothing by age.
    pub close_after_days: u32,
}

impl ArticleClock {
    /// When the article closes, if it ever does: the moderator's time, or its age's end, the
    /// sooner of the two. `published_at` is the host's word in the request at hand, which goes
    /// before the one kept.
    pub fn closes_at(&self, published_at: Option<DateTime<Utc>>) -> Option<DateTime<Utc>> {
        let by_age = match self.close_after_days {
            0 => None,
            days => published_at
                .or(self.published_at)
                .or(self.first_reply_at)
                .and_then(|start| start.checked_add_signed(Duration::days(i64::from(days)))),
        };
        match (self.closed_at, by_age) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }

    /// Whether the article is closed to new replies at `now`.
    pub fn is_closed(&self, now: DateTime<Utc>, published_at: Option<DateTime<Utc>>) -> bool {
        self.closes_at(published_at).is_some_and(|at| at <= now)
    }

    /// Whether a reply stored at `now`, with the host's `published_at`, tells the store
    /// something its clock lacks: the article's first reply, or a publication time it does not
    /// hold.
    pub fn learns_from(&self, published_at: Option<DateTime<Utc>>) -> bool {
        self.first_reply_at.is_none()
            || published_at.is_some_and(|given| self.published_at != Some(given))
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
            at: None,
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
        let later = ArticleClosing {
            at: DateTime::from_timestamp(1_800_000_000, 0),
            ..closing
        };
        assert_eq!(
            later.audit_note(),
            "2026/flood from 2027-01-15T08:00:00+00:00: legal hold"
        );
    }

    #[test]
    fn an_article_closes_by_a_moderators_time_or_by_its_age() {
        let t = |day: i64| DateTime::from_timestamp(1_800_000_000 + day * 86_400, 0);
        let mut clock = ArticleClock::default();
        assert_eq!(clock.closes_at(None), None);
        clock.first_reply_at = t(10);
        assert_eq!(clock.closes_at(None), None, "no age limit");
        clock.close_after_days = 30;
        assert_eq!(clock.closes_at(None), t(40), "the first reply starts it");
        clock.published_at = t(5);
        assert_eq!(
            clock.closes_at(None),
            t(35),
            "the publication time goes first"
        );
        assert_eq!(
            clock.closes_at(t(0)),
            t(30),
            "the host's word at hand before it"
        );
        clock.closed_at = t(20);
        assert_eq!(clock.closes_at(None), t(20), "the sooner of the two");
        let now = t(19).expect("a time");
        assert!(!clock.is_closed(now, None));
        assert!(clock.is_closed(now, t(-12)));
    }

    #[test]
    fn a_clock_learns_a_first_reply_and_a_new_publication_time_only() {
        let t = |day: i64| DateTime::from_timestamp(1_800_000_000 + day * 86_400, 0);
        let mut clock = ArticleClock::default();
        assert!(clock.learns_from(None));
        clock.first_reply_at = t(1);
        assert!(!clock.learns_from(None));
        assert!(clock.learns_from(t(0)));
        clock.published_at = t(0);
        assert!(!clock.learns_from(t(0)));
    }
}
