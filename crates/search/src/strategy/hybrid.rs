//! The LLM and the surrogate together: the model proposes, the forest decides what is worth measuring.
//!
//! Each batch, [`LlmEvolution`] (the LLM client, prompt, validation and island bookkeeping are all
//! its own; nothing is duplicated here) is asked for a batch. Only the configs the LLM itself wrote
//! and that passed validation are kept — read from its journal; its classical fill-ins are dropped,
//! since the surrogate's own neighbourhood search does that job better. The [`Surrogate`] then builds
//! the batch: the two LLM proposals its performance model ranks highest are measured whenever it expects
//! them to beat the median config so far (so the LLM's prior knowledge of GPUs gets tested even where
//! the forest has little data, while a model that keeps proposing poor configs is filtered out), more
//! of them join when they outrank the surrogate's own exploitation candidates, at most half the batch in
//! all, and the surrogate's exploitation and exploration fill the rest. Before the forest is fitted (the
//! space-filling start) LLM proposals are taken first, up to half the batch. Helion's LLM-seeded LFBO follows the same
//! idea: an LLM is a good source of candidates and a poor judge of them, a fitted model the reverse.
//!
//! With no endpoint configured, or once the endpoint has failed for good (the LLM strategy's own
//! fallback rule), the hybrid is exactly the surrogate: same proposals, seed for seed.

use super::{Context, LlmEvolution, Strategy, Surrogate, MAX_BATCH};
use crate::trial::Trial;
use tuner_llm::{LlmClient, LlmSettings};
use tuner_spec::space::Point;

/// LLM proposals measured per batch when the forest expects them to beat the median so far.
const GUARANTEED: usize = 2;
/// The largest fraction of a batch that LLM proposals may fill.
const LLM_SHARE: f64 = 0.5;

/// LLM proposals ranked and filtered by the surrogate; see the module docs.
pub struct Hybrid {
    surrogate: Surrogate,
    llm: Option<LlmEvolution>,
    /// Journal entries already read.
    journal_read: usize,
    /// Why the LLM is not used, when it is not.
    no_llm: Option<String>,
    offered: u64,
    taken: u64,
    /// The most configs per batch while the LLM is live: each batch is one model call.
    llm_batch: usize,
}

impl Hybrid {
    /// The surrogate with proposals from `llm`.
    pub fn new(llm: LlmEvolution) -> Hybrid {
        let no_llm = llm.fallback().then(|| "the LLM strategy runs without an endpoint".to_owned());
        Hybrid {
            surrogate: Surrogate::new(),
            llm: Some(llm),
            journal_read: 0,
            no_llm,
            offered: 0,
            taken: 0,
            llm_batch: MAX_BATCH,
        }
    }

    /// The surrogate alone, with the reason recorded for the report.
    pub fn surrogate_only(reason: impl Into<String>) -> Hybrid {
        Hybrid {
            surrogate: Surrogate::new(),
            llm: None,
            journal_read: 0,
            no_llm: Some(reason.into()),
            offered: 0,
            taken: 0,
            llm_batch: MAX_BATCH,
        }
    }

    /// At most `batch` configs per round, for the surrogate's own rounds and the LLM's calls alike
    /// (by default the surrogate picks one config per round, and an LLM call fills [`MAX_BATCH`]).
    pub fn batch(mut self, batch: usize) -> Hybrid {
        let batch = batch.max(1);
        self.surrogate = Surrogate::with_max_batch(batch);
        self.llm_batch = batch;
        self
    }

    /// Whether the LLM is being asked (configured and not given up on).
    fn live(&self) -> bool {
        self.llm.as_ref().is_some_and(|l| !l.fallback())
    }

    /// With the endpoint in the environment (`OPENAI_API_KEY`, `OPENAI_BASE_URL`, `AUTOTUNE_LLM_MODEL`),
    /// or the surrogate alone when none is configured or it cannot be used, said in one line on stderr.
    pub fn from_env() -> Hybrid {
        Hybrid::from_settings(&LlmSettings::from_env())
    }

