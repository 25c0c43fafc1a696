//! Rules about links: how many a reply has, where they point, and links where no reader puts
//! them (in the author's name).
//!
//! Links are found once per reply by [`find_links`]; the rules here only read that list.

use std::net::IpAddr;
use std::sync::LazyLock;

use crate::privacy::links::{Finder, Kinds};

use super::{Finding, Input, Rule};

/// One link found in a text.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Link {
    /// Where the link is in the text, as a byte range.
    pub span: (usize, usize),
    /// The host, lowercase, without a leading `www.`; an IP literal for raw-IP links.
    pub host: String,
    /// Whether the host is an IP address rather than a name.
    pub is_ip: bool,
}

impl Link {
    /// The last label of the host name (`xyz` in `win.example.xyz`); empty for an IP.
    pub fn tld(&self) -> &str {
        if self.is_ip {
            return "";
        }
        self.host.rsplit('.').next().unwrap_or_default()
    }
}

/// Every http(s) or `www.`/`example.com` style link in `text`.
pub fn find_links(text: &str) -> Vec<Link> {
    static LINKS: LazyLock<Finder> = LazyLock::new(|| Finder::new(Kinds::Urls));
    LINKS
        .links(text)
        .filter_map(|link| parse_link(link.text, (link.start, link.start + link.text.len())))
        .collect()
}

/// Counts the http(s) and `www.` links in a text.
pub fn count_links(text: &str) -> usize {
    find_links(text).len()
}

fn parse_link(found: &str, span: (usize, usize)) -> Option<Link> {
    let parsed = if found.contains("://") {
        url::Url::parse(found).ok()
    } else {
        if sentence_join(found) {
            return None;
        }
        url::Url::parse(&format!("http://{found}")).ok()
    }?;
    let (host, is_ip) = match parsed.host()? {
        url::Host::Domain(name) => (name.trim_start_matches("www.").to_owned(), false),
        url::Host::Ipv4(ip) => (ip.to_string(), true),
        url::Host::Ipv6(ip) => (ip.to_string(), true),
    };
    // A host that is all digits and dots but not a valid address ("1.2.3") is still a raw IP
    // to a reader; the URL parser has already turned valid ones into `Ipv4`.
    let is_ip = is_ip || host.parse::<IpAddr>().is_ok();
    Some(Link { span, host, is_ip })
}

/// Whether a link found without a scheme is two sentences typed without a space between them
/// ("the economy.It is", "technology.How do"), which a link finder reads as a host under the
/// `.it` or `.how` domain: the last label of its host, as written, begins with a capital,
/// while a reader who types a domain name types it as `.com`, and `www.` is always a link.
/// Readers whose line breaks a host drops write this way all the time; counted as links,
/// such replies were held for "2 links".
fn sentence_join(found: &str) -> bool {
    let host = found.split(['/', ':', '?', '#']).next().unwrap_or_default();
    !host.to_ascii_lowercase().starts_with("www.")
        && host
            .rsplit('.')
            .next()
            .and_then(|label| label.chars().next())
            .is_some_and(char::is_uppercase)
}

/// Whether `host` is `domain` or one of its subdomains.
pub fn host_is_within(host: &str, domain: &str) -> bool {
    let mut host = host;
    while let Some(rest) = host.strip_prefix("www.") {
        host = rest;
    }
    host == domain
        || host
            .strip_suffix(domain)
            .is_some_and(|rest| rest.ends_with('.'))
}

/// Holds a reply with many links, as WordPress does at two.
pub struct LinkCount;

impl Rule for LinkCount {
    fn name(&self) -> &'static str {
        "links"
    }

    fn check(&self, input: &Input<'_>) -> Option<Finding> {
        let max = input.policy.max_links;
        let count = input.text.links.len();
        (max > 0 && count >= max as usize)
            .then(|| Finding::new(format!("{count} links (holds at {max})")))
    }
}

/// A link or a domain in the author's name: readers sign with a name, spammers with a shop.
pub struct LinkInName;

impl Rule for LinkInName {
    fn name(&self) -> &'static str {
        "link-in-name"
    }

    fn check(&self, input: &Input<'_>) -> Option<Finding> {
        let name = input.reply.author.as_str();
        find_links(name)
            .first()
            .map(|link| Finding::new(format!("author name holds a link to {}", link.host)))
    }
}

/// Services that hide where a link goes; readers rarely need them, spammers nearly always do.
const SHORTENERS: &[&str] = &[
    "adf.ly",
    "bit.do",
    "bit.ly",
    "buff.ly",
    "cutt.ly",
    "db.tt",
    "goo.gl",
    "is.gd",
    "lnkd.in",
    "ow.ly",
    "po.st",
    "qr.ae",
    "rb.gy",
    "rebrand.ly",
    "s.id",
    "shorte.st",
    "shorturl.at",
    "t.co",
    "t.ly",
    "tiny.cc",
    "tinyurl.com",
    "v.gd",
    "x.co",
];

