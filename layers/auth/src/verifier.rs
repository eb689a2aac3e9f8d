//! Password verification on a bounded pool of threads: argon2id costs about 14 ms and 19 MiB
//! per verify at OWASP's minimum, so an unbounded number at once would take the runtime's
//! threads and the machine's memory.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc::{Receiver, SyncSender, TrySendError, sync_channel};
use std::sync::{Arc, Mutex, OnceLock, PoisonError};

use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use argon2::{Algorithm, Argon2, Params, Version};
use tower_plugins_core::{ConfigError, ProblemKind};

/// The largest argon2 parameters a PHC string may carry: a hash's parameters decide what each
/// verify costs, so an unbounded `m` would let one entry of the config exhaust memory.
pub const MAX_MEMORY_KIB: u32 = 256 * 1024;
/// The most argon2 passes a PHC string may ask for.
pub const MAX_PASSES: u32 = 10;
/// The most argon2 lanes a PHC string may ask for.
pub const MAX_LANES: u32 = 16;

const PHC_HINT: &str = "write an argon2id PHC string, such as the output of \
    `cargo run --example hash_password` ($argon2id$v=19$m=19456,t=2,p=1$...)";

/// The pool is full: the request is answered 503 with `Retry-After` rather than queued.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Busy;

impl std::fmt::Display for Busy {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("every password-hashing thread is busy and the queue is full")
    }
}

impl std::error::Error for Busy {}

/// Checks an argon2id PHC string and its parameters' bounds.
///
/// # Errors
/// [`ProblemKind::InvalidValue`] for a string that is not PHC, another algorithm, or
/// parameters past [`MAX_MEMORY_KIB`], [`MAX_PASSES`] or [`MAX_LANES`].
pub fn check_phc(phc: &str) -> Result<(), ConfigError> {
    let invalid =
        |why: String| Err(ConfigError::new(ProblemKind::InvalidValue, "", why).with_hint(PHC_HINT));
    let Ok(hash) = PasswordHash::new(phc) else {
        let shown: String = phc.chars().take(12).collect();
        return invalid(format!(
            "{shown:?}... is not a PHC hash string (is it a plain password?)"
        ));
    };
    if hash.algorithm != Algorithm::Argon2id.ident() {
        return invalid(format!("the hash is {}, not argon2id", hash.algorithm));
    }
    let Ok(params) = Params::try_from(&hash) else {
        return invalid("the hash's argon2 parameters are malformed".to_owned());
    };
    if params.m_cost() > MAX_MEMORY_KIB
        || params.t_cost() > MAX_PASSES
        || params.p_cost() > MAX_LANES
    {
        return invalid(format!(
            "m={},t={},p={} is past the bounds m<={MAX_MEMORY_KIB},t<={MAX_PASSES},p<={MAX_LANES}",
            params.m_cost(),
            params.t_cost(),
            params.p_cost()
        ));
    }
    Ok(())
}

/// The argon2id PHC string of `password`, with OWASP's minimum parameters (19 MiB, 2 passes,
/// 1 lane) and a random salt: what a `[plugin.users]` entry holds.
///
/// ```
/// let phc = tower_plugins_auth::hash_password("correct horse battery staple");
/// assert!(phc.starts_with("$argon2id$v=19$m=19456,t=2,p=1$"));
/// ```
pub fn hash_password(password: &str) -> String {
    hash_with(password, &Params::default())
}

fn hash_with(password: &str, params: &Params) -> String {
    let mut salt = [0u8; 16];
    getrandom::fill(&mut salt).expect("the OS random source is available");
    let salt = SaltString::encode_b64(&salt).expect("16 bytes is a valid salt");
    Argon2::new(Algorithm::Argon2id, Version::V0x13, params.clone())
        .hash_password(password.as_bytes(), &salt)
        .expect("argon2 hashes any password with valid parameters")
        .to_string()
}

struct Job {
    /// `None`: the dummy hash.
    phc: Option<Arc<str>>,
    password: String,
    done: tokio::sync::oneshot::Sender<bool>,
}

