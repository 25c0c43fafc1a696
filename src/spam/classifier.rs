//! The statistical classifier: a site's moderators teach it, and it gives every reply a
//! spam probability with the number of learned words behind it.
//!
//! What it learns is kept as additive counts only, per hashed feature a spam and a ham
//! weight plus the document totals, because several replicas update a site's statistics at
//! once with atomic increments in the database; no lesson ever needs to read first.
//!
//! It scores with Gary Robinson's method as SpamBayes uses it: a smoothed spam probability
//! per known feature, the most telling ones combined with Fisher's chi-square test into one
//! probability. Unlike plain naive Bayes, that stays near 0.5 ("unsure") when the evidence
//! is thin or mixed, which maps naturally onto holding a reply for a moderator. docs/SPAM.md
//! gives the measurements behind the choice. A built-in prior, trained on public labelled
//! comments, is added to every site's own counts so a new site is not blind. Until a site
//! has taught `JOINED_LESSONS`, the prior speaks mostly through its logistic regression
//! instead (`super::logistic`), which stays calibrated on text unlike its training data.

use std::{collections::HashMap, hash::BuildHasherDefault};

use super::{
    Finding, Input, Rule,
    links::Link,
    logistic::{Logistic, logit, sigmoid},
    text::{FeatureHasher, Words, hash_bytes, pair_hash},
};
use crate::domain::ValidReply;

/// The weight of a moderator's explicit `MARK_SPAM` or `MARK_HAM` lesson.
pub const MARK_WEIGHT: f32 = 1.0;
/// The weight of approving or rejecting a held reply: a weaker signal, since a reply can be
/// rejected for being rude rather than spam. A quarter, a binary fraction, so that every sum
/// of lessons is exact in an `f32`, in SQLite's `REAL` and in PostgreSQL's `real`, and a lesson
/// taken back leaves the counts exactly as they were: at 0.3, a word taught once as ham then
/// approved in another reply, whose approval was reversed, read 0.99999994 on PostgreSQL.
pub const REVIEW_WEIGHT: f32 = 0.25;

/// How much one reply of the built-in prior counts next to one of a site's own lessons:
/// three quarters, so a site's moderators outvote it once they have taught about 720
/// replies. With `STRENGTH` it keeps the prior's own evidence where it was (a strength
/// of 4 of the prior's replies, what a new site sees) while a site's lessons need about
/// three of them before one word is trusted; docs/SPAM.md has the scan.
pub const PRIOR_SCALE: f32 = 0.75;

/// Features seen fewer times than this are left out of a prior.
pub const PRIOR_MIN_COUNT: f32 = 2.0;
/// Features whose spam probability is closer to 0.5 than this are left out of a prior.
pub const PRIOR_MIN_DEVIATION: f32 = 0.3;

/// Robinson's strength of the 0.5 assumption for a rarely seen feature, in lessons. At 1, a
/// word taught once as spam read 0.75 and held a short reply on its own ("Awsome" after one
/// spam used it); at 3 it reads 0.625, and three lessons make it 0.75.
const STRENGTH: f64 = 3.0;
/// Features whose probability is closer to 0.5 than this say nothing and are skipped.
const MIN_DEVIATION: f64 = 0.1;
/// At most this many of the most telling features are combined.
const MAX_EVIDENCE: usize = 150;
/// Only the first words of a very long reply are read; they decide as well as all of them.
const MAX_WORDS: usize = 300;

/// The built-in prior; see docs/SPAM.md for how it was made.
const PRIOR: &[u8] = include_bytes!("prior.bin");
const PRIOR_MAGIC: &[u8; 4] = b"RGP2";

/// What a lesson says a reply was.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Label {
    Spam,
    Ham,
}

impl Label {
    /// The word stored with a reply's lesson.
    pub fn as_str(self) -> &'static str {
        match self {
            Label::Spam => "spam",
            Label::Ham => "ham",
        }
    }

    /// The inverse of [`Label::as_str`].
    pub fn parse(word: &str) -> Option<Label> {
        [Label::Spam, Label::Ham]
            .into_iter()
            .find(|label| label.as_str() == word)
    }
}

/// Per feature id: (spam weight, ham weight).
pub type FeatureMap = HashMap<u64, (f32, f32), BuildHasherDefault<FeatureHasher>>;

/// A site's learned statistics: additive counts, so replicas can update them concurrently.
///
/// The store keeps one row of totals and one row per feature, and loads the totals plus the
/// rows of a reply's [`features`]: that is all [`Assessor::assess`](super::Assessor::assess)
/// reads. Feature ids are stable across releases and platforms (they are stored); in SQL
/// they fit a signed 64-bit column by their bit pattern.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct LearnedStats {
    /// The total weight of spam lessons.
    pub spam: f32,
    /// The total weight of ham lessons.
    pub ham: f32,
    /// Per feature: the weight of spam and of ham lessons that had it.
    pub features: FeatureMap,
}

static EMPTY: LearnedStats = LearnedStats {
    spam: 0.0,
    ham: 0.0,
    features: HashMap::with_hasher(BuildHasherDefault::new()),
};

impl LearnedStats {
    /// Nothing learned yet.
    pub fn new() -> LearnedStats {
        LearnedStats::default()
    }

