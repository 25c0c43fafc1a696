//! The normalised words of a text, shared by the term lists, the classifier and the
//! near-duplicate fingerprint.
//!
//! Spammers write `V1AGRA`, `vïagra` or `c a s i n o` so that a plain substring search misses
//! them; every rule that compares words compares these normalised forms instead, and the
//! policy's own term lists go through the same function, so both sides always agree. Words
//! are hashed here to the ids the classifier and the regression key their maps by.
//! Nothing here may allocate per character or depend on anything but the text.

use std::hash::Hasher;

use unicode_normalization::{UnicodeNormalization, char::is_combining_mark};

/// Words longer than this are cut: nobody types them, and they would only bloat the features.
const MAX_WORD_CHARS: usize = 40;

/// A word mixing scripts counts as disguised from this many characters: a spam word, not
/// an "Οk" typed with a letter of another keyboard.
const MIN_DISGUISED_CHARS: usize = 4;

/// A run of at least this many one-letter words is read as one spaced-out word (`c a s i n o`).
const MIN_SPACED_LETTERS: usize = 3;

/// A text split into normalised words: lowercase, accents removed, common look-alike letters
/// and leetspeak digits read as letters.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Words {
    text: String,
    spans: Vec<(u32, u32)>,
    /// [`word_hash`] of each word, so rules compare and count words without touching bytes.
    hashes: Vec<u64>,
    /// The same words with spaced-out letters joined, when the text has any.
    joined: Option<Box<Words>>,
    /// The index of the first word written in two scripts: Latin letters with Cyrillic or
    /// Greek ones that look like them (`саsinо`).
    mixed: Option<u32>,
}

impl Words {
    /// Splits and normalises `text`.
    pub fn new(text: &str) -> Words {
        let mut words = Words {
            text: String::with_capacity(text.len()),
            spans: Vec::new(),
            hashes: Vec::new(),
            joined: None,
            mixed: None,
        };
        let mut token = Token::default();
        if text.is_ascii() {
            for c in text.chars() {
                token.read(c.to_ascii_lowercase(), &mut words);
            }
        } else {
            for c in text.nfkd() {
                if is_combining_mark(c) {
                    continue;
                }
                for lower in c.to_lowercase() {
                    let read = look_alike(lower);
                    token.read(read, &mut words);
                    if is_word_char(read) {
                        token.disguised |= token.latin && read != lower;
                        token.latin |= lower.is_ascii_alphabetic();
                    }
                }
            }
        }
        token.end(&mut words);
        words.joined = words.join_spaced_letters().map(Box::new);
        words
    }

    /// The word at `index`.
    fn word(&self, index: usize) -> &str {
        let (start, end) = self.spans[index];
        &self.text[start as usize..end as usize]
    }

