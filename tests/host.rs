//! The example article host (`examples/host`) end to end, as its readers meet it: the app
//! served on a port of its own beside a real replyguard, read over plain HTTP for every outcome
//! a reader can meet, and used through a real browser (headless Chromium, driven over
//! WebDriver) from the first visit to the approved reply.
//!
//! The app comes in as a module (`#[path]` below) rather than as the built example binary:
//! `cargo test --test host` then builds exactly what it runs, each test serves the app on
//! port 0 and has its address at once, and no test has to find `target/debug/examples/host`
//! on disk or wait for a child process to say where it listens. `main.rs` adds only the
//! environment variables around the same `app::serve`.

mod common;

#[path = "../examples/host/app/mod.rs"]
mod app;

use std::{
    collections::BTreeMap,
    io::{BufRead, BufReader, Write},
    os::unix::process::CommandExt,
    path::PathBuf,
    process::{Child, Command, Stdio},
    time::{Duration, Instant},
};

use common::{Backend, Harness, TestSite, backend_tests, reply_by, submitted, whole_queue};
use fantoccini::{Client, ClientBuilder, Locator};
use http::{Request, StatusCode, header};
use http_body_util::BodyExt;
use hyper_util::{
    client::legacy::{Client as HttpClient, connect::HttpConnector},
    rt::TokioExecutor,
};
use replyguard::{
    proto::{self, CommentStatus},
    spam::Policy,
};
use scraper::{ElementRef, Html, Selector};

/// The article the app shows.
const ARTICLE: &str = "example/2026/12/leave-a-reply";

/// A reply with two links: the default policy holds it for a moderator.
const LINKED: &str = "The council's notice is at https://example.org/notice and the hours at \
                      https://example.org/hours.";

/// A replyguard server with one site, and the host app in front of it.
struct Host {
    h: Harness,
    site: TestSite,
    url: String,
}

impl Host {
    /// The app for a new site with `policy`, showing `page_size` comments a page.
    async fn start(backend: Backend, policy: Policy, page_size: u32) -> Host {
        let h = Harness::new(backend).await;
        let site = h.site_with("news.example.com", policy).await;
        let mut settings =
            app::Settings::new(&h.endpoint(), &site.site_key, ARTICLE).expect("settings");
        settings.page_size = page_size;
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let url = format!("http://{}", listener.local_addr().expect("address"));
        tokio::spawn(app::serve(listener, settings));
        Host { h, site, url }
    }

    /// Submits a reply as a host's backend does (not through the page); its id, which must
    /// have `status`.
    async fn submit(&self, request: proto::SubmitCommentRequest, status: CommentStatus) -> String {
        let mut comments = self.h.comments(&self.site.site_key).await;
        let (id, got) = submitted(&mut comments, request).await;
        assert_eq!(got, status, "{id}");
        id
    }

    /// The article's approved comments as replyguard lists them, by id.
    async fn listed(&self) -> BTreeMap<String, proto::Comment> {
        let mut comments = self.h.comments(&self.site.site_key).await;
        let listing = comments
            .list_comments(proto::ListCommentsRequest {
                article: ARTICLE.to_owned(),
                ..Default::default()
            })
            .await
            .expect("list")
            .into_inner();
        listing
            .comments
            .into_iter()
            .map(|c| (c.id.clone(), c))
            .collect()
    }
}

/// A reply by `name`, with a website when one is given.
fn by(body: &str, name: &str, email: &str, website: &str) -> proto::SubmitCommentRequest {
    let mut request = reply_by(ARTICLE, body, name, email);
    if let Some(author) = request.author.as_mut() {
        author.website = website.to_owned();
    }
    request
}

/// A reader's browser without the browser: it keeps its cookies and does not follow redirects,
/// so a test sees each answer as the app gave it.
struct Reader {
    http: HttpClient<HttpConnector, String>,
    base: String,
    cookies: BTreeMap<String, String>,
}

/// One answer of the app.
struct Answer {
    status: StatusCode,
    location: String,
    html: String,
}

