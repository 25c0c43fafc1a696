//! The text of an imported comment: HTML and its entities, as other systems store them, made
//! into replyguard's plain text, which is rendered again like a submission's.
//!
//! Parsed with html5ever (through `scraper`), as a browser would, never with patterns: what
//! a reader saw is what is kept. Paragraphs and line breaks become newlines, a link's address
//! is kept beside its words (so it is a link again once rendered), scripts and styles are
//! dropped, and every other tag leaves its text.

use ego_tree::iter::Edge;
use scraper::{Html, Node};

/// Elements whose end starts a new paragraph.
const BLOCKS: &[&str] = &[
    "p",
    "div",
    "blockquote",
    "pre",
    "ul",
    "ol",
    "li",
    "h1",
    "h2",
    "h3",
    "h4",
    "h5",
    "h6",
    "table",
    "tr",
    "hr",
];

/// Elements whose content a reader never saw.
const HIDDEN: &[&str] = &["script", "style", "template", "head", "title"];

/// The plain text of an HTML fragment. Newlines in its text are kept, as WordPress shows them.
pub fn to_text(html: &str) -> String {
    let fragment = Html::parse_fragment(html);
    let mut out = String::with_capacity(html.len());
    // Where each open link's words start, and its address.
    let mut links: Vec<(usize, Option<String>)> = Vec::new();
    let mut hidden = 0usize;
    for edge in fragment.tree.root().traverse() {
        match edge {
            Edge::Open(node) => match node.value() {
                Node::Text(text) if hidden == 0 => out.push_str(text),
                Node::Element(element) => {
                    let name = element.name();
                    if HIDDEN.contains(&name) {
                        hidden += 1;
                    } else if name == "br" {
                        out.push('\n');
                    } else if BLOCKS.contains(&name) {
                        paragraph(&mut out);
                    } else if name == "a" {
                        let href = element.attr("href").and_then(web_address);
                        links.push((out.len(), href));
                    }
                }
                _ => {}
            },
            Edge::Close(node) => {
                let Node::Element(element) = node.value() else {
                    continue;
                };
                let name = element.name();
                if HIDDEN.contains(&name) {
                    hidden = hidden.saturating_sub(1);
                } else if BLOCKS.contains(&name) {
                    paragraph(&mut out);
                } else if name == "a"
                    && let Some((start, Some(href))) = links.pop()
                {
                    let words = out.get(start..).unwrap_or_default().trim();
                    if words.is_empty() {
                        out.push_str(&href);
                    } else if !same_address(words, &href) {
                        out.push_str(" (");
                        out.push_str(&href);
                        out.push(')');
                    }
                }
            }
        }
    }
    tidy(&out)
}

/// A link's address, if it is one a reader can follow on the web.
fn web_address(href: &str) -> Option<String> {
    let href = href.trim();
    let url = url::Url::parse(href).ok()?;
    matches!(url.scheme(), "http" | "https").then(|| href.to_owned())
}

/// Whether a link's words are its address already (perhaps without its scheme or last slash).
fn same_address(words: &str, href: &str) -> bool {
    let bare = |s: &str| {
        let s = s
            .strip_prefix("https://")
            .or(s.strip_prefix("http://"))
            .unwrap_or(s);
        s.trim_end_matches('/').to_owned()
    };
    bare(words) == bare(href)
}

/// Ends the text so far with a blank line, once.
fn paragraph(out: &mut String) {
    if out.trim().is_empty() {
        return;
    }
    while out.ends_with([' ', '\t']) {
        out.pop();
    }
    if !out.ends_with("\n\n") {
        out.push_str(if out.ends_with('\n') { "\n" } else { "\n\n" });
    }
}

/// No spaces at the ends of lines, at most one blank line in a row, none at either end; no-break
/// spaces read as spaces.
fn tidy(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut blank = 0;
    for line in text.replace('\u{a0}', " ").lines() {
        let line = line.trim_end();
        if line.trim().is_empty() {
            blank += 1;
            continue;
        }
        if !out.is_empty() {
            out.push_str(if blank > 0 { "\n\n" } else { "\n" });
        }
        blank = 0;
        out.push_str(line);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::to_text;

    #[test]
    fn paragraphs_become_blank_lines_and_entities_characters() {
        assert_eq!(
            to_text("<p>Caf&eacute; &amp; tea&#8217;s</p><p>second<br>line</p>"),
            "Café & tea’s\n\nsecond\nline"
        );
    }

    #[test]
    fn a_links_address_is_kept_beside_its_words() {
        assert_eq!(
            to_text(r#"see <a href="https://example.com/a">this post</a>."#),
            "see this post (https://example.com/a)."
        );
        assert_eq!(
            to_text(r#"<a href="https://example.com/a">https://example.com/a</a>"#),
            "https://example.com/a"
        );
        assert_eq!(to_text(r#"<a href="javascript:alert(1)">x</a>"#), "x");
    }

    #[test]
    fn scripts_are_dropped_and_newlines_kept() {
        assert_eq!(
            to_text("one\ntwo<script>alert('x')</script>\n\n\n\nthree &lt;b&gt;"),
            "one\ntwo\n\nthree <b>"
        );
    }
}
