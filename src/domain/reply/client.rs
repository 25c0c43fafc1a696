//! What comes with a reply besides what the reader wrote: their browser's address, agent and
//! referrer, and the form's token and honeypot. Kept as spam signals, cut and cleaned rather
//! than refused; only a malformed address or an oversized token is a violation.

use std::net::IpAddr;

use super::checks::{at_most_bytes, truncate};
use crate::privacy;

/// What the host knows about the reader's browser; used as spam signals, never refused.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ClientInfo {
    pub ip: Option<IpAddr>,
    /// At most [`ClientInfo::MAX_USER_AGENT_BYTES`]; longer values are cut.
    pub user_agent: Option<String>,
    /// At most [`ClientInfo::MAX_REFERRER_BYTES`]; longer values are cut.
    pub referrer: Option<String>,
}

impl ClientInfo {
    pub const MAX_USER_AGENT_BYTES: usize = 512;
    pub const MAX_REFERRER_BYTES: usize = 2_000;
}

/// What the reply's form carried back besides the reply itself.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct FormInfo {
    /// The token from `PrepareForm`, at most [`FormInfo::MAX_TOKEN_BYTES`]; checked later.
    pub token: Option<String>,
    /// The hidden field only bots fill in, kept byte for byte (whitespace is a signal too), cut
    /// at [`FormInfo::MAX_HONEYPOT_BYTES`]. It is never a reason to refuse the reply here:
    /// refusing would tell the bot which field gave it away.
    pub honeypot: Option<String>,
}

impl FormInfo {
    pub const MAX_TOKEN_BYTES: usize = 1_000;
    pub const MAX_HONEYPOT_BYTES: usize = 1_000;
}

/// A client detail as it is kept: never refused, but without control characters (PostgreSQL
/// cannot store NUL in text, and no backend should hold what the other could not), with any email
/// address or phone number masked (a referrer can carry `?email=`, a crawler's agent its owner's
/// address), and cut to `max` bytes.
pub(super) fn client_detail(raw: &str, max: usize) -> Option<String> {
    // Only the start of a long value is read: the cleaning and masking below cost what they
    // read, and what they keep is cut to `max` anyway.
    let raw = truncate(raw, max.saturating_mul(4));
    let text: String = raw.chars().filter(|c| !c.is_control()).collect();
    non_empty(truncate(&privacy::mask_contacts(text.trim()), max))
}

pub(super) fn non_empty(text: &str) -> Option<String> {
    (!text.is_empty()).then(|| text.to_owned())
}

pub(super) fn parse_ip(raw: &str) -> Result<IpAddr, String> {
    raw.trim()
        .parse()
        .map_err(|_| "must be an IPv4 or IPv6 address".to_owned())
}

pub(super) fn parse_form_token(raw: &str) -> Result<String, String> {
    let token = raw.trim();
    at_most_bytes(token, FormInfo::MAX_TOKEN_BYTES)?;
    Ok(token.to_owned())
}

#[cfg(test)]
mod tests {
    use crate::domain::reply::{
        FieldViolation, RawReply,
        testing::{good, only_violation},
        validate,
    };

    /// A detail far longer than is kept is cut before it is cleaned and masked: what lies past
    /// four times the kept length is never read, even when cleaning would have brought it in.
    #[test]
    fn a_client_detail_is_read_only_as_far_as_it_could_be_kept() {
        let controls = "\u{1}".repeat(3 * 1024 * 1024);
        let agent = format!("{controls}Mozilla/5.0");
        assert_eq!(super::client_detail(&agent, 512), None);
        assert_eq!(
            super::client_detail(&format!("\u{1}\u{1}{}", "Mozilla/5.0"), 512).as_deref(),
            Some("Mozilla/5.0")
        );
    }

    #[test]
    fn a_client_ip_must_be_an_ip_address() {
        assert_eq!(
            only_violation(&RawReply {
                ip: "example.com",
                ..good()
            }),
            ("client.ip", "must be an IPv4 or IPv6 address".to_owned())
        );
        assert!(
            validate(&RawReply {
                ip: " 192.0.2.7 ",
                ..good()
            })
            .is_ok()
        );
    }

