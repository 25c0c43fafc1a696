//! Inputs for the fuzzer: random text and bytes shaped to reach the code that could be slow or
//! break, and mutations of valid values so most cases get past validation to what lies
//! behind it.
//!
//! Everything comes from one [`SmallRng`] per case, so a case is replayed from its seed and
//! number alone.

use base64::{Engine, engine::general_purpose::URL_SAFE_NO_PAD};
use rand::{RngExt, SeedableRng, rngs::SmallRng};

/// Units that, repeated, make the shapes whose cost can grow faster than their length: runs of
/// `@`, links and URL-ish tokens, digits, combining marks, bidirectional controls, whitespace,
/// lines, emoji with joiners, markup, and the words the spam rules look for.
const UNITS: &[&str] = &[
    "@",
    "@@",
    "a@",
    "@a",
    "a@b.",
    "@a.b",
    "x@y.zz ",
    "_a@b.co_",
    "a.",
    ".",
    "..",
    "-",
    "_",
    "a",
    "ab ",
    "1",
    "12 ",
    "1-",
    "1.",
    "(1)",
    "+1 ",
    "1/",
    "0",
    "http://",
    "http://a.b/",
    "https://x.y/?q=",
    "https://a.b/c@d.e/",
    "www.a.b ",
    "www.",
    "a.co ",
    "a.b.c",
    "mailto:",
    "://",
    "/",
    "?",
    "=",
    "&",
    "#",
    "\u{301}",
    "e\u{301}",
    "\u{300}\u{301}\u{302}\u{303}",
    "\u{202A}",
    "\u{202B}",
    "\u{202C}",
    "\u{202E}",
    "\u{2066}",
    "\u{2067}",
    "\u{2069}",
    "\u{200F}",
    " ",
    "  ",
    "\t",
    "\n",
    "\r\n",
    "\r",
    "\n\n",
    "\u{3000}",
    "\u{a0}",
    "\u{200B}",
    "\u{200D}",
    "\u{FEFF}",
    "👨\u{200D}👩\u{200D}👧",
    "🏳\u{FE0F}\u{200D}🌈",
    "🦀",
    "\u{FE0F}",
    "é",
    "ß",
    "İ",
    "ﬃ",
    "ǅ",
    "Ａ",
    "а",
    "\u{958}",
    "\u{1100}\u{1161}\u{11A8}",
    "\u{0}",
    "\u{7f}",
    "\u{85}",
    "<",
    ">",
    "&amp;",
    "\"",
    "'",
    "<a href=",
    "sub4sub ",
    "check out my video ",
    "follow me on twitter ",
    "$$$ ",
    "FREE ",
    "word ",
    "Word. ",
    "0207946095 ",
    "+44 20 7946 0958 ",
    "bit.ly/x ",
    "http://192.0.2.1/ ",
    "cheap.xyz ",
];

/// Characters picked one at a time: what links, emails, phone numbers, markup, normalisation
/// and the word rules care about.
const CHARS: &[char] = &[
    'a',
    'b',
    'e',
    'x',
    'A',
    'Z',
    '0',
    '1',
    '9',
    ' ',
    ' ',
    ' ',
    '@',
    '@',
    '.',
    '.',
    '/',
    ':',
    '-',
    '_',
    '+',
    '(',
    ')',
    '?',
    '=',
    '&',
    '#',
    '%',
    '<',
    '>',
    '"',
    '\'',
    '\n',
    '\n',
    '\r',
    '\t',
    '\0',
    '\u{7}',
    '\u{7f}',
    '\u{85}',
    '\u{a0}',
    '\u{ad}',
    '\u{300}',
    '\u{301}',
    '\u{308}',
    '\u{34f}',
    '\u{200b}',
    '\u{200d}',
    '\u{200e}',
    '\u{200f}',
    '\u{202a}',
    '\u{202b}',
    '\u{202c}',
    '\u{202d}',
    '\u{202e}',
    '\u{2066}',
    '\u{2067}',
    '\u{2068}',
    '\u{2069}',
    '\u{3000}',
    '\u{feff}',
    '\u{fe0f}',
    '\u{fffd}',
    'é',
    'ß',
    'İ',
    'ı',
    'ﬃ',
    'Ω',
    'а',
    'ο',
    '中',
    '한',
    '\u{1100}',
    '\u{1161}',
    '\u{11a8}',
    '\u{958}',
    '\u{93c}',
    '٣',
    '０',
    '🦀',
    '👍',
    '🏻',
    '\u{e0041}',
    '\u{10ffff}',
];

