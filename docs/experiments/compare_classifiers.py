#!/usr/bin/env python3
"""Compares the built classifier with logistic regression on the same features.

The features are the Rust analysis's own, exported by

    replyguard spam-eval --write-features /tmp/features.tsv

and the protocols are spam-eval's (docs/SPAM.md): cold (a prior from the other files, each
campaign taught once, pruned as the built-in prior is; nothing of the judged file) and
learning (the same prior plus the first 70% of each class of the judged file). Only the
classifier is compared: the other rules are left out, and each model is shown with its AUC
and its caught MCC at several probability thresholds.

    python3 docs/experiments/compare_classifiers.py /tmp/features.tsv

With `--only NAME`, only that file is judged, with a prior from every other file of the
export: export the three YouTube files and data/news-replies.csv together and judge
news-replies.csv to see what each model would hold of a news site's replies.

Needs numpy, scipy and scikit-learn (pip install scikit-learn).
"""

import collections
import math
import sys

import numpy as np
from scipy.sparse import csr_matrix
from scipy.special import chdtrc
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import matthews_corrcoef, roc_auc_score

# As in src/spam/classifier.rs and src/tools/spam_eval/.
STRENGTH = 3.0
PRIOR_SCALE = 0.75
MIN_DEVIATION = 0.1
MAX_EVIDENCE = 150
PRIOR_MIN_COUNT = 2.0
PRIOR_MIN_DEVIATION = 0.3
PRIOR_NEAR_BITS = 10
TAUGHT_SHARE = 0.7
THRESHOLDS = (0.5, 0.7, 0.8, 0.9, 0.97)


def read(path):
    files = collections.defaultdict(list)
    for line in open(path, encoding="utf-8"):
        name, _index, spam, fingerprint, key, features = line.rstrip("\n").split("\t")
        files[name].append(
            dict(
                spam=int(spam),
                fp=int(fingerprint),
                key=key,
                feats=sorted({int(x) for x in features.split(",") if x}),
            )
        )
    return files


def train_prior(files, names):
    """Every distinct text once, and a near-duplicate of one already taught not at all."""
    seen, taught, out = set(), [], []
    for name in names:
        for c in files[name]:
            if c["key"] in seen:
                continue
            seen.add(c["key"])
            if any(bin(t ^ c["fp"]).count("1") <= PRIOR_NEAR_BITS for t in taught):
                continue
            taught.append(c["fp"])
            out.append(c)
    return out, seen


def counts(items):
    features = collections.defaultdict(lambda: [0.0, 0.0])
    totals = [0.0, 0.0]
    for c in items:
        k = 0 if c["spam"] else 1
        totals[k] += 1
        for x in c["feats"]:
            features[x][k] += 1
    return features, totals


def prune(features, totals):
    kept = {}
    for x, (s, h) in features.items():
        sr, hr = s / max(totals[0], 1), h / max(totals[1], 1)
        if s + h >= PRIOR_MIN_COUNT and sr + hr > 0 and abs(sr / (sr + hr) - 0.5) >= PRIOR_MIN_DEVIATION:
            kept[x] = (s, h)
    return kept


def robinson(c, prior, prior_totals, learned, learned_totals):
    spam_docs = max(1.0, prior_totals[0] * PRIOR_SCALE + learned_totals[0])
    ham_docs = max(1.0, prior_totals[1] * PRIOR_SCALE + learned_totals[1])
    evidence = []
    for x in c["feats"]:
        ps, ph = prior.get(x, (0, 0))
        ls, lh = learned.get(x, (0, 0))
        s, h = ps * PRIOR_SCALE + ls, ph * PRIOR_SCALE + lh
        if s + h <= 0:
            continue
        sr, hr = s / spam_docs, h / ham_docs
        p = (STRENGTH * 0.5 + (s + h) * sr / (sr + hr)) / (STRENGTH + s + h)
        if abs(p - 0.5) >= MIN_DEVIATION:
            evidence.append(p)
    if not evidence:
        return 0.5
    evidence = sorted(evidence, key=lambda p: -abs(p - 0.5))[:MAX_EVIDENCE]
    n = len(evidence)
    spam = 1 - chdtrc(2 * n, -2 * sum(math.log(1 - p) for p in evidence))
    ham = 1 - chdtrc(2 * n, -2 * sum(math.log(p) for p in evidence))
    return (spam - ham + 1) / 2


