//! Single-flight refresh: one upstream refresh per refresh token, shared by every
//! request that presents it.
//!
//! WorkOS refresh tokens are single-use. When a page fires ten requests with the same
//! expired cookie, ten naive refreshes race: one wins, nine present a spent token, get
//! `invalid_grant`, and clear the cookie: the user is logged out although nothing was
//! wrong (authkit-nextjs issue 28, wire spec §2.5 and Appendix B item 9). Worse, a
//! server that enforces rotation (RFC 9700 §4.14.2; the emulator does) treats the reuse
//! as theft and revokes the new token as well.
//!
//! [`SingleFlight::run`] fixes this in-process:
//!
//! - **Concurrent callers share one call.** Callers are keyed by a SHA-256 hash of the
//!   refresh token (the token itself is never kept), whatever organization they ask for:
//!   the token can be spent only once. The first caller starts the refresh; the others
//!   wait for it and receive a clone of its successful result, even one for another
//!   organization (an organization switch racing an ordinary refresh of the same cookie:
//!   the switcher refreshes again from the shared result, see `AuthKit`, and
//!   [`SingleFlight::run_reporting`] tells it the result was shared). An error is
//!   shared by every caller, except that a caller for another organization tries
//!   again with the same token when [`SingleFlight::retry_other_organizations_when`]
//!   says the error was a definite refusal, which spends no token (a timeout might
//!   have: sending the token again could look like reuse and end the session).
//! - **The refresh runs in its own Tokio task**, so it completes and its result is
//!   recorded even if the request that started it is dropped (client disconnect). A
//!   spent token whose replacement was thrown away would log the user out.
//! - **Just-completed rotations are remembered** for a short grace window (default
//!   10 s, [`DEFAULT_GRACE`]). A request that was already on its way with the *old*
//!   cookie when the rotation finished presents the old token; instead of sending it
//!   upstream (which would fail, and may revoke the session) it gets the same new
//!   session. Only successes are remembered; after an error the next caller tries
//!   again. The trade-off: for those seconds the old refresh token still yields the new
//!   session in this process, which is the same power the old cookie had a moment ago.
//!   Set the grace to zero to disable it.
//! - **The lock is never held while the refresh starts**: the flight is recorded, the
//!   lock released, then the task spawned; a runtime shutting down that drops the task
//!   at once finds the lock free.
//! - **Bounded.** In-flight entries leave the map when their refresh ends; remembered
//!   results expire after the grace window and at most `max_remembered` (default
//!   10 000) are kept, oldest dropped first.
//!
//! Across several processes behind a load balancer this does not help; sticky sessions
//! or a shared store would. The module is generic over the refresh function and its
//! result, so tests drive it with a fake that counts calls.
//!
//! Written by hand rather than with a single-flight crate because none keeps the grace
//! window, detaches the call from the callers, and is bounded.

use std::collections::{HashMap, VecDeque};
use std::future::Future;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, SystemTime};

use futures::FutureExt;
use futures::future::{BoxFuture, Shared};
use tokio::sync::oneshot;

use crate::client::ClientError;
use crate::clock::SharedClock;

/// How long a completed rotation is served to callers still holding the old token.
pub const DEFAULT_GRACE: Duration = Duration::from_secs(10);

/// How many completed rotations are remembered at most.
pub const DEFAULT_MAX_REMEMBERED: usize = 10_000;

/// The refresh task ended without producing a result (it panicked or the runtime shut
/// down). Converted into the caller's error type; for [`ClientError`] it is a transient
/// transport error, so the session is kept.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("the refresh task ended without a result")]
pub struct RefreshInterrupted;

impl From<RefreshInterrupted> for ClientError {
    fn from(e: RefreshInterrupted) -> Self {
        ClientError::Transport(e.to_string())
    }
}

type Key = [u8; 32];
type SharedResult<V, E> = Shared<BoxFuture<'static, Result<V, E>>>;

enum Slot<V, E> {
    Pending {
        id: u64,
        /// The organization the running refresh asked for.
        organization: Option<Box<str>>,
        result: SharedResult<V, E>,
    },
    /// A successful refresh that consumed the token, remembered for the grace window.
    /// Also how a remembered result is followed along later rotations, so nobody is
    /// handed a token that has since been spent.
    Done { value: V, until: SystemTime },
}