impl Answer {
    fn page(&self) -> Html {
        Html::parse_document(&self.html)
    }

    /// The id in the redirect's `#comment-ID`.
    fn comment_id(&self) -> String {
        self.location
            .split_once("#comment-")
            .map(|(_, id)| id.to_owned())
            .unwrap_or_else(|| panic!("no comment in the redirect to {:?}", self.location))
    }

    /// The page the redirect goes to, without its fragment.
    fn redirect_path(&self) -> String {
        assert_eq!(self.status, StatusCode::SEE_OTHER, "{}", self.html);
        self.location
            .split('#')
            .next()
            .unwrap_or_default()
            .to_owned()
    }
}

impl Reader {
    fn new(host: &Host) -> Reader {
        Reader {
            http: HttpClient::builder(TokioExecutor::new()).build_http(),
            base: host.url.clone(),
            cookies: BTreeMap::new(),
        }
    }

    async fn get(&mut self, path: &str) -> Answer {
        let request = Request::get(format!("{}{path}", self.base));
        self.send(request, String::new()).await
    }

    async fn post(&mut self, form: &BTreeMap<String, String>) -> Answer {
        let body = url::form_urlencoded::Serializer::new(String::new())
            .extend_pairs(form)
            .finish();
        let request = Request::post(format!("{}/comments", self.base))
            .header(header::CONTENT_TYPE, "application/x-www-form-urlencoded");
        self.send(request, body).await
    }

    /// The reply form of the page at `path` as a browser would send it: every field with its
    /// value, the checkbox only when ticked.
    async fn form(&mut self, path: &str) -> BTreeMap<String, String> {
        let page = self.get(path).await.page();
        let mut fields = BTreeMap::new();
        for input in select(&page, "form input") {
            let (Some(name), value) = (input.attr("name"), input.attr("value")) else {
                continue;
            };
            if input.attr("type") == Some("checkbox") && input.attr("checked").is_none() {
                continue;
            }
            fields.insert(name.to_owned(), value.unwrap_or_default().to_owned());
        }
        for textarea in select(&page, "form textarea") {
            let name = textarea.attr("name").expect("a named textarea");
            fields.insert(name.to_owned(), textarea.text().collect());
        }
        fields
    }

    async fn send(&mut self, request: http::request::Builder, body: String) -> Answer {
        let cookies: Vec<String> = self
            .cookies
            .iter()
            .map(|(name, value)| format!("{name}={value}"))
            .collect();
        let request = request
            .header(header::COOKIE, cookies.join("; "))
            .header(header::USER_AGENT, "Mozilla/5.0 (tests/host.rs)")
            .body(body)
            .expect("a request");
        let response = self.http.request(request).await.expect("the app answers");
        for set in response.headers().get_all(header::SET_COOKIE) {
            let set = set.to_str().expect("ASCII");
            let (pair, attributes) = set.split_once(';').unwrap_or((set, ""));
            let (name, value) = pair.split_once('=').expect("name=value");
            if attributes.contains("Max-Age=0") {
                self.cookies.remove(name);
            } else {
                self.cookies.insert(name.to_owned(), value.to_owned());
            }
        }
        let status = response.status();
        let location = response
            .headers()
            .get(header::LOCATION)
            .map(|l| l.to_str().expect("ASCII").to_owned())
            .unwrap_or_default();
        let body = response.into_body().collect().await.expect("a body");
        Answer {
            status,
            location,
            html: String::from_utf8(body.to_bytes().to_vec()).expect("UTF-8"),
        }
    }
}

fn select<'a>(page: &'a Html, css: &str) -> Vec<ElementRef<'a>> {
    let selector = Selector::parse(css).expect("a selector");
    page.select(&selector).collect()
}

/// The text of the one element `css` finds, its spaces collapsed.
fn text(page: &Html, css: &str) -> String {
    let found = select(page, css);
    assert_eq!(found.len(), 1, "one {css} in {}", page.html());
    let words: Vec<&str> = found[0].text().flat_map(str::split_whitespace).collect();
    words.join(" ")
}

