//! What the two XML formats (WordPress's WXR and Disqus's) share: reading events one by one
//! with quick-xml, so a file of any size takes the memory of one comment, and an element's text
//! with its CDATA sections and entity references.

use std::io::BufRead;

use quick_xml::{
    Reader,
    escape::resolve_predefined_entity,
    events::{BytesRef, Event},
};

use super::source::ReadError;

/// An XML reader over `input` that keeps text as it is written (text is trimmed where used).
pub fn reader<R: BufRead>(input: R) -> Reader<R> {
    let mut reader = Reader::from_reader(input);
    reader.config_mut().trim_text(false);
    reader
}

/// The next event, or why the input is not XML.
pub fn next<'b, R: BufRead>(
    reader: &mut Reader<R>,
    buf: &'b mut Vec<u8>,
) -> Result<Event<'b>, ReadError> {
    buf.clear();
    reader.read_event_into(buf).map_err(|err| {
        ReadError::malformed(format_args!(
            "the XML is malformed near byte {}: {err}",
            reader.error_position()
        ))
    })
}

/// An element's name without its namespace prefix.
pub fn local(name: &[u8]) -> String {
    let local = match name.iter().rposition(|&b| b == b':') {
        Some(colon) => &name[colon + 1..],
        None => name,
    };
    String::from_utf8_lossy(local).into_owned()
}

/// The most of one element's text kept: far more than any valid comment (10,000 characters
/// once plain), so that an element of any size takes bounded memory. A text that reaches it is
/// skipped as too long.
pub const MAX_TEXT_BYTES: usize = 1 << 20;

/// Why a comment whose text reached [`MAX_TEXT_BYTES`] is skipped.
pub const TOO_LONG: &str = "body is far longer than a reply may be";

/// Adds a text event's content (text, CDATA or a reference) to `text`, up to
/// [`MAX_TEXT_BYTES`]; false for any other event.
pub fn add_text(event: &Event<'_>, text: &mut String) -> Result<bool, ReadError> {
    if text.len() >= MAX_TEXT_BYTES {
        return Ok(matches!(
            event,
            Event::Text(_) | Event::CData(_) | Event::GeneralRef(_)
        ));
    }
    match event {
        Event::Text(t) => text.push_str(&t.decode().map_err(ReadError::malformed)?),
        Event::CData(t) => text.push_str(&t.decode().map_err(ReadError::malformed)?),
        Event::GeneralRef(r) => add_reference(r, text)?,
        _ => return Ok(false),
    }
    Ok(true)
}

/// An entity reference: a character, one of XML's five, or (kept as written, for the HTML
/// reader to resolve) another.
fn add_reference(r: &BytesRef<'_>, text: &mut String) -> Result<(), ReadError> {
    if let Some(c) = r.resolve_char_ref().map_err(ReadError::malformed)? {
        text.push(c);
        return Ok(());
    }
    let name = r.decode().map_err(ReadError::malformed)?;
    match resolve_predefined_entity(&name) {
        Some(resolved) => text.push_str(resolved),
        None => {
            text.push('&');
            text.push_str(&name);
            text.push(';');
        }
    }
    Ok(())
}

/// The value of the attribute named `name` (without prefix) of a start tag.
pub fn attribute(tag: &quick_xml::events::BytesStart<'_>, name: &str) -> Option<String> {
    tag.attributes()
        .flatten()
        .find(|a| local(a.key.as_ref()) == name)
        .map(|a| String::from_utf8_lossy(&a.value).into_owned())
}