struct State<V, E> {
    slots: HashMap<Key, Slot<V, E>>,
    /// Remembered results in completion order, for expiry and the size bound.
    remembered: VecDeque<(Key, SystemTime)>,
    next_id: u64,
}

/// What a caller of [`SingleFlight::run`] does next, decided under the lock.
enum Step<V, E> {
    /// A remembered result.
    Remembered(V),
    /// Wait for a flight; `same_organization` tells whether it asked for the caller's.
    Join {
        result: SharedResult<V, E>,
        same_organization: bool,
    },
    /// This caller's flight is recorded: spawn it (with the lock released) and wait.
    Start(Launch<V, E>),
}

/// A recorded flight waiting to be spawned.
struct Launch<V, E> {
    result: SharedResult<V, E>,
    done: oneshot::Sender<Result<V, E>>,
    completion: Completion<V, E>,
}

/// Where a result of [`SingleFlight::run_reporting`] came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Origin {
    /// The caller's own refresh: the token it presented, for the organization it asked.
    Own,
    /// Another caller's refresh of the same token, running or remembered, possibly for
    /// another organization.
    Shared,
}

struct Inner<V, E> {
    state: Mutex<State<V, E>>,
    /// Reads the refresh token a result hands out (see [`SingleFlight::follow_rotations`]).
    next_token: Option<fn(&V) -> Option<&str>>,
    /// Whether a caller for another organization retries after a flight's error.
    retry_other_organizations: Option<fn(&E) -> bool>,
    clock: SharedClock,
    grace: Duration,
    max_remembered: usize,
}

/// Coalesces concurrent refreshes of the same refresh token; see the module docs.
///
/// Cheap to clone; clones share state. Must be used within a Tokio runtime.
pub struct SingleFlight<V, E> {
    inner: Arc<Inner<V, E>>,
}

impl<V, E> Clone for SingleFlight<V, E> {
    fn clone(&self) -> Self {
        Self {
            inner: Arc::clone(&self.inner),
        }
    }
}

impl<V, E> std::fmt::Debug for SingleFlight<V, E> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SingleFlight")
            .field("grace", &self.inner.grace)
            .field("max_remembered", &self.inner.max_remembered)
            .finish_non_exhaustive()
    }
}

