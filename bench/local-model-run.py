#!/usr/bin/env python3
"""Send every fixture through exbrief against a real local model and report, per task, how
often the model's output was schema-valid (first try, after one repair), how often exbrief fell
back to its offline rules, restored-token failures, and latency. A recording proxy between
exbrief and the model checks that no value redaction replaced ever reached the model.

Needs a running OpenAI-compatible server (bench/local-model.sh serve: llama-server on :8081)
and a built exbrief (cargo build). Opt-in; not part of CI.

  python3 bench/local-model-run.py [--upstream http://127.0.0.1:8081] [--exbrief target/debug/exbrief]
"""
import argparse, json, os, re, socket, subprocess, sys, tempfile, threading, time, urllib.request
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
TASKS = ["impact_summary", "classification", "customer_reply"]
FIELD = {"impact_summary": "impact_summary", "classification": "classification", "customer_reply": "draft_reply"}
CATEGORIES = {"supplier_delay", "allocation_failure", "stockout_risk", "quality_hold", "invoice_dispute",
              "sla_breach", "margin_exception", "equipment_downtime", "substitution_request", "other"}
TOKEN = re.compile(r"\[[A-Z][A-Z_]*(?:_\d+)?\]")
RECORDED = []


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def proxy(upstream):
    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *a):
            pass

        def do_POST(self):
            body = self.rfile.read(int(self.headers.get("content-length", 0)))
            RECORDED.append(body.decode("utf-8", "replace"))
            req = urllib.request.Request(upstream + self.path, data=body, method="POST",
                                         headers={"content-type": "application/json"})
            try:
                with urllib.request.urlopen(req, timeout=600) as r:
                    status, data, ctype = r.status, r.read(), r.headers.get("content-type", "application/json")
            except urllib.error.HTTPError as e:
                status, data, ctype = e.code, e.read(), e.headers.get("content-type", "application/json")
            self.send_response(status)
            self.send_header("content-type", ctype)
            self.send_header("content-length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

    port = free_port()
    server = ThreadingHTTPServer(("127.0.0.1", port), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server, port


def http(method, url, body=None, timeout=900):
    data = json.dumps(body).encode() if body is not None else None
    req = urllib.request.Request(url, data=data, method=method, headers={"content-type": "application/json"})
    try:
        with urllib.request.urlopen(req, timeout=timeout) as r:
            return r.status, json.loads(r.read() or b"null")
    except urllib.error.HTTPError as e:
        return e.code, json.loads(e.read() or b"null")


def secrets(original, redacted, out):
    """Values redaction replaced whole (structured fields): they must never reach the model."""
    if isinstance(original, dict) and isinstance(redacted, dict):
        for k, v in original.items():
            secrets(v, redacted.get(k), out)
    elif isinstance(original, list) and isinstance(redacted, list):
        for a, b in zip(original, redacted):
            secrets(a, b, out)
    elif isinstance(original, str) and original != redacted and len(original) >= 5 and "\n" not in original:
        out.add(original)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--upstream", default="http://127.0.0.1:8081")
    ap.add_argument("--exbrief", default=str(ROOT / "target/debug/exbrief"))
    ap.add_argument("--fixtures", default=str(ROOT / "fixtures"))
    ap.add_argument("--model", default="local")
    ap.add_argument("--out", default=str(ROOT / "bench/results/local-model.json"))
    args = ap.parse_args()

    server, pport = proxy(args.upstream)
    port = free_port()
    tmp = tempfile.mkdtemp()
    env = {k: v for k, v in os.environ.items() if not k.startswith("EXBRIEF_")}
    env.update({
        "EXBRIEF_LLM__BASE_URL": f"http://127.0.0.1:{pport}/v1", "EXBRIEF_LLM__MODEL": args.model,
        "EXBRIEF_LLM__TIMEOUT_SECS": "300", "EXBRIEF_LLM__MAX_CONCURRENT": "1", "EXBRIEF_LLM__MAX_RETRIES": "0",
        "EXBRIEF_DATABASE__URL": f"sqlite:{tmp}/run.db", "EXBRIEF_SERVER__REQUEST_TIMEOUT_SECS": "900",
        "EXBRIEF_LOG": "warn",
    })
    proc = subprocess.Popen([args.exbrief, "serve", "--listen", f"127.0.0.1:{port}"], cwd=ROOT, env=env)
    base = f"http://127.0.0.1:{port}"
    try:
        for _ in range(100):
            try:
                if http("GET", base + "/readyz", timeout=2)[0] == 200:
                    break
            except OSError:
                time.sleep(0.1)
        stats = {t: {"calls": 0, "valid_first_try": 0, "valid_after_repair": 0, "fallback": 0,
                     "unrestored": 0, "latency_s": []} for t in TASKS}
        leaks, problems, samples = [], [], {}
        fixtures = sorted(Path(args.fixtures).glob("*.json"))
        for f in fixtures:
            bundle = json.loads(f.read_text())
            bundle["event_id"] = f"local-model:{f.stem}:{int(time.time())}"
            red = subprocess.run([args.exbrief, "redact", str(f)], cwd=ROOT, env=env, capture_output=True, text=True)
            hidden = set()
            secrets(json.loads(f.read_text()), json.loads(red.stdout), hidden)
            seen_before = len(RECORDED)
            t0 = time.monotonic()
            status, doc = http("POST", base + "/v1/summarize", bundle)
            elapsed = time.monotonic() - t0
            if status != 200:
                problems.append(f"{f.name}: HTTP {status}: {doc}")
                continue
            sent = "\n".join(RECORDED[seen_before:])
            leaks += [f"{f.name}: {s!r}" for s in sorted(hidden) if s in sent]
            for t in TASKS:
                info = doc["tasks"][t]
                s = stats[t]
                s["calls"] += 1
                s["latency_s"].append(elapsed)
                if info["provider"] == "offline":
                    s["fallback"] += 1
                elif info["model_calls"] == 1:
                    s["valid_first_try"] += 1
                else:
                    s["valid_after_repair"] += 1
                if any(a.startswith(FIELD[t]) for a in doc["needs_attention"]):
                    s["unrestored"] += 1
            c = doc["classification"]
            if c["category"] not in CATEGORIES or not (1 <= c["priority"] <= 5):
                problems.append(f"{f.name}: classification out of range: {c}")
            reply = doc["draft_reply"]
            if not any(a.startswith("draft_reply") for a in doc["needs_attention"]) and TOKEN.search(reply["body"]):
                problems.append(f"{f.name}: a token is shown in the reply: {TOKEN.findall(reply['body'])}")
            samples[f.name] = {t: doc[FIELD[t]] for t in TASKS if doc["tasks"][t]["provider"] != "offline"}
            print(f"{f.name}: {elapsed:.1f} s, " + ", ".join(
                f"{t}={'fallback' if doc['tasks'][t]['provider'] == 'offline' else str(doc['tasks'][t]['model_calls']) + ' call(s)'}"
                for t in TASKS), flush=True)
        print()
        print(f"{'task':<16} {'valid 1st':>9} {'after repair':>12} {'fallback':>8} {'valid ≤1 repair':>15} {'unrestored':>10} {'median s':>8}")
        summary = {}
        for t, s in stats.items():
            n = max(s["calls"], 1)
            lat = sorted(s["latency_s"]) or [0]
            valid = (s["valid_first_try"] + s["valid_after_repair"]) / n
            summary[t] = {k: v for k, v in s.items() if k != "latency_s"} | {
                "valid_rate": round(valid, 3), "median_request_s": round(lat[len(lat) // 2], 1)}
            print(f"{t:<16} {s['valid_first_try']:>9} {s['valid_after_repair']:>12} {s['fallback']:>8} "
                  f"{valid:>15.0%} {s['unrestored']:>10} {lat[len(lat) // 2]:>8.1f}")
        print(f"\nmodel requests recorded: {len(RECORDED)}; redacted values found in them: {len(leaks)}")
        for line in leaks + problems:
            print("  " + line)
        Path(args.out).parent.mkdir(parents=True, exist_ok=True)
        Path(args.out).write_text(json.dumps({"model": args.model, "fixtures": len(fixtures), "tasks": summary,
                                              "leaks": leaks, "problems": problems, "samples": samples},
                                             indent=2, ensure_ascii=False) + "\n")
        print(f"written: {args.out}")
        return 1 if leaks else 0
    finally:
        proc.terminate()
        proc.wait(timeout=30)
        server.shutdown()


if __name__ == "__main__":
    sys.exit(main())
