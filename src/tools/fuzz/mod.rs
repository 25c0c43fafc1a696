//! `replyguard fuzz`: millions of generated inputs through the code a request reaches before
//! the store, on stable Rust, counting panics and timing the slowest input.
//!
//! Why a command of the `replyguard` binary, beside `bench` and `spam-eval`, and not a
//! cargo-fuzz crate under `fuzz/`: libFuzzer needs a nightly compiler, and the targets need
//! the handlers' private steps (`api::fuzzing` reaches `fields`, `paging`, `wire` and the
//! policy merge from inside the crate, so nothing of them becomes public API). Built with the
//! crate, it runs in the release build operators already have, and `cargo test`, clippy and
//! `.ci/run` cover it with no workspace to keep (tests/fuzz.rs runs a short pass).
//!
//! Each case's input comes from its own generator, seeded by the run's seed and the case's
//! number (`generate.rs`), so a case is replayed with `--seed S --case N`. A panic is caught
//! with `catch_unwind`, counted, written with its input to `--crash-dir`, and makes the command
//! fail. Each input is timed; one slower than any before is timed twice more and counted at
//! its fastest, so that a case the scheduler interrupted is not taken for a slow one.

mod families;
mod generate;

use std::{
    cell::{Cell, RefCell},
    fmt,
    io::Write,
    panic::{self, AssertUnwindSafe},
    path::{Path, PathBuf},
    sync::Once,
    time::{Duration, Instant},
};

use clap::ValueEnum;

use families::{Assessment, Masking, Policies, Requests, Target, Tokens, Validation};
use generate::Gen;

/// A family of targets: one part of what a request goes through.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum Family {
    /// Every client message decoded from arbitrary and mutated bytes, then read as its
    /// handler reads it (fields, page tokens, the reply's validation, the policy merge).
    Requests,
    /// A reply's fields validated (`domain::reply`), and blocklist values parsed.
    Validation,
    /// Contact details masked and text rendered to HTML (`privacy`).
    Masking,
    /// Page tokens: arbitrary text decoded, every listing's tokens made and read back.
    Tokens,
    /// Policy updates merged into a stored policy and checked.
    Policy,
    /// The spam assessment of valid replies with adversarial texts.
    Assessment,
}

impl Family {
    pub const ALL: [Family; 6] = [
        Family::Requests,
        Family::Validation,
        Family::Masking,
        Family::Tokens,
        Family::Policy,
        Family::Assessment,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Family::Requests => "requests",
            Family::Validation => "validation",
            Family::Masking => "masking",
            Family::Tokens => "tokens",
            Family::Policy => "policy",
            Family::Assessment => "assessment",
        }
    }
}

/// How one family is run.
#[derive(Clone, Debug)]
pub struct Options {
    /// How many inputs.
    pub inputs: u64,
    /// The run's seed: the same seed gives the same inputs.
    pub seed: u64,
    /// The number of the first case, so that one case can be run again alone.
    pub first_case: u64,
    /// Where an input that panicked is written; nowhere when `None`.
    pub crash_dir: Option<PathBuf>,
    /// How many threads share the cases (each case is the same whichever runs it).
    pub threads: u64,
}

/// An input that panicked.
#[derive(Clone, Debug)]
pub struct Crash {
    pub case: u64,
    /// The panic's message and where it was raised.
    pub message: String,
    /// The file the input was written to.
    pub file: Option<PathBuf>,
}

/// The slowest input of a family.
#[derive(Clone, Debug)]
pub struct Slowest {
    pub case: u64,
    /// The fastest of its timings.
    pub time: Duration,
    pub description: String,
}

/// What running one family found.
#[derive(Clone, Debug)]
pub struct Report {
    pub family: Family,
    pub seed: u64,
    pub inputs: u64,
    pub panics: u64,
    /// The first few inputs that panicked.
    pub crashes: Vec<Crash>,
    pub slowest: Option<Slowest>,
    pub elapsed: Duration,
}