    /// The words in order.
    pub fn iter(&self) -> impl Iterator<Item = &str> + '_ {
        self.spans
            .iter()
            .map(|&(start, end)| &self.text[start as usize..end as usize])
    }

    /// [`word_hash`] of each word, in order.
    pub fn hashes(&self) -> &[u64] {
        &self.hashes
    }

    /// How many words there are.
    pub fn len(&self) -> usize {
        self.spans.len()
    }

    /// Whether the text has no word at all.
    pub fn is_empty(&self) -> bool {
        self.spans.is_empty()
    }

    /// The first word of four characters or more with a Cyrillic or Greek letter that looks like
    /// a Latin one after a Latin letter (`cаsinо`, normalised as `casino`): nobody spells a word
    /// so but to hide it.
    pub fn mixed_scripts(&self) -> Option<&str> {
        self.mixed.map(|index| self.word(index as usize))
    }

    /// The words with spaced-out letters joined (`c a s i n o` as `casino`), or `None` when the
    /// text has no such run.
    pub fn joined(&self) -> Option<&Words> {
        self.joined.as_deref()
    }

    /// Whether `phrase` (already normalised) occurs as whole consecutive words, in the words as
    /// written or with spaced-out letters joined.
    pub fn contains_phrase(&self, phrase: &Words) -> bool {
        if phrase.is_empty() {
            return false;
        }
        let found = |words: &Words| {
            words
                .hashes
                .windows(phrase.len())
                .enumerate()
                .any(|(at, window)| {
                    // The first id alone rules out nearly every window, without a slice compare.
                    window[0] == phrase.hashes[0]
                        && window == phrase.hashes.as_slice()
                        && (0..phrase.len()).all(|i| words.word(at + i) == phrase.word(i))
                })
        };
        found(self) || self.joined().is_some_and(found)
    }

    /// Adds one finished word, reading leetspeak digits as letters when the word also has
    /// letters, so `v1agra` is `viagra` while `2015` stays a number.
    fn push(&mut self, token: &str) {
        if token.is_empty() {
            return;
        }
        let has_letter = token.chars().any(char::is_alphabetic);
        let has_leet = token.chars().any(|c| leet(c).is_some());
        let start = self.text.len();
        if has_letter && has_leet {
            self.text
                .extend(token.chars().map(|c| leet(c).unwrap_or(c)));
        } else {
            self.text.push_str(token);
        }
        self.spans.push((start as u32, self.text.len() as u32));
        self.hashes.push(word_hash(&self.text[start..]));
    }

    fn join_spaced_letters(&self) -> Option<Words> {
        let single = |(start, end): &(u32, u32)| {
            self.text[*start as usize..*end as usize].chars().count() == 1
        };
        let has_run = self
            .spans
            .windows(MIN_SPACED_LETTERS)
            .any(|w| w.iter().all(single));
        if !has_run {
            return None;
        }
        let mut joined = Words::default();
        let mut i = 0;
        while i < self.spans.len() {
            let run = self.spans[i..].iter().take_while(|s| single(s)).count();
            let start = joined.text.len();
            if run >= MIN_SPACED_LETTERS {
                for &(s, e) in &self.spans[i..i + run] {
                    joined.text.push_str(&self.text[s as usize..e as usize]);
                }
                i += run;
            } else {
                let (s, e) = self.spans[i];
                joined.text.push_str(&self.text[s as usize..e as usize]);
                i += 1;
            }
            joined.spans.push((start as u32, joined.text.len() as u32));
            joined.hashes.push(word_hash(&joined.text[start..]));
        }
        Some(joined)
    }
}

/// FNV-1a over `bytes`, started from a per-kind offset so a word and a host that happen to
/// spell the same never share a feature. Stable forever: feature ids are stored.
pub(crate) fn hash_bytes(kind: u8, bytes: &[u8]) -> u64 {
    const PRIME: u64 = 0x0000_0100_0000_01b3;
    let mut hash = 0xcbf2_9ce4_8422_2325_u64 ^ u64::from(kind);
    hash = hash.wrapping_mul(PRIME);
    for &b in bytes {
        hash ^= u64::from(b);
        hash = hash.wrapping_mul(PRIME);
    }
    hash
}

/// The id of one normalised word; also its classifier feature.
pub(crate) fn word_hash(word: &str) -> u64 {
    hash_bytes(1, word.as_bytes())
}

/// The id of two consecutive words, from their word ids (the finaliser of MurmurHash3 over
/// both, so `a b` and `b a` differ).
pub(crate) fn pair_hash(first: u64, second: u64) -> u64 {
    let mut x = first.rotate_left(32) ^ second ^ 0x2545_f491_4f6c_dd1d;
    x ^= x >> 33;
    x = x.wrapping_mul(0xff51_afd7_ed55_8ccd);
    x ^= x >> 33;
    x = x.wrapping_mul(0xc4ce_b9fe_1a85_ec53);
    x ^ (x >> 33)
}

/// Feature ids are already hashes, so the map only needs to spread them over its buckets.
#[derive(Default)]
pub struct FeatureHasher(u64);

impl Hasher for FeatureHasher {
    fn finish(&self) -> u64 {
        // The finaliser of MurmurHash3: every input bit reaches the high bits the map uses.
        let mut x = self.0;
        x ^= x >> 33;
        x = x.wrapping_mul(0xff51_afd7_ed55_8ccd);
        x ^= x >> 33;
        x = x.wrapping_mul(0xc4ce_b9fe_1a85_ec53);
        x ^ (x >> 33)
    }

    fn write(&mut self, bytes: &[u8]) {
        for &b in bytes {
            self.0 = self.0.rotate_left(8) ^ u64::from(b);
        }
    }

    fn write_u64(&mut self, n: u64) {
        self.0 = n;
    }
}

