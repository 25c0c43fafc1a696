//! The figures of a set of judged replies: how many of each class ended at each status, and
//! what that makes of precision, recall, the Matthews coefficient and their intervals.

use rand::{RngExt, SeedableRng, rngs::StdRng};

use crate::domain::CommentStatus;

/// How many resamples of the judged replies give the interval of a reported MCC.
const RESAMPLES: usize = 2_000;

/// Counts of statuses per class.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Outcome {
    /// Approved, pending, spam: for replies labelled spam.
    pub spam: [usize; 3],
    /// Approved, pending, spam: for replies labelled ham.
    pub ham: [usize; 3],
}

/// Another file's counts added to these, for the pooled figures.
impl std::ops::AddAssign<&Outcome> for Outcome {
    fn add_assign(&mut self, other: &Outcome) {
        for (mine, theirs) in [(&mut self.spam, other.spam), (&mut self.ham, other.ham)] {
            for (count, more) in mine.iter_mut().zip(theirs) {
                *count += more;
            }
        }
    }
}

impl Outcome {
    /// Counts one judged reply of its class at `status`.
    pub(super) fn add(&mut self, spam: bool, status: CommentStatus) {
        let row = if spam { &mut self.spam } else { &mut self.ham };
        let column = match status {
            CommentStatus::Approved => 0,
            CommentStatus::Pending => 1,
            CommentStatus::Spam | CommentStatus::Rejected => 2,
        };
        row[column] += 1;
    }

    /// The confusion matrix (tp, fp, tn, fn) when "positive" is any status from `from` on:
    /// 1 for "caught" (not approved), 2 for "spam status".
    pub fn confusion(&self, from: usize) -> (usize, usize, usize, usize) {
        let tp: usize = self.spam[from..].iter().sum();
        let fp: usize = self.ham[from..].iter().sum();
        let fn_: usize = self.spam[..from].iter().sum();
        let tn: usize = self.ham[..from].iter().sum();
        (tp, fp, tn, fn_)
    }

    /// Matthews correlation coefficient of [`Outcome::confusion`].
    pub fn mcc(&self, from: usize) -> f64 {
        let (tp, fp, tn, fn_) = self.confusion(from);
        let (tp, fp, tn, fn_) = (tp as f64, fp as f64, tn as f64, fn_ as f64);
        let denominator = ((tp + fp) * (tp + fn_) * (tn + fp) * (tn + fn_)).sqrt();
        if denominator == 0.0 {
            0.0
        } else {
            (tp * tn - fp * fn_) / denominator
        }
    }

    /// A 95% interval of [`Outcome::mcc`]: its 2.5th and 97.5th percentiles over
    /// `RESAMPLES` resamples of the judged replies, each drawn with replacement (the
    /// bootstrap), from a fixed seed so that a report reads the same every run. With a
    /// hundred replies judged, one reply judged otherwise moves MCC by about 0.02; this says
    /// how far the figure itself can be trusted.
    pub fn mcc_interval(&self, from: usize) -> (f64, f64) {
        let replies: Vec<(bool, usize)> = [(true, self.spam), (false, self.ham)]
            .into_iter()
            .flat_map(|(spam, row)| {
                row.into_iter()
                    .enumerate()
                    .flat_map(move |(column, count)| std::iter::repeat_n((spam, column), count))
            })
            .collect();
        if replies.is_empty() {
            return (0.0, 0.0);
        }
        let mut rng = StdRng::seed_from_u64(1);
        let mut mccs: Vec<f64> = (0..RESAMPLES)
            .map(|_| {
                let mut resample = Outcome::default();
                for _ in 0..replies.len() {
                    let (spam, column) = replies[rng.random_range(0..replies.len())];
                    let row = if spam {
                        &mut resample.spam
                    } else {
                        &mut resample.ham
                    };
                    row[column] += 1;
                }
                resample.mcc(from)
            })
            .collect();
        mccs.sort_by(f64::total_cmp);
        (mccs[RESAMPLES / 40], mccs[RESAMPLES - 1 - RESAMPLES / 40])
    }

    /// Share of ham that ended with spam status.
    pub fn ham_to_spam(&self) -> f64 {
        ratio(self.ham[2], self.ham.iter().sum())
    }

    /// Share of spam that was approved at once.
    pub fn spam_approved(&self) -> f64 {
        ratio(self.spam[0], self.spam.iter().sum())
    }
}

/// `part / whole`, 0 when there is no whole.
pub(super) fn ratio(part: usize, whole: usize) -> f64 {
    if whole == 0 {
        0.0
    } else {
        part as f64 / whole as f64
    }
}

/// The 95% Wilson score interval of the share `part / whole`: unlike the share ± 1.96
/// standard errors, it stays within 0 to 1 and says something when `part` is 0.
pub(super) fn wilson(part: usize, whole: usize) -> (f64, f64) {
    if whole == 0 {
        return (0.0, 0.0);
    }
    const Z: f64 = 1.96;
    let (n, p) = (whole as f64, part as f64 / whole as f64);
    let centre = p + Z * Z / (2.0 * n);
    let spread = Z * (p * (1.0 - p) / n + Z * Z / (4.0 * n * n)).sqrt();
    let scale = 1.0 + Z * Z / n;
    (
        ((centre - spread) / scale).max(0.0),
        ((centre + spread) / scale).min(1.0),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_wilson_interval_is_the_textbook_one() {
        let round = |(low, high): (f64, f64)| ((low * 1000.0).round(), (high * 1000.0).round());
        // 2 of 53: 0.0104 to 0.1275.
        assert_eq!(round(wilson(2, 53)), (10.0, 128.0));
        // None of 53 still leaves up to 6.8%.
        assert_eq!(round(wilson(0, 53)), (0.0, 68.0));
        assert_eq!(wilson(0, 0), (0.0, 0.0));
        assert_eq!(round(wilson(53, 53)), (932.0, 1000.0));
    }

    #[test]
    fn the_interval_of_an_mcc_holds_it_and_narrows_with_more_replies() {
        let few = Outcome {
            spam: [2, 13, 38],
            ham: [51, 2, 0],
        };
        let (low, high) = few.mcc_interval(1);
        assert!(low < few.mcc(1) && few.mcc(1) < high, "{low} {high}");
        assert_eq!(few.mcc_interval(1), (low, high), "the same every run");
        let many = Outcome {
            spam: few.spam.map(|n| n * 10),
            ham: few.ham.map(|n| n * 10),
        };
        let (many_low, many_high) = many.mcc_interval(1);
        assert!(many_high - many_low < (high - low) / 2.0);
        let perfect = Outcome {
            spam: [0, 3, 7],
            ham: [10, 0, 0],
        };
        assert_eq!(perfect.mcc_interval(1), (1.0, 1.0));
        assert_eq!(Outcome::default().mcc_interval(1), (0.0, 0.0));
    }

    #[test]
    fn the_matthews_coefficient_is_one_for_a_perfect_split_and_zero_without_positives() {
        let perfect = Outcome {
            spam: [0, 3, 7],
            ham: [10, 0, 0],
        };
        assert_eq!(perfect.mcc(1), 1.0);
        assert_eq!(Outcome::default().mcc(1), 0.0);
        assert_eq!(perfect.confusion(2), (7, 0, 10, 3));
    }
}
