//! Finding links and email addresses in text, in time linear in its length.
//!
//! The `linkify` crate finds them, one stretch of text between whitespace at a time: no link
//! holds whitespace, and `linkify`, which reads any non-ASCII character as part of a link,
//! would otherwise run a link on through a no-break or ideographic space.
//!
//! Looking for links without a scheme (`example.com/story`), `linkify` tries a host at every
//! dot and reads forward to the end of the run of characters a host may hold. Where a run has
//! many dots after characters no host may hold (`a_b.a_b.a_b.…`), each try fails at the run's
//! end and the next reads it all again: time quadratic in the run's length
//! (robinst/linkify#115). A stretch whose tries would read more than [`SCAN_BUDGET`] bytes is
//! searched for links with a scheme (and addresses) only. No ordinary text comes near the
//! budget; a stretch that does is made to defeat the finder, not to be read.

use std::ops::Range;

use linkify::{LinkFinder, LinkKind};

/// Bytes the scheme-less tries in one stretch may read before it is searched for links with a
/// scheme only. A 250-byte host name costs 250; a paragraph of Chinese or Japanese with a link
/// glued into it, a few thousand.
const SCAN_BUDGET: usize = 16 * 1024;

/// What a [`Finder`] looks for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kinds {
    /// Links with a scheme (`https://…`) and without (`www.example.com`, `example.com/a`).
    Urls,
    /// Those links and email addresses.
    UrlsAndEmails,
}

/// A link finder whose time grows linearly with the text, whatever the text.
pub struct Finder {
    /// Links with and without a scheme.
    any: LinkFinder,
    /// Links with a scheme only: for stretches that would make `any` quadratic.
    schemed: LinkFinder,
}

/// What a [`Span`] is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    Url,
    Email,
}

/// A piece of text, either a link or an address (`kind` is set) or the text between them.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Span<'t> {
    pub text: &'t str,
    /// Its byte offset in the text searched.
    pub start: usize,
    pub kind: Option<Kind>,
}

impl Finder {
    pub fn new(kinds: Kinds) -> Self {
        let kinds: &[LinkKind] = match kinds {
            Kinds::Urls => &[LinkKind::Url],
            Kinds::UrlsAndEmails => &[LinkKind::Url, LinkKind::Email],
        };
        let mut any = LinkFinder::new();
        any.kinds(kinds).url_must_have_scheme(false);
        let mut schemed = LinkFinder::new();
        schemed.kinds(kinds).url_must_have_scheme(true);
        Self { any, schemed }
    }

    /// The links and addresses in `text`, in order.
    pub fn links<'t>(&self, text: &'t str) -> impl Iterator<Item = Span<'t>> + use<'_, 't> {
        stretches(text).flat_map(move |(offset, stretch)| {
            let finder = if scheme_less_cost(stretch) <= SCAN_BUDGET {
                &self.any
            } else {
                &self.schemed
            };
            finder.links(stretch).map(move |link| Span {
                text: link.as_str(),
                start: offset + link.start(),
                kind: Some(match link.kind() {
                    LinkKind::Email => Kind::Email,
                    _ => Kind::Url,
                }),
            })
        })
    }

    /// All of `text`, cut into links, addresses and the text between them, in order. Text
    /// between two links is one span, whitespace and all.
    pub fn spans<'t>(&self, text: &'t str) -> Vec<Span<'t>> {
        let mut spans = Vec::new();
        let mut plain_from = 0;
        let push_plain = |spans: &mut Vec<Span<'t>>, range: Range<usize>| {
            if !range.is_empty() {
                spans.push(Span {
                    text: &text[range.clone()],
                    start: range.start,
                    kind: None,
                });
            }
        };
        for link in self.links(text) {
            push_plain(&mut spans, plain_from..link.start);
            plain_from = link.start + link.text.len();
            spans.push(link);
        }
        push_plain(&mut spans, plain_from..text.len());
        spans
    }
}

/// The stretches of `text` between whitespace, each with its byte offset.
fn stretches(text: &str) -> impl Iterator<Item = (usize, &str)> {
    text.split(char::is_whitespace)
        .filter(|stretch| !stretch.is_empty())
        .map(move |stretch| (stretch.as_ptr() as usize - text.as_ptr() as usize, stretch))
}

