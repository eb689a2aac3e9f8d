//! Every kind of configuration error: named key, line and column, never a panic.
#![cfg(feature = "timer")]

use tower_plugins::{ConfigError, PluginStack, ProblemKind};

fn err(text: &str) -> ConfigError {
    PluginStack::builder()
        .toml_str(text)
        .env_lookup(|name| (name == "PRESENT").then(|| "value".to_owned()))
        .build()
        .expect_err("the config should be refused")
}

/// The one problem of `e`, after checking its kind and that its message names `key` at
/// `line`.
fn single(e: &ConfigError, kind: ProblemKind, key: &str, line: usize) -> String {
    assert_eq!(e.problems().len(), 1, "{e}");
    let p = &e.problems()[0];
    assert_eq!(p.kind, kind, "{e}");
    assert_eq!(p.location.line, Some(line), "{e}");
    let text = e.to_string();
    assert!(
        text.contains(&format!("<string>:{line}:")),
        "line missing: {text}"
    );
    assert!(
        text.contains(&format!("key `{key}`")),
        "key missing: {text}"
    );
    text
}

#[test]
fn malformed_toml() {
    let e = err("[[plugin]]\nuse = \"timer\"\ndigits = = 3\n");
    let p = &e.problems()[0];
    assert_eq!(p.kind, ProblemKind::Syntax);
    assert_eq!(p.location.line, Some(3));
    assert!(e.to_string().starts_with("<string>:3:"), "{e}");
}

#[test]
fn unknown_key_in_a_plugin_suggests_the_nearest() {
    let e = err("[[plugin]]\nuse = \"timer\"\n\nheadr = \"x-rt\"\n");
    let text = single(&e, ProblemKind::UnknownKey, "headr", 4);
    assert!(text.contains("plugin[0] `timer`"), "{text}");
    assert!(text.contains("did you mean `header`?"), "{text}");
}

#[test]
fn unknown_top_level_key() {
    let e = err("[[plugins]]\nuse = \"timer\"\n");
    let text = single(&e, ProblemKind::UnknownKey, "plugins", 1);
    assert!(text.contains("did you mean `plugin`?"), "{text}");
}

#[test]
fn missing_use() {
    let e = err("[[plugin]]\nname = \"t\"\n");
    single(&e, ProblemKind::MissingKey, "plugin[0].use", 1);
}

#[test]
fn wrong_type() {
    let e = err("[[plugin]]\nuse = \"timer\"\ndigits = \"three\"\n");
    let text = single(&e, ProblemKind::WrongType, "digits", 3);
    assert!(text.contains("invalid type"), "{text}");
    let e = err("plugin = \"timer\"\n");
    single(&e, ProblemKind::WrongType, "plugin", 1);
    let e = err("[[plugin]]\nuse = \"timer\"\nenabled = 3\n");
    single(&e, ProblemKind::WrongType, "plugin[0].enabled", 3);
}

#[test]
fn invalid_values() {
    let e = err("[[plugin]]\nuse = \"timer\"\ndigits = 12\n");
    single(&e, ProblemKind::InvalidValue, "digits", 3);
    let e = err("[[plugin]]\nuse = \"timer\"\nunit = \"minutes\"\n");
    let text = single(&e, ProblemKind::InvalidValue, "unit", 3);
    assert!(text.contains("one of: s, ms, us"), "{text}");
}

#[test]
fn bad_cidr_in_client_ip() {
    let e = err("[client_ip]\ntrusted_proxies = [\"10.0.0.0/8\",\n  \"10.0.0.0/99\"]\n");
    let text = single(
        &e,
        ProblemKind::InvalidValue,
        "client_ip.trusted_proxies[1]",
        3,
    );
    assert!(text.contains("invalid CIDR"), "{text}");
}

#[test]
fn unknown_plugin_lists_known_names_and_nearest() {
    let e = err("[[plugin]]\nuse = \"timr\"\n");
    let text = single(&e, ProblemKind::UnknownPlugin, "use", 2);
    assert!(text.contains("did you mean `timer`?"), "{text}");
    assert!(
        text.contains("known plugins: auth, cors, rate_limit, request_log, stats, timer"),
        "{text}"
    );
}

