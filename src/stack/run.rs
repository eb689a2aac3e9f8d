//! A run: two or more consecutive entries with [`Hooks`], composed as one level.
//!
//! Each entry of a run is its plugin's hooks, not its service: the run calls every entry's
//! request hook in order, the service inside once, every response hook in the reverse order,
//! and at the body's end every entry's trailers and end hooks, innermost first. A run of N
//! entries costs one level (one call, one future, one poll) instead of N, and the entries'
//! states live in one `Vec`, a spare of the thread's once warm. An entry that answers (a
//! preflight, a 429, the stats endpoints) ends the request phase: the entries inside it and
//! the service do not run, and the entries outside it see its answer.

use std::convert::Infallible;
use std::future::Future;
use std::mem;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll, ready};

use bytes::Bytes;
use http::{HeaderMap, Request, Response};
use pin_project_lite::pin_project;
use tower_layer::Layer;
use tower_plugins_core::{
    AnswerBody, Before, BodyEnd, GuardedBody, Hooks, KeptFuture, OnBodyEnd, Plugin, PluginBody,
    PluginFuture, Spares,
};
use tower_service::Service;

use super::built_in::{self, built_ins};
use super::registry::{AnyLayer, Step};
use super::when::When;
use crate::Body;

macro_rules! run_entries {
    ($($variant:ident: $name:ident, $feature:literal, $layer:ty;)*) => {
        /// One entry's hooks.
        #[derive(Clone)]
        enum EntryHooks {
            $($variant(built_in::$name::Hooks),)*
        }

        /// One entry's state for a request; `Skipped` outside the entry's `when`.
        enum EntryState {
            Skipped,
            $($variant(<built_in::$name::Hooks as Hooks>::State),)*
        }

        impl EntryHooks {
            /// The hooks of `layer`, when it has them as configured.
            fn of(layer: &AnyLayer) -> Option<Self> {
                match layer {
                    $(AnyLayer::$variant(l) => Plugin::hooks(l).map(EntryHooks::$variant),)*
                    AnyLayer::Custom(_) | AnyLayer::Run(_) => None,
                }
            }

            #[inline]
            fn on_request<B>(&self, req: &mut Request<B>) -> Before<EntryState> {
                match self {
                    $(EntryHooks::$variant(h) => match h.on_request(req) {
                        Before::Continue(s) => Before::Continue(EntryState::$variant(s)),
                        Before::Answer(res) => Before::Answer(res),
                    },)*
                }
            }

            #[inline]
            fn on_response<B>(&self, state: &mut EntryState, res: &mut Response<B>) {
                match (self, state) {
                    $((EntryHooks::$variant(h), EntryState::$variant(s)) => h.on_response(s, res),)*
                    _ => {}
                }
            }

            #[inline]
            fn on_trailers(&self, state: &mut EntryState, trailers: &HeaderMap) {
                match (self, state) {
                    $((EntryHooks::$variant(h), EntryState::$variant(s)) => {
                        h.on_trailers(s, trailers);
                    })*
                    _ => {}
                }
            }

            #[inline]
            fn on_body_end(&self, state: EntryState, end: BodyEnd) {
                match (self, state) {
                    $((EntryHooks::$variant(h), EntryState::$variant(s)) => h.on_body_end(s, end),)*
                    _ => {}
                }
            }
        }
    };
}

built_ins!(run_entries);

/// An entry of a run: its hooks, and the requests it applies to.
#[derive(Clone)]
struct Entry {
    hooks: EntryHooks,
    when: Option<Arc<When>>,
}

/// The layer of a run: its entries, outermost first.
#[derive(Clone)]
pub(crate) struct RunLayer {
    entries: Arc<[Entry]>,
}

/// `steps` with every run of two or more consecutive entries with hooks made one step.
pub(crate) fn runs(steps: Vec<Step>) -> Vec<Step> {
    let mut out = Vec::with_capacity(steps.len());
    let mut run: Vec<(Entry, Step)> = Vec::new();
    for step in steps {
        match EntryHooks::of(&step.layer) {
            Some(hooks) => {
                let when = step.when.clone();
                run.push((Entry { hooks, when }, step));
            }
            None => {
                close_run(&mut run, &mut out);
                out.push(step);
            }
        }
    }
    close_run(&mut run, &mut out);
    out
}

