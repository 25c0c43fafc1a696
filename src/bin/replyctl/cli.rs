//! The command line: every command, flag and value `replyctl` accepts.
//!
//! This is the contract of SPEC.md ("Binaries" → `replyctl`); names here are
//! fixed. It only describes and checks arguments: it never talks to the server.

use std::fmt;

use clap::{Args, Parser, Subcommand, ValueEnum};
use replyguard::{
    proto::{self, CommentStatus, ModerationAction},
    tls::ClientTls,
};

/// The moderators' client of replyguard: work the moderation queues, decide on
/// replies, tune a site's spam policy.
#[derive(Debug, Parser)]
#[command(name = "replyctl", version)]
pub struct Cli {
    #[command(flatten)]
    pub global: GlobalArgs,

    #[command(subcommand)]
    pub command: Command,
}

/// Flags every command takes.
#[derive(Debug, Args)]
#[command(next_help_heading = "Global options")]
pub struct GlobalArgs {
    /// The replyguard server, an http:// or https:// URL.
    #[arg(
        long,
        global = true,
        env = "REPLYGUARD_ENDPOINT",
        hide_env_values = true,
        value_name = "URL",
        default_value = "http://127.0.0.1:50051",
        value_parser = parse_endpoint
    )]
    pub endpoint: String,

    /// A moderator token (rg_mod_…) or, for `submit` and `comments`, a site key
    /// (rg_site_…).
    // The value must never show up in help, errors or debug output.
    #[arg(
        long,
        global = true,
        env = "REPLYGUARD_TOKEN",
        hide_env_values = true,
        value_name = "TOKEN"
    )]
    pub token: Option<Token>,

    /// How to print results [default: table on a terminal, json otherwise].
    #[arg(long, global = true, value_enum, value_name = "FORMAT")]
    pub output: Option<OutputFormat>,

    #[command(flatten)]
    pub tls: ClientTls,
}

/// What `replyctl` can do.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// List one moderation queue of a site, oldest first.
    Queue(QueueArgs),
    /// Show one comment with its spam reasons and moderation history.
    Show {
        /// The comment's id.
        id: String,
    },
    /// Make comments public.
    Approve(DecisionArgs),
    /// Refuse comments without calling them spam.
    Reject(DecisionArgs),
    /// Call comments spam; teaches the site's spam filter.
    Spam(DecisionArgs),
    /// Call comments not spam and approve them; teaches the spam filter.
    Ham(DecisionArgs),
    /// Remove comments for good.
    Delete(DecisionArgs),
    /// Go through pending replies one at a time and decide each with a key.
    Review(SiteArg),
    /// Print new replies that need a moderator as they arrive, until Ctrl-C.
    Watch(SiteArg),
    /// Show or change a site's moderation policy.
    #[command(subcommand)]
    Policy(PolicyCommand),
    /// Erase or anonymise every comment and personal datum of one author
    /// (needs the `erase` scope).
    Erase(EraseArgs),
    /// Print every comment and personal datum of one author as JSON, for a
    /// data access request (needs the `erase` scope).
    Export(ExportArgs),
    /// Print the email of one comment's author in clear (needs the
    /// `reveal-email` scope); the reason goes to the audit log.
    Reveal(RevealArgs),
    /// Add an author, an IP address or a domain to a site's blocklist.
    #[command(subcommand)]
    Block(BlockCommand),
    /// List a site's blocklist, by kind and then value.
    Blocks(SiteArg),
    /// Take one entry off a site's blocklist, as `blocks` lists it.
    Unblock(UnblockArgs),
    /// Close an article to new replies, now or from a time on; its comments stay as they are.
    Close(CloseArgs),
    /// Open a closed article to new replies again.
    Reopen(ArticleArgs),
    /// List a site's closed articles.
    Closed(SiteArg),
    /// List a site's comments readers reported, with how many did and why; a decision on a
    /// comment (approve, reject, ...) clears its reports.
    Reports(SiteArg),
    /// List a site's audit log, newest first: decisions, reveals, erasures,
    /// exports, blocks, closed articles, expiries, deleted spam and token changes.
    Audit(AuditArgs),
    /// Submit a reply as an article host would (needs a site key).
    Submit(SubmitArgs),
    /// List the approved comments of an article, threaded (needs a site key).
    Comments(CommentsArgs),
    /// Send a site's moderation events to an HTTPS endpoint (needs the `integrations` scope).
    #[command(subcommand)]
    Webhook(WebhookCommand),
    /// Mail an address when a site's replies are held (needs the `integrations` scope).
    #[command(subcommand)]
    Notify(NotifyCommand),
    /// Print a completion script for a shell: `replyctl completions zsh > ~/.zfunc/_replyctl`.
    Completions {
        #[arg(value_enum)]
        shell: replyguard::tools::shell::Shell,
    },
    /// Print the manual page (roff): `replyctl man > replyctl.1`.
    Man,
}