#[test]
fn duplicate_instance_names() {
    let e = err("[[plugin]]\nuse = \"timer\"\n\n[[plugin]]\nuse = \"timer\"\n");
    let text = single(&e, ProblemKind::DuplicateName, "use", 5);
    assert!(text.contains("plugin[1]"), "{text}");
    let e = err(
        "[[plugin]]\nuse = \"timer\"\nname = \"a\"\n[[plugin]]\nuse = \"timer\"\nname = \"a\"\n",
    );
    single(&e, ProblemKind::DuplicateName, "name", 6);
}

#[test]
fn missing_environment_variable() {
    let e = err("[[plugin]]\nuse = \"timer\"\nheader = \"${ABSENT}\"\n");
    let text = single(&e, ProblemKind::MissingEnv, "plugin[0].header", 3);
    assert!(text.contains("`ABSENT` is not set"), "{text}");
    // Present variables and defaults expand.
    let stack = PluginStack::builder()
        .toml_str(
            "[[plugin]]\nuse = \"timer\"\nheader = \"x-${PRESENT}\"\nenabled = \"${ON:-false}\"\n",
        )
        .env_lookup(|name| (name == "PRESENT").then(|| "value".to_owned()))
        .build()
        .unwrap();
    assert!(!stack.entries()[0].enabled);
    assert!(
        stack.entries()[0].summary.starts_with("x-value:"),
        "{stack}"
    );
}

#[test]
fn missing_file() {
    let e = PluginStack::from_file("/nonexistent/plugins.toml").unwrap_err();
    assert_eq!(e.problems()[0].kind, ProblemKind::Io);
    assert!(
        e.to_string().starts_with("/nonexistent/plugins.toml: "),
        "{e}"
    );
}

