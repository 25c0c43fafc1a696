//! The built-in prior's logistic regression: one weight per hashed feature, trained once on
//! the prior's labelled comments and shipped with it.
//!
//! Robinson's method over the prior's counts is sure of itself on text unlike what it was
//! trained on (it took an ordinary newspaper reader's thanks for YouTube spam), because it
//! treats every word as independent evidence. A regression weighs the words together, so
//! its probability stays near what it knows on text from another kind of site. A new site,
//! which has only the prior, is judged by it; docs/SPAM.md has the measurements.

use std::{collections::HashMap, hash::BuildHasherDefault};

use super::text::FeatureHasher;

/// Per feature id: its weight in the regression.
pub type WeightMap = HashMap<u64, f32, BuildHasherDefault<FeatureHasher>>;

/// The inverse strength of the L2 penalty, as scikit-learn's `C`: each example's loss counts
/// this many times the penalty of a unit weight. Cold caught MCC hardly moved between 1 and
/// 10 (docs/SPAM.md).
const INVERSE_PENALTY: f64 = 10.0;
/// Full passes over the examples. Adam is within 1% of the optimum's loss after 500.
const STEPS: usize = 500;
/// Adam's step size and decay rates (Kingma and Ba's defaults, with a larger step).
const STEP_SIZE: f64 = 0.05;
const BETA1: f64 = 0.9;
const BETA2: f64 = 0.999;
const EPSILON: f64 = 1e-8;
/// Weights smaller than this are not kept: they move no probability by a hundredth.
const MIN_WEIGHT: f64 = 0.01;

/// A trained regression: `p = 1 / (1 + e^-(bias + Σ weights))` over a reply's features.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Logistic {
    pub bias: f32,
    pub weights: WeightMap,
}

impl Logistic {
    /// The weight of one feature; 0 for a feature it does not know.
    pub fn weight(&self, feature: u64) -> f64 {
        self.weights.get(&feature).copied().map_or(0.0, f64::from)
    }

    /// Trains on labelled examples (each a reply's features, and whether it is spam), over
    /// the features found in at least `min_count` of them: full-batch gradient descent with
    /// Adam on the mean log loss plus the L2 penalty. Deterministic for the same examples.
    pub fn train(examples: &[(&[u64], bool)], min_count: u32) -> Logistic {
        let mut seen: HashMap<u64, u32, BuildHasherDefault<FeatureHasher>> = HashMap::default();
        for (features, _) in examples {
            for &feature in *features {
                *seen.entry(feature).or_default() += 1;
            }
        }
        let mut ids: Vec<u64> = seen
            .into_iter()
            .filter(|&(_, n)| n >= min_count)
            .map(|(id, _)| id)
            .collect();
        ids.sort_unstable();
        let index: HashMap<u64, usize, BuildHasherDefault<FeatureHasher>> =
            ids.iter().enumerate().map(|(i, &id)| (id, i)).collect();
        let rows: Vec<(Vec<usize>, f64)> = examples
            .iter()
            .map(|(features, spam)| {
                let columns = features.iter().filter_map(|f| index.get(f).copied());
                (columns.collect(), if *spam { 1.0 } else { 0.0 })
            })
            .collect();
        if rows.is_empty() {
            return Logistic::default();
        }

        let n = rows.len() as f64;
        let penalty = 1.0 / (INVERSE_PENALTY * n);
        let mut weights = vec![0.0f64; ids.len()];
        let mut bias = 0.0f64;
        // Adam's moment estimates; the bias's are the last entries.
        let mut first = vec![0.0f64; ids.len() + 1];
        let mut second = vec![0.0f64; ids.len() + 1];
        let mut gradient = vec![0.0f64; ids.len() + 1];
        for step in 1..=STEPS {
            gradient.fill(0.0);
            for (columns, label) in &rows {
                let z = bias + columns.iter().map(|&j| weights[j]).sum::<f64>();
                let error = (sigmoid(z) - label) / n;
                for &j in columns {
                    gradient[j] += error;
                }
                gradient[ids.len()] += error;
            }
            for (g, w) in gradient.iter_mut().zip(&weights) {
                *g += penalty * w;
            }
            let correct1 = 1.0 - BETA1.powi(step as i32);
            let correct2 = 1.0 - BETA2.powi(step as i32);
            for (j, &g) in gradient.iter().enumerate() {
                first[j] = BETA1 * first[j] + (1.0 - BETA1) * g;
                second[j] = BETA2 * second[j] + (1.0 - BETA2) * g * g;
                let change =
                    STEP_SIZE * (first[j] / correct1) / ((second[j] / correct2).sqrt() + EPSILON);
                match weights.get_mut(j) {
                    Some(w) => *w -= change,
                    None => bias -= change,
                }
            }
        }
        Logistic {
            bias: bias as f32,
            weights: ids
                .into_iter()
                .zip(weights)
                .filter(|(_, w)| w.abs() >= MIN_WEIGHT)
                .map(|(id, w)| (id, w as f32))
                .collect(),
        }
    }
}

pub(crate) fn sigmoid(z: f64) -> f64 {
    1.0 / (1.0 + (-z).exp())
}

/// The log-odds of `p`, kept finite.
pub(crate) fn logit(p: f64) -> f64 {
    let p = p.clamp(1e-9, 1.0 - 1e-9);
    (p / (1.0 - p)).ln()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn it_learns_which_features_mean_spam() {
        let spam: &[u64] = &[1, 2, 9];
        let also_spam: &[u64] = &[1, 3, 9];
        let ham: &[u64] = &[4, 5, 9];
        let also_ham: &[u64] = &[4, 6, 9];
        let examples = [
            (spam, true),
            (also_spam, true),
            (ham, false),
            (also_ham, false),
        ];
        let model = Logistic::train(&examples, 2);
        assert!(model.weight(1) > 1.0, "{model:?}");
        assert!(model.weight(4) < -1.0, "{model:?}");
        // Seen once, or in both classes alike: no weight.
        assert_eq!(model.weight(2), 0.0);
        assert!(model.weight(9).abs() < MIN_WEIGHT);
        let p = |features: &[u64]| {
            sigmoid(f64::from(model.bias) + features.iter().map(|&f| model.weight(f)).sum::<f64>())
        };
        assert!(p(&[1, 7]) > 0.8);
        assert!(p(&[4, 7]) < 0.2);
        assert!((p(&[7]) - 0.5).abs() < 0.1, "an unknown reply is unsure");
        assert_eq!(Logistic::train(&examples, 2), model, "deterministic");
    }

    #[test]
    fn nothing_to_learn_from_gives_an_unsure_model() {
        assert_eq!(Logistic::train(&[], 2), Logistic::default());
        assert_eq!(sigmoid(0.0), 0.5);
        assert!(logit(1.0).is_finite() && logit(0.0).is_finite());
        assert!((logit(sigmoid(1.5)) - 1.5).abs() < 1e-9);
    }
}
