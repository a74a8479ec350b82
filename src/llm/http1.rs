//! The transport for model endpoints on plain `http://` (vLLM, llama.cpp's server or Ollama on the
//! same host or network): HTTP/1.1 with `Content-Length` requests, keep-alive and a bounded list
//! of idle connections.
//!
//! Why not reqwest here: a hyper client connection holds about 25–33 KB for its whole life (a
//! 32-slot dispatch-channel block, an 8 KB header write buffer, an 8–16 KB read buffer), and a
//! summary keeps three open while the model thinks — at 2,000 summaries in flight that was the
//! largest part of exbrief's heap. A connection here holds its socket and nothing else while it
//! waits; the answer is read into a buffer sized to it, which goes with the answer. `https://`
//! endpoints (and any run with a proxy in the environment) keep reqwest: TLS buffers dwarf the
//! difference, and reqwest knows proxies and certificates.

use std::collections::{HashMap, VecDeque};
use std::io;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use http::header::{HeaderName, HeaderValue};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// A response head larger than this is refused (hyper's default limit is of the same order).
const MAX_HEAD: usize = 64 * 1024;
/// A chat completion is kilobytes; an answer beyond this is not one.
const MAX_BODY: usize = 32 * 1024 * 1024;
/// Idle connections older than this are closed rather than reused (reqwest's default).
const IDLE_TIMEOUT: Duration = Duration::from_secs(90);
const MAX_HEADERS: usize = 64;