/// An upper bound on the bytes `linkify` reads trying scheme-less hosts in `stretch`.
///
/// It tries one at each dot whose label it can walk back from to a character that ends a label
/// without being a dot (`_`, `~`, `:`, or the start of the run), and reads from there to the end
/// of the run of characters it lets a host hold. So a run costs its tries times its length.
fn scheme_less_cost(stretch: &str) -> usize {
    let mut cost = 0usize;
    let (mut run, mut tries, mut label) = (0usize, 0usize, 0usize);
    let mut after_dot = false;
    for c in stretch.chars() {
        match c {
            '.' => {
                if label > 0 && !after_dot {
                    tries += 1;
                }
                (label, after_dot) = (0, true);
            }
            '_' | '~' | ':' => (label, after_dot) = (0, false),
            'a'..='z' | 'A'..='Z' | '0'..='9' | '-' | '\u{80}'..=char::MAX => label += 1,
            _ => {
                cost = cost.saturating_add(tries.saturating_mul(run));
                (run, tries, label, after_dot) = (0, 0, 0, false);
                continue;
            }
        }
        run += c.len_utf8();
    }
    cost.saturating_add(tries.saturating_mul(run))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn found(kinds: Kinds, text: &str) -> Vec<&str> {
        Finder::new(kinds)
            .links(text)
            .map(|span| span.text)
            .collect()
    }

    #[test]
    fn finds_what_linkify_finds_in_ordinary_text() {
        let text = "See https://example.com/a_b?x=1, www.example.org and example.net/2024/story-1. \
                    Mail jane@example.com (or tel. 555 123 4567).";
        assert_eq!(
            found(Kinds::UrlsAndEmails, text),
            [
                "https://example.com/a_b?x=1",
                "www.example.org",
                "example.net/2024/story-1",
                "jane@example.com"
            ]
        );
        assert_eq!(
            found(Kinds::Urls, text),
            [
                "https://example.com/a_b?x=1",
                "www.example.org",
                "example.net/2024/story-1"
            ]
        );
    }

    #[test]
    fn a_long_link_is_one_link() {
        let long = format!("https://example.com/search?q={}end", "a_b.".repeat(2_000));
        assert_eq!(
            found(Kinds::Urls, &format!("see {long} now")),
            [long.as_str()]
        );
        let host = format!("{}example.com", "sub.".repeat(60));
        assert_eq!(found(Kinds::Urls, &format!("at {host}.")), [host.as_str()]);
    }

    #[test]
    fn a_link_ends_at_any_whitespace() {
        for space in ['\u{a0}', '\u{3000}', '\u{2009}'] {
            let text = format!("example.com{space}more and https://example.org/x{space}y");
            assert_eq!(
                found(Kinds::Urls, &text),
                ["example.com", "https://example.org/x"],
                "{space:?}"
            );
        }
    }

    #[test]
    fn spans_cover_the_text_and_keep_plain_runs_whole() {
        let text = "call 555 123 4567 or see example.com/x  today";
        let spans = Finder::new(Kinds::UrlsAndEmails).spans(text);
        let kinds: Vec<_> = spans.iter().map(|s| (s.text, s.kind.is_some())).collect();
        assert_eq!(
            kinds,
            [
                ("call 555 123 4567 or see ", false),
                ("example.com/x", true),
                ("  today", false)
            ]
        );
        assert_eq!(spans.iter().map(|s| s.text).collect::<String>(), text);
        assert!(
            spans
                .iter()
                .all(|s| &text[s.start..s.start + s.text.len()] == s.text)
        );
    }

    #[test]
    fn a_stretch_made_to_be_slow_is_searched_for_schemed_links_only() {
        // How fast it is, `replyguard fuzz masking` measures; this checks what it finds.
        for unit in ["a_b.", "a~b.", "a:b.", "1.1_", "ab.x1_", "한_e."] {
            let slow = unit.repeat(2_500);
            assert!(scheme_less_cost(&slow) > SCAN_BUDGET, "{unit}");
            let text = format!("{slow} https://example.com/x {slow}jane@example.com");
            let links = found(Kinds::UrlsAndEmails, &text);
            assert_eq!(links[0], "https://example.com/x", "{unit}");
            assert!(links[1].ends_with("jane@example.com"), "{unit}: {links:?}");
        }
        // What that costs: a link without a scheme at the end of such a stretch, which a search
        // through it whole would find, is not looked for.
        let reaches = |text: &str| {
            found(Kinds::Urls, text)
                .iter()
                .any(|link| link.ends_with("example.com"))
        };
        assert!(reaches("a_b.a_b.:example.com"));
        assert!(!reaches(&format!("{}:example.com", "a_b.".repeat(2_500))));
    }

    #[test]
    fn the_cost_is_small_for_real_text_and_large_for_the_slow_kind() {
        assert!(scheme_less_cost("www.example.com/a/b") <= 20);
        assert!(scheme_less_cost(&"長い文章です。".repeat(300)) == 0);
        let cjk_with_link = format!(
            "{}example.com{}",
            "長い文章".repeat(200),
            "です".repeat(200)
        );
        assert!(scheme_less_cost(&cjk_with_link) <= SCAN_BUDGET);
        assert!(scheme_less_cost(&"a_b.".repeat(200)) > SCAN_BUDGET);
    }
}
