//! `replyguard seed`: fills a site with generated replies, for measuring the
//! service at the size of a real deployment (a million replies and more).
//!
//! Each reply is made the way a submitted one is: validated from raw text,
//! its email sealed and hashed with the deployment's real keys (so no email
//! is ever stored in clear), its text masked, rendered, fingerprinted and
//! assessed by the real rules, and placed in its thread as the submit
//! pipeline places it. Only the inserting differs: many rows per statement
//! and thousands per transaction, through [`store::Comments::seed_comments`], each
//! with its `submit` audit row noted `seeded`. It must never run against a
//! site whose readers are real: it adds replies, it does not replace any.

use std::time::Instant;

use chrono::{DateTime, Duration, SubsecRound, Utc};
use clap::Args;
use indicatif::{ProgressBar, ProgressStyle};
use tokio::sync::mpsc;
use uuid::{NoContext, Timestamp, Uuid};

use crate::{
    config::{DEFAULT_RETAIN_CLIENT_DAYS, DatabaseArgs, SecretKeyArgs},
    domain::CommentStatus,
    domain::{RawReply, validate},
    ids::{CommentId, SiteId},
    privacy::{Vault, mask_contacts},
    spam::{self, Assessor, Facts, Policy},
    store::{self, OPERATOR_ACTOR, Store, StoredComment},
    submission::{MAX_DEPTH, Place, stored_reply},
};

/// The settings of `replyguard seed`.
#[derive(Args, Clone, Debug)]
pub struct SeedArgs {
    /// The site to fill, created before with `replyguard site add`.
    #[arg(long)]
    pub site: String,
    /// How many replies to add.
    #[arg(long, default_value_t = 1_000_000)]
    pub replies: u64,
    /// Over how many articles; by default one per 40 replies.
    #[arg(long)]
    pub articles: Option<u64>,
    /// How many replies the hot article (`seed/hot`) gets; by default a
    /// tenth of them. Nine warm articles share another twentieth.
    #[arg(long)]
    pub hot_replies: Option<u64>,
    /// The replies arrived over this many days, up to now.
    #[arg(long, default_value_t = 365)]
    pub days: u32,
    /// Seeds the generator: the same number gives the same texts, authors,
    /// articles, threads and statuses (ids and sealed emails still differ).
    #[arg(long, default_value_t = 1)]
    pub random_seed: u64,
    /// Replies per transaction.
    #[arg(long, default_value_t = 10_000, value_parser = clap::value_parser!(u64).range(1..=1_000_000))]
    pub batch: u64,
    #[command(flatten)]
    pub database: DatabaseArgs,
    /// The deployment's key, so that the server can open the sealed emails.
    #[command(flatten)]
    pub key: SecretKeyArgs,
}

/// The article that gets the largest thread.
pub const HOT_ARTICLE: &str = "seed/hot";
/// How many articles after the hot one get a larger share.
const WARM_ARTICLES: u64 = 9;
/// The share of replies the warm articles get together.
const WARM_SHARE: f64 = 0.05;
/// The share of replies that answer an earlier one.
const REPLY_SHARE: f64 = 0.55;
/// How many recent approved comments of an article a new reply may answer.
const RECENT_PARENTS: usize = 32;

/// What a run added.
#[derive(Debug, Default)]
pub struct SeedReport {
    pub replies: u64,
    pub approved: u64,
    pub pending: u64,
    pub spam: u64,
    pub rejected: u64,
    pub hot_article_replies: u64,
    pub seconds: f64,
}

impl SeedReport {
    fn count(&mut self, comment: &StoredComment) {
        self.replies += 1;
        match comment.status {
            CommentStatus::Approved => self.approved += 1,
            CommentStatus::Pending => self.pending += 1,
            CommentStatus::Spam => self.spam += 1,
            CommentStatus::Rejected => self.rejected += 1,
        }
        if comment.article == HOT_ARTICLE {
            self.hot_article_replies += 1;
        }
    }
}