/// `replyctl webhook …`.
#[derive(Debug, Subcommand)]
pub enum WebhookCommand {
    /// Add an endpoint; prints its id and its signing secret, once.
    Add {
        /// Where to send the events: https://…
        url: String,
        /// The events, comma-separated: comment.held, comment.spam, comment.approved,
        /// comment.rejected, comment.erased, article.closed, article.reopened.
        #[arg(long, value_name = "EVENTS", required = true)]
        events: String,
        /// Who owns the receiver, or what it is for.
        #[arg(long, value_name = "TEXT")]
        note: Option<String>,
        /// `slack` sends a Slack incoming webhook's short text instead of the JSON event.
        #[arg(long, value_enum, default_value_t = WebhookFormatArg::Standard)]
        format: WebhookFormatArg,
        #[command(flatten)]
        site: SiteArg,
    },
    /// List the site's endpoints.
    List(SiteArg),
    /// Remove an endpoint, and what is left to send it.
    Remove {
        /// The endpoint's id, as `webhook list` shows it.
        id: String,
        #[command(flatten)]
        site: SiteArg,
    },
    /// List deliveries, newest first.
    Deliveries {
        /// Only one endpoint's.
        #[arg(long, value_name = "ID")]
        webhook: Option<String>,
        /// Only those that failed.
        #[arg(long)]
        failed: bool,
        #[command(flatten)]
        site: SiteArg,
    },
    /// Send a delivery again.
    Redeliver {
        /// The delivery's id, as `webhook deliveries` shows it.
        id: String,
        #[command(flatten)]
        site: SiteArg,
    },
}

/// `replyctl notify …`.
#[derive(Debug, Subcommand)]
pub enum NotifyCommand {
    /// Mail an address each held reply (or a digest of them), with what it takes to decide.
    Add {
        /// The address to mail; stored sealed and shown masked from then on.
        #[arg(long, value_name = "ADDRESS")]
        email: String,
        /// The events, comma-separated: comment.held, comment.spam.
        #[arg(long, value_name = "EVENTS", default_value = "comment.held")]
        events: String,
        /// Gather the replies of this many minutes (1 to 1440) into one mail.
        #[arg(long, value_name = "MINUTES", value_parser = clap::value_parser!(u32).range(1..=1440))]
        digest: Option<u32>,
        #[command(flatten)]
        site: SiteArg,
    },
    /// List the site's notices, their addresses masked.
    List(SiteArg),
    /// Stop a notice's mails.
    Remove {
        /// The notice's id, as `notify list` shows it.
        id: String,
        #[command(flatten)]
        site: SiteArg,
    },
    /// Set the host's pages that readers' mails link to, each URL holding {token}.
    Pages {
        /// Where a reader confirms their address; the page calls ConfirmEmail.
        #[arg(long, value_name = "URL")]
        confirm: String,
        /// Where a reader stops answer mails; the page calls Unsubscribe.
        #[arg(long, value_name = "URL")]
        unsubscribe: String,
        #[command(flatten)]
        site: SiteArg,
    },
}

/// `--format` of `webhook add`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum WebhookFormatArg {
    Standard,
    Slack,
}

/// `--site` for commands whose request names a site.
#[derive(Debug, Args)]
pub struct SiteArg {
    /// The site, such as news.example.com; may be left out when the token
    /// covers one site.
    #[arg(long, value_name = "SITE")]
    pub site: Option<String>,
}

impl SiteArg {
    /// The request's `site` field: empty lets the server pick the token's site.
    pub fn name(&self) -> String {
        self.site.clone().unwrap_or_default()
    }
}

/// Arguments of `queue`.
#[derive(Debug, Args)]
pub struct QueueArgs {
    #[command(flatten)]
    pub site: SiteArg,

    /// Which queue to list.
    #[arg(long, value_enum, default_value_t = StatusArg::Pending)]
    pub status: StatusArg,

    /// Only replies to this article.
    #[arg(long, value_name = "ARTICLE")]
    pub article: Option<String>,

    /// Stop after this many items.
    #[arg(long, value_name = "N", default_value_t = 50, value_parser = clap::value_parser!(u32).range(1..))]
    pub limit: u32,
}

/// Arguments of `approve`, `reject`, `spam`, `ham` and `delete`.
#[derive(Debug, Args)]
#[command(after_help = SELECTION_HELP)]
pub struct DecisionArgs {
    /// The comments' ids; `-` reads them from stdin, one or more per line.
    #[arg(value_name = "ID")]
    pub ids: Vec<String>,

    /// A note for the audit log.
    #[arg(long, value_name = "TEXT")]
    pub note: Option<String>,

    /// Leave alone any comment whose state is no longer this, so two
    /// moderators never overwrite each other.
    #[arg(long, value_enum, value_name = "STATUS")]
    pub expect: Option<StatusArg>,

    #[command(flatten)]
    pub select: Selection,

    /// Print what would change, and change nothing.
    #[arg(long)]
    pub dry_run: bool,
}

const SELECTION_HELP: &str = "\
Instead of ids, a filter selects every matching comment of one queue, e.g.
  replyctl reject --author-hash 3f9a...            all pending replies of one author
  replyctl spam --link-domain cheap-pills.example  every pending reply linking there
  replyctl delete --status spam --older-than 30d   old spam, for good
A selected comment is decided only if it is still in that queue.";

/// Which comments a filter selects, when no ids are given.
#[derive(Debug, Args)]
pub struct Selection {
    #[command(flatten)]
    pub site: SiteArg,