/// A link through a URL shortener.
pub struct LinkShortener;

impl Rule for LinkShortener {
    fn name(&self) -> &'static str {
        "link-shortener"
    }

    fn check(&self, input: &Input<'_>) -> Option<Finding> {
        input
            .text
            .links
            .iter()
            .find(|link| SHORTENERS.iter().any(|s| host_is_within(&link.host, s)))
            .map(|link| Finding::new(format!("link through the shortener {}", link.host)))
    }
}

/// A link to a bare IP address, which no ordinary website asks its readers to visit.
pub struct LinkRawIp;

impl Rule for LinkRawIp {
    fn name(&self) -> &'static str {
        "link-raw-ip"
    }

    fn check(&self, input: &Input<'_>) -> Option<Finding> {
        input
            .text
            .links
            .iter()
            .find(|link| link.is_ip)
            .map(|link| Finding::new(format!("link to the bare address {}", link.host)))
    }
}

/// Top-level domains where most registrations are abusive, going by the public abuse
/// statistics of the registries and of Spamhaus; a cheap name is what throwaway spam needs.
const SUSPICIOUS_TLDS: &[&str] = &[
    "bid", "buzz", "cam", "cf", "click", "country", "cricket", "cyou", "date", "download", "faith",
    "ga", "gq", "icu", "kim", "loan", "men", "ml", "party", "racing", "rest", "review", "science",
    "stream", "tk", "top", "trade", "webcam", "win", "work", "xyz", "zip",
];

/// A link to a top-level domain that is mostly used for spam.
pub struct LinkTld;

impl Rule for LinkTld {
    fn name(&self) -> &'static str {
        "link-tld"
    }

    fn check(&self, input: &Input<'_>) -> Option<Finding> {
        input
            .text
            .links
            .iter()
            .find(|link| SUSPICIOUS_TLDS.contains(&link.tld()))
            .map(|link| Finding::new(format!("link to .{} ({})", link.tld(), link.host)))
    }
}

/// A domain written so that no link finder reads it: spaces around its dot
/// (`marketglory . com`, `mtvema. com/vote`) or the dot spelled out (`example(dot)com`). A
/// reader who names a site types it as it is; one who breaks it up is passing a filter that
/// would count the link, and the reader is asked to put it back together ("delete spaces").
/// Only the common domains, and with a space only after the dot only `.com` after a name of
/// three characters or more, so that two sentences without a capital ("said. me too", "money.
/// net of taxes") are not read as one.
static DISGUISED: LazyLock<Option<regex::Regex>> = LazyLock::new(|| {
    regex::Regex::new(concat!(
        r"\b[A-Za-z0-9][A-Za-z0-9-]*[A-Za-z0-9]",
        r"(?:[ \t]+\.[ \t]*(?:com|net|org|info|biz|ru)",
        r"|[A-Za-z0-9]\.[ \t]+com",
        r"|[ \t]*[\(\[]dot[\)\]][ \t]*(?:com|net|org|info|biz|ru))",
        r"(?:$|[/\s,!?)]|\.(?:\s|$))",
    ))
    .ok()
});

/// The first domain of `text` written apart so that it is not read as a link, if any.
pub(crate) fn disguised_link(text: &str) -> Option<&str> {
    // Every form has one of these; most replies have none, and are not searched.
    if ![" .", "\t.", ". com", ".  com", ".\tcom", "dot"]
        .iter()
        .any(|form| text.contains(form))
    {
        return None;
    }
    let found = DISGUISED.as_ref()?.find(text)?;
    Some(
        found
            .as_str()
            .trim_end_matches(|c: char| !c.is_ascii_alphanumeric()),
    )
}

/// A link disguised so that link rules miss it ([`disguised_link`]): holds the reply.
pub struct LinkDisguised;

impl Rule for LinkDisguised {
    fn name(&self) -> &'static str {
        "link-disguised"
    }

    fn check(&self, input: &Input<'_>) -> Option<Finding> {
        disguised_link(input.reply.body.as_str()).map(|found| {
            Finding::new(format!(
                "a link written apart to pass link checks: \"{found}\""
            ))
        })
    }
}

/// The author's own website linked again in the text: a reader's website field is for their
/// name, an advertiser's is also in the text.
pub struct LinkWebsiteRepeat;