    #[test]
    fn a_long_user_agent_and_referrer_are_cut_on_a_character_boundary()
    -> Result<(), Vec<FieldViolation>> {
        let agent = format!("a{}", "é".repeat(600));
        let referrer = "ü".repeat(1_500);
        let reply = validate(&RawReply {
            user_agent: &agent,
            referrer: &referrer,
            ..good()
        })?;
        let agent = reply.client.user_agent.unwrap_or_default();
        assert_eq!(agent.len(), 511);
        assert!(agent.starts_with("aé"));
        assert_eq!(reply.client.referrer.map(|r| r.len()), Some(2_000));
        Ok(())
    }

    #[test]
    fn contacts_in_the_referrer_and_user_agent_are_masked_and_browsers_agents_kept()
    -> Result<(), Vec<FieldViolation>> {
        let reply = validate(&RawReply {
            user_agent: "ExampleBot/2.1 (+mailto:ops@bots.example; +44 20 7946 0958)",
            referrer: "https://mail.example.com/news?to=Jane.Doe@example.org&id=7",
            ..good()
        })?;
        assert_eq!(
            reply.client.user_agent.as_deref(),
            Some("ExampleBot/2.1 (+mailto:[email hidden]; [phone hidden])")
        );
        assert_eq!(
            reply.client.referrer.as_deref(),
            Some("https://mail.example.com/news?to=[email hidden]&id=7")
        );
        for agent in [
            "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) \
             Chrome/131.0.0.0 Safari/537.36",
            "Mozilla/5.0 (Linux; Android 14; SM-S918B Build/UP1A.231005.007; wv) \
             AppleWebKit/537.36 (KHTML, like Gecko) Version/4.0 Chrome/131.0.6778.135 \
             Mobile Safari/537.36",
            "Mozilla/5.0 (iPhone; CPU iPhone OS 18_1 like Mac OS X) AppleWebKit/605.1.15 \
             (KHTML, like Gecko) Version/18.1 Mobile/15E148 Safari/604.1",
        ] {
            let reply = validate(&RawReply {
                user_agent: agent,
                ..good()
            })?;
            assert_eq!(reply.client.user_agent.as_deref(), Some(agent));
        }
        Ok(())
    }

    #[test]
    fn a_user_agent_is_never_refused() {
        assert!(
            validate(&RawReply {
                user_agent: "bad\0agent\u{1b}",
                ..good()
            })
            .is_ok()
        );
    }

    #[test]
    fn control_characters_are_dropped_from_the_user_agent_and_referrer()
    -> Result<(), Vec<FieldViolation>> {
        let reply = validate(&RawReply {
            user_agent: "bad\0agent\u{1b}",
            referrer: "\u{7}https://news.example.com/\n",
            ..good()
        })?;
        assert_eq!(reply.client.user_agent.as_deref(), Some("badagent"));
        assert_eq!(
            reply.client.referrer.as_deref(),
            Some("https://news.example.com/")
        );
        let reply = validate(&RawReply {
            user_agent: "\0\0",
            ..good()
        })?;
        assert_eq!(reply.client.user_agent, None);
        Ok(())
    }

    #[test]
    fn a_form_token_over_1000_bytes_is_refused() {
        let long = "t".repeat(1_001);
        assert_eq!(
            only_violation(&RawReply {
                form_token: &long,
                ..good()
            }),
            ("form.token", "must be at most 1000 bytes".to_owned())
        );
    }

    #[test]
    fn a_filled_honeypot_is_kept_as_given_and_cut_at_1000_bytes() -> Result<(), Vec<FieldViolation>>
    {
        let filled = format!("  {}", "x".repeat(2_000));
        let reply = validate(&RawReply {
            honeypot: &filled,
            ..good()
        })?;
        let honeypot = reply.form.honeypot.unwrap_or_default();
        assert_eq!(honeypot.len(), 1_000);
        assert!(honeypot.starts_with("  x"));
        Ok(())
    }
}