/// Fills the site; returns what was added.
pub async fn run(args: &SeedArgs) -> Result<SeedReport, String> {
    let (store, vault, site) = super::open_site(&args.database, &args.key, &args.site).await?;
    let plan = Plan::new(args, store::now());
    let mut generator = Generator::new(plan, site.id, site.name.clone(), site.policy, vault);

    let bar = ProgressBar::new(args.replies);
    if let Ok(style) = ProgressStyle::with_template(
        "{elapsed_precise} [{wide_bar}] {human_pos}/{human_len} replies, {per_sec}, {eta} left",
    ) {
        bar.set_style(style);
    }
    let started = Instant::now();
    // Made on a thread of their own while the previous batch is written.
    let (batches, mut ready) = mpsc::channel::<Result<Vec<StoredComment>, String>>(2);
    let batch = usize::try_from(args.batch).unwrap_or(usize::MAX);
    let making = tokio::task::spawn_blocking(move || {
        while let Some(next) = generator.batch(batch).transpose() {
            if batches.blocking_send(next).is_err() {
                break;
            }
        }
    });
    let mut report = SeedReport::default();
    let written = write(store.as_ref(), &mut ready, &mut report, &bar).await;
    drop(ready);
    let _ = making.await;
    bar.finish_and_clear();
    report.seconds = started.elapsed().as_secs_f64();
    written.map(|()| report)
}

async fn write(
    store: &dyn Store,
    ready: &mut mpsc::Receiver<Result<Vec<StoredComment>, String>>,
    report: &mut SeedReport,
    bar: &ProgressBar,
) -> Result<(), String> {
    while let Some(batch) = ready.recv().await {
        let batch = batch?;
        store
            .seed_comments(&batch, OPERATOR_ACTOR)
            .await
            .map_err(|e| format!("after {} replies: {e}", report.replies))?;
        for comment in &batch {
            report.count(comment);
        }
        bar.inc(batch.len() as u64);
    }
    Ok(())
}

/// How the replies are spread.
#[derive(Clone, Debug)]
struct Plan {
    replies: u64,
    articles: u64,
    hot_share: f64,
    start: DateTime<Utc>,
    now: DateTime<Utc>,
    /// Replies newer than this keep their client details; older ones have
    /// had them dropped by the retention sweep.
    client_details_since: DateTime<Utc>,
    random_seed: u64,
}

impl Plan {
    fn new(args: &SeedArgs, now: DateTime<Utc>) -> Plan {
        let replies = args.replies;
        let articles = args.articles.unwrap_or(replies / 40).max(1);
        let hot = args.hot_replies.unwrap_or(replies / 10).min(replies);
        Plan {
            replies,
            articles,
            hot_share: if replies == 0 {
                0.0
            } else {
                hot as f64 / replies as f64
            },
            start: now - Duration::days(i64::from(args.days)),
            now,
            client_details_since: now - Duration::days(i64::from(DEFAULT_RETAIN_CLIENT_DAYS)),
            random_seed: args.random_seed,
        }
    }
}

/// SplitMix64: small, fast and reproducible from one seed.
struct Random(u64);

impl Random {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    /// A number in `0..n`; 0 when `n` is 0.
    fn below(&mut self, n: u64) -> u64 {
        if n == 0 { 0 } else { self.next() % n }
    }

    /// A number in `[0, 1)`.
    fn unit(&mut self) -> f64 {
        (self.next() >> 11) as f64 / (1u64 << 53) as f64
    }

    fn pick<'a>(&mut self, words: &[&'a str]) -> &'a str {
        words[self.below(words.len() as u64) as usize]
    }
}

struct Generator {
    plan: Plan,
    site: SiteId,
    site_name: String,
    policy: Policy,
    vault: Vault,
    assessor: Assessor,
    random: Random,
    made: u64,
    /// Per article, its latest approved comments.
    parents: Vec<Vec<Place>>,
}