struct Pool {
    threads: usize,
    queue: usize,
    tx: OnceLock<Option<SyncSender<Job>>>,
    dummy: Arc<Dummy>,
    verifies: AtomicU64,
    dummies: AtomicU64,
}

/// A PHC of a random password at the strongest parameters configured: unknown users are
/// verified against it, at the same cost as known ones. Made by the first thread that needs
/// it, so that building a layer costs no hash.
struct Dummy {
    params: Params,
    phc: OnceLock<Arc<str>>,
}

impl Dummy {
    fn phc(&self) -> Arc<str> {
        self.phc
            .get_or_init(|| {
                let mut random = [0u8; 16];
                getrandom::fill(&mut random).expect("the OS random source is available");
                hash_with(&format!("{random:?}"), &self.params).into()
            })
            .clone()
    }
}

/// Verifies passwords on at most `threads` threads (started on first use), with at most
/// four jobs per thread waiting; past that, [`Busy`]. Cloning shares the pool.
#[derive(Clone)]
pub struct Verifier(Arc<Pool>);

impl std::fmt::Debug for Verifier {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Verifier")
            .field("threads", &self.0.threads)
            .field("verifies", &self.0.verifies.load(Ordering::Relaxed))
            .finish_non_exhaustive()
    }
}

impl Verifier {
    /// A pool of `threads` threads (0: the machine's parallelism) whose unknown-user verify
    /// costs what a hash with `strongest` (a PHC string) costs; the default parameters when
    /// `None`.
    pub fn new(threads: usize, strongest: Option<&str>) -> Self {
        let threads = match threads {
            0 => std::thread::available_parallelism().map_or(2, |n| n.get()),
            n => n,
        };
        let params = strongest
            .and_then(|p| PasswordHash::new(p).ok())
            .and_then(|h| Params::try_from(&h).ok())
            .unwrap_or_default();
        Verifier(Arc::new(Pool {
            threads,
            queue: threads * 4,
            tx: OnceLock::new(),
            dummy: Arc::new(Dummy {
                params,
                phc: OnceLock::new(),
            }),
            verifies: AtomicU64::new(0),
            dummies: AtomicU64::new(0),
        }))
    }

    /// Whether `password` matches the PHC string `phc`, compared in constant time.
    ///
    /// # Errors
    /// [`Busy`] when every thread is busy and the queue is full.
    pub async fn verify(&self, phc: &Arc<str>, password: &str) -> Result<bool, Busy> {
        self.0.verifies.fetch_add(1, Ordering::Relaxed);
        self.run(Some(phc.clone()), password).await
    }

    /// Costs what a verify costs and matches nothing: for a user that does not exist, so
    /// that the time taken does not tell.
    ///
    /// # Errors
    /// [`Busy`], as [`verify`](Self::verify).
    pub async fn verify_dummy(&self, password: &str) -> Result<(), Busy> {
        self.0.dummies.fetch_add(1, Ordering::Relaxed);
        self.run(None, password).await.map(|_| ())
    }

    /// Verifies of known users, and dummy verifies of unknown ones, so far.
    pub fn counts(&self) -> (u64, u64) {
        (
            self.0.verifies.load(Ordering::Relaxed),
            self.0.dummies.load(Ordering::Relaxed),
        )
    }

    async fn run(&self, phc: Option<Arc<str>>, password: &str) -> Result<bool, Busy> {
        let pool = &self.0;
        let tx = pool
            .tx
            .get_or_init(|| start(pool.threads, pool.queue, &pool.dummy));
        let Some(tx) = tx else { return Err(Busy) };
        let (done, answer) = tokio::sync::oneshot::channel();
        let job = Job {
            phc,
            password: password.to_owned(),
            done,
        };
        match tx.try_send(job) {
            Ok(()) => answer.await.map_err(|_| Busy),
            Err(TrySendError::Full(_) | TrySendError::Disconnected(_)) => Err(Busy),
        }
    }
}

