//! The labelled files `spam-eval` reads: finding them, reading their rows, turning each
//! comment's HTML into the text a reader typed, and validating it into a reply to replay, as a
//! host would submit it.

use std::path::{Path, PathBuf};

use crate::{
    domain::{RawReply, ValidReply, validate},
    privacy::AuthorHash,
    spam::{Analysis, hash_bytes},
};

/// Where `spam-eval` looks when given no files, relative to the working directory.
pub const DEFAULT_DIR: &str = "../shared/data/youtube-spam";

/// One labelled comment as read from a file.
#[derive(Clone, Debug)]
pub struct Labelled {
    pub author: String,
    pub date: String,
    /// The text as a host would send it: tags and entities turned into plain text.
    pub text: String,
    pub spam: bool,
    /// The article it was posted under, where the file names one (`ARTICLE`); otherwise the
    /// file is one article.
    pub article: Option<String>,
}

/// A comment that passed validation, ready to replay.
pub(super) struct Prepared {
    pub(super) reply: ValidReply,
    pub(super) author: AuthorHash,
    pub(super) features: Vec<u64>,
    pub(super) fingerprint: u64,
    pub(super) key: String,
    pub(super) spam: bool,
}

/// One labelled file, validated and in chronological order.
pub(super) struct Dataset {
    pub(super) name: String,
    pub(super) comments: Vec<Prepared>,
    pub(super) refused: usize,
}

/// The CSV files in [`DEFAULT_DIR`], sorted, or why there are none.
pub fn default_files() -> Result<Vec<PathBuf>, String> {
    let dir = Path::new(DEFAULT_DIR);
    let entries = std::fs::read_dir(dir).map_err(|e| {
        format!(
            "no files given and {} cannot be read ({e}); pass the CSV files to evaluate",
            dir.display()
        )
    })?;
    let mut files: Vec<PathBuf> = entries
        .filter_map(|entry| entry.ok().map(|e| e.path()))
        .filter(|path| path.extension().is_some_and(|ext| ext == "csv"))
        .collect();
    files.sort();
    if files.is_empty() {
        return Err(format!(
            "no files given and no .csv files in {}; pass the CSV files to evaluate",
            dir.display()
        ));
    }
    Ok(files)
}

/// The files of [`DEFAULT_DIR`] that are none of `given` (compared by content), for a cold
/// prior to learn from when other files are judged: "trained on the other files" then means
/// every labelled file at hand, as for the built-in prior. None where the folder cannot be read.
pub fn untaught_defaults(given: &[PathBuf]) -> Vec<PathBuf> {
    let given: Vec<Vec<u8>> = given
        .iter()
        .filter_map(|path| std::fs::read(path).ok())
        .collect();
    default_files()
        .unwrap_or_default()
        .into_iter()
        .filter(|path| std::fs::read(path).is_ok_and(|content| !given.contains(&content)))
        .collect()
}

/// Reads a file of `COMMENT_ID,AUTHOR,DATE,CONTENT,CLASS` rows (CLASS 1 is spam).
pub fn read_labelled(path: &Path) -> Result<Vec<Labelled>, String> {
    let shown = path.display();
    let (mut reader, headers) = open_csv(path)?;
    let column =
        |name: &str| column(&headers, name).ok_or_else(|| format!("{shown}: no {name} column"));
    let (author, date, content, class) = (
        column("AUTHOR")?,
        column("DATE")?,
        column("CONTENT")?,
        column("CLASS")?,
    );
    let mut rows = Vec::new();
    for (line, record) in reader.records().enumerate() {
        let record = record.map_err(|e| format!("{shown}: {e}"))?;
        let field = |i: usize| record.get(i).unwrap_or_default();
        let spam = match field(class).trim() {
            "1" => true,
            "0" => false,
            other => return Err(format!("{shown}: row {}: CLASS {other:?}", line + 2)),
        };
        rows.push(Labelled {
            author: field(author).to_owned(),
            date: field(date).to_owned(),
            text: plain_text(field(content)),
            spam,
            article: None,
        });
    }
    Ok(rows)
}

