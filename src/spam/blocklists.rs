//! A site's blocklists: client addresses and ranges, email domains, website domains.
//!
//! An entry names something the site has decided about already, so a match is spam by
//! default. Entries are compared, never interpreted as patterns, so a moderator's entry can
//! never match more than it says.

use std::net::IpAddr;

use super::{Finding, Input, Rule, links::host_is_within};

/// An IP address or a CIDR range of IPv4 or IPv6 addresses.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct IpRange {
    /// The network address, its host bits cleared.
    network: IpAddr,
    prefix: u8,
}

impl IpRange {
    /// Reads `192.0.2.7`, `192.0.2.0/24`, `2001:db8::1` or `2001:db8::/32`.
    pub fn parse(entry: &str) -> Result<IpRange, String> {
        let entry = entry.trim();
        let (address, prefix) = match entry.split_once('/') {
            Some((address, prefix)) => (address, Some(prefix)),
            None => (entry, None),
        };
        let address: IpAddr = address
            .parse()
            .map_err(|_| "must be an IP address or a CIDR range such as 192.0.2.0/24".to_owned())?;
        let address = address.to_canonical();
        let max = if address.is_ipv4() { 32 } else { 128 };
        let prefix = match prefix {
            None => max,
            Some(digits) => digits
                .parse::<u8>()
                .ok()
                .filter(|p| *p <= max)
                .ok_or_else(|| format!("must have a prefix length from 0 to {max}"))?,
        };
        Ok(IpRange {
            network: mask(address, prefix),
            prefix,
        })
    }

    /// Whether `ip` is in this range. An IPv4 address written as IPv6 (`::ffff:192.0.2.7`)
    /// is the IPv4 address it carries.
    pub fn contains(&self, ip: IpAddr) -> bool {
        let ip = ip.to_canonical();
        ip.is_ipv4() == self.network.is_ipv4() && mask(ip, self.prefix) == self.network
    }
}

fn mask(ip: IpAddr, prefix: u8) -> IpAddr {
    match ip {
        IpAddr::V4(v4) => {
            let bits = u32::from(v4);
            let kept = u32::MAX.checked_shl(32 - u32::from(prefix)).unwrap_or(0);
            IpAddr::V4((bits & kept).into())
        }
        IpAddr::V6(v6) => {
            let bits = u128::from(v6);
            let kept = u128::MAX.checked_shl(128 - u32::from(prefix)).unwrap_or(0);
            IpAddr::V6((bits & kept).into())
        }
    }
}

/// The client's address is on the site's blocklist.
pub struct BlockedIp;

impl Rule for BlockedIp {
    fn name(&self) -> &'static str {
        "blocked-ip"
    }

    fn check(&self, input: &Input<'_>) -> Option<Finding> {
        let ip = input.reply.client.ip?;
        input
            .policy
            .blocked_ips
            .iter()
            .any(|entry| IpRange::parse(entry).is_ok_and(|range| range.contains(ip)))
            // Neither the address nor the entry that holds it: a reason is kept as long as
            // the reply, and the address only until the retention sweep.
            .then(|| Finding::new("the client's address is on the site's blocklist".to_owned()))
    }
}

/// A moderator blocked the author, the address or a domain of the reply
/// (`replyctl block`); storage found the entry.
pub struct ModeratorBlock;

impl Rule for ModeratorBlock {
    fn name(&self) -> &'static str {
        "moderator-block"
    }

    fn check(&self, input: &Input<'_>) -> Option<Finding> {
        let entry = input.facts.blocked_by?;
        Some(Finding::new(format!("blocked by a moderator: {entry}")))
    }
}

/// The form a domain entry is compared in: lowercase, without a leading `@`, `*.` or `www.`.
pub(crate) fn normalize_domain(entry: &str) -> String {
    let entry = entry.trim();
    let entry = entry.strip_prefix('@').unwrap_or(entry);
    let entry = entry.strip_prefix("*.").unwrap_or(entry);
    let entry = entry.strip_prefix("www.").unwrap_or(entry);
    entry.to_ascii_lowercase()
}

/// The author's email domain is on the site's blocklist.
pub struct BlockedEmailDomain;

impl Rule for BlockedEmailDomain {
    fn name(&self) -> &'static str {
        "blocked-email-domain"
    }

    fn check(&self, input: &Input<'_>) -> Option<Finding> {
        let (_, domain) = input.reply.email.as_str().rsplit_once('@')?;
        input
            .policy
            .blocked_email_domains
            .iter()
            .map(|entry| normalize_domain(entry))
            .any(|entry| !entry.is_empty() && host_is_within(domain, &entry))
            // The domain is part of the email, which is never kept in the clear.
            .then(|| Finding::new("the email's domain is on the site's blocklist".to_owned()))
    }
}

/// The author's website, or a site linked in the text, is on the site's blocklist.
pub struct BlockedWebsite;

