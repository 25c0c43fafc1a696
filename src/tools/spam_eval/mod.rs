//! `replyguard spam-eval`: replays labelled comments through the real validation, assessment
//! and status mapping, and measures how well the result matches the labels.
//!
//! Two protocols, as described in docs/SPAM.md: *cold* (a new site; the prior is trained on
//! the other files only, nothing from the judged file is taught) and *learning* (the
//! chronologically first 70% of each class of a file are taught as moderator decisions, the
//! last 30% judged). Texts that also occur in what was trained on, or earlier in the judged
//! part, are left out of the judging, so a repeated spam is not counted as caught twice.
//! Each file's `AUTHOR` stands for a reader's email, so the history rules see what the site
//! knows of the author: the statuses of their taught replies, then of their judged ones.
//! This module reads files and returns a report; it never writes to a database.

mod corpus;
mod outcome;
mod replay;
mod report;

use std::{
    collections::HashSet,
    fmt::Write as _,
    path::{Path, PathBuf},
};

pub use corpus::{
    DEFAULT_DIR, Labelled, default_files, plain_text, read_labelled, read_ordinary,
    untaught_defaults,
};
pub use outcome::Outcome;

use crate::{
    domain::CommentStatus,
    spam::{Assessor, Label, LearnedStats, MARK_WEIGHT, Policy},
};
use corpus::{Dataset, load, load_ordinary};
use replay::{Judged, Records, replay, shared_lessons, train};
use report::section;

/// The share of each class taught in the learning protocol (docs/SPAM.md); `spam-eval
/// --taught-share` measures others, such as a site's first decisions.
pub const TAUGHT_SHARE: f64 = 0.7;

/// Which protocols to run.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Protocol {
    Cold,
    Learning,
    Both,
    /// A new site of a deployment whose other sites share their lessons: the prior as in the
    /// cold protocol, and every reply of the other files taught as their moderators' decisions
    /// to the shared counts; nothing of the judged file taught.
    Shared,
}

/// Which prior the judged file meets.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum PriorSource {
    /// Trained, as the built-in one was made, on every file but the judged one: the other files
    /// given, and `also`, files that only teach (see [`untaught_defaults`]).
    OtherFiles { also: Vec<PathBuf> },
    /// The prior built into this release, as a new site has it: for files it was not
    /// made from.
    BuiltIn,
}