/// The ids of the comments a page shows, in order.
fn comment_ids(page: &Html) -> Vec<String> {
    select(page, "li.comment")
        .iter()
        .filter_map(|c| c.attr("id")?.strip_prefix("comment-").map(str::to_owned))
        .collect()
}

/// The value of the form field `name`.
fn field(page: &Html, name: &str) -> String {
    let found = select(page, &format!("form [name={name}]"));
    assert_eq!(found.len(), 1, "one field {name}");
    match found[0].attr("value") {
        Some(value) => value.to_owned(),
        None => found[0].text().collect(),
    }
}

fn fill(form: &mut BTreeMap<String, String>, fields: &[(&str, &str)]) {
    for (name, value) in fields {
        form.insert((*name).to_owned(), (*value).to_owned());
    }
}

async fn the_page_threads_approved_comments_a_page_at_a_time(backend: Backend) {
    let host = Host::start(
        backend,
        Policy {
            flood_interval_seconds: 0,
            ..Policy::default()
        },
        2,
    )
    .await;
    let ada_email = "ada@example.net";
    let ada = host
        .submit(
            by(
                "Will the café be open too? Write to me at ada.okafor@example.net.",
                "Ada Okafor",
                ada_email,
                "https://ada.example.net/",
            ),
            CommentStatus::Approved,
        )
        .await;
    let mut answer = by(
        "The café stays closed on Sundays.",
        "Ben Ito",
        "ben@example.org",
        "",
    );
    answer.parent_id = ada.clone();
    let ben = host.submit(answer, CommentStatus::Approved).await;
    let mut thanks = by("Thank you, Ben.", "Ada Okafor", ada_email, "");
    thanks.parent_id = ben.clone();
    let ada_again = host.submit(thanks, CommentStatus::Approved).await;
    let cy = host
        .submit(
            by("Good news for students.", "Cy Moreau", "cy@example.com", ""),
            CommentStatus::Approved,
        )
        .await;
    let held = host
        .submit(
            by(LINKED, "Dee Quist", "dee@example.com", ""),
            CommentStatus::Pending,
        )
        .await;
    let listed = host.listed().await;

    let mut reader = Reader::new(&host);
    let first = reader.get("/").await;
    assert_eq!(first.status, StatusCode::OK);
    let page = first.page();
    assert_eq!(text(&page, "h2"), "4 comments", "approved comments only");
    // Newest threads first, two comments a page.
    assert_eq!(comment_ids(&page), [cy.as_str(), ada.as_str()]);
    let ada_link = select(&page, &format!("#comment-{ada} a.author"));
    assert_eq!(ada_link.len(), 1);
    assert_eq!(
        ada_link[0].attr("href"),
        Some(listed[&ada].author_website.as_str())
    );
    assert_eq!(ada_link[0].attr("rel"), Some("nofollow ugc"));
    assert!(
        select(&page, &format!("#comment-{cy} a.author")).is_empty(),
        "no website, no link"
    );
    // The text as replyguard made it safe: the address in it masked.
    assert!(listed[&ada].body_html.contains("[email hidden]"));
    assert!(first.html.contains(&listed[&ada].body_html));
    assert_eq!(select(&page, "li.comment svg.avatar").len(), 2);
    assert!(
        !field(&page, "form_token").is_empty(),
        "a token from PrepareForm"
    );
    assert!(!field(&page, "idempotency_key").is_empty());
    assert_eq!(
        select(&page, ".hp input[name=subject]").len(),
        1,
        "the honeypot"
    );

    // A comment's reply link sets the form's parent.
    let reply = select(&page, &format!("#comment-{ada} a.reply"));
    let href = reply[0].attr("href").expect("href").to_owned();
    let replying = reader.get(&href).await.page();
    assert_eq!(
        text(&replying, "#respond h3"),
        "Reply to Ada Okafor Cancel reply"
    );
    assert_eq!(field(&replying, "parent_id"), ada);

    // The next page continues the thread, each reply indented by its depth.
    let older = select(&page, "nav.pages a");
    assert_eq!(older.len(), 1, "only older comments from the first page");
    let older = older[0].attr("href").expect("href").to_owned();
    let second = reader.get(&older).await.page();
    assert_eq!(comment_ids(&second), [ben.as_str(), ada_again.as_str()]);
    let indent = |page: &Html, id: &str| {
        select(page, &format!("#comment-{id}"))[0]
            .attr("style")
            .map(str::to_owned)
    };
    assert_eq!(indent(&second, &ben).as_deref(), Some("--indent: 1"));
    assert_eq!(indent(&second, &ada_again).as_deref(), Some("--indent: 2"));
    assert!(text(&second, &format!("#comment-{ada_again} .meta")).contains("in reply to Ben Ito"));
    // One author, one identicon; another author, another.
    let avatar =
        |page: &Html, id: &str| select(page, &format!("#comment-{id} svg.avatar"))[0].html();
    assert_eq!(avatar(&second, &ada_again), avatar(&page, &ada));
    assert_ne!(avatar(&second, &ben), avatar(&page, &ada));
    assert!(
        !comment_ids(&page).contains(&held) && !comment_ids(&second).contains(&held),
        "a held reply is not shown to other readers"
    );
}

