//! Blocklists: the authors, addresses and domains a site refuses.
//!
//! An entry is a validated [`Blocked`] value, stored in its one normal form so
//! that the same author, address or domain is listed once. An author is listed
//! by the keyed hash of their email, never by the email itself.

use std::{fmt, net::IpAddr};

use chrono::{DateTime, Utc};

use crate::{
    ids::{CommentId, SiteId},
    privacy::AuthorHash,
};

/// What a blocklist entry names.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum BlockKind {
    /// One author, by the keyed hash of their email.
    Author,
    /// One IPv4 or IPv6 address.
    Ip,
    /// A domain of authors' emails, with its subdomains.
    EmailDomain,
    /// A domain of authors' websites, with its subdomains.
    WebsiteDomain,
}

impl BlockKind {
    /// Every kind.
    pub const ALL: [BlockKind; 4] = [
        BlockKind::Author,
        BlockKind::Ip,
        BlockKind::EmailDomain,
        BlockKind::WebsiteDomain,
    ];

    /// The word stored in the database.
    pub fn as_str(self) -> &'static str {
        match self {
            BlockKind::Author => "author",
            BlockKind::Ip => "ip",
            BlockKind::EmailDomain => "email-domain",
            BlockKind::WebsiteDomain => "website-domain",
        }
    }

    /// The inverse of [`BlockKind::as_str`].
    pub fn parse(word: &str) -> Option<BlockKind> {
        BlockKind::ALL.into_iter().find(|k| k.as_str() == word)
    }
}

impl fmt::Display for BlockKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A value a site blocks, in its normal form.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum Blocked {
    Author(AuthorHash),
    Ip(IpAddr),
    /// Lowercase ASCII (IDNA), without a trailing dot.
    EmailDomain(String),
    /// Lowercase ASCII (IDNA), without a trailing dot.
    WebsiteDomain(String),
}

/// What a blocklist entry is compared with: one reply's author and client.
#[derive(Clone, Copy, Debug, Default)]
pub struct BlockSubject<'a> {
    pub author_hash: &'a [u8],
    pub ip: Option<&'a str>,
    /// The author's email in clear, when the caller has it.
    pub email: Option<&'a str>,
    pub website: Option<&'a str>,
}

impl Blocked {
    /// Checks and normalises a value of `kind`; the error says what was
    /// expected.
    pub fn parse(kind: BlockKind, value: &str) -> Result<Blocked, &'static str> {
        let value = value.trim();
        match kind {
            BlockKind::Author => AuthorHash::from_hex(value)
                .map(Blocked::Author)
                .ok_or("must be an author hash: 64 hex digits, as shown in the queue"),
            // An IPv4 address reaches a dual-stack server as `::ffff:a.b.c.d`: one entry blocks
            // both forms.
            BlockKind::Ip => value
                .parse::<IpAddr>()
                .map(|ip| Blocked::Ip(ip.to_canonical()))
                .map_err(|_| "must be an IPv4 or IPv6 address"),
            BlockKind::EmailDomain => domain(value)
                .map(Blocked::EmailDomain)
                .ok_or("must be a domain name such as example.com"),
            BlockKind::WebsiteDomain => domain(value)
                .map(Blocked::WebsiteDomain)
                .ok_or("must be a domain name such as example.com"),
        }
    }

    pub fn kind(&self) -> BlockKind {
        match self {
            Blocked::Author(_) => BlockKind::Author,
            Blocked::Ip(_) => BlockKind::Ip,
            Blocked::EmailDomain(_) => BlockKind::EmailDomain,
            Blocked::WebsiteDomain(_) => BlockKind::WebsiteDomain,
        }
    }

    /// The value as stored and shown.
    pub fn value(&self) -> String {
        match self {
            Blocked::Author(hash) => hash.to_hex(),
            Blocked::Ip(ip) => ip.to_string(),
            Blocked::EmailDomain(domain) | Blocked::WebsiteDomain(domain) => domain.clone(),
        }
    }

    /// The entry as a spam reason may name it, which is kept as long as the reply: its kind,
    /// and its value only where that is public (a website's domain), never an address, an
    /// author's hash or the domain of an email.
    pub fn without_personal_data(&self) -> String {
        match self {
            Blocked::WebsiteDomain(_) => self.to_string(),
            _ => self.kind().to_string(),
        }
    }

    /// Whether the entry matches a reply. A domain matches itself and its
    /// subdomains, never a look-alike (`ample.com` does not match `example.com`).
    pub fn matches(&self, subject: &BlockSubject<'_>) -> bool {
        match self {
            Blocked::Author(hash) => subject.author_hash == hash.0.as_slice(),
            Blocked::Ip(ip) => subject
                .ip
                .and_then(|text| text.trim().parse::<IpAddr>().ok())
                .is_some_and(|seen| seen.to_canonical() == ip.to_canonical()),
            Blocked::EmailDomain(blocked) => subject
                .email
                .and_then(|email| email.trim().rsplit_once('@'))
                .and_then(|(_, host)| domain(host))
                .is_some_and(|host| within(&host, blocked)),
            Blocked::WebsiteDomain(blocked) => subject
                .website
                .and_then(|site| url::Url::parse(site).ok())
                .and_then(|url| url.host_str().and_then(domain))
                .is_some_and(|host| within(&host, blocked)),
        }
    }
}

