//! Who may log in: the [`UserProvider`] trait, and [`StaticUsers`] from `[plugin.users]`.

use std::collections::HashMap;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

use tower_plugins_core::{BoxError, ConfigError, ProblemKind};

use crate::verifier::{Busy, Verifier, check_phc};

/// A user who logged in: the id the session and the logs carry, and the roles rules check.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct User {
    /// The user's id (`AuthUser` for the other plugins).
    pub id: Arc<str>,
    /// The user's roles.
    pub roles: Arc<[Arc<str>]>,
}

impl User {
    /// A user with `roles`.
    pub fn new(
        id: impl Into<Arc<str>>,
        roles: impl IntoIterator<Item = impl Into<Arc<str>>>,
    ) -> Self {
        User {
            id: id.into(),
            roles: roles.into_iter().map(Into::into).collect(),
        }
    }
}

/// Why a login could not be decided.
#[derive(Debug)]
#[non_exhaustive]
pub enum AuthError {
    /// The password-hashing pool is full: 503 with `Retry-After`.
    Busy,
    /// The provider's backend failed: 503.
    Backend(BoxError),
}

impl From<Busy> for AuthError {
    fn from(_: Busy) -> Self {
        AuthError::Busy
    }
}

/// What a [`UserProvider`] returns.
pub type AuthFuture<'a> =
    Pin<Box<dyn Future<Output = Result<Option<Arc<User>>, AuthError>> + Send + 'a>>;

/// Checks credentials. Called only on a login post, never per request.
pub trait UserProvider: Send + Sync + 'static {
    /// The user, for valid credentials only (an `Arc`, so that every session of a user shares
    /// one). An unknown name must cost what a known one does:
    /// verify the password against [`Verifier::verify_dummy`] and answer `None`.
    fn authenticate<'a>(
        &'a self,
        username: &'a str,
        password: &'a str,
        verifier: &'a Verifier,
    ) -> AuthFuture<'a>;
}

/// Users and their argon2id PHC hashes, as `[plugin.users]` lists them.
///
/// ```
/// use tower_plugins_auth::StaticUsers;
/// let phc = tower_plugins_auth::hash_password("s3cret-passw0rd");
/// let users = StaticUsers::new().user("alice", &phc, ["admin"])?;
/// assert!(StaticUsers::new().user("bob", "hunter2", [""; 0]).is_err());
/// # Ok::<(), tower_plugins_core::ConfigError>(())
/// ```
#[derive(Debug, Clone, Default)]
pub struct StaticUsers {
    users: HashMap<Box<str>, (Arc<str>, Arc<User>)>,
}

impl StaticUsers {
    /// No users.
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds a user with an argon2id PHC hash and roles.
    ///
    /// # Errors
    /// An empty or taken name, or a hash [`check_phc`] refuses.
    pub fn user<R: Into<Arc<str>>>(
        mut self,
        name: &str,
        phc: &str,
        roles: impl IntoIterator<Item = R>,
    ) -> Result<Self, ConfigError> {
        if name.is_empty() || name.len() > crate::MAX_USERNAME {
            let message = format!("a user name is 1 to {} bytes", crate::MAX_USERNAME);
            return Err(ConfigError::new(ProblemKind::InvalidValue, "", message));
        }
        if self.users.contains_key(name) {
            let message = format!("the user {name:?} is listed twice");
            return Err(ConfigError::new(ProblemKind::DuplicateName, "", message));
        }
        check_phc(phc)?;
        let user = Arc::new(User::new(name, roles));
        self.users.insert(name.into(), (phc.into(), user));
        Ok(self)
    }

    /// The PHC strings, for the verifier's dummy hash (the strongest parameters).
    pub(crate) fn hashes(&self) -> impl Iterator<Item = &str> {
        self.users.values().map(|(phc, _)| &**phc)
    }

    /// How many users there are.
    pub fn len(&self) -> usize {
        self.users.len()
    }

    /// Whether there is none.
    pub fn is_empty(&self) -> bool {
        self.users.is_empty()
    }
}

impl UserProvider for StaticUsers {
    fn authenticate<'a>(
        &'a self,
        username: &'a str,
        password: &'a str,
        verifier: &'a Verifier,
    ) -> AuthFuture<'a> {
        Box::pin(async move {
            match self.users.get(username) {
                Some((phc, user)) => {
                    Ok(verifier.verify(phc, password).await?.then(|| user.clone()))
                }
                None => {
                    verifier.verify_dummy(password).await?;
                    Ok(None)
                }
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::verifier::tests::cheap_hash;

    #[tokio::test]
    async fn unknown_users_and_wrong_passwords_look_alike_and_cost_a_verify_each() {
        let users = StaticUsers::new()
            .user("alice", &cheap_hash("right"), ["admin"])
            .unwrap();
        let v = Verifier::new(1, users.hashes().next());
        let alice = users.authenticate("alice", "right", &v).await.unwrap();
        assert_eq!(alice.map(|u| u.roles.len()), Some(1));
        assert!(
            users
                .authenticate("alice", "wrong", &v)
                .await
                .unwrap()
                .is_none()
        );
        assert!(
            users
                .authenticate("mallory", "right", &v)
                .await
                .unwrap()
                .is_none()
        );
        // Two verifies against alice's hash, one dummy for the unknown name.
        assert_eq!(v.counts(), (2, 1));
    }

    #[test]
    fn duplicates_and_plain_passwords_are_refused() {
        let u = StaticUsers::new()
            .user("a", &cheap_hash("x"), [""; 0])
            .unwrap();
        assert!(u.clone().user("a", &cheap_hash("y"), [""; 0]).is_err());
        assert!(u.user("b", "plaintext", [""; 0]).is_err());
    }
}