impl Rule for BlockedWebsite {
    fn name(&self) -> &'static str {
        "blocked-website"
    }

    fn check(&self, input: &Input<'_>) -> Option<Finding> {
        if input.policy.blocked_websites.is_empty() {
            return None;
        }
        let website = input
            .reply
            .website
            .as_ref()
            .and_then(|w| w.url().host_str());
        let hosts = website
            .into_iter()
            .chain(input.text.links.iter().map(|link| link.host.as_str()));
        for host in hosts {
            let blocked = input
                .policy
                .blocked_websites
                .iter()
                .map(|entry| normalize_domain(entry))
                .find(|entry| !entry.is_empty() && host_is_within(host, entry));
            if let Some(entry) = blocked {
                return Some(Finding::new(format!("website {entry} is blocked")));
            }
        }
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::spam::testing::{assess_with, hits, reply};

    fn ip(text: &str) -> IpAddr {
        text.parse().unwrap_or(IpAddr::from([0, 0, 0, 0]))
    }

    #[test]
    fn an_ipv4_range_contains_its_addresses_only() -> Result<(), String> {
        let range = IpRange::parse("192.0.2.77/24")?;
        assert!(range.contains(ip("192.0.2.1")));
        assert!(range.contains(ip("192.0.2.255")));
        assert!(!range.contains(ip("192.0.3.1")));
        assert!(!range.contains(ip("2001:db8::1")));
        assert!(IpRange::parse("0.0.0.0/0")?.contains(ip("203.0.113.9")));
        Ok(())
    }

    #[test]
    fn an_ipv6_range_contains_its_addresses_only() -> Result<(), String> {
        let range = IpRange::parse("2001:db8:abcd::/48")?;
        assert!(range.contains(ip("2001:db8:abcd:12::1")));
        assert!(!range.contains(ip("2001:db8:abce::1")));
        assert!(!range.contains(ip("192.0.2.1")));
        assert!(IpRange::parse("2001:db8::1")?.contains(ip("2001:db8::1")));
        assert!(!IpRange::parse("2001:db8::1")?.contains(ip("2001:db8::2")));
        Ok(())
    }

    #[test]
    fn an_ipv4_address_written_as_ipv6_matches_its_ipv4_range() -> Result<(), String> {
        assert!(IpRange::parse("192.0.2.0/24")?.contains(ip("::ffff:192.0.2.9")));
        assert!(IpRange::parse("::ffff:192.0.2.9")?.contains(ip("192.0.2.9")));
        Ok(())
    }

    #[test]
    fn malformed_ranges_are_refused() {
        for entry in [
            "192.0.2.0/33",
            "2001:db8::/129",
            "192.0.2/24",
            "host",
            "1.2.3.4/x",
            "",
        ] {
            assert!(IpRange::parse(entry).is_err(), "{entry}");
        }
    }

    /// A reason is kept as long as its reply; the address only until the retention sweep, and
    /// the email never in the clear: neither may be in a reason's text.
    #[test]
    fn no_reason_names_the_address_or_the_email() -> Result<(), String> {
        let mut spam = reply("Perfectly ordinary words");
        spam.client.ip = Some(ip("198.51.100.20"));
        spam.email = crate::domain::Email::parse("bot@mail.spam.example")?;
        let assessment = assess_with(&spam, |p| {
            p.blocked_ips = vec!["198.51.100.20".into()];
            p.blocked_email_domains = vec!["spam.example".into()];
        });
        assert!(hits(&assessment, "blocked-ip") && hits(&assessment, "blocked-email-domain"));
        for reason in &assessment.reasons {
            assert!(!reason.reason.contains("198.51.100"), "{reason:?}");
            assert!(!reason.reason.contains("spam.example"), "{reason:?}");
        }
        Ok(())
    }

    #[test]
    fn a_blocked_address_makes_a_reply_spam() {
        let mut spam = reply("Perfectly ordinary words");
        spam.client.ip = Some(ip("198.51.100.20"));
        let assessment = assess_with(&spam, |p| p.blocked_ips = vec!["198.51.100.0/27".into()]);
        assert!(hits(&assessment, "blocked-ip"));
        assert_eq!(assessment.verdict, crate::spam::Verdict::Spam);
        spam.client.ip = Some(ip("198.51.100.99"));
        let assessment = assess_with(&spam, |p| p.blocked_ips = vec!["198.51.100.0/27".into()]);
        assert!(!hits(&assessment, "blocked-ip"));
    }

    #[test]
    fn a_blocked_email_domain_covers_its_subdomains_only() -> Result<(), String> {
        let mut spam = reply("Perfectly ordinary words");
        spam.email = crate::domain::Email::parse("bot@mail.spam.example")?;
        let block =
            |p: &mut crate::spam::Policy| p.blocked_email_domains = vec!["@spam.example".into()];
        assert!(hits(&assess_with(&spam, block), "blocked-email-domain"));
        spam.email = crate::domain::Email::parse("jane@notspam.example")?;
        assert!(!hits(&assess_with(&spam, block), "blocked-email-domain"));
        Ok(())
    }

    #[test]
    fn a_blocked_website_is_found_in_the_website_field_and_in_the_text() -> Result<(), String> {
        let block = |p: &mut crate::spam::Policy| p.blocked_websites = vec!["pills.example".into()];
        let mut spam = reply("Perfectly ordinary words");
        spam.website = Some(crate::domain::Website::parse("https://www.pills.example/")?);
        assert!(hits(&assess_with(&spam, block), "blocked-website"));
        let linked = reply("order at http://shop.pills.example/x now");
        assert!(hits(&assess_with(&linked, block), "blocked-website"));
        let clean = reply("order at http://pills.example.org/x now");
        assert!(!hits(&assess_with(&clean, block), "blocked-website"));
        Ok(())
    }
}