impl Generator {
    fn new(plan: Plan, site: SiteId, site_name: String, policy: Policy, vault: Vault) -> Generator {
        let random = Random(plan.random_seed);
        let articles = usize::try_from(plan.articles).unwrap_or(usize::MAX);
        Generator {
            parents: vec![Vec::new(); articles.min(1 << 24)],
            plan,
            site,
            site_name,
            policy,
            vault,
            assessor: Assessor::default(),
            random,
            made: 0,
        }
    }

    /// The next `size` replies, oldest first; `None` when all are made.
    fn batch(&mut self, size: usize) -> Result<Option<Vec<StoredComment>>, String> {
        let left = self.plan.replies - self.made;
        if left == 0 {
            return Ok(None);
        }
        let size = left.min(size as u64) as usize;
        let mut batch = Vec::with_capacity(size);
        for _ in 0..size {
            batch.push(self.reply()?);
        }
        Ok(Some(batch))
    }

    fn article(&mut self) -> u64 {
        let r = self.random.unit();
        let articles = self.plan.articles;
        if r < self.plan.hot_share || articles == 1 {
            0
        } else if r < self.plan.hot_share + WARM_SHARE || articles <= 1 + WARM_ARTICLES {
            1 + self.random.below(WARM_ARTICLES.min(articles - 1))
        } else {
            1 + WARM_ARTICLES + self.random.below(articles - 1 - WARM_ARTICLES)
        }
    }

    /// Most replies are decided; the newest are still waiting, as in a queue
    /// that moderators keep up with, with a small backlog of older ones.
    fn status(&mut self, age_share: f64) -> CommentStatus {
        let r = self.random.unit();
        let (pending, spam, rejected) = if age_share > 0.98 {
            (0.50, 0.05, 0.0)
        } else {
            (0.02, 0.06, 0.04)
        };
        if r < pending {
            CommentStatus::Pending
        } else if r < pending + spam {
            CommentStatus::Spam
        } else if r < pending + spam + rejected {
            CommentStatus::Rejected
        } else {
            CommentStatus::Approved
        }
    }

    fn reply(&mut self) -> Result<StoredComment, String> {
        let n = self.made;
        self.made += 1;
        let share = n as f64 / self.plan.replies as f64;
        let span = (self.plan.now - self.plan.start)
            .num_microseconds()
            .unwrap_or(i64::MAX);
        let step = span as f64 / self.plan.replies as f64;
        let offset = (share * span as f64 + self.random.unit() * step * 0.5) as i64;
        let created = (self.plan.start + Duration::microseconds(offset)).trunc_subsecs(6);
        let id = CommentId(uuid_at(created));

        let article_index = self.article();
        let article = match article_index {
            0 => HOT_ARTICLE.to_owned(),
            n => format!("seed/article-{n}"),
        };
        let status = self.status(share);
        let parent = self.parent(article_index);
        let place = Place::new(id, parent.as_ref());

        let author = self.author();
        let body = self.body(status);
        let recent = created >= self.plan.client_details_since;
        let ip = recent.then(|| author.ip.clone());
        let user_agent = recent.then(|| self.random.pick(USER_AGENTS).to_owned());
        let referrer = format!("https://{}/{article}", self.site_name);
        let parent_text = parent
            .as_ref()
            .map(|p| p.id.0.to_string())
            .unwrap_or_default();
        let raw = RawReply {
            article: &article,
            parent_id: &parent_text,
            author_name: &author.name,
            author_email: &author.email,
            author_website: author.website.as_deref().unwrap_or_default(),
            body: &body,
            ip: ip.as_deref().unwrap_or_default(),
            user_agent: user_agent.as_deref().unwrap_or_default(),
            referrer: if recent { &referrer } else { "" },
            form_token: "",
            honeypot: "",
            idempotency_key: "",
            reader_id: "",
        };
        let reply = validate(&raw).map_err(|violations| {
            let fields: Vec<&str> = violations.iter().map(|v| v.field).collect();
            format!("a generated reply is invalid ({})", fields.join(", "))
        })?;
        let email = reply.email.normalized();
        let author_hash = self.vault.author_hash(self.site, &email);
        let facts = Facts {
            author: Some(author_hash),
            ..Facts::default()
        };
        let text = spam::Analysis::of(&reply);
        let assessment = self
            .assessor
            .assess_analysed(&reply, &text, &self.policy, &facts);
        let mut comment = stored_reply(
            &self.vault,
            self.site,
            &reply,
            mask_contacts(reply.body.as_str()),
            &author_hash,
            place,
            text,
            assessment,
            status,
            created,
        );
        // A moderator decided these a while after they came.
        if status == CommentStatus::Rejected {
            let later = created + Duration::minutes(1 + self.random.below(600) as i64);
            comment.updated_at = later.min(self.plan.now);
        }
        if status == CommentStatus::Approved {
            self.remember(article_index, &comment);
        }
        Ok(comment)
    }

