//! The article host's web app, as a reference for host teams in any language.
//!
//! - `GET /` shows the article, its approved comments (threaded, a page at a time, the
//!   reader's own held replies among them) and the reply form, with a fresh form token from
//!   `PrepareForm`. `?replytocom=ID` sets the comment the form answers, as WordPress does.
//! - `POST /comments` sends the form to `SubmitComment`. A reply that is taken is answered
//!   with a redirect (303) to the page, so a reload does not send it again; one that is refused
//!   gets the page again, the form filled with what the reader wrote and each refusal shown
//!   where the reader looks for it.
//!
//! No JavaScript: links and a form POST do everything. tests/host.rs serves this module beside
//! a real replyguard and drives it with a real browser.

mod identicon;
mod page;
mod refusal;

use std::{net::SocketAddr, sync::Arc, time::Duration};

use askama::Template;
use axum::{
    Router,
    extract::{ConnectInfo, State},
    http::{HeaderMap, StatusCode, header},
    response::{Html, IntoResponse, Redirect, Response},
    routing::{get, post},
};
use axum_extra::extract::{
    CookieJar, Form, Query,
    cookie::{Cookie, SameSite},
};
use replyguard::proto::{self, CommentStatus, ListOrder, comments_client::CommentsClient};
use serde::Deserialize;
use tonic::{
    Code, Request, Status,
    metadata::AsciiMetadataValue,
    service::{Interceptor, interceptor::InterceptedService},
    transport::{Channel, Endpoint},
};

use page::{Alert, ArticlePage, CommentView, Posted, ReplyForm};
use refusal::Refusal;

/// The reader's author token from `SubmitComment`: with it, `ListComments` shows them their own
/// held replies. It names a reply, nothing about the reader, and is good for 30 days.
const AUTHOR_TOKEN: &str = "replyguard_author";

/// "Save my name, email, and website in this browser": the three cookies WordPress uses.
const REMEMBERED: [&str; 3] = [
    "comment_author",
    "comment_author_email",
    "comment_author_url",
];

/// What became of the reader's reply (`published` or `held`), told once on the page the
/// redirect leads to and then dropped, so that a reload does not tell it again.
const POSTED: &str = "comment_posted";

/// How long the saved details are kept (WordPress: 347 days).
const REMEMBER_FOR: Duration = Duration::from_secs(347 * 24 * 3600);

/// How long an author token is good for.
const AUTHOR_TOKEN_FOR: Duration = Duration::from_secs(30 * 24 * 3600);

/// The `Comments` client, every call carrying the site key.
type Comments = CommentsClient<InterceptedService<Channel, SiteKey>>;

/// What the app needs: replyguard's address and the site's key, and which article it shows.
pub struct Settings {
    comments: Comments,
    article: String,
    /// Comments a page; replyguard takes 1 to 200.
    pub page_size: u32,
}

impl Settings {
    /// Settings for `article`, reaching replyguard at `endpoint` with `site_key`. Nothing is
    /// called yet: the app starts while replyguard is down, and each page says so until it is up.
    pub fn new(endpoint: &str, site_key: &str, article: &str) -> Result<Settings, String> {
        let channel = Endpoint::from_shared(endpoint.to_owned())
            .map_err(|err| format!("REPLYGUARD_ENDPOINT {endpoint:?} is not a URL: {err}"))?
            .connect_timeout(Duration::from_secs(5))
            .timeout(Duration::from_secs(10))
            .connect_lazy();
        let mut bearer = AsciiMetadataValue::try_from(format!("Bearer {site_key}"))
            .map_err(|_| "REPLYGUARD_SITE_KEY is not a site key".to_owned())?;
        bearer.set_sensitive(true);
        Ok(Settings {
            comments: CommentsClient::with_interceptor(channel, SiteKey(bearer)),
            article: article.to_owned(),
            page_size: 20,
        })
    }
}

/// Sends `authorization: Bearer rg_site_…` with every call.
#[derive(Clone)]
struct SiteKey(AsciiMetadataValue);

