//! LLM-guided evolution: islands of configs, with a language model as the mutation and crossover operator
//! and classical operators covering for it whenever it fails.
//!
//! # The search
//!
//! In OpenEvolve's spirit, but sound. The population is split into islands (default 2), each keeping its
//! best `population_size` valid configs. The first batch is uniform random and is dealt out to the islands.
//! After that each batch is one island's generation: parents are drawn from the island by tournament, and
//! the model is shown the space and its constraints, the island's best configs with their scores, the
//! run's recent failures with their reasons, and the parents, and is asked for a batch of new configs
//! (mutations and crossovers of the parents). Every few generations each island's best config migrates to
//! the next island (a ring), so a good region found on one island is not lost to the others while the
//! islands still explore apart.
//!
//! # Model output is data
//!
//! The reply is parsed (the schema's object, or plain JSON found in prose or code fences), and every
//! proposed config is validated value by value against the [`Space`] — names, allowed values, constraints,
//! and the recorded set of a replay table — then deduplicated against the history and the batch. A
//! rejected proposal is counted with its reason, shown to the model in the next prompt as a failure, and
//! replaced by a classical operator (a one- or two-step neighbour of a parent, or a uniform crossover of two
//! parents repaired to the nearest valid config), so a weak model never shrinks a batch. Nothing the model
//! writes is executed.
//!
//! # Fallback
//!
//! With no endpoint configured ([`LlmEvolution::from_env`]) the whole run is the built-in search, and one
//! line on stderr says so. When the endpoint fails mid-run — bad credentials, a vanished server, retries
//! exhausted, or three failed calls in a row — one line on stderr says so and the islands go on with the
//! classical operators alone: the history is the tuner's and is untouched, and nothing here makes
//! `tune()` fail. [`Strategy::report`] says `fallback: true` in both cases.
//!
//! # Overlap
//!
//! When evaluating a batch takes a while (a real GPU compiling and timing kernels), the request for the
//! next island's batch is sent on a background thread as soon as the current batch is handed out, and its
//! reply is used at the next `propose`. That prompt cannot include the batch still being measured, and a
//! proposal that repeats one of its configs is rejected as a duplicate when the reply is used: the price
//! of hiding the model's latency. With a fast objective (a replay table) there is nothing to hide, so by
//! default ([`Overlap::Auto`]) requests are made in line, with the freshest history.

use std::collections::{BTreeMap, VecDeque};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use rand::seq::SliceRandom;
use rand::{Rng as _, RngCore};

use super::{Context, Strategy, StrategyKind};
use crate::trial::Trial;
use tuner_llm::json::{batch_schema, extract_configs, RawConfig};
use tuner_llm::{price, ChatRequest, LlmClient, LlmConfig, LlmError, LlmSettings, Message, Reply, Usage};
use tuner_spec::space::{Param, Point, Space};
use tuner_spec::value::{Value, ValueType};

/// Failures kept, most recent last.
const RECENT_FAILURES: usize = 8;
/// Failures shown in the prompt.
const SHOWN_FAILURES: usize = 4;
/// Best configs of the island shown in the prompt.
const SHOWN_BEST: usize = 5;
/// Failed calls in a row after which the endpoint is given up.
const MAX_FAILED_CALLS: usize = 3;

/// When to request the next batch while the current one is evaluated.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Overlap {
    /// When the last batch took at least half a second to evaluate.
    Auto,
    Always,
    Never,
}

/// Where a proposed point came from.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Origin {
    Random,
    Llm,
    Mutation,
    Crossover,
}

/// One config the model proposed and what became of it.
#[derive(Clone, Debug)]
pub struct JournalEntry {
    /// The object as the model wrote it (compact JSON).
    pub raw: String,
    /// The point, when it passed validation and deduplication.
    pub accepted: Option<Point>,
    /// Why not, when it did not.
    pub rejected: Option<String>,
}

/// Every proposal the model made in a run, shared so callers (tests, benchmarks) can read it after the
/// strategy has been moved into a tuner.
pub type Journal = Arc<Mutex<Vec<JournalEntry>>>;

#[derive(Default)]
struct Island {
    /// Valid members, best first, at most `population_size`.
    members: Vec<(Point, f64)>,
}

impl Island {
    fn best(&self) -> Option<&(Point, f64)> {
        self.members.first()
    }