impl<V, E> SingleFlight<V, E>
where
    V: Clone + Send + Sync + 'static,
    E: Clone + Send + Sync + From<RefreshInterrupted> + 'static,
{
    /// A single-flight with the default grace window and bound.
    pub fn new(clock: SharedClock) -> Self {
        Self::with_limits(clock, DEFAULT_GRACE, DEFAULT_MAX_REMEMBERED)
    }

    /// A single-flight remembering completed rotations for `grace` (zero disables) and
    /// at most `max_remembered` of them.
    pub fn with_limits(clock: SharedClock, grace: Duration, max_remembered: usize) -> Self {
        Self {
            inner: Arc::new(Inner {
                state: Mutex::new(State {
                    slots: HashMap::new(),
                    remembered: VecDeque::new(),
                    next_id: 0,
                }),
                next_token: None,
                retry_other_organizations: None,
                clock,
                grace,
                max_remembered,
            }),
        }
    }

    /// Follow rotation chains: when a remembered result's refresh token has itself been
    /// rotated since (by a later refresh, or an organization switch made from it), a late
    /// caller gets the newest result instead of one whose token is already spent.
    /// `next_token` reads the refresh token a result hands out. Call before first use.
    pub fn follow_rotations(mut self, next_token: fn(&V) -> Option<&str>) -> Self {
        if let Some(inner) = Arc::get_mut(&mut self.inner) {
            inner.next_token = Some(next_token);
        }
        self
    }

    /// A caller for another organization than a flight's, whose flight failed with an
    /// error for which `definite` is true, tries again with the same token (by default it
    /// shares the error). Call before first use.
    pub fn retry_other_organizations_when(mut self, definite: fn(&E) -> bool) -> Self {
        if let Some(inner) = Arc::get_mut(&mut self.inner) {
            inner.retry_other_organizations = Some(definite);
        }
        self
    }

    /// Runs `refresh` for this refresh token and organization, unless a refresh of the
    /// same token is already running (then waits for and returns its result; see the
    /// module docs for one asked for another organization) or finished successfully
    /// within the grace window (then returns that result at once).
    ///
    /// `refresh` is called at most once, and only by the caller that starts the flight.
    pub async fn run<F, Fut>(
        &self,
        refresh_token: &str,
        organization_id: Option<&str>,
        refresh: F,
    ) -> Result<V, E>
    where
        F: FnOnce() -> Fut,
        Fut: Future<Output = Result<V, E>> + Send + 'static,
    {
        self.run_reporting(refresh_token, organization_id, refresh)
            .await
            .0
    }

    /// [`SingleFlight::run`], also telling whether the result is the caller's own.
    pub async fn run_reporting<F, Fut>(
        &self,
        refresh_token: &str,
        organization_id: Option<&str>,
        refresh: F,
    ) -> (Result<V, E>, Origin)
    where
        F: FnOnce() -> Fut,
        Fut: Future<Output = Result<V, E>> + Send + 'static,
    {
        let key = token_key(refresh_token);
        let mut refresh = Some(refresh);
        loop {
            let step = {
                let mut state = self.inner.lock();
                let now = self.inner.clock.now();
                self.inner.expire(&mut state, now);
                match state.slots.get(&key) {
                    Some(Slot::Done { value, until }) if *until > now => {
                        Step::Remembered(self.inner.newest(&state, value, now))
                    }
                    Some(Slot::Pending {
                        organization,
                        result,
                        ..
                    }) => Step::Join {
                        result: result.clone(),
                        same_organization: organization.as_deref() == organization_id,
                    },
                    _ => Step::Start(self.record(&mut state, key, organization_id)),
                }
            };
            match step {
                Step::Remembered(value) => return (Ok(value), Origin::Shared),
                Step::Start(launch) => {
                    // `refresh` is always still there: a caller that takes it returns here.
                    let Some(refresh) = refresh.take() else {
                        return (Err(RefreshInterrupted.into()), Origin::Own);
                    };
                    return (launch.spawn(refresh()).await, Origin::Own);
                }
                Step::Join {
                    result,
                    same_organization,
                } => match result.await {
                    // Another organization's refresh was refused (not a member, step-up
                    // needed...): that spent no token, so try ours.
                    Err(e) if !same_organization && self.inner.retries(&e) => continue,
                    outcome => return (outcome, Origin::Shared),
                },
            }
        }
    }

    /// Refreshes currently running.
    pub fn in_flight(&self) -> usize {
        let state = self.inner.lock();
        state
            .slots
            .values()
            .filter(|s| matches!(s, Slot::Pending { .. }))
            .count()
    }

    /// Completed rotations currently remembered (expired ones are dropped first).
    pub fn remembered(&self) -> usize {
        let mut state = self.inner.lock();
        let now = self.inner.clock.now();
        self.inner.expire(&mut state, now);
        state.remembered.len()
    }

    /// Records a flight for `key` under the lock; [`Launch::spawn`] starts it once the
    /// lock is released.
    fn record(
        &self,
        state: &mut State<V, E>,
        key: Key,
        organization: Option<&str>,
    ) -> Launch<V, E> {
        let id = state.next_id;
        state.next_id = state.next_id.wrapping_add(1);
        let (done, receiver) = oneshot::channel();
        let result = async move {
            receiver
                .await
                .unwrap_or_else(|_| Err(RefreshInterrupted.into()))
        }
        .boxed()
        .shared();
        state.slots.insert(
            key,
            Slot::Pending {
                id,
                organization: organization.map(Box::from),
                result: result.clone(),
            },
        );
        Launch {
            result,
            done,
            completion: Completion {
                inner: Arc::clone(&self.inner),
                key,
                id,
                finished: false,
            },
        }
    }
}

impl<V, E> Launch<V, E>
where
    V: Clone + Send + Sync + 'static,
    E: Clone + Send + Sync + From<RefreshInterrupted> + 'static,
{
    /// Runs `refresh` in its own task (see the module docs) and waits for its result.
    async fn spawn<Fut>(self, refresh: Fut) -> Result<V, E>
    where
        Fut: Future<Output = Result<V, E>> + Send + 'static,
    {
        let Launch {
            result,
            done,
            mut completion,
        } = self;
        tokio::spawn(async move {
            let outcome = refresh.await;
            completion.finish(&outcome);
            let _ = done.send(outcome);
        });
        result.await
    }
}

impl<V, E> Inner<V, E> {
    fn retries(&self, error: &E) -> bool {
        self.retry_other_organizations
            .is_some_and(|definite| definite(error))
    }

