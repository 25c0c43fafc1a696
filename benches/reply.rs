//! The other steps every submission takes besides the assessment (benches/assess.rs):
//! validating the reader's form into domain types, making the public copy of the text
//! (contacts masked, then rendered as sanitised HTML), and sealing the raw text, which holds an
//! email address here, for the same realistic reply.

use std::hint::black_box;

use criterion::{Criterion, criterion_group, criterion_main};
use replyguard::{
    domain::{RawReply, validate},
    ids::{CommentId, SiteId},
    privacy::{SecretKey, Vault, mask_contacts, render_html},
};

const BODY: &str = "I read the whole piece twice. The council's numbers on the new tram line \
    don't add up: the 2019 estimate was half of what they quote now, and nobody explains the \
    difference. There is a good summary at https://transport.example.org/tram-costs if anyone \
    wants the details. Write to me at jane@example.com if you want my notes.\n\n\
    Still, I'd rather pay for it than sit in traffic for another ten years!";

fn raw() -> RawReply<'static> {
    RawReply {
        article: "/2024/11/27/tram-line",
        author_name: "Jane Reader",
        author_email: "Jane.Reader@Example.com",
        author_website: "https://jane.example.net",
        body: BODY,
        ip: "198.51.100.23",
        user_agent: "Mozilla/5.0",
        ..RawReply::default()
    }
}

fn bench_validate(c: &mut Criterion) {
    let raw = raw();
    c.bench_function("validate one reply", |b| {
        b.iter(|| validate(black_box(&raw)).is_ok())
    });
}

fn bench_render(c: &mut Criterion) {
    c.bench_function("mask and render one reply", |b| {
        b.iter(|| render_html(&mask_contacts(black_box(BODY))))
    });
}

fn bench_seal(c: &mut Criterion) {
    let vault = Vault::new(&SecretKey::generate());
    let (site, comment) = (SiteId::new(), CommentId::new());
    c.bench_function("seal one reply's text", |b| {
        b.iter(|| vault.seal_body(site, comment, black_box(BODY)))
    });
}

criterion_group!(benches, bench_validate, bench_render, bench_seal);
criterion_main!(benches);