    fn insert(&mut self, p: Point, s: f64, cap: usize) {
        if self.members.iter().any(|(q, _)| *q == p) {
            return;
        }
        let at = self.members.partition_point(|(_, t)| *t >= s);
        self.members.insert(at, (p, s));
        self.members.truncate(cap.max(2));
    }
}

/// A request sent ahead, on another thread.
struct Prefetch {
    island: usize,
    parents: Vec<(Point, f64)>,
    want: usize,
    handle: JoinHandle<Result<Reply, LlmError>>,
}

#[derive(Default)]
struct Stats {
    calls: u64,
    errors: u64,
    proposed: u64,
    accepted: u64,
    rejected: BTreeMap<&'static str, u64>,
    usage: Usage,
    seconds: f64,
    overlapped: u64,
    improvements_llm: u64,
    improvements_classical: u64,
    /// Calls whose reply was constrained by the JSON schema.
    structured: u64,
    /// Seconds the tuner waited on the model (in-line calls, and the unhidden rest of prefetched ones).
    waited: f64,
}

/// The LLM-guided strategy; see the module docs.
pub struct LlmEvolution {
    client: Option<Arc<LlmClient>>,
    endpoint: String,
    model: String,
    /// The whole search when no endpoint is configured.
    builtin: Option<Box<dyn Strategy>>,
    fallback_reason: Option<String>,
    n_islands: usize,
    migration_interval: usize,
    max_llm_batch: usize,
    overlap: Overlap,
    description: Option<String>,
    islands: Vec<Island>,
    next_island: usize,
    generations: usize,
    /// The last batch handed out: point → (island, origin).
    pending: Vec<(Point, usize, Origin)>,
    prefetch: Option<Prefetch>,
    failures: VecDeque<(String, String)>,
    failed_calls: usize,
    last_eval: Duration,
    stats: Stats,
    journal: Journal,
    trace: Option<std::path::PathBuf>,
}

impl LlmEvolution {
    /// Evolution guided by the model behind `client`.
    pub fn new(client: LlmClient) -> LlmEvolution {
        let endpoint = client.config().display_url();
        let model = client.config().model.clone();
        LlmEvolution::with_client(Some(Arc::new(client)), endpoint, model)
    }

    fn with_client(client: Option<Arc<LlmClient>>, endpoint: String, model: String) -> LlmEvolution {
        LlmEvolution {
            client,
            endpoint,
            model,
            builtin: None,
            fallback_reason: None,
            n_islands: 2,
            migration_interval: 4,
            max_llm_batch: 16,
            overlap: Overlap::Auto,
            description: None,
            islands: Vec::new(),
            next_island: 0,
            generations: 0,
            pending: Vec::new(),
            prefetch: None,
            failures: VecDeque::new(),
            failed_calls: 0,
            last_eval: Duration::ZERO,
            stats: Stats::default(),
            journal: Journal::default(),
            trace: None,
        }
    }

    /// Evolution guided by the endpoint in the environment (`OPENAI_API_KEY`, `OPENAI_BASE_URL`,
    /// `AUTOTUNE_LLM_MODEL`); with none configured, or one that cannot be used, the built-in search,
    /// said in one line on stderr. Never fails.
    pub fn from_env() -> LlmEvolution {
        LlmEvolution::from_settings(&LlmSettings::from_env())
    }

    /// Evolution guided by the endpoint in `settings`, as [`LlmEvolution::from_env`] with settings an
    /// entry point read once.
    pub fn from_settings(settings: &LlmSettings) -> LlmEvolution {
        match settings.endpoint.clone().map(LlmClient::new) {
            Some(Ok(client)) => LlmEvolution { trace: settings.trace.clone(), ..LlmEvolution::new(client) },
            Some(Err(e)) => LlmEvolution::builtin(format!("the LLM endpoint cannot be used ({e})")),
            None => {
                LlmEvolution::builtin("no LLM endpoint configured (set OPENAI_API_KEY or OPENAI_BASE_URL)".to_owned())
            }
        }
    }

    /// The built-in search in LLM clothing: reports `fallback: true` and `reason`.
    fn builtin(reason: String) -> LlmEvolution {
        let inner = StrategyKind::Surrogate.build();
        eprintln!("autotune: {reason}; using the built-in `{}` search", inner.name());
        let mut s = LlmEvolution::with_client(None, String::new(), String::new());
        s.builtin = Some(inner);
        s.fallback_reason = Some(reason);
        s
    }