/// Runs the protocols over `files` and returns the report; the learning protocol teaches the
/// chronologically first `taught_share` of each class. Each of `ordinary` (files of replies
/// none of which is spam, such as a news site's reader comments) is then judged as a new site
/// would judge it, with a prior made from every labelled file (or the built-in one): what it
/// holds and sends to spam are false alarms only. With `show_errors` it lists every misjudged
/// reply with its reasons.
pub fn run(
    files: &[PathBuf],
    ordinary: &[PathBuf],
    protocol: Protocol,
    prior: PriorSource,
    taught_share: f64,
    show_errors: bool,
) -> Result<String, String> {
    let datasets: Vec<Dataset> = files.iter().map(|f| load(f)).collect::<Result<_, _>>()?;
    let ordinary: Vec<Dataset> = ordinary
        .iter()
        .map(|f| load_ordinary(f))
        .collect::<Result<_, _>>()?;
    let also: Vec<Dataset> = match &prior {
        PriorSource::OtherFiles { also } => {
            also.iter().map(|f| load(f)).collect::<Result<_, _>>()?
        }
        PriorSource::BuiltIn => Vec::new(),
    };
    let mut report = String::new();
    let _ = writeln!(
        report,
        "policy: default (auto, hold at {}, spam at {}); positive = labelled spam",
        Policy::default().hold_threshold,
        Policy::default().spam_threshold
    );
    if !also.is_empty() {
        let names: Vec<&str> = also.iter().map(|d| d.name.as_str()).collect();
        let _ = writeln!(report, "priors also learn from: {}", names.join(", "));
    }
    // Every file's judged replies together, per protocol, and the repeats left out.
    let (mut cold_pooled, mut learning_pooled) = (Judged::default(), Judged::default());
    let mut shared_pooled = Judged::default();
    for (i, data) in datasets.iter().enumerate() {
        let others: Vec<&Dataset> = datasets
            .iter()
            .enumerate()
            .filter(|(j, _)| *j != i)
            .map(|(_, d)| d)
            .chain(&also)
            .collect();
        let (assessor, prior_keys, prior_from) = match prior {
            PriorSource::OtherFiles { .. } => {
                // Made exactly as the built-in prior is, so cold figures are what a new
                // site sees.
                let (trained, _, keys) = train(&others);
                let from = format!("prior from {} other file(s)", others.len());
                (Assessor::with_prior(trained), keys, from)
            }
            PriorSource::BuiltIn => (
                Assessor::default(),
                HashSet::new(),
                "the built-in prior".to_owned(),
            ),
        };
        let _ = writeln!(
            report,
            "\n== {} ({} comments, {} refused by validation; {prior_from})",
            data.name,
            data.comments.len(),
            data.refused,
        );
        if matches!(protocol, Protocol::Cold | Protocol::Both) {
            let all: Vec<usize> = (0..data.comments.len()).collect();
            let mut errors = String::new();
            let replayed = replay(
                &assessor,
                data,
                &all,
                &prior_keys,
                (LearnedStats::empty(), LearnedStats::empty()),
                Records::default(),
                show_errors.then_some(&mut errors),
            );
            section(&mut report, "cold", &replayed);
            cold_pooled += &replayed;
            report.push_str(&errors);
        }
        if protocol == Protocol::Shared {
            let shared = shared_lessons(&others);
            let all: Vec<usize> = (0..data.comments.len()).collect();
            let mut errors = String::new();
            let replayed = replay(
                &assessor,
                data,
                &all,
                &prior_keys,
                (LearnedStats::empty(), &shared),
                Records::default(),
                show_errors.then_some(&mut errors),
            );
            let name = format!(
                "shared, other sites taught {} ({} spam, {} ham)",
                shared.spam + shared.ham,
                shared.spam,
                shared.ham
            );
            section(&mut report, &name, &replayed);
            shared_pooled += &replayed;
            report.push_str(&errors);
        }
        if matches!(protocol, Protocol::Learning | Protocol::Both) {
            let mut taught = Vec::new();
            let mut judged = Vec::new();
            for spam in [true, false] {
                let class: Vec<usize> = (0..data.comments.len())
                    .filter(|&k| data.comments[k].spam == spam)
                    .collect();
                let cut = (class.len() as f64 * taught_share).floor() as usize;
                taught.extend_from_slice(&class[..cut]);
                judged.extend_from_slice(&class[cut..]);
            }
            judged.sort_unstable();
            let mut learned = LearnedStats::new();
            let mut taught_keys = HashSet::new();
            let mut records = Records::default();
            for &k in &taught {
                let comment = &data.comments[k];
                let (label, status) = if comment.spam {
                    (Label::Spam, CommentStatus::Spam)
                } else {
                    (Label::Ham, CommentStatus::Approved)
                };
                learned.learn(&comment.features, label, MARK_WEIGHT);
                records.note(comment.author, status);
                taught_keys.insert(comment.key.clone());
            }
            let mut errors = String::new();
            let replayed = replay(
                &assessor,
                data,
                &judged,
                &taught_keys,
                (&learned, LearnedStats::empty()),
                records,
                show_errors.then_some(&mut errors),
            );
            let taught_spam = taught.iter().filter(|&&k| data.comments[k].spam).count();
            let name = format!(
                "learning, taught {} ({taught_spam} spam, {} ham)",
                taught.len(),
                taught.len() - taught_spam
            );
            section(&mut report, &name, &replayed);
            learning_pooled += &replayed;
            report.push_str(&errors);
        }
    }
    if datasets.len() > 1 {
        let _ = writeln!(report, "\n== the {} files pooled", datasets.len());
        if matches!(protocol, Protocol::Cold | Protocol::Both) {
            section(&mut report, "cold", &cold_pooled);
        }
        if matches!(protocol, Protocol::Learning | Protocol::Both) {
            section(&mut report, "learning", &learning_pooled);
        }
        if protocol == Protocol::Shared {
            section(&mut report, "shared", &shared_pooled);
        }
    }
    if !ordinary.is_empty() {
        // A new site of another kind: nothing of these files is taught, and the prior knows
        // every labelled file, as the built-in one does.
        // Under the shared protocol, a new site of a deployment whose other sites are the
        // labelled files and share their lessons.
        let all_labelled: Vec<&Dataset> = datasets.iter().chain(&also).collect();
        let shared = if protocol == Protocol::Shared {
            shared_lessons(&all_labelled)
        } else {
            LearnedStats::new()
        };
        let (assessor, prior_from) = match prior {
            PriorSource::OtherFiles { .. } => {
                let (trained, _, _) = train(&all_labelled);
                let from = format!("prior from {} labelled file(s)", all_labelled.len());
                (Assessor::with_prior(trained), from)
            }
            PriorSource::BuiltIn => (Assessor::default(), "the built-in prior".to_owned()),
        };
        for data in &ordinary {
            let _ = writeln!(
                report,
                "\n== {} ({} ordinary replies, none spam, {} refused by validation; {prior_from})",
                data.name,
                data.comments.len(),
                data.refused,
            );
            let all: Vec<usize> = (0..data.comments.len()).collect();
            let mut errors = String::new();
            let replayed = replay(
                &assessor,
                data,
                &all,
                &HashSet::new(),
                (LearnedStats::empty(), &shared),
                Records::default(),
                show_errors.then_some(&mut errors),
            );
            let name = if protocol == Protocol::Shared {
                format!(
                    "cold, ordinary replies, other sites shared {} lessons",
                    shared.spam + shared.ham
                )
            } else {
                "cold, ordinary replies".to_owned()
            };
            section(&mut report, &name, &replayed);
            report.push_str(&errors);
        }
    }
    Ok(report)
}