    /// A shared empty set, for facts gathered without a store.
    pub fn empty() -> &'static LearnedStats {
        &EMPTY
    }

    /// Teaches one reply with the given `features` (from [`features`]). A negative weight
    /// takes back an earlier lesson, as when a moderator changes their mind; the store does
    /// the same with `+ weight` on each row.
    pub fn learn(&mut self, features: &[u64], label: Label, weight: f32) {
        let total = match label {
            Label::Spam => &mut self.spam,
            Label::Ham => &mut self.ham,
        };
        *total += weight;
        for &feature in features {
            let counts = self.features.entry(feature).or_default();
            match label {
                Label::Spam => counts.0 += weight,
                Label::Ham => counts.1 += weight,
            }
        }
    }

    /// The (spam, ham) weights of one feature; lessons taken back never make them negative.
    pub fn get(&self, feature: u64) -> (f32, f32) {
        self.features
            .get(&feature)
            .map_or((0.0, 0.0), |&(s, h)| (s.max(0.0), h.max(0.0)))
    }

    /// Only what a prior should carry to sites it was not trained on: features seen at least
    /// `PRIOR_MIN_COUNT` times whose spam probability is at least `PRIOR_MIN_DEVIATION`
    /// from 0.5. One-off words say little, and common words that lean only a little one way
    /// lean that way because of the training site's habits (its spam was longer than its
    /// ham), not because of what spam is: kept, they held ordinary replies elsewhere.
    pub fn for_prior(&self) -> LearnedStats {
        let spam_docs = self.spam.max(1.0);
        let ham_docs = self.ham.max(1.0);
        let features = self
            .features
            .iter()
            .filter(|(_, (s, h))| {
                let (s, h) = (s.max(0.0), h.max(0.0));
                let (sr, hr) = (s / spam_docs, h / ham_docs);
                s + h >= PRIOR_MIN_COUNT
                    && sr + hr > 0.0
                    && (sr / (sr + hr) - 0.5).abs() >= PRIOR_MIN_DEVIATION
            })
            .map(|(k, v)| (*k, *v))
            .collect();
        LearnedStats {
            spam: self.spam,
            ham: self.ham,
            features,
        }
    }
}

/// What every site's classifier starts from: counts, joined with a site's own counts in
/// Robinson's method, and a logistic regression over the same features, which judges for a
/// site that has taught little.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Prior {
    pub counts: LearnedStats,
    pub logistic: Logistic,
}

impl Prior {
    /// A prior that knows nothing.
    pub fn empty() -> Prior {
        Prior::default()
    }

    /// Trains both parts on labelled examples (a reply's features, and whether it is spam),
    /// each taught once: the counts pruned by [`LearnedStats::for_prior`], the regression
    /// over the features seen at least `PRIOR_MIN_COUNT` times.
    pub fn train(examples: &[(&[u64], bool)]) -> Prior {
        let mut counts = LearnedStats::new();
        for &(features, spam) in examples {
            let label = if spam { Label::Spam } else { Label::Ham };
            counts.learn(features, label, MARK_WEIGHT);
        }
        Prior {
            counts: counts.for_prior(),
            logistic: Logistic::train(examples, PRIOR_MIN_COUNT as u32),
        }
    }

    /// The compact form: counts rounded to whole lessons, weights as `f32`.
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut ids: Vec<u64> = self
            .counts
            .features
            .keys()
            .chain(self.logistic.weights.keys())
            .copied()
            .collect();
        ids.sort_unstable();
        ids.dedup();
        let mut bytes = Vec::with_capacity(20 + ids.len() * 16);
        bytes.extend_from_slice(PRIOR_MAGIC);
        bytes.extend_from_slice(&(ids.len() as u32).to_le_bytes());
        bytes.extend_from_slice(&self.counts.spam.to_le_bytes());
        bytes.extend_from_slice(&self.counts.ham.to_le_bytes());
        bytes.extend_from_slice(&self.logistic.bias.to_le_bytes());
        let count = |w: f32| (w.round().clamp(0.0, f32::from(u16::MAX)) as u16).to_le_bytes();
        for id in ids {
            let (spam, ham) = self.counts.get(id);
            let weight = self.logistic.weights.get(&id).copied().unwrap_or(0.0);
            bytes.extend_from_slice(&id.to_le_bytes());
            bytes.extend_from_slice(&count(spam));
            bytes.extend_from_slice(&count(ham));
            bytes.extend_from_slice(&weight.to_le_bytes());
        }
        bytes
    }

    /// Reads what [`Prior::to_bytes`] wrote; `None` if it is damaged.
    pub fn from_bytes(bytes: &[u8]) -> Option<Prior> {
        let rest = bytes.strip_prefix(PRIOR_MAGIC)?;
        let (count, rest) = rest.split_first_chunk::<4>()?;
        let (spam, rest) = rest.split_first_chunk::<4>()?;
        let (ham, rest) = rest.split_first_chunk::<4>()?;
        let (bias, mut rest) = rest.split_first_chunk::<4>()?;
        let count = u32::from_le_bytes(*count) as usize;
        if rest.len() != count.checked_mul(16)? {
            return None;
        }
        let mut prior = Prior {
            counts: LearnedStats {
                spam: f32::from_le_bytes(*spam),
                ham: f32::from_le_bytes(*ham),
                features: FeatureMap::with_capacity_and_hasher(count, Default::default()),
            },
            logistic: Logistic {
                bias: f32::from_le_bytes(*bias),
                weights: Default::default(),
            },
        };
        while let Some((entry, tail)) = rest.split_first_chunk::<16>() {
            let (feature, rest_of_entry) = entry.split_at(8);
            let feature = u64::from_le_bytes(feature.try_into().ok()?);
            let spam = u16::from_le_bytes([rest_of_entry[0], rest_of_entry[1]]);
            let ham = u16::from_le_bytes([rest_of_entry[2], rest_of_entry[3]]);
            let weight = f32::from_le_bytes(rest_of_entry[4..8].try_into().ok()?);
            if spam > 0 || ham > 0 {
                prior
                    .counts
                    .features
                    .insert(feature, (f32::from(spam), f32::from(ham)));
            }
            if weight != 0.0 {
                prior.logistic.weights.insert(feature, weight);
            }
            rest = tail;
        }
        Some(prior)
    }

    /// The prior built into this release.
    pub fn builtin() -> Prior {
        Prior::from_bytes(PRIOR).unwrap_or_else(|| {
            tracing::warn!("the built-in spam prior is damaged; starting without it");
            Prior::empty()
        })
    }
}