    /// A client from `config`, or the built-in search when it cannot be built.
    pub fn with_config(config: LlmConfig) -> LlmEvolution {
        match LlmClient::new(config) {
            Ok(c) => LlmEvolution::new(c),
            Err(e) => LlmEvolution::builtin(format!("the LLM endpoint cannot be used ({e})")),
        }
    }

    /// The number of islands (at least 1; default 2).
    pub fn islands(mut self, n: usize) -> Self {
        self.n_islands = n.max(1);
        self
    }
    /// Island generations between migrations of elites (default 4).
    pub fn migration_interval(mut self, n: usize) -> Self {
        self.migration_interval = n.max(1);
        self
    }
    /// The most configs asked of the model per call (default 16); the rest of a batch is classical.
    pub fn max_llm_batch(mut self, n: usize) -> Self {
        self.max_llm_batch = n;
        self
    }
    pub fn overlap(mut self, o: Overlap) -> Self {
        self.overlap = o;
        self
    }
    /// What is being tuned, in a sentence for the prompt (kernel, problem size, GPU).
    pub fn describe(mut self, text: impl Into<String>) -> Self {
        self.description = Some(text.into());
        self
    }
    /// Appends every prompt and reply to `path` as JSON Lines (`{"prompt": …}`, `{"reply": …}`), to see
    /// what the model is told and what it answers; `from_env` reads `AUTOTUNE_LLM_TRACE`. No key or header
    /// is written, only the messages.
    pub fn trace_to(mut self, path: impl Into<std::path::PathBuf>) -> Self {
        self.trace = Some(path.into());
        self
    }

    fn trace(&self, kind: &str, text: &str) {
        let Some(path) = &self.trace else { return };
        let line = serde_json::json!({ kind: text }).to_string() + "\n";
        let written = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(path)
            .and_then(|mut f| std::io::Write::write_all(&mut f, line.as_bytes()));
        if let Err(e) = written {
            eprintln!("autotune: cannot write the LLM trace {}: {e}", path.display());
        }
    }

    /// The record of every proposal the model made.
    pub fn journal(&self) -> Journal {
        self.journal.clone()
    }

    /// Whether the model is no longer (or never was) asked.
    pub fn fallback(&self) -> bool {
        self.client.is_none()
    }

    fn give_up(&mut self, why: String) {
        if self.client.take().is_some() {
            eprintln!("autotune: {why}; classical operators carry on without the LLM");
            self.fallback_reason = Some(why);
        }
        self.prefetch = None;
    }

    fn overlapping(&self) -> bool {
        match self.overlap {
            Overlap::Always => true,
            Overlap::Never => false,
            Overlap::Auto => self.last_eval >= Duration::from_millis(500),
        }
    }

    /// Tournament selection of up to `k` distinct parents from an island.
    fn parents(&self, island: usize, k: usize, rng: &mut impl RngCore) -> Vec<(Point, f64)> {
        let members = &self.islands[island].members;
        let mut out: Vec<(Point, f64)> = Vec::new();
        for _ in 0..k * 4 {
            if out.len() >= k.min(members.len()) {
                break;
            }
            let a = &members[rng.gen_range(0..members.len())];
            let b = &members[rng.gen_range(0..members.len())];
            let w = if a.1 >= b.1 { a } else { b };
            if !out.iter().any(|(p, _)| *p == w.0) {
                out.push(w.clone());
            }
        }
        out
    }

    fn migrate(&mut self, cap: usize) {
        let k = self.islands.len();
        if k < 2 {
            return;
        }
        let elites: Vec<Option<(Point, f64)>> = self.islands.iter().map(|i| i.best().cloned()).collect();
        for (i, e) in elites.into_iter().enumerate() {
            if let Some((p, s)) = e {
                self.islands[(i + 1) % k].insert(p, s, cap);
            }
        }
    }