    /// An approved comment of the article to answer, or none for a new thread.
    fn parent(&mut self, article: u64) -> Option<Place> {
        let candidates = self.parents.get(article as usize)?;
        if candidates.is_empty() || self.random.unit() >= REPLY_SHARE {
            return None;
        }
        let pick = &candidates[self.random.below(candidates.len() as u64) as usize];
        (pick.depth < MAX_DEPTH).then(|| pick.clone())
    }

    fn remember(&mut self, article: u64, comment: &StoredComment) {
        let Some(recent) = self.parents.get_mut(article as usize) else {
            return;
        };
        if recent.len() == RECENT_PARENTS {
            recent.remove(0);
        }
        recent.push(Place::of(comment));
    }

    /// One of many readers; a few write much more often than most.
    fn author(&mut self) -> Author {
        let readers = (self.plan.replies / 5).max(1);
        let u = self.random.unit();
        let n = ((u * u * u) * readers as f64) as u64;
        let first = FIRST_NAMES[(n % FIRST_NAMES.len() as u64) as usize];
        let last = LAST_NAMES[((n / 7) % LAST_NAMES.len() as u64) as usize];
        let domain = DOMAINS[((n / 3) % DOMAINS.len() as u64) as usize];
        Author {
            name: format!("{first} {last}"),
            email: format!(
                "{}.{}{n}@{domain}",
                first.to_lowercase(),
                last.to_lowercase()
            ),
            website: n
                .is_multiple_of(10)
                .then(|| format!("https://{}{n}.example.org/", last.to_lowercase())),
            ip: match n % 3 {
                0 => format!("192.0.2.{}", n % 256),
                1 => format!("198.51.100.{}", n % 256),
                _ => format!("2001:db8:{:x}::{:x}", (n >> 16) & 0xffff, n & 0xffff),
            },
        }
    }

    fn body(&mut self, status: CommentStatus) -> String {
        let words = 8 + self.random.below(55);
        let mut body = String::with_capacity(words as usize * 8);
        let vocabulary = if status == CommentStatus::Spam {
            SPAM_WORDS
        } else {
            WORDS
        };
        for i in 0..words {
            let word = self.random.pick(vocabulary);
            if i == 0 {
                let mut chars = word.chars();
                if let Some(first) = chars.next() {
                    body.extend(first.to_uppercase());
                    body.push_str(chars.as_str());
                }
            } else {
                if i % 11 == 0 {
                    body.push('.');
                }
                body.push(' ');
                body.push_str(word);
            }
        }
        body.push('.');
        // Links as readers post them: pending replies were held for two,
        // spam carries three.
        let links = match status {
            CommentStatus::Pending => 2,
            CommentStatus::Spam => 3,
            _ => u64::from(self.random.below(10) == 0),
        };
        for _ in 0..links {
            let word = self.random.pick(WORDS);
            if status == CommentStatus::Spam {
                body.push_str(&format!(" https://cheap-{word}.example/offer"));
            } else {
                body.push_str(&format!(
                    " https://example.org/{word}/{}",
                    self.random.below(1000)
                ));
            }
        }
        body
    }
}

