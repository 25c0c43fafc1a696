//! A short pass of `replyguard fuzz`: a few thousand generated inputs of every family through
//! the code a request reaches (decoding, validation, masking and rendering, page tokens, policy
//! updates, the assessment), none of which may panic. How fast they run is the command's to
//! report (docs/FUZZING.md), never a test's.

use replyguard::tools::fuzz::{self, Family, Options};

#[test]
fn every_family_runs_its_inputs_without_a_panic() {
    for family in Family::ALL {
        let options = Options {
            inputs: 2_000,
            seed: 20,
            first_case: 0,
            crash_dir: None,
            threads: 2,
        };
        let report = fuzz::run(family, &options);
        assert_eq!(report.inputs, options.inputs, "{report}");
        assert_eq!(report.panics, 0, "{report}");
    }
}