    /// The request for `want` children of `parents` on `island`.
    ///
    /// The prompt is kept short, and its fixed part (space, constraints, task) comes first: small local
    /// models read prompts at tens of tokens per second on a CPU, and a server that caches the prompt
    /// prefix (llama.cpp does) then only reads the part that changed. Configs are shown as the compact
    /// JSON the model should write back.
    fn request(&self, ctx: &mut Context<'_>, island: usize, parents: &[(Point, f64)], want: usize) -> ChatRequest {
        let space = ctx.space;
        let cfg = |p: &Point| serde_json::to_string(&space.config(p).to_json()).unwrap_or_default();
        let mut u = String::new();
        if let Some(d) = &self.description {
            u.push_str(&format!("Kernel: {d}\n"));
        }
        let params: Vec<String> = space.params().iter().map(|p| format!("{} {}", p.name, allowed_values(p))).collect();
        u.push_str(&format!("Parameters (allowed values): {}\n", params.join("; ")));
        if space.constraints().is_empty() {
            u.push_str("Constraints: none\n");
        } else {
            let c: Vec<String> = space.constraints().iter().map(|c| c.expr.source().to_owned()).collect();
            u.push_str(&format!("Constraints: {}\n", c.join("; ")));
        }
        if let Some(valid) = space.valid_count() {
            if (valid as u128) < space.grid_size() {
                u.push_str(&format!("Only {valid} of the {} combinations can run.\n", space.grid_size()));
            }
        }
        u.push_str(&format!(
            "Task: propose {want} new configs likely to score higher (higher is better) than the parents: \
             change one or two values of a parent, or mix the values of two parents. Never repeat a config \
             shown below.\n"
        ));
        let best = &self.islands[island].members;
        if !best.is_empty() {
            u.push_str("\nBest so far:\n");
            for (p, s) in best.iter().take(SHOWN_BEST) {
                u.push_str(&format!("{} {}\n", cfg(p), fmt_score(*s)));
            }
        }
        if !self.failures.is_empty() {
            u.push_str("\nFailed:\n");
            for (c, why) in self.failures.iter().rev().take(SHOWN_FAILURES) {
                u.push_str(&format!("{c} {why}\n"));
            }
        }
        u.push_str("\nParents:\n");
        for (p, s) in parents {
            u.push_str(&format!("{} {}\n", cfg(p), fmt_score(*s)));
        }
        u.push_str(&format!("\nAnswer with {{\"configs\": [...]}} holding {want} configs, on one line.\n"));
        self.trace("prompt", &u);
        ChatRequest {
            messages: vec![
                Message::system(
                    "You tune GPU kernels: you are the mutation and crossover operator of an evolutionary \
                     search. Answer with JSON only.",
                ),
                Message::user(u),
            ],
            temperature: Some(ctx.temperature),
            seed: Some(ctx.rng.next_u64() >> 1),
            schema: Some(batch_schema(space, want)),
        }
    }

    /// Asks the model (or takes the prefetched reply) and returns the accepted children.
    fn llm_children(&mut self, ctx: &mut Context<'_>, reply: Result<Reply, LlmError>, want: usize) -> Vec<Point> {
        self.stats.calls += 1;
        let reply = match reply {
            Ok(r) => r,
            Err(e) => {
                self.stats.errors += 1;
                self.failed_calls += 1;
                if e.is_fatal() || self.failed_calls >= MAX_FAILED_CALLS {
                    self.give_up(e.to_string());
                }
                return Vec::new();
            }
        };
        self.failed_calls = 0;
        self.trace("reply", &reply.content);
        self.stats.usage += reply.usage;
        self.stats.seconds += reply.elapsed.as_secs_f64();
        self.stats.structured += reply.structured as u64;
        let names: Vec<String> = ctx.space.params().iter().map(|p| p.name.clone()).collect();
        let raw = extract_configs(&reply.content, &names);
        let mut journal = self.journal.lock().unwrap_or_else(|p| p.into_inner());
        if raw.is_empty() {
            self.stats.proposed += 1;
            *self.stats.rejected.entry("no_json").or_default() += 1;
            let why = "reply holds no JSON config".to_owned();
            journal.push(JournalEntry { raw: truncate(&reply.content, 200), accepted: None, rejected: Some(why) });
            return Vec::new();
        }
        let mut out: Vec<Point> = Vec::new();
        for r in raw.iter().take(want.max(1) * 2) {
            self.stats.proposed += 1;
            let text = serde_json::to_string(r).unwrap_or_default();
            let verdict = validate(ctx.space, r).and_then(|p| {
                if ctx.seen(&p) {
                    Err(("duplicate", "already evaluated".to_owned()))
                } else if out.contains(&p) {
                    Err(("duplicate", "proposed twice in one reply".to_owned()))
                } else {
                    Ok(p)
                }
            });
            match verdict {
                Ok(p) if out.len() < want => {
                    self.stats.accepted += 1;
                    journal.push(JournalEntry { raw: text, accepted: Some(p.clone()), rejected: None });
                    out.push(p);
                }
                Ok(_) => {
                    *self.stats.rejected.entry("surplus").or_default() += 1;
                    let why = "more configs than asked for".to_owned();
                    journal.push(JournalEntry { raw: text, accepted: None, rejected: Some(why) });
                }
                Err((class, why)) => {
                    *self.stats.rejected.entry(class).or_default() += 1;
                    self.failures.push_back((truncate(&text, 120), format!("rejected: {why}")));
                    if self.failures.len() > RECENT_FAILURES {
                        self.failures.pop_front();
                    }
                    journal.push(JournalEntry { raw: text, accepted: None, rejected: Some(why) });
                }
            }
        }
        out
    }