impl Interceptor for SiteKey {
    fn call(&mut self, mut request: Request<()>) -> Result<Request<()>, Status> {
        request
            .metadata_mut()
            .insert("authorization", self.0.clone());
        Ok(request)
    }
}

/// Serves the app on `listener` until the process ends.
pub async fn serve(listener: tokio::net::TcpListener, settings: Settings) -> std::io::Result<()> {
    let app = Router::new()
        .route("/", get(article))
        .route("/comments", post(submit))
        .with_state(Arc::new(settings));
    // The reader's address goes to replyguard with their reply (flooding, blocked addresses).
    axum::serve(
        listener,
        app.into_make_service_with_connect_info::<SocketAddr>(),
    )
    .await
}

type Host = State<Arc<Settings>>;

/// The article page's query.
#[derive(Deserialize, Default)]
#[serde(default)]
struct PageQuery {
    /// The page of comments: a `next_page_token` of `ListComments`.
    page: String,
    /// The comment the form answers.
    replytocom: String,
}

/// `GET /`: the article, its comments and an empty form (the reader's saved details in it).
async fn article(State(host): Host, Query(query): Query<PageQuery>, jar: CookieJar) -> Response {
    let remembered = |name: &str| jar.get(name).map(|c| c.value().to_owned());
    let form = ReplyForm {
        name: remembered(REMEMBERED[0]).unwrap_or_default(),
        email: remembered(REMEMBERED[1]).unwrap_or_default(),
        website: remembered(REMEMBERED[2]).unwrap_or_default(),
        remember: remembered(REMEMBERED[0]).is_some(),
        parent_id: query.replytocom,
        ..ReplyForm::default()
    };
    let posted = match remembered(POSTED).as_deref() {
        Some("published") => Some(Posted::Published),
        Some("held") => Some(Posted::Held),
        _ => None,
    };
    let jar = match posted {
        Some(_) => jar.remove(Cookie::build(POSTED).path("/")),
        None => jar,
    };
    show(&host, jar, query.page, Some(form), posted, StatusCode::OK).await
}

/// The reply form as the browser sends it; the names are WordPress's where it has one. A field
/// left out is empty, and replyguard says so if it is required.
#[derive(Deserialize, Default)]
#[serde(default)]
struct Sent {
    comment: String,
    #[serde(rename = "author")]
    name: String,
    email: String,
    #[serde(rename = "url")]
    website: String,
    /// The checkbox: present when ticked.
    remember: Option<String>,
    parent_id: String,
    form_token: String,
    idempotency_key: String,
    /// The page of comments the reader was on.
    page: String,
    /// The honeypot: hidden from people, so only a robot fills it.
    subject: String,
}

/// `POST /comments`: sends the reply to replyguard, then redirects to the page (taken) or shows
/// it again with what went wrong (refused).
async fn submit(
    State(host): Host,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    jar: CookieJar,
    Form(sent): Form<Sent>,
) -> Response {
    let header = |name: header::HeaderName| {
        headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .to_owned()
    };
    let request = proto::SubmitCommentRequest {
        article: host.article.clone(),
        parent_id: sent.parent_id.clone(),
        author: Some(proto::Author {
            name: sent.name.clone(),
            email: sent.email.clone(),
            website: sent.website.clone(),
        }),
        body: sent.comment.clone(),
        // Behind a proxy, the reader's address is in its header (`X-Forwarded-For`), set by
        // the proxy you trust; the peer here is the reader.
        client: Some(proto::ClientInfo {
            ip: peer.ip().to_string(),
            user_agent: header(header::USER_AGENT),
            referrer: header(header::REFERER),
        }),
        form: Some(proto::FormInfo {
            token: sent.form_token.clone(),
            honeypot: sent.subject.clone(),
        }),
        idempotency_key: sent.idempotency_key.clone(),
        ..Default::default()
    };
    match host.comments.clone().submit_comment(request).await {
        Ok(answer) => taken(jar, &sent, answer.into_inner()),
        Err(status) => refused(&host, jar, sent, &status).await,
    }
}