    /// The queue to select from.
    #[arg(long, value_enum, value_name = "STATUS")]
    pub status: Option<StatusArg>,

    /// Only this article.
    #[arg(long, value_name = "ARTICLE")]
    pub article: Option<String>,

    /// Only this author (the keyed hash shown by `show` and `queue --output json`).
    #[arg(long, value_name = "HASH")]
    pub author_hash: Option<String>,

    /// Only readers whose IP starts with this (`203.0.113.` or `2001:db8:`).
    #[arg(long, value_name = "PREFIX")]
    pub ip_prefix: Option<String>,

    /// Only replies linking to this domain or its subdomains.
    #[arg(long, value_name = "DOMAIN")]
    pub link_domain: Option<String>,

    /// Only replies older than this: `90s`, `45m`, `12h`, `30d`.
    #[arg(long, value_name = "AGE", value_parser = parse_age)]
    pub older_than: Option<std::time::Duration>,
}

impl Selection {
    /// Whether any filter was given.
    pub fn is_set(&self) -> bool {
        self.status.is_some()
            || self.article.is_some()
            || self.author_hash.is_some()
            || self.ip_prefix.is_some()
            || self.link_domain.is_some()
            || self.older_than.is_some()
    }
}

/// `90s`, `45m`, `12h` or `30d`.
fn parse_age(text: &str) -> Result<std::time::Duration, String> {
    let text = text.trim();
    let split = text.len().saturating_sub(1);
    let (number, unit) = text.split_at(split);
    let seconds = match unit {
        "s" => 1,
        "m" => 60,
        "h" => 3600,
        "d" => 86_400,
        _ => return Err("expected a number and a unit: 90s, 45m, 12h or 30d".to_owned()),
    };
    number
        .parse::<u64>()
        .ok()
        .and_then(|n| n.checked_mul(seconds))
        .map(std::time::Duration::from_secs)
        .ok_or_else(|| "expected a whole number before the unit, as in 30d".to_owned())
}

/// `policy show` and `policy set`.
#[derive(Debug, Subcommand)]
pub enum PolicyCommand {
    /// Print a site's moderation policy.
    Show(SiteArg),
    /// Change one setting of a site's moderation policy.
    Set(PolicySetArgs),
    /// Show what one changed setting would do: the site's recent replies replayed under it and
    /// under the policy in force, and how many would move from one status to another. Changes
    /// nothing.
    Try(PolicyTryArgs),
}

/// Arguments of `policy try`.
#[derive(Debug, Args)]
#[command(after_help = "Examples:
  replyctl policy try max-links 3
  replyctl policy try hold-threshold 2 --days 30
  replyctl policy try rule.classifier log-only
Each reply is assessed again with this release's rules; what only its moment knew (its form,
flood, the author's and address's history, the blocklist, near-duplicates, the classifier's
counts) is kept from when it came in. `policy set --help` lists the keys.")]
pub struct PolicyTryArgs {
    #[command(flatten)]
    pub change: PolicySetArgs,

    /// How many days back to replay, from now (1 to 365).
    #[arg(long, value_name = "N", default_value_t = 7, value_parser = clap::value_parser!(u32).range(1..=365))]
    pub days: u32,
}

/// Arguments of `policy set`.
#[derive(Debug, Args)]
#[command(after_help = POLICY_VALUES_HELP)]
pub struct PolicySetArgs {
    #[command(flatten)]
    pub site: SiteArg,

    /// The setting to change (listed below).
    #[arg(value_parser = parse_policy_key)]
    pub key: PolicyKey,

    /// Its new value.
    // Any string, checked against the key by `PolicySetArgs::update`, since
    // what is valid depends on the key; hyphen values let `-1` reach that check.
    #[arg(allow_hyphen_values = true)]
    pub value: String,
}

const POLICY_VALUES_HELP: &str = "\
Keys and values:
  mode                    moderate-all, auto or trusted-only
  hold-threshold          a score (a number): at or above it a reply waits for a moderator
  spam-threshold          a score (a number): at or above it a reply is spam
  max-links               a whole number: this many links or more hold a reply
  flood-interval-seconds  seconds an author or IP must wait between two replies
  min-form-seconds        seconds a reader must at least spend on the form
  require-form-token      true or false
  hold-new-authors        a whole number: hold an author's replies until this many were
                          approved (0: off)
  report-hold             a whole number: an approved reply this many readers reported waits
                          for a moderator again (0: off)
  edit-window-seconds     seconds after a reply came in in which its author may edit it
                          (EditComment; 0: off)
  close-after-days        a whole number: articles close this many days after their publication
                          (as the host says) or else their first reply (0: off)
  auto-block-spam         a whole number: block an address for auto-block-hours once this many of
                          its replies within auto-block-window-minutes are spam (0: off)
  auto-block-window-minutes
                          minutes over which an address's spam replies are counted (60)
  auto-block-hours        hours an automatic block lasts (24)
  blocked-terms           comma-separated terms that make a reply spam
  moderation-terms        comma-separated terms that hold a reply
  blocked-ips             comma-separated addresses and ranges (192.0.2.0/24) whose replies are spam
  blocked-email-domains   comma-separated email domains whose authors' replies are spam
  blocked-websites        comma-separated domains that make a reply spam as its website or a link
  allowed-scripts         comma-separated scripts readers write in (latin, cyrillic, ...)
  rule.NAME               one rule (`policy show` lists them): off, on or log-only; a weight
                          such as 2.5; both, as on:2.5; or default
