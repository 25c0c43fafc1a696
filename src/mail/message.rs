//! The text of each mail: plain text, naming what a reader of it needs and no one's address but
//! masked ones (the recipient's is only in the envelope and `To`).

use std::fmt::Write;

use crate::{spam::Verdict, store::StoredComment};

/// A mail's subject and text.
#[derive(Clone, Debug, PartialEq)]
pub struct Written {
    pub subject: String,
    pub text: String,
}

/// A reply a moderator's notice tells of.
pub struct HeldReply {
    pub comment: StoredComment,
    /// The author's address as moderators see it: `j•••@example.com`.
    pub masked_email: String,
    /// `comment.held` or `comment.spam`.
    pub event: String,
}

/// The longest excerpt of a reply's text a notice quotes.
const EXCERPT_CHARS: usize = 500;

/// A moderator's notice of one reply, or a digest of several.
pub fn notice(site: &str, held: &[HeldReply]) -> Written {
    let subject = match held {
        [one] => format!(
            "[{site}] {} on {}",
            match one.event.as_str() {
                "comment.spam" => "A reply was called spam",
                _ => "A reply waits for a moderator",
            },
            one.comment.article
        ),
        many => format!("[{site}] {} replies wait for a moderator", many.len()),
    };
    let mut text = String::new();
    for (index, reply) in held.iter().enumerate() {
        if index > 0 {
            text.push_str("\n----\n\n");
        }
        write_reply(&mut text, site, reply);
    }
    let _ = write!(
        text,
        "\n--\nSent by replyguard for site {site:?}. `replyctl notify list` shows who is told of \
         what; `replyctl notify remove ID` stops these mails.\n"
    );
    Written { subject, text }
}

fn write_reply(text: &mut String, site: &str, reply: &HeldReply) {
    let c = &reply.comment;
    let status = match reply.event.as_str() {
        "comment.spam" => "was called spam",
        _ => "waits for a moderator",
    };
    let _ = writeln!(
        text,
        "A reply on site {site:?}, article {:?}, {status}.\n",
        c.article
    );
    let _ = writeln!(
        text,
        "Author:  {} ({})",
        one_line(&c.author_name),
        reply.masked_email
    );
    let _ = writeln!(text, "Score:   {:.2} ({})", c.score, c.verdict.as_str());
    if reply.event == "comment.held" && c.verdict == Verdict::Approve {
        // The score alone would have approved it (a site that moderates every reply).
        let _ = writeln!(text, "Held:    by the site's policy, not by its score");
    }
    let reasons: Vec<&_> = c.reasons.iter().filter(|r| !r.log_only).collect();
    if reasons.is_empty() {
        let _ = writeln!(text, "Reasons: none");
    } else {
        let _ = writeln!(text, "Reasons:");
        for reason in reasons {
            let _ = writeln!(
                text,
                "  {:+.2}  {}: {}",
                reason.weight,
                reason.rule,
                one_line(&reason.reason)
            );
        }
    }
    let excerpt: String = c.body_public.chars().take(EXCERPT_CHARS).collect();
    let _ = writeln!(text, "\nText:");
    for line in excerpt.lines() {
        let _ = writeln!(text, "  > {line}");
    }
    if c.body_public.chars().count() > EXCERPT_CHARS {
        let _ = writeln!(text, "  > …");
    }
    let _ = writeln!(
        text,
        "\nDecide with:\n  replyctl approve {id}\n  replyctl reject {id}\n  replyctl spam {id}",
        id = c.id
    );
}

/// A name or reason on one line, so it cannot forge lines of its own in the mail.
fn one_line(text: &str) -> String {
    text.chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect()
}

/// The mail that asks a reader to confirm their address before answers are mailed to them.
pub fn confirm(site: &str, article: Option<&str>, link: &str) -> Written {
    let mut text = String::new();
    let _ = writeln!(
        text,
        "You asked {site} to mail you when someone answers your reply{}.\n",
        article
            .map(|a| format!(" on {:?}", one_line(a)))
            .unwrap_or_default()
    );
    let _ = writeln!(
        text,
        "To confirm that this address is yours, open this link:\n\n  {link}\n"
    );
    let _ = writeln!(
        text,
        "If you did not ask for this, ignore this mail: nothing more will be sent."
    );
    Written {
        subject: format!("[{site}] Confirm your address for answers to your reply"),
        text,
    }
}

/// An approved answer to a reader's reply. Names the one who answered by the name they gave,
/// never by their address.
pub fn answer(
    site: &str,
    answer: &StoredComment,
    yours: &StoredComment,
    unsubscribe: &str,
) -> Written {
    let name = one_line(&answer.author_name);
    let mut text = String::new();
    let _ = writeln!(
        text,
        "{name} answered your reply on {site}, article {:?}:\n",
        answer.article
    );
    quote(&mut text, &answer.body_public);
    let _ = writeln!(text, "\nYour reply:\n");
    quote(&mut text, &yours.body_public);
    let _ = writeln!(
        text,
        "\n--\nYou are told of answers because you asked when you replied. To stop all such \
         mails from {site}:\n\n  {unsubscribe}"
    );
    Written {
        subject: format!("[{site}] {name} answered your reply"),
        text,
    }
}

/// A text quoted line by line, cut after [`EXCERPT_CHARS`].
fn quote(text: &mut String, body: &str) {
    let excerpt: String = body.chars().take(EXCERPT_CHARS).collect();
    for line in excerpt.lines() {
        let _ = writeln!(text, "  > {line}");
    }
    if body.chars().count() > EXCERPT_CHARS {
        let _ = writeln!(text, "  > …");
    }
}
