//! The operator's commands of the `replyguard` binary: serve, migrate,
//! sites and tokens, which talk to the database directly, `spam-eval`,
//! which only reads labelled files, and `fuzz`, which reads nothing.
//!
//! Tokens are printed once, here, and stored only as digests. Issuing and
//! revoking one leaves an audit row on each of its sites, by `operator`.

use std::{path::PathBuf, process::ExitCode};

use clap::{CommandFactory, FromArgMatches, Parser, Subcommand, ValueEnum, parser::ValueSource};

use super::{
    bench::{self, BenchArgs, BenchOutput},
    export::{self, ExportArgs},
    fuzz::{self, Family},
    import::{self, ImportArgs},
    listing::{self, ListOutput},
    rotation::{self, KeyArgs, RotateArgs},
    seed::{self, SeedArgs},
    spam_eval,
};
use crate::{
    config::{DatabaseArgs, SECRET_SETTINGS, ServeSettings},
    domain::Scope,
    ids::{SiteId, TokenId},
    privacy::{generate_token, token_digest},
    server,
    spam::Policy,
    store::{self, NewToken, Role, Store, StoreError},
    telemetry,
};

/// How many characters of a token name it in listings and revocations.
const PREFIX_RANDOM_CHARS: usize = 8;

#[derive(Parser, Debug)]
#[command(
    name = "replyguard",
    version,
    about = "The replyguard comment-moderation server and operator's tool"
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

impl Cli {
    /// The command line, parsed; exits as clap does on an error, and on a secret given on the
    /// command line.
    pub fn parse_args() -> Cli {
        Cli::try_parse_args(std::env::args_os()).unwrap_or_else(|err| err.exit())
    }

    /// Parses `args` (the program's name first), refusing a secret key given on the command
    /// line: `ps` shows it to every user of the machine, and shell history keeps it. The same
    /// setting from the environment is taken.
    pub fn try_parse_args<I, T>(args: I) -> Result<Cli, clap::Error>
    where
        I: IntoIterator<Item = T>,
        T: Into<std::ffi::OsString> + Clone,
    {
        let mut command = Cli::command();
        let matches = command.try_get_matches_from_mut(args)?;
        if let Some((flag, variable)) = secret_on_command_line(&matches) {
            return Err(command.error(
                clap::error::ErrorKind::ArgumentConflict,
                format!(
                    "{flag} on the command line shows the key to every user through `ps`: set \
                     {variable} in the environment, or give {flag}-file FILE (readable by its \
                     owner only)"
                ),
            ));
        }
        Cli::from_arg_matches(&matches)
    }
}

/// The first secret setting whose value came from the command line, in the command or any of
/// its subcommands: its flag and its environment variable.
fn secret_on_command_line(matches: &clap::ArgMatches) -> Option<(&'static str, &'static str)> {
    let mut matches = matches;
    loop {
        for id in matches.ids() {
            let found = SECRET_SETTINGS
                .iter()
                .find(|(name, ..)| id.as_str() == *name);
            if let Some((name, flag, variable)) = found
                && matches.value_source(name) == Some(ValueSource::CommandLine)
            {
                return Some((flag, variable));
            }
        }
        matches = matches.subcommand()?.1;
    }
}

#[derive(Subcommand, Debug)]
pub enum Command {
    /// Run the gRPC server.
    Serve(ServeSettings),
    /// Apply the database migrations and exit.
    Migrate(DatabaseArgs),
    /// Manage sites.
    #[command(subcommand)]
    Site(SiteCommand),
    /// Issue and revoke credentials.
    #[command(subcommand)]
    Token(TokenCommand),
    /// Make a secret key, or move the deployment to a new one.
    #[command(subcommand)]
    Key(KeyCommand),
    /// Load-test a running server over real gRPC.
    Bench(BenchArgs),
    /// Fill a site with generated replies (a million by default), for load tests.
    Seed(SeedArgs),
    /// Import a site's comments from WordPress (WXR), Disqus, Isso, Commento or JSON lines.
    Import(ImportArgs),
    /// Export a site whole (comments, threads, statuses, policy, blocks, audit log) as JSON
    /// lines; emails only with --include-emails.
    Export(ExportArgs),
    /// Measure the spam assessment on labelled comments (COMMENT_ID,AUTHOR,DATE,CONTENT,CLASS).
    SpamEval(SpamEvalArgs),
    /// Print a completion script for a shell: `replyguard completions bash > /etc/bash_completion.d/replyguard`.
    Completions {
        #[arg(value_enum)]
        shell: crate::tools::shell::Shell,
    },
    /// Print the manual page (roff): `replyguard man > replyguard.1`.
    Man,
    /// Run generated inputs through request decoding, validation, masking, page tokens,
    /// policy updates and the assessment; print each family's panics and slowest input.
    Fuzz(FuzzArgs),
}