/// Ends the run being gathered: one step when it has two entries or more, else its step.
fn close_run(run: &mut Vec<(Entry, Step)>, out: &mut Vec<Step>) {
    if run.len() < 2 {
        out.extend(run.drain(..).map(|(_, step)| step));
        return;
    }
    let entries = run.drain(..).map(|(entry, _)| entry).collect();
    out.push(Step {
        layer: AnyLayer::Run(RunLayer { entries }),
        when: None,
    });
}

impl<S> Layer<S> for RunLayer {
    type Service = Run<S>;

    fn layer(&self, inner: S) -> Run<S> {
        Run {
            entries: self.entries.clone(),
            inner,
        }
    }
}

/// The service of a run over `S`.
#[derive(Clone)]
pub(crate) struct Run<S> {
    entries: Arc<[Entry]>,
    inner: S,
}

impl<S> Run<S> {
    /// The inner service, as every plugin service's `get_mut`.
    pub(crate) fn get_mut(&mut self) -> &mut S {
        &mut self.inner
    }
}

impl<S, B> Service<Request<Body>> for Run<S>
where
    S: Service<Request<Body>, Response = Response<B>, Error = Infallible>,
    B: http_body::Body<Data = Bytes>,
{
    type Response = Response<RunBody<B>>;
    type Error = Infallible;
    type Future = RunFuture<S::Future>;

    #[inline]
    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        self.inner.poll_ready(cx)
    }

    #[inline]
    fn call(&mut self, mut req: Request<Body>) -> Self::Future {
        let mut states = Spares::take(&SPARE_STATES, self.entries.len());
        let mut answer = None;
        for entry in self.entries.iter() {
            if entry.when.as_ref().is_some_and(|w| !w.applies(&req)) {
                states.push(EntryState::Skipped);
                continue;
            }
            match entry.hooks.on_request(&mut req) {
                Before::Continue(state) => states.push(state),
                Before::Answer(res) => {
                    answer = Some(res);
                    break;
                }
            }
        }
        let stage = match answer {
            None => Stage::Inner {
                fut: self.inner.call(req),
            },
            Some(res) => Stage::Answer {
                res: Some(Box::new(res)),
            },
        };
        RunFuture {
            stage,
            ends: Ends {
                entries: self.entries.clone(),
                states,
            },
        }
    }
}

/// The entries of a run that saw a request, with their states: their later hooks.
pub(crate) struct Ends {
    entries: Arc<[Entry]>,
    states: Vec<EntryState>,
}

impl Ends {
    /// The entries that saw the request and their states, innermost first.
    fn each(&mut self) -> impl Iterator<Item = (&Entry, &mut EntryState)> {
        let seen = &self.entries[..self.states.len()];
        seen.iter().zip(self.states.iter_mut()).rev()
    }

    #[inline]
    fn respond<B>(&mut self, res: &mut Response<B>) {
        for (entry, state) in self.each() {
            entry.hooks.on_response(state, res);
        }
    }

    /// The body ended: every end hook, once (the states are gone after it).
    #[inline]
    fn end(&mut self, end: BodyEnd) {
        while let Some(state) = self.states.pop() {
            self.entries[self.states.len()]
                .hooks
                .on_body_end(state, end);
        }
    }
}

thread_local! {
    /// States' `Vec`s of ended requests, for the next requests' runs.
    static SPARE_STATES: Spares<EntryState> = const { Spares::new() };
}

/// The most entries a spare states' `Vec` is kept for.
const MAX_SPARE_ENTRIES: usize = 32;

impl Drop for Ends {
    /// The states' `Vec` goes to this thread's spares (states still in it, of a request
    /// dropped before its response, are dropped).
    #[inline]
    fn drop(&mut self) {
        let states = mem::take(&mut self.states);
        Spares::give_back(&SPARE_STATES, states, MAX_SPARE_ENTRIES);
    }
}