impl fmt::Display for Blocked {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {}", self.kind(), self.value())
    }
}

/// A domain name in lowercase ASCII, from a domain, `@domain` or a URL; `None`
/// for an address, a bare word or anything that is not a host.
fn domain(text: &str) -> Option<String> {
    // Refused from its length before the URL and IDNA parsers read it: no domain, nor a URL
    // naming one, is this long.
    if text.len() > MAX_SENT_DOMAIN_BYTES {
        return None;
    }
    let text = text.trim();
    let host = if text.contains("://") {
        url::Url::parse(text).ok()?.host_str()?.to_owned()
    } else {
        text.trim_start_matches('@').to_owned()
    };
    let parse = |host: &str| match url::Host::parse(host.trim_matches('.')).ok()? {
        url::Host::Domain(domain) => Some(domain),
        _ => None,
    };
    // IDNA maps some characters to a dot (`。`), so the name it makes may end in one: it is
    // trimmed and read again, and kept only in the form that reads back as itself.
    let domain = parse(&host)?;
    let domain = domain.trim_matches('.');
    let again = parse(domain)?;
    // DNS names no longer domain; a longer one would also make a blocklist page token
    // longer than any the listing reads back.
    (again == domain && again.contains('.') && again.len() <= MAX_DOMAIN_BYTES).then_some(again)
}

/// The longest value a domain is read from: a URL as long as browsers keep, around it.
const MAX_SENT_DOMAIN_BYTES: usize = 2_048;

/// The longest domain name DNS allows (RFC 1035), as `policy`'s domains are checked too.
const MAX_DOMAIN_BYTES: usize = 253;

impl BlockSubject<'_> {
    /// Every entry that matches this subject ([`Blocked::matches`]): its author, its address,
    /// and the domains of its email and website with each domain they lie within. The store
    /// looks these few up instead of reading a site's whole blocklist for every reply.
    pub fn candidates(&self) -> Vec<Blocked> {
        let mut candidates = Vec::new();
        if let Ok(hash) = <[u8; 32]>::try_from(self.author_hash) {
            candidates.push(Blocked::Author(AuthorHash(hash)));
        }
        if let Some(ip) = self.ip.and_then(|text| text.trim().parse::<IpAddr>().ok()) {
            candidates.push(Blocked::Ip(ip.to_canonical()));
        }
        if let Some(host) = self
            .email
            .and_then(|email| email.trim().rsplit_once('@'))
            .and_then(|(_, host)| domain(host))
        {
            candidates.extend(enclosing(&host).map(Blocked::EmailDomain));
        }
        if let Some(host) = self
            .website
            .and_then(|site| url::Url::parse(site).ok())
            .and_then(|url| url.host_str().and_then(domain))
        {
            candidates.extend(enclosing(&host).map(Blocked::WebsiteDomain));
        }
        candidates
    }
}

/// `host` and the domains it lies within that an entry can name (those with a dot):
/// `a.b.example` gives `a.b.example` and `b.example`.
fn enclosing(host: &str) -> impl Iterator<Item = String> + '_ {
    std::iter::successors(Some(host), |rest| rest.split_once('.').map(|(_, up)| up))
        .filter(|name| name.contains('.'))
        .map(str::to_owned)
}

fn within(host: &str, blocked: &str) -> bool {
    host == blocked
        || host
            .strip_suffix(blocked)
            .is_some_and(|rest| rest.ends_with('.'))
}

