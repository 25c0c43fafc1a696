#!/usr/bin/env python3
"""Writes a WordPress export (WXR) of N comments to standard output, for measuring
`replyguard import`: the same N gives the same file.

Forty comments a post; over half answer an earlier comment of their post (threads up to
twenty deep, deeper than replyguard keeps); statuses as a real blog has them (mostly `1`, some
`0`, `spam` and `trash`); one in a hundred a pingback; HTML, entities and links in the texts;
a few thousand authors who come back; times over ten years up to now, the newest with their
addresses.

Usage: benches/wxr.py N > comments.xml
"""

import random
import sys
from datetime import datetime, timedelta, timezone
from xml.sax.saxutils import escape

WORDS = (
    "the council budget school really think road traffic park library report agree "
    "disagree because people money tax plan vote meeting week town bridge water "
    "housing market local news story thanks question answer why how when"
).split()
NAMES = "Ada Ben Cleo Dev Eli Fay Gus Hana Ivo Jun Kai Lea Mo Nia Oto Pia Raj Sol Tea Uma".split()


def main() -> None:
    n = int(sys.argv[1])
    rnd = random.Random(1)
    now = datetime.now(timezone.utc).replace(microsecond=0)
    start = now - timedelta(days=3650)
    span = (now - start).total_seconds()
    authors = max(n // 50, 10)
    out = sys.stdout
    out.write(
        '<?xml version="1.0" encoding="UTF-8"?>\n'
        '<rss version="2.0" xmlns:content="http://purl.org/rss/1.0/modules/content/" '
        'xmlns:wp="http://wordpress.org/export/1.2/">\n<channel>\n'
        "<title>Bench</title><link>https://bench.example.com</link>\n"
    )
    comment_id = 0
    post = 0
    while comment_id < n:
        post += 1
        count = min(40, n - comment_id)
        out.write(
            f"<item><title>Post {post}</title>"
            f"<link>https://bench.example.com/{post // 1000}/post-{post}/</link>"
            f"<wp:post_id>{post}</wp:post_id><wp:post_type>post</wp:post_type>\n"
        )
        ids = []  # (id, depth) of the post's comments so far
        for _ in range(count):
            comment_id += 1
            at = start + timedelta(seconds=span * comment_id / n)
            parent, depth = 0, 0
            if ids and rnd.random() < 0.55:
                parent, depth = rnd.choice(ids[-12:])
                depth += 1
                if depth > 20:
                    parent, depth = 0, 0
            ids.append((comment_id, depth))
            a = int(rnd.random() ** 3 * authors)
            name = f"{NAMES[a % len(NAMES)]} {a}"
            email = f"reader{a}@mail{a % 97}.example.org"
            r = rnd.random()
            approved = "1" if r < 0.85 else "0" if r < 0.90 else "spam" if r < 0.97 else "trash"
            kind = "pingback" if rnd.random() < 0.01 else ""
            words = " ".join(rnd.choice(WORDS) for _ in range(rnd.randint(5, 60)))
            body = f"<p>{words.capitalize()}.</p>\n<p>Tom &amp; Jerry&#8217;s <b>view</b>"
            if rnd.random() < 0.1:
                body += f' <a href="https://ref{a % 13}.example.net/page">a source</a>'
            body += "</p>"
            out.write(
                "<wp:comment>"
                f"<wp:comment_id>{comment_id}</wp:comment_id>"
                f"<wp:comment_author><![CDATA[{name}]]></wp:comment_author>"
                f"<wp:comment_author_email>{email}</wp:comment_author_email>"
                f"<wp:comment_author_url>https://site{a}.example.org/</wp:comment_author_url>"
                f"<wp:comment_author_IP>192.0.{a % 256}.{comment_id % 256}</wp:comment_author_IP>"
                f"<wp:comment_date>{at:%Y-%m-%d %H:%M:%S}</wp:comment_date>"
                f"<wp:comment_date_gmt>{at:%Y-%m-%d %H:%M:%S}</wp:comment_date_gmt>"
                f"<wp:comment_content>{escape(body)}</wp:comment_content>"
                f"<wp:comment_approved>{approved}</wp:comment_approved>"
                f"<wp:comment_type>{kind}</wp:comment_type>"
                f"<wp:comment_parent>{parent}</wp:comment_parent>"
                "</wp:comment>\n"
            )
        out.write("</item>\n")
    out.write("</channel>\n</rss>\n")


if __name__ == "__main__":
    main()
