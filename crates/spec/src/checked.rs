//! A kernel spec that passed every check, with what the checks built: the space, the default config and
//! the bench's bound expressions. Everything downstream of parsing (the cache, the code generator, the
//! tuner, the CUDA bench, the CLI) takes a [`CheckedSpec`], so none of them re-parses an attribute's
//! strings or rebuilds its space.
//!
//! The expressions are parsed once against named slots (problem sizes first, then parameters) by the one
//! evaluator, [`crate::expr`]: the constraints inside the [`Space`] (sizes bound to their values), the
//! grid, block, shared-memory, throughput and scalar expressions inside the [`Layout`].
//!
//! Spans stay with the parser ([`KernelSpec::parse`] reports every problem spanned on its token before a
//! spec exists): a `proc_macro2::Span` is neither `Send` nor `Sync`, and a checked spec crosses threads in
//! the CUDA bench. A [`SpecError`] names its [`crate::spec::Site`] instead, which the parser maps back to a
//! span.

use std::ops::Deref;

use crate::config::Config;
use crate::layout::Layout;
use crate::space::Space;
use crate::spec::{KernelSpec, Site, SpecError};

/// A [`KernelSpec`] that [`KernelSpec::check`] accepted, with its space, default config and layout.
#[derive(Clone, Debug)]
pub struct CheckedSpec {
    spec: KernelSpec,
    space: Space,
    default: Config,
    layout: Layout,
}

impl KernelSpec {
    /// Checks a spec (parsed from tokens, read back from a cache entry, or built by hand): expressions
    /// name only sizes and parameters, buffer lengths name only sizes and are positive, the space is
    /// valid and the default config belongs to it. Returns the first problem, or the checked spec.
    pub fn check(&self) -> Result<CheckedSpec, SpecError> {
        if let Some(e) = self.problems().into_iter().next() {
            return Err(e);
        }
        let space = self.space().map_err(|source| SpecError::Space { kernel: self.name.clone(), source })?;
        let default = self.default_in(&space)?;
        let layout = Layout::bind(self).map_err(|e| self.invalid(Site::ArgLen(0), &crate::error_chain(&e)))?;
        Ok(CheckedSpec { spec: self.clone(), space, default, layout })
    }
}

impl CheckedSpec {
    /// The spec as declared (what cache entries store and hash).
    pub fn spec(&self) -> &KernelSpec {
        &self.spec
    }

    /// The search space: the parameters and the constraints, sizes bound.
    pub fn space(&self) -> &Space {
        &self.space
    }

    /// The config named by `default(…)`, else the first valid config in grid order.
    pub fn default_config(&self) -> &Config {
        &self.default
    }

    /// The bench's expressions, bound, and the buffers sized for the problem.
    pub fn layout(&self) -> &Layout {
        &self.layout
    }

    pub fn into_spec(self) -> KernelSpec {
        self.spec
    }
}

/// A checked spec reads as its spec: `checked.name`, `checked.bench.sizes`.
impl Deref for CheckedSpec {
    type Target = KernelSpec;

    fn deref(&self) -> &KernelSpec {
        &self.spec
    }
}

impl PartialEq for CheckedSpec {
    fn eq(&self, other: &Self) -> bool {
        self.spec == other.spec
    }
}
