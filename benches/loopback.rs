//! A loopback load benchmark, as a user choosing between us and the peers would run it: the
//! same axum app served by hyper four times, bare, behind our stack from TOML (as the demo
//! configures it, and writing only the headers the peers write), and behind the peer crates
//! doing the same work, each server in a process of its own (so that its CPU time
//! is its own), driven by `wrk` (Debian's `wrk`) with 32 keep-alive connections, and with 16
//! requests pipelined per connection, in interleaved rounds.
//!
//! ```not_rust
//! cargo bench --bench loopback --features full                # 5 rounds of 5 s per case
//! cargo bench --bench loopback --features full -- --smoke     # one short round (CI)
//! ```
//!
//! The two stacks, ours from TOML and the peer crates doing the same work, are those of
//! `benches/compared.rs`.
//!
//! Reported per case: requests per second, latency p50 and p99 (wrk's), and the server's CPU
//! time per request (user + system, from `/proc`), each as a median over the rounds, with the
//! ratios to bare and ours to the peers.

use std::net::SocketAddr;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

#[path = "../examples/shared/app.rs"]
mod app;
#[path = "compared.rs"]
mod compared;

use compared::ORIGIN;

/// The cases, bare first; `ours_same_work` writes only the headers the peers write (no
/// request ids, no `RateLimit`), the like-for-like comparison.
const CASES: [&str; 4] = ["bare", "ours", "ours_same_work", "peers"];

fn main() {
    let args: Vec<String> = std::env::args()
        .skip(1)
        .filter(|a| a != "--bench")
        .collect();
    if let Some(i) = args.iter().position(|a| a == "--serve") {
        return serve(&args[i + 1], &args[i + 2]);
    }
    let filter: Vec<&String> = args.iter().filter(|a| !a.starts_with("--")).collect();
    if !filter.is_empty() && !filter.iter().any(|f| "loopback".contains(f.as_str())) {
        return;
    }
    let smoke = args.iter().any(|a| a == "--smoke");
    if Command::new("wrk").arg("--version").output().is_err() {
        if std::env::var("CI").is_ok() {
            panic!("wrk is required (apt-get install wrk)");
        }
        println!("loopback: SKIPPED, no wrk (apt-get install wrk)");
        return;
    }
    let (rounds, secs) = if smoke { (1, 1) } else { (5, 5) };
    run(rounds, secs);
}

/// A server of `kind` on `addr`, until killed: one worker thread, as each case gets the same.
fn serve(kind: &str, addr: &str) {
    let addr: SocketAddr = addr.parse().unwrap();
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async move {
        let app = match kind {
            "bare" => app::router(),
            "ours" => app::router().layer(compared::ours("loopback").layer()),
            "ours_same_work" => app::router().layer(compared::ours_same_work("loopback").layer()),
            "peers" => compared::peers(app::router()),
            other => panic!("unknown case {other}"),
        };
        // No Nagle: pipelined answers would otherwise wait on the client's delayed ACKs.
        let listener = tokio::net::TcpListener::bind(addr).await.unwrap();
        let listener = axum::serve::ListenerExt::tap_io(listener, |tcp| {
            let _ = tcp.set_nodelay(true);
        });
        axum::serve(
            listener,
            app.into_make_service_with_connect_info::<SocketAddr>(),
        )
        .await
        .unwrap();
    });
}

/// What one wrk run measured.
#[derive(Clone, Copy, Default)]
struct Sample {
    rps: f64,
    p50_us: f64,
    p99_us: f64,
    cpu_us_per_req: f64,
}

fn run(rounds: usize, secs: u64) {
    let exe = std::env::current_exe().unwrap();
    let mut servers: Vec<(String, SocketAddr, Child)> = CASES
        .iter()
        .map(|kind| {
            let port = std::net::TcpListener::bind("127.0.0.1:0")
                .unwrap()
                .local_addr()
                .unwrap()
                .port();
            let addr = SocketAddr::from(([127, 0, 0, 1], port));
            let child = Command::new(&exe)
                .args(["--serve", kind, &addr.to_string()])
                .stdout(Stdio::null())
                .spawn()
                .unwrap();
            ((*kind).to_owned(), addr, child)
        })
        .collect();
    for (_, addr, _) in &servers {
        wait_for(*addr);
    }
    let pipeline =
        std::env::temp_dir().join(format!("loopback-pipeline-{}.lua", std::process::id()));
    std::fs::write(&pipeline, PIPELINE).unwrap();
    let mut results: Vec<Vec<(Sample, Sample)>> = vec![Vec::new(); CASES.len()];
    for _ in 0..rounds {
        for (i, (_, addr, child)) in servers.iter().enumerate() {
            let keep_alive = measure(*addr, child.id(), secs, None);
            let pipelined = measure(*addr, child.id(), secs, Some(&pipeline));
            results[i].push((keep_alive, pipelined));
        }
    }
    for (_, _, child) in &mut servers {
        let _ = child.kill();
        let _ = child.wait();
    }
    let _ = std::fs::remove_file(&pipeline);
    report(&results, rounds, secs);
}