#[derive(Debug, thiserror::Error)]
pub enum Http1Error {
    #[error("cannot connect to {0}: {1}")]
    Connect(String, io::Error),
    #[error("connecting to {0} took over {1:?}")]
    ConnectTimeout(String, Duration),
    #[error("model endpoint I/O: {0}")]
    Io(#[from] io::Error),
    #[error("the model endpoint closed the connection before answering")]
    Closed,
    #[error("the model endpoint had closed the connection before the request was sent: {0}")]
    NotSent(io::Error),
    #[error("malformed HTTP response: {0}")]
    Malformed(String),
    #[error("HTTP response over {0} bytes")]
    TooLarge(usize),
    #[error("not sendable over plain HTTP/1.1: {0}")]
    Unsupported(&'static str),
}

/// Keep-alive connections per `host:port`, newest last.
pub struct Http1 {
    idle: Mutex<HashMap<String, VecDeque<(TcpStream, Instant)>>>,
    max_idle: usize,
    connect_timeout: Duration,
}

impl Http1 {
    pub fn new(max_idle: usize, connect_timeout: Duration) -> Self {
        Self {
            idle: Mutex::default(),
            max_idle,
            connect_timeout,
        }
    }

    /// Idle connections kept for `host:port` right now.
    #[cfg(test)]
    pub fn idle(&self, authority: &str) -> usize {
        self.lock().get(authority).map_or(0, VecDeque::len)
    }

    /// Sends `request` and reads the whole answer. A kept-alive connection the server has closed
    /// is found before it is used (see [`Http1::checkout`]); one found closed while the request
    /// is written (the server closed it in between) is replaced by a new connection, since the
    /// server never took the request. A request that was written and then got no answer is an
    /// error and is not sent again here: the caller's retry policy decides, and logs each try,
    /// so a prompt never reaches a model twice behind the prompt log's back.
    ///
    /// The request is taken, and dropped once it is on the wire: nothing of it is held while the
    /// model thinks (the caller lets go of its own copy first, see `StatusService`).
    pub async fn send(
        &self,
        request: reqwest::Request,
    ) -> Result<http::Response<Vec<u8>>, Http1Error> {
        let url = request.url();
        if url.scheme() != "http" {
            return Err(Http1Error::Unsupported("not an http:// URL"));
        }
        let host = url
            .host_str()
            .ok_or(Http1Error::Unsupported("a URL without a host"))?
            .to_owned();
        let port = url.port_or_known_default().unwrap_or(80);
        let authority = format!("{host}:{port}");
        let mut wire = encode(&request, &host, url.port())?;
        drop(request);
        let mut fresh_only = false;
        loop {
            let pooled = if fresh_only {
                None
            } else {
                self.checkout(&authority)
            };
            let (mut stream, reused) = match pooled {
                Some(stream) => (stream, true),
                None => (self.connect(&host, port, &authority).await?, false),
            };
            match exchange(&mut stream, wire).await? {
                Exchange::Answered(response, keep_alive) => {
                    if keep_alive {
                        self.checkin(authority, stream);
                    }
                    return Ok(response);
                }
                // The server never took it: the same bytes go on a new connection.
                Exchange::NotSent(unsent, _) if reused => {
                    wire = unsent;
                    fresh_only = true;
                }
                Exchange::NotSent(_, e) => return Err(Http1Error::NotSent(e)),
            }
        }
    }

    async fn connect(
        &self,
        host: &str,
        port: u16,
        authority: &str,
    ) -> Result<TcpStream, Http1Error> {
        // `[::1]` in a URL is `::1` to the resolver.
        let host = host.trim_start_matches('[').trim_end_matches(']');
        let stream = tokio::time::timeout(self.connect_timeout, TcpStream::connect((host, port)))
            .await
            .map_err(|_| Http1Error::ConnectTimeout(authority.to_owned(), self.connect_timeout))?
            .map_err(|e| Http1Error::Connect(authority.to_owned(), e))?;
        // Requests go out in one write; waiting for an ACK before it would only add latency.
        stream.set_nodelay(true)?;
        Ok(stream)
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, VecDeque<(TcpStream, Instant)>>> {
        self.idle
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// The newest idle connection that is still open: one the server has closed (or that has
    /// bytes nobody asked for) is dropped here, not found out by a failed request.
    fn checkout(&self, authority: &str) -> Option<TcpStream> {
        let mut idle = self.lock();
        let list = idle.get_mut(authority)?;
        while let Some((stream, since)) = list.pop_back() {
            if since.elapsed() >= IDLE_TIMEOUT {
                // Everything older is further in front.
                list.clear();
                break;
            }
            let mut probe = [0u8; 1];
            match stream.try_read(&mut probe) {
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Some(stream),
                _ => continue,
            }
        }
        None
    }

    fn checkin(&self, authority: String, stream: TcpStream) {
        let mut idle = self.lock();
        let list = idle.entry(authority).or_default();
        while list
            .front()
            .is_some_and(|(_, since)| since.elapsed() >= IDLE_TIMEOUT)
        {
            list.pop_front();
        }
        if list.len() < self.max_idle {
            list.push_back((stream, Instant::now()));
        }
    }
}

/// A reset, broken pipe or end of stream: the server closed the connection.
fn is_closed(e: &io::Error) -> bool {
    matches!(
        e.kind(),
        io::ErrorKind::ConnectionReset
            | io::ErrorKind::BrokenPipe
            | io::ErrorKind::ConnectionAborted
            | io::ErrorKind::UnexpectedEof
    )
}

/// The request as it goes on the wire: head and body in one buffer, sent with one write.
fn encode(
    request: &reqwest::Request,
    host: &str,
    explicit_port: Option<u16>,
) -> Result<Vec<u8>, Http1Error> {
    let body: &[u8] = match request.body() {
        None => &[],
        Some(b) => b
            .as_bytes()
            .ok_or(Http1Error::Unsupported("a streaming request body"))?,
    };
    let url = request.url();
    let mut wire = Vec::with_capacity(256 + body.len());
    wire.extend_from_slice(request.method().as_str().as_bytes());
    wire.push(b' ');
    wire.extend_from_slice(url.path().as_bytes());
    if let Some(q) = url.query() {
        wire.push(b'?');
        wire.extend_from_slice(q.as_bytes());
    }
    wire.extend_from_slice(b" HTTP/1.1\r\nhost: ");
    wire.extend_from_slice(host.as_bytes());
    if let Some(p) = explicit_port {
        wire.extend_from_slice(format!(":{p}").as_bytes());
    }
    wire.extend_from_slice(b"\r\n");
    for (name, value) in request.headers() {
        // Framing and the connection are this transport's to say.
        if [
            http::header::HOST,
            http::header::CONTENT_LENGTH,
            http::header::TRANSFER_ENCODING,
            http::header::CONNECTION,
        ]
        .contains(name)
        {
            continue;
        }
        wire.extend_from_slice(name.as_str().as_bytes());
        wire.extend_from_slice(b": ");
        wire.extend_from_slice(value.as_bytes());
        wire.extend_from_slice(b"\r\n");
    }
    wire.extend_from_slice(format!("content-length: {}\r\n\r\n", body.len()).as_bytes());
    wire.extend_from_slice(body);
    Ok(wire)
}

/// How the body of an answer ends.
enum Framing {
    Length(usize),
    Chunked,
    /// Neither: the body runs to the end of the connection.
    Close,
}

/// One request and its answer on `stream`; the bool says whether the connection may be reused.
/// How one try went: an answer (and whether the connection may be kept), or a connection the
/// server had closed before it took the request, which is handed back.
enum Exchange {
    Answered(http::Response<Vec<u8>>, bool),
    NotSent(Vec<u8>, io::Error),
}

async fn exchange(stream: &mut TcpStream, wire: Vec<u8>) -> Result<Exchange, Http1Error> {
    if let Err(e) = stream.write_all(&wire).await {
        return if is_closed(&e) {
            Ok(Exchange::NotSent(wire, e))
        } else {
            Err(Http1Error::Io(e))
        };
    }
    drop(wire);
    // The model's thinking time: no buffer is held while waiting.
    stream.readable().await?;
    let mut buf: Vec<u8> = Vec::with_capacity(4096);
    let mut interim = 0;
    // Whether any byte of an answer came, interim answers included: after one the server has
    // taken the request.
    let mut answered = false;
    loop {
        let Some(head) = parse_head(&buf)? else {
            if buf.len() > MAX_HEAD {
                return Err(Http1Error::TooLarge(MAX_HEAD));
            }
            let n = read_more(stream, &mut buf).await.map_err(|e| match e {
                Http1Error::Io(e) if !answered && is_closed(&e) => Http1Error::Closed,
                e => e,
            })?;
            if n == 0 {
                return Err(if !answered {
                    Http1Error::Closed
                } else {
                    Http1Error::Malformed("the connection closed before the whole answer".into())
                });
            }
            answered = true;
            continue;
        };
        buf.drain(..head.len);
        // No upgrade is ever asked for.
        if head.status == 101 {
            return Err(Http1Error::Malformed("101 Switching Protocols".into()));
        }
        // An interim answer (100 Continue, 103 Early Hints) precedes the real one; a few at most.
        if (100..200).contains(&head.status) {
            interim += 1;
            if interim > 8 {
                return Err(Http1Error::Malformed("more than 8 interim answers".into()));
            }
            continue;
        }
        let (body, keep_alive) = match head.framing {
            _ if head.status == 204 || head.status == 304 => {
                (Vec::new(), head.keep_alive && buf.is_empty())
            }
            Framing::Length(n) => {
                if n > MAX_BODY {
                    return Err(Http1Error::TooLarge(MAX_BODY));
                }
                while buf.len() < n {
                    if read_more(stream, &mut buf).await? == 0 {
                        return Err(Http1Error::Malformed(
                            "the connection closed inside the response body".into(),
                        ));
                    }
                }
                // Bytes past the body were never asked for: do not reuse such a connection.
                let clean = buf.len() == n;
                buf.truncate(n);
                (buf, head.keep_alive && clean)
            }
            Framing::Chunked => {
                let (body, clean) = read_chunked(stream, buf).await?;
                (body, head.keep_alive && clean)
            }
            Framing::Close => {
                while read_more(stream, &mut buf).await? > 0 {}
                (buf, false)
            }
        };
        let mut response = http::Response::new(body);
        *response.status_mut() = http::StatusCode::from_u16(head.status)
            .map_err(|_| Http1Error::Malformed(format!("status {}", head.status)))?;
        *response.headers_mut() = head.headers;
        return Ok(Exchange::Answered(response, keep_alive));
    }
}

/// Reads what the socket has into `buf`'s spare room (grown as needed); 0 at the end.
async fn read_more(stream: &mut TcpStream, buf: &mut Vec<u8>) -> Result<usize, Http1Error> {
    if buf.len() >= MAX_BODY + MAX_HEAD {
        return Err(Http1Error::TooLarge(MAX_BODY));
    }
    if buf.capacity() - buf.len() < 1024 {
        buf.reserve(buf.capacity().max(4096));
    }
    Ok(stream.read_buf(buf).await?)
}

struct Head {
    len: usize,
    status: u16,
    headers: http::HeaderMap,
    framing: Framing,
    keep_alive: bool,
}

/// The response head at the start of `buf`, once it is all there.
fn parse_head(buf: &[u8]) -> Result<Option<Head>, Http1Error> {
    let mut slots = [httparse::EMPTY_HEADER; MAX_HEADERS];
    let mut parsed = httparse::Response::new(&mut slots);
    let len = match parsed.parse(buf) {
        Ok(httparse::Status::Complete(len)) => len,
        Ok(httparse::Status::Partial) => return Ok(None),
        Err(e) => return Err(Http1Error::Malformed(e.to_string())),
    };
    let status = parsed.code.unwrap_or(0);
    let version = parsed.version.unwrap_or(0);
    let mut headers = http::HeaderMap::with_capacity(parsed.headers.len());
    let mut length: Option<usize> = None;
    let mut chunked = false;
    let mut close = version == 0;
    for h in parsed.headers.iter() {
        let name = HeaderName::from_bytes(h.name.as_bytes())
            .map_err(|_| Http1Error::Malformed(format!("header name {:?}", h.name)))?;
        let value = HeaderValue::from_bytes(h.value)
            .map_err(|_| Http1Error::Malformed(format!("header {name}")))?;
        if name == http::header::CONTENT_LENGTH {
            let digits = h.value.trim_ascii();
            let n = (!digits.is_empty() && digits.iter().all(u8::is_ascii_digit))
                .then(|| std::str::from_utf8(digits).ok()?.parse::<usize>().ok())
                .flatten()
                .ok_or_else(|| Http1Error::Malformed("content-length".into()))?;
            if length.is_some_and(|l| l != n) {
                return Err(Http1Error::Malformed(
                    "two different content-lengths".into(),
                ));
            }
            length = Some(n);
        } else if name == http::header::TRANSFER_ENCODING {
            // Only `chunked`, once: any other coding would hand on bytes that are not the JSON
            // they claim to be.
            let only_chunked = value.to_str().is_ok_and(|v| {
                v.split(',')
                    .all(|c| c.trim().eq_ignore_ascii_case("chunked"))
                    && v.split(',').count() == 1
            });
            if !only_chunked || chunked {
                return Err(Http1Error::Malformed(
                    "a transfer-encoding other than chunked, once".into(),
                ));
            }
            chunked = true;
            // The body is handed on decoded.
            continue;
        } else if name == http::header::CONNECTION {
            let v = value.to_str().unwrap_or("");
            for token in v.split(',').map(str::trim) {
                if token.eq_ignore_ascii_case("close") {
                    close = true;
                } else if token.eq_ignore_ascii_case("keep-alive") && version == 0 {
                    close = false;
                }
            }
        }
        headers.append(name, value);
    }
    // A transfer coding beside a length (how requests are smuggled, RFC 9112 6.3) or in HTTP/1.0
    // (6.1): the chunked framing is read, and the connection is not trusted with another request.
    if chunked && (length.is_some() || version == 0) {
        close = true;
        headers.remove(http::header::CONTENT_LENGTH);
    }
    let framing = if chunked {
        Framing::Chunked
    } else if let Some(n) = length {
        Framing::Length(n)
    } else {
        Framing::Close
    };
    Ok(Some(Head {
        len,
        status,
        headers,
        framing,
        keep_alive: !close,
    }))
}

/// Decodes a chunked body whose first bytes are in `raw`; the bool says whether the answer ended
/// exactly where the connection's bytes did.
async fn read_chunked(
    stream: &mut TcpStream,
    mut raw: Vec<u8>,
) -> Result<(Vec<u8>, bool), Http1Error> {
    let mut body = Vec::new();
    let mut pos = 0;
    loop {
        match httparse::parse_chunk_size(&raw[pos..]) {
            Ok(httparse::Status::Complete((line, size))) => {
                let size = usize::try_from(size).map_err(|_| Http1Error::TooLarge(MAX_BODY))?;
                if size == 0 {
                    // Trailers (rare, and dropped) end with an empty line.
                    let start = pos + line;
                    loop {
                        if let Some(end) = find_trailer_end(&raw[start..]) {
                            return Ok((body, start + end == raw.len()));
                        }
                        if read_more(stream, &mut raw).await? == 0 {
                            return Err(Http1Error::Malformed(
                                "the connection closed inside the chunked trailer".into(),
                            ));
                        }
                    }
                }
                // `size` comes from up to 16 hex digits: compare before adding anything to it.
                if size > MAX_BODY - body.len() {
                    return Err(Http1Error::TooLarge(MAX_BODY));
                }
                let start = pos + line;
                while raw.len() < start + size + 2 {
                    if read_more(stream, &mut raw).await? == 0 {
                        return Err(Http1Error::Malformed(
                            "the connection closed inside a chunk".into(),
                        ));
                    }
                }
                if &raw[start + size..start + size + 2] != b"\r\n" {
                    return Err(Http1Error::Malformed("a chunk without its CRLF".into()));
                }
                body.extend_from_slice(&raw[start..start + size]);
                pos = start + size + 2;
            }
            Ok(httparse::Status::Partial) => {
                if read_more(stream, &mut raw).await? == 0 {
                    return Err(Http1Error::Malformed(
                        "the connection closed inside a chunk size".into(),
                    ));
                }
            }
            Err(_) => return Err(Http1Error::Malformed("a chunk size".into())),
        }
    }
}

/// Where the trailer section at the start of `rest` ends: an empty line right away, or the first
/// empty line after trailer fields.
fn find_trailer_end(rest: &[u8]) -> Option<usize> {
    if rest.starts_with(b"\r\n") {
        return Some(2);
    }
    rest.windows(4)
        .position(|w| w == b"\r\n\r\n")
        .map(|i| i + 4)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;
    use std::sync::atomic::{AtomicUsize, Ordering};
    use tokio::net::TcpListener;

    /// A server that answers each request on a connection with the next of `answers` (raw
    /// bytes; empty: close without answering; ending in `<close>`: close after the rest;
    /// starting with `<slow>`: the rest a byte at a time), and
    /// counts the connections it accepted and the request heads it read.
    async fn server(
        answers: Vec<&'static [u8]>,
    ) -> (String, Arc<AtomicUsize>, Arc<Mutex<Vec<String>>>) {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let accepted = Arc::new(AtomicUsize::new(0));
        let seen = Arc::new(Mutex::new(Vec::new()));
        let answers = Arc::new(answers);
        let next = Arc::new(AtomicUsize::new(0));
        {
            let (accepted, seen) = (Arc::clone(&accepted), Arc::clone(&seen));
            tokio::spawn(async move {
                loop {
                    let (mut s, _) = listener.accept().await.unwrap();
                    accepted.fetch_add(1, Ordering::SeqCst);
                    let (answers, next, seen) =
                        (Arc::clone(&answers), Arc::clone(&next), Arc::clone(&seen));
                    tokio::spawn(async move {
                        loop {
                            let mut req = Vec::new();
                            let mut chunk = [0u8; 4096];
                            // Head, then as many body bytes as content-length says.
                            let (head_len, body_len) = loop {
                                let n = s.read(&mut chunk).await.unwrap_or(0);
                                if n == 0 {
                                    return;
                                }
                                req.extend_from_slice(&chunk[..n]);
                                if let Some(i) = req.windows(4).position(|w| w == b"\r\n\r\n") {
                                    let head = String::from_utf8_lossy(&req[..i]).to_lowercase();
                                    let len = head
                                        .lines()
                                        .find_map(|l| l.strip_prefix("content-length: "))
                                        .map_or(0, |v| v.trim().parse().unwrap());
                                    break (i + 4, len);
                                }
                            };
                            while req.len() < head_len + body_len {
                                let n = s.read(&mut chunk).await.unwrap();
                                req.extend_from_slice(&chunk[..n]);
                            }
                            seen.lock()
                                .unwrap()
                                .push(String::from_utf8_lossy(&req).into_owned());
                            let i = next.fetch_add(1, Ordering::SeqCst);
                            let Some(answer) = answers.get(i) else { return };
                            if answer.is_empty() {
                                // Closes without answering.
                                return;
                            }
                            if let Some(slow) = answer.strip_prefix(b"<slow>") {
                                // A byte at a time: every boundary falls inside something.
                                for b in slow {
                                    s.write_all(&[*b]).await.unwrap();
                                    tokio::time::sleep(Duration::from_millis(1)).await;
                                }
                                continue;
                            }
                            if let Some(last) = answer.strip_suffix(b"<close>") {
                                s.write_all(last).await.unwrap();
                                return;
                            }
                            s.write_all(answer).await.unwrap();
                        }
                    });
                }
            });
        }
        (format!("http://{addr}"), accepted, seen)
    }

    fn request(base: &str, body: &str) -> reqwest::Request {
        let client = reqwest::Client::new();
        client
            .post(format!("{base}/v1/chat/completions?x=1"))
            .header("authorization", "Bearer sk-test")
            .header("content-type", "application/json")
            .body(body.to_owned())
            .build()
            .unwrap()
    }

    fn http1() -> Http1 {
        Http1::new(8, Duration::from_secs(5))
    }

    const OK: &[u8] = b"HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: 11\r\n\r\n{\"ok\":true}";

    #[tokio::test]
    async fn sends_the_request_and_reuses_the_connection() {
        let (base, accepted, seen) = server(vec![OK, OK]).await;
        let h = http1();
        for _ in 0..2 {
            let r = h.send(request(&base, "{\"a\":1}")).await.unwrap();
            assert_eq!(r.status(), 200);
            assert_eq!(r.headers()["content-type"], "application/json");
            assert_eq!(r.body(), b"{\"ok\":true}");
        }
        assert_eq!(
            accepted.load(Ordering::SeqCst),
            1,
            "one connection, kept alive"
        );
        let first = seen.lock().unwrap()[0].clone();
        let port = base.rsplit(':').next().unwrap();
        assert!(
            first.starts_with(&format!(
                "POST /v1/chat/completions?x=1 HTTP/1.1\r\nhost: 127.0.0.1:{port}\r\n"
            )),
            "{first}"
        );
        assert!(
            first.contains("authorization: Bearer sk-test\r\n"),
            "{first}"
        );
        assert!(
            first.ends_with("content-length: 7\r\n\r\n{\"a\":1}"),
            "{first}"
        );
    }

    #[tokio::test]
    async fn decodes_a_chunked_answer_and_skips_an_interim_one() {
        let (base, _, _) = server(vec![
            b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 429 Too Many Requests\r\nretry-after: 3\r\ntransfer-encoding: chunked\r\n\r\n4\r\n{\"e\"\r\na;ext=1\r\n:\"slow\"}  \r\n0\r\nx-trailer: 1\r\n\r\n",
        ])
        .await;
        let h = http1();
        let r = h.send(request(&base, "{}")).await.unwrap();
        assert_eq!(r.status(), 429);
        assert_eq!(r.headers()["retry-after"], "3");
        assert!(r.headers().get("transfer-encoding").is_none());
        assert_eq!(r.body(), b"{\"e\":\"slow\"}  ");
        assert_eq!(h.idle(base.trim_start_matches("http://")), 1);
    }

    #[tokio::test]
    async fn a_connection_the_server_closed_is_not_reused() {
        // The first answer says close; the second request needs a new connection.
        let (base, accepted, _) = server(vec![
            b"HTTP/1.1 200 OK\r\nconnection: close\r\ncontent-length: 2\r\n\r\n{}<close>",
            OK,
        ])
        .await;
        let h = http1();
        let r = h.send(request(&base, "{}")).await.unwrap();
        assert_eq!(r.body(), b"{}");
        assert_eq!(h.idle(base.trim_start_matches("http://")), 0);
        let r = h.send(request(&base, "{}")).await.unwrap();
        assert_eq!(r.body(), b"{\"ok\":true}");
        assert_eq!(accepted.load(Ordering::SeqCst), 2);
    }

    #[tokio::test]
    async fn a_kept_connection_the_server_has_closed_is_not_used() {
        // Keep-alive promised, then the server closes the idle connection (its idle timeout):
        // the next request goes on a new connection, and is sent once.
        const OK_THEN_CLOSE: &[u8] =
            b"HTTP/1.1 200 OK\r\ncontent-length: 11\r\n\r\n{\"ok\":true}<close>";
        let (base, accepted, seen) = server(vec![OK_THEN_CLOSE, OK]).await;
        let h = http1();
        h.send(request(&base, "{}")).await.unwrap();
        assert_eq!(h.idle(base.trim_start_matches("http://")), 1);
        tokio::time::sleep(Duration::from_millis(100)).await;
        let r = h.send(request(&base, "{}")).await.unwrap();
        assert_eq!(r.body(), b"{\"ok\":true}");
        assert_eq!(accepted.load(Ordering::SeqCst), 2);
        assert_eq!(seen.lock().unwrap().len(), 2);
    }

    #[tokio::test]
    async fn a_request_dropped_unanswered_is_an_error_and_not_sent_again() {
        // The server reads the second request on the kept connection and closes unanswered: the
        // caller's retry policy decides (and logs), not the transport.
        let (base, accepted, seen) = server(vec![OK, b"", OK]).await;
        let h = http1();
        h.send(request(&base, "{}")).await.unwrap();
        let e = h.send(request(&base, "{}")).await.unwrap_err();
        assert!(matches!(e, Http1Error::Closed), "{e:?}");
        assert_eq!(accepted.load(Ordering::SeqCst), 1);
        assert_eq!(seen.lock().unwrap().len(), 2);
    }

    #[tokio::test]
    async fn chunked_wins_over_content_length_and_the_connection_is_not_kept() {
        let (base, _, _) = server(vec![
            b"HTTP/1.1 200 OK\r\ncontent-length: 3\r\ntransfer-encoding: chunked\r\n\r\n2\r\nok\r\n0\r\n\r\n",
        ])
        .await;
        let h = http1();
        let r = h.send(request(&base, "{}")).await.unwrap();
        assert_eq!(r.body(), b"ok");
        assert_eq!(h.idle(base.trim_start_matches("http://")), 0);
    }

    #[tokio::test]
    async fn a_new_connection_closed_unanswered_is_an_error() {
        let (base, accepted, _) = server(vec![b""]).await;
        let e = http1().send(request(&base, "{}")).await.unwrap_err();
        assert!(matches!(e, Http1Error::Closed), "{e:?}");
        assert_eq!(accepted.load(Ordering::SeqCst), 1);
    }

    #[tokio::test]
    async fn a_body_to_the_end_of_the_connection_is_read_whole() {
        let (base, _, _) = server(vec![
            b"HTTP/1.0 200 OK\r\ncontent-type: text/plain\r\n\r\nhello<close>",
        ])
        .await;
        let h = http1();
        let r = h.send(request(&base, "{}")).await.unwrap();
        assert_eq!(r.body(), b"hello");
        assert_eq!(h.idle(base.trim_start_matches("http://")), 0);
    }

    #[tokio::test]
    async fn malformed_and_truncated_answers_are_errors() {
        for answer in [
            &b"HTTP/1.1 200 OK\r\ncontent-length: 10\r\n\r\nshort<close>"[..],
            b"NOT HTTP\r\n\r\n",
            b"HTTP/1.1 200 OK\r\ntransfer-encoding: gzip\r\n\r\n",
            b"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\nzz\r\n",
            b"HTTP/1.1 200 OK\r\ncontent-length: 1\r\ncontent-length: 2\r\n\r\nab",
            b"HTTP/1.1 200 OK\r\ncontent-length: +2\r\n\r\nab",
            b"HTTP/1.1 200 OK\r\ntransfer-encoding: gzip, chunked\r\n\r\n0\r\n\r\n",
            b"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\ntransfer-encoding: chunked\r\n\r\n0\r\n\r\n",
            b"HTTP/1.1 101 Switching Protocols\r\nupgrade: x\r\n\r\n",
        ] {
            let (base, _, _) = server(vec![answer]).await;
            let e = http1().send(request(&base, "{}")).await.unwrap_err();
            assert!(matches!(e, Http1Error::Malformed(_)), "{e:?}");
        }
    }

    #[tokio::test]
    async fn a_huge_chunk_size_is_refused_without_overflow() {
        // 2 + (2^64 - 2) wraps to 0: the limit must be checked without adding.
        let (base, _, _) = server(vec![
            b"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n2\r\nab\r\nfffffffffffffffe\r\n<close>",
        ])
        .await;
        let e = http1().send(request(&base, "{}")).await.unwrap_err();
        assert!(matches!(e, Http1Error::TooLarge(_)), "{e:?}");
    }

    #[tokio::test]
    async fn a_close_after_an_interim_answer_is_an_error_and_not_sent_again() {
        let (base, accepted, seen) =
            server(vec![OK, b"HTTP/1.1 100 Continue\r\n\r\n<close>", OK]).await;
        let h = http1();
        h.send(request(&base, "{}")).await.unwrap();
        let e = h.send(request(&base, "{}")).await.unwrap_err();
        assert!(matches!(e, Http1Error::Malformed(_)), "{e:?}");
        assert_eq!(accepted.load(Ordering::SeqCst), 1);
        assert_eq!(seen.lock().unwrap().len(), 2);
    }

    #[tokio::test]
    async fn an_answer_arriving_a_byte_at_a_time_is_read_whole() {
        let (base, accepted, _) = server(vec![
            b"<slow>HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n3\r\nabc\r\n2;x=y\r\nde\r\n0\r\nx-t: 1\r\n\r\n",
            b"<slow>HTTP/1.1 200 OK\r\ncontent-length: 5\r\n\r\nfghij",
            b"HTTP/1.1 204 No Content\r\n\r\n",
            OK,
        ])
        .await;
        let h = http1();
        let r = h.send(request(&base, "{}")).await.unwrap();
        assert_eq!(r.body(), b"abcde");
        let r = h.send(request(&base, "{}")).await.unwrap();
        assert_eq!(r.body(), b"fghij");
        let r = h.send(request(&base, "{}")).await.unwrap();
        assert_eq!(r.status(), 204);
        assert!(r.body().is_empty());
        let r = h.send(request(&base, "{}")).await.unwrap();
        assert_eq!(r.body(), b"{\"ok\":true}");
        assert_eq!(
            accepted.load(Ordering::SeqCst),
            1,
            "all four on one connection"
        );
    }

    #[tokio::test]
    async fn the_idle_list_is_bounded() {
        let (base, _, _) = server(vec![OK; 6]).await;
        let h = Http1::new(2, Duration::from_secs(5));
        let sends = (0..6).map(|_| h.send(request(&base, "{}")));
        for r in futures::future::join_all(sends).await {
            assert_eq!(r.unwrap().status(), 200);
        }
        assert_eq!(h.idle(base.trim_start_matches("http://")), 2);
    }

    /// Thousands of calls wait on a model at once: none may keep its request's bytes meanwhile.
    #[tokio::test]
    async fn the_request_is_let_go_while_the_answer_is_awaited() {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let base = format!("http://{}", listener.local_addr().unwrap());
        let (answer, answer_now) = tokio::sync::oneshot::channel::<()>();
        tokio::spawn(async move {
            let (mut s, _) = listener.accept().await.unwrap();
            let mut got = Vec::new();
            let mut buf = [0u8; 1024];
            while !got.ends_with(b"{\"a\":1}") {
                let n = s.read(&mut buf).await.unwrap();
                assert!(n > 0, "the request never came whole");
                got.extend_from_slice(&buf[..n]);
            }
            answer_now.await.unwrap();
            s.write_all(OK).await.unwrap();
        });
        let body = axum::body::Bytes::from(b"{\"a\":1}".to_vec());
        let request = reqwest::Client::new()
            .post(format!("{base}/v1/chat/completions"))
            .body(body.clone())
            .build()
            .unwrap();
        let h = Arc::new(http1());
        let sending = tokio::spawn({
            let h = Arc::clone(&h);
            async move { h.send(request).await }
        });
        let deadline = Instant::now() + Duration::from_secs(5);
        while !body.is_unique() {
            assert!(
                Instant::now() < deadline,
                "the request's body is still held while the answer is awaited"
            );
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        assert!(!sending.is_finished(), "answered before it was let go");
        answer.send(()).unwrap();
        assert_eq!(sending.await.unwrap().unwrap().status(), 200);
    }
}