/// Trains a prior on every distinct text of `files` (near-duplicates once) and writes its compact form to `out`;
/// returns a one-line summary.
pub fn write_prior(files: &[PathBuf], out: &Path) -> Result<String, String> {
    let datasets: Vec<Dataset> = files.iter().map(|f| load(f)).collect::<Result<_, _>>()?;
    let (prior, (spam, ham), keys) = train(&datasets.iter().collect::<Vec<_>>());
    let bytes = prior.to_bytes();
    std::fs::write(out, &bytes).map_err(|e| format!("{}: {e}", out.display()))?;
    Ok(format!(
        "wrote {} ({} bytes): {} distinct texts, {} taught ({spam} spam, {ham} ham) after \
         near-duplicates; counts of {} features, weights of {}",
        out.display(),
        bytes.len(),
        keys.len(),
        spam + ham,
        prior.counts.features.len(),
        prior.logistic.weights.len(),
    ))
}

/// Writes every validated comment of `files` as one tab-separated line to `out`: file,
/// chronological index, label (1 spam), SimHash fingerprint, repeat key (whitespace
/// collapsed) and the comma-separated feature ids, exactly as the classifier sees them. For
/// comparing classifiers outside (docs/experiments/); returns a one-line summary.
pub fn write_features(files: &[PathBuf], out: &Path) -> Result<String, String> {
    let mut text = String::new();
    let mut lines = 0;
    for path in files {
        let data = load(path)?;
        for (index, comment) in data.comments.iter().enumerate() {
            let features: Vec<String> = comment.features.iter().map(u64::to_string).collect();
            let _ = writeln!(
                text,
                "{}\t{index}\t{}\t{}\t{}\t{}",
                data.name,
                u8::from(comment.spam),
                comment.fingerprint,
                comment.key.replace(['\t', '\n', '\r'], " "),
                features.join(",")
            );
            lines += 1;
        }
    }
    std::fs::write(out, text).map_err(|e| format!("{}: {e}", out.display()))?;
    Ok(format!("wrote {} ({lines} comments)", out.display()))
}

#[cfg(test)]
mod tests {
    use super::{corpus::write_labelled, *};

    /// The cold protocol's report against the built-in prior.
    fn cold_report(files: &[PathBuf]) -> Result<String, String> {
        run(
            files,
            &[],
            Protocol::Cold,
            PriorSource::BuiltIn,
            TAUGHT_SHARE,
            false,
        )
    }

