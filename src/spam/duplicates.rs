//! Near-duplicates: the same text, lightly varied, arriving from several authors or under
//! several articles is a campaign, whoever sends it.
//!
//! Each reply gets a 64-bit SimHash over its normalised words and word pairs; two texts
//! whose fingerprints differ in few bits say nearly the same thing. The store keeps the
//! fingerprints of a site's recent replies and hands them over in [`super::Facts`]. Exact
//! repeats by one author on one article are refused by the pipeline, not scored here.

use super::{
    Finding, Input, Rule,
    text::{Words, pair_hash},
};

/// Fingerprints this many bits apart or fewer count as the same text.
pub const NEAR_BITS: u32 = 3;

/// Short replies ("great article, thanks") recur on their own; only a text of at least this
/// many words says enough to be a campaign when it recurs.
pub const MIN_WORDS: usize = 8;

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
}

/// Nearly the same text as recent replies by other authors or under other articles.
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
        let matches = input
            .facts
            .recent
            .iter()
            .filter(|recent| (recent.fingerprint ^ own).count_ones() <= NEAR_BITS)
            .count();
        (matches > 0).then(|| {
            let plural = if matches == 1 { "reply" } else { "replies" };
            Finding::new(format!(
                "nearly the same text as {matches} recent {plural} by others or elsewhere"
            ))
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{
        privacy::AuthorHash,
        spam::{
            Facts,
            testing::{assess_facts, hits, reply},
        },
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

    #[test]
    fn nearly_the_same_text_as_a_recent_reply_is_a_campaign() {
        let others = [RecentReply {
            fingerprint: fingerprint(TEXT),
        }];
        let facts = Facts {
            author: Some(AuthorHash([1; 32])),
            recent: &others,
            ..Facts::default()
        };
        assert!(hits(&assess_facts(&reply(TEXT), &facts), "campaign"));
        let unrelated = [RecentReply {
            fingerprint: fingerprint(
                "The council voted to close the library on Sundays from next spring",
            ),
        }];
        let facts = Facts {
            recent: &unrelated,
            ..Facts::default()
        };
        assert!(!hits(&assess_facts(&reply(TEXT), &facts), "campaign"));
    }

    #[test]
    fn short_texts_are_not_campaigns() {
        let short = [RecentReply {
            fingerprint: fingerprint("great article thanks"),
        }];
        let facts = Facts {
            recent: &short,
            ..Facts::default()
        };
        assert!(!hits(
            &assess_facts(&reply("great article thanks"), &facts),
            "campaign"
        ));
    }
}
