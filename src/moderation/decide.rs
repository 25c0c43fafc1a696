//! The rules of a decision: which moves a moderator may make, when a decision conflicts with
//! what happened meanwhile, what it teaches the site's classifier, and the audit row it leaves.
//! The store applies what these rules say in one transaction ([`Moderating::decide`]).

use super::Decision;
use crate::{
    domain::{Action, CommentStatus, DecisionOutcome},
    ids::SiteId,
    spam::{Label, MARK_WEIGHT, REVIEW_WEIGHT},
    store::{
        Deciding, DecisionChange, Lesson, Moderating, NewAuditRow, StoreResult, Teaching, now,
    },
};

/// Applies `decision` to its comment, if it is on one of `sites`; its lesson teaches the
/// site alone.
pub async fn decide(
    store: &dyn Moderating,
    sites: &[SiteId],
    decision: &Decision<'_>,
) -> StoreResult<DecisionOutcome> {
    decide_sharing(store, sites, decision, false).await
}

/// [`decide`], where `shares` says whether the lesson also teaches the deployment's shared
/// counts (the operator's `--shared-learning`).
pub async fn decide_sharing(
    store: &dyn Moderating,
    sites: &[SiteId],
    decision: &Decision<'_>,
    shares: bool,
) -> StoreResult<DecisionOutcome> {
    let at = now();
    store
        .decide(sites, decision.comment, &|found| {
            decision.judge(found, at, shares)
        })
        .await
}

impl<'a> Decision<'a> {
    /// What this decision changes in a comment found as `found`, at `at`, its lesson shared
    /// with the deployment's other sites when `shares`; `Conflict` when the comment is no
    /// longer where the moderator saw it.
    pub fn judge(
        &self,
        found: &Deciding,
        at: chrono::DateTime<chrono::Utc>,
        shares: bool,
    ) -> Result<DecisionChange<'a>, DecisionOutcome> {
        let from = found.status;
        if self.expected.is_some_and(|expected| expected != from) {
            return Err(DecisionOutcome::Conflict { actual: from });
        }
        let to = self.action.target();
        if to == Some(from) {
            return Err(DecisionOutcome::Unchanged { status: from });
        }
        let taught = lesson(self.action, from, to);
        Ok(DecisionChange {
            to,
            lesson: taught,
            lesson_shared: shares,
            taught: lessons(
                taught.map(|lesson| Teaching {
                    lesson,
                    shared: shares,
                }),
                found.lesson.map(|lesson| Teaching {
                    lesson,
                    shared: found.lesson_shared,
                }),
            ),
            audit: NewAuditRow {
                site: found.site,
                comment: Some(self.comment),
                actor: self.actor,
                action: self.action.as_str(),
                from: Some(from),
                to,
                note: self.note,
                at,
            },
        })
    }
}

/// The lesson a moderator's decision teaches, with its weight; `None` for a decision that
/// says nothing about spam (deleting).
pub fn lesson_of(action: Action) -> Option<Lesson> {
    match action {
        Action::MarkSpam => Some((Label::Spam, MARK_WEIGHT)),
        Action::MarkHam => Some((Label::Ham, MARK_WEIGHT)),
        Action::Reject => Some((Label::Spam, REVIEW_WEIGHT)),
        Action::Approve => Some((Label::Ham, REVIEW_WEIGHT)),
        Action::Delete => None,
    }
}

/// What a decision teaches the site's classifier: a moderator who moves a
/// reply says what it was; one who leaves it where it is says nothing new.
fn lesson(action: Action, from: CommentStatus, to: Option<CommentStatus>) -> Option<Lesson> {
    if to == Some(from) {
        return None;
    }
    lesson_of(action)
}