    /// Classical children of `parents` to fill a batch: neighbours and repaired crossovers.
    fn classical(
        &self,
        ctx: &mut Context<'_>,
        parents: &[(Point, f64)],
        taken: &[Point],
        n: usize,
    ) -> Vec<(Point, Origin)> {
        let mut out: Vec<(Point, Origin)> = Vec::new();
        let fresh = |p: &Point, out: &[(Point, Origin)]| {
            !ctx.seen.contains(p) && !taken.contains(p) && !out.iter().any(|(q, _)| q == p)
        };
        for _ in 0..n * 8 {
            if out.len() >= n || parents.is_empty() {
                break;
            }
            let a = &parents[ctx.rng.gen_range(0..parents.len())].0;
            if parents.len() >= 2 && ctx.rng.gen_bool(0.5) {
                let b = &parents[ctx.rng.gen_range(0..parents.len())].0;
                let child =
                    Point(a.0.iter().zip(&b.0).map(|(x, y)| if ctx.rng.gen_bool(0.5) { *x } else { *y }).collect());
                let child = ctx.space.repair(&child, ctx.rng);
                if fresh(&child, &out) {
                    out.push((child, Origin::Crossover));
                    continue;
                }
            }
            let radius = if ctx.rng.gen_bool(0.75) { 1 } else { 2 };
            let near: Vec<Point> =
                ctx.space.neighbours_within(a, radius).into_iter().filter(|q| fresh(q, &out)).collect();
            if let Some(q) = near.choose(ctx.rng) {
                out.push((q.clone(), Origin::Mutation));
            }
        }
        // A region that is used up: random unseen points keep the batch full.
        for _ in 0..n * 16 {
            if out.len() >= n {
                break;
            }
            let p = ctx.space.random_point(ctx.rng);
            if fresh(&p, &out) {
                out.push((p, Origin::Random));
            }
        }
        out
    }

    fn spawn(&self, req: ChatRequest) -> Option<JoinHandle<Result<Reply, LlmError>>> {
        let client = self.client.clone()?;
        std::thread::Builder::new().name("autotune-llm".into()).spawn(move || client.chat(&req)).ok()
    }
}

impl Strategy for LlmEvolution {
    fn name(&self) -> &str {
        "llm"
    }

