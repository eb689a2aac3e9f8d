//! The stats dashboard in a real browser: headless Chromium opens `/admin/stats` of the demo
//! server after it has served real traffic; the test reads the rendered DOM (the page's own
//! script fetched the JSON and drew the table) and saves a screenshot at
//! `target/stats-dashboard.png` for people to look at.
//!
//! Needs Debian's `chromium` (`.ci/run` installs it). Without it the test says it was skipped,
//! unless `TOWER_PLUGINS_REQUIRE_BROWSER=1`, which makes a missing browser a failure.
#![cfg(all(feature = "stats", feature = "timer"))]

mod common;

use std::path::Path;
use std::time::Duration;

use common::{CHROMIUM_FLAGS, chromium, demo_stack, get, spawn_axum};

#[path = "../examples/shared/app.rs"]
mod app;

/// Runs headless Chromium on `url` with `extra` arguments, letting the page run for 4 s of
/// virtual time (its first poll and a few more); returns what it printed.
async fn run_chromium(browser: &Path, profile: &Path, url: &str, extra: &[&str]) -> String {
    let mut cmd = tokio::process::Command::new(browser);
    cmd.args(CHROMIUM_FLAGS)
        .args([
            "--hide-scrollbars",
            "--window-size=1280,900",
            "--virtual-time-budget=4000",
            &format!("--user-data-dir={}", profile.display()),
        ])
        .args(extra)
        .arg(url)
        .stderr(std::process::Stdio::null())
        .kill_on_drop(true);
    let out = tokio::time::timeout(Duration::from_secs(60), cmd.output())
        .await
        .expect("chromium finished within 60 s")
        .expect("chromium runs");
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// The text of the cell `field` in the row of `route`, from the rendered DOM.
fn cell<'a>(dom: &'a str, route: &str, field: &str) -> &'a str {
    let row_at = dom
        .find(&format!("<tr data-route=\"{route}\""))
        .unwrap_or_else(|| panic!("no row for {route} in the rendered page:\n{dom}"));
    let row = &dom[row_at..];
    let row = &row[..row.find("</tr>").expect("the row ends")];
    let at = row
        .find(&format!("data-field=\"{field}\""))
        .unwrap_or_else(|| panic!("no {field} cell in {row}"));
    let text = &row[at..];
    let text = &text[text.find('>').expect("the cell's tag ends") + 1..];
    &text[..text.find('<').expect("the cell ends")]
}

#[tokio::test]
async fn chromium_shows_the_routes_and_their_counts() {
    let Some(browser) = chromium() else {
        return;
    };

    let server = spawn_axum(app::router().layer(demo_stack().layer())).await;
    let addr = server.addr;
    for _ in 0..3 {
        get(addr, "/api/items", &[]).await;
    }
    for _ in 0..2 {
        get(addr, "/large", &[]).await;
    }
    get(addr, "/slow?ms=30", &[]).await;
    get(addr, "/no/such/page", &[]).await;

    let url = format!("http://{addr}/admin/stats");
    let profile = std::env::temp_dir().join(format!(
        "tower-plugins-stats-chromium-{}",
        std::process::id()
    ));
    let dom = run_chromium(&browser, &profile, &url, &["--dump-dom"]).await;

    assert!(
        dom.contains("data-loaded=\"1\""),
        "the page never rendered its data:\n{dom}"
    );
    assert_eq!(cell(&dom, "/api/items", "requests"), "3");
    assert_eq!(cell(&dom, "/api/items", "2xx"), "3");
    assert_eq!(cell(&dom, "/large", "requests"), "2");
    assert_eq!(cell(&dom, "/slow", "requests"), "1");
    assert_eq!(cell(&dom, "unmatched", "4xx"), "1");
    // The slow route's latency (30 ms asked) is drawn in milliseconds.
    let p50: f64 = cell(&dom, "/slow", "p50").parse().unwrap();
    assert!((28.0..200.0).contains(&p50), "{p50}");
    // The custom collector's card shows its count of large responses.
    let large = dom
        .find("data-collector=\"large_responses\"")
        .map(|at| &dom[at..])
        .expect("the collector's card");
    let total = &large[large.find("data-key=\"total\"").expect("its total")..];
    assert!(
        total[..total.find('<').unwrap()].ends_with(">2"),
        "{total:.200}"
    );

    let shot = Path::new(env!("CARGO_MANIFEST_DIR")).join("target/stats-dashboard.png");
    let _ = std::fs::remove_file(&shot);
    run_chromium(
        &browser,
        &profile,
        &url,
        &[&format!("--screenshot={}", shot.display())],
    )
    .await;
    let _ = std::fs::remove_dir_all(&profile);
    let png = std::fs::read(&shot).expect("chromium saved the screenshot");
    assert!(
        png.starts_with(b"\x89PNG\r\n\x1a\n") && png.len() > 10_000,
        "{} bytes",
        png.len()
    );
    eprintln!("dashboard screenshot: {}", shot.display());
}
