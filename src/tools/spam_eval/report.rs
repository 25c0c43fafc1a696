//! The report's text: for each protocol, the statuses by class, the views of them as a
//! classifier's figures, their intervals, and the rules that pushed and decided.

use std::fmt::Write as _;

use super::{
    outcome::{ratio, wilson},
    replay::{Judged, RuleCounts},
};
use crate::spam::RULES;

/// Writes one protocol's figures for `judged` to `report`, under `protocol`'s name.
pub(super) fn section(report: &mut String, protocol: &str, judged: &Judged) {
    let Judged {
        outcome, left_out, ..
    } = judged;
    let spam: usize = outcome.spam.iter().sum();
    let ham: usize = outcome.ham.iter().sum();
    let _ = writeln!(
        report,
        "-- {protocol}: judged {} ({spam} spam, {ham} ham); {left_out} repeated texts left out",
        spam + ham
    );
    let _ = writeln!(report, "   status         approved  pending     spam");
    for (label, row) in [("spam", outcome.spam), ("ham", outcome.ham)] {
        let _ = writeln!(
            report,
            "   {label:<12} {:>9} {:>8} {:>8}",
            row[0], row[1], row[2]
        );
    }
    let _ = writeln!(
        report,
        "   view                      TP   FP   TN   FN  precision  recall    FPR     MCC"
    );
    for (view, from) in [("caught (not approved)", 1), ("spam status", 2)] {
        let (tp, fp, tn, fn_) = outcome.confusion(from);
        let _ = writeln!(
            report,
            "   {view:<22} {tp:>5} {fp:>4} {tn:>4} {fn_:>4}  {:>9.3} {:>7.3} {:>6.3} {:>7.3}",
            ratio(tp, tp + fp),
            ratio(tp, tp + fn_),
            ratio(fp, fp + tn),
            outcome.mcc(from)
        );
    }
    let (low, high) = outcome.mcc_interval(1);
    let _ = writeln!(
        report,
        "   caught MCC, 95% interval (bootstrap of the judged replies): {low:.3} to {high:.3}"
    );
    let ham: usize = outcome.ham.iter().sum();
    let spam: usize = outcome.spam.iter().sum();
    let (ham_low, ham_high) = wilson(outcome.ham[2], ham);
    let (spam_low, spam_high) = wilson(outcome.spam[0], spam);
    let _ = writeln!(
        report,
        "   ham sent to spam {:.1}% ({:.1} to {:.1})   spam approved at once {:.1}% ({:.1} to {:.1})",
        outcome.ham_to_spam() * 100.0,
        ham_low * 100.0,
        ham_high * 100.0,
        outcome.spam_approved() * 100.0,
        spam_low * 100.0,
        spam_high * 100.0
    );
    // Each class's shares by status: the spam "binned", sent straight to the spam queue, is
    // what no moderator has to look at; the ham held or binned is what readers miss.
    let share = |row: [usize; 3], column: usize| ratio(row[column], row.iter().sum()) * 100.0;
    let (held_low, held_high) = wilson(outcome.ham[1] + outcome.ham[2], ham);
    let _ = writeln!(
        report,
        "   spam approved {:.1}%, held {:.1}%, binned {:.1}%   ham approved {:.1}%, held {:.1}%, binned {:.1}% \
         (not approved {:.1} to {:.1})",
        share(outcome.spam, 0),
        share(outcome.spam, 1),
        share(outcome.spam, 2),
        share(outcome.ham, 0),
        share(outcome.ham, 1),
        share(outcome.ham, 2),
        held_low * 100.0,
        held_high * 100.0,
    );
    let _ = writeln!(
        report,
        "   rules that pushed the score their way, then those that decided the verdict (judged spam/ham):"
    );
    let met: Vec<String> = RULES
        .iter()
        .filter_map(|info| {
            let RuleCounts { met, decided } = judged.rules.get(info.name)?;
            Some(format!(
                "{} {}/{} {}/{}",
                info.name, met[0], met[1], decided[0], decided[1]
            ))
        })
        .collect();
    for line in met.chunks(3) {
        let _ = writeln!(report, "      {}", line.join(", "));
    }
}
