//! What a shell and `man` need of a command line: completion scripts (`completions SHELL`) and
//! a manual page in roff (`man`), for `replyguard` and `replyctl` alike, from their clap
//! definitions, so they never drift from the flags.

use std::io::{self, Write};

pub use clap_complete::Shell;

/// Writes `command`'s completion script for `shell` to stdout.
pub fn completions(mut command: clap::Command, shell: Shell) -> io::Result<()> {
    let name = command.get_name().to_owned();
    let mut out = Vec::new();
    clap_complete::generate(shell, &mut command, name, &mut out);
    io::stdout().write_all(&out)
}

/// Writes `command`'s manual page, with a section per subcommand, to stdout.
pub fn man(command: clap::Command) -> io::Result<()> {
    let mut out = Vec::new();
    let page = clap_mangen::Man::new(command.clone());
    page.render_title(&mut out)?;
    page.render_name_section(&mut out)?;
    page.render_synopsis_section(&mut out)?;
    page.render_description_section(&mut out)?;
    page.render_options_section(&mut out)?;
    page.render_subcommands_section(&mut out)?;
    page.render_version_section(&mut out)?;
    io::stdout().write_all(&out)
}