A list value replaces the whole list; \"\" clears it.";

/// The settings `policy set` can change, named as in SPEC.md.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum PolicyKey {
    Mode,
    HoldThreshold,
    SpamThreshold,
    MaxLinks,
    FloodIntervalSeconds,
    MinFormSeconds,
    RequireFormToken,
    HoldNewAuthors,
    ReportHold,
    EditWindowSeconds,
    CloseAfterDays,
    AutoBlockSpam,
    AutoBlockWindowMinutes,
    AutoBlockHours,
    BlockedTerms,
    ModerationTerms,
    BlockedIps,
    BlockedEmailDomains,
    BlockedWebsites,
    AllowedScripts,
    /// `rule.NAME`: the state and weight of one rule.
    Rule(String),
}

/// Every key but `rule.NAME`, with its name on the command line.
const POLICY_KEYS: [(&str, PolicyKey); 20] = [
    ("mode", PolicyKey::Mode),
    ("hold-threshold", PolicyKey::HoldThreshold),
    ("spam-threshold", PolicyKey::SpamThreshold),
    ("max-links", PolicyKey::MaxLinks),
    ("flood-interval-seconds", PolicyKey::FloodIntervalSeconds),
    ("min-form-seconds", PolicyKey::MinFormSeconds),
    ("require-form-token", PolicyKey::RequireFormToken),
    ("hold-new-authors", PolicyKey::HoldNewAuthors),
    ("report-hold", PolicyKey::ReportHold),
    ("edit-window-seconds", PolicyKey::EditWindowSeconds),
    ("close-after-days", PolicyKey::CloseAfterDays),
    ("auto-block-spam", PolicyKey::AutoBlockSpam),
    (
        "auto-block-window-minutes",
        PolicyKey::AutoBlockWindowMinutes,
    ),
    ("auto-block-hours", PolicyKey::AutoBlockHours),
    ("blocked-terms", PolicyKey::BlockedTerms),
    ("moderation-terms", PolicyKey::ModerationTerms),
    ("blocked-ips", PolicyKey::BlockedIps),
    ("blocked-email-domains", PolicyKey::BlockedEmailDomains),
    ("blocked-websites", PolicyKey::BlockedWebsites),
    ("allowed-scripts", PolicyKey::AllowedScripts),
];

/// The prefix of a rule's key: `rule.links`.
const RULE_KEY_PREFIX: &str = "rule.";

fn parse_policy_key(text: &str) -> Result<PolicyKey, String> {
    if let Some(name) = text.strip_prefix(RULE_KEY_PREFIX) {
        // Which rules exist is the server's to say: it names an unknown one.
        return if name.is_empty() {
            Err("expected a rule's name after `rule.`, as in rule.links".to_owned())
        } else {
            Ok(PolicyKey::Rule(name.to_owned()))
        };
    }
    POLICY_KEYS
        .iter()
        .find(|(name, _)| *name == text)
        .map(|(_, key)| key.clone())
        .ok_or_else(|| {
            let names: Vec<&str> = POLICY_KEYS.iter().map(|(name, _)| *name).collect();
            // A typo, or the API's spelling (`hold_threshold`) for the command's.
            let typed = text.replace('_', "-");
            let nearest = names
                .iter()
                .map(|name| (strsim::levenshtein(&typed, name), *name))
                .min()
                .filter(|(distance, _)| *distance <= 3);
            match nearest {
                Some((_, name)) => format!(
                    "did you mean {name}? The keys are {}, or rule.NAME",
                    names.join(", ")
                ),
                None => format!("expected one of {}, or rule.NAME", names.join(", ")),
            }
        })
}

impl PolicyKey {
    /// The key as typed on the command line.
    pub fn name(&self) -> String {
        match self {
            PolicyKey::Rule(rule) => format!("{RULE_KEY_PREFIX}{rule}"),
            key => POLICY_KEYS
                .iter()
                .find(|(_, known)| known == key)
                .map(|(name, _)| (*name).to_owned())
                .unwrap_or_default(),
        }
    }
}

/// The policy modes the server knows.
const MODES: [&str; 3] = ["moderate-all", "auto", "trusted-only"];

/// The rule states the server knows.
const RULE_STATES: [&str; 3] = ["off", "on", "log-only"];