/// One entry of a site's blocklist, as stored.
#[derive(Clone, Debug, PartialEq)]
pub struct BlockEntry {
    pub blocked: Blocked,
    /// Who added it: a token prefix.
    pub actor: String,
    pub created_at: DateTime<Utc>,
    /// The moderator's note, empty when there was none.
    pub note: String,
    /// When it ends; `None` keeps it until it is taken off.
    pub expires_at: Option<DateTime<Utc>>,
    /// How many replies it caught.
    pub hits: u64,
    /// When it last caught one.
    pub last_hit_at: Option<DateTime<Utc>>,
}

impl BlockEntry {
    /// Whether the entry still blocks at `now`: the sweep takes off ended entries, and until
    /// it runs they catch nothing.
    pub fn in_force(&self, now: DateTime<Utc>) -> bool {
        self.expires_at.is_none_or(|end| now < end)
    }
}

/// How long a new entry lasts: a whole number of seconds, at most ten years.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct BlockLifetime(u64);

impl BlockLifetime {
    /// The longest lifetime: past it, an entry is meant to stay, and says so with none.
    pub const MAX_SECONDS: u64 = 10 * 366 * 24 * 60 * 60;

    /// Reads a lifetime in seconds; `Ok(None)` for 0, which keeps an entry until it is taken
    /// off.
    pub fn parse(seconds: u64) -> Result<Option<BlockLifetime>, &'static str> {
        match seconds {
            0 => Ok(None),
            s if s > Self::MAX_SECONDS => Err("must be at most ten years"),
            s => Ok(Some(BlockLifetime(s))),
        }
    }

    /// When an entry added at `now` ends.
    pub fn ends(self, now: DateTime<Utc>) -> DateTime<Utc> {
        // At most ten years, so it always fits.
        now + chrono::Duration::seconds(i64::try_from(self.0).unwrap_or(i64::MAX / 1000))
    }
}

/// An entry to add, and the audit row it leaves.
#[derive(Clone, Debug)]
pub struct NewBlock<'a> {
    pub site: SiteId,
    pub blocked: &'a Blocked,
    /// Who adds it: the token's prefix.
    pub actor: &'a str,
    pub note: Option<&'a str>,
    /// When it ends (`--for`); `None` keeps it until it is taken off.
    pub expires_at: Option<DateTime<Utc>>,
}

impl NewBlock<'_> {
    /// The audit note of the block: what was blocked, then the moderator's note.
    pub fn audit_note(&self) -> String {
        match self.note {
            Some(note) => format!("{}: {note}", self.blocked),
            None => self.blocked.to_string(),
        }
    }
}

/// A site's automatic blocks of a client address (`auto-block-spam`): once that many of the
/// address's replies within the window are spam, the address is blocked for a time, by
/// `system`, with a note that says why. Off unless the site asks for it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct AutoBlock {
    /// How many spam replies within the window block the address.
    pub spam: u32,
    /// How far back they are counted.
    pub window: chrono::Duration,
    /// How long the block lasts.
    pub lasts: chrono::Duration,
}

impl AutoBlock {
    /// Whether `found` spam replies of an address within the window block it.
    pub fn due(&self, found: u32) -> bool {
        self.spam > 0 && found >= self.spam
    }

    /// The block's note, kept with the entry and in its audit row: why it was made.
    pub fn note(&self, found: u32) -> String {
        format!(
            "automatic: {found} spam replies from this address within {} minutes",
            self.window.num_minutes()
        )
    }
}

/// What adding an entry did.
#[derive(Clone, Debug, PartialEq)]
pub struct BlockOutcome {
    /// The entry as stored (the earlier one, when it was listed already).
    pub entry: BlockEntry,
    /// False when the value was on the blocklist already.
    pub added: bool,
    /// The pending replies rejected in the same transaction.
    pub rejected: Vec<CommentId>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_address_is_blocked_automatically_at_its_kth_spam_reply_with_a_note_saying_why() {
        let rule = AutoBlock {
            spam: 3,
            window: chrono::Duration::minutes(90),
            lasts: chrono::Duration::hours(24),
        };
        assert!(!rule.due(2));
        assert!(rule.due(3) && rule.due(4));
        assert!(!AutoBlock { spam: 0, ..rule }.due(10), "0 is off");
        assert_eq!(
            rule.note(3),
            "automatic: 3 spam replies from this address within 90 minutes"
        );
    }