    #[test]
    fn features_are_written_a_line_per_comment() -> Result<(), String> {
        let dir = tempfile::tempdir().map_err(|e| e.to_string())?;
        let input = dir.path().join("in.csv");
        std::fs::write(
            &input,
            "COMMENT_ID,AUTHOR,DATE,CONTENT,CLASS\n\
             b,y,2026-01-02T00:00:00,\"Check out\tmy channel\",1\n\
             a,x,2026-01-01T00:00:00,Lovely song,0\n",
        )
        .map_err(|e| e.to_string())?;
        let out = dir.path().join("features.tsv");
        write_features(std::slice::from_ref(&input), &out)?;
        let written = std::fs::read_to_string(&out).map_err(|e| e.to_string())?;
        let lines: Vec<Vec<&str>> = written.lines().map(|l| l.split('\t').collect()).collect();
        let data = load(&input)?;
        // In date order, each with its six fields, as the classifier sees the comment.
        assert_eq!(lines.len(), 2);
        for (line, (comment, key)) in lines.iter().zip(
            data.comments
                .iter()
                .zip(["lovely song", "check out my channel"]),
        ) {
            let ids: Vec<u64> = line[5]
                .split(',')
                .map(|id| id.parse().map_err(|e| format!("{id}: {e}")))
                .collect::<Result<_, _>>()?;
            assert_eq!((line[0], line[4]), ("in.csv", key));
            assert_eq!(line[2], if comment.spam { "1" } else { "0" });
            assert_eq!(line[3], comment.fingerprint.to_string());
            assert_eq!(ids, comment.features);
        }
        assert_eq!((lines[0][1], lines[1][1]), ("0", "1"));
        assert!(data.comments[1].spam);
        Ok(())
    }

    #[test]
    fn a_file_can_be_judged_against_the_built_in_prior_alone() -> Result<(), String> {
        let file = tempfile::NamedTempFile::new().map_err(|e| e.to_string())?;
        write_labelled(
            file.path(),
            &[
                ("The minutes of the council meeting are online now.", false),
                (
                    "Please subscribe, I will subscribe back to everyone!!",
                    true,
                ),
            ],
        )?;
        let files = [file.path().to_path_buf()];
        let alone = PriorSource::OtherFiles { also: Vec::new() };
        let other_files = run(&files, &[], Protocol::Cold, alone, TAUGHT_SHARE, false)?;
        assert!(
            other_files.contains("prior from 0 other file(s)"),
            "{other_files}"
        );
        // With no other file the prior is empty and the classifier holds nothing; the
        // built-in prior knows the subscription spam.
        assert!(
            other_files.contains("spam approved at once 100.0%"),
            "{other_files}"
        );
        let built_in = cold_report(&files)?;
        assert!(built_in.contains("the built-in prior"), "{built_in}");
        assert!(built_in.contains("judged 2 (1 spam, 1 ham)"), "{built_in}");
        assert!(
            built_in.contains("spam approved at once 0.0%"),
            "{built_in}"
        );
        Ok(())
    }

    #[test]
    fn the_report_counts_the_replies_each_rule_pushed_its_way() -> Result<(), String> {
        let file = tempfile::NamedTempFile::new().map_err(|e| e.to_string())?;
        write_labelled(
            file.path(),
            &[
                ("The minutes of the council meeting are online now.", false),
                (
                    "THE MINUTES ARE LATE AGAIN, AS EVERY MONTH THIS YEAR",
                    false,
                ),
                ("Subscribe to my channel, check out my new video!!", true),
                (
                    "Lovely piece about the old bridge. Listen to my music sometime.",
                    true,
                ),
            ],
        )?;
        let report = cold_report(&[file.path().to_path_buf()])?;
        // Both spam are held for self-promotion, which the built-in prior alone would not do
        // for the second.
        assert!(report.contains("self-promotion 2/0 1/0"), "{report}");
        assert!(report.contains("shape-capitals 0/1 0/0"), "{report}");
        // A rule that met nothing is not listed.
        assert!(!report.contains("honeypot"), "{report}");
        Ok(())
    }