/// Reads a file of ordinary replies, none of them spam, such as a news site's reader comments:
/// a `CONTENT` column and, where there is one, `ARTICLE`. Each row is its own reader (the files
/// name no authors) and the rows are in the file's order.
pub fn read_ordinary(path: &Path) -> Result<Vec<Labelled>, String> {
    let shown = path.display();
    let (mut reader, headers) = open_csv(path)?;
    let content =
        column(&headers, "CONTENT").ok_or_else(|| format!("{shown}: no CONTENT column"))?;
    let article = column(&headers, "ARTICLE");
    let mut rows = Vec::new();
    for (line, record) in reader.records().enumerate() {
        let record = record.map_err(|e| format!("{shown}: {e}"))?;
        rows.push(Labelled {
            author: format!("reader {line}"),
            date: format!("{line:09}"),
            text: plain_text(record.get(content).unwrap_or_default()),
            spam: false,
            article: article.and_then(|i| record.get(i)).map(str::to_owned),
        });
    }
    Ok(rows)
}

/// A CSV file's reader and its header row; errors name the file.
fn open_csv(path: &Path) -> Result<(csv::Reader<std::fs::File>, csv::StringRecord), String> {
    let shown = path.display();
    let mut reader = csv::Reader::from_path(path).map_err(|e| format!("{shown}: {e}"))?;
    let headers = reader
        .headers()
        .map_err(|e| format!("{shown}: {e}"))?
        .clone();
    Ok((reader, headers))
}

/// Where the column `name` is, in any case and with spaces around it.
fn column(headers: &csv::StringRecord, name: &str) -> Option<usize> {
    headers
        .iter()
        .position(|h| h.trim().eq_ignore_ascii_case(name))
}

/// The plain text of an HTML fragment, as a host would send what its reader typed: line
/// breaks for `<br>`, other tags dropped (their text kept), entities decoded.
pub fn plain_text(html: &str) -> String {
    let mut out = String::with_capacity(html.len());
    let mut rest = html;
    while let Some(open) = rest.find('<') {
        out.push_str(&rest[..open]);
        let after = &rest[open + 1..];
        let is_tag = after
            .chars()
            .next()
            .is_some_and(|c| c.is_ascii_alphabetic() || c == '/');
        match after.find('>') {
            Some(close) if is_tag => {
                let tag = after[..close].trim_start_matches('/').trim();
                if tag.len() >= 2 && tag[..2].eq_ignore_ascii_case("br") {
                    out.push('\n');
                }
                rest = &after[close + 1..];
            }
            _ => {
                out.push('<');
                rest = after;
            }
        }
    }
    out.push_str(rest);
    decode_entities(&out).replace('\u{feff}', "")
}

fn decode_entities(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(amp) = rest.find('&') {
        out.push_str(&rest[..amp]);
        let after = &rest[amp + 1..];
        let decoded = after.find(';').filter(|end| *end <= 10).and_then(|end| {
            let name = &after[..end];
            let c = match name {
                "amp" => '&',
                "lt" => '<',
                "gt" => '>',
                "quot" => '"',
                "apos" => '\'',
                "nbsp" => ' ',
                _ => {
                    let code = name.strip_prefix('#')?;
                    let value = match code.strip_prefix(['x', 'X']) {
                        Some(hex) => u32::from_str_radix(hex, 16).ok()?,
                        None => code.parse().ok()?,
                    };
                    char::from_u32(value)?
                }
            };
            Some((c, end))
        });
        match decoded {
            Some((c, end)) => {
                out.push(c);
                rest = &after[end + 1..];
            }
            None => {
                out.push('&');
                rest = after;
            }
        }
    }
    out.push_str(rest);
    out
}

/// Reads a labelled file, in chronological order, and validates each of its comments as the
/// reply a host would submit for it.
pub(super) fn load(path: &Path) -> Result<Dataset, String> {
    prepare(path, read_labelled(path)?)
}

/// Reads a file of ordinary replies ([`read_ordinary`]) as [`load`] reads a labelled one.
pub(super) fn load_ordinary(path: &Path) -> Result<Dataset, String> {
    prepare(path, read_ordinary(path)?)
}