impl PolicySetArgs {
    /// The `Policy` update that sets only this key, or why the value does not
    /// fit the key.
    pub fn update(&self) -> Result<proto::Policy, String> {
        let value = self.value.trim();
        let key = self.key.name();
        let invalid =
            |expected: &str| format!("invalid value '{value}' for {key}: expected {expected}");
        let mut policy = proto::Policy::default();
        match &self.key {
            PolicyKey::Mode => {
                if !MODES.contains(&value) {
                    return Err(invalid(&format!("one of {}", MODES.join(", "))));
                }
                policy.mode = Some(value.to_owned());
            }
            PolicyKey::HoldThreshold => {
                policy.hold_threshold =
                    Some(parse_score(value).ok_or_else(|| invalid("a number"))?);
            }
            PolicyKey::SpamThreshold => {
                policy.spam_threshold =
                    Some(parse_score(value).ok_or_else(|| invalid("a number"))?);
            }
            PolicyKey::MaxLinks => {
                policy.max_links = Some(value.parse().map_err(|_| invalid(WHOLE_NUMBER))?);
            }
            PolicyKey::FloodIntervalSeconds => {
                policy.flood_interval_seconds =
                    Some(value.parse().map_err(|_| invalid(WHOLE_NUMBER))?);
            }
            PolicyKey::MinFormSeconds => {
                policy.min_form_seconds = Some(value.parse().map_err(|_| invalid(WHOLE_NUMBER))?);
            }
            PolicyKey::ReportHold => {
                policy.report_hold = Some(value.parse().map_err(|_| invalid(WHOLE_NUMBER))?);
            }
            PolicyKey::HoldNewAuthors => {
                policy.hold_new_authors = Some(value.parse().map_err(|_| invalid(WHOLE_NUMBER))?);
            }
            PolicyKey::EditWindowSeconds => {
                policy.edit_window_seconds =
                    Some(value.parse().map_err(|_| invalid(WHOLE_NUMBER))?);
            }
            PolicyKey::CloseAfterDays => {
                policy.close_after_days = Some(value.parse().map_err(|_| invalid(WHOLE_NUMBER))?);
            }
            PolicyKey::AutoBlockSpam => {
                policy.auto_block_spam = Some(value.parse().map_err(|_| invalid(WHOLE_NUMBER))?);
            }
            PolicyKey::AutoBlockWindowMinutes => {
                policy.auto_block_window_minutes =
                    Some(value.parse().map_err(|_| invalid(WHOLE_NUMBER))?);
            }
            PolicyKey::AutoBlockHours => {
                policy.auto_block_hours = Some(value.parse().map_err(|_| invalid(WHOLE_NUMBER))?);
            }
            PolicyKey::RequireFormToken => {
                policy.require_form_token = Some(match value {
                    "true" => true,
                    "false" => false,
                    _ => return Err(invalid("true or false")),
                });
            }
            PolicyKey::BlockedTerms => {
                policy.blocked_terms = split_list(value);
                policy.set_blocked_terms = true;
            }
            PolicyKey::ModerationTerms => {
                policy.moderation_terms = split_list(value);
                policy.set_moderation_terms = true;
            }
            PolicyKey::BlockedIps => {
                policy.blocked_ips = split_list(value);
                policy.set_blocked_ips = true;
            }
            PolicyKey::BlockedEmailDomains => {
                policy.blocked_email_domains = split_list(value);
                policy.set_blocked_email_domains = true;
            }
            PolicyKey::BlockedWebsites => {
                policy.blocked_websites = split_list(value);
                policy.set_blocked_websites = true;
            }
            PolicyKey::AllowedScripts => {
                policy.allowed_scripts = split_list(value);
                policy.set_allowed_scripts = true;
            }
            PolicyKey::Rule(rule) => {
                let setting = parse_rule_setting(value).ok_or_else(|| {
                    invalid("off, on or log-only, a weight such as 2.5, both as on:2.5, or default")
                })?;
                policy.rules.insert(rule.clone(), setting);
            }
        }
        Ok(policy)
    }
}

const WHOLE_NUMBER: &str = "a whole number, 0 or more";

fn parse_score(value: &str) -> Option<f64> {
    value.parse::<f64>().ok().filter(|score| score.is_finite())
}

/// `off`, `on`, `log-only`, a weight, `STATE:WEIGHT`, or `default`: the rule's change, where
/// `default` (no part set) gives the rule back its defaults.
fn parse_rule_setting(value: &str) -> Option<proto::RuleSetting> {
    if value == "default" {
        return Some(proto::RuleSetting::default());
    }
    let state = |word: &str| RULE_STATES.contains(&word).then(|| word.to_owned());
    let setting = match value.split_once(':') {
        Some((word, weight)) => proto::RuleSetting {
            state: Some(state(word.trim())?),
            weight: Some(parse_score(weight.trim())?),
        },
        None => match parse_score(value) {
            Some(weight) => proto::RuleSetting {
                state: None,
                weight: Some(weight),
            },
            None => proto::RuleSetting {
                state: Some(state(value)?),
                weight: None,
            },
        },
    };
    Some(setting)
}

fn split_list(value: &str) -> Vec<String> {
    value
        .split(',')
        .map(str::trim)
        .filter(|entry| !entry.is_empty())
        .map(str::to_owned)
        .collect()
}

/// Arguments of `erase`.
#[derive(Debug, Args)]
pub struct EraseArgs {
    #[command(flatten)]
    pub site: SiteArg,

    /// The author's email.
    #[arg(long, value_name = "EMAIL")]
    pub email: String,

    /// Remove the comments' text too, instead of keeping it anonymised.
    #[arg(long)]
    pub remove_bodies: bool,

    /// Print how many comments would be erased, and change nothing.
    #[arg(long)]
    pub dry_run: bool,

    /// Erase without asking first (it asks only on a terminal).
    #[arg(long, short)]
    pub yes: bool,
}

