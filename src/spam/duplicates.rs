//! Near-duplicates: the same text, lightly varied, arriving from several authors or under
//! several articles is a campaign, whoever sends it.
//!
//! Each reply gets a 64-bit SimHash over its normalised words and word pairs; two texts
//! whose fingerprints differ in few bits say nearly the same thing. The store keeps the
//! fingerprints of a site's recent replies and hands them over in [`super::Facts`]. Exact
//! repeats by one author on one article are refused by the pipeline, not scored here.
//!
//! One earlier copy is no evidence by itself: readers post one reply under two articles, a
//! corpus lists it twice, two readers paste the same sentence. A campaign needs more: two
//! earlier copies, or a copy of a text that links somewhere (what campaigns are sent for).
//! The same linked text from several other authors is spam without anything learned.

use super::{
    Finding, Input, Rule,
    text::{Words, pair_hash},
};
use crate::privacy::AuthorHash;

/// Fingerprints this many bits apart or fewer count as the same text.
pub const NEAR_BITS: u32 = 3;

/// Short replies ("great article, thanks") recur on their own; only a text of at least this
/// many words says enough to be a campaign when it recurs.
pub const MIN_WORDS: usize = 8;

/// Other authors (distinct, besides the writer) whose copies of a linked text make it spam:
/// three senders of one advertisement are a campaign, whoever they are.
pub const SPAM_AUTHORS: usize = 2;

/// How many times the rule's weight a linked text sent by [`SPAM_AUTHORS`] other authors
/// counts: 2.75 × 2 = 5.5, so that it is spam under the default thresholds whatever the
/// classifier thinks (its surest ham weighs −0.5); an author's trust (−1) makes it wait.
pub const SPAM_STRENGTH: f64 = 2.75;

/// The SimHash of a text: similar texts get fingerprints that differ in few bits.
pub fn fingerprint(text: &str) -> u64 {
    fingerprint_words(&Words::new(text))
}

pub(crate) fn fingerprint_words(words: &Words) -> u64 {
    let mut tally = BitTally::default();
    let mut previous: Option<u64> = None;
    for &hash in words.hashes() {
        tally.add(hash);
        if let Some(previous) = previous {
            tally.add(pair_hash(previous, hash));
        }
        previous = Some(hash);
    }
    tally.majority()
}

/// Each byte value spread to one byte per bit (bit `i` of the value becomes byte `i`, 0 or 1),
/// so eight bit counters can be added at once in one `u64`.
const SPREAD: [u64; 256] = {
    let mut table = [0u64; 256];
    let mut value = 0;
    while value < 256 {
        let mut bit = 0;
        while bit < 8 {
            if value >> bit & 1 == 1 {
                table[value] |= 1 << (8 * bit);
            }
            bit += 1;
        }
        value += 1;
    }
    table
};

/// Counts, for each of the 64 bit positions, how many hashes had it set: eight byte-wide
/// counters per `u64`, emptied into wide counters before a byte can overflow. This is the
/// hot loop of assessing, and counting bit by bit cost several microseconds per reply.
struct BitTally {
    packed: [u64; 8],
    pending: u32,
    ones: [u32; 64],
    total: u32,
}

impl Default for BitTally {
    fn default() -> Self {
        BitTally {
            packed: [0; 8],
            pending: 0,
            ones: [0; 64],
            total: 0,
        }
    }
}

impl BitTally {
    fn add(&mut self, hash: u64) {
        for (byte, packed) in hash.to_le_bytes().iter().zip(self.packed.iter_mut()) {
            *packed += SPREAD[usize::from(*byte)];
        }
        self.total += 1;
        self.pending += 1;
        if self.pending == 255 {
            self.flush();
        }
    }

    fn flush(&mut self) {
        for (byte, packed) in self.packed.iter_mut().enumerate() {
            for (bit, count) in packed.to_le_bytes().iter().enumerate() {
                self.ones[byte * 8 + bit] += u32::from(*count);
            }
            *packed = 0;
        }
        self.pending = 0;
    }

    /// The fingerprint: each bit set when more than half of the hashes had it.
    fn majority(mut self) -> u64 {
        self.flush();
        self.ones
            .iter()
            .enumerate()
            .filter(|(_, ones)| **ones * 2 > self.total)
            .fold(0u64, |print, (bit, _)| print | 1 << bit)
    }
}

/// A recent reply of the site by another author, or under another article,
/// than the one assessed: the store leaves out the author's own replies to
/// the same article, which may well repeat themselves.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RecentReply {
    /// [`fingerprint`] of its body.
    pub fingerprint: u64,
    /// [`author_tag`] of its author, to tell how many authors sent a text.
    pub author: u64,
}

/// The first eight bytes of an author's keyed hash (big-endian), which tell one author from
/// another among a site's recent replies; the store hands them over as 16 hex digits.
pub fn author_tag(author: &AuthorHash) -> u64 {
    let mut first = [0u8; 8];
    first.copy_from_slice(&author.0[..8]);
    u64::from_be_bytes(first)
}

/// Nearly the same text as recent replies by other authors or under other articles, with
/// evidence that it is a campaign: two earlier copies or more, or one of a text with a link.
/// A linked text sent by [`SPAM_AUTHORS`] other authors or more weighs [`SPAM_STRENGTH`]
/// times as much: spam.
pub struct Campaign;