fn prepare(path: &Path, mut rows: Vec<Labelled>) -> Result<Dataset, String> {
    // ISO dates sort as text; a stable sort keeps the file's order for equal times.
    rows.sort_by(|a, b| a.date.cmp(&b.date));
    let name = path.file_name().map_or_else(
        || path.display().to_string(),
        |n| n.to_string_lossy().into_owned(),
    );
    let article = path
        .file_stem()
        .map_or_else(|| name.clone(), |n| n.to_string_lossy().into_owned());
    let mut comments = Vec::with_capacity(rows.len());
    let mut refused = 0;
    for row in rows {
        let author_id = hash_bytes(0, row.author.as_bytes());
        let email = format!("reader-{author_id:016x}@example.com");
        // An article's title as a host's key for it: the same title, the same article.
        let key = row
            .article
            .as_ref()
            .map(|title| format!("article-{:016x}", hash_bytes(0, title.as_bytes())));
        let raw = RawReply {
            article: key.as_deref().unwrap_or(&article),
            author_name: &row.author,
            author_email: &email,
            body: &row.text,
            ..RawReply::default()
        };
        let Ok(reply) = validate(&raw) else {
            refused += 1;
            continue;
        };
        let mut author = [0u8; 32];
        for chunk in author.chunks_mut(8) {
            chunk.copy_from_slice(&author_id.to_le_bytes());
        }
        let text = Analysis::of(&reply);
        comments.push(Prepared {
            features: text.features,
            fingerprint: text.fingerprint,
            key: repeat_key(reply.body.as_str()),
            author: AuthorHash(author),
            reply,
            spam: row.spam,
        });
    }
    Ok(Dataset {
        name,
        comments,
        refused,
    })
}

/// The form in which texts count as repeats: lowercase, whitespace collapsed.
fn repeat_key(text: &str) -> String {
    text.split_whitespace()
        .map(str::to_lowercase)
        .collect::<Vec<_>>()
        .join(" ")
}

/// Writes a labelled file as the dataset's: one row per `(text, spam)`, an hour apart in the
/// order given.
#[cfg(test)]
pub(super) fn write_labelled(path: &Path, rows: &[(&str, bool)]) -> Result<(), String> {
    use std::fmt::Write as _;

    let mut csv = String::from("COMMENT_ID,AUTHOR,DATE,CONTENT,CLASS\n");
    for (i, (text, spam)) in rows.iter().enumerate() {
        let _ = writeln!(
            csv,
            "c{i},a{i},2026-01-{:02}T{:02}:00:00,\"{}\",{}",
            1 + i / 24,
            i % 24,
            text.replace('"', "\"\""),
            u8::from(*spam)
        );
    }
    std::fs::write(path, csv).map_err(|e| e.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn html_fragments_become_the_plain_text_a_reader_typed() {
        assert_eq!(
            plain_text(
                "Hi<br />there &amp; <a href=\"http://x.example\">x.example</a> it&#39;s 1 &lt; 2&#x21;"
            ),
            "Hi\nthere & x.example it's 1 < 2!"
        );
        assert_eq!(
            plain_text("a < b and 3 <4 &nope; &"),
            "a < b and 3 <4 &nope; &"
        );
        assert_eq!(plain_text("end\u{feff}"), "end");
    }

    #[test]
    fn a_cold_prior_also_learns_from_the_default_files_not_given() -> Result<(), String> {
        let Ok(defaults) = default_files() else {
            eprintln!("skipped: {DEFAULT_DIR} cannot be read");
            return Ok(());
        };
        let dir = tempfile::tempdir().map_err(|e| e.to_string())?;
        let copy = dir.path().join("renamed.csv");
        std::fs::copy(&defaults[0], &copy).map_err(|e| e.to_string())?;
        // A default file given under another name is judged, never also taught.
        assert_eq!(untaught_defaults(&[copy]), defaults[1..]);
        assert!(untaught_defaults(&defaults).is_empty());
        Ok(())
    }
}
