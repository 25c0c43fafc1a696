//! Mail: moderators' notices of held replies, sent over SMTP from the outbox that storing a
//! reply fills in its own transaction, retried until the server takes them.
//!
//! The [`Worker`] is the only code that opens a stored address, and only to hand it to the SMTP
//! server: an address never reaches a log, a response or a webhook. A slow or dead SMTP server
//! only delays mail; submissions never wait for it. [`message`] writes the mails' text.

pub mod message;
mod worker;

use std::{fmt, str::FromStr};

pub use worker::{RETRY_SCHEDULE, Worker};

/// `REPLYGUARD_SMTP_URL`: `smtp://` (plain; `?tls=required` or `?tls=opportunistic` for
/// STARTTLS), `smtps://`, with `user:password@` for credentials. Never printed: it may hold a
/// password.
#[derive(Clone, PartialEq, Eq)]
pub struct SmtpUrl(String);

impl SmtpUrl {
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl FromStr for SmtpUrl {
    type Err = String;

    fn from_str(text: &str) -> Result<SmtpUrl, String> {
        let url = url::Url::parse(text)
            .map_err(|err| format!("is not a URL ({err}); write smtp://host:587"))?;
        if !matches!(url.scheme(), "smtp" | "smtps") {
            return Err("must begin smtp:// or smtps://".to_owned());
        }
        if url.host_str().unwrap_or_default().is_empty() {
            return Err("must name the SMTP server's host".to_owned());
        }
        Ok(SmtpUrl(text.to_owned()))
    }
}

impl fmt::Debug for SmtpUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match url::Url::parse(&self.0) {
            Ok(url) => write!(
                f,
                "{}://{}:{}",
                url.scheme(),
                url.host_str().unwrap_or_default(),
                url.port().map(|p| p.to_string()).unwrap_or_default()
            ),
            Err(_) => f.write_str("(an SMTP URL)"),
        }
    }
}

/// Where mail goes and whom it comes from.
#[derive(Clone, Debug)]
pub struct MailSettings {
    pub smtp_url: SmtpUrl,
    /// `REPLYGUARD_MAIL_FROM`: `replyguard@example.com` or `Comments <comments@example.com>`.
    pub from: String,
}