    fn lock(&self) -> MutexGuard<'_, State<V, E>> {
        // A panic while holding this lock cannot leave the map inconsistent (each
        // critical section is a few map operations), so poisoning is ignored.
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// `value`, or the newest result along its chain of later rotations.
    fn newest(&self, state: &State<V, E>, value: &V, now: SystemTime) -> V
    where
        V: Clone,
    {
        let mut current = value;
        if let Some(next_token) = self.next_token {
            // Bounded: each hop is a distinct completed rotation within the grace window.
            for _ in 0..16 {
                let Some(token) = next_token(current) else {
                    break;
                };
                match state.slots.get(&token_key(token)) {
                    Some(Slot::Done { value, until }) if *until > now => current = value,
                    _ => break,
                }
            }
        }
        current.clone()
    }

    /// Drops remembered results that are past their window or over the bound.
    fn expire(&self, state: &mut State<V, E>, now: SystemTime) {
        while let Some(&(key, until)) = state.remembered.front() {
            if until > now && state.remembered.len() <= self.max_remembered {
                break;
            }
            state.remembered.pop_front();
            if matches!(state.slots.get(&key), Some(Slot::Done { until: u, .. }) if *u == until) {
                state.slots.remove(&key);
            }
        }
    }
}

/// Records the end of one flight, also when the task unwinds or is cancelled.
struct Completion<V, E> {
    inner: Arc<Inner<V, E>>,
    key: Key,
    id: u64,
    finished: bool,
}

impl<V: Clone, E> Completion<V, E> {
    fn finish(&mut self, result: &Result<V, E>) {
        self.finished = true;
        let mut state = self.inner.lock();
        if !matches!(state.slots.get(&self.key), Some(Slot::Pending { id, .. }) if *id == self.id) {
            return;
        }
        match result {
            Ok(value) if !self.inner.grace.is_zero() && self.inner.max_remembered > 0 => {
                let now = self.inner.clock.now();
                let until = now + self.inner.grace;
                state.slots.insert(
                    self.key,
                    Slot::Done {
                        value: value.clone(),
                        until,
                    },
                );
                state.remembered.push_back((self.key, until));
                self.inner.expire(&mut state, now);
            }
            _ => {
                state.slots.remove(&self.key);
            }
        }
    }
}

impl<V, E> Drop for Completion<V, E> {
    fn drop(&mut self) {
        if self.finished {
            return;
        }
        let mut state = self.inner.lock();
        if matches!(state.slots.get(&self.key), Some(Slot::Pending { id, .. }) if *id == self.id) {
            state.slots.remove(&self.key);
        }
    }
}

