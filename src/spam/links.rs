//! Rules about the links in a reply.

use super::{Input, Rule};

/// Holds a reply with many links, as WordPress does at two.
pub struct LinkCount;

impl Rule for LinkCount {
    fn name(&self) -> &'static str {
        "links"
    }

    fn check(&self, input: &Input<'_>) -> Option<(f64, String)> {
        let max = input.policy.max_links;
        let count = input.links;
        (max > 0 && count >= max as usize).then(|| {
            (
                input.policy.hold_threshold,
                format!("{count} links (holds at {max})"),
            )
        })
    }
}

/// Counts the http(s) and `www.` links in a text.
pub fn count_links(text: &str) -> usize {
    let mut finder = linkify::LinkFinder::new();
    finder
        .kinds(&[linkify::LinkKind::Url])
        .url_must_have_scheme(false);
    finder.links(text).count()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_links_with_and_without_scheme() {
        assert_eq!(count_links("see https://a.example and www.b.example"), 2);
        assert_eq!(count_links("no links here, just example text."), 0);
    }
}