/// One wrk run against `addr`, with the server `pid`'s CPU time over it.
fn measure(addr: SocketAddr, pid: u32, secs: u64, pipeline: Option<&std::path::Path>) -> Sample {
    let cpu_before = cpu_ticks(pid);
    let mut cmd = Command::new("wrk");
    cmd.args([
        "-t",
        "1",
        "-c",
        "32",
        "-d",
        &format!("{secs}s"),
        "--latency",
    ])
    .args(["-H", &format!("origin: {ORIGIN}")]);
    if let Some(script) = pipeline {
        cmd.args(["-s", &script.display().to_string()]);
    }
    let out = cmd.arg(format!("http://{addr}/")).output().unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    let cpu = cpu_ticks(pid) - cpu_before;
    let requests = field(&text, "requests in").unwrap_or(0.0);
    assert!(requests > 0.0, "wrk made no request:\n{text}");
    let errors = ["Non-2xx or 3xx responses:", "Socket errors:"];
    assert!(
        !errors.iter().any(|e| text.contains(e)),
        "failed requests:\n{text}"
    );
    Sample {
        rps: field(&text, "Requests/sec:").unwrap_or(0.0),
        p50_us: latency(&text, "50%"),
        p99_us: latency(&text, "99%"),
        cpu_us_per_req: cpu * 1e6 / ticks_per_sec() / requests,
    }
}

/// wrk's pipelining script: 16 requests per round trip on each connection.
const PIPELINE: &str = r#"
init = function(args)
  local r = {}
  for i = 1, 16 do r[i] = wrk.format(nil, "/") end
  req = table.concat(r)
end
request = function() return req end
"#;

fn wait_for(addr: SocketAddr) {
    let deadline = Instant::now() + Duration::from_secs(30);
    while std::net::TcpStream::connect(addr).is_err() {
        assert!(Instant::now() < deadline, "the {addr} server did not start");
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// User + system CPU time of `pid` so far, in clock ticks (`/proc/PID/stat` fields 14, 15).
fn cpu_ticks(pid: u32) -> f64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap();
    let after = &stat[stat.rfind(')').unwrap() + 2..];
    let f: Vec<&str> = after.split_whitespace().collect();
    f[11].parse::<f64>().unwrap() + f[12].parse::<f64>().unwrap()
}

fn ticks_per_sec() -> f64 {
    let out = Command::new("getconf").arg("CLK_TCK").output();
    out.ok()
        .and_then(|o| String::from_utf8(o.stdout).ok()?.trim().parse().ok())
        .unwrap_or(100.0)
}

/// The number before `label` (`12345 requests in`) or after it (`Requests/sec: 1234.5`).
fn field(text: &str, label: &str) -> Option<f64> {
    let line = text.lines().find(|l| l.contains(label))?;
    let words: Vec<&str> = line.split_whitespace().collect();
    let at = words
        .iter()
        .position(|w| label.starts_with(w) || label.contains(w))?;
    let near = [
        at.checked_sub(1),
        Some(at + label.split_whitespace().count()),
    ];
    near.into_iter()
        .flatten()
        .find_map(|i| words.get(i)?.trim_end_matches(',').parse().ok())
}

/// A latency percentile line of wrk's `--latency` table, in microseconds.
fn latency(text: &str, pct: &str) -> f64 {
    let line = text.lines().find(|l| l.trim_start().starts_with(pct));
    let v = line
        .and_then(|l| l.split_whitespace().nth(1))
        .unwrap_or("0us");
    let (num, unit) = v.split_at(v.find(|c: char| c.is_ascii_alphabetic()).unwrap_or(v.len()));
    let n: f64 = num.parse().unwrap_or(0.0);
    match unit {
        "us" => n,
        "ms" => n * 1e3,
        "s" => n * 1e6,
        _ => n,
    }
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

fn report(results: &[Vec<(Sample, Sample)>], rounds: usize, secs: u64) {
    println!("loopback: {rounds} interleaved rounds of {secs} s per case and mode; medians");
    for (mode, pick) in [
        ("keep-alive, 32 connections", 0usize),
        ("pipelined x16, 32 connections", 1),
    ] {
        let m = |i: usize, f: fn(&Sample) -> f64| {
            median(
                results[i]
                    .iter()
                    .map(|s| f(if pick == 0 { &s.0 } else { &s.1 }))
                    .collect(),
            )
        };
        println!("\n{mode}");
        println!(
            "{:<14} {:>10} {:>9} {:>9} {:>9} {:>12} {:>11}",
            "case", "req/s", "of bare", "p50 us", "p99 us", "CPU us/req", "added CPU"
        );
        let bare_cpu = m(0, |s| s.cpu_us_per_req);
        let bare_rps = m(0, |s| s.rps);
        for (i, case) in CASES.iter().enumerate() {
            let cpu = m(i, |s| s.cpu_us_per_req);
            println!(
                "{case:<14} {:>10.0} {:>8.2}x {:>9.0} {:>9.0} {:>12.2} {:>11.2}",
                m(i, |s| s.rps),
                m(i, |s| s.rps) / bare_rps,
                m(i, |s| s.p50_us),
                m(i, |s| s.p99_us),
                cpu,
                cpu - bare_cpu,
            );
        }
        let added = |i| m(i, |s| s.cpu_us_per_req) - bare_cpu;
        let peers = CASES.len() - 1;
        for (i, case) in CASES.iter().enumerate().take(peers).skip(1) {
            println!(
                "{case} / peers: added server CPU per request {:.2}x, req/s {:.2}x",
                added(i) / added(peers),
                m(i, |s| s.rps) / m(peers, |s| s.rps)
            );
        }
    }
}