async fn a_reply_is_published_at_once_or_held_for_its_author_alone(backend: Backend) {
    // Form tokens required: a reply published at once shows the page carried its token.
    let host = Host::start(
        backend,
        Policy {
            require_form_token: true,
            min_form_seconds: 0,
            flood_interval_seconds: 0,
            ..Policy::default()
        },
        20,
    )
    .await;
    let mut jane = Reader::new(&host);
    let details = [
        ("author", "Jane Reader"),
        ("email", "jane@example.com"),
        ("url", "https://jane.example.org/"),
    ];

    let mut form = jane.form("/").await;
    fill(&mut form, &details);
    fill(
        &mut form,
        &[
            ("comment", "A quiet place to work on Sundays."),
            ("remember", "yes"),
        ],
    );
    let sent = jane.post(&form).await;
    let published = sent.comment_id();
    assert_eq!(
        sent.redirect_path(),
        "/",
        "a new thread is first on the first page"
    );
    let page = jane.get(&sent.redirect_path()).await.page();
    assert_eq!(
        text(&page, ".notice"),
        "Thank you. Your reply is published."
    );
    assert_eq!(comment_ids(&page), [published.as_str()]);
    let again = jane.get("/").await.page();
    assert!(
        select(&again, ".notice").is_empty(),
        "told once, not on every reload"
    );
    // Her details are kept in her browser, as she asked.
    assert_eq!(field(&page, "author"), "Jane Reader");
    assert_eq!(field(&page, "url"), "https://jane.example.org/");
    assert_eq!(select(&page, "#remember[checked]").len(), 1);

    let mut form = jane.form("/").await;
    fill(&mut form, &[("comment", LINKED)]);
    let sent = jane.post(&form).await;
    let held = sent.comment_id();
    let page = jane.get(&sent.redirect_path()).await.page();
    assert_eq!(
        text(&page, ".notice"),
        "Thank you. Your reply awaits moderation: it will appear here once a moderator approves it."
    );
    assert_eq!(comment_ids(&page), [held.as_str(), published.as_str()]);
    assert_eq!(
        text(&page, &format!("#comment-{held}.held .held-note")),
        "Your reply awaits moderation. Only you can see it."
    );
    assert_eq!(
        text(&page, "h2"),
        "1 comment",
        "the count is of approved comments"
    );
    assert!(
        select(&page, &format!("#comment-{held} a.reply")).is_empty(),
        "a held reply cannot be answered"
    );

    let mut other = Reader::new(&host);
    let page = other.get("/").await.page();
    assert_eq!(
        comment_ids(&page),
        [published.as_str()],
        "only its author sees a held reply"
    );
    assert_eq!(
        field(&page, "author"),
        "",
        "nothing of Jane's in another browser"
    );

    // A robot fills the honeypot: its reply is spam, listed to nobody, and it is told no more
    // than a held reply's author.
    let mut robot = Reader::new(&host);
    let mut form = robot.form("/").await;
    fill(
        &mut form,
        &[
            ("author", "Best Deals"),
            ("email", "deals@example.com"),
            ("comment", "Great article, thanks for sharing."),
            ("subject", "https://deals.example.com/"),
        ],
    );
    let sent = robot.post(&form).await;
    assert_eq!(sent.redirect_path(), "/");
    assert!(!sent.location.contains('#'), "no comment to point at");
    let page = robot.get("/").await.page();
    assert_eq!(
        text(&page, ".notice"),
        "Thank you. Your reply awaits moderation: it will appear here once a moderator approves it."
    );
    assert_eq!(comment_ids(&page), [published.as_str()]);
    let mut moderation = host.h.moderation(&host.site.mod_token).await;
    let spam = whole_queue(&mut moderation, proto::CommentStatus::Spam, 10).await;
    assert_eq!(spam.len(), 1);
    let reasons: Vec<&str> = spam[0]
        .assessment
        .as_ref()
        .expect("assessment")
        .reasons
        .iter()
        .map(|r| r.rule.as_str())
        .collect();
    assert!(reasons.contains(&"honeypot"), "{reasons:?}");
    assert!(
        !reasons.iter().any(|r| r.starts_with("form-token")),
        "the page's form token came back: {reasons:?}"
    );
}

