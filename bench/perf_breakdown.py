#!/usr/bin/env python3
"""Shares of perf samples, from `perf script -F comm,tid,ip,sym` output (issue 9's and issue 3's
profiles in the README).

  perf_breakdown.py SCRIPT                      # by part of exbrief (first matching category)
  perf_breakdown.py SCRIPT --under RE --by RE   # samples whose stack matches --under, grouped by
                                                # the innermost frame matching --by
"""
import argparse
import collections
import re

# Checked in this order; a sample counts for the first category any of its frames matches.
CATEGORIES = [
    ("redaction", r"exbrief::redact::"),
    ("template rendering", r"exbrief::prompts::|minijinja::"),
    ("schema validation", r"parse_and_validate|jsonschema::"),
    ("document", r"exbrief::pipeline::(document|reveal)"),
    ("prompt-log rows", r"exbrief::pipeline::log_row|canonical_text"),
    ("vault", r"seal_map|exbrief::vault::"),
    ("store (sqlx, SQLite)", r"exbrief::store::|sqlx|sqlite3"),
    ("model HTTP client", r"async_openai|reqwest::|hyper_util::client|hyper::client|OpenAiProvider"),
    ("request parsing", r"exbrief::http::body|exbrief::bundle::"),
    ("auth", r"exbrief::http::auth"),
    ("pipeline, other", r"exbrief::(pipeline|llm)::"),
    ("HTTP server", r"hyper::proto|hyper::server|hyper_util::server|axum::|tower_http"),
    ("tokio scheduler", r"tokio::"),
]


def samples(path):
    """(thread name, frames leaf first) for each sample."""
    comm, frames = None, []
    with open(path, errors="replace") as f:
        for line in f:
            if not line.strip():
                if comm is not None:
                    yield comm, frames
                comm, frames = None, []
            elif not line[0].isspace():
                comm, frames = line.split()[0], []
            else:
                parts = line.strip().split(None, 1)
                frames.append(parts[-1])
    if comm is not None:
        yield comm, frames


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("script")
    ap.add_argument("--under")
    ap.add_argument("--by")
    a = ap.parse_args()
    shares, threads, total = collections.Counter(), collections.Counter(), 0
    cats = [(name, re.compile(p)) for name, p in CATEGORIES]
    under = re.compile(a.under) if a.under else None
    by = re.compile(a.by) if a.by else None
    for comm, frames in samples(a.script):
        total += 1
        threads[comm] += 1
        joined = "\n".join(frames)
        if under:
            if not under.search(joined):
                continue
            inner = next((f for f in frames if by.search(f)), None) if by else frames[0]
            shares[inner[:110] if inner else "(none)"] += 1
        else:
            shares[next((n for n, p in cats if p.search(joined)), "other")] += 1
    if not total:
        raise SystemExit("no samples")
    print(f"{total} samples")
    if not under:
        for t, n in threads.most_common(4):
            print(f"  thread {t}: {100 * n / total:.1f} %")
    else:
        print(f"  matching --under: {100 * sum(shares.values()) / total:.1f} %")
    for k, n in shares.most_common(20):
        print(f"{100 * n / total:5.1f} %  {k}")


if __name__ == "__main__":
    main()