impl OnBodyEnd for Ends {
    #[inline]
    fn on_trailers(&mut self, trailers: &HeaderMap) {
        for (entry, state) in self.each() {
            entry.hooks.on_trailers(state, trailers);
        }
    }

    #[inline]
    fn on_body_end(mut self, end: BodyEnd) {
        self.end(end);
    }
}

pin_project! {
    /// The future of a [`Run`].
    pub(crate) struct RunFuture<F> {
        #[pin]
        stage: Stage<F>,
        ends: Ends,
    }
}

pin_project! {
    #[project = StageProj]
    enum Stage<F> {
        Inner { #[pin] fut: F },
        // Boxed: answers are rare, and inline they would make every run's future that large.
        Answer { res: Option<Box<Response<Bytes>>> },
    }
}

impl<F, B> RunFuture<F>
where
    F: Future<Output = Result<Response<B>, Infallible>>,
{
    /// The response, from the service inside or an entry's answer (its body made by
    /// `answer`), its head through every response hook.
    #[inline]
    fn poll_head<T>(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        inner: impl FnOnce(B) -> T,
        answer: impl FnOnce(Bytes) -> T,
    ) -> Poll<Response<T>> {
        let this = self.project();
        let mut res = match this.stage.project() {
            StageProj::Inner { fut } => match ready!(fut.poll(cx)) {
                Ok(res) => res.map(inner),
                Err(never) => match never {},
            },
            StageProj::Answer { res } => {
                // Polled after completion: an empty answer rather than a panic.
                let res = res.take().map(|r| *r).unwrap_or_default();
                res.map(answer)
            }
        };
        this.ends.respond(&mut res);
        Poll::Ready(res)
    }
}

/// The response body of a [`Run`] composed as a tower layer: the inner body or an entry's
/// answer, counted to its end for the entries' end hooks.
pub(crate) type RunBody<B> = GuardedBody<PluginBody<B>, Ends>;

impl<F, B> PluginFuture for RunFuture<F>
where
    F: Future<Output = Result<Response<B>, Infallible>>,
    B: http_body::Body<Data = Bytes>,
{
    type Body = RunBody<B>;
    type Error = Infallible;

    #[inline]
    fn poll_with<T>(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        wrap: impl FnOnce(RunBody<B>) -> T,
    ) -> Poll<Result<Response<T>, Infallible>> {
        let res = ready!(
            self.as_mut()
                .poll_head(cx, PluginBody::inner, PluginBody::full)
        );
        // The states go with the body; the future keeps none (an empty `Vec` allocates
        // nothing).
        let this = self.project().ends;
        let ends = Ends {
            entries: this.entries.clone(),
            states: mem::take(&mut this.states),
        };
        Poll::Ready(Ok(res.map(|body| wrap(GuardedBody::new(body, ends)))))
    }
}

impl<F, B> KeptFuture for RunFuture<F>
where
    F: Future<Output = Result<Response<B>, Infallible>>,
    B: AnswerBody,
{
    type Inner = F;
    type Body = B;
    type Error = Infallible;

    #[inline]
    fn poll_kept(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Result<Response<B>, Infallible>> {
        Poll::Ready(Ok(ready!(self.poll_head(cx, |b| b, B::answer))))
    }

    #[inline]
    fn inner_kept(self: Pin<&mut Self>) -> Option<Pin<&mut F>> {
        match self.project().stage.project() {
            StageProj::Inner { fut } => Some(fut),
            StageProj::Answer { .. } => None,
        }
    }

    #[inline]
    fn on_trailers(self: Pin<&mut Self>, trailers: &HeaderMap) {
        self.project().ends.on_trailers(trailers);
    }

    #[inline]
    fn on_body_end(self: Pin<&mut Self>, end: BodyEnd) {
        self.project().ends.end(end);
    }
}

tower_plugins_core::plugin_future!(RunFuture);