const META: u8 = 3;
const HOST: u8 = 4;
const STEM: u8 = 5;

/// How many leading characters of a longer word make its stem feature.
const STEM_CHARS: usize = 5;

/// The hashed, de-duplicated features of a reply: the ids the store loads counts for and
/// that a lesson increments.
pub fn features(reply: &ValidReply) -> Vec<u64> {
    super::Analysis::of(reply).features
}

/// What the features say of a reply's shape besides its words and links.
pub(crate) struct Shape {
    pub letters: usize,
    pub capitals: usize,
    /// Whether the author gave a website.
    pub website: bool,
}

/// Words and word pairs of the normalised text, the hosts it links to, and a few signs of
/// its shape. Word pairs carry phrases ("check out", "my channel"); shape and host
/// features let lessons about one link or one shouting spammer carry over to the next.
pub(crate) fn features_of(words: &Words, links: &[Link], shape: Shape) -> Vec<u64> {
    let mut out = Vec::with_capacity(2 * words.len().min(MAX_WORDS) + 8);
    let mut previous: Option<u64> = None;
    for (word, &hash) in words.iter().zip(words.hashes()).take(MAX_WORDS) {
        out.push(hash);
        if let Some(previous) = previous {
            out.push(pair_hash(previous, hash));
        }
        // A crude stem: the first letters of a longer word carry it across inflections and
        // languages (subscribe, subscribed, subscribers, subscribirse).
        if let Some((cut, _)) = word
            .char_indices()
            .nth(STEM_CHARS)
            .filter(|_| word.len() > STEM_CHARS + 1)
        {
            out.push(hash_bytes(STEM, &word.as_bytes()[..cut]));
        }
        previous = Some(hash);
    }

    let meta = |name: &str| hash_bytes(META, name.as_bytes());
    out.push(meta(match links.len() {
        0 => "links:0",
        1 => "links:1",
        _ => "links:many",
    }));
    for link in links {
        // The registrable part is what spammers reuse; the subdomain is often random.
        let mut labels = link.host.rsplit('.');
        let domain = match (labels.next(), labels.next()) {
            (Some(tld), Some(name)) if !link.is_ip => format!("{name}.{tld}"),
            _ => "ip".to_owned(),
        };
        out.push(hash_bytes(HOST, domain.as_bytes()));
    }
    if shape.website {
        out.push(meta("website"));
    }
    if shape.letters >= 8 && shape.capitals * 2 > shape.letters {
        out.push(meta("mostly-capitals"));
    }
    out.sort_unstable();
    out.dedup();
    out
}

/// What the classifier makes of a reply: its spam probability, how many learned features that
/// rests on, and how familiar the reply's text is to the prior's regression.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Reading {
    /// The spam probability.
    pub p: f64,
    /// How many of the reply's features something learned knows (the prior or the site).
    pub known: usize,
    /// How many of the reply's features the prior's regression has no weight for.
    pub unfamiliar: usize,
    /// How many of the reply's features the deployment's shared lessons never met (all of them
    /// where nothing is shared).
    pub unshared: usize,
    /// How far the shared lessons are on their way to [`TRUSTED_LESSONS`], from 0 to 1.
    pub shared_trust: f64,
}

impl Reading {
    /// How far the regression can vouch for what it read, from 0 to 1: 1 while at most
    /// [`FAMILIAR_UNKNOWN`] of the reply's features are new to it, then less in proportion
    /// (`FAMILIAR_UNKNOWN / unfamiliar`). A reply of the kind it learned from has few new
    /// features, however long; a newspaper reader's long prose has a hundred.
    pub fn familiarity(&self) -> f64 {
        (FAMILIAR_UNKNOWN / self.unfamiliar.max(1) as f64).min(1.0)
    }

    /// How far what was learned can vouch for a sure reading, from 0 to 1: the regression's
    /// [`Reading::familiarity`], or the same measure over the deployment's shared lessons as
    /// far as they are many enough to be trusted as a site's own, whichever is greater.
    pub fn evidence(&self) -> f64 {
        self.familiarity()
            .max(self.shared_familiarity() * self.shared_trust.sqrt())
    }

    /// [`Reading::familiarity`] over the deployment's shared lessons: 1 while at most
    /// [`FAMILIAR_UNKNOWN`] of the reply's features are new to them.
    pub fn shared_familiarity(&self) -> f64 {
        (FAMILIAR_UNKNOWN / self.unshared.max(1) as f64).min(1.0)
    }
}

/// How many of a reply's features the prior's regression may not know before its evidence is
/// discounted. A regression sums a weight per feature; on text unlike anything it learned (a
/// news site's long prose, 100 to 500 features against YouTube's 10 to 50) many small weights
/// add up to a certainty it never had: ordinary political prose read 0.99. Beyond this many
/// unknown features, the weights' sum counts by `sqrt(familiarity)`, so a reply a hundred of
/// whose features are new counts about a third of its sum (docs/SPAM.md has the scan).
pub const FAMILIAR_UNKNOWN: f64 = 10.0;