/// A reply replyguard took: keep the author token and the details the reader asked to keep,
/// and send the browser to the page where the reply is.
fn taken(jar: CookieJar, sent: &Sent, answer: proto::SubmitCommentResponse) -> Response {
    let status = answer.status();
    let jar = jar.add(cookie(AUTHOR_TOKEN, answer.author_token, AUTHOR_TOKEN_FOR));
    let details = [&sent.name, &sent.email, &sent.website];
    let jar = REMEMBERED
        .iter()
        .zip(details)
        .fold(jar, |jar, (name, value)| {
            if sent.remember.is_some() {
                jar.add(cookie(name, value.clone(), REMEMBER_FOR))
            } else {
                jar.remove(Cookie::build(*name).path("/"))
            }
        });
    let (posted, anchor) = match status {
        CommentStatus::Approved => ("published", answer.comment.map(|c| c.id)),
        // The author sees a held reply in its place; spam is not listed, even to its author,
        // and is told as held, which tells a robot nothing.
        CommentStatus::Pending => ("held", answer.comment.map(|c| c.id)),
        _ => ("held", None),
    };
    // A new thread is first among the newest; a reply is on the page of its parent.
    let page = if sent.parent_id.is_empty() {
        ""
    } else {
        &sent.page
    };
    let jar = jar.add(cookie(POSTED, posted.to_owned(), Duration::from_secs(60)));
    let mut to = match page {
        "" => "/".to_owned(),
        page => {
            let query = url::form_urlencoded::Serializer::new(String::new())
                .append_pair("page", page)
                .finish();
            format!("/?{query}")
        }
    };
    if let Some(id) = anchor {
        to.push_str(&format!("#comment-{id}"));
    }
    (jar, Redirect::to(&to)).into_response()
}

/// A reply replyguard refused: the page again, the form as the reader filled it, and the
/// refusal told where they will look for it.
async fn refused(host: &Settings, jar: CookieJar, sent: Sent, status: &Status) -> Response {
    let refusal = Refusal::of(status);
    let mut form = ReplyForm {
        comment: sent.comment,
        name: sent.name,
        email: sent.email,
        website: sent.website,
        remember: sent.remember.is_some(),
        parent_id: sent.parent_id,
        form_token: sent.form_token,
        idempotency_key: sent.idempotency_key,
        ..ReplyForm::default()
    };
    match &refusal {
        Refusal::Fields(fields) => {
            let mut others = Vec::new();
            for (field, description) in fields {
                let message = format!("{} {description}.", refusal::label(field));
                let beside = match field.as_str() {
                    "body" => &mut form.errors.comment,
                    "author.name" => &mut form.errors.name,
                    "author.email" => &mut form.errors.email,
                    "author.website" => &mut form.errors.website,
                    _ => {
                        others.push(message);
                        continue;
                    }
                };
                beside.get_or_insert(message);
            }
            let text = if others.is_empty() {
                "Please correct the fields marked below.".to_owned()
            } else {
                others.join(" ")
            };
            form.alert = Some(Alert { text, link: None });
        }
        Refusal::Wait { seconds } => {
            let unit = if *seconds == 1 { "second" } else { "seconds" };
            form.alert = Some(Alert {
                text: format!(
                    "You are replying too fast. Please wait {seconds} {unit}, then send your \
                     reply again."
                ),
                link: None,
            });
        }
        Refusal::Duplicate { earlier } => {
            form.alert = Some(Alert {
                text: "You already said that.".to_owned(),
                link: Some((format!("#comment-{earlier}"), "See your reply".to_owned())),
            });
        }
        Refusal::Closed => {}
        Refusal::Unexpected => {
            tracing::warn!(code = ?status.code(), message = status.message(), "SubmitComment failed");
            form.alert = Some(Alert {
                text: "Your reply could not be sent just now. Please try again in a moment."
                    .to_owned(),
                link: None,
            });
        }
    }
    let form = (!matches!(refusal, Refusal::Closed)).then_some(form);
    show(host, jar, sent.page, form, None, refusal.http_status()).await
}