/// Starts the threads; `None` when the system gives none (every verify is then [`Busy`]).
fn start(threads: usize, queue: usize, dummy: &Arc<Dummy>) -> Option<SyncSender<Job>> {
    let (tx, rx) = sync_channel::<Job>(queue);
    let rx = Arc::new(Mutex::new(rx));
    let mut started = 0;
    for i in 0..threads {
        let (rx, dummy) = (rx.clone(), dummy.clone());
        let spawned = std::thread::Builder::new()
            .name(format!("tower-plugins-auth-hash-{i}"))
            .spawn(move || work(&rx, &dummy));
        match spawned {
            Ok(_) => started += 1,
            Err(e) => tracing::warn!(error = %e, "auth: could not start a password-hashing thread"),
        }
    }
    (started > 0).then_some(tx)
}

/// Verifies jobs until the pool is dropped (its sender with it).
fn work(rx: &Mutex<Receiver<Job>>, dummy: &Dummy) {
    loop {
        let job = {
            let rx = rx.lock().unwrap_or_else(PoisonError::into_inner);
            match rx.recv() {
                Ok(job) => job,
                Err(_) => return,
            }
        };
        let phc = job.phc.unwrap_or_else(|| dummy.phc());
        let ok = PasswordHash::new(&phc).is_ok_and(|h| {
            Argon2::default()
                .verify_password(job.password.as_bytes(), &h)
                .is_ok()
        });
        let _ = job.done.send(ok);
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// Cheap parameters, for tests only.
    pub(crate) fn cheap_hash(password: &str) -> String {
        hash_with(password, &Params::new(8, 1, 1, None).unwrap())
    }

    #[test]
    fn phc_strings_are_checked_and_bounded() {
        assert!(check_phc(&cheap_hash("x")).is_ok());
        assert!(check_phc(&hash_password("x")).is_ok());
        let too_much = "$argon2id$v=19$m=4194304,t=2,p=1$c2FsdHNhbHRzYWx0$aGFzaGhhc2hoYXNoaGFzaGhhc2hoYXNoaGFzaGhhc2g";
        for (bad, why) in [
            ("hunter2", "plain password"),
            (
                "$argon2i$v=19$m=19456,t=2,p=1$c2FsdHNhbHQ$aGFzaGhhc2hoYXNo",
                "not argon2id",
            ),
            (too_much, "past the bounds"),
        ] {
            let e = check_phc(bad).unwrap_err();
            assert!(e.to_string().contains(why), "{bad}: {e}");
        }
    }

    #[tokio::test]
    async fn verifies_match_only_the_password_and_unknown_users_cost_a_verify() {
        let v = Verifier::new(2, Some(&cheap_hash("p")));
        let phc: Arc<str> = cheap_hash("right").into();
        assert_eq!(v.verify(&phc, "right").await, Ok(true));
        assert_eq!(v.verify(&phc, "wrong").await, Ok(false));
        assert_eq!(v.verify_dummy("anything").await, Ok(()));
        assert_eq!(v.counts(), (2, 1));
    }

    #[tokio::test]
    async fn a_full_pool_is_busy_rather_than_an_unbounded_queue() {
        // One thread, a queue of four, hashes that take a while: a burst of 40 at once gets
        // some answers and some Busy, never 40 queued.
        let slow: Arc<str> = hash_with("x", &Params::new(16 * 1024, 2, 1, None).unwrap()).into();
        let v = Verifier::new(1, None);
        let all = (0..40).map(|_| {
            let (v, slow) = (v.clone(), slow.clone());
            async move { v.verify(&slow, "x").await }
        });
        let results = futures_join_all(all).await;
        let busy = results.iter().filter(|r| **r == Err(Busy)).count();
        assert!(busy > 0 && busy < 40, "{busy} busy");
    }

    async fn futures_join_all<F>(fs: impl Iterator<Item = F>) -> Vec<F::Output>
    where
        F: std::future::Future + Send + 'static,
        F::Output: Send + 'static,
    {
        let handles: Vec<_> = fs.map(tokio::spawn).collect();
        let mut out = Vec::new();
        for h in handles {
            out.push(h.await.unwrap());
        }
        out
    }
}