    fn propose(&mut self, ctx: &mut Context<'_>, n: usize) -> Vec<Point> {
        if let Some(b) = &mut self.builtin {
            return b.propose(ctx, n);
        }
        let cap = ctx.population_size;
        if self.islands.is_empty() {
            self.islands = (0..self.n_islands).map(|_| Island::default()).collect();
        }
        self.pending.clear();
        // Until every island has a member, batches are random and dealt out round-robin.
        if self.islands.iter().any(|i| i.members.is_empty()) {
            let mut out = Vec::new();
            for _ in 0..n * 32 {
                if out.len() >= n {
                    break;
                }
                let p = ctx.space.random_point(ctx.rng);
                if !ctx.seen(&p) && !out.contains(&p) {
                    out.push(p);
                }
            }
            let empty: Vec<usize> = (0..self.islands.len()).filter(|&i| self.islands[i].members.is_empty()).collect();
            for (k, p) in out.iter().enumerate() {
                self.pending.push((p.clone(), empty[k % empty.len()], Origin::Random));
            }
            return out;
        }
        if self.generations > 0 && self.generations % (self.migration_interval * self.islands.len()) == 0 {
            self.migrate(cap);
        }
        // The island whose reply was prefetched, else the next in turn.
        let prefetched = self.prefetch.take();
        let island = prefetched.as_ref().map_or(self.next_island % self.islands.len(), |p| p.island);
        self.next_island = (island + 1) % self.islands.len();

        let mut children: Vec<(Point, Origin)> = Vec::new();
        let parents;
        if let Some(pre) = prefetched {
            parents = pre.parents;
            let t0 = Instant::now();
            let reply = pre.handle.join().unwrap_or_else(|_| {
                Err(LlmError::Malformed { url: self.endpoint.clone(), reason: "the request thread panicked".into() })
            });
            self.stats.waited += t0.elapsed().as_secs_f64();
            self.stats.overlapped += 1;
            let want = pre.want.min(n);
            children.extend(self.llm_children(ctx, reply, want).into_iter().map(|p| (p, Origin::Llm)));
        } else {
            parents = self.parents(island, 2, ctx.rng);
            if self.client.is_some() && self.max_llm_batch > 0 {
                let want = n.min(self.max_llm_batch);
                let req = self.request(ctx, island, &parents, want);
                let t0 = Instant::now();
                let reply = self.client.as_ref().map(|c| c.chat(&req)).expect("checked above");
                self.stats.waited += t0.elapsed().as_secs_f64();
                children.extend(self.llm_children(ctx, reply, want).into_iter().map(|p| (p, Origin::Llm)));
            }
        }
        let taken: Vec<Point> = children.iter().map(|(p, _)| p.clone()).collect();
        // Classical children come from a wider tournament than the model's two parents.
        let mut pool = self.parents(island, 4, ctx.rng);
        pool.extend(parents.iter().filter(|p| !pool.contains(p)).cloned().collect::<Vec<_>>());
        let fill = self.classical(ctx, &pool, &taken, n.saturating_sub(children.len()));
        children.extend(fill);
        children.truncate(n);
        for (p, o) in &children {
            self.pending.push((p.clone(), island, *o));
        }
        let batch: Vec<Point> = children.into_iter().map(|(p, _)| p).collect();

        // Send the next island's request now, to be written while this batch is measured.
        if self.client.is_some() && self.max_llm_batch > 0 && self.overlapping() && ctx.remaining > batch.len() {
            let next = self.next_island;
            let parents = self.parents(next, 2, ctx.rng);
            let want = n.min(self.max_llm_batch).min(ctx.remaining - batch.len());
            let req = self.request(ctx, next, &parents, want);
            if let Some(handle) = self.spawn(req) {
                self.prefetch = Some(Prefetch { island: next, parents, want, handle });
            }
        }
        self.generations += 1;
        batch
    }

    fn observe(&mut self, ctx: &mut Context<'_>, batch: &[Trial]) {
        if let Some(b) = &mut self.builtin {
            return b.observe(ctx, batch);
        }
        let cap = ctx.population_size;
        self.last_eval = batch.iter().map(|t| t.elapsed).sum();
        let default_island = self.pending.first().map_or(0, |(_, i, _)| *i);
        for t in batch {
            let (island, origin) = self
                .pending
                .iter()
                .find(|(p, _, _)| *p == t.point)
                .map_or((default_island, Origin::Random), |(_, i, o)| (*i, *o));
            let Some(isl) = self.islands.get_mut(island) else { continue };
            match t.score {
                Some(s) => {
                    if isl.best().is_some_and(|(_, b)| s > *b) {
                        match origin {
                            Origin::Llm => self.stats.improvements_llm += 1,
                            Origin::Mutation | Origin::Crossover => self.stats.improvements_classical += 1,
                            Origin::Random => {}
                        }
                    }
                    isl.insert(t.point.clone(), s, cap);
                }
                None => {
                    let c = serde_json::to_string(&t.config.to_json()).unwrap_or_default();
                    let why = t.failure.clone().unwrap_or_else(|| "invalid".into());
                    self.failures.push_back((c, format!("invalid: {}", truncate(&why, 80))));
                    if self.failures.len() > RECENT_FAILURES {
                        self.failures.pop_front();
                    }
                }
            }
        }
    }

