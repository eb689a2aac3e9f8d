//! Raw hostile bytes over loopback sockets to the full demo stack: oversized and non-UTF-8
//! heads, CR/LF/ESC/NUL in every field, smuggling shapes, spoofed forwarding headers from an
//! untrusted peer, odd origins, aborted bodies. No 5xx, no panic, one log line per request
//! that reached the stack, no forged client address, and the server answers afterwards.
#![cfg(all(
    feature = "timer",
    feature = "cors",
    feature = "request-log",
    feature = "rate-limit",
    feature = "stats",
    feature = "axum"
))]

#[path = "../examples/shared/app.rs"]
mod app;
mod common;

use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tower_plugins::PluginStack;
use tower_plugins::core::ClientIpResolver;

use common::{LIMIT, spawn_axum};

/// How a hostile request ends on the client's side.
#[derive(Clone, Copy, PartialEq)]
enum Send {
    /// Everything is sent, then the write side is shut.
    Whole,
    /// The request is cut off (a body shorter than its length): the client shuts its side.
    Aborted,
}

fn requests() -> Vec<(&'static str, Vec<u8>, Send)> {
    let mut out: Vec<(&'static str, Vec<u8>, Send)> = Vec::new();
    let mut add = |what: &'static str, head: &[u8]| out.push((what, head.to_vec(), Send::Whole));
    add(
        "plain",
        b"GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
    );
    add(
        "non-UTF-8 user agent",
        b"GET / HTTP/1.1\r\nHost: x\r\nUser-Agent: \xff\xfe\x80\xc3(\r\nConnection: close\r\n\r\n",
    );
    add(
        "ESC in referer",
        b"GET / HTTP/1.1\r\nHost: x\r\nReferer: \x1b[31mred\r\nConnection: close\r\n\r\n",
    );
    add(
        "NUL in a header",
        b"GET / HTTP/1.1\r\nHost: x\r\nX-A: a\x00b\r\nConnection: close\r\n\r\n",
    );
    add(
        "CR in the target",
        b"GET /a\rb HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
    );
    add(
        "bare LF lines",
        b"GET / HTTP/1.1\nHost: x\nConnection: close\n\n",
    );
    add(
        "non-UTF-8 target",
        b"GET /\xff\xfe?q=\x80 HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
    );
    add("log injection", b"GET /?a=%22%0a1.2.3.4 HTTP/1.1\r\nHost: x\r\nUser-Agent: x\" 200 0 \"-\" \"evil\r\nConnection: close\r\n\r\n");
    add(
        "header name with a space",
        b"GET / HTTP/1.1\r\nHost: x\r\nBad Name: v\r\nConnection: close\r\n\r\n",
    );
    add(
        "obs-fold",
        b"GET / HTTP/1.1\r\nHost: x\r\nX-A: a\r\n b\r\nConnection: close\r\n\r\n",
    );
    add("CL and TE", b"POST /api/items HTTP/1.1\r\nHost: x\r\nContent-Length: 4\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n0\r\n\r\n");
    add("two lengths", b"POST /api/items HTTP/1.1\r\nHost: x\r\nContent-Length: 4\r\nContent-Length: 5\r\nConnection: close\r\n\r\nabcde");
    add("xchunked", b"POST /api/items HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: xchunked\r\nConnection: close\r\n\r\n");
    add("bad chunk", b"POST /api/items HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\nzz\r\nab\r\n0\r\n\r\n");
    add(
        "negative length",
        b"POST /api/items HTTP/1.1\r\nHost: x\r\nContent-Length: -1\r\nConnection: close\r\n\r\n",
    );
    add("huge length", b"POST /api/items HTTP/1.1\r\nHost: x\r\nContent-Length: 99999999999999999999\r\nConnection: close\r\n\r\n");
    add("spoofed XFF", b"GET /api/items HTTP/1.1\r\nHost: x\r\nX-Forwarded-For: 1.2.3.4\r\nConnection: close\r\n\r\n");
    add("garbage XFF", b"GET /api/items HTTP/1.1\r\nHost: x\r\nX-Forwarded-For: ,,, ;;\"[::1]\", unknown\r\nConnection: close\r\n\r\n");
    add("spoofed Forwarded", b"GET /admin/stats HTTP/1.1\r\nHost: x\r\nForwarded: for=\"[2001:db8::1]:80\";by=_x, for=127.0.0.1\r\nConnection: close\r\n\r\n");
    add(
        "null origin",
        b"GET /api/items HTTP/1.1\r\nHost: x\r\nOrigin: null\r\nConnection: close\r\n\r\n",
    );
    add("port past 65535", b"GET /api/items HTTP/1.1\r\nHost: x\r\nOrigin: http://localhost:99999\r\nConnection: close\r\n\r\n");
    add("non-ASCII origin", b"GET /api/items HTTP/1.1\r\nHost: x\r\nOrigin: http://\xc3\xa9.localhost:80\r\nConnection: close\r\n\r\n");
    add("odd preflight", b"OPTIONS /api/items HTTP/1.1\r\nHost: x\r\nOrigin: http://localhost:3000\r\nAccess-Control-Request-Method: GE T\r\nAccess-Control-Request-Headers: ,,a b,\xff\r\nConnection: close\r\n\r\n");
    add("absolute-form", b"GET http://example.com/api/items?token=s3cr3t HTTP/1.1\r\nHost: example.com\r\nConnection: close\r\n\r\n");
    add(
        "CONNECT",
        b"CONNECT example.com:443 HTTP/1.1\r\nHost: example.com:443\r\nConnection: close\r\n\r\n",
    );
    add(
        "asterisk",
        b"OPTIONS * HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
    );
    add(
        "encoded secret",
        b"GET /?tok%65n=s3cr3t&to%6ben=s3cr3t HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
    );
    add(
        "dot segments",
        b"GET /%2e%2e/admin/stats/../stats HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
    );
    add("HTTP/1.0 without host", b"GET / HTTP/1.0\r\n\r\n");
    add(
        "lowercase method",
        b"get / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
    );
    add("long method", b"AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n");
    add(
        "version 9.9",
        b"GET / HTTP/9.9\r\nHost: x\r\nConnection: close\r\n\r\n",
    );
    add("forged session cookie", b"GET /account HTTP/1.1\r\nHost: x\r\nCookie: __Host-id=1.AAAAAAAAAAAAAAAAAAAAAA.AAAAAAAAAAAAAAAAAAAAAA\r\nConnection: close\r\n\r\n");
    add("non-UTF-8 cookie", b"GET /api/me HTTP/1.1\r\nHost: x\r\nCookie: __Host-id=\xff\xfe; a=\x80\r\nConnection: close\r\n\r\n");
    add("login with a huge body", b"POST /auth/login HTTP/1.1\r\nHost: x\r\nContent-Type: application/x-www-form-urlencoded\r\nContent-Length: 9999999\r\nConnection: close\r\n\r\nusername=demo");
    add("login from another site", b"POST /auth/login HTTP/1.1\r\nHost: x\r\nOrigin: https://evil.example\r\nContent-Type: application/x-www-form-urlencoded\r\nContent-Length: 36\r\nConnection: close\r\n\r\nusername=demo&password=demo-password");
    add(
        "GET logout",
        b"GET /auth/logout HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
    );
    add("pipelined", b"GET / HTTP/1.1\r\nHost: x\r\n\r\nGET /api/items HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n");
    add(
        "garbage",
        b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03 not http at all\r\n\r\n",
    );
    let long_ua = [
        b"GET / HTTP/1.1\r\nHost: x\r\nUser-Agent: ".as_slice(),
        &[b'u'; 60_000],
        b"\r\nConnection: close\r\n\r\n",
    ]
    .concat();
    out.push(("a 60 kB user agent", long_ua, Send::Whole));
    let huge = [
        b"GET / HTTP/1.1\r\nHost: x\r\nX-Big: ".as_slice(),
        &[b'b'; 600_000],
        b"\r\n\r\n",
    ]
    .concat();
    out.push(("a 600 kB header", huge, Send::Whole));
    let cookies: String = (0..1000).map(|i| format!("c{i}=v; ")).collect();
    let cookies = format!(
        "GET /account HTTP/1.1\r\nHost: x\r\nCookie: {cookies}__Host-id=x\r\nConnection: close\r\n\r\n"
    );
    out.push(("1,000 cookies", cookies.into_bytes(), Send::Whole));
    let many: Vec<u8> = (0..300)
        .flat_map(|i| format!("X-H{i}: v\r\n").into_bytes())
        .collect();
    let many = [
        b"GET / HTTP/1.1\r\nHost: x\r\n".as_slice(),
        &many,
        b"Connection: close\r\n\r\n",
    ]
    .concat();
    out.push(("300 headers", many, Send::Whole));
    let hops: String = (0..2000)
        .map(|i| format!("10.0.{}.{}, ", i / 256, i % 256))
        .collect();
    let long_xff = format!(
        "GET /api/items HTTP/1.1\r\nHost: x\r\nX-Forwarded-For: {hops}9.9.9.9\r\nConnection: close\r\n\r\n"
    );
    out.push(("2,000 forwarding hops", long_xff.into_bytes(), Send::Whole));
    out.push(("aborted body", b"POST /api/items HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 1000\r\n\r\n{\"name\":".to_vec(), Send::Aborted));
    out.push((
        "aborted head",
        b"GET / HTTP/1.1\r\nHost: x\r\nUser-Ag".to_vec(),
        Send::Aborted,
    ));
    out
}

/// Sends `bytes` on a new connection and reads whatever comes back until the server closes.
async fn exchange(addr: SocketAddr, bytes: &[u8], how: Send) -> Vec<u8> {
    let mut tcp = TcpStream::connect(addr).await.unwrap();
    // The server may answer (431, 400) and close before it has read everything.
    let _ = tcp.write_all(bytes).await;
    // Only a cut-off request shuts its side: hyper closes a half-closed connection as soon
    // as it sees it, which would race the answer to a whole one. Whole requests say
    // `Connection: close` (or are answered with a close) instead.
    if how == Send::Aborted {
        let _ = tcp.shutdown().await;
    }
    let mut out = Vec::new();
    let wait = if how == Send::Aborted {
        Duration::from_secs(2)
    } else {
        LIMIT
    };
    let _ = tokio::time::timeout(wait, tcp.read_to_end(&mut out)).await;
    out
}

/// The status codes of every response in `raw`, and how many carried an `x-request-id`.
fn answers(raw: &[u8]) -> (Vec<u16>, usize) {
    let text = String::from_utf8_lossy(raw);
    let statuses = (text.match_indices("HTTP/1.").map(|(i, _)| &text[i..]))
        .filter_map(|s| s.get(9..12)?.parse().ok())
        .collect();
    let ids = text
        .to_ascii_lowercase()
        .matches("\r\nx-request-id: ")
        .count();
    (statuses, ids)
}

static PANICS: AtomicUsize = AtomicUsize::new(0);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hostile_requests_get_proper_answers_and_one_log_line_each() {
    let hook = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        PANICS.fetch_add(1, Ordering::SeqCst);
        hook(info);
    }));
    let dir = std::env::temp_dir().join(format!("tower-plugins-hostile-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let log = dir.join("access.log");
    let mut sink = toml::Table::new();
    sink.insert("file".into(), log.display().to_string().into());
    // The demo stack, but trusting no proxy (so loopback is an untrusted peer whose
    // forwarding headers are ignored), and writing JSON lines to a file of the test's own.
    let stack = PluginStack::builder()
        .file(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/examples/plugins.toml"
        ))
        .set("request_log", "format", "json")
        .set("request_log", "sink", sink)
        .client_ip(ClientIpResolver::new())
        .build()
        .unwrap();
    let server = spawn_axum(app::router().layer(stack.layer())).await;

    let mut reached = 0;
    for (what, bytes, how) in requests() {
        let raw = exchange(server.addr, &bytes, how).await;
        let (statuses, ids) = answers(&raw);
        for s in &statuses {
            assert!(*s < 500, "{what}: answered {s}");
        }
        if how == Send::Whole && !what.starts_with("garbage") {
            assert!(!statuses.is_empty(), "{what}: no answer at all");
        }
        reached += ids;
    }
    // Afterwards, a plain request is answered normally.
    let (statuses, ids) = answers(
        &exchange(
            server.addr,
            b"GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
            Send::Whole,
        )
        .await,
    );
    assert_eq!(statuses, [200]);
    reached += ids;

    let until = Instant::now() + LIMIT;
    let lines = loop {
        let text = std::fs::read_to_string(&log).unwrap_or_default();
        let lines: Vec<String> = text.lines().map(str::to_owned).collect();
        if lines.len() >= reached || Instant::now() > until {
            break lines;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    drop(server);
    std::fs::remove_dir_all(&dir).unwrap();
    assert_eq!(
        lines.len(),
        reached,
        "one line per request that reached the stack"
    );
    for line in &lines {
        let v: serde_json::Value = serde_json::from_str(line).expect("each line is JSON");
        assert_eq!(
            v["client_ip"], "127.0.0.1",
            "a forged client address: {line}"
        );
        assert!(!line.contains("s3cr3t"), "a secret in the log: {line}");
    }
    assert_eq!(PANICS.load(Ordering::SeqCst), 0, "a panic while serving");
}