impl fmt::Display for Report {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let rate = self.inputs as f64 / self.elapsed.as_secs_f64().max(1e-9);
        write!(
            f,
            "{:<11} {:>12} inputs  {:>3} panics  {:>8.1} s  {:>9.0}/s",
            self.family.name(),
            self.inputs,
            self.panics,
            self.elapsed.as_secs_f64(),
            rate
        )?;
        if let Some(slowest) = &self.slowest {
            write!(
                f,
                "  slowest {:.3} ms (case {}: {})",
                slowest.time.as_secs_f64() * 1e3,
                slowest.case,
                slowest.description
            )?;
        }
        for crash in &self.crashes {
            write!(
                f,
                "\n  PANIC case {}: {}{}\n    replay: replyguard fuzz {} --seed {} --case {}",
                crash.case,
                crash.message,
                crash.file.as_ref().map_or_else(String::new, |file| format!(
                    " (input in {})",
                    file.display()
                )),
                self.family.name(),
                self.seed,
                crash.case
            )?;
        }
        Ok(())
    }
}

/// How many crashes a report keeps in full.
const CRASHES_KEPT: usize = 10;

/// An input faster than this is not timed again: it cannot be the slowest one worth a look.
const RETIME_ABOVE: Duration = Duration::from_micros(100);

/// Runs `family` for `options.inputs` inputs.
pub fn run(family: Family, options: &Options) -> Report {
    match family {
        Family::Requests => run_target(family, &Requests, options),
        Family::Validation => run_target(family, &Validation, options),
        Family::Masking => run_target(family, &Masking, options),
        Family::Tokens => run_target(family, &Tokens, options),
        Family::Policy => run_target(family, &Policies, options),
        Family::Assessment => run_target(family, &Assessment::default(), options),
    }
}

/// The input of one case, as its generator makes it, for a look before a replay.
pub fn describe_case(family: Family, seed: u64, case: u64) -> String {
    fn show<T: Target>(target: &T, seed: u64, case: u64) -> String {
        let input = target.generate(&mut Gen::for_case(seed, case));
        format!("{}\n{input:#?}", target.describe(&input))
    }
    match family {
        Family::Requests => show(&Requests, seed, case),
        Family::Validation => show(&Validation, seed, case),
        Family::Masking => show(&Masking, seed, case),
        Family::Tokens => show(&Tokens, seed, case),
        Family::Policy => show(&Policies, seed, case),
        Family::Assessment => show(&Assessment::default(), seed, case),
    }
}

thread_local! {
    /// Set while a case runs: its panic is recorded here instead of printed.
    static CATCHING: Cell<bool> = const { Cell::new(false) };
    static LAST_PANIC: RefCell<Option<String>> = const { RefCell::new(None) };
}

/// Installs, once, a panic hook that records a fuzzed case's panic and leaves every other
/// panic to the hook that was there before.
fn catch_panics_quietly() {
    static INSTALL: Once = Once::new();
    INSTALL.call_once(|| {
        let previous = panic::take_hook();
        panic::set_hook(Box::new(move |info| {
            if CATCHING.get() {
                let location = info
                    .location()
                    .map_or_else(String::new, |l| format!(" at {}:{}", l.file(), l.line()));
                let message = info
                    .payload()
                    .downcast_ref::<&str>()
                    .map(|s| (*s).to_owned())
                    .or_else(|| info.payload().downcast_ref::<String>().cloned())
                    .unwrap_or_else(|| "a panic".to_owned());
                LAST_PANIC.set(Some(format!("{message}{location}")));
            } else {
                previous(info);
            }
        }));
    });
}

/// Runs `target` once, timed; the panic's message if it panicked.
fn timed<T: Target>(target: &T, input: &T::Input) -> (Duration, Option<String>) {
    CATCHING.set(true);
    let start = Instant::now();
    let outcome = panic::catch_unwind(AssertUnwindSafe(|| target.run(input)));
    let time = start.elapsed();
    CATCHING.set(false);
    let panicked = outcome
        .err()
        .map(|_| LAST_PANIC.take().unwrap_or_else(|| "a panic".to_owned()));
    (time, panicked)
}