    fn report(&self) -> serde_json::Map<String, serde_json::Value> {
        let mut m = serde_json::Map::new();
        let s = &self.stats;
        let rejected: u64 = s.rejected.values().sum();
        m.insert("llm_calls".into(), s.calls.into());
        m.insert("llm_rejected".into(), rejected.into());
        m.insert("prompt_tokens".into(), s.usage.prompt_tokens.into());
        m.insert("completion_tokens".into(), s.usage.completion_tokens.into());
        let cost = if s.calls == 0 { Some(0.0) } else { price::cost_usd(&self.model, s.usage) };
        m.insert("cost_usd".into(), cost.map_or(serde_json::Value::Null, Into::into));
        m.insert("fallback".into(), self.fallback().into());
        m.insert("fallback_reason".into(), self.fallback_reason.clone().map_or(serde_json::Value::Null, Into::into));
        m.insert("llm_model".into(), self.model.clone().into());
        m.insert("llm_errors".into(), s.errors.into());
        m.insert("llm_proposed".into(), s.proposed.into());
        m.insert("llm_accepted".into(), s.accepted.into());
        m.insert(
            "llm_rejected_by_reason".into(),
            s.rejected.iter().map(|(k, v)| ((*k).to_owned(), serde_json::Value::from(*v))).collect(),
        );
        m.insert("llm_seconds".into(), ((s.seconds * 1000.0).round() / 1000.0).into());
        m.insert("llm_wait_seconds".into(), ((s.waited * 1000.0).round() / 1000.0).into());
        m.insert("llm_overlapped_calls".into(), s.overlapped.into());
        m.insert("llm_structured_output".into(), s.structured.into());
        m.insert("improvements_llm".into(), s.improvements_llm.into());
        m.insert("improvements_classical".into(), s.improvements_classical.into());
        if let Some(b) = &self.builtin {
            m.insert("fallback_strategy".into(), b.name().into());
            m.extend(b.report());
        }
        m
    }

    fn summary(&self) -> Option<String> {
        if let Some(b) = &self.builtin {
            return Some(format!("LLM: not used (built-in `{}` search)", b.name()));
        }
        let s = &self.stats;
        let rejected: u64 = s.rejected.values().sum();
        let cost = match price::cost_usd(&self.model, s.usage) {
            Some(c) => format!("~${c:.4} (estimate)"),
            None => format!("cost unknown for model `{}`", self.model),
        };
        let fallback = match &self.fallback_reason {
            Some(why) => format!("; fell back to classical operators: {why}"),
            None => String::new(),
        };
        Some(format!(
            "LLM: {} calls, {} proposed, {} accepted, {} rejected; {} prompt + {} completion tokens, {}; {:.1}s{}",
            s.calls,
            s.proposed,
            s.accepted,
            rejected,
            s.usage.prompt_tokens,
            s.usage.completion_tokens,
            cost,
            s.seconds,
            fallback
        ))
    }
}

/// Validates one proposed object against the space: names, types, allowed values, constraints, the
/// recorded set. The error is (class, reason) for the report and the next prompt.
fn validate(space: &Space, raw: &RawConfig) -> Result<Point, (&'static str, String)> {
    let mut pairs = Vec::with_capacity(raw.len());
    for (name, v) in raw {
        let Some(pi) = space.param_index(name) else {
            return Err(("outside_space", format!("unknown parameter `{name}`")));
        };
        let param = &space.params()[pi];
        let value = coerce(v, param.value_type).ok_or_else(|| {
            ("outside_space", format!("parameter `{name}` needs a {} value, not {v}", param.value_type))
        })?;
        pairs.push((name.clone(), value));
    }
    space.point_of_pairs(pairs).map_err(|e| {
        let class = match e {
            tuner_spec::space::ConfigError::Constraint(_) => "constraint",
            tuner_spec::space::ConfigError::NotRecorded => "not_recorded",
            _ => "outside_space",
        };
        (class, e.to_string())
    })
}

/// A JSON scalar as a value of `ty`, where the reading is unambiguous: `256`, `256.0` and `"256"` are the
/// integer 256; `true`, `1` and `"true"` are a true boolean; a string parameter takes strings only.
fn coerce(v: &serde_json::Value, ty: ValueType) -> Option<Value> {
    use serde_json::Value as J;
    match (ty, v) {
        (ValueType::Int, J::Number(n)) => n
            .as_i64()
            .or_else(|| n.as_f64().filter(|f| f.fract() == 0.0 && f.abs() < 9.0e15).map(|f| f as i64))
            .map(Value::Int),
        (ValueType::Int, J::String(s)) => s.trim().parse::<i64>().ok().map(Value::Int),
        (ValueType::Bool, J::Bool(b)) => Some(Value::Bool(*b)),
        (ValueType::Bool, J::Number(n)) => match n.as_i64() {
            Some(0) => Some(Value::Bool(false)),
            Some(1) => Some(Value::Bool(true)),
            _ => None,
        },
        (ValueType::Bool, J::String(s)) => s.trim().parse::<bool>().ok().map(Value::Bool),
        (ValueType::Str, J::String(s)) => Some(Value::Str(s.clone())),
        _ => None,
    }
}

fn allowed_values(p: &Param) -> String {
    p.values.iter().map(|v| v.to_json().to_string()).collect::<Vec<_>>().join("|")
}

