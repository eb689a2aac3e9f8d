//! Prints the argon2id PHC string of a password read from standard input, for a
//! `[plugin.users]` entry of the auth plugin:
//!
//! ```sh
//! printf '%s' 'correct horse battery staple' | cargo run --release --example hash_password
//! ```
//!
//! The parameters are OWASP's minimum (19 MiB, 2 passes, 1 lane); the salt is random, so two
//! runs print two different strings that both verify.

use std::io::Read;

fn main() {
    let mut password = String::new();
    if let Err(e) = std::io::stdin().read_to_string(&mut password) {
        eprintln!("hash_password: cannot read standard input: {e}");
        std::process::exit(1);
    }
    // A trailing newline from `echo` or a terminal is not part of the password.
    let password = password.strip_suffix('\n').unwrap_or(&password);
    let password = password.strip_suffix('\r').unwrap_or(password);
    if password.is_empty() {
        eprintln!("hash_password: give the password on standard input");
        std::process::exit(1);
    }
    println!("{}", tower_plugins::auth::hash_password(password));
}