/// Arguments of `export`.
#[derive(Debug, Args)]
pub struct ExportArgs {
    #[command(flatten)]
    pub site: SiteArg,

    /// The author's email.
    #[arg(long, value_name = "EMAIL")]
    pub email: String,
}

/// Arguments of `reveal`.
#[derive(Debug, Args)]
pub struct RevealArgs {
    /// The comment's id.
    pub id: String,

    /// Why the email is needed; kept in the audit log.
    #[arg(long, value_name = "TEXT")]
    pub reason: String,
}

/// `block author`, `block ip` and `block domain`.
#[derive(Debug, Subcommand)]
#[command(after_help = BLOCK_HELP)]
pub enum BlockCommand {
    /// Block one author, by the hash shown in the queue or by their email.
    #[command(group = clap::ArgGroup::new("who").required(true).args(["hash", "email"]))]
    Author {
        /// The author hash, as `show` and `queue --output json` print it.
        #[arg(value_name = "HASH")]
        hash: Option<String>,
        /// The author's email instead; it is hashed on the server and never stored.
        #[arg(long, value_name = "EMAIL")]
        email: Option<String>,
        #[command(flatten)]
        options: BlockOptions,
    },
    /// Block one IPv4 or IPv6 address.
    Ip {
        #[arg(value_name = "ADDRESS")]
        address: String,
        #[command(flatten)]
        options: BlockOptions,
    },
    /// Block a domain (and its subdomains) in authors' emails and websites.
    Domain {
        #[arg(value_name = "DOMAIN")]
        domain: String,
        /// Block it only in emails or only in websites.
        #[arg(long, value_enum, value_name = "WHERE")]
        only: Option<DomainScope>,
        #[command(flatten)]
        options: BlockOptions,
    },
}

const BLOCK_HELP: &str = "\
Examples:
  replyctl block author 3f9a... --reject-pending     one author, and their pending replies
  replyctl block author --email jane@example.com    the same, named by email
  replyctl block ip 203.0.113.7 --note \"flooding\"
  replyctl block ip 198.51.100.9 --for 7d           ends by itself after a week
  replyctl block domain cheap-pills.example --reject-pending";

/// What every `block` command takes.
#[derive(Debug, Args)]
pub struct BlockOptions {
    #[command(flatten)]
    pub site: SiteArg,

    /// Also reject every pending reply the entry matches, in the same step.
    #[arg(long)]
    pub reject_pending: bool,

    /// A note for the audit log, kept with the entry and shown by `blocks`.
    #[arg(long, value_name = "TEXT")]
    pub note: Option<String>,

    /// How long the entry lasts (`90s`, `45m`, `12h`, `30d`); without it, until `unblock`.
    #[arg(long = "for", value_name = "DURATION", value_parser = parse_lifetime)]
    pub lifetime: Option<std::time::Duration>,
}

/// A block's `--for`: as `--older-than` reads an age, and at least a second.
fn parse_lifetime(text: &str) -> Result<std::time::Duration, String> {
    let lifetime = parse_age(text)?;
    if lifetime.as_secs() == 0 {
        return Err("must be at least one second".to_owned());
    }
    Ok(lifetime)
}

/// Where `block domain` applies.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum DomainScope {
    Email,
    Website,
}

/// Arguments of `unblock`.
#[derive(Debug, Args)]
#[command(
    after_help = "Examples:\n  replyctl unblock ip 203.0.113.7 --note \"a school's shared \
                        address\"\n  replyctl unblock domain cheap-pills.example     both entries \
                        `block domain` made"
)]
pub struct UnblockArgs {
    /// What the entry names, as the KIND column of `blocks` shows it; `domain` takes off
    /// both a domain's entries, as `block domain` adds them.
    #[arg(value_enum, value_name = "KIND")]
    pub kind: EntryKind,

    /// The entry's value, as `blocks` shows it.
    #[arg(value_name = "VALUE")]
    pub value: String,

    /// With `domain`: take it off only for emails or only for websites.
    #[arg(long, value_enum, value_name = "WHERE")]
    pub only: Option<DomainScope>,

    #[command(flatten)]
    pub site: SiteArg,

    /// A note for the audit log.
    #[arg(long, value_name = "TEXT")]
    pub note: Option<String>,
}

/// Arguments of `close` and `reopen`.
#[derive(Debug, Args)]
#[command(after_help = "Example:\n  replyctl close 2026/05/flood-report --note \"legal hold\"")]
pub struct ArticleArgs {
    /// The article, by the key the host submits replies under.
    #[arg(value_name = "ARTICLE")]
    pub article: String,

    #[command(flatten)]
    pub site: SiteArg,

    /// A note for the audit log.
    #[arg(long, value_name = "TEXT")]
    pub note: Option<String>,
}

/// Arguments of `close`.
#[derive(Debug, Args)]
#[command(after_help = "Examples:
  replyctl close 2026/05/flood-report --note \"legal hold\"
  replyctl close 2026/05/election-live --in 48h
  replyctl close 2026/05/election-live --at 2026-05-10T18:00:00Z
A close that has not taken effect yet moves when closed again with another time; `reopen` calls it
off. Articles can also close by age: `replyctl policy set close-after-days 30`.")]
pub struct CloseArgs {
    #[command(flatten)]
    pub article: ArticleArgs,