async fn every_refusal_is_told_where_the_reader_looks_for_it(backend: Backend) {
    let host = Host::start(
        backend,
        Policy {
            min_form_seconds: 0,
            flood_interval_seconds: 0,
            ..Policy::default()
        },
        20,
    )
    .await;
    let mut jane = Reader::new(&host);
    let jane_details = [
        ("author", "Jane Reader"),
        ("email", "jane@example.com"),
        ("url", ""),
    ];

    // Fields: each error beside its field, what she wrote kept, the form's token kept.
    let mut form = jane.form("/").await;
    fill(
        &mut form,
        &[
            ("comment", "Sunday hours at last."),
            ("author", " "),
            ("email", "jane@example"),
            ("url", "ftp://jane.example.org"),
        ],
    );
    let refused = jane.post(&form).await;
    assert_eq!(refused.status, StatusCode::UNPROCESSABLE_ENTITY);
    let page = refused.page();
    assert_eq!(text(&page, "#author-error"), "Name is required.");
    assert_eq!(
        text(&page, "#email-error"),
        "Email must have a domain with a dot, such as example.com."
    );
    assert_eq!(
        text(&page, "#url-error"),
        "Website must be an http or https URL with a host."
    );
    assert!(select(&page, "#comment-error").is_empty());
    assert_eq!(
        text(&page, ".alert"),
        "Please correct the fields marked below."
    );
    assert_eq!(field(&page, "comment"), "Sunday hours at last.");
    assert_eq!(field(&page, "email"), "jane@example");
    assert_eq!(field(&page, "form_token"), form["form_token"]);
    assert_eq!(field(&page, "idempotency_key"), form["idempotency_key"]);

    fill(&mut form, &jane_details);
    let first = jane.post(&form).await;
    let published = first.comment_id();

    // The same form sent again (a double click, a reload): the first answer, nothing new.
    let again = jane.post(&form).await;
    assert_eq!(again.location, first.location);

    // The same text in a new form: she already said that, and is shown where.
    let mut form = jane.form("/").await;
    fill(&mut form, &jane_details);
    fill(&mut form, &[("comment", "Sunday hours at last.")]);
    let refused = jane.post(&form).await;
    assert_eq!(refused.status, StatusCode::CONFLICT);
    let page = refused.page();
    assert_eq!(
        text(&page, ".alert"),
        "You already said that. See your reply"
    );
    let see = select(&page, ".alert a");
    assert_eq!(
        see[0].attr("href"),
        Some(format!("#comment-{published}").as_str())
    );

    // Too soon after her last reply: how long to wait, from the RetryInfo.
    let mut moderation = host.h.moderation(&host.site.mod_token).await;
    moderation
        .update_policy(proto::UpdatePolicyRequest {
            policy: Some(proto::Policy {
                flood_interval_seconds: Some(60),
                ..Default::default()
            }),
            ..Default::default()
        })
        .await
        .expect("a flood interval");
    let mut form = jane.form("/").await;
    fill(&mut form, &jane_details);
    fill(&mut form, &[("comment", "And the archive?")]);
    let refused = jane.post(&form).await;
    assert_eq!(refused.status, StatusCode::TOO_MANY_REQUESTS);
    let alert = text(&refused.page(), ".alert");
    let seconds: u64 = alert
        .strip_prefix("You are replying too fast. Please wait ")
        .and_then(|rest| rest.split_once(' '))
        .and_then(|(n, _)| n.parse().ok())
        .unwrap_or_else(|| panic!("a wait in {alert:?}"));
    assert!((1..=60).contains(&seconds), "{alert}");
    assert!(
        alert.ends_with("seconds, then send your reply again."),
        "{alert}"
    );

    // Closed: no form, and a form sent before closing is told so.
    let mut form = jane.form("/").await;
    let closed = host.h.replyctl(
        &host.site.mod_token,
        &["close", ARTICLE, "--note", "legal hold"],
    );
    assert!(closed.status.success(), "{closed:?}");
    fill(&mut form, &jane_details);
    fill(&mut form, &[("comment", "One more thing.")]);
    let refused = jane.post(&form).await;
    assert_eq!(refused.status, StatusCode::CONFLICT);
    for page in [refused.page(), jane.get("/").await.page()] {
        assert_eq!(text(&page, "#respond"), "Comments are closed.");
        assert!(select(&page, "form").is_empty());
        assert!(select(&page, "a.reply").is_empty());
        assert_eq!(
            comment_ids(&page),
            [published.as_str()],
            "its comments stay"
        );
    }
}

