//! `replyguard bench`: a load generator over real gRPC.
//!
//! A fixed number of workers call one workload for a fixed time (or count)
//! and record every call's latency; the report gives requests per second,
//! latency percentiles and errors by gRPC code, as a table or JSON. It sends
//! traffic only to the endpoint it is given.

use std::{
    collections::BTreeMap,
    fmt::Write as _,
    sync::{
        Arc,
        atomic::{AtomicU64, Ordering},
    },
    time::{Duration, Instant},
};

use clap::{Args, ValueEnum};
use http::uri::PathAndQuery;
use prost::{
    DecodeError,
    bytes::{Buf, BufMut},
    encoding::{self, DecodeContext, WireType},
};
use serde::Serialize;
use tonic::{
    Code, Request, Status,
    client::Grpc,
    metadata::{Ascii, MetadataValue},
    transport::{Channel, Endpoint},
};
use tonic_health::pb::{HealthCheckRequest, health_client::HealthClient};

use self::webhook_sink::{Sink, WebhookFigures};
use super::seed::WORDS;
use crate::{
    api::codec::Codec,
    privacy::generate_token,
    proto::{
        Author, ClientInfo, CommentStatus, CountCommentsRequest, ListCommentsRequest,
        ListQueueRequest, SubmitCommentRequest, comments_client::CommentsClient,
        moderation_client::ModerationClient,
    },
    tls::{ClientTls, TlsError},
};

mod webhook_sink;

/// What the workers call.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Workload {
    /// `grpc.health.v1.Health/Check`: the transport's ceiling.
    Health,
    /// `SubmitComment` with distinct, valid replies from many authors and IPs.
    Submit,
    /// `ListComments`: the first page of `--article`, or of a thread of 100
    /// approved replies that the bench makes.
    List,
    /// `ListComments`: pages at every depth of the same thread, each asked
    /// for by its page token, as a reader paging through it would.
    ListDeep,
    /// `ListQueue` (a moderator token): the first page of the `--status`
    /// queue, as a moderator opens it.
    Queue,
    /// `ListQueue`: pages at every depth of the queue, by page token.
    QueueDeep,
    /// `CountComments` for 20 articles at once.
    Count,
    /// 70% list, 20% count, 10% submit.
    Mix,
    /// `ListComments` with a new made-up site key each call, as a flood of forged
    /// credentials would: every call is refused (`UNAUTHENTICATED`, or `RESOURCE_EXHAUSTED`
    /// once the address is barred), and what it measures is what refusing costs, and what
    /// it leaves real callers beside it. Needs no token.
    MadeUp,
}

/// A moderation queue.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum QueueStatus {
    Pending,
    Spam,
    Approved,
    Rejected,
}