#[test]
fn a_file_error_names_the_file() {
    let dir = std::env::temp_dir().join(format!("tower-plugins-test-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("bad.toml");
    std::fs::write(&path, "[[plugin]]\nuse = \"timer\"\ndigits = 99\n").unwrap();
    let e = PluginStack::from_file(&path).unwrap_err();
    std::fs::remove_dir_all(&dir).unwrap();
    assert!(
        e.to_string()
            .starts_with(&format!("{}:3:1: plugin[0]", path.display())),
        "{e}"
    );
}

#[test]
fn code_conflicts_are_located_in_code() {
    #[derive(serde::Deserialize)]
    struct Empty {}
    let e = PluginStack::builder()
        .register("timer", |_: Empty, _ctx| {
            Ok(tower::layer::util::Identity::new())
        })
        .build()
        .unwrap_err();
    assert_eq!(e.problems()[0].kind, ProblemKind::Conflict);
    assert!(e.to_string().starts_with("<code>: "), "{e}");
}

#[test]
fn code_set_values_are_located_in_code() {
    let e = PluginStack::builder()
        .toml_str("[[plugin]]\nuse = \"timer\"\n")
        .set("timer", "digits", 40)
        .build()
        .unwrap_err();
    let text = e.to_string();
    assert!(
        text.starts_with("<code>: plugin[0] `timer`: key `digits`"),
        "{text}"
    );
    let e = PluginStack::builder()
        .set("nothing", "digits", 1)
        .build()
        .unwrap_err();
    assert!(e.to_string().contains("names no instance `nothing`"), "{e}");
}

#[test]
fn every_problem_is_reported_at_once() {
    let e = err("[client_ip]\ntrusted_proxies = [\"x\"]\n\n\
                 [[plugin]]\nuse = \"timer\"\ndigits = 10\nheader = \"a b\"\n\n\
                 [[plugin]]\nuse = \"nope\"\n\n\
                 [[plugin]]\nuse = \"timer\"\nname = \"t2\"\nsecret = \"${NOT_SET}\"\n");
    let kinds: Vec<ProblemKind> = e.problems().iter().map(|p| p.kind).collect();
    // The bad CIDR, both timer values, the unknown plugin, the missing variable (an entry whose
    // value could not be expanded is not validated further: its errors would echo that one).
    assert_eq!(
        kinds,
        [
            ProblemKind::MissingEnv,
            ProblemKind::InvalidValue,
            ProblemKind::InvalidValue,
            ProblemKind::InvalidValue,
            ProblemKind::UnknownPlugin,
        ],
        "{e}"
    );
    assert!(e.to_string().ends_with("5 configuration errors"), "{e}");
}

#[test]
fn bad_durations_and_quotas_in_a_plugin_table() {
    use tower_plugins::core::{HumanDuration, Quota};

    #[derive(serde::Deserialize)]
    #[serde(deny_unknown_fields)]
    #[allow(dead_code)]
    struct Limits {
        window: HumanDuration,
        quota: Quota,
    }
    let build = |text: &str| {
        PluginStack::builder()
            .register("limits", |_: Limits, _ctx| {
                Ok(tower::layer::util::Identity::new())
            })
            .toml_str(text)
            .build()
    };
    assert!(build("[[plugin]]\nuse = \"limits\"\nwindow = \"10m\"\nquota = \"100/min\"\n").is_ok());

    let e =
        build("[[plugin]]\nuse = \"limits\"\nwindow = \"10 fortnights\"\nquota = \"100/min\"\n")
            .unwrap_err();
    let text = single(&e, ProblemKind::InvalidValue, "window", 3);
    assert!(text.contains("invalid duration"), "{text}");
    assert!(text.contains("hint: write a number and a unit"), "{text}");

    let e =
        build("[[plugin]]\nuse = \"limits\"\nwindow = \"1s\"\n\nquota = \"0/min\"\n").unwrap_err();
    let text = single(&e, ProblemKind::InvalidValue, "quota", 5);
    assert!(text.contains("invalid quota \"0/min\""), "{text}");
}

#[cfg(feature = "cors")]
#[test]
fn cors_rules_are_checked_at_load_with_locations() {
    let e = err("[[plugin]]\nuse = \"cors\"\nallow_origins = \"*\"\n\nallow_credentials = true\n");
    let text = single(&e, ProblemKind::Conflict, "allow_origins", 3);
    assert!(
        text.contains("cannot be combined with `*` origins"),
        "{text}"
    );

    let e = err(
        "[[plugin]]\nuse = \"cors\"\nallow_origins = [\"https://a.example\"]\nmax_age = \"soon\"\n",
    );
    let text = single(&e, ProblemKind::InvalidValue, "max_age", 4);
    assert!(text.contains("invalid duration"), "{text}");

    let e = err("[[plugin]]\nuse = \"cors\"\nallow_origins = [\"https://a.example\",\n  \"*\"]\n");
    single(&e, ProblemKind::InvalidValue, "allow_origins[1]", 4);
}

#[cfg(feature = "request-log")]
#[test]
fn request_log_settings_are_checked_at_load_with_locations() {
    let e = err("[[plugin]]\nuse = \"request_log\"\nformat = \"{method} {stauts}\"\n");
    let text = single(&e, ProblemKind::InvalidValue, "format", 3);
    assert!(text.contains("did you mean `{status}`?"), "{text}");

    let e = err("[[plugin]]\nuse = \"request_log\"\n\nskip = [\"/ok\", \"no-slash\"]\n");
    single(&e, ProblemKind::InvalidValue, "skip[1]", 4);

    let e = err(
        "[[plugin]]\nuse = \"request_log\"\nsink = { file = \"/nonexistent-dir/a/access.log\" }\n",
    );
    let text = single(&e, ProblemKind::InvalidValue, "sink.file", 3);
    assert!(
        text.contains("cannot write to /nonexistent-dir/a/access.log"),
        "{text}"
    );
}

#[cfg(feature = "rate-limit")]
#[test]
fn rate_limit_settings_are_checked_at_load_with_locations() {
    let e = err("[[plugin]]\nuse = \"rate_limit\"\nquota = \"0/min\"\n");
    let text = single(&e, ProblemKind::InvalidValue, "quota", 3);
    assert!(text.contains("plugin[0] `rate_limit`"), "{text}");

    let e = err("[[plugin]]\nuse = \"rate_limit\"\nquota = \"10/min\"\nburst = -5\n");
    single(&e, ProblemKind::InvalidValue, "burst", 4);

    let e = err("[[plugin]]\nuse = \"rate_limit\"\nquota = \"10/min\"\nkey = \"client-ip\"\n");
    let text = single(&e, ProblemKind::InvalidValue, "key", 4);
    assert!(text.contains("did you mean \"client_ip\"?"), "{text}");

    let e = err(
        "[[plugin]]\nuse = \"rate_limit\"\nquota = \"1/s\"\nexempt_ips = [\"10.0.0.0/8\", \"10.0.0.0/40\"]\n",
    );
    single(&e, ProblemKind::InvalidValue, "exempt_ips[1]", 4);

    let e = err(
        "[[plugin]]\nuse = \"rate_limit\"\n\n[[plugin.rules]]\nname = \"login\"\nquota = \"five/min\"\n",
    );
    single(&e, ProblemKind::InvalidValue, "rules[0].quota", 6);

    let e = err("[[plugin]]\nuse = \"rate_limit\"\n");
    let text = e.to_string();
    assert!(text.contains("needs a `quota`"), "{text}");
}

#[cfg(feature = "stats")]
#[test]
fn stats_errors_name_their_keys_and_lines() {
    let e = err(
        "[[plugin]]\nuse = \"stats\"\nmax_routes = 0\nroutes = [\"/ok\", \"bad\"]\nallow = [\"10.0.0.0/33\"]\ntoken_env = \"TOWER_PLUGINS_TEST_NO_SUCH_TOKEN\"\n",
    );
    let text = e.to_string();
    for (key, line) in [
        ("max_routes", 3),
        ("routes[1]", 4),
        ("allow[0]", 5),
        ("token_env", 6),
    ] {
        let p = e
            .problems()
            .iter()
            .find(|p| p.location.key.ends_with(key))
            .unwrap_or_else(|| panic!("no problem at {key}: {text}"));
        assert_eq!(p.location.line, Some(line), "{key}: {text}");
    }
}

#[cfg(feature = "stats")]
#[test]
fn an_unknown_metrics_facade_names_the_choices() {
    let e = err("[[plugin]]\nuse = \"stats\"\nmetrics_facade = \"statsd\"\n");
    let text = single(&e, ProblemKind::InvalidValue, "metrics_facade", 3);
    assert!(
        text.contains("prometheus") && text.contains("opentelemetry"),
        "{text}"
    );
}

#[test]
fn an_unset_variable_in_enabled_is_reported_once() {
    let e = err("[[plugin]]\nuse = \"timer\"\nenabled = \"${UNSET}\"\n");
    let text = single(&e, ProblemKind::MissingEnv, "plugin[0].enabled", 3);
    assert!(!text.contains("wrong type"), "{text}");
}

fn write_temp(name: &str, bytes: &[u8]) -> std::path::PathBuf {
    let dir = std::env::temp_dir().join(format!("tower-plugins-{name}-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("plugins.toml");
    std::fs::write(&path, bytes).unwrap();
    path
}

#[test]
fn a_file_that_is_not_utf8_is_located_at_the_bad_byte() {
    let path = write_temp(
        "utf8",
        b"[[plugin]]\nuse = \"timer\"\nheader = \"x-\xe9t\xff\"\n",
    );
    let e = PluginStack::from_file(&path).unwrap_err();
    std::fs::remove_dir_all(path.parent().unwrap()).unwrap();
    let p = &e.problems()[0];
    assert_eq!(p.kind, ProblemKind::Syntax, "{e}");
    assert_eq!(
        (p.location.line, p.location.column),
        (Some(3), Some(13)),
        "{e}"
    );
    assert!(e.to_string().contains("not UTF-8"), "{e}");
}

#[test]
fn lists_and_strings_past_their_bounds_are_refused_where_they_are() {
    let items = vec!["\"10.0.0.0/8\""; tower_plugins::stack::MAX_LIST_ITEMS + 1].join(",");
    let text = format!("[client_ip]\ntrusted_proxies = [{items}]\n");
    single(
        &err(&text),
        ProblemKind::InvalidValue,
        "client_ip.trusted_proxies",
        2,
    );
    let long = "x".repeat(tower_plugins::stack::MAX_STRING_BYTES + 1);
    let text = format!("[[plugin]]\nuse = \"timer\"\n\nheader = \"{long}\"\n");
    let e = single(&err(&text), ProblemKind::InvalidValue, "header", 4);
    assert!(e.contains("bytes long"), "{e}");
}

/// Reporting many problems costs time linear in the file: a 2 MB file of invalid values
/// (half a million problems) is answered in seconds even in a debug build, where locating
/// each problem by rescanning the file took minutes.
#[test]
fn many_problems_in_a_large_file_are_located_in_linear_time() {
    let bad: String = vec!["\"x\""; 5000].join(",");
    let text: String = (0..100)
        .map(|i| format!("[[plugin]]\nuse = \"rate_limit\"\nname = \"r{i}\"\nquota = \"1/s\"\nexempt_ips = [{bad}]\n"))
        .collect();
    assert!(text.len() > 2_000_000);
    let started = std::time::Instant::now();
    let e = err(&text);
    let took = started.elapsed();
    assert_eq!(e.problems().len(), 500_000);
    let last = &e.problems()[499_999].location;
    assert_eq!((last.line, last.column), (Some(500), Some(4 * 4999 + 15)));
    assert!(took < std::time::Duration::from_secs(20), "{took:?}");
}

#[cfg(feature = "auth")]
#[test]
fn auth_settings_are_checked_at_load_with_locations() {
    let text = r#"[[plugin]]
use = "auth"
secret = "changeme"
idle_timeout = "13h"
touch_interval = "2h"
store = { redis = "http://cache", timeout = "5m" }
on_store_error = "allow"

[plugin.cookie]
secure = false
same_site = "sometimes"

[plugin.login]
after_login = "//evil.example"
max_body = 10000000

[plugin.users]
alice = "hunter2"
bob = { password = "$argon2i$v=19$m=19456,t=2,p=1$c2FsdHNhbHQ$aGFzaGhhc2hoYXNo", role = ["x"] }

[[plugin.rules]]
paths = ["/**"]
unauthenticated = "sometimes"
"#;
    let e = err(text);
    let found: Vec<(String, Option<usize>)> = (e.problems().iter())
        .map(|p| (p.location.key.clone(), p.location.line))
        .collect();
    let has = |key: &str, line: usize| found.iter().any(|(k, l)| k == key && *l == Some(line));
    assert!(
        has("users.bob.role", 19),
        "an unknown key in a user's table: {e}"
    );
    let e = err(&text.replace(", role = [\"x\"]", ""));
    let found: Vec<(String, Option<usize>)> = (e.problems().iter())
        .map(|p| (p.location.key.clone(), p.location.line))
        .collect();
    let has = |key: &str, line: usize| found.iter().any(|(k, l)| k == key && *l == Some(line));
    for (key, line) in [
        ("secret", 3),
        ("store.redis", 6),
        ("store.timeout", 6),
        ("on_store_error", 7),
        ("cookie.same_site", 11),
        ("cookie.secure", 10),
        ("login.after_login", 14),
        ("login.max_body", 15),
        ("users.alice", 18),
        ("users.bob", 19),
        ("rules[0].unauthenticated", 23),
    ] {
        assert!(has(key, line), "{key} at line {line} missing: {e}");
    }
    let kinds: Vec<ProblemKind> = e.problems().iter().map(|p| p.kind).collect();
    assert!(
        kinds.contains(&ProblemKind::Conflict),
        "idle longer than absolute, touch past idle: {e}"
    );
    assert!(
        e.to_string().contains("redirect loop"),
        "the rule covers the login path: {e}"
    );
}