/// The spam probability of a reply with `features`, from the prior and a site's counts, and
/// how many learned features it rests on.
pub fn probability(prior: &Prior, learned: &LearnedStats, features: &[u64]) -> (f64, usize) {
    let reading = read(prior, learned, LearnedStats::empty(), features);
    (reading.p, reading.known)
}

/// How much one lesson of the deployment's other sites counts next to one of the site's own,
/// in the joined counts: as much as one reply of the built-in prior ([`PRIOR_SCALE`]), as it
/// is a prior too, if one taught by moderators of the same deployment.
pub const SHARED_SCALE: f32 = PRIOR_SCALE;

/// How much the log-odds of Robinson's method over the deployment's shared lessons count on a
/// site that has not taught enough to judge by its joined counts: a quarter, times the square
/// of the reply's [`Reading::shared_familiarity`]. Robinson's chi-square is far surer than its
/// evidence on text unlike its lessons; counted in full, the lessons of two videos held 11.5%
/// of a third video's ordinary replies and 4.1% of a news site's (docs/SPAM.md, "A
/// deployment's shared lessons").
const SHARED_LOG_ODDS: f64 = 0.25;

/// The classifier's [`Reading`] of a reply with `features`.
///
/// On a site that has taught `JOINED_LESSONS` it is Robinson's method over the site's
/// counts joined with the prior's (and with `shared`, the lessons of the deployment's other
/// sites, where the operator shares them). On a site that has taught nothing it is the prior's
/// logistic regression, its weights discounted on unfamiliar text ([`FAMILIAR_UNKNOWN`]),
/// whose log-odds the shared lessons move (Robinson's method over them alone, a quarter of it,
/// discounted by the square of the share of the features they know: [`SHARED_LOG_ODDS`]) and
/// then the site's own lessons (Robinson's
/// method over the site's counts alone, which stays at 0.5 until the site taught something
/// about these features), so a few lessons count at once. In between, the two in proportion.
pub fn read(
    prior: &Prior,
    learned: &LearnedStats,
    shared: &LearnedStats,
    features: &[u64],
) -> Reading {
    let scale = f64::from(PRIOR_SCALE);
    let shared_scale = f64::from(SHARED_SCALE);
    let (site_spam, site_ham) = (
        f64::from(learned.spam.max(0.0)),
        f64::from(learned.ham.max(0.0)),
    );
    let (shared_spam, shared_ham) = (
        f64::from(shared.spam.max(0.0)),
        f64::from(shared.ham.max(0.0)),
    );
    let sharing = shared_spam + shared_ham > 0.0;
    let share = joined_share(site_spam + site_ham);
    let joined_docs = (
        (f64::from(prior.counts.spam) * scale + shared_spam * shared_scale + site_spam).max(1.0),
        (f64::from(prior.counts.ham) * scale + shared_ham * shared_scale + site_ham).max(1.0),
    );
    let site_docs = (site_spam.max(1.0), site_ham.max(1.0));
    let shared_docs = (shared_spam.max(1.0), shared_ham.max(1.0));
    let mut joined: Vec<f64> = Vec::with_capacity(features.len());
    let mut site: Vec<f64> = Vec::new();
    let mut others: Vec<f64> = Vec::new();
    let mut weights = 0.0;
    let mut known = 0;
    let mut unfamiliar = 0;
    let mut unshared = 0;
    for &feature in features {
        // Once the joined counts decide alone, the regression is not read.
        let weight = if share < 1.0 {
            prior.logistic.weight(feature)
        } else {
            0.0
        };
        weights += weight;
        unfamiliar += usize::from(weight == 0.0);
        let (ps, ph) = prior.counts.get(feature);
        let (ls, lh) = learned.get(feature);
        let (ls, lh) = (f64::from(ls), f64::from(lh));
        let (ss, sh) = if sharing {
            let (ss, sh) = shared.get(feature);
            (f64::from(ss), f64::from(sh))
        } else {
            (0.0, 0.0)
        };
        unshared += usize::from(ss + sh <= 0.0);
        let spam = f64::from(ps) * scale + ss * shared_scale + ls;
        let ham = f64::from(ph) * scale + sh * shared_scale + lh;
        if spam + ham <= 0.0 && weight == 0.0 {
            continue;
        }
        known += 1;
        joined.extend(evidence(spam, ham, joined_docs));
        if share < 1.0 {
            site.extend(evidence(ls, lh, site_docs));
            if sharing {
                others.extend(evidence(ss, sh, shared_docs));
            }
        }
    }
    let mut reading = Reading {
        p: combine(joined),
        known,
        unfamiliar,
        unshared: if sharing { unshared } else { features.len() },
        shared_trust: trust(shared_spam + shared_ham),
    };
    if share >= 1.0 {
        return reading;
    }
    let log_odds = f64::from(prior.logistic.bias)
        + weights * reading.familiarity().sqrt()
        + SHARED_LOG_ODDS * logit(combine(others)) * reading.shared_familiarity().powi(2);
    let new_site = sigmoid(log_odds + logit(combine(site)));
    reading.p = share * reading.p + (1.0 - share) * new_site;
    reading
}

/// One feature's smoothed spam probability from its weights and the documents' totals, if it
/// is telling enough to count.
fn evidence(spam: f64, ham: f64, (spam_docs, ham_docs): (f64, f64)) -> Option<f64> {
    let seen = spam + ham;
    if seen <= 0.0 {
        return None;
    }
    let spam_ratio = spam / spam_docs;
    let ham_ratio = ham / ham_docs;
    let raw = spam_ratio / (spam_ratio + ham_ratio);
    let p = (STRENGTH * 0.5 + seen * raw) / (STRENGTH + seen);
    ((p - 0.5).abs() >= MIN_DEVIATION).then_some(p)
}