fn run_target<T: Target + Sync>(family: Family, target: &T, options: &Options) -> Report {
    catch_panics_quietly();
    // Lazily built regexes, link finders and the prior are built before any case is timed.
    let warm_up = target.generate(&mut Gen::for_case(options.seed, u64::MAX));
    let _ = timed(target, &warm_up);

    let started = Instant::now();
    let threads = options.threads.max(1);
    let parts: Vec<Report> = std::thread::scope(|scope| {
        let workers: Vec<_> = (0..threads)
            .map(|nth| scope.spawn(move || run_cases(family, target, options, nth, threads)))
            .collect();
        workers
            .into_iter()
            .map(|worker| {
                worker
                    .join()
                    .unwrap_or_else(|_| panic::resume_unwind(Box::new("a fuzzing thread failed")))
            })
            .collect()
    });
    let mut report = Report {
        family,
        seed: options.seed,
        inputs: 0,
        panics: 0,
        crashes: Vec::new(),
        slowest: None,
        elapsed: started.elapsed(),
    };
    for part in parts {
        report.inputs += part.inputs;
        report.panics += part.panics;
        report.crashes.extend(part.crashes);
        if part.slowest.as_ref().map(|s| s.time) > report.slowest.as_ref().map(|s| s.time) {
            report.slowest = part.slowest;
        }
    }
    report.crashes.sort_by_key(|crash| crash.case);
    report.crashes.truncate(CRASHES_KEPT);
    report
}

/// The cases of `options` whose number is `nth` modulo `threads`.
fn run_cases<T: Target>(
    family: Family,
    target: &T,
    options: &Options,
    nth: u64,
    threads: u64,
) -> Report {
    let mut report = Report {
        family,
        seed: options.seed,
        inputs: 0,
        panics: 0,
        crashes: Vec::new(),
        slowest: None,
        elapsed: Duration::ZERO,
    };
    let last = options.first_case.saturating_add(options.inputs);
    let mut case = options.first_case.saturating_add(nth);
    while case < last {
        run_case(target, options, case, &mut report);
        case = case.saturating_add(threads);
    }
    report
}

fn run_case<T: Target>(target: &T, options: &Options, case: u64, report: &mut Report) {
    let input = target.generate(&mut Gen::for_case(options.seed, case));
    let (mut time, panicked) = timed(target, &input);
    report.inputs += 1;
    if let Some(message) = panicked {
        report.panics += 1;
        if report.crashes.len() < CRASHES_KEPT {
            let file = options.crash_dir.as_deref().and_then(|dir| {
                write_crash(dir, report.family, options.seed, case, &message, &input)
            });
            report.crashes.push(Crash {
                case,
                message,
                file,
            });
        }
        return;
    }
    let slowest_so_far = report.slowest.as_ref().map_or(Duration::ZERO, |s| s.time);
    if time <= slowest_so_far {
        return;
    }
    if time > RETIME_ABOVE {
        for _ in 0..2 {
            time = time.min(timed(target, &input).0);
        }
    }
    if time > slowest_so_far {
        report.slowest = Some(Slowest {
            case,
            time,
            description: target.describe(&input),
        });
    }
}

/// Writes a panicking input where it can be read and replayed; the file, if it was written.
fn write_crash<I: fmt::Debug>(
    dir: &Path,
    family: Family,
    seed: u64,
    case: u64,
    message: &str,
    input: &I,
) -> Option<PathBuf> {
    std::fs::create_dir_all(dir).ok()?;
    let path = dir.join(format!("{}-seed-{seed}-case-{case}.txt", family.name()));
    let mut file = std::fs::File::create(&path).ok()?;
    writeln!(
        file,
        "panic: {message}\nreplay: replyguard fuzz {} --seed {seed} --case {case}\n\n{input:#?}",
        family.name()
    )
    .ok()?;
    Some(path)
}
