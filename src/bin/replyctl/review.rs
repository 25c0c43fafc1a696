//! `replyctl review`: pending replies one at a time, each decided by a key.
//!
//! At a terminal each decision is one keypress; otherwise decisions are read
//! line by line from stdin, so a script can feed `a\nr\ns\n`. Each reply is shown as
//! `show` shows it, history included, under a count (`3 of 12`); on a terminal
//! the screen is cleared first. Every decision carries the state the moderator
//! saw: a reply someone else decided in the meantime is reported, never
//! overwritten.

use std::io::{self, BufRead, IsTerminal, Write};

use replyguard::proto::{
    CommentStatus, GetCommentRequest, ListQueueRequest, ModerateRequest, QueueItem,
};

use crate::{
    cli::{Decision, OutputFormat, SiteArg},
    client::Clients,
    error::CliError,
    output::{self, emit},
};

const PAGE: u32 = 500;
const KEYS: &str = "[a]pprove [r]eject [s]pam [h]am [n]ote [k] skip [q]uit";

/// What a key asks for.
enum Choice {
    Decide(Decision),
    Note,
    Skip,
    Quit,
}

fn choice(key: &str) -> Option<Choice> {
    Some(match key.trim().to_lowercase().as_str() {
        "a" => Choice::Decide(Decision::Approve),
        "r" => Choice::Decide(Decision::Reject),
        "s" => Choice::Decide(Decision::Spam),
        "h" => Choice::Decide(Decision::Ham),
        "n" => Choice::Note,
        "k" | "" => Choice::Skip,
        "q" => Choice::Quit,
        _ => return None,
    })
}

#[derive(Default)]
struct Tally {
    decided: Vec<(&'static str, usize)>,
    skipped: usize,
    changed: usize,
}

impl Tally {
    fn count(&mut self, decision: Decision) {
        match self
            .decided
            .iter_mut()
            .find(|(name, _)| *name == decision.name())
        {
            Some((_, n)) => *n += 1,
            None => self.decided.push((decision.name(), 1)),
        }
    }

    fn summary(&self) -> String {
        let mut parts: Vec<String> = self
            .decided
            .iter()
            .map(|(name, n)| format!("{name} {n}"))
            .collect();
        parts.push(format!("skipped {}", self.skipped));
        if self.changed > 0 {
            parts.push(format!("changed by someone else {}", self.changed));
        }
        format!("reviewed: {}", parts.join(", "))
    }
}

/// Prompts on stderr, so that stdout carries only the replies themselves.
fn prompt(text: &str) -> Result<(), CliError> {
    let mut stderr = io::stderr().lock();
    write!(stderr, "{text}")?;
    stderr.flush()?;
    Ok(())
}

/// Where keys come from: single keypresses at a terminal, lines otherwise (a script's
/// `a\nr\n`).
enum Input {
    Keys,
    Lines(io::Lines<io::StdinLock<'static>>),
}

impl Input {
    fn new() -> Self {
        if io::stdin().is_terminal() && io::stderr().is_terminal() {
            Input::Keys
        } else {
            Input::Lines(io::stdin().lock().lines())
        }
    }

    /// One key, as a word `choice` reads; `None` at the end of input.
    fn key(&mut self) -> Result<Option<String>, CliError> {
        match self {
            Input::Lines(lines) => lines.next().transpose().map_err(CliError::from),
            Input::Keys => {
                let key = {
                    let _raw = RawMode::on()?;
                    read_key()?
                };
                prompt(&format!("{key}\n"))?;
                Ok(Some(key))
            }
        }
    }