/// Fisher's chi-square combination of the most telling evidence; 0.5 without any.
fn combine(mut evidence: Vec<f64>) -> f64 {
    if evidence.is_empty() {
        return 0.5;
    }
    if evidence.len() > MAX_EVIDENCE {
        evidence.sort_unstable_by(|a, b| (b - 0.5).abs().total_cmp(&(a - 0.5).abs()));
        evidence.truncate(MAX_EVIDENCE);
    }
    let n = evidence.len();
    let ln_hams: f64 = evidence.iter().map(|p| (1.0 - p).ln()).sum();
    let ln_spams: f64 = evidence.iter().map(|p| p.ln()).sum();
    let spam = 1.0 - chi2_q(-2.0 * ln_hams, 2 * n);
    let ham = 1.0 - chi2_q(-2.0 * ln_spams, 2 * n);
    ((spam - ham) + 1.0) / 2.0
}

/// The probability that a chi-square variable with `freedom` (even) degrees exceeds `x2`.
fn chi2_q(x2: f64, freedom: usize) -> f64 {
    let m = x2 / 2.0;
    let mut term = (-m).exp();
    let mut sum = term;
    for i in 1..freedom / 2 {
        term *= m / i as f64;
        sum += term;
    }
    sum.min(1.0)
}

/// The probability from which the classifier holds a reply on its own once the site has taught
/// `JOINED_LESSONS`. Robinson's method, which judges there, takes each feature as
/// independent evidence and is surer than it should be, so it holds from 0.7.
pub const HOLD_AT: f64 = 0.7;
/// The probability from which a new site's classifier holds a reply on its own. The prior's
/// regression, which judges there, weighs its features together and its probabilities mean
/// the same on every site, so a reply it reads as more likely spam than not by a clear margin
/// waits for a moderator instead of being published (docs/SPAM.md, "The hold point of a new
/// site").
pub const NEW_SITE_HOLD_AT: f64 = 0.6;
/// How many lessons (in weight) a site needs before its classifier can make a reply spam on
/// its own.
pub const TRUSTED_LESSONS: f64 = 50.0;
/// How many lessons (in weight) a site needs before its own counts, joined with the prior's,
/// decide alone. The prior's counts weigh as about 720 replies ([`PRIOR_SCALE`]), so before
/// this Robinson's method over the joined counts is mostly the prior's, and as sure of
/// another site's ordinary replies as it is of YouTube's: switched to at 50 lessons, it held
/// up to 12% of them in the learning protocol with 70 to 172 lessons taught (docs/SPAM.md, "A
/// site's first decisions").
pub const JOINED_LESSONS: f64 = 200.0;

/// The probability from which a trusted site's classifier makes a reply spam on its own. In
/// the learning protocol no ham of the three files scored above 0.90 and about two spam in
/// three scored 0.99 or more; a site's own lessons decide there, not the prior from another
/// kind of site, so a new site never gets this far (see [`strength`]).
pub const SPAM_AT: f64 = 0.99;
/// The weight that reaches the default spam threshold.
const SPAM_WEIGHT: f64 = 5.0;
/// The most a new site's classifier gives: below the spam threshold by more than 2.
const NEW_SITE_TOP: f64 = 2.9;

/// How far a site is on its way to [`TRUSTED_LESSONS`], from 0 to 1.
fn trust(site_lessons: f64) -> f64 {
    (site_lessons / TRUSTED_LESSONS).clamp(0.0, 1.0)
}

/// How far a site is on its way to `JOINED_LESSONS`, from 0 to 1: the share of
/// [`probability`] that is Robinson's method over the joined counts.
fn joined_share(site_lessons: f64) -> f64 {
    (site_lessons / JOINED_LESSONS).clamp(0.0, 1.0)
}

/// The probability from which the classifier holds a reply on its own on a site that has
/// taught `site_lessons`: from [`NEW_SITE_HOLD_AT`] to [`HOLD_AT`] in the proportion in which
/// [`probability`] moves from the regression to Robinson's method.
pub fn hold_at(site_lessons: f64) -> f64 {
    NEW_SITE_HOLD_AT + (HOLD_AT - NEW_SITE_HOLD_AT) * joined_share(site_lessons)
}

/// How a probability becomes a weight (before the rule's own weight multiplies it), given how
/// much the site taught and how familiar the reply is to the prior ([`Reading::familiarity`]).
/// It reaches 1 (the default hold threshold) at [`hold_at`] and 2 at 0.9. Above that, the top
/// rests on the evidence behind the probability: on a site that has taught
/// [`TRUSTED_LESSONS`], or for a reply the prior's regression knows nearly every feature of,
/// 5 (the default spam threshold) from [`SPAM_AT`], so what is sure spam by evidence the
/// classifier has goes to the spam queue; with neither, 2.9 at certainty, so the classifier can
/// hold a reply but needs more than 2 from other rules to make it spam; in between, in
/// proportion to the greater of the site's trust and the square of the familiarity. Squared,
/// because text the prior half knows is where it is surest wrongly: "Both numbers check out
/// against" two links read 0.99 with 24 of 33 features new, and in proportion to the
/// familiarity itself its weight and the `links` rule made an ordinary reply spam. A sure ham
/// probability takes a little off, never enough to cancel a link rule or a moderation term.
pub fn strength(p: f64, site_lessons: f64, familiarity: f64) -> f64 {
    let hold_at = hold_at(site_lessons);
    if p < 0.5 {
        ((p - 0.5) / 0.8).max(-0.5)
    } else if p < hold_at {
        (p - 0.5) / (hold_at - 0.5)
    } else if p < 0.9 {
        1.0 + (p - hold_at) / (0.9 - hold_at)
    } else {
        let sure = trust(site_lessons).max(familiarity.clamp(0.0, 1.0).powi(2));
        let top = NEW_SITE_TOP + (SPAM_WEIGHT - NEW_SITE_TOP) * sure;
        let top_at = 1.0 - (1.0 - SPAM_AT) * sure;
        (2.0 + (p - 0.9) / (top_at - 0.9) * (top - 2.0)).min(top)
    }
}