    /// As [`Hybrid::from_env`], with settings an entry point read once.
    pub fn from_settings(settings: &LlmSettings) -> Hybrid {
        let why = match settings.endpoint.clone().map(LlmClient::new) {
            Some(Ok(client)) => {
                let mut llm = LlmEvolution::new(client);
                if let Some(trace) = &settings.trace {
                    llm = llm.trace_to(trace.clone());
                }
                return Hybrid::new(llm);
            }
            Some(Err(e)) => format!("the LLM endpoint cannot be used ({e})"),
            None => "no LLM endpoint configured (set OPENAI_API_KEY or OPENAI_BASE_URL)".to_owned(),
        };
        eprintln!("autotune: {why}; hybrid runs as the surrogate alone");
        Hybrid::surrogate_only(why)
    }

    /// The LLM proposals made since the last call, in the order the model wrote them.
    fn new_llm_proposals(&mut self) -> Vec<Point> {
        let Some(llm) = &self.llm else { return Vec::new() };
        let journal = llm.journal();
        let entries = journal.lock().unwrap_or_else(|p| p.into_inner());
        let fresh: Vec<Point> = entries.iter().skip(self.journal_read).filter_map(|e| e.accepted.clone()).collect();
        self.journal_read = entries.len();
        fresh
    }
}

impl Strategy for Hybrid {
    /// With a live model, batches of up to [`MAX_BATCH`] on any objective (each batch is one LLM call,
    /// and a call per config would wait on the model for every measurement); without, the surrogate's.
    fn batch_size(&self, population_size: usize) -> usize {
        if self.live() {
            population_size.min(self.llm_batch)
        } else {
            self.surrogate.batch_size(population_size)
        }
    }

    fn sequential_batch_size(&self, population_size: usize) -> usize {
        if self.live() {
            self.batch_size(population_size)
        } else {
            self.surrogate.sequential_batch_size(population_size)
        }
    }

    fn likely_next(&self) -> Vec<Point> {
        self.surrogate.likely_next()
    }

    fn name(&self) -> &str {
        "hybrid"
    }

    fn propose(&mut self, ctx: &mut Context<'_>, n: usize) -> Vec<Point> {
        if !self.live() {
            return self.surrogate.propose(ctx, n);
        }
        if let Some(llm) = &mut self.llm {
            // The batch it returns mixes the LLM's configs with classical fill-ins; only the former
            // are kept, from the journal.
            let _ = llm.propose(ctx, n);
        }
        let proposals = self.new_llm_proposals();
        self.offered += proposals.len() as u64;
        let cap = ((n as f64 * LLM_SHARE).round() as usize).max(GUARANTEED.min(n));
        let (batch, taken) = self.surrogate.propose_with(ctx, n, &proposals, GUARANTEED, cap);
        self.taken += taken as u64;
        batch
    }

    fn observe(&mut self, ctx: &mut Context<'_>, batch: &[Trial]) {
        self.surrogate.observe(ctx, batch);
        if let Some(llm) = &mut self.llm {
            llm.observe(ctx, batch);
        }
    }

    fn report(&self) -> serde_json::Map<String, serde_json::Value> {
        let mut m = self.surrogate.report();
        if let Some(llm) = &self.llm {
            m.extend(llm.report());
        }
        m.insert("llm_offered_to_surrogate".into(), self.offered.into());
        m.insert("llm_taken_by_surrogate".into(), self.taken.into());
        if self.llm.is_none() {
            m.insert("fallback".into(), true.into());
        }
        if let Some(why) = &self.no_llm {
            m.insert("fallback_reason".into(), why.clone().into());
        }
        m
    }

    fn summary(&self) -> Option<String> {
        match &self.llm {
            Some(llm) if self.no_llm.is_none() => llm
                .summary()
                .map(|s| format!("{s}; the surrogate measured {} of the {} LLM proposals", self.taken, self.offered)),
            _ => Some("LLM: not used (hybrid ran as the surrogate)".to_owned()),
        }
    }
}