    /// Close it from this time on (RFC 3339: 2026-05-10T18:00:00Z) instead of now.
    #[arg(long, value_name = "TIME", value_parser = parse_time, conflicts_with = "within")]
    pub at: Option<chrono::DateTime<chrono::Utc>>,

    /// Close it this long from now instead: 90s, 45m, 12h or 30d.
    #[arg(long = "in", id = "within", value_name = "AGE", value_parser = parse_from_now)]
    pub within: Option<chrono::DateTime<chrono::Utc>>,
}

/// `90s`, `45m`, `12h` or `30d` from now.
fn parse_from_now(text: &str) -> Result<chrono::DateTime<chrono::Utc>, String> {
    let age = parse_age(text)?;
    chrono::Duration::from_std(age)
        .ok()
        .and_then(|age| chrono::Utc::now().checked_add_signed(age))
        .ok_or_else(|| "too far ahead".to_owned())
}

/// A time in RFC 3339, with its offset: `2026-05-10T18:00:00Z`.
fn parse_time(text: &str) -> Result<chrono::DateTime<chrono::Utc>, String> {
    chrono::DateTime::parse_from_rfc3339(text.trim())
        .map(|time| time.to_utc())
        .map_err(|_| "expected a time in RFC 3339, as 2026-05-10T18:00:00Z".to_owned())
}

/// The kinds of blocklist entry, as `blocks` names them, and `domain` for both of a domain's.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum EntryKind {
    Author,
    Ip,
    Domain,
    EmailDomain,
    WebsiteDomain,
}

/// Arguments of `audit`.
#[derive(Debug, Args)]
pub struct AuditArgs {
    #[command(flatten)]
    pub site: SiteArg,

    /// Only the entries of this comment.
    #[arg(long, value_name = "ID")]
    pub comment: Option<String>,

    /// Only the entries of this action, as the ACTION column shows it: approve, reject,
    /// mark_spam, mark_ham, delete, submit, block, unblock, policy, token_issue, …
    #[arg(long, value_name = "ACTION", value_parser = parse_audit_action)]
    pub action: Option<String>,

    /// Stop after this many entries.
    #[arg(long, value_name = "N", default_value_t = 50, value_parser = clap::value_parser!(u32).range(1..))]
    pub limit: u32,
}

fn parse_audit_action(text: &str) -> Result<String, String> {
    use replyguard::domain::audit_action;
    if let Some(action) = audit_action::parse(text) {
        return Ok(action.to_owned());
    }
    let known: Vec<&str> = audit_action::all().collect();
    let typed = text.trim().replace('-', "_");
    let nearest = known
        .iter()
        .map(|name| (strsim::levenshtein(&typed, name), *name))
        .min()
        .filter(|(distance, _)| *distance <= 3);
    Err(match nearest {
        Some((_, name)) => format!("did you mean {name}? The actions are {}", known.join(", ")),
        None => format!("expected one of {}", known.join(", ")),
    })
}

/// Arguments of `submit`.
#[derive(Debug, Args)]
pub struct SubmitArgs {
    /// The host's key of the article the reply is for.
    #[arg(long, value_name = "ARTICLE")]
    pub article: String,

    /// The author's name.
    #[arg(long, value_name = "NAME")]
    pub name: String,

    /// The author's email; never shown to the public.
    #[arg(long, value_name = "EMAIL")]
    pub email: String,

    /// The author's website, http or https.
    #[arg(long, value_name = "URL")]
    pub website: Option<String>,

    /// The approved comment this replies to.
    #[arg(long, value_name = "ID")]
    pub parent: Option<String>,

    /// The reader's IP address, as the host saw it.
    #[arg(long, value_name = "IP")]
    pub ip: Option<String>,

    /// The host's own id of the signed-in reader, when it vouches for them: their trust then
    /// rests on their replies under this id, not on the email.
    #[arg(long, value_name = "ID")]
    pub reader: Option<String>,

    /// When the article was published (RFC 3339): with the site's `close-after-days`, it
    /// closes that many days later.
    #[arg(long, value_name = "TIME", value_parser = parse_time)]
    pub published_at: Option<chrono::DateTime<chrono::Utc>>,

    /// The reply's text, plain text.
    #[arg(value_name = "TEXT")]
    pub text: String,
}

/// Arguments of `comments`.
#[derive(Debug, Args)]
pub struct CommentsArgs {
    /// The host's article key.
    pub article: String,

    /// Newest threads first (replies inside a thread stay oldest first).
    #[arg(long)]
    pub newest: bool,

    /// Stop after this many comments.
    #[arg(long, value_name = "N", default_value_t = 50, value_parser = clap::value_parser!(u32).range(1..))]
    pub limit: u32,
}

/// A comment state as typed on the command line.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum StatusArg {
    Pending,
    Spam,
    Approved,
    Rejected,
}

impl From<StatusArg> for CommentStatus {
    fn from(status: StatusArg) -> Self {
        match status {
            StatusArg::Pending => CommentStatus::Pending,
            StatusArg::Spam => CommentStatus::Spam,
            StatusArg::Approved => CommentStatus::Approved,
            StatusArg::Rejected => CommentStatus::Rejected,
        }
    }
}