impl QueueStatus {
    fn proto(self) -> CommentStatus {
        match self {
            QueueStatus::Pending => CommentStatus::Pending,
            QueueStatus::Spam => CommentStatus::Spam,
            QueueStatus::Approved => CommentStatus::Approved,
            QueueStatus::Rejected => CommentStatus::Rejected,
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum BenchOutput {
    Table,
    Json,
}

/// The settings of `replyguard bench`.
#[derive(Args, Clone, Debug)]
pub struct BenchArgs {
    /// The server, such as `http://127.0.0.1:50051` or `https://replyguard.internal:50051`.
    #[arg(long, default_value = "http://127.0.0.1:50051")]
    pub endpoint: String,
    #[command(flatten)]
    pub tls: ClientTls,
    /// A site key (`rg_site_…`); not needed for `health`.
    #[arg(long, env = "REPLYGUARD_TOKEN", hide_env_values = true)]
    pub token: Option<String>,
    #[arg(long, value_enum)]
    pub workload: Workload,
    /// Calls in flight at once.
    #[arg(long, default_value_t = 32)]
    pub concurrency: usize,
    /// How long to run, in seconds.
    #[arg(long, default_value_t = 10.0)]
    pub duration: f64,
    /// Stop after this many calls, if sooner.
    #[arg(long)]
    pub requests: Option<u64>,
    /// Calls per second over all workers, spread evenly, instead of each
    /// worker calling again as soon as it has an answer. A call's latency
    /// counts from when it was due, so a server that falls behind is not
    /// excused by the generator waiting for it.
    #[arg(long, value_parser = positive_rate)]
    pub rate: Option<f64>,
    /// The thread of `list` and `list-deep`, such as `seed/hot` on a site
    /// that `replyguard seed` filled; by default one the bench makes.
    #[arg(long)]
    pub article: Option<String>,
    /// The queue of `queue` and `queue-deep`.
    #[arg(long, value_enum, default_value_t = QueueStatus::Pending)]
    pub status: QueueStatus,
    /// Comments per page of the listing workloads.
    #[arg(long, default_value_t = 50, value_parser = clap::value_parser!(u32).range(1..=200))]
    pub page_size: u32,
    /// HTTP/2 connections to spread the workers over.
    #[arg(long, default_value_t = 4)]
    pub connections: usize,
    #[arg(long, value_enum, default_value_t = BenchOutput::Table)]
    pub output: BenchOutput,
    /// Also receive webhook deliveries at this address (`127.0.0.1:9000`), answering each
    /// `204`, and report how many came and how long after their events, waiting after the
    /// load until none has come for a second. Point a site's endpoint at it first
    /// (`replyctl webhook add http://127.0.0.1:9000/hook --events ...`, on a server that
    /// allows private and plain-HTTP endpoints).
    #[arg(long, value_name = "ADDR")]
    pub receive_webhooks: Option<std::net::SocketAddr>,
}

fn positive_rate(value: &str) -> Result<f64, String> {
    match value.parse::<f64>() {
        Ok(rate) if rate.is_finite() && rate > 0.0 => Ok(rate),
        _ => Err("a rate is a positive number of calls per second".to_owned()),
    }
}

/// What one run measured.
#[derive(Debug, Serialize)]
pub struct Report {
    pub workload: Workload,
    pub concurrency: usize,
    /// The `--rate` asked for, if any.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub rate: Option<f64>,
    pub seconds: f64,
    pub requests: u64,
    pub rps: f64,
    pub p50_ms: f64,
    pub p90_ms: f64,
    pub p99_ms: f64,
    pub max_ms: f64,
    pub errors: u64,
    pub errors_by_code: BTreeMap<String, u64>,
    /// With `--receive-webhooks`: the deliveries the run caused.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub webhooks: Option<WebhookFigures>,
}

impl Report {
    pub fn table(&self) -> String {
        let mut out = String::new();
        let _ = writeln!(
            out,
            "workload {:?}, concurrency {}{}, {:.1} s",
            self.workload,
            self.concurrency,
            self.rate
                .map_or_else(String::new, |rate| format!(", rate {rate}/s")),
            self.seconds
        );
        let _ = writeln!(
            out,
            "requests {}  rps {:.0}  p50 {:.2} ms  p90 {:.2} ms  p99 {:.2} ms  max {:.2} ms  errors {}",
            self.requests,
            self.rps,
            self.p50_ms,
            self.p90_ms,
            self.p99_ms,
            self.max_ms,
            self.errors
        );
        for (code, n) in &self.errors_by_code {
            let _ = writeln!(out, "  {code}: {n}");
        }
        if let Some(w) = &self.webhooks {
            let _ = writeln!(
                out,
                "webhooks received {} ({} during the run)  {:.0}/s over {:.1} s  delay p50 {:.1} ms  \
                 p99 {:.1} ms  max {:.1} ms  last {:.0} ms after the run",
                w.received,
                w.received_during_run,
                w.per_second,
                w.seconds,
                w.delay_p50_ms,
                w.delay_p99_ms,
                w.delay_max_ms,
                w.last_after_run_ms
            );
        }
        out
    }
}

/// Why a run could not start.
#[derive(Debug, thiserror::Error)]
pub enum BenchError {
    #[error("cannot connect to {0}: {1}")]
    Connect(String, tonic::transport::Error),
    #[error("the {0:?} workload needs a site key, or for a queue a moderator token (--token)")]
    NoToken(Workload),
    #[error("the token cannot be sent as a header")]
    BadToken,
    #[error(transparent)]
    Tls(#[from] TlsError),
    #[error("preparing the {0:?} workload: {1}")]
    Setup(Workload, Status),
    #[error("cannot receive webhooks at {0}: {1}")]
    Sink(std::net::SocketAddr, std::io::Error),
}

/// What the listing workloads read of a `ListCommentsResponse`.
#[derive(Clone, Debug, Default, PartialEq)]
struct PageSummary {
    comments: u32,
    next_page_token: String,
}

impl prost::Message for PageSummary {
    fn encode_raw(&self, _: &mut impl BufMut) {
        // Only ever decoded.
    }

    fn merge_field(
        &mut self,
        tag: u32,
        wire_type: WireType,
        buf: &mut impl Buf,
        ctx: DecodeContext,
    ) -> Result<(), DecodeError> {
        match tag {
            1 => {
                self.comments += 1;
                encoding::skip_field(wire_type, tag, buf, ctx)
            }
            2 => encoding::string::merge(wire_type, &mut self.next_page_token, buf, ctx),
            _ => encoding::skip_field(wire_type, tag, buf, ctx),
        }
    }

    fn encoded_len(&self) -> usize {
        0
    }

    fn clear(&mut self) {
        *self = PageSummary::default();
    }
}

/// Calls of one worker.
struct Worker {
    health: HealthClient<Channel>,
    comments: CommentsClient<Channel>,
    /// `ListComments` with [`PageSummary`] as its answer.
    lister: Grpc<Channel>,
    moderation: ModerationClient<Channel>,
    auth: Option<MetadataValue<Ascii>>,
    run: u64,
    id: u64,
    calls: u64,
    /// The thread `list` and `list-deep` read.
    article: String,
    status: CommentStatus,
    page_size: u32,
    /// Page tokens of the listing a `-deep` workload pages through.
    cursors: Arc<Vec<String>>,
}

const THREAD_ARTICLE: &str = "bench/thread-of-100";
/// The most page tokens collected.
const MAX_CURSORS: usize = 20_000;
/// Approved replies in the listed thread.
const THREAD_SIZE: u64 = 100;
const ARTICLES: u64 = 1000;

impl Worker {
    /// `ListComments`, reading only the page's size and next token: the
    /// generator shares the server's cores, so it skips the comments'
    /// text instead of decoding what it never uses.
    async fn list_summary(
        &mut self,
        request: Request<ListCommentsRequest>,
    ) -> Result<PageSummary, Status> {
        self.lister
            .ready()
            .await
            .map_err(|err| Status::unavailable(err.to_string()))?;
        let path = PathAndQuery::from_static("/replyguard.v1.Comments/ListComments");
        let codec = Codec::<ListCommentsRequest, PageSummary>::default();
        let response = self.lister.unary(request, path, codec).await?;
        Ok(response.into_inner())
    }

    fn request<T>(&self, message: T) -> Request<T> {
        let mut request = Request::new(message);
        if let Some(auth) = &self.auth {
            request.metadata_mut().insert("authorization", auth.clone());
        }
        request
    }

    /// The next deep page's token: every worker goes through all of them,
    /// each starting elsewhere.
    fn next_cursor(&self) -> String {
        if self.cursors.is_empty() {
            return String::new();
        }
        let n = self.id.wrapping_mul(7919).wrapping_add(self.calls) as usize;
        self.cursors[n % self.cursors.len()].clone()
    }

    async fn call(&mut self, workload: Workload) -> Result<(), Status> {
        self.calls += 1;
        let workload = match workload {
            Workload::Mix => match self.calls % 10 {
                0 => Workload::Submit,
                1 | 2 => Workload::Count,
                _ => Workload::List,
            },
            other => other,
        };
        match workload {
            Workload::Health => self
                .health
                .check(HealthCheckRequest::default())
                .await
                .map(drop),
            Workload::Submit => {
                let reply = realistic_reply(self.run, self.id, self.calls);
                let request = self.request(reply);
                self.comments.submit_comment(request).await.map(drop)
            }
            Workload::List | Workload::ListDeep => {
                let page_token = match workload {
                    Workload::ListDeep => self.next_cursor(),
                    _ => String::new(),
                };
                let request = self.request(ListCommentsRequest {
                    article: self.article.clone(),
                    page_size: self.page_size,
                    page_token,
                    ..Default::default()
                });
                self.list_summary(request).await.map(drop)
            }
            Workload::Queue | Workload::QueueDeep => {
                let page_token = match workload {
                    Workload::QueueDeep => self.next_cursor(),
                    _ => String::new(),
                };
                let request = self.request(ListQueueRequest {
                    status: self.status.into(),
                    page_size: self.page_size,
                    page_token,
                    ..Default::default()
                });
                self.moderation.list_queue(request).await.map(drop)
            }
            Workload::Count | Workload::Mix => {
                let first = self.calls % ARTICLES;
                let request = self.request(CountCommentsRequest {
                    articles: (first..first + 20).map(article).collect(),
                });
                self.comments.count_comments(request).await.map(drop)
            }
            Workload::MadeUp => {
                let mut request = self.request(ListCommentsRequest {
                    article: self.article.clone(),
                    page_size: self.page_size,
                    ..Default::default()
                });
                // A generated token is base64url after a fixed prefix: it always parses.
                if let Ok(forged) = format!("Bearer {}", generate_token("rg_site_")).parse() {
                    request.metadata_mut().insert("authorization", forged);
                }
                self.list_summary(request).await.map(drop)
            }
        }
    }
}

fn article(n: u64) -> String {
    format!("bench/article-{}", n % ARTICLES)
}

/// A distinct, valid reply: its author, IP, article and words vary with the
/// run, worker and call, so no duplicate or flood rule refuses it.
fn realistic_reply(run: u64, worker: u64, call: u64) -> SubmitCommentRequest {
    let seed = run ^ (worker << 40) ^ call.wrapping_mul(0x9e37_79b9_7f4a_7c15);
    let mut body = format!("Reply {call} from reader {worker}:");
    let mut state = seed | 1;
    for _ in 0..(12 + seed % 30) {
        // xorshift: cheap variety, no allocation beyond the body.
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        body.push(' ');
        body.push_str(WORDS[(state % WORDS.len() as u64) as usize]);
    }
    body.push('.');
    let author = worker * 1_000_003 + call;
    SubmitCommentRequest {
        article: article(seed),
        author: Some(Author {
            name: format!("Reader {author}"),
            email: format!("reader{author}.{run}@example.org"),
            website: String::new(),
        }),
        body,
        client: Some(ClientInfo {
            // The documentation range, with 64 varying bits: no two calls of
            // a run, or of runs close together, share an address.
            ip: format!(
                "2001:db8:{:x}:{:x}:{:x}:{:x}::1",
                (seed >> 48) & 0xffff,
                (seed >> 32) & 0xffff,
                (seed >> 16) & 0xffff,
                seed & 0xffff
            ),
            user_agent: "replyguard-bench".to_owned(),
            referrer: String::new(),
        }),
        ..Default::default()
    }
}

/// Runs one load test.
pub async fn run(args: &BenchArgs) -> Result<Report, BenchError> {
    let auth = match (&args.token, args.workload) {
        (None, Workload::Health | Workload::MadeUp) => None,
        (None, workload) => return Err(BenchError::NoToken(workload)),
        (Some(token), _) => Some(
            format!("Bearer {token}")
                .parse::<MetadataValue<Ascii>>()
                .map_err(|_| BenchError::BadToken)?,
        ),
    };
    let endpoint = Endpoint::from_shared(args.endpoint.clone())
        .map_err(|e| BenchError::Connect(args.endpoint.clone(), e))?;
    let endpoint = args
        .tls
        .configure(endpoint)?
        .tcp_nodelay(true)
        // HTTP/2's default 64 KiB windows hold two or three pages of 50
        // comments: the server would wait for window updates.
        .initial_stream_window_size(1 << 20)
        .initial_connection_window_size(4 << 20);
    let mut channels = Vec::new();
    for _ in 0..args.connections.max(1) {
        let channel = endpoint
            .connect()
            .await
            .map_err(|e| BenchError::Connect(args.endpoint.clone(), e))?;
        channels.push(channel);
    }
    let run_id = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos() as u64);
    let article = args
        .article
        .clone()
        .unwrap_or_else(|| THREAD_ARTICLE.to_owned());
    let worker = |id: usize, cursors: &Arc<Vec<String>>| {
        let channel = channels[id % channels.len()].clone();
        Worker {
            health: HealthClient::new(channel.clone()),
            comments: CommentsClient::new(channel.clone()),
            lister: Grpc::new(channel.clone()),
            moderation: ModerationClient::new(channel),
            auth: auth.clone(),
            run: run_id,
            id: id as u64,
            calls: 0,
            article: article.clone(),
            status: args.status.proto(),
            page_size: args.page_size,
            cursors: Arc::clone(cursors),
        }
    };

    let none = Arc::new(Vec::new());
    let uses_thread = matches!(
        args.workload,
        Workload::List | Workload::ListDeep | Workload::Mix
    );
    if uses_thread && args.article.is_none() {
        prepare_thread(&mut worker(0, &none), args.workload).await?;
    }
    let cursors = Arc::new(match args.workload {
        Workload::ListDeep | Workload::QueueDeep => {
            collect_cursors(&mut worker(0, &none), args.workload).await?
        }
        _ => Vec::new(),
    });

    let sink = match args.receive_webhooks {
        Some(addr) => Some(
            Sink::start(addr)
                .await
                .map_err(|err| BenchError::Sink(addr, err))?,
        ),
        None => None,
    };
    let budget = Arc::new(AtomicU64::new(args.requests.unwrap_or(u64::MAX)));
    let deadline = Instant::now() + Duration::from_secs_f64(args.duration.max(0.1));
    let started = Instant::now();
    let workers = args.concurrency.max(1);
    // With a rate, worker `id` makes calls `id`, `id + workers`, ... of an
    // even schedule.
    let every = args
        .rate
        .map(|rate| Duration::from_secs_f64(workers as f64 / rate));
    let tasks: Vec<_> = (0..workers)
        .map(|id| {
            let mut worker = worker(id, &cursors);
            let budget = Arc::clone(&budget);
            let workload = args.workload;
            let mut due =
                started + every.map_or(Duration::ZERO, |every| every * id as u32 / workers as u32);
            tokio::spawn(async move {
                let mut latencies = Vec::with_capacity(4096);
                let mut errors: BTreeMap<String, u64> = BTreeMap::new();
                loop {
                    let start = match every {
                        Some(every) => {
                            tokio::time::sleep_until(due.into()).await;
                            let start = due;
                            due += every;
                            start
                        }
                        None => Instant::now(),
                    };
                    if start >= deadline
                        || budget
                            .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |n| {
                                n.checked_sub(1)
                            })
                            .is_err()
                    {
                        break;
                    }
                    let result = worker.call(workload).await;
                    latencies.push(start.elapsed());
                    if let Err(status) = result {
                        *errors.entry(code_name(status.code())).or_default() += 1;
                    }
                }
                (latencies, errors)
            })
        })
        .collect();
    let mut latencies = Vec::new();
    let mut errors_by_code = BTreeMap::new();
    for task in tasks {
        // A worker that panicked lost its figures; the rest still count.
        if let Ok((l, e)) = task.await {
            latencies.extend(l);
            for (code, n) in e {
                *errors_by_code.entry(code).or_default() += n;
            }
        }
    }
    let ended = Instant::now();
    let seconds = (ended - started).as_secs_f64();
    let webhooks = match sink {
        Some(sink) => Some(sink.settle(started, ended, Duration::from_secs(1)).await),
        None => None,
    };
    latencies.sort_unstable();
    let pct = |p: f64| {
        latencies
            .get(((latencies.len() as f64 * p).ceil() as usize).saturating_sub(1))
            .map_or(0.0, |d| d.as_secs_f64() * 1000.0)
    };
    let requests = latencies.len() as u64;
    Ok(Report {
        workload: args.workload,
        concurrency: args.concurrency,
        rate: args.rate,
        seconds,
        requests,
        rps: requests as f64 / seconds,
        p50_ms: pct(0.50),
        p90_ms: pct(0.90),
        p99_ms: pct(0.99),
        max_ms: latencies.last().map_or(0.0, |d| d.as_secs_f64() * 1000.0),
        errors: errors_by_code.values().sum(),
        errors_by_code,
        webhooks,
    })
}

/// Pages through the whole thread or queue once, as the workload will, and
/// keeps every page token.
async fn collect_cursors(
    worker: &mut Worker,
    workload: Workload,
) -> Result<Vec<String>, BenchError> {
    let setup = |status| BenchError::Setup(workload, status);
    let mut cursors = Vec::new();
    let mut token = String::new();
    loop {
        let next = if workload == Workload::QueueDeep {
            let request = worker.request(ListQueueRequest {
                status: worker.status.into(),
                page_size: worker.page_size,
                page_token: token,
                ..Default::default()
            });
            let page = worker.moderation.list_queue(request).await.map_err(setup)?;
            page.into_inner().next_page_token
        } else {
            let request = worker.request(ListCommentsRequest {
                article: worker.article.clone(),
                page_size: worker.page_size,
                page_token: token,
                ..Default::default()
            });
            let page = worker
                .comments
                .list_comments(request)
                .await
                .map_err(setup)?;
            page.into_inner().next_page_token
        };
        if next.is_empty() || cursors.len() >= MAX_CURSORS {
            break;
        }
        cursors.push(next.clone());
        token = next;
    }
    if cursors.is_empty() {
        return Err(setup(Status::failed_precondition(
            "the listing has one page only: nothing deep to read",
        )));
    }
    Ok(cursors)
}

/// Makes sure the listed thread has 100 approved replies: clean replies on a
/// site in `auto` mode are approved as they arrive.
async fn prepare_thread(worker: &mut Worker, workload: Workload) -> Result<(), BenchError> {
    let listed = worker
        .comments
        .list_comments(worker.request(ListCommentsRequest {
            article: THREAD_ARTICLE.to_owned(),
            page_size: 1,
            ..Default::default()
        }))
        .await
        .map_err(|s| BenchError::Setup(workload, s))?
        .into_inner();
    // The site's rules may hold some of these replies (they are generated,
    // and near-duplicates of each other at times): count only the approved
    // ones, and answer only an approved thread start.
    let mut approved = listed.total_count;
    let mut parent = String::new();
    let mut n = 0;
    while approved < THREAD_SIZE {
        if n >= THREAD_SIZE * 10 {
            return Err(BenchError::Setup(
                workload,
                Status::failed_precondition(
                    "the site holds most replies; use a site whose policy approves clean ones",
                ),
            ));
        }
        let mut reply = realistic_reply(worker.run, u64::MAX >> 24, n);
        reply.article = THREAD_ARTICLE.to_owned();
        // Every fifth reply starts a thread; the others answer the last start.
        let starts = parent.is_empty() || n % 5 == 0;
        if !starts {
            reply.parent_id = parent.clone();
        }
        let stored = worker
            .comments
            .submit_comment(worker.request(reply))
            .await
            .map_err(|s| BenchError::Setup(workload, s))?
            .into_inner();
        let is_approved = stored.status() == CommentStatus::Approved;
        if is_approved {
            approved += 1;
        }
        if starts {
            parent = match (is_approved, stored.comment) {
                (true, Some(comment)) => comment.id,
                _ => String::new(),
            };
        }
        n += 1;
    }
    Ok(())
}

fn code_name(code: Code) -> String {
    format!("{code:?}")
}

#[cfg(test)]
mod tests {
    use prost::Message;

    use super::*;
    use crate::proto::{Comment, ListCommentsResponse};

    #[test]
    fn a_page_summary_counts_the_comments_and_keeps_the_token() {
        let mut response = ListCommentsResponse::default();
        response.next_page_token = "next".to_owned();
        response.total_count = 120;
        response.comments = (0..3)
            .map(|n| Comment {
                id: format!("c{n}"),
                body: "A reply with some text.".to_owned(),
                ..Comment::default()
            })
            .collect();
        let summary = PageSummary::decode(response.encode_to_vec().as_slice()).expect("decodes");
        assert_eq!(
            summary,
            PageSummary {
                comments: 3,
                next_page_token: "next".to_owned()
            }
        );
    }
}