/// Sizes at and around the limits the fields have.
const LIMITS: &[usize] = &[100, 128, 200, 254, 512, 1_000, 2_000, 10_000, 65_525];

/// A text this long is not made longer by a mutation: past every limit already.
const MAX_MUTATED: usize = 80_000;

/// Words for text that reads like a reply.
const WORDS: &[&str] = &[
    "the",
    "article",
    "is",
    "great",
    "I",
    "think",
    "council",
    "budget",
    "thanks",
    "for",
    "this",
    "piece",
    "but",
    "you",
    "missed",
    "one",
    "point",
    "see",
    "my",
    "video",
    "subscribe",
    "please",
    "like",
    "share",
    "buy",
    "cheap",
    "pills",
    "now",
    "free",
    "money",
    "click",
    "here",
    "ok",
    "müll",
    "café",
    "naïve",
    "сайт",
    "中文",
    "بالعربية",
    "עברית",
];

/// The source of one case's input.
pub struct Gen {
    rng: SmallRng,
}

impl Gen {
    /// The generator of case `case` of a run seeded with `seed`.
    pub fn for_case(seed: u64, case: u64) -> Gen {
        Gen {
            rng: SmallRng::seed_from_u64(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) ^ case),
        }
    }

    /// A number in `0..n` (`0` when `n` is 0).
    pub fn below(&mut self, n: usize) -> usize {
        if n == 0 {
            0
        } else {
            self.rng.random_range(0..n)
        }
    }

    /// True with probability `p`.
    pub fn chance(&mut self, p: f64) -> bool {
        self.rng.random_bool(p)
    }

    pub fn u32(&mut self) -> u32 {
        self.rng.random()
    }

    pub fn u64(&mut self) -> u64 {
        self.rng.random()
    }

    pub fn pick<'a, T>(&mut self, items: &'a [T]) -> &'a T {
        &items[self.below(items.len())]
    }

    /// A size for a text or a list: mostly small, sometimes large, now and then at or just
    /// past a limit.
    pub fn size(&mut self) -> usize {
        match self.below(1_000) {
            0..600 => self.below(33),
            600..900 => self.below(301),
            900..980 => self.below(2_001),
            980..992 => 2_000 + self.below(10_001),
            992..999 => {
                let limit = *self.pick(LIMITS);
                (limit + self.below(5)).saturating_sub(2)
            }
            // Past every field's limit, as far as a `Comments` request may carry.
            _ => 65_536 + self.below(192 * 1024),
        }
    }

    /// Any character of Unicode.
    fn any_char(&mut self) -> char {
        loop {
            if let Some(c) = char::from_u32(self.rng.random_range(0..0x11_0000)) {
                return c;
            }
        }
    }

    /// Text of about `size` characters of one of several shapes.
    pub fn text_of(&mut self, size: usize) -> String {
        let mut out = String::new();
        match self.below(10) {
            // One unit over and over, maybe between two short texts.
            0..3 => {
                if self.chance(0.3) {
                    let n = self.below(8);
                    self.push_chars(&mut out, n);
                }
                let unit = *self.pick(UNITS);
                let count = size / unit.chars().count().max(1) + 1;
                for _ in 0..count {
                    out.push_str(unit);
                }
                if self.chance(0.3) {
                    let n = self.below(8);
                    self.push_chars(&mut out, n);
                }
            }
            // Characters that matter, at random.
            3..5 => self.push_chars(&mut out, size),
            // Runs and characters mixed.
            5..7 => {
                let parts = 2 + self.below(5);
                for _ in 0..parts {
                    let part = size / parts + 1;
                    if self.chance(0.5) {
                        let unit = *self.pick(UNITS);
                        for _ in 0..part / unit.chars().count().max(1) + 1 {
                            out.push_str(unit);
                        }
                    } else {
                        self.push_chars(&mut out, part);
                    }
                }
            }
            // Something like a reply, with links, addresses and numbers in it.
            7..9 => {
                let mut chars = 0;
                while chars < size {
                    let before = out.len();
                    match self.below(12) {
                        0 => out.push_str(UNITS[self.below(UNITS.len())]),
                        1 => out.push_str("https://example.org/a?b=c "),
                        2 => out.push_str("jane@example.com "),
                        3 => out.push_str("020 7946 0958 "),
                        4 => out.push_str(".\n\n"),
                        _ => {
                            out.push_str(WORDS[self.below(WORDS.len())]);
                            out.push(' ');
                        }
                    }
                    chars += out[before..].chars().count();
                }
            }
            // Any Unicode at all.
            _ => {
                for _ in 0..size {
                    let c = self.any_char();
                    out.push(c);
                }
            }
        }
        out
    }

    fn push_chars(&mut self, out: &mut String, n: usize) {
        for _ in 0..n {
            let c = *self.pick(CHARS);
            out.push(c);
        }
    }

    /// Text of a random [`Gen::size`].
    pub fn text(&mut self) -> String {
        let size = self.size();
        self.text_of(size)
    }

    /// A field: one of `valid` as it is (about half the time), one of them changed, or any
    /// text.
    pub fn field(&mut self, valid: &[&str]) -> String {
        match self.below(20) {
            0..9 if !valid.is_empty() => (*self.pick(valid)).to_owned(),
            9..14 if !valid.is_empty() => {
                let base = (*self.pick(valid)).to_owned();
                self.mutate_text(base)
            }
            _ => self.text(),
        }
    }

    /// An entry of a policy's list: mostly short, valid or nearly.
    pub fn entry(&mut self, valid: &[&str]) -> String {
        match self.below(10) {
            0..5 => (*self.pick(valid)).to_owned(),
            5..8 => {
                let base = (*self.pick(valid)).to_owned();
                let mut changed = String::new();
                let n = self.below(4);
                self.push_chars(&mut changed, n);
                changed.insert_str(self.below(2) * changed.len(), &base);
                changed
            }
            _ => {
                let size = self.below(121);
                self.text_of(size)
            }
        }
    }

    /// `text` with a few edits: a run or random characters spliced in, a range cut out or
    /// repeated, or the text padded to a limit.
    pub fn mutate_text(&mut self, mut text: String) -> String {
        for _ in 0..1 + self.below(3) {
            if text.len() > MAX_MUTATED {
                break;
            }
            let at = self.boundary(&text);
            match self.below(6) {
                0 | 1 => {
                    let size = self.size();
                    let inserted = self.text_of(size);
                    text.insert_str(at, &inserted);
                }
                2 => {
                    let mut inserted = String::new();
                    let n = 1 + self.below(4);
                    self.push_chars(&mut inserted, n);
                    text.insert_str(at, &inserted);
                }
                3 => {
                    let end = self.boundary(&text[at..]) + at;
                    text.replace_range(at..end, "");
                }
                4 => {
                    let mut end = (at + self.below(257)).min(text.len());
                    while !text.is_char_boundary(end) {
                        end -= 1;
                    }
                    let piece = text[at..end].to_owned();
                    for _ in 0..self.below(64) {
                        text.insert_str(at, &piece);
                    }
                }
                _ => {
                    let limit = *self.pick(LIMITS);
                    let unit = *self.pick(UNITS);
                    while text.len() < limit {
                        text.push_str(unit);
                    }
                }
            }
        }
        text
    }

    /// A character boundary of `text`.
    fn boundary(&mut self, text: &str) -> usize {
        let mut at = self.below(text.len() + 1);
        while !text.is_char_boundary(at) {
            at -= 1;
        }
        at
    }

    /// Random bytes of a random size.
    pub fn bytes(&mut self) -> Vec<u8> {
        let n = self.size();
        (0..n).map(|_| self.rng.random()).collect()
    }

    /// `bytes` with a few edits: bits flipped, bytes set to ones that matter to a decoder
    /// (varint continuations, invalid UTF-8, wire types), ranges cut, repeated or inserted.
    pub fn mutate_bytes(&mut self, mut bytes: Vec<u8>) -> Vec<u8> {
        const SPECIAL: &[u8] = &[
            0x00, 0x01, 0x7f, 0x80, 0xff, 0xc0, 0xc3, 0xe2, 0xed, 0xf0, 0xf4,
        ];
        for _ in 0..1 + self.below(4) {
            let at = self.below(bytes.len() + 1);
            match self.below(6) {
                0 if at < bytes.len() => bytes[at] ^= 1 << self.below(8),
                1 if at < bytes.len() => bytes[at] = *self.pick(SPECIAL),
                2 => {
                    let end = (at + self.below(16)).min(bytes.len());
                    bytes.drain(at..end);
                }
                3 => {
                    let end = (at + self.below(16)).min(bytes.len());
                    let piece = bytes[at..end].to_vec();
                    for _ in 0..self.below(8) {
                        bytes.splice(at..at, piece.iter().copied());
                    }
                }
                4 => {
                    let inserted: Vec<u8> = (0..1 + self.below(8))
                        .map(|_| *self.pick(SPECIAL))
                        .collect();
                    bytes.splice(at..at, inserted);
                }
                _ if at < bytes.len() => bytes.truncate(at),
                _ => bytes.push(self.rng.random()),
            }
        }
        bytes
    }

    /// A UUID in one of the forms a request may carry it, or not quite one.
    pub fn uuid_text(&mut self) -> String {
        let id = uuid::Uuid::from_u128(self.rng.random());
        match self.below(5) {
            0 => id.simple().to_string(),
            1 => format!(" {id} "),
            2 => id.to_string().to_uppercase(),
            3 => self.mutate_text(id.to_string()),
            _ => id.to_string(),
        }
    }

    pub fn uuid(&mut self) -> uuid::Uuid {
        uuid::Uuid::from_u128(self.rng.random())
    }

    /// A page token, or something like one: base64url of a tag and what follows it.
    pub fn token_text(&mut self) -> String {
        let mut raw = Vec::new();
        match self.below(6) {
            0 => raw.extend_from_slice(self.uuid().as_bytes()),
            1 => {
                raw.push(b'a');
                raw.extend_from_slice(self.uuid().as_bytes());
            }
            2 => {
                raw.push(*self.pick(b"on"));
                let ids = self.below(20);
                let path: Vec<String> =
                    (0..ids).map(|_| self.uuid().simple().to_string()).collect();
                raw.extend_from_slice(path.join(".").as_bytes());
            }
            3 => {
                raw.push(b'b');
                raw.extend_from_slice(self.pick(&["ip", "email-domain", "author", "x"]).as_bytes());
                raw.push(b'\n');
                raw.extend_from_slice(self.text().as_bytes());
            }
            4 => {
                raw.push(b'c');
                raw.extend_from_slice(self.text().as_bytes());
            }
            _ => raw = self.bytes(),
        }
        if self.chance(0.3) {
            raw = self.mutate_bytes(raw);
        }
        let token = URL_SAFE_NO_PAD.encode(raw);
        if self.chance(0.2) {
            self.mutate_text(token)
        } else {
            token
        }
    }
}
