//! Plain comment text turned into HTML a host can insert into its page as is.
//!
//! Every character of the text is escaped; the only markup ever emitted is `<p>`, `<br>` and
//! links to http(s) URLs marked `nofollow ugc`. No other scheme ever becomes a link.

use std::sync::LazyLock;

use super::links::{Finder, Kinds};

/// Paragraphs (separated by blank lines) become `<p>`, single line breaks `<br>`, and http(s)
/// URLs links; a bare `www.` address is linked as https.
pub fn render_html(text: &str) -> String {
    let text = text.replace("\r\n", "\n").replace('\r', "\n");
    let mut html = String::with_capacity(text.len() + text.len() / 4);
    let mut paragraph: Vec<&str> = Vec::new();
    for line in text.split('\n').chain(std::iter::once("")) {
        if line.trim().is_empty() {
            if !paragraph.is_empty() {
                push_paragraph(&paragraph, &mut html);
                paragraph.clear();
            }
        } else {
            paragraph.push(line);
        }
    }
    html
}

fn push_paragraph(lines: &[&str], html: &mut String) {
    if !html.is_empty() {
        html.push('\n');
    }
    html.push_str("<p>");
    for (i, line) in lines.iter().enumerate() {
        if i > 0 {
            html.push_str("<br>\n");
        }
        push_line(line, html);
    }
    html.push_str("</p>");
}

fn push_line(line: &str, html: &mut String) {
    static URLS: LazyLock<Finder> = LazyLock::new(|| Finder::new(Kinds::Urls));

    for span in URLS.spans(line) {
        let text = span.text;
        match span.kind.and_then(|_| link_target(text)) {
            Some(href) => {
                html.push_str("<a href=\"");
                push_escaped(&href, html);
                html.push_str("\" rel=\"nofollow ugc\">");
                push_escaped(text, html);
                html.push_str("</a>");
            }
            None => push_escaped(text, html),
        }
    }
}

/// Where a found URL may point, or `None` if it must stay text. Only http(s) is allowed:
/// `javascript:` and `data:` URLs run code, and anything else is not a web page.
fn link_target(found: &str) -> Option<String> {
    let lower = found.to_ascii_lowercase();
    let href = if lower.starts_with("http://") || lower.starts_with("https://") {
        found.to_owned()
    } else if lower.starts_with("www.") {
        format!("https://{found}")
    } else {
        // A scheme-less `example.com` is too often a file name or a typo to be linked.
        return None;
    };
    let parsed = url::Url::parse(&href).ok()?;
    parsed
        .host_str()
        .is_some_and(|h| !h.is_empty())
        .then_some(href)
}

fn push_escaped(text: &str, html: &mut String) {
    for c in text.chars() {
        match c {
            '&' => html.push_str("&amp;"),
            '<' => html.push_str("&lt;"),
            '>' => html.push_str("&gt;"),
            '"' => html.push_str("&quot;"),
            '\'' => html.push_str("&#39;"),
            c => html.push(c),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn markup_in_a_comment_is_escaped() {
        assert_eq!(
            render_html("<script>alert(\"x\" & 'y')</script>"),
            "<p>&lt;script&gt;alert(&quot;x&quot; &amp; &#39;y&#39;)&lt;/script&gt;</p>"
        );
    }

    #[test]
    fn blank_lines_separate_paragraphs_and_single_newlines_break_lines() {
        assert_eq!(
            render_html("one\ntwo\n\n\n  \nthree\r\nfour"),
            "<p>one<br>\ntwo</p>\n<p>three<br>\nfour</p>"
        );
    }

    #[test]
    fn empty_text_renders_as_nothing() {
        assert_eq!(render_html(""), "");
        assert_eq!(render_html("\n \n"), "");
    }

    #[test]
    fn a_link_is_marked_nofollow_ugc() {
        assert_eq!(
            render_html("see https://example.com/a?b=1&c=2 now"),
            "<p>see <a href=\"https://example.com/a?b=1&amp;c=2\" rel=\"nofollow ugc\">\
             https://example.com/a?b=1&amp;c=2</a> now</p>"
        );
    }

    #[test]
    fn a_bare_www_address_links_to_https() {
        assert_eq!(
            render_html("www.example.com"),
            "<p><a href=\"https://www.example.com\" rel=\"nofollow ugc\">www.example.com</a></p>"
        );
    }

    #[test]
    fn a_bare_domain_without_www_is_not_linked() {
        assert_eq!(render_html("see file.txt"), "<p>see file.txt</p>");
        assert_eq!(render_html("example.com"), "<p>example.com</p>");
    }

    #[test]
    fn javascript_and_data_urls_stay_text() {
        for text in [
            "javascript:alert(1)",
            "JavaScript:alert(document.cookie)",
            "data:text/html;base64,PHNjcmlwdD4=",
            "ftp://example.com/file",
        ] {
            let html = render_html(text);
            assert!(!html.contains("<a"), "{text} became {html}");
        }
    }

    #[test]
    fn quotes_in_a_url_cannot_break_out_of_the_href() {
        let html =
            render_html("https://example.com/a\"onmouseover=\"alert(1) https://example.com/it's");
        assert!(!html.contains("\"onmouseover"), "{html}");
        assert!(!html.contains("it's"), "{html}");
        let opened = html.matches("<a ").count();
        assert_eq!(opened, html.matches("</a>").count());
        assert!(opened >= 1);
        assert_eq!(
            html.matches('"').count(),
            opened * 4,
            "only the href and rel attributes may be quoted: {html}"
        );
    }

    #[test]
    fn a_url_with_an_apostrophe_is_escaped_in_the_href() {
        let html = render_html("https://example.com/it's");
        assert!(
            html.contains("href=\"https://example.com/it&#39;s\""),
            "{html}"
        );
    }
}