    #[test]
    fn a_lifetime_ends_an_entry_and_zero_keeps_it() {
        assert_eq!(BlockLifetime::parse(0), Ok(None));
        assert!(BlockLifetime::parse(BlockLifetime::MAX_SECONDS + 1).is_err());
        let now = DateTime::<Utc>::from_timestamp(1_800_000_000, 0).expect("a time");
        let hour = BlockLifetime::parse(3600).expect("valid").expect("some");
        let mut entry = BlockEntry {
            blocked: Blocked::parse(BlockKind::Ip, "192.0.2.7").expect("an address"),
            actor: "rg_mod_x".to_owned(),
            created_at: now,
            note: String::new(),
            expires_at: Some(hour.ends(now)),
            hits: 0,
            last_hit_at: None,
        };
        assert!(entry.in_force(now + chrono::Duration::minutes(59)));
        assert!(!entry.in_force(now + chrono::Duration::minutes(60)));
        entry.expires_at = None;
        assert!(entry.in_force(now + chrono::Duration::days(10_000)));
    }

    fn subject<'a>(email: &'a str, website: &'a str, ip: &'a str) -> BlockSubject<'a> {
        BlockSubject {
            author_hash: &[7; 32],
            ip: Some(ip),
            email: Some(email),
            website: Some(website),
        }
    }

    #[test]
    fn values_are_stored_in_one_normal_form() {
        let parse = |kind, value| Blocked::parse(kind, value).map(|b| b.value());
        assert_eq!(
            parse(BlockKind::EmailDomain, " @Mail.Example.COM. "),
            Ok("mail.example.com".to_owned())
        );
        assert_eq!(
            parse(BlockKind::WebsiteDomain, "https://Shop.Example/x?y"),
            Ok("shop.example".to_owned())
        );
        assert_eq!(
            parse(BlockKind::WebsiteDomain, "bücher.example"),
            Ok("xn--bcher-kva.example".to_owned())
        );
        assert_eq!(
            parse(BlockKind::Ip, " 2001:DB8::1 "),
            Ok("2001:db8::1".to_owned())
        );
        assert_eq!(
            parse(BlockKind::Author, &"AB".repeat(32)),
            Ok("ab".repeat(32))
        );
    }

    #[test]
    fn values_that_name_nothing_are_refused() {
        for (kind, value) in [
            (BlockKind::EmailDomain, "localhost"),
            (BlockKind::EmailDomain, "203.0.113.7"),
            (BlockKind::WebsiteDomain, ""),
            (BlockKind::Ip, "203.0.113"),
            (BlockKind::Author, "jane@example.com"),
        ] {
            assert!(Blocked::parse(kind, value).is_err(), "{kind} {value:?}");
        }
    }

    /// IDNA maps some characters to a dot (`。`), so a name can end in one after the dots
    /// were trimmed; the stored value must read back as the same entry, or `unblock` with
    /// the value `blocks` shows finds nothing and a blocklist page token stops there.
    #[test]
    fn a_stored_domain_reads_back_as_itself() {
        for value in [
            "a.a.a.a.a.a\u{3002}",
            "\u{3002}b.c.example",
            "example.com\u{ff0e}",
            "\u{fb03}\u{3002}",
            "\"\u{3002}",
        ] {
            for kind in [BlockKind::EmailDomain, BlockKind::WebsiteDomain] {
                if let Ok(entry) = Blocked::parse(kind, value) {
                    assert_eq!(
                        Blocked::parse(kind, &entry.value()),
                        Ok(entry.clone()),
                        "{value:?}"
                    );
                    assert!(!entry.value().ends_with('.') && !entry.value().starts_with('.'));
                }
            }
        }
    }

    /// A URL names its domain, but one far longer than any URL is refused from its length,
    /// before it is parsed.
    #[test]
    fn a_domain_sent_far_past_any_url_is_refused_unread() {
        let url = "https://spam.example/";
        assert!(Blocked::parse(BlockKind::WebsiteDomain, url).is_ok());
        let long = format!("{url}{}", "a".repeat(3 * 1024 * 1024));
        assert_eq!(
            Blocked::parse(BlockKind::WebsiteDomain, &long),
            Err("must be a domain name such as example.com")
        );
    }

    #[test]
    fn a_domain_longer_than_dns_allows_is_refused() {
        let fits = format!("{}example", "a.".repeat(123));
        assert_eq!(fits.len(), 253);
        assert!(Blocked::parse(BlockKind::WebsiteDomain, &fits).is_ok());
        let longer = format!("a{fits}");
        for kind in [BlockKind::EmailDomain, BlockKind::WebsiteDomain] {
            assert_eq!(
                Blocked::parse(kind, &longer),
                Err("must be a domain name such as example.com")
            );
        }
    }

    #[test]
    fn a_domain_matches_its_subdomains_but_not_look_alikes() {
        let blocked = Blocked::EmailDomain("example.com".to_owned());
        let reply = |email| subject(email, "https://x.example", "203.0.113.7");
        assert!(blocked.matches(&reply("jane@example.com")));
        assert!(blocked.matches(&reply("jane@Mail.Example.com")));
        assert!(!blocked.matches(&reply("jane@ample.com")));
        assert!(!blocked.matches(&reply("jane@badexample.com")));

        let website = Blocked::WebsiteDomain("pills.example".to_owned());
        assert!(website.matches(&subject(
            "a@b.example",
            "https://shop.pills.example/",
            "::1"
        )));
        assert!(!website.matches(&subject("a@pills.example", "https://ills.example", "::1")));
    }

    #[test]
    fn an_ipv4_address_is_blocked_in_its_mapped_form_too() {
        for (entry, seen) in [
            ("192.0.2.7", "::ffff:192.0.2.7"),
            ("::ffff:192.0.2.7", "192.0.2.7"),
        ] {
            let blocked = Blocked::parse(BlockKind::Ip, entry).expect("an address");
            assert_eq!(blocked.value(), "192.0.2.7");
            let reply = subject("a@b.example", "", seen);
            assert!(blocked.matches(&reply), "{entry} blocks {seen}");
            assert!(reply.candidates().contains(&blocked));
        }
    }

    #[test]
    fn addresses_and_authors_match_exactly() {
        let ip = Blocked::Ip("2001:db8::1".parse().expect("ip"));
        assert!(ip.matches(&subject("a@b.example", "", "2001:0db8:0::1")));
        assert!(!ip.matches(&subject("a@b.example", "", "2001:db8::2")));
        let author = Blocked::Author(AuthorHash([7; 32]));
        assert!(author.matches(&subject("a@b.example", "", "::1")));
        assert!(!Blocked::Author(AuthorHash([8; 32])).matches(&subject("a@b.example", "", "::1")));
    }

    /// The entries the store looks up for a reply are exactly those that match it.
    #[test]
    fn a_subjects_candidates_are_the_entries_that_match_it() {
        let entries: Vec<Blocked> = [
            (BlockKind::Author, &*"07".repeat(32)),
            (BlockKind::Author, &*"08".repeat(32)),
            (BlockKind::Ip, "2001:db8::1"),
            (BlockKind::Ip, "203.0.113.7"),
            (BlockKind::Ip, "::ffff:203.0.113.7"),
            (BlockKind::EmailDomain, "example.com"),
            (BlockKind::EmailDomain, "mail.example.com"),
            (BlockKind::EmailDomain, "ample.com"),
            (BlockKind::EmailDomain, "xn--bcher-kva.example"),
            (BlockKind::WebsiteDomain, "pills.example"),
            (BlockKind::WebsiteDomain, "shop.pills.example"),
            (BlockKind::WebsiteDomain, "example.com"),
        ]
        .into_iter()
        .map(|(kind, value)| Blocked::parse(kind, value).expect("an entry"))
        .collect();
        let subjects = [
            subject(
                "jane@Mail.Example.com",
                "https://shop.pills.example/x",
                "2001:0db8:0::1",
            ),
            subject("jane@ample.com", "https://ills.example", "203.0.113.7"),
            subject(
                "jane@bücher.example.",
                "http://example.com",
                "::ffff:203.0.113.7",
            ),
            subject("not an email", "not a url", "not an address"),
            BlockSubject::default(),
        ];
        for reply in &subjects {
            let candidates = reply.candidates();
            for entry in &entries {
                assert_eq!(
                    candidates.contains(entry),
                    entry.matches(reply),
                    "{entry} for {reply:?}"
                );
            }
            assert!(candidates.iter().all(|c| c.matches(reply)), "{reply:?}");
        }
        assert_eq!(subjects[0].candidates().len(), 6);
    }
}