/// The changes a decision makes to the learned statistics, given the lesson
/// the reply taught last (`earlier`, as stored with it): a reply teaches what
/// its latest decision says, so a moderator who changes their mind takes the
/// earlier lesson back, from the shared counts too where it taught them. Empty
/// when the decision teaches nothing.
fn lessons(new: Option<Teaching>, earlier: Option<Teaching>) -> Vec<Teaching> {
    let Some(new) = new else {
        return Vec::new();
    };
    let mut changes = Vec::with_capacity(2);
    if let Some(Teaching {
        lesson: (label, weight),
        shared,
    }) = earlier
    {
        changes.push(Teaching {
            lesson: (label, -weight),
            shared,
        });
    }
    changes.push(new);
    changes
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ids::CommentId;

    fn found(status: CommentStatus, lesson: Option<Lesson>) -> Deciding {
        Deciding {
            site: SiteId::new(),
            status,
            lesson,
            lesson_shared: false,
        }
    }

    fn decision(action: Action, expected: Option<CommentStatus>) -> Decision<'static> {
        Decision {
            comment: CommentId::new(),
            action,
            actor: "rg_mod_x",
            note: None,
            expected,
        }
    }

    #[test]
    fn a_decision_on_a_moved_comment_conflicts() {
        let outcome = decision(Action::Approve, Some(CommentStatus::Pending)).judge(
            &found(CommentStatus::Spam, None),
            now(),
            false,
        );
        assert_eq!(
            outcome.expect_err("the comment moved"),
            DecisionOutcome::Conflict {
                actual: CommentStatus::Spam
            }
        );
    }

    #[test]
    fn a_changed_mind_takes_the_earlier_lesson_back() {
        let change = decision(Action::MarkHam, None)
            .judge(
                &found(CommentStatus::Spam, Some((Label::Spam, MARK_WEIGHT))),
                now(),
                false,
            )
            .expect("a move is allowed");
        assert_eq!(change.to, Some(CommentStatus::Approved));
        let site = |lesson| Teaching {
            lesson,
            shared: false,
        };
        assert_eq!(
            change.taught,
            vec![
                site((Label::Spam, -MARK_WEIGHT)),
                site((Label::Ham, MARK_WEIGHT))
            ]
        );
        assert_eq!(change.audit.from, Some(CommentStatus::Spam));
    }

    #[test]
    fn a_shared_lesson_is_taken_back_from_the_shared_counts_whatever_the_setting_is_now() {
        let taught_shared = Deciding {
            lesson_shared: true,
            ..found(CommentStatus::Spam, Some((Label::Spam, MARK_WEIGHT)))
        };
        let change = decision(Action::MarkHam, None)
            .judge(&taught_shared, now(), false)
            .expect("a move is allowed");
        assert_eq!(
            change.taught,
            vec![
                Teaching {
                    lesson: (Label::Spam, -MARK_WEIGHT),
                    shared: true
                },
                Teaching {
                    lesson: (Label::Ham, MARK_WEIGHT),
                    shared: false
                }
            ]
        );
        assert!(!change.lesson_shared, "the new lesson stays on the site");

        let change = decision(Action::MarkSpam, None)
            .judge(&found(CommentStatus::Pending, None), now(), true)
            .expect("a move is allowed");
        assert!(change.lesson_shared);
        assert_eq!(
            change.taught,
            vec![Teaching {
                lesson: (Label::Spam, MARK_WEIGHT),
                shared: true
            }]
        );
    }

    #[test]
    fn leaving_a_reply_where_it_is_changes_nothing() {
        for action in [Action::Approve, Action::MarkHam] {
            let outcome = decision(action, None)
                .judge(&found(CommentStatus::Approved, None), now(), false)
                .map(|_| ())
                .expect_err("nothing to change");
            assert_eq!(
                outcome,
                DecisionOutcome::Unchanged {
                    status: CommentStatus::Approved
                }
            );
        }
    }

    #[test]
    fn each_action_teaches_its_weight() {
        assert_eq!(lesson_of(Action::MarkSpam), Some((Label::Spam, 1.0)));
        assert_eq!(lesson_of(Action::MarkHam), Some((Label::Ham, 1.0)));
        assert_eq!(
            lesson_of(Action::Approve),
            Some((Label::Ham, REVIEW_WEIGHT))
        );
        assert_eq!(lesson_of(Action::Delete), None);
    }
}