/// The classifier as a rule, holding the built-in (or a given) prior.
pub struct Classifier {
    prior: Prior,
}

impl Classifier {
    pub fn new(prior: Prior) -> Classifier {
        Classifier { prior }
    }
}

impl Rule for Classifier {
    fn name(&self) -> &'static str {
        "classifier"
    }

    fn check(&self, input: &Input<'_>) -> Option<Finding> {
        let reading = read(
            &self.prior,
            input.facts.learned,
            input.facts.shared,
            &input.text.features,
        );
        let Reading { p, known, .. } = reading;
        if known == 0 {
            return None;
        }
        let lessons =
            f64::from(input.facts.learned.spam.max(0.0) + input.facts.learned.ham.max(0.0));
        let evidence = reading.evidence();
        let strength = strength(p, lessons, evidence);
        let words = if known == 1 { "feature" } else { "features" };
        // Only where it changed the weight, so the usual reason stays as short as before.
        let unfamiliar = if evidence < 1.0 && trust(lessons) < 1.0 {
            format!(
                ", {} of {} new to it",
                reading.unfamiliar.min(reading.unshared),
                input.text.features.len()
            )
        } else {
            String::new()
        };
        Some(Finding::scaled(
            strength,
            format!("spam probability {p:.2} from {known} learned {words}{unfamiliar}"),
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::spam::{
        Facts,
        testing::{assess_facts, reason, reply},
    };

    #[test]
    fn features_are_deduplicated_and_stable() {
        let a = features(&reply("Check out my channel, check out my channel!"));
        let mut sorted = a.clone();
        sorted.dedup();
        assert_eq!(a, sorted);
        assert_eq!(
            a,
            features(&reply("check OUT my channel check out my channel"))
        );
    }

    #[test]
    fn a_few_spam_lessons_raise_the_score_of_a_similar_reply() {
        let mut learned = LearnedStats::new();
        let before = assess_facts(
            &reply("Win a free phone, visit my page today"),
            &Facts::default(),
        );
        for text in [
            "Win a free phone today, visit my page",
            "Free phone for everyone, visit my page",
            "Visit my page and win a free phone",
            "Visit my page today and win a phone",
            "A free phone today: visit my page",
        ] {
            learned.learn(&features(&reply(text)), Label::Spam, MARK_WEIGHT);
        }
        for text in [
            "The mayor's plan is sound",
            "I disagree with the second point",
        ] {
            learned.learn(&features(&reply(text)), Label::Ham, MARK_WEIGHT);
        }
        let facts = Facts {
            learned: &learned,
            ..Facts::default()
        };
        let after = assess_facts(&reply("Win a free phone, visit my page today"), &facts);
        assert!(
            after.score > before.score,
            "{} > {}",
            after.score,
            before.score
        );
        assert!(reason(&after, "classifier").is_some_and(|r| r.weight >= 1.0));
    }

    #[test]
    fn a_few_ham_lessons_lower_the_score_of_a_similar_reply() {
        let mut learned = LearnedStats::new();
        for text in [
            "Win a free phone today, visit my page",
            "Buy cheap watches, visit my page",
        ] {
            learned.learn(&features(&reply(text)), Label::Spam, MARK_WEIGHT);
        }
        let facts = Facts {
            learned: &learned,
            ..Facts::default()
        };
        let text = "The budget vote on the new library was close";
        let before = assess_facts(&reply(text), &facts);
        for text in [
            "The budget vote was close this year",
            "A new library would serve the whole town",
            "The vote on the library budget surprised me",
        ] {
            learned.learn(&features(&reply(text)), Label::Ham, MARK_WEIGHT);
        }
        let facts = Facts {
            learned: &learned,
            ..Facts::default()
        };
        let after = assess_facts(&reply(text), &facts);
        assert!(
            after.score < before.score,
            "{} < {}",
            after.score,
            before.score
        );
    }

    #[test]
    fn a_lesson_taken_back_leaves_the_counts_as_before() {
        let mut learned = LearnedStats::new();
        let f = features(&reply("some words here"));
        learned.learn(&f, Label::Spam, MARK_WEIGHT);
        learned.learn(&f, Label::Spam, -MARK_WEIGHT);
        assert_eq!(learned.spam, 0.0);
        assert!(f.iter().all(|id| learned.get(*id) == (0.0, 0.0)));
    }

    #[test]
    fn a_prior_survives_its_compact_form() {
        let (a, b, c): (&[u64], &[u64], &[u64]) = (&[1, 2, 3], &[2, 3], &[3, 4]);
        let prior = Prior {
            counts: {
                let mut counts = LearnedStats::new();
                counts.learn(a, Label::Spam, 1.0);
                counts.learn(b, Label::Ham, 1.0);
                counts.learn(c, Label::Ham, 1.0);
                counts
            },
            logistic: Logistic {
                bias: -0.25,
                weights: [(1, 1.5), (5, -0.75)].into_iter().collect(),
            },
        };
        let bytes = prior.to_bytes();
        let back = Prior::from_bytes(&bytes).unwrap_or_default();
        assert_eq!(back, prior);
        assert_eq!(
            back.counts.get(5),
            (0.0, 0.0),
            "a weight alone adds no counts"
        );
        assert!(Prior::from_bytes(&bytes[..bytes.len() - 1]).is_none());
        assert!(Prior::from_bytes(b"nonsense").is_none());
    }

    #[test]
    fn a_prior_keeps_only_frequent_features_that_lean_one_way() {
        let mut stats = LearnedStats::new();
        for _ in 0..10 {
            stats.learn(&[1, 2, 3], Label::Spam, 1.0);
            stats.learn(&[2, 4], Label::Ham, 1.0);
        }
        stats.learn(&[5], Label::Spam, 1.0);
        let prior = stats.for_prior();
        assert_eq!(prior.get(1), (10.0, 0.0));
        assert_eq!(prior.get(4), (0.0, 10.0));
        assert_eq!(prior.get(2), (0.0, 0.0), "even evidence is left out");
        assert_eq!(prior.get(5), (0.0, 0.0), "a one-off is left out");
        assert_eq!((prior.spam, prior.ham), (stats.spam, stats.ham));
    }

    #[test]
    fn the_builtin_prior_loads() {
        let prior = Prior::from_bytes(PRIOR).unwrap_or_default();
        assert!(prior.counts.features.len() > 1000);
        assert!(prior.logistic.weights.len() > 1000);
    }

    #[test]
    fn a_new_site_is_judged_by_the_regression_and_a_trusted_one_by_the_counts() {
        // The counts call feature 1 spam; the regression calls it ham.
        let mut counts = LearnedStats::new();
        for _ in 0..20 {
            counts.learn(&[1], Label::Spam, 1.0);
            counts.learn(&[2], Label::Ham, 1.0);
        }
        let prior = Prior {
            counts,
            logistic: Logistic {
                bias: 0.0,
                weights: [(1, -3.0)].into_iter().collect(),
            },
        };
        let (new_site, known) = probability(&prior, LearnedStats::empty(), &[1, 7]);
        assert!((new_site - sigmoid(-3.0)).abs() < 1e-9, "{new_site}");
        assert_eq!(known, 1);

        // Lessons of a site move the regression's verdict at once...
        let mut learned = LearnedStats::new();
        for _ in 0..3 {
            learned.learn(&[1], Label::Spam, 1.0);
            learned.learn(&[2], Label::Ham, 1.0);
        }
        let (taught, _) = probability(&prior, &learned, &[1, 7]);
        assert!(taught > new_site, "{taught} > {new_site}");
        // ...and once it has taught enough, its counts joined with the prior's decide.
        while f64::from(learned.spam + learned.ham) < JOINED_LESSONS {
            learned.learn(&[1], Label::Spam, 1.0);
            learned.learn(&[2], Label::Ham, 1.0);
        }
        let (trusted, _) = probability(&prior, &learned, &[1, 7]);
        assert!(trusted > 0.9, "{trusted}");
        let (docs, taught) = (20.0 * f64::from(PRIOR_SCALE), f64::from(learned.spam));
        let joined = combine(
            evidence(docs + taught, 0.0, (docs + taught, docs + taught))
                .into_iter()
                .collect(),
        );
        assert!(
            (trusted - joined).abs() < 1e-9,
            "{trusted} is the joined counts' {joined}"
        );
        assert_eq!(
            probability(&Prior::empty(), LearnedStats::empty(), &[1]),
            (0.5, 0)
        );
    }

    #[test]
    fn unsure_evidence_gives_no_weight_and_sure_evidence_holds() {
        for lessons in [0.0, 20.0, TRUSTED_LESSONS] {
            let hold = hold_at(lessons);
            assert_eq!(strength(0.5, lessons, 0.0), 0.0);
            assert!(strength(hold, lessons, 0.0) >= 1.0 - 1e-9);
            assert!(strength(hold - 0.01, lessons, 0.0) < 1.0);
            assert!(strength(0.8, lessons, 0.0) > strength(hold, lessons, 0.0));
            assert!(strength(0.95, lessons, 0.0) > strength(0.9, lessons, 0.0));
            assert!(strength(0.0, lessons, 0.0) >= -0.5);
        }
    }

    #[test]
    fn the_hold_point_moves_with_the_model_that_judges() {
        assert_eq!(hold_at(0.0), NEW_SITE_HOLD_AT);
        assert!((hold_at(JOINED_LESSONS / 2.0) - (NEW_SITE_HOLD_AT + HOLD_AT) / 2.0).abs() < 1e-9);
        assert_eq!(hold_at(JOINED_LESSONS), HOLD_AT);
        assert_eq!(hold_at(1_000.0), HOLD_AT);
        // 0.65 holds on a new site, not once the joined counts judge alone.
        assert!(strength(0.65, 0.0, 0.0) > 1.0);
        assert!(strength(0.65, JOINED_LESSONS, 0.0) < 1.0);
    }

    #[test]
    fn a_new_site_makes_a_sure_reply_spam_alone_only_when_the_prior_knows_its_kind() {
        // Every feature known: the regression's certainty is evidence, as a trusted site's.
        assert!((strength(SPAM_AT, 0.0, 1.0) - SPAM_WEIGHT).abs() < 1e-9);
        assert_eq!(strength(1.0, 0.0, 1.0), SPAM_WEIGHT);
        // Half familiar: a quarter of the way from 2.9 to the spam threshold.
        let half = strength(1.0, 0.0, 0.5);
        assert!(
            half > strength(1.0, 0.0, 0.0) && half < SPAM_WEIGHT,
            "{half}"
        );
        // Certain but with 24 of 33 features new, and two links (1.5): held, not spam.
        assert!(strength(0.99, 0.0, 10.0 / 24.0) + 1.5 < SPAM_WEIGHT);
        // Below 0.9 familiarity changes nothing: it holds as before.
        assert_eq!(strength(0.8, 0.0, 1.0), strength(0.8, 0.0, 0.0));
    }

    #[test]
    fn unfamiliar_text_is_not_read_as_spam_by_the_sum_of_small_weights() {
        // Every word leans a little towards spam, as common words of YouTube spam do.
        let common: Vec<u64> = (1..=20).collect();
        let prior = Prior {
            counts: LearnedStats::new(),
            logistic: Logistic {
                bias: 0.0,
                weights: common.iter().map(|&f| (f, 0.25)).collect(),
            },
        };
        // A short reply of known words: 20 × 0.25, sure spam, and every feature familiar.
        let familiar = read(
            &prior,
            LearnedStats::empty(),
            LearnedStats::empty(),
            &common,
        );
        assert!((familiar.p - sigmoid(5.0)).abs() < 1e-9, "{familiar:?}");
        assert_eq!((familiar.unfamiliar, familiar.familiarity()), (0, 1.0));
        // The same words in long prose with 90 more the prior never saw: their sum is
        // discounted by sqrt(10 / 90), 0.84 instead of 0.99: a hold at most, never spam.
        let prose: Vec<u64> = (1..=110).collect();
        let unfamiliar = read(&prior, LearnedStats::empty(), LearnedStats::empty(), &prose);
        assert_eq!(unfamiliar.unfamiliar, 90);
        assert!(
            (unfamiliar.p - sigmoid(5.0 * (10.0f64 / 90.0).sqrt())).abs() < 1e-9,
            "{unfamiliar:?}"
        );
        assert!(strength(unfamiliar.p, 0.0, unfamiliar.familiarity()) < 2.0);
        // A trusted site's joined counts do not read the regression at all.
        let mut learned = LearnedStats::new();
        learned.learn(&[500], Label::Ham, JOINED_LESSONS as f32);
        assert_eq!(read(&prior, &learned, LearnedStats::empty(), &prose).p, 0.5);
    }

    #[test]
    fn the_deployments_shared_lessons_move_a_new_sites_reading_and_vouch_for_what_they_know() {
        let prior = Prior::empty();
        // 30 features each, none of which the (empty) regression knows.
        let spam: Vec<u64> = (1..=30).collect();
        let ham: Vec<u64> = (101..=130).collect();
        let mut shared = LearnedStats::new();
        for _ in 0..30 {
            shared.learn(&spam, Label::Spam, MARK_WEIGHT);
            shared.learn(&ham, Label::Ham, MARK_WEIGHT);
        }
        let alone = read(&prior, LearnedStats::empty(), LearnedStats::empty(), &spam);
        assert_eq!((alone.p, alone.evidence()), (0.5, 1.0 / 3.0));
        let sure = read(&prior, LearnedStats::empty(), &shared, &spam);
        assert!(sure.p > 0.99, "{sure:?}");
        assert_eq!(sure.evidence(), 1.0, "60 shared lessons know every feature");
        assert_eq!(
            strength(sure.p, 0.0, sure.evidence()),
            SPAM_WEIGHT,
            "sure spam by the deployment's lessons is spam on a new site"
        );
        let fair = read(&prior, LearnedStats::empty(), &shared, &ham);
        assert!(fair.p < 0.01, "{fair:?}");
        // The same spam words in long prose the shared lessons never met count far less.
        let prose: Vec<u64> = (1..=30).chain(1_000..1_090).collect();
        let diluted = read(&prior, LearnedStats::empty(), &shared, &prose);
        assert!(diluted.p < sure.p, "{diluted:?}");
        assert!(
            strength(diluted.p, 0.0, diluted.evidence()) < 3.0,
            "{diluted:?}"
        );
        // Few shared lessons vouch for little.
        let mut few = LearnedStats::new();
        few.learn(&spam, Label::Spam, MARK_WEIGHT);
        few.learn(&ham, Label::Ham, MARK_WEIGHT);
        let thin = read(&prior, LearnedStats::empty(), &few, &spam);
        assert_eq!(thin.evidence(), 1.0 / 3.0, "{thin:?}");
        assert!(strength(thin.p, 0.0, thin.evidence()) < SPAM_WEIGHT);
    }

    #[test]
    fn only_a_trusted_site_makes_an_unfamiliar_sure_reply_spam_on_the_classifier_alone() {
        assert!(
            strength(1.0, 0.0, 0.0) < 3.0,
            "a new site needs more than 2 from other rules"
        );
        assert!(strength(1.0, TRUSTED_LESSONS / 2.0, 0.0) < SPAM_WEIGHT);
        assert!((strength(SPAM_AT, TRUSTED_LESSONS, 0.0) - SPAM_WEIGHT).abs() < 1e-9);
        assert_eq!(strength(1.0, 1_000.0, 0.0), SPAM_WEIGHT);
        assert!(strength(0.95, TRUSTED_LESSONS, 0.0) < SPAM_WEIGHT);
        assert!((strength(0.9, TRUSTED_LESSONS, 0.0) - 2.0).abs() < 1e-9);
    }
}