impl Rule for LinkWebsiteRepeat {
    fn name(&self) -> &'static str {
        "link-website-repeat"
    }

    fn check(&self, input: &Input<'_>) -> Option<Finding> {
        let website = input.reply.website.as_ref()?;
        let host = website.url().host_str()?.trim_start_matches("www.");
        input
            .text
            .links
            .iter()
            .any(|link| host_is_within(&link.host, host))
            .then(|| Finding::new(format!("the text links the author's website {host} again")))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::spam::testing::{assess_with, hits, reply};

    #[test]
    fn counts_links_with_and_without_scheme() {
        assert_eq!(count_links("see https://a.example and www.b.example"), 2);
        assert_eq!(count_links("no links here, just example text."), 0);
    }

    #[test]
    fn two_sentences_without_a_space_are_not_a_link() {
        // `.it` and `.how` are domains, but a capital after the dot starts a sentence.
        assert_eq!(
            count_links("Look at the economy.It is worse than the technology.How so?"),
            0
        );
        // What a reader types as a domain still counts, however the name is written.
        assert_eq!(
            count_links("See Amazon.com, www.Example.It and https://news.example.It/x"),
            3
        );
        assert_eq!(count_links("the economy.it is"), 1);
    }

    #[test]
    fn a_domain_written_apart_is_a_disguised_link_and_a_sentence_is_not() {
        for (text, found) in [
            (
                "earn real money: marketglory . com/strategygame",
                "marketglory . com",
            ),
            (
                "vote daily: tv.  mtvema. com/vote (delete spaces)",
                "mtvema. com",
            ),
            ("visit cheap-pills (dot) net today", "cheap-pills (dot) net"),
            ("my site kidsmedia  .com!", "kidsmedia  .com"),
        ] {
            assert_eq!(disguised_link(text), Some(found), "{text}");
            assert!(
                hits(&assess_with(&reply(text), |_| {}), "link-disguised"),
                "{text}"
            );
        }
        for text in [
            "He said it twice. me too, though.",
            "Read it at example.com, as the article says.",
            "The U.S. co-op movement. Com truise sang it.",
            "the dot com bubble burst in 2000",
            "It costs money. net of taxes it is less",
            "A fine point. Org charts say otherwise.",
        ] {
            assert_eq!(disguised_link(text), None, "{text}");
        }
    }

    #[test]
    fn a_link_knows_its_host_and_whether_it_is_an_address() {
        let links = find_links("https://WWW.Shop.Example.xyz/a and http://192.0.2.7:8080/x");
        assert_eq!(links[0].host, "shop.example.xyz");
        assert_eq!(links[0].tld(), "xyz");
        assert!(!links[0].is_ip);
        assert_eq!(links[1].host, "192.0.2.7");
        assert!(links[1].is_ip);
    }

    #[test]
    fn two_links_hold_a_reply_and_one_does_not() {
        let two =
            reply("See https://a.example/1 and https://b.example/2 for the whole council report");
        assert!(hits(&assess_with(&two, |_| {}), "links"));
        let one = reply("See https://a.example/1 for the longer story on this");
        assert!(!hits(&assess_with(&one, |_| {}), "links"));
    }

    #[test]
    fn a_link_in_the_author_name_is_flagged_and_a_plain_name_is_not() -> Result<(), String> {
        let mut spam = reply("Nice article, thanks for writing it");
        spam.author = crate::domain::AuthorName::parse("cheap-pills.example.com")?;
        assert!(hits(&assess_with(&spam, |_| {}), "link-in-name"));
        let plain = reply("Nice article, thanks for writing it");
        assert!(!hits(&assess_with(&plain, |_| {}), "link-in-name"));
        Ok(())
    }

    #[test]
    fn shortened_raw_ip_and_cheap_tld_links_are_flagged() {
        let assessment = assess_with(
            &reply("go https://bit.ly/x http://203.0.113.9/a https://win.example.xyz"),
            |_| {},
        );
        for rule in ["link-shortener", "link-raw-ip", "link-tld"] {
            assert!(hits(&assessment, rule), "{rule}");
        }
        let clean = assess_with(&reply("read https://news.example.com/story"), |_| {});
        for rule in ["link-shortener", "link-raw-ip", "link-tld"] {
            assert!(!hits(&clean, rule), "{rule}");
        }
    }

    #[test]
    fn the_authors_website_repeated_in_the_text_is_flagged() {
        let mut spam = reply("Best deals at https://shop.example.com/deals today");
        spam.website = crate::domain::Website::parse("https://www.shop.example.com").ok();
        assert!(hits(&assess_with(&spam, |_| {}), "link-website-repeat"));
        let mut reader = reply("I wrote about this at https://blog.example.org/post");
        reader.website = crate::domain::Website::parse("https://shop.example.com").ok();
        assert!(!hits(&assess_with(&reader, |_| {}), "link-website-repeat"));
    }

    #[test]
    fn a_subdomain_is_within_its_domain_but_a_lookalike_is_not() {
        assert!(host_is_within("a.bit.ly", "bit.ly"));
        assert!(host_is_within("bit.ly", "bit.ly"));
        assert!(!host_is_within("rabbit.ly", "bit.ly"));
    }
}