fn fmt_score(s: f64) -> String {
    if s.abs() >= 0.01 && s.abs() < 1e6 {
        format!("{s:.4}")
    } else {
        format!("{s:.4e}")
    }
}

fn truncate(s: &str, n: usize) -> String {
    if s.chars().count() > n {
        format!("{}…", s.chars().take(n).collect::<String>())
    } else {
        s.to_owned()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tuner_spec::space::Space;

    fn space() -> Space {
        Space::builder()
            .param("block", [64, 128, 256])
            .param("items", [1, 2, 4])
            .param("shfl", [false, true])
            .constraint("block * items <= 512")
            .build()
            .unwrap()
    }

    fn raw(s: &str) -> RawConfig {
        serde_json::from_str(s).unwrap()
    }

    #[test]
    fn validation_names_the_problem() {
        let s = space();
        assert!(validate(&s, &raw(r#"{"block":64,"items":2,"shfl":true}"#)).is_ok());
        assert!(validate(&s, &raw(r#"{"block":"64","items":2.0,"shfl":1}"#)).is_ok(), "unambiguous coercions");
        let (class, why) = validate(&s, &raw(r#"{"block":96,"items":2,"shfl":true}"#)).unwrap_err();
        assert_eq!(class, "outside_space");
        assert!(why.contains("block"), "{why}");
        let (class, _) = validate(&s, &raw(r#"{"block":256,"items":4,"shfl":true}"#)).unwrap_err();
        assert_eq!(class, "constraint");
        let (class, why) = validate(&s, &raw(r#"{"block":64,"items":2}"#)).unwrap_err();
        assert_eq!(class, "outside_space");
        assert!(why.contains("shfl"), "{why}");
        let (_, why) = validate(&s, &raw(r#"{"block":64,"items":2,"shfl":true,"warp":32}"#)).unwrap_err();
        assert!(why.contains("warp"), "{why}");
        assert!(validate(&s, &raw(r#"{"block":64.5,"items":2,"shfl":true}"#)).is_err());
        assert!(validate(&s, &raw(r#"{"block":[64],"items":2,"shfl":true}"#)).is_err());
    }

    #[test]
    fn islands_keep_the_best_members() {
        let mut i = Island::default();
        for (k, s) in [3.0, 1.0, 5.0, 2.0, 4.0].into_iter().enumerate() {
            i.insert(Point(vec![k as u32]), s, 3);
        }
        let scores: Vec<f64> = i.members.iter().map(|m| m.1).collect();
        assert_eq!(scores, vec![5.0, 4.0, 3.0]);
        i.insert(Point(vec![2]), 5.0, 3);
        assert_eq!(i.members.len(), 3, "no duplicates");
    }

    fn offline() -> LlmEvolution {
        // The model is switched off: only the islands and the classical operators run.
        LlmEvolution::with_client(None, String::new(), String::new())
    }

    #[test]
    fn migration_moves_each_islands_elite_to_the_next() {
        let mut s = offline();
        s.islands = vec![Island::default(), Island::default(), Island::default()];
        s.islands[0].insert(Point(vec![0]), 9.0, 4);
        s.islands[1].insert(Point(vec![1]), 5.0, 4);
        s.islands[2].insert(Point(vec![2]), 1.0, 4);
        s.migrate(4);
        assert_eq!(s.islands[1].best(), Some(&(Point(vec![0]), 9.0)));
        assert_eq!(s.islands[2].best(), Some(&(Point(vec![1]), 5.0)));
        assert!(s.islands[0].members.contains(&(Point(vec![2]), 1.0)), "the ring closes");
    }

    #[test]
    fn without_the_model_the_islands_still_search() {
        let space = space();
        let mut tuner = crate::Tuner::new(space.clone(), |c: &tuner_spec::Config| {
            (c.int("block").unwrap() + c.int("items").unwrap() + c.int("shfl").unwrap()) as f64
        })
        .max_evaluations(14)
        .population_size(4)
        .verbose(false)
        .seed(2)
        .strategy(offline());
        let best = tuner.tune().unwrap();
        assert_eq!(tuner.evaluation_count(), 14, "the whole budget (16 valid configs)");
        assert_eq!(best.int("block"), Some(256));
        let report = tuner.strategy_report();
        assert_eq!(report["fallback"], true);
        assert_eq!(report["llm_calls"], 0);
        assert!(report["improvements_classical"].as_u64().unwrap() >= 1, "{report:?}");
    }
}