struct Author {
    name: String,
    email: String,
    website: Option<String>,
    ip: String,
}

/// A UUIDv7 for a reply received at `at`: ids sort by time, as real ones do.
fn uuid_at(at: DateTime<Utc>) -> Uuid {
    let seconds = u64::try_from(at.timestamp()).unwrap_or(0);
    Uuid::new_v7(Timestamp::from_unix(
        NoContext,
        seconds,
        at.timestamp_subsec_nanos(),
    ))
}

/// Ordinary words of replies to local news, for generated texts here and in `replyguard bench`.
pub(crate) const WORDS: &[&str] = &[
    "the",
    "council",
    "budget",
    "school",
    "really",
    "think",
    "article",
    "point",
    "because",
    "would",
    "people",
    "missing",
    "data",
    "agree",
    "story",
    "about",
    "river",
    "bridge",
    "years",
    "vote",
    "should",
    "reporting",
    "local",
    "thanks",
    "clear",
    "question",
    "housing",
    "rent",
    "traffic",
    "parking",
    "library",
    "teachers",
    "funding",
    "mayor",
    "election",
    "weather",
    "flooding",
    "summer",
    "winter",
    "prices",
    "market",
    "neighbours",
    "street",
    "park",
    "trees",
    "plan",
    "cost",
    "money",
    "taxes",
    "history",
    "museum",
    "football",
    "match",
    "season",
    "coach",
    "interesting",
    "wrong",
    "right",
    "never",
    "always",
    "maybe",
    "perhaps",
    "honestly",
];

const SPAM_WORDS: &[&str] = &[
    "cheap",
    "pills",
    "casino",
    "bonus",
    "free",
    "offer",
    "click",
    "now",
    "winner",
    "crypto",
    "investment",
    "guaranteed",
    "profit",
    "loans",
    "discount",
    "viagra",
    "limited",
    "deal",
    "best",
    "price",
    "visit",
    "website",
    "earn",
    "money",
    "fast",
    "online",
];

const FIRST_NAMES: &[&str] = &[
    "Jane", "John", "Maria", "Ahmed", "Li", "Olga", "Pierre", "Aisha", "Kenji", "Sofia", "Lucas",
    "Emma", "Noah", "Mia", "Ivan", "Priya", "Tom", "Anna", "Omar", "Chloe", "Ravi", "Hannah",
];

const LAST_NAMES: &[&str] = &[
    "Reader", "Smith", "Garcia", "Khan", "Wang", "Ivanova", "Dubois", "Bello", "Sato", "Rossi",
    "Silva", "Brown", "Jones", "Müller", "Novak", "Patel", "Kowalski", "Jensen", "Haddad",
];

const DOMAINS: &[&str] = &[
    "example.com",
    "example.org",
    "example.net",
    "mail.example.com",
    "post.example.org",
];

const USER_AGENTS: &[&str] = &[
    "Mozilla/5.0 (X11; Linux x86_64; rv:133.0) Gecko/20100101 Firefox/133.0",
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0 Safari/537.36",
    "Mozilla/5.0 (iPhone; CPU iPhone OS 18_1 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/18.1 Mobile/15E148 Safari/604.1",
    "Mozilla/5.0 (Macintosh; Intel Mac OS X 14_7) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/18.1 Safari/605.1.15",
];

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_same_seed_gives_the_same_numbers() {
        let (mut a, mut b) = (Random(7), Random(7));
        for _ in 0..100 {
            assert_eq!(a.next(), b.next());
        }
        assert_eq!(Random(1).below(0), 0);
    }

    #[test]
    fn ids_follow_the_time_they_are_made_for() {
        let early = Utc::now() - Duration::days(300);
        let late = early + Duration::milliseconds(2);
        assert!(uuid_at(early) < uuid_at(late));
        let (seconds, _) = uuid_at(early).get_timestamp().expect("a v7 id").to_unix();
        assert_eq!(i64::try_from(seconds).ok(), Some(early.timestamp()));
    }
}