    #[test]
    fn the_learning_protocol_teaches_the_oldest_share_of_each_class() -> Result<(), String> {
        let file = tempfile::NamedTempFile::new().map_err(|e| e.to_string())?;
        let texts: Vec<(String, bool)> = (1..=10)
            .flat_map(|n| {
                [
                    (format!("Council minutes part {n} are online."), false),
                    (format!("Buy cheap pills number {n} now"), true),
                ]
            })
            .collect();
        let rows: Vec<(&str, bool)> = texts.iter().map(|(t, s)| (t.as_str(), *s)).collect();
        write_labelled(file.path(), &rows)?;
        let files = [file.path().to_path_buf()];
        let learning = |share| {
            run(
                &files,
                &[],
                Protocol::Learning,
                PriorSource::BuiltIn,
                share,
                false,
            )
        };
        let usual = learning(TAUGHT_SHARE)?;
        assert!(
            usual.contains("learning, taught 14 (7 spam, 7 ham): judged 6 (3 spam, 3 ham)"),
            "{usual}"
        );
        let first = learning(0.2)?;
        assert!(
            first.contains("learning, taught 4 (2 spam, 2 ham): judged 16 (8 spam, 8 ham)"),
            "{first}"
        );
        Ok(())
    }

    #[test]
    fn ordinary_replies_are_judged_as_a_new_site_and_their_false_alarms_counted()
    -> Result<(), String> {
        let dir = tempfile::tempdir().map_err(|e| e.to_string())?;
        let labelled = dir.path().join("video.csv");
        write_labelled(
            &labelled,
            &[
                ("Lovely song", false),
                ("please subscribe to my channel for more videos", true),
            ],
        )?;
        let news = dir.path().join("news.csv");
        std::fs::write(
            &news,
            "ARTICLE,CONTENT,TOXICITY\n\
             The budget,\"The minutes of the council meeting are online now.\",no\n\
             The budget,Thanks for the clear account of the vote.,no\n\
             The bridge,\"Subscribe to my channel, check out my new video!!\",no\n",
        )
        .map_err(|e| e.to_string())?;
        let report = run(
            &[labelled],
            std::slice::from_ref(&news),
            Protocol::Cold,
            PriorSource::BuiltIn,
            TAUGHT_SHARE,
            false,
        )?;
        let (_, ordinary) = report
            .split_once("== news.csv (3 ordinary replies, none spam, 0 refused by validation")
            .ok_or(report.clone())?;
        assert!(
            ordinary.contains("-- cold, ordinary replies: judged 3 (0 spam, 3 ham)"),
            "{report}"
        );
        // The self-promotion is sent to spam: one false alarm in three, and the classifier,
        // sure of it, decided that.
        assert!(
            ordinary.contains("ham approved 66.7%, held 0.0%, binned 33.3%"),
            "{report}"
        );
        assert!(
            ordinary.contains("self-promotion 0/1 0/0, classifier 0/1 0/1"),
            "{report}"
        );
        // The labelled file's own section reports its spam by status too.
        assert!(
            report.contains("spam approved 0.0%, held 0.0%, binned 100.0%"),
            "{report}"
        );
        let rows = read_ordinary(&news)?;
        assert_eq!(rows.len(), 3);
        assert!(rows.iter().all(|row| !row.spam));
        assert_eq!(rows[2].article.as_deref(), Some("The bridge"));
        assert_ne!(rows[0].author, rows[1].author, "each row is its own reader");
        Ok(())
    }

    #[test]
    fn the_report_ends_with_every_file_pooled() -> Result<(), String> {
        let dir = tempfile::tempdir().map_err(|e| e.to_string())?;
        let mut files = Vec::new();
        for (name, ham, spam) in [
            ("news.csv", "The minutes are online.", "Buy cheap pills now"),
            ("blog.csv", "Thanks for the recipe.", "Cheap watches here"),
        ] {
            let path = dir.path().join(name);
            write_labelled(&path, &[(ham, false), (spam, true)])?;
            files.push(path);
        }
        let report = cold_report(&files)?;
        let pooled = report
            .split_once("== the 2 files pooled")
            .map(|(_, pooled)| pooled)
            .ok_or(report.clone())?;
        assert!(
            pooled.contains("-- cold: judged 4 (2 spam, 2 ham)"),
            "{report}"
        );
        assert!(!pooled.contains("learning"), "{report}");
        let one = cold_report(&files[..1])?;
        assert!(!one.contains("pooled"), "{one}");
        Ok(())
    }
}