backend_tests!(
    flavor = "multi_thread";
    the_page_threads_approved_comments_a_page_at_a_time,
    a_reply_is_published_at_once_or_held_for_its_author_alone,
    every_refusal_is_told_where_the_reader_looks_for_it,
);

/// `chromedriver` on a port it picks, in a process group of its own with the browsers it
/// starts, and with a temporary directory of its own for their profiles and sockets: all of
/// them are ended and removed when it is dropped, also when a failed test left its browsers
/// open.
struct ChromeDriver {
    child: Child,
    url: String,
    /// Last, so that it is removed once the browsers are gone.
    _tmp: tempfile::TempDir,
}

impl ChromeDriver {
    fn start() -> ChromeDriver {
        let tmp = tempfile::tempdir().expect("a temporary directory");
        let mut child = Command::new("chromedriver")
            .arg("--port=0")
            .env("TMPDIR", tmp.path())
            .process_group(0)
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("chromedriver runs (Debian: apt-get install chromium chromium-driver)");
        let mut stdout = BufReader::new(child.stdout.take().expect("stdout"));
        let mut line = String::new();
        let port = loop {
            line.clear();
            assert!(
                stdout.read_line(&mut line).expect("chromedriver's output") > 0,
                "chromedriver ended before it listened"
            );
            if let Some(port) = line
                .split_once("started successfully on port ")
                .and_then(|(_, rest)| rest.trim().trim_end_matches('.').parse::<u16>().ok())
            {
                break port;
            }
        };
        std::thread::spawn(move || std::io::copy(&mut stdout, &mut std::io::sink()));
        ChromeDriver {
            child,
            url: format!("http://127.0.0.1:{port}"),
            _tmp: tmp,
        }
    }