impl Rule for Campaign {
    fn name(&self) -> &'static str {
        "campaign"
    }

    fn check(&self, input: &Input<'_>) -> Option<Finding> {
        if input.text.words.len() < MIN_WORDS || input.facts.recent.is_empty() {
            return None;
        }
        let own = input.text.fingerprint;
        let writer = input.facts.author.as_ref().map(author_tag);
        let mut copies = 0;
        // Few recent replies are copies, so a short list beats a set.
        let mut others: Vec<u64> = Vec::new();
        for recent in input.facts.recent {
            if (recent.fingerprint ^ own).count_ones() > NEAR_BITS {
                continue;
            }
            copies += 1;
            if Some(recent.author) != writer && !others.contains(&recent.author) {
                others.push(recent.author);
            }
        }
        let linked = !input.text.links.is_empty();
        if copies == 0 || (copies < 2 && !linked) {
            return None;
        }
        let plural = if copies == 1 { "reply" } else { "replies" };
        let authors = match others.len() {
            0 => "all by the same author elsewhere".to_owned(),
            1 => "by 1 other author".to_owned(),
            n => format!("by {n} other authors"),
        };
        let with_link = if linked { ", with a link" } else { "" };
        let reason =
            format!("nearly the same text as {copies} recent {plural} ({authors}){with_link}");
        Some(if linked && others.len() >= SPAM_AUTHORS {
            Finding::scaled(SPAM_STRENGTH, reason)
        } else {
            Finding::new(reason)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::spam::{
        Facts,
        testing::{assess_facts, hits, reason, reply},
    };

    const TEXT: &str = "Earn five thousand dollars a week from home with this one simple trick";

    #[test]
    fn the_tally_finds_the_majority_of_each_bit_even_past_a_byte() {
        let mut tally = BitTally::default();
        for _ in 0..300 {
            tally.add(0b1010);
        }
        for _ in 0..299 {
            tally.add(0b0110);
        }
        assert_eq!(tally.majority(), 0b1110 & !0b0100 | 0b0010 | 0b1000);
    }

    #[test]
    fn similar_texts_have_close_fingerprints_and_different_texts_do_not() {
        let a = fingerprint(TEXT);
        let b =
            fingerprint("Earn FIVE thousand dollars a week from home with this one simple trick!!");
        let c = fingerprint("The council voted to close the library on Sundays from next spring");
        assert!((a ^ b).count_ones() <= NEAR_BITS);
        assert!((a ^ c).count_ones() > NEAR_BITS * 4);
    }

    /// `fingerprint(text)` as a recent reply by the author whose hash is all `author`.
    fn copy(text: &str, author: u8) -> RecentReply {
        RecentReply {
            fingerprint: fingerprint(text),
            author: author_tag(&AuthorHash([author; 32])),
        }
    }

    fn facts(recent: &[RecentReply]) -> Facts<'_> {
        Facts {
            author: Some(AuthorHash([1; 32])),
            recent,
            ..Facts::default()
        }
    }

    #[test]
    fn two_earlier_copies_are_a_campaign_and_one_is_not() {
        let once = [copy(TEXT, 2)];
        assert!(!hits(
            &assess_facts(&reply(TEXT), &facts(&once)),
            "campaign"
        ));
        let twice = [copy(TEXT, 2), copy(TEXT, 3)];
        let found = assess_facts(&reply(TEXT), &facts(&twice));
        assert_eq!(
            reason(&found, "campaign").map(|r| (r.weight, r.reason.as_str())),
            Some((
                2.0,
                "nearly the same text as 2 recent replies (by 2 other authors)"
            ))
        );
        // The writer's own copies under other articles count as copies.
        let own = [copy(TEXT, 1), copy(TEXT, 1)];
        let found = assess_facts(&reply(TEXT), &facts(&own));
        assert_eq!(
            reason(&found, "campaign").map(|r| r.reason.as_str()),
            Some("nearly the same text as 2 recent replies (all by the same author elsewhere)")
        );
        let unrelated = [
            copy(
                "The council voted to close the library on Sundays from next spring",
                2,
            ),
            copy(
                "The council voted to close the library on Sundays from next spring",
                3,
            ),
        ];
        assert!(!hits(
            &assess_facts(&reply(TEXT), &facts(&unrelated)),
            "campaign"
        ));
    }

    #[test]
    fn one_copy_of_a_linked_text_holds_and_three_senders_make_it_spam() {
        let linked = format!("{TEXT} at https://cash.example/start");
        let once = [copy(&linked, 2)];
        let found = assess_facts(&reply(&linked), &facts(&once));
        assert_eq!(
            reason(&found, "campaign").map(|r| (r.weight, r.reason.as_str())),
            Some((
                2.0,
                "nearly the same text as 1 recent reply (by 1 other author), with a link"
            ))
        );
        // Two copies by one other author are still one other sender.
        let one_sender = [copy(&linked, 2), copy(&linked, 2)];
        let found = assess_facts(&reply(&linked), &facts(&one_sender));
        assert_eq!(reason(&found, "campaign").map(|r| r.weight), Some(2.0));
        let two_senders = [copy(&linked, 2), copy(&linked, 3)];
        let found = assess_facts(&reply(&linked), &facts(&two_senders));
        assert_eq!(reason(&found, "campaign").map(|r| r.weight), Some(5.5));
        assert_eq!(found.verdict, crate::spam::Verdict::Spam);
    }

    #[test]
    fn short_texts_are_not_campaigns() {
        let short = [
            copy("great article thanks", 2),
            copy("great article thanks", 3),
        ];
        assert!(!hits(
            &assess_facts(&reply("great article thanks"), &facts(&short)),
            "campaign"
        ));
    }
}