/// How results are printed.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum OutputFormat {
    // No doc comments here: they would turn every `--help` into the long
    // form just to describe two obvious words.
    Table,
    Json,
}

/// A bearer token; its `Debug` hides the value so it cannot leak into logs.
#[derive(Clone)]
pub struct Token(String);

impl Token {
    /// The token itself, to be put into request metadata and nowhere else.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl From<String> for Token {
    fn from(value: String) -> Self {
        // Tokens read from files or copied from a terminal often carry a
        // trailing newline, which is never part of a token.
        Self(value.trim().to_owned())
    }
}

impl fmt::Debug for Token {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Token(<redacted>)")
    }
}

/// A moderator decision command, as the `Moderate` action it stands for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Decision {
    Approve,
    Reject,
    Spam,
    Ham,
    Delete,
}

impl Decision {
    /// The command's name, also used in JSON output.
    pub fn name(self) -> &'static str {
        match self {
            Decision::Approve => "approve",
            Decision::Reject => "reject",
            Decision::Spam => "spam",
            Decision::Ham => "ham",
            Decision::Delete => "delete",
        }
    }

    /// The action sent to the server.
    pub fn action(self) -> ModerationAction {
        match self {
            Decision::Approve => ModerationAction::Approve,
            Decision::Reject => ModerationAction::Reject,
            Decision::Spam => ModerationAction::MarkSpam,
            Decision::Ham => ModerationAction::MarkHam,
            Decision::Delete => ModerationAction::Delete,
        }
    }
}

/// Accepts `host:port` as shorthand for `http://host:port`, and refuses
/// what this build cannot connect to before any request is made.
fn parse_endpoint(value: &str) -> Result<String, String> {
    let url = if value.contains("://") {
        value.to_owned()
    } else {
        format!("http://{value}")
    };
    let uri: http::Uri = url.parse().map_err(|e| format!("not a URL: {e}"))?;
    match uri.scheme_str() {
        Some("http" | "https") => {}
        _ => return Err("expected an http:// or https:// URL".into()),
    }
    if uri.host().is_none_or(str::is_empty) {
        return Err("the URL has no host".into());
    }
    Ok(url)
}

#[cfg(test)]
mod tests {
    use clap::CommandFactory;

    use super::*;

    #[test]
    fn command_line_definition_is_consistent() {
        Cli::command().debug_assert();
    }

    fn policy_set(args: &[&str]) -> Result<proto::Policy, String> {
        let cli = Cli::try_parse_from(["replyctl", "policy", "set"].iter().chain(args))
            .map_err(|err| err.to_string())?;
        match cli.command {
            Command::Policy(PolicyCommand::Set(set)) => set.update(),
            other => Err(format!("parsed as {other:?}")),
        }
    }

    #[test]
    fn every_key_of_the_spec_is_accepted_under_its_name() {
        for key in [
            "mode",
            "hold-threshold",
            "spam-threshold",
            "max-links",
            "flood-interval-seconds",
            "min-form-seconds",
            "require-form-token",
            "hold-new-authors",
            "report-hold",
            "edit-window-seconds",
            "close-after-days",
            "auto-block-spam",
            "auto-block-window-minutes",
            "auto-block-hours",
            "blocked-terms",
            "moderation-terms",
            "blocked-ips",
            "blocked-email-domains",
            "blocked-websites",
            "allowed-scripts",
            "rule.links",
        ] {
            assert_eq!(parse_policy_key(key).map(|k| k.name()), Ok(key.to_owned()));
        }
        assert!(parse_policy_key("rule.").is_err());
        assert!(parse_policy_key("max_links").is_err());
    }

    #[test]
    fn a_list_value_replaces_the_list_and_an_empty_one_clears_it() -> Result<(), String> {
        let ips = policy_set(&["blocked-ips", "192.0.2.7, 198.51.100.0/24"])?;
        assert_eq!(ips.blocked_ips, ["192.0.2.7", "198.51.100.0/24"]);
        assert!(ips.set_blocked_ips);
        let cleared = policy_set(&["allowed-scripts", ""])?;
        assert!(cleared.allowed_scripts.is_empty());
        assert!(cleared.set_allowed_scripts);
        Ok(())
    }

    #[test]
    fn a_rule_takes_a_state_a_weight_both_or_its_defaults() -> Result<(), String> {
        let setting = |value: &str| -> Result<(Option<String>, Option<f64>), String> {
            let policy = policy_set(&["rule.links", value])?;
            let setting = policy.rules.get("links").cloned().unwrap_or_default();
            Ok((setting.state, setting.weight))
        };
        assert_eq!(setting("log-only")?, (Some("log-only".to_owned()), None));
        assert_eq!(setting("2.5")?, (None, Some(2.5)));
        assert_eq!(setting("-1")?, (None, Some(-1.0)));
        assert_eq!(setting("on:2.5")?, (Some("on".to_owned()), Some(2.5)));
        assert_eq!(setting("default")?, (None, None));
        for bad in ["maybe", "on:", "on:lots", "sometimes:1", "NaN", ""] {
            assert!(setting(bad).is_err(), "{bad:?}");
        }
        Ok(())
    }
}