#[derive(clap::Args, Debug)]
pub struct FuzzArgs {
    /// The families to run, one after another; all of them by default.
    #[arg(value_enum)]
    pub families: Vec<Family>,
    /// Inputs per family.
    #[arg(long, default_value_t = 100_000)]
    pub inputs: u64,
    /// The seed the inputs are made from: the same seed makes the same inputs.
    #[arg(long, default_value_t = 1)]
    pub seed: u64,
    /// Run only this case (as a report names it), printing its input first.
    #[arg(long, value_name = "N", conflicts_with = "inputs")]
    pub case: Option<u64>,
    /// Fail when a family's slowest input took longer than this many milliseconds.
    #[arg(long, value_name = "MS")]
    pub max_ms: Option<f64>,
    /// Where inputs that panicked are written.
    #[arg(long, value_name = "DIR", default_value = "fuzz-crashes")]
    pub crash_dir: PathBuf,
    /// Threads sharing each family's cases.
    #[arg(long, default_value_t = 1)]
    pub threads: u64,
}

#[derive(clap::Args, Debug)]
pub struct SpamEvalArgs {
    /// Labelled CSV files; by default every .csv in ../shared/data/youtube-spam.
    pub files: Vec<PathBuf>,
    /// `cold`: a new site, prior from the other files only (the others given, and those of
    /// ../shared/data/youtube-spam that are not given); `learning`: the first 70% of each class
    /// taught as moderator decisions, the last 30% judged; `shared`: cold, with the other files'
    /// replies taught to the deployment's shared counts (not part of `both`).
    #[arg(long, value_enum, default_value_t = EvalProtocol::Both)]
    pub protocol: EvalProtocol,
    /// The share of each class (oldest first) the learning protocol teaches, above 0 and below
    /// 1; the rest is judged. Smaller shares show a site's first decisions.
    #[arg(long, value_name = "SHARE", default_value_t = spam_eval::TAUGHT_SHARE, value_parser = parse_share)]
    pub taught_share: f64,
    /// Judge each file against the prior built into this release, as a new site has it,
    /// instead of one trained on the other files: for files the built-in prior was not made
    /// from (docs/SPAM.md).
    #[arg(long, conflicts_with = "write_prior")]
    pub built_in_prior: bool,
    /// Also judge the replies of PATH (a CSV with a `CONTENT` column and, optionally,
    /// `ARTICLE`), none of them spam, as a new site would: what it holds and sends to spam
    /// are false alarms. For ../shared/data/news-comments; may be given more than once.
    #[arg(long, value_name = "PATH")]
    pub news_ham: Vec<PathBuf>,
    /// List every misjudged reply with its reasons.
    #[arg(long)]
    pub show_errors: bool,
    /// Instead of measuring, train a prior on every file and write it to PATH.
    #[arg(long, value_name = "PATH")]
    pub write_prior: Option<PathBuf>,
    /// Instead of measuring, write each comment's label and classifier features to PATH
    /// (tab-separated), for comparing classifiers outside (docs/experiments/).
    #[arg(long, value_name = "PATH", conflicts_with = "write_prior")]
    pub write_features: Option<PathBuf>,
}