/// SHA-256 of the refresh token, so the map never holds one.
fn token_key(refresh_token: &str) -> Key {
    let mut key = [0u8; 32];
    key.copy_from_slice(
        aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, refresh_token.as_bytes()).as_ref(),
    );
    key
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::clock::ManualClock;
    use std::sync::atomic::{AtomicUsize, Ordering};
    use tokio::sync::{Notify, oneshot};

    #[derive(Debug, Clone, PartialEq)]
    struct Fail(&'static str);

    impl From<RefreshInterrupted> for Fail {
        fn from(_: RefreshInterrupted) -> Self {
            Fail("interrupted")
        }
    }

    fn flights(clock: &ManualClock) -> SingleFlight<String, Fail> {
        SingleFlight::new(clock.shared())
    }

    /// A fake upstream: counts calls and answers only when released.
    #[derive(Clone, Default)]
    struct Upstream {
        calls: Arc<AtomicUsize>,
        release: Arc<Notify>,
    }

    impl Upstream {
        fn refresh(
            &self,
            answer: Result<&'static str, Fail>,
        ) -> impl Future<Output = Result<String, Fail>> + Send + 'static {
            self.calls.fetch_add(1, Ordering::SeqCst);
            let release = Arc::clone(&self.release);
            async move {
                release.notified().await;
                answer.map(str::to_owned)
            }
        }
    }

    async fn wait_for_waiters(tasks: &[tokio::task::JoinHandle<Result<String, Fail>>]) {
        // Let every spawned caller reach the flight before the upstream answers.
        for _ in 0..(tasks.len() * 4 + 10) {
            tokio::task::yield_now().await;
        }
    }

    #[tokio::test]
    async fn fifty_concurrent_callers_share_one_upstream_call() {
        let clock = ManualClock::at_unix_seconds(1_000);
        let sf = flights(&clock);
        let up = Upstream::default();
        let tasks: Vec<_> = (0..50)
            .map(|_| {
                let sf = sf.clone();
                let up = up.clone();
                tokio::spawn(
                    async move { sf.run("rt_1", None, || up.refresh(Ok("session_2"))).await },
                )
            })
            .collect();
        wait_for_waiters(&tasks).await;
        assert_eq!(sf.in_flight(), 1);
        up.release.notify_one();
        for t in tasks {
            assert_eq!(t.await.unwrap(), Ok("session_2".to_owned()));
        }
        assert_eq!(up.calls.load(Ordering::SeqCst), 1);
        assert_eq!(sf.in_flight(), 0);
    }

    #[tokio::test]
    async fn errors_are_shared_by_concurrent_callers_and_not_remembered() {
        let clock = ManualClock::at_unix_seconds(1_000);
        let sf = flights(&clock);
        let up = Upstream::default();
        let tasks: Vec<_> = (0..20)
            .map(|_| {
                let sf = sf.clone();
                let up = up.clone();
                tokio::spawn(async move {
                    sf.run("rt_1", None, || up.refresh(Err(Fail("invalid_grant"))))
                        .await
                })
            })
            .collect();
        wait_for_waiters(&tasks).await;
        up.release.notify_one();
        for t in tasks {
            assert_eq!(t.await.unwrap(), Err(Fail("invalid_grant")));
        }
        assert_eq!(up.calls.load(Ordering::SeqCst), 1);
        assert_eq!(sf.remembered(), 0);
        // The next caller tries again.
        let up2 = up.clone();
        up.release.notify_one();
        assert_eq!(
            sf.run("rt_1", None, || up2.refresh(Ok("s"))).await,
            Ok("s".to_owned())
        );
        assert_eq!(up.calls.load(Ordering::SeqCst), 2);
    }

    #[tokio::test]
    async fn different_tokens_do_not_block_each_other() {
        let clock = ManualClock::at_unix_seconds(1_000);
        let sf = flights(&clock);
        let (_hold, never) = oneshot::channel::<()>();
        let blocked = {
            let sf = sf.clone();
            tokio::spawn(async move {
                sf.run("rt_slow", None, || async move {
                    let _ = never.await;
                    Ok::<_, Fail>("slow".to_owned())
                })
                .await
            })
        };
        tokio::task::yield_now().await;
        let other = sf
            .run("rt_fast", None, || async {
                Ok::<_, Fail>("fast".to_owned())
            })
            .await;
        assert_eq!(other, Ok("fast".to_owned()));
        assert_eq!(sf.in_flight(), 1);
        blocked.abort();
    }

    #[tokio::test]
    async fn a_caller_for_another_organization_shares_the_running_refresh_of_its_token() {
        let clock = ManualClock::at_unix_seconds(1_000);
        let sf = flights(&clock);
        let up = Upstream::default();
        let tasks: Vec<_> = [None, Some("org_a"), Some("org_b"), Some("")]
            .into_iter()
            .map(|org| {
                let sf = sf.clone();
                let up = up.clone();
                tokio::spawn(async move { sf.run("rt_1", org, || up.refresh(Ok("s2"))).await })
            })
            .collect();
        wait_for_waiters(&tasks).await;
        assert_eq!(sf.in_flight(), 1);
        up.release.notify_one();
        for t in tasks {
            assert_eq!(t.await.unwrap(), Ok("s2".to_owned()));
        }
        assert_eq!(up.calls.load(Ordering::SeqCst), 1, "the token is sent once");
        // And within the grace window, whatever the organization.
        let r = sf
            .run("rt_1", Some("org_c"), || up.refresh(Ok("never")))
            .await;
        assert_eq!(r, Ok("s2".to_owned()));
        assert_eq!(up.calls.load(Ordering::SeqCst), 1);
    }

    /// Waits for `task`, failing the test rather than hanging when it does not end.
    async fn ended<T>(task: tokio::task::JoinHandle<T>) -> T {
        tokio::time::timeout(Duration::from_secs(10), task)
            .await
            .expect("the caller is still waiting")
            .unwrap()
    }

    #[tokio::test]
    async fn a_refused_refresh_for_another_organization_lets_the_joiner_try_its_own() {
        let clock = ManualClock::at_unix_seconds(1_000);
        // "timeout" stands for a transient error, after which the token may be spent.
        let sf = flights(&clock).retry_other_organizations_when(|e: &Fail| e.0 != "timeout");
        for (refusal, retried) in [
            ("organization_membership_not_found", true),
            ("timeout", false),
        ] {
            let token = format!("rt_{refusal}");
            let up = Upstream::default();
            let switch = {
                let (sf, up, token) = (sf.clone(), up.clone(), token.clone());
                tokio::spawn(async move {
                    sf.run_reporting(&token, Some("org_b"), || up.refresh(Err(Fail(refusal))))
                        .await
                })
            };
            let same = {
                let (sf, up, token) = (sf.clone(), up.clone(), token.clone());
                tokio::spawn(async move {
                    sf.run_reporting(&token, Some("org_b"), || up.refresh(Ok("never")))
                        .await
                })
            };
            let plain = {
                let (sf, up, token) = (sf.clone(), up.clone(), token.clone());
                tokio::spawn(async move {
                    sf.run_reporting(&token, Some("org_a"), || up.refresh(Ok("s2")))
                        .await
                })
            };
            for _ in 0..40 {
                tokio::task::yield_now().await;
            }
            assert_eq!(sf.in_flight(), 1, "{refusal}");
            up.release.notify_one();
            let refused = Err(Fail(refusal));
            assert_eq!(ended(switch).await, (refused.clone(), Origin::Own));
            assert_eq!(
                ended(same).await,
                (refused.clone(), Origin::Shared),
                "the same request shares the error"
            );
            if retried {
                // The other caller sends the token itself once the refused flight is over.
                while up.calls.load(Ordering::SeqCst) < 2 {
                    tokio::task::yield_now().await;
                }
                up.release.notify_one();
                assert_eq!(ended(plain).await, (Ok("s2".to_owned()), Origin::Own));
                assert_eq!(up.calls.load(Ordering::SeqCst), 2);
            } else {
                // After a transient error the token may be spent: shared, not resent.
                assert_eq!(ended(plain).await, (refused, Origin::Shared));
                assert_eq!(up.calls.load(Ordering::SeqCst), 1);
            }
        }
    }

    #[tokio::test]
    async fn the_result_says_whether_it_was_the_callers_own() {
        let clock = ManualClock::at_unix_seconds(1_000);
        let sf = flights(&clock);
        let up = Upstream::default();
        let first = {
            let (sf, up) = (sf.clone(), up.clone());
            tokio::spawn(async move {
                sf.run_reporting("rt_1", None, || up.refresh(Ok("s2")))
                    .await
            })
        };
        let joiner = {
            let (sf, up) = (sf.clone(), up.clone());
            tokio::spawn(async move {
                sf.run_reporting("rt_1", Some("org_b"), || up.refresh(Ok("never")))
                    .await
            })
        };
        for _ in 0..20 {
            tokio::task::yield_now().await;
        }
        up.release.notify_one();
        assert_eq!(ended(first).await, (Ok("s2".to_owned()), Origin::Own));
        assert_eq!(ended(joiner).await, (Ok("s2".to_owned()), Origin::Shared));
        let remembered = sf
            .run_reporting("rt_1", None, || up.refresh(Ok("never")))
            .await;
        assert_eq!(remembered, (Ok("s2".to_owned()), Origin::Shared));
        assert_eq!(up.calls.load(Ordering::SeqCst), 1);
    }

    #[tokio::test]
    async fn a_late_caller_follows_later_rotations_and_never_gets_a_spent_token() {
        // Results are the refresh token they hand out.
        let clock = ManualClock::at_unix_seconds(1_000);
        let sf = flights(&clock).follow_rotations(|v: &String| Some(v.as_str()));
        let calls = Arc::new(AtomicUsize::new(0));
        let call = |answer: &'static str| {
            let calls = Arc::clone(&calls);
            move || async move {
                calls.fetch_add(1, Ordering::SeqCst);
                Ok::<_, Fail>(answer.to_owned())
            }
        };
        // rt_1 -> rt_2 (a plain refresh), then rt_2 -> rt_3 (an organization switch).
        assert_eq!(sf.run("rt_1", None, call("rt_2")).await, Ok("rt_2".into()));
        assert_eq!(
            sf.run("rt_2", Some("org_b"), call("rt_3")).await,
            Ok("rt_3".into())
        );
        // A straggler still holding rt_1 gets rt_3, not the spent rt_2.
        assert_eq!(sf.run("rt_1", None, call("never")).await, Ok("rt_3".into()));
        assert_eq!(calls.load(Ordering::SeqCst), 2);
    }

    #[tokio::test]
    async fn old_token_right_after_rotation_gets_the_new_session_within_grace() {
        let clock = ManualClock::at_unix_seconds(1_000);
        let sf = flights(&clock);
        let calls = Arc::new(AtomicUsize::new(0));
        let call = |answer: &'static str| {
            let calls = Arc::clone(&calls);
            move || async move {
                calls.fetch_add(1, Ordering::SeqCst);
                Ok::<_, Fail>(answer.to_owned())
            }
        };
        assert_eq!(sf.run("rt_old", None, call("new")).await, Ok("new".into()));
        clock.advance(Duration::from_secs(9));
        assert_eq!(
            sf.run("rt_old", None, call("other")).await,
            Ok("new".into())
        );
        assert_eq!(calls.load(Ordering::SeqCst), 1);
        clock.advance(Duration::from_secs(2));
        assert_eq!(
            sf.run("rt_old", None, call("later")).await,
            Ok("later".into())
        );
        assert_eq!(calls.load(Ordering::SeqCst), 2);
    }

    #[tokio::test]
    async fn zero_grace_remembers_nothing() {
        let clock = ManualClock::at_unix_seconds(1_000);
        let sf: SingleFlight<String, Fail> =
            SingleFlight::with_limits(clock.shared(), Duration::ZERO, 10);
        sf.run("rt", None, || async { Ok("a".to_owned()) })
            .await
            .unwrap();
        assert_eq!(sf.remembered(), 0);
        let again = sf.run("rt", None, || async { Ok("b".to_owned()) }).await;
        assert_eq!(again, Ok("b".to_owned()));
    }

    #[tokio::test]
    async fn remembered_rotations_are_bounded_oldest_first() {
        let clock = ManualClock::at_unix_seconds(1_000);
        let sf: SingleFlight<String, Fail> =
            SingleFlight::with_limits(clock.shared(), Duration::from_secs(10), 3);
        for i in 0..5 {
            let token = format!("rt_{i}");
            sf.run(&token, None, || async move { Ok(format!("s{i}")) })
                .await
                .unwrap();
        }
        assert_eq!(sf.remembered(), 3);
        // rt_0 was dropped: a new call is made.
        let again = sf
            .run("rt_0", None, || async { Ok("fresh".to_owned()) })
            .await;
        assert_eq!(again, Ok("fresh".to_owned()));
        // rt_4 is still remembered.
        let kept = sf
            .run("rt_4", None, || async { Ok("fresh".to_owned()) })
            .await;
        assert_eq!(kept, Ok("s4".to_owned()));
    }

    #[tokio::test]
    async fn refresh_completes_and_is_remembered_when_its_caller_goes_away() {
        let clock = ManualClock::at_unix_seconds(1_000);
        let sf = flights(&clock);
        let (tx, rx) = oneshot::channel::<()>();
        let (done_tx, done_rx) = oneshot::channel::<()>();
        let caller = {
            let sf = sf.clone();
            tokio::spawn(async move {
                sf.run("rt_1", None, || async move {
                    let _ = rx.await;
                    let _ = done_tx.send(());
                    Ok::<_, Fail>("new".to_owned())
                })
                .await
            })
        };
        tokio::task::yield_now().await;
        caller.abort();
        let _ = caller.await;
        tx.send(()).unwrap();
        done_rx.await.unwrap();
        // Let the refresh task record its result.
        for _ in 0..10 {
            tokio::task::yield_now().await;
        }
        let late = sf
            .run("rt_1", None, || async { Ok("other".to_owned()) })
            .await;
        assert_eq!(late, Ok("new".to_owned()));
    }

    #[tokio::test]
    async fn a_panicking_refresh_is_an_interrupted_error_and_is_forgotten() {
        let clock = ManualClock::at_unix_seconds(1_000);
        let sf = flights(&clock);
        let r = sf
            .run("rt_1", None, || async {
                if true {
                    panic!("refresh function bug");
                }
                Ok::<String, Fail>(String::new())
            })
            .await;
        assert_eq!(r, Err(Fail("interrupted")));
        assert_eq!(sf.in_flight(), 0);
        let r = sf.run("rt_1", None, || async { Ok("ok".to_owned()) }).await;
        assert_eq!(r, Ok("ok".to_owned()));
    }

    #[test]
    fn interrupted_refresh_is_a_transient_client_error() {
        assert!(ClientError::from(RefreshInterrupted).is_transient());
    }
}