/// The word being read.
#[derive(Default)]
struct Token {
    text: String,
    chars: usize,
    /// The word has a Latin letter as written.
    latin: bool,
    /// The word has a Cyrillic or Greek letter read as a Latin one after a Latin letter. Only
    /// after: a reader whose keyboard is set to Greek or Russian types the first letter of an
    /// English word in that script ("Οh my god" with a Greek Ο, an ordinary reply of the
    /// YouTube files), while a disguise sits inside the word (`cаsino`).
    disguised: bool,
}

impl Token {
    fn read(&mut self, c: char, words: &mut Words) {
        if is_word_char(c) {
            if self.chars < MAX_WORD_CHARS {
                self.text.push(c);
                self.chars += 1;
            }
        } else if c != '\'' && c != '’' {
            // An apostrophe neither ends nor joins a word: "don't" and "dont" read alike.
            self.end(words);
        }
    }

    fn end(&mut self, words: &mut Words) {
        let before = words.spans.len();
        words.push(&self.text);
        if self.disguised
            && self.chars >= MIN_DISGUISED_CHARS
            && words.spans.len() > before
            && words.mixed.is_none()
        {
            words.mixed = Some(before as u32);
        }
        self.text.clear();
        self.chars = 0;
        self.latin = false;
        self.disguised = false;
    }
}

/// Letters and digits make words, and so do `@` and `$` for `c@sino` and `ca$ino`; they are
/// read as letters by [`leet`] when the word has letters too.
fn is_word_char(c: char) -> bool {
    c.is_alphanumeric() || c == '@' || c == '$'
}

/// The letter a leetspeak character stands for.
fn leet(c: char) -> Option<char> {
    Some(match c {
        '0' => 'o',
        '1' => 'i',
        '3' => 'e',
        '4' => 'a',
        '5' => 's',
        '7' => 't',
        '8' => 'b',
        '@' => 'a',
        '$' => 's',
        _ => return None,
    })
}

/// Cyrillic and Greek letters that look like Latin ones, as used to write `саsinо` with three
/// Cyrillic letters. Only lowercase forms are needed: text is lowercased first.
fn look_alike(c: char) -> char {
    match c {
        'а' => 'a',
        'в' => 'b',
        'е' | 'ё' => 'e',
        'к' => 'k',
        'м' => 'm',
        'н' => 'h',
        'о' | 'ο' => 'o',
        'р' | 'ρ' => 'p',
        'с' => 'c',
        'т' => 't',
        'у' => 'y',
        'х' | 'χ' => 'x',
        'і' | 'ι' => 'i',
        'ј' => 'j',
        'ѕ' => 's',
        'ν' => 'v',
        other => other,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn words(text: &str) -> Vec<String> {
        Words::new(text).iter().map(str::to_owned).collect()
    }

    #[test]
    fn words_are_lowercased_and_split_on_punctuation() {
        assert_eq!(
            words("Hello, World! It's 2015."),
            ["hello", "world", "its", "2015"]
        );
    }

    #[test]
    fn accents_and_compatibility_forms_are_removed() {
        assert_eq!(words("Vïägrá ｃａｓｉｎｏ"), ["viagra", "casino"]);
    }

    #[test]
    fn leetspeak_is_read_as_letters_only_in_words_with_letters() {
        assert_eq!(words("V1AGRA c@$ino 2015"), ["viagra", "casino", "2015"]);
    }

    #[test]
    fn cyrillic_look_alikes_are_read_as_latin() {
        assert_eq!(words("саsinо"), ["casino"]);
    }

    #[test]
    fn spaced_out_letters_are_joined_in_the_second_reading() {
        let text = Words::new("play c a s i n o now");
        let joined: Vec<&str> = text
            .joined()
            .map(|j| j.iter().collect())
            .unwrap_or_default();
        assert_eq!(joined, ["play", "casino", "now"]);
        assert!(Words::new("a b").joined().is_none());
    }

    #[test]
    fn a_phrase_matches_whole_words_only() {
        let text = Words::new("Best casino-games, c.a.s.i.n.o!");
        assert!(text.contains_phrase(&Words::new("casino games")));
        assert!(text.contains_phrase(&Words::new("CASINO")));
        assert!(!Words::new("occasional").contains_phrase(&Words::new("casino")));
        assert!(!text.contains_phrase(&Words::new("")));
    }
}