#[derive(Subcommand, Debug)]
pub enum KeyCommand {
    /// Write a fresh secret key to a new file, readable by its owner only: for
    /// REPLYGUARD_SECRET_KEY, or for `key rotate --new-key-file`.
    Generate {
        /// The file to write; an existing file is never replaced.
        path: PathBuf,
    },
    /// Tell whether a key is the one the database is under, as for a backup and its key.
    Check(KeyArgs),
    /// Seal every stored email and text again under a new key and key every author again, in
    /// one transaction, as after a leak. Stop every replica first.
    Rotate(RotateArgs),
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum EvalProtocol {
    Cold,
    Learning,
    Both,
    /// A new site of a deployment whose other sites share their lessons (`--shared-learning`):
    /// the other files' replies taught to the shared counts, nothing of the judged file.
    Shared,
}

#[derive(Subcommand, Debug)]
pub enum SiteCommand {
    /// Create a site; print its site key and a moderator token.
    Add {
        /// The site's name, such as `news.example.com`.
        name: String,
        #[command(flatten)]
        database: DatabaseArgs,
        /// `text` for people, `env` for `eval` in a shell.
        #[arg(long, value_enum, default_value_t = TokenOutput::Text)]
        output: TokenOutput,
        /// What the moderator token may do, comma-separated: moderate,
        /// policy, reveal-email, erase, integrations.
        #[arg(long, value_name = "SCOPES", default_value = "moderate,policy", value_parser = parse_scopes)]
        scopes: ScopeList,
    },
    /// List every site.
    List {
        #[command(flatten)]
        database: DatabaseArgs,
        #[arg(long, value_enum, default_value_t = ListOutput::Table)]
        output: ListOutput,
    },
}

#[derive(Subcommand, Debug)]
pub enum TokenCommand {
    /// Issue a credential; it is printed once.
    Add {
        /// The site it is for; repeat for a moderator of several sites.
        #[arg(long = "site", required = true)]
        sites: Vec<String>,
        /// `host` (a site key, for the Comments API) or `moderator`.
        #[arg(long, value_parser = ["host", "moderator"])]
        role: String,
        /// What a moderator token may do, comma-separated: moderate, policy,
        /// reveal-email, erase, integrations [default: moderate,policy].
        #[arg(long, value_name = "SCOPES", value_parser = parse_scopes)]
        scopes: Option<ScopeList>,
        #[command(flatten)]
        database: DatabaseArgs,
        /// `text` for people, `env` for `eval` in a shell (`REPLYGUARD_SITE_KEY=…` or
        /// `REPLYGUARD_TOKEN=…`).
        #[arg(long, value_enum, default_value_t = TokenOutput::Text)]
        output: TokenOutput,
    },
    /// List every live token: prefixes, roles, scopes, sites (never the tokens, which are not
    /// stored).
    List {
        #[command(flatten)]
        database: DatabaseArgs,
        #[arg(long, value_enum, default_value_t = ListOutput::Table)]
        output: ListOutput,
    },
    /// Revoke every credential whose name starts with PREFIX.
    Revoke {
        /// A token's prefix as printed when issued (`rg_mod_AbCd1234`), or the whole token.
        prefix: String,
        #[command(flatten)]
        database: DatabaseArgs,
    },
}

/// The value of `--scopes`: the whole comma-separated list, parsed (and
/// refused) as one.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ScopeList(pub Vec<Scope>);

fn parse_scopes(text: &str) -> Result<ScopeList, String> {
    Scope::parse_list(text).map(ScopeList)
}

fn parse_share(text: &str) -> Result<f64, String> {
    match text.trim().parse::<f64>() {
        Ok(share) if share > 0.0 && share < 1.0 => Ok(share),
        _ => Err("must be a number above 0 and below 1, such as 0.7".to_owned()),
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum TokenOutput {
    Text,
    Env,
}

/// Runs one command; the process exit code.
pub async fn run(cli: Cli) -> ExitCode {
    let result = match cli.command {
        Command::Serve(settings) => serve(settings).await,
        Command::Completions { shell } => {
            crate::tools::shell::completions(<Cli as clap::CommandFactory>::command(), shell)
                .map_err(|err| err.to_string())
        }
        Command::Man => crate::tools::shell::man(<Cli as clap::CommandFactory>::command())
            .map_err(|err| err.to_string()),
        Command::Migrate(database) => store::open(&database.url)
            .await
            .map(|_| eprintln!("migrations applied"))
            .map_err(|e| e.to_string()),
        Command::Site(SiteCommand::Add {
            name,
            database,
            output,
            scopes,
        }) => site_add(&database, &name, output, scopes.0).await,
        Command::Token(TokenCommand::Add {
            sites,
            role,
            scopes,
            database,
            output,
        }) => token_add(&database, &sites, &role, scopes.map(|list| list.0), output).await,
        Command::Site(SiteCommand::List { database, output }) => {
            list(&database, |store| Box::pin(listing::sites(store, output))).await
        }
        Command::Token(TokenCommand::List { database, output }) => {
            list(&database, |store| Box::pin(listing::tokens(store, output))).await
        }
        Command::Token(TokenCommand::Revoke { prefix, database }) => {
            token_revoke(&database, &prefix).await
        }
        Command::Key(KeyCommand::Generate { path }) => rotation::generate(&path),
        Command::Key(KeyCommand::Check(args)) => {
            rotation::check(&args).await.map(|said| println!("{said}"))
        }
        Command::Key(KeyCommand::Rotate(args)) => rotation::rotate(&args)
            .await
            .map(|rotated| println!("{}", rotated.summary())),
        Command::Bench(args) => bench(&args).await,
        Command::Seed(args) => seed(&args).await,
        Command::Import(args) => import(&args).await,
        Command::Export(args) => export::run(&args).await.map(|written| {
            eprintln!(
                "exported {} comments, {} closed articles, {} blocks, {} notices and {} audit rows of {}",
                written.comments,
                written.closed_articles,
                written.blocks,
                written.notices,
                written.audit_rows,
                args.site
            )
        }),
        Command::SpamEval(args) => spam_eval(args),
        Command::Fuzz(args) => run_fuzz(&args),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(message) => {
            eprintln!("replyguard: {message}");
            ExitCode::FAILURE
        }
    }
}

fn run_fuzz(args: &FuzzArgs) -> Result<(), String> {
    let families = if args.families.is_empty() {
        Family::ALL.to_vec()
    } else {
        args.families.clone()
    };
    let options = fuzz::Options {
        inputs: if args.case.is_some() { 1 } else { args.inputs },
        seed: args.seed,
        first_case: args.case.unwrap_or(0),
        crash_dir: Some(args.crash_dir.clone()),
        threads: args.threads,
    };
    let mut failures = Vec::new();
    for family in families {
        if let Some(case) = args.case {
            println!("{}", fuzz::describe_case(family, args.seed, case));
        }
        let report = fuzz::run(family, &options);
        println!("{report}");
        if report.panics > 0 {
            failures.push(format!("{}: {} panics", family.name(), report.panics));
        }
        if let (Some(max), Some(slowest)) = (args.max_ms, &report.slowest)
            && slowest.time.as_secs_f64() * 1e3 > max
        {
            failures.push(format!(
                "{}: an input took {:.3} ms, over {max} ms",
                family.name(),
                slowest.time.as_secs_f64() * 1e3
            ));
        }
    }
    if failures.is_empty() {
        Ok(())
    } else {
        Err(failures.join("; "))
    }
}

fn spam_eval(args: SpamEvalArgs) -> Result<(), String> {
    let files = if args.files.is_empty() {
        spam_eval::default_files()?
    } else {
        args.files
    };
    if let Some(out) = args.write_prior {
        println!("{}", spam_eval::write_prior(&files, &out)?);
        return Ok(());
    }
    if let Some(out) = args.write_features {
        println!("{}", spam_eval::write_features(&files, &out)?);
        return Ok(());
    }
    let protocol = match args.protocol {
        EvalProtocol::Cold => spam_eval::Protocol::Cold,
        EvalProtocol::Learning => spam_eval::Protocol::Learning,
        EvalProtocol::Both => spam_eval::Protocol::Both,
        EvalProtocol::Shared => spam_eval::Protocol::Shared,
    };
    let prior = if args.built_in_prior {
        spam_eval::PriorSource::BuiltIn
    } else {
        spam_eval::PriorSource::OtherFiles {
            also: spam_eval::untaught_defaults(&files),
        }
    };
    print!(
        "{}",
        spam_eval::run(
            &files,
            &args.news_ham,
            protocol,
            prior,
            args.taught_share,
            args.show_errors
        )?
    );
    Ok(())
}

async fn serve(settings: ServeSettings) -> Result<(), String> {
    telemetry::init(settings.log_format);
    let running = server::start(&settings).await.map_err(|e| e.to_string())?;
    shutdown_signal().await;
    tracing::info!("shutting down: finishing calls in flight");
    running.shutdown().await.map_err(|e| e.to_string())
}

/// Resolves on SIGINT or SIGTERM.
async fn shutdown_signal() {
    let interrupt = tokio::signal::ctrl_c();
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        match signal(SignalKind::terminate()) {
            Ok(mut terminate) => {
                tokio::select! {
                    _ = interrupt => {}
                    _ = terminate.recv() => {}
                }
            }
            Err(_) => {
                let _ = interrupt.await;
            }
        }
    }
    #[cfg(not(unix))]
    let _ = interrupt.await;
}

/// A new token of `role` for `sites`, a moderator token with the default
/// scopes: the secret text and what to store.
pub fn issue(role: Role, sites: Vec<SiteId>) -> (String, NewToken) {
    let scopes = match role {
        Role::Host => Vec::new(),
        Role::Moderator => Scope::DEFAULT.to_vec(),
    };
    issue_with_scopes(role, sites, scopes)
}

/// A new token of `role` for `sites` with `scopes` (none for a site key):
/// the secret text and what to store.
pub fn issue_with_scopes(role: Role, sites: Vec<SiteId>, scopes: Vec<Scope>) -> (String, NewToken) {
    let kind = match role {
        Role::Host => "rg_site_",
        Role::Moderator => "rg_mod_",
    };
    let token = generate_token(kind);
    let prefix = token
        .chars()
        .take(kind.len() + PREFIX_RANDOM_CHARS)
        .collect();
    let record = NewToken {
        id: TokenId::new(),
        role,
        prefix,
        digest: token_digest(&token),
        sites,
        scopes,
    };
    (token, record)
}

async fn site_add(
    database: &DatabaseArgs,
    name: &str,
    output: TokenOutput,
    scopes: Vec<Scope>,
) -> Result<(), String> {
    let name = name.trim();
    if name.is_empty()
        || name.len() > 253
        || name.chars().any(|c| c.is_control() || c.is_whitespace())
    {
        return Err(format!(
            "{name:?} is not a site name: use the host name, like news.example.com"
        ));
    }
    let store = store::open(&database.url)
        .await
        .map_err(|e| e.to_string())?;
    let site = store
        .create_site(name, &Policy::default())
        .await
        .map_err(|e| match e {
            StoreError::AlreadyExists(_) => format!(
                "site {name:?} exists already; issue it new credentials with `replyguard token \
                 add --site {name} --role host --output env` (and `--role moderator`)"
            ),
            other => other.to_string(),
        })?;
    let (site_key, host) = issue(Role::Host, vec![site.id]);
    let (mod_token, moderator) = issue_with_scopes(Role::Moderator, vec![site.id], scopes);
    insert(store.as_ref(), &host).await?;
    insert(store.as_ref(), &moderator).await?;
    match output {
        TokenOutput::Env => {
            println!("REPLYGUARD_SITE_KEY={site_key}");
            println!("REPLYGUARD_MOD_TOKEN={mod_token}");
        }
        TokenOutput::Text => {
            println!("site {name} created");
            println!("site key:        {site_key}");
            println!("moderator token: {mod_token}");
            println!("its scopes:      {}", Scope::list(&moderator.scopes));
            println!("They are shown once; only their digests are stored.");
        }
    }
    Ok(())
}

async fn insert(store: &dyn Store, token: &NewToken) -> Result<(), String> {
    store.insert_token(token).await.map_err(|e| e.to_string())
}

/// Opens the database and prints what `listing` makes of it.
async fn list(
    database: &DatabaseArgs,
    listing: impl for<'a> FnOnce(
        &'a dyn Store,
    ) -> std::pin::Pin<
        Box<dyn std::future::Future<Output = Result<String, String>> + Send + 'a>,
    >,
) -> Result<(), String> {
    let store = store::open(&database.url)
        .await
        .map_err(|e| e.to_string())?;
    println!("{}", listing(store.as_ref()).await?);
    Ok(())
}

async fn token_add(
    database: &DatabaseArgs,
    names: &[String],
    role: &str,
    scopes: Option<Vec<Scope>>,
    output: TokenOutput,
) -> Result<(), String> {
    let role = Role::parse(role).ok_or_else(|| format!("unknown role {role:?}"))?;
    if role == Role::Host && names.len() != 1 {
        return Err("a site key belongs to exactly one site".to_owned());
    }
    let scopes = match (role, scopes) {
        (Role::Host, Some(_)) => {
            return Err("--scopes is for moderator tokens; a site key has none".to_owned());
        }
        (Role::Host, None) => Vec::new(),
        (Role::Moderator, scopes) => scopes.unwrap_or_else(|| Scope::DEFAULT.to_vec()),
    };
    let store = store::open(&database.url)
        .await
        .map_err(|e| e.to_string())?;
    let mut sites = Vec::with_capacity(names.len());
    for name in names {
        let site = store
            .site_by_name(name)
            .await
            .map_err(|e| e.to_string())?
            .ok_or_else(|| format!("no site {name:?}"))?;
        sites.push(site.id);
    }
    let (token, record) = issue_with_scopes(role, sites, scopes);
    insert(store.as_ref(), &record).await?;
    match (output, role) {
        (TokenOutput::Text, _) => println!("{token}"),
        (TokenOutput::Env, Role::Host) => println!("REPLYGUARD_SITE_KEY={token}"),
        (TokenOutput::Env, Role::Moderator) => println!("REPLYGUARD_TOKEN={token}"),
    }
    match role {
        Role::Host => eprintln!("issued {}; it is shown once", record.prefix),
        Role::Moderator => eprintln!(
            "issued {} with scopes {}; it is shown once",
            record.prefix,
            Scope::list(&record.scopes)
        ),
    }
    Ok(())
}

async fn token_revoke(database: &DatabaseArgs, prefix: &str) -> Result<(), String> {
    let kind = ["rg_site_", "rg_mod_"]
        .into_iter()
        .find(|kind| prefix.starts_with(kind))
        .ok_or("a token prefix starts with rg_site_ or rg_mod_")?;
    // A whole token is cut to the stored prefix; a short prefix could name
    // many tokens, so at least four random characters are required.
    let prefix: String = prefix
        .chars()
        .take(kind.len() + PREFIX_RANDOM_CHARS)
        .collect();
    if prefix.len() < kind.len() + 4 {
        return Err("give at least four characters after the rg_..._ part".to_owned());
    }
    let store = store::open(&database.url)
        .await
        .map_err(|e| e.to_string())?;
    // Returns once every running server refuses them.
    let revoked = store::revoke_tokens_everywhere(store.as_ref(), &prefix)
        .await
        .map_err(|e| e.to_string())?;
    if revoked == 0 {
        return Err(format!("no live token starts with {prefix}"));
    }
    println!("revoked {revoked} token(s)");
    Ok(())
}

async fn bench(args: &BenchArgs) -> Result<(), String> {
    let report = bench::run(args).await.map_err(|e| e.to_string())?;
    match args.output {
        BenchOutput::Table => print!("{}", report.table()),
        BenchOutput::Json => println!(
            "{}",
            serde_json::to_string_pretty(&report).map_err(|e| e.to_string())?
        ),
    }
    Ok(())
}

async fn seed(args: &SeedArgs) -> Result<(), String> {
    let report = seed::run(args).await?;
    println!(
        "seeded {} replies on {} in {:.1} s ({:.0} per second): {} approved, {} pending, {} spam, {} rejected",
        report.replies,
        args.site,
        report.seconds,
        report.replies as f64 / report.seconds.max(f64::MIN_POSITIVE),
        report.approved,
        report.pending,
        report.spam,
        report.rejected
    );
    println!(
        "the hot article {} has {} replies",
        seed::HOT_ARTICLE,
        report.hot_article_replies
    );
    Ok(())
}

async fn import(args: &ImportArgs) -> Result<(), String> {
    let report = import::run(args).await?;
    if args.json {
        println!(
            "{}",
            serde_json::to_string_pretty(&report).map_err(|e| e.to_string())?
        );
    } else {
        print!("{}", report.table());
    }
    Ok(())
}