def protocols(files, only=None):
    names = sorted(files)
    for name in names:
        if only is not None and name != only:
            continue
        prior_items, prior_keys = train_prior(files, [n for n in names if n != name])
        judged, keys = [], set()
        for c in files[name]:
            if c["key"] not in prior_keys and c["key"] not in keys:
                keys.add(c["key"])
                judged.append(c)
        yield name, "cold", prior_items, [], judged

        taught, rest = [], []
        for spam in (1, 0):
            cls = [c for c in files[name] if c["spam"] == spam]
            cut = int(len(cls) * TAUGHT_SHARE)
            taught += cls[:cut]
            rest += cls[cut:]
        order = {id(c): k for k, c in enumerate(files[name])}
        rest.sort(key=lambda c: order[id(c)])
        taught_keys = {c["key"] for c in taught}
        judged, keys = [], set()
        for c in rest:
            if c["key"] not in taught_keys and c["key"] not in keys:
                keys.add(c["key"])
                judged.append(c)
        yield name, "learning", prior_items, taught, judged


def matrix(items, index):
    rows, cols = [], []
    for k, c in enumerate(items):
        for x in c["feats"]:
            if x in index:
                rows.append(k)
                cols.append(index[x])
    return csr_matrix((np.ones(len(rows)), (rows, cols)), shape=(len(items), len(index)))


def logistic(prior_items, taught, judged, c_value=10.0, site_weight=3.0):
    train = prior_items + taught
    index = {}
    for c in train:
        for x in c["feats"]:
            index.setdefault(x, len(index))
    weights = [1.0] * len(prior_items) + [site_weight] * len(taught)
    model = LogisticRegression(C=c_value, max_iter=2000)
    model.fit(matrix(train, index), [c["spam"] for c in train], sample_weight=weights)
    return model.predict_proba(matrix(judged, index))[:, 1]


def main():
    args = sys.argv[1:]
    only = None
    if "--only" in args:
        at = args.index("--only")
        only = args[at + 1]
        del args[at : at + 2]
    files = read(args[0] if args else "/tmp/features.tsv")
    print("file protocol model AUC | caught MCC at p >=", " ".join(map(str, THRESHOLDS)))
    print("  held: spam held / spam, ham held / ham at each threshold")
    for name, protocol, prior_items, taught, judged in protocols(files, only):
        prior, prior_totals = counts(prior_items)
        prior = prune(prior, prior_totals)
        learned, learned_totals = counts(taught)
        y = [c["spam"] for c in judged]
        rob = np.array([robinson(c, prior, prior_totals, learned, learned_totals) for c in judged])
        lr = logistic(prior_items, taught, judged)
        for model, p in (("robinson", rob), ("logistic", lr), ("mean", (rob + lr) / 2)):
            mccs = " ".join(f"{matthews_corrcoef(y, p >= t):.3f}" for t in THRESHOLDS)
            print(f"{name} {protocol} {model} {roc_auc_score(y, p):.3f} | {mccs}")
            spam, ham = sum(y), len(y) - sum(y)
            held = " ".join(
                f"{sum(1 for s, q in zip(y, p) if s and q >= t)}/{spam},"
                f"{sum(1 for s, q in zip(y, p) if not s and q >= t)}/{ham}"
                for t in THRESHOLDS
            )
            print(f"  held: {held}")


if __name__ == "__main__":
    main()