    /// A new browser: headless Chromium with a profile of its own, so no cookies are shared.
    async fn browser(&self) -> Client {
        let mut capabilities = serde_json::Map::new();
        capabilities.insert(
            "goog:chromeOptions".to_owned(),
            serde_json::json!({
                "args": [
                    "--headless=new",
                    // Root in CI, where Chromium's sandbox cannot start.
                    "--no-sandbox",
                    "--disable-dev-shm-usage",
                    "--disable-gpu",
                    "--hide-scrollbars",
                    "--window-size=900,1300",
                ],
            }),
        );
        ClientBuilder::new(HttpConnector::new())
            .capabilities(capabilities)
            .connect(&self.url)
            .await
            .expect("a Chromium session")
    }
}

impl Drop for ChromeDriver {
    fn drop(&mut self) {
        let group = format!("-{}", self.child.id());
        let signal = |name: &str| {
            Command::new("kill")
                .args([name, "--", &group])
                .stderr(Stdio::null())
                .status()
                .is_ok_and(|status| status.success())
        };
        signal("-TERM");
        let _ = self.child.wait();
        // The browsers take a moment to exit; their files go with `_tmp` once they have.
        let deadline = Instant::now() + Duration::from_secs(5);
        while signal("-0") && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

/// The element `css` finds once it is there (after a form's redirect, say).
async fn appears(browser: &Client, css: &str) -> fantoccini::elements::Element {
    browser
        .wait()
        .at_most(Duration::from_secs(10))
        .for_element(Locator::Css(css))
        .await
        .unwrap_or_else(|err| panic!("{css} never appeared: {err}"))
}

/// Types `text` into the field `css`, after what is in it.
async fn type_into(browser: &Client, css: &str, text: &str) {
    let field = browser.find(Locator::Css(css)).await.expect(css);
    field.send_keys(text).await.expect("typing");
}

/// Saves the browser's screenshot of the comments under target/ and prints where.
async fn screenshot(browser: &Client, name: &str) -> PathBuf {
    browser
        .execute(
            "document.getElementById('comments').scrollIntoView()",
            vec![],
        )
        .await
        .expect("scrolled to the comments");
    let png = browser.screenshot().await.expect("a screenshot");
    let path = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join(name);
    std::fs::write(&path, png).expect("the screenshot is saved");
    // Past the test harness's capture, so that CI's log names the artifact.
    let _ = writeln!(std::io::stderr(), "screenshot: {}", path.display());
    path
}

async fn a_reader_replies_in_a_browser_and_sees_the_reply_held_until_approved(backend: Backend) {
    let started = Instant::now();
    // The reader fills the form faster than a person would; the default policy holds the
    // reply for its links alone.
    let host = Host::start(
        backend,
        Policy {
            min_form_seconds: 0,
            ..Policy::default()
        },
        20,
    )
    .await;
    let ada = host
        .submit(
            by(
                "Finally. I have been asking for Sunday hours since the reading room reopened. \
                 Will the café be open too?",
                "Ada Okafor",
                "ada@example.net",
                "https://ada.example.net/",
            ),
            CommentStatus::Approved,
        )
        .await;
    let driver = ChromeDriver::start();
    let jane = driver.browser().await;
    jane.goto(&host.url).await.expect("the article");

    // Jane answers Ada, with an email the browser takes and replyguard does not.
    jane.find(Locator::Css(&format!("#comment-{ada} a.reply")))
        .await
        .expect("a reply link")
        .click()
        .await
        .expect("click");
    appears(&jane, &format!("input[name=parent_id][value='{ada}']")).await;
    let heading = jane
        .find(Locator::Css("#respond h3"))
        .await
        .expect("heading");
    assert_eq!(
        heading.text().await.expect("text"),
        "Reply to Ada Okafor Cancel reply"
    );
    type_into(&jane, "#comment", LINKED).await;
    type_into(&jane, "#author", "Jane Reader").await;
    type_into(&jane, "#email", "jane@example").await;
    type_into(&jane, "#url", "https://jane.example.org/").await;
    jane.find(Locator::Css("#remember"))
        .await
        .expect("the checkbox")
        .click()
        .await
        .expect("tick");
    jane.find(Locator::Css("#submit"))
        .await
        .expect("the button")
        .click()
        .await
        .expect("send");
    let error = appears(&jane, "#email-error").await;
    assert_eq!(
        error.text().await.expect("text"),
        "Email must have a domain with a dot, such as example.com."
    );
    let name = jane.find(Locator::Css("#author")).await.expect("name");
    assert_eq!(
        name.prop("value").await.expect("value").as_deref(),
        Some("Jane Reader")
    );

    let email = jane.find(Locator::Css("#email")).await.expect("email");
    email.clear().await.expect("clear");
    email.send_keys("jane@example.com").await.expect("typing");
    jane.find(Locator::Css("#submit"))
        .await
        .expect("the button")
        .click()
        .await
        .expect("send");
    let held = appears(&jane, "li.comment.held").await;
    let id = held
        .attr("id")
        .await
        .expect("id")
        .and_then(|id| id.strip_prefix("comment-").map(str::to_owned))
        .expect("a comment id");
    let shown = held.text().await.expect("text");
    assert!(shown.contains("Your reply awaits moderation."), "{shown}");
    assert!(shown.contains("in reply to Ada Okafor"), "{shown}");
    screenshot(&jane, &format!("host-{backend:?}-held.png").to_lowercase()).await;

    // Another reader's browser has no author cookie: the held reply is not there.
    let other = driver.browser().await;
    other.goto(&host.url).await.expect("the article");
    appears(&other, &format!("#comment-{ada}")).await;
    assert!(
        other
            .find_all(Locator::Css(&format!("#comment-{id}")))
            .await
            .expect("find")
            .is_empty(),
        "a held reply is its author's alone"
    );

    // A moderator approves it with replyctl; both readers see it in the thread.
    let approved = host.h.replyctl(&host.site.mod_token, &["approve", &id]);
    assert!(approved.status.success(), "{approved:?}");
    for browser in [&jane, &other] {
        browser.refresh().await.expect("reload");
        let reply = appears(browser, &format!("#comment-{id}")).await;
        assert_eq!(
            reply.attr("class").await.expect("class").as_deref(),
            Some("comment")
        );
        let notices = browser
            .find_all(Locator::Css(".notice"))
            .await
            .expect("find");
        assert!(notices.is_empty(), "the notice was told once");
        assert_eq!(
            browser
                .find(Locator::Css("h2"))
                .await
                .expect("count")
                .text()
                .await
                .expect("text"),
            "2 comments"
        );
    }
    // Jane's browser kept her details.
    let name = jane.find(Locator::Css("#author")).await.expect("name");
    assert_eq!(
        name.prop("value").await.expect("value").as_deref(),
        Some("Jane Reader")
    );
    screenshot(
        &jane,
        &format!("host-{backend:?}-approved.png").to_lowercase(),
    )
    .await;

    jane.close().await.expect("close");
    other.close().await.expect("close");
    let _ = writeln!(
        std::io::stderr(),
        "the browser test took {:.1} s",
        started.elapsed().as_secs_f64()
    );
}

/// The browser test needs Chromium and its driver, which `.ci/run` installs: it runs where the
/// PostgreSQL halves and the drills do (`REPLYGUARD_REQUIRE_POSTGRES=1`), and a fresh
/// machine's `cargo test` lists it as ignored, with the reason.
mod in_a_browser {
    use super::a_reader_replies_in_a_browser_and_sees_the_reply_held_until_approved;

    crate::common::backend_tests!(
        needs = "drives headless Chromium through chromedriver, as CI does: set \
                 REPLYGUARD_REQUIRE_POSTGRES=1 with Debian's chromium and chromium-driver and \
                 PostgreSQL at hand";
        flavor = "multi_thread";
        a_reader_replies_in_a_browser_and_sees_the_reply_held_until_approved,
    );
}