    /// A line of text, such as a note; `None` at the end of input.
    fn line(&mut self) -> Result<Option<String>, CliError> {
        match self {
            Input::Lines(lines) => lines.next().transpose().map_err(CliError::from),
            Input::Keys => {
                // Read as the keys are, so that nothing typed ahead is lost between readers.
                let line = {
                    let _raw = RawMode::on()?;
                    read_line_of_keys()?
                };
                prompt("\n")?;
                Ok(line)
            }
        }
    }
}

/// The next key pressed (not released or repeated), and whether Control was held.
fn next_press() -> Result<(crossterm::event::KeyCode, bool), CliError> {
    use crossterm::event::{self, Event, KeyEventKind, KeyModifiers};
    loop {
        if let Event::Key(key) = event::read()?
            && key.kind == KeyEventKind::Press
        {
            return Ok((key.code, key.modifiers.contains(KeyModifiers::CONTROL)));
        }
    }
}

/// One keypress: its character, `q` for Escape or Ctrl-C or Ctrl-D, `k` for Enter.
fn read_key() -> Result<String, CliError> {
    use crossterm::event::KeyCode;
    loop {
        let (code, control) = next_press()?;
        return Ok(match code {
            KeyCode::Char('c' | 'd') if control => "q".to_owned(),
            // Enter typed ahead, before raw mode, reaches us as a newline: Ctrl-J.
            KeyCode::Enter => "k".to_owned(),
            KeyCode::Char('j' | 'm') if control => "k".to_owned(),
            KeyCode::Char(c) if !control => c.to_string(),
            KeyCode::Esc => "q".to_owned(),
            _ => continue,
        });
    }
}

/// A line typed key by key and echoed, up to Enter; Backspace takes back a character, Escape
/// or Ctrl-C gives it up (an empty line).
fn read_line_of_keys() -> Result<Option<String>, CliError> {
    use crossterm::event::KeyCode;
    let mut line = String::new();
    loop {
        let (code, control) = next_press()?;
        match code {
            // Enter typed ahead, before raw mode, reaches us as a newline: Ctrl-J.
            KeyCode::Enter => return Ok(Some(line)),
            KeyCode::Char('j' | 'm') if control => return Ok(Some(line)),
            KeyCode::Esc => return Ok(Some(String::new())),
            KeyCode::Char('c' | 'd') if control => return Ok(Some(String::new())),
            KeyCode::Char(c) if !control => {
                line.push(c);
                prompt(&c.to_string())?;
            }
            KeyCode::Backspace if line.pop().is_some() => prompt("\u{8} \u{8}")?,
            _ => {}
        }
    }
}

/// The terminal in raw mode (each key read as it is pressed) until dropped.
struct RawMode;

impl RawMode {
    fn on() -> Result<Self, CliError> {
        crossterm::terminal::enable_raw_mode()?;
        Ok(RawMode)
    }
}

impl Drop for RawMode {
    fn drop(&mut self) {
        let _ = crossterm::terminal::disable_raw_mode();
    }
}

/// Asks until a known key comes; `None` at the end of input.
fn ask(input: &mut Input) -> Result<Option<Choice>, CliError> {
    loop {
        prompt(&format!("{KEYS}? "))?;
        let Some(key) = input.key()? else {
            prompt("\n")?;
            return Ok(None);
        };
        match choice(&key) {
            Some(choice) => return Ok(Some(choice)),
            None => prompt(&format!("unknown key; use one of {KEYS}\n"))?,
        }
    }
}

pub async fn review(
    clients: &mut Clients,
    format: OutputFormat,
    site: SiteArg,
) -> Result<(), CliError> {
    let queue = pending(clients, &site).await?;
    if queue.is_empty() {
        prompt("The pending queue is empty; nothing to review.\n")?;
        return Ok(());
    }
    let clear = format == OutputFormat::Table && io::stdout().is_terminal();
    let mut input = Input::new();
    let mut tally = Tally::default();
    let total = queue.len();
    'replies: for (at, item) in queue.iter().enumerate() {
        let id = item
            .comment
            .as_ref()
            .map(|c| c.id.clone())
            .unwrap_or_default();
        // As `show` has it: the reply as it is now, with its history.
        let shown = clients
            .moderation
            .get_comment(GetCommentRequest { id: id.clone() })
            .await;
        let (current, history) = match shown {
            Ok(response) => {
                let response = response.into_inner();
                (response.comment.unwrap_or_default(), response.history)
            }
            Err(status) if status.code() == tonic::Code::NotFound => {
                tally.changed += 1;
                continue;
            }
            Err(status) => return Err(CliError::rpc("fetching the reply")(status)),
        };
        if clear {
            emit("\x1b[2J\x1b[H")?;
        }
        prompt(&format!("{} of {total}\n", at + 1))?;
        emit(&output::show(format, &current, &history))?;
        let mut note = None;
        let decision = loop {
            match ask(&mut input)? {
                None | Some(Choice::Quit) => break 'replies,
                Some(Choice::Skip) => {
                    tally.skipped += 1;
                    continue 'replies;
                }
                Some(Choice::Note) => {
                    prompt("note: ")?;
                    match input.line()? {
                        Some(line) => {
                            note = Some(line.trim().to_owned()).filter(|n| !n.is_empty());
                        }
                        None => break 'replies,
                    }
                }
                Some(Choice::Decide(decision)) => break decision,
            }
        };
        decide(clients, item, decision, note, &mut tally).await?;
    }
    prompt(&format!("{}\n", tally.summary()))
}

/// Every pending reply, oldest first.
async fn pending(clients: &mut Clients, site: &SiteArg) -> Result<Vec<QueueItem>, CliError> {
    let mut items = Vec::new();
    let mut page_token = String::new();
    loop {
        let page = clients
            .moderation
            .list_queue(ListQueueRequest {
                site: site.name(),
                status: CommentStatus::Pending as i32,
                page_size: PAGE,
                page_token: page_token.clone(),
                ..Default::default()
            })
            .await
            .map_err(CliError::rpc("listing the queue"))?
            .into_inner();
        items.extend(page.items);
        // A repeated cursor would loop forever; treat it as the end.
        if page.next_page_token.is_empty() || page.next_page_token == page_token {
            return Ok(items);
        }
        page_token = page.next_page_token;
    }
}

async fn decide(
    clients: &mut Clients,
    item: &QueueItem,
    decision: Decision,
    note: Option<String>,
    tally: &mut Tally,
) -> Result<(), CliError> {
    let id = item
        .comment
        .as_ref()
        .map(|c| c.id.clone())
        .unwrap_or_default();
    let results = clients
        .moderation
        .moderate(ModerateRequest {
            ids: vec![id.clone()],
            action: decision.action() as i32,
            expected_status: Some(CommentStatus::Pending as i32),
            note: note.unwrap_or_default(),
        })
        .await
        .map_err(CliError::rpc(decision.name()))?
        .into_inner()
        .results;
    match results.first() {
        Some(result) if result.code == 0 => {
            tally.count(decision);
            prompt(&format!("{id}: {}\n", decision.name()))
        }
        Some(result) => {
            tally.changed += 1;
            let now = output::status_word(result.status).unwrap_or("gone");
            prompt(&format!(
                "{id}: not changed ({}); it is {now} now\n",
                result.message
            ))
        }
        None => Err(CliError::PartlyFailed {
            action: decision.name(),
            failed: 1,
            total: 1,
        }),
    }
}