/// Renders the page: a page of comments, and the form (unless the article is closed). A form
/// without a token gets a new one from `PrepareForm`.
async fn show(
    host: &Settings,
    jar: CookieJar,
    page: String,
    mut form: Option<ReplyForm>,
    posted: Option<Posted>,
    status: StatusCode,
) -> Response {
    let (listing, jar) = list(host, &page, jar).await;
    let mut closed = listing.as_ref().is_ok_and(|l| l.closed);
    if let Some(form) = form.as_mut().filter(|_| !closed) {
        if form.form_token.is_empty() {
            match prepare(host).await {
                Ok(token) => form.form_token = token,
                Err(Refusal::Closed) => closed = true,
                // The reply can still be sent: replyguard scores a missing token only where
                // the site requires one.
                Err(_) => {}
            }
        }
        if form.idempotency_key.is_empty() {
            form.idempotency_key = uuid::Uuid::now_v7().to_string();
        }
    }
    let (comments, total, next_page) = match listing {
        Ok(listing) => {
            let comments = CommentView::page(listing.comments);
            if let Some(form) = form.as_mut() {
                form.parent_name = comments
                    .iter()
                    .find(|c| c.id == form.parent_id)
                    .map(|c| c.author_name.clone());
            }
            let next = Some(listing.next_page_token).filter(|t| !t.is_empty());
            (Some(comments), listing.total_count, next)
        }
        Err(status) => {
            tracing::warn!(code = ?status.code(), message = status.message(), "ListComments failed");
            (None, 0, None)
        }
    };
    let page = ArticlePage {
        page,
        comments,
        total,
        next_page,
        posted,
        form: form.filter(|_| !closed),
    };
    match page.render() {
        Ok(html) => (status, jar, Html(html)).into_response(),
        Err(err) => {
            tracing::error!(error = %err, "the page did not render");
            StatusCode::INTERNAL_SERVER_ERROR.into_response()
        }
    }
}

/// One page of the article's comments, newest threads first, with the reader's own held
/// replies when their author token is good; a token replyguard refuses (expired, or of another
/// deployment) is dropped.
async fn list(
    host: &Settings,
    page: &str,
    jar: CookieJar,
) -> (Result<proto::ListCommentsResponse, Status>, CookieJar) {
    let request = |author_token: &str| proto::ListCommentsRequest {
        article: host.article.clone(),
        page_size: host.page_size,
        page_token: page.to_owned(),
        order: ListOrder::NewestFirst.into(),
        author_token: author_token.to_owned(),
        // A host that knows when its article was published passes `article_published_at`
        // here, in `PrepareForm` and in `SubmitComment`, so that a site's `close-after-days`
        // counts from it; this example's article has no date.
        ..Default::default()
    };
    let token = jar.get(AUTHOR_TOKEN).map(|c| c.value().to_owned());
    let mut comments = host.comments.clone();
    let listing = comments
        .list_comments(request(token.as_deref().unwrap_or_default()))
        .await;
    match listing {
        Err(status) if token.is_some() && status.code() == Code::InvalidArgument => {
            let jar = jar.remove(Cookie::build(AUTHOR_TOKEN).path("/"));
            let listing = comments.list_comments(request("")).await;
            (listing.map(tonic::Response::into_inner), jar)
        }
        listing => (listing.map(tonic::Response::into_inner), jar),
    }
}

/// A form token for the article, or why there is none.
async fn prepare(host: &Settings) -> Result<String, Refusal> {
    let request = proto::PrepareFormRequest {
        article: host.article.clone(),
        ..Default::default()
    };
    match host.comments.clone().prepare_form(request).await {
        Ok(answer) => Ok(answer.into_inner().token),
        Err(status) => {
            let refusal = Refusal::of(&status);
            if matches!(refusal, Refusal::Unexpected) {
                tracing::warn!(code = ?status.code(), message = status.message(), "PrepareForm failed");
            }
            Err(refusal)
        }
    }
}

/// A cookie for the whole site that scripts cannot read.
fn cookie(name: &str, value: String, max_age: Duration) -> Cookie<'static> {
    Cookie::build((name.to_owned(), value))
        .path("/")
        .http_only(true)
        .same_site(SameSite::Lax)
        .max_age(max_age.try_into().unwrap_or_default())
        .build()
}
