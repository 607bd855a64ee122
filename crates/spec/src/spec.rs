//! What an `#[autotune(...)]` attribute declares: the kernel, its space and how to benchmark it.
//!
//! This module is light on purpose (no CUDA, no network): the build script parses attributes into a
//! [`KernelSpec`] with it, the cache hashes and stores the spec, the CUDA benchmark runs it, and the
//! proc-macro validates the same syntax. The spec is plain data and serialises to JSON as it is stored in
//! cache entries.
//!
//! Attribute grammar (see DESIGN.md):
//!
//! ```text
//! #[autotune(
//!     kernel = "cuda/vector_add.cu", entry = "vector_add",
//!     space(block = [64, 128, 256], items = [1, 2, 4]),
//!     constraint = "block * items <= 8192",            // may repeat
//!     default(block = 256, items = 1),                 // optional; else the first valid config
//!     sizes(n = [1 << 20, 1 << 26]),                   // optional; else the bench sizes alone
//!     bench(n = 1 << 26, args = [in f32[n], in f32[n], out f32[n], n],
//!           grid = "ceil_div(n, block * items)", block = "block", shared = "0", bytes = "12 * n"),
//! )]
//! ```
//!
//! - `space(name = [v, …], …)`: each parameter's allowed values, integers, booleans or strings, in order.
//! - `constraint = "…"`: an [`Expr`] over parameters and problem sizes; sizes are replaced by their values
//!   when the [`Space`] is built, so `m % bm == 0` works.
//! - `bench(…)`: every `name = <integer expression>` is a problem size (Rust integer syntax, `<<` allowed,
//!   earlier sizes may be named). `args` lists the kernel arguments in order: `in|out|inout <elem>[len]` is
//!   a device buffer (`elem` one of `f32 f16 bf16 i32`, `len` over sizes only, since every config must read
//!   and write the same buffers); anything else is a scalar, `i32` unless written `u32(expr)`, `i64(expr)`
//!   or `f32(expr)`. `grid` and `block` are one expression or `[x, y, z]` of up to three; `shared`
//!   (dynamic shared memory, bytes), `bytes` and `flops` (per launch, for GB/s and TFLOP/s) are optional.
//!   Geometry and scalars may name sizes and parameters.
//!
//! - `sizes(…)`: the problem sizes the kernel is tuned at, each tuned and cached on its own ("size
//!   buckets"). Either a list per size variable, whose cross product is taken (`sizes(m = [1024, 4096],
//!   k = [4096])`), or a list of points (`sizes([m = 1024, n = 1024], [m = 16384, n = 256])`). A point
//!   names some of the bench's size variables; the others keep their `bench(…)` values. Without
//!   `sizes(…)` the kernel has one point, the bench sizes, as before. At run time the generated code
//!   picks, for the sizes of a launch, the entry of the nearest point whose config fits them
//!   ([`crate::dispatch`]).
//!
//! Parsing follows serde's pattern: a bad key or value is recorded and parsing goes on, so one compile
//! reports every problem, each spanned on the offending token; an unknown key lists the valid keys and the
//! closest one. [`KernelSpec::check`] repeats the semantic checks on a spec that did not come from tokens
//! (a cache entry).

use proc_macro2::{Span, TokenStream};
use serde::{Deserialize, Serialize};
use syn::parse::{Parse, ParseStream, Parser};
use syn::punctuated::Punctuated;
use syn::spanned::Spanned;
use syn::{bracketed, LitStr, Token};

use crate::expr::{EvalError, Expr, ExprError};
use crate::space::{Space, SpaceError};
use crate::value::Value;

/// Everything one annotated launcher declares.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct KernelSpec {
    /// The launcher function's name (`vector_add`).
    pub name: String,
    /// The kernel source path, relative to the crate root (`cuda/vector_add.cu`).
    pub kernel: String,
    /// The `extern "C" __global__` entry point.
    pub entry: String,
    /// Parameters and their allowed values, in declaration order.
    pub params: Vec<(String, Vec<Value>)>,
    pub constraints: Vec<String>,
    /// The default config, when the attribute names one.
    pub default: Option<Vec<(String, Value)>>,
    pub bench: BenchSpec,
    /// The declared size points (`sizes(…)`), each naming some of the bench's size variables; empty
    /// when the attribute has no `sizes(…)`. A cache entry stores the spec *at* one point
    /// ([`KernelSpec::at`]), whose list is empty, so it serialises as a spec without buckets did and an
    /// entry made before buckets existed keeps its key.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub buckets: Vec<Vec<(String, i64)>>,
}

/// The most problem-size variables a kernel may declare: the run-time dispatch keys its cache on a
/// fixed-size array of them, so that a lookup never allocates.
pub const MAX_SIZES: usize = 8;

/// How to benchmark a kernel: problem sizes, arguments, launch geometry and throughput.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct BenchSpec {
    /// Problem sizes, in order (`n = 1 << 26` is stored evaluated, `n = 67108864`).
    pub sizes: Vec<(String, i64)>,
    pub args: Vec<ArgSpec>,
    /// Grid dimensions (1 to 3 expressions over sizes and parameters).
    pub grid: Vec<String>,
    /// Block dimensions (1 to 3 expressions).
    pub block: Vec<String>,
    /// Dynamic shared memory in bytes (an expression), when the kernel uses it.
    pub shared: Option<String>,
    /// Bytes moved per launch, for GB/s.
    pub bytes: Option<String>,
    /// Floating-point operations per launch, for TFLOP/s.
    pub flops: Option<String>,
}

/// One kernel argument, in order.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ArgSpec {
    /// A device buffer of `len` elements (an expression over sizes).
    Buffer { access: Access, elem: ElemType, len: String },
    /// A scalar passed by value (an expression over sizes and parameters).
    Scalar { ty: ScalarType, value: String },
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Access {
    In,
    Out,
    InOut,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ElemType {
    F32,
    F16,
    Bf16,
    I32,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ScalarType {
    I32,
    U32,
    I64,
    F32,
}

impl ElemType {
    /// Bytes per element.
    pub fn size(self) -> usize {
        match self {
            ElemType::F32 | ElemType::I32 => 4,
            ElemType::F16 | ElemType::Bf16 => 2,
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            ElemType::F32 => "f32",
            ElemType::F16 => "f16",
            ElemType::Bf16 => "bf16",
            ElemType::I32 => "i32",
        }
    }
}

impl Access {
    /// Whether the kernel writes this buffer (its contents are compared with the reference's).
    pub fn is_output(self) -> bool {
        matches!(self, Access::Out | Access::InOut)
    }
}

/// Top-level attribute keys, defined once.
pub const KEYS: &[&str] = &["kernel", "entry", "space", "constraint", "default", "sizes", "bench"];
/// Keys inside `bench(…)` that are not problem sizes.
pub const BENCH_KEYS: &[&str] = &["args", "grid", "block", "shared", "bytes", "flops"];
const ELEM_TYPES: &[&str] = &["f32", "f16", "bf16", "i32"];
const SCALAR_TYPES: &[&str] = &["i32", "u32", "i64", "f32"];

/// Where in a spec an expression or value sits; errors name it, and the parser maps it to a span.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum Site {
    Constraint(usize),
    Grid(usize),
    Block(usize),
    Shared,
    Bytes,
    Flops,
    ArgLen(usize),
    ArgValue(usize),
    Default,
    Space,
    Sizes,
    /// A size variable named in `sizes(…)`.
    SizeName(String),
}

impl std::fmt::Display for Site {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Site::Constraint(i) => write!(f, "constraint #{}", i + 1),
            Site::Grid(i) => write!(f, "bench grid[{i}]"),
            Site::Block(i) => write!(f, "bench block[{i}]"),
            Site::Shared => f.write_str("bench shared"),
            Site::Bytes => f.write_str("bench bytes"),
            Site::Flops => f.write_str("bench flops"),
            Site::ArgLen(i) => write!(f, "bench args[{i}] length"),
            Site::ArgValue(i) => write!(f, "bench args[{i}]"),
            Site::Default => f.write_str("default"),
            Site::Space => f.write_str("space"),
            Site::Sizes | Site::SizeName(_) => f.write_str("sizes"),
        }
    }
}

/// A semantic problem in a spec that is already parsed (or read back from a cache entry).
#[derive(Debug, thiserror::Error)]
pub enum SpecError {
    #[error("kernel `{kernel}`, {site}: invalid expression")]
    Expr {
        kernel: String,
        site: Site,
        #[source]
        source: ExprError,
    },
    #[error("kernel `{kernel}`: {site}: {message}")]
    Invalid { kernel: String, site: Site, message: String },
    #[error("kernel `{kernel}`: invalid space")]
    Space {
        kernel: String,
        #[source]
        source: SpaceError,
    },
}

impl SpecError {
    pub fn site(&self) -> &Site {
        match self {
            SpecError::Expr { site, .. } | SpecError::Invalid { site, .. } => site,
            SpecError::Space { .. } => &Site::Space,
        }
    }
}

impl KernelSpec {
    /// Parses the tokens inside `#[autotune(…)]` on the launcher `fn_name`. Every problem found is
    /// reported, combined into one [`syn::Error`], each spanned on its token.
    pub fn parse(fn_name: &str, attr_tokens: TokenStream) -> Result<KernelSpec, syn::Error> {
        let call_site = attr_tokens.span();
        let mut raw = RawSpec::default();
        let mut cx = Ctxt::default();
        let parser = syn::meta::parser(|meta| raw.top_level(meta, &mut cx));
        if let Err(e) = parser.parse2(attr_tokens) {
            cx.push(e);
        }
        let spec = raw.finish(fn_name, call_site, &mut cx);
        if let Some(spec) = &spec {
            for problem in spec.problems() {
                let span = raw.spans.span_of(problem.site()).unwrap_or(call_site);
                cx.push(syn::Error::new(span, crate::error_chain(&problem)));
            }
        }
        cx.check()?;
        Ok(spec.expect("a spec is built whenever no error was recorded"))
    }

    /// Every semantic problem, in source order ([`KernelSpec::check`] reports the first).
    pub(crate) fn problems(&self) -> Vec<SpecError> {
        let mut out = Vec::new();
        let sizes: Vec<&str> = self.bench.sizes.iter().map(|(n, _)| n.as_str()).collect();
        let mut all: Vec<&str> = sizes.clone();
        all.extend(self.params.iter().map(|(n, _)| n.as_str()));
        let expr = |site: Site, src: &str, names: &[&str], out: &mut Vec<SpecError>| {
            if let Err(source) = Expr::parse_with_names(src, names) {
                out.push(SpecError::Expr { kernel: self.name.clone(), site, source });
            }
        };
        for (i, c) in self.constraints.iter().enumerate() {
            expr(Site::Constraint(i), c, &all, &mut out);
        }
        if self.bench.grid.is_empty() || self.bench.grid.len() > 3 {
            out.push(self.invalid(Site::Grid(0), "give 1 to 3 grid dimensions"));
        }
        if self.bench.block.is_empty() || self.bench.block.len() > 3 {
            out.push(self.invalid(Site::Block(0), "give 1 to 3 block dimensions"));
        }
        for (i, g) in self.bench.grid.iter().enumerate() {
            expr(Site::Grid(i), g, &all, &mut out);
        }
        for (i, b) in self.bench.block.iter().enumerate() {
            expr(Site::Block(i), b, &all, &mut out);
        }
        for (site, e) in
            [(Site::Shared, &self.bench.shared), (Site::Bytes, &self.bench.bytes), (Site::Flops, &self.bench.flops)]
        {
            if let Some(e) = e {
                expr(site, e, &all, &mut out);
            }
        }
        for (i, a) in self.bench.args.iter().enumerate() {
            match a {
                ArgSpec::Buffer { len, .. } => expr(Site::ArgLen(i), len, &sizes, &mut out),
                ArgSpec::Scalar { value, .. } => expr(Site::ArgValue(i), value, &all, &mut out),
            }
        }
        if !self.bench.args.iter().any(|a| matches!(a, ArgSpec::Buffer { access, .. } if access.is_output())) {
            out.push(self.invalid(Site::ArgValue(0), "no `out` or `inout` buffer: nothing to verify"));
        }
        if let Some((p, _)) = self.params.iter().find(|(p, _)| sizes.contains(&p.as_str())) {
            out.push(self.invalid(Site::Space, &format!("`{p}` is both a parameter and a problem size")));
        }
        if sizes.len() > MAX_SIZES {
            out.push(self.invalid(
                Site::Space,
                &format!(
                    "bench(...) declares {} problem sizes; the run-time dispatch keys its cache on at most {MAX_SIZES}",
                    sizes.len()
                ),
            ));
        }
        out.extend(self.bucket_problems(&sizes));
        if out.is_empty() {
            match self.space() {
                Err(source) => out.push(SpecError::Space { kernel: self.name.clone(), source }),
                Ok(space) => {
                    if let Some(d) = &self.default {
                        if let Err(e) = space.point_of_pairs(d.iter().cloned()) {
                            out.push(self.invalid(Site::Default, &e.to_string()));
                        }
                    }
                }
            }
        }
        if out.is_empty() && !self.buckets.is_empty() {
            // Every point must have a config to tune: a tile that divides no declared size is a mistake
            // to report now, not a tune that fails on the GPU later.
            for point in self.points() {
                let at = point_text(&point);
                match self.at(&point).space() {
                    Err(e) => out.push(self.invalid(Site::Sizes, &format!("at {at}: {}", crate::error_chain(&e)))),
                    // The default is every tune's reference (outputs are checked against it) and what a
                    // launch runs when no tuned config fits: it must fit every declared point.
                    Ok(space) => {
                        if let Some(d) = &self.default {
                            if let Err(e) = space.point_of_pairs(d.iter().cloned()) {
                                out.push(self.invalid(
                                    Site::Sizes,
                                    &format!("the default does not fit at {at} ({e}); declare points it fits, or another default"),
                                ));
                            }
                        }
                    }
                }
            }
        }
        out
    }

    /// What is wrong with the `sizes(…)` points: unknown variables, values below 1, repeats.
    fn bucket_problems(&self, sizes: &[&str]) -> Vec<SpecError> {
        let mut out = Vec::new();
        for point in &self.buckets {
            for (name, value) in point {
                if !sizes.contains(&name.as_str()) {
                    let known = if sizes.is_empty() { "none".to_owned() } else { sizes.join(", ") };
                    let hint = closest(name, sizes).map(|c| format!("; did you mean `{c}`?")).unwrap_or_default();
                    out.push(self.invalid(
                        Site::SizeName(name.clone()),
                        &format!("`{name}` is not a problem size of bench(...) (sizes: {known}){hint}"),
                    ));
                } else if *value < 1 {
                    out.push(
                        self.invalid(
                            Site::SizeName(name.clone()),
                            &format!("`{name} = {value}`: a size is at least 1"),
                        ),
                    );
                }
            }
        }
        if out.is_empty() {
            let points = self.points();
            for (i, p) in points.iter().enumerate() {
                if points[..i].contains(p) {
                    out.push(self.invalid(Site::Sizes, &format!("the point {} is given twice", point_text(p))));
                }
            }
        }
        out
    }

    /// The points the kernel is tuned at, each a value for every bench size variable in declaration
    /// order: the `sizes(…)` points completed with the bench's values, or the bench sizes alone.
    pub fn points(&self) -> Vec<Vec<(String, i64)>> {
        if self.buckets.is_empty() {
            return vec![self.bench.sizes.clone()];
        }
        self.buckets
            .iter()
            .map(|point| {
                self.bench
                    .sizes
                    .iter()
                    .map(|(n, v)| (n.clone(), point.iter().find(|(p, _)| p == n).map_or(*v, |(_, pv)| *pv)))
                    .collect()
            })
            .collect()
    }

    /// The spec at one point: the bench sizes replaced by the point's values and no buckets. This is
    /// what one tune measures, what a cache entry stores and what its key is computed from, so adding
    /// or removing a bucket leaves the other points' entries as they are.
    pub fn at(&self, point: &[(String, i64)]) -> KernelSpec {
        let mut spec = self.clone();
        spec.buckets.clear();
        for (name, value) in &mut spec.bench.sizes {
            if let Some((_, v)) = point.iter().find(|(n, _)| n == name) {
                *value = *v;
            }
        }
        spec
    }

    pub(crate) fn invalid(&self, site: Site, message: &str) -> SpecError {
        SpecError::Invalid { kernel: self.name.clone(), site, message: message.to_owned() }
    }

    /// The search space: the declared parameters and constraints, which may name the problem sizes.
    /// Built once, by [`KernelSpec::check`]; downstream reads [`crate::CheckedSpec::space`].
    pub(crate) fn space(&self) -> Result<Space, SpaceError> {
        Space::with_sizes(self.params.clone(), self.constraints.clone(), &self.bench.sizes)
    }

    /// The config named by `default(…)`, else the first valid config in grid order.
    pub(crate) fn default_in(&self, space: &Space) -> Result<crate::config::Config, SpecError> {
        let point = match &self.default {
            Some(d) => {
                space.point_of_pairs(d.iter().cloned()).map_err(|e| self.invalid(Site::Default, &e.to_string()))?
            }
            // Spaces too large to enumerate have no cheap "first" point; a fixed seed keeps it stable.
            None => match space.valid_points() {
                Some(all) => all.first().cloned().ok_or_else(|| self.invalid(Site::Space, "no valid config"))?,
                None => space.random_point(&mut <rand_chacha::ChaCha8Rng as rand::SeedableRng>::seed_from_u64(0)),
            },
        };
        Ok(space.config(&point))
    }

    /// The problem sizes as a JSON object (`{"n": 67108864}`), as Kernel Tuner tables record them.
    pub fn problem_size_json(&self) -> serde_json::Value {
        self.bench
            .sizes
            .iter()
            .map(|(n, v)| (n.clone(), serde_json::Value::from(*v)))
            .collect::<serde_json::Map<_, _>>()
            .into()
    }
}

/// A point as `m=1024 n=1024 k=4096`, for messages and listings.
pub fn point_text(point: &[(String, i64)]) -> String {
    point.iter().map(|(n, v)| format!("{n}={v}")).collect::<Vec<_>>().join(" ")
}

/// Collects errors and combines them (serde's `Ctxt`).
#[derive(Default)]
struct Ctxt {
    errors: Option<syn::Error>,
}

impl Ctxt {
    fn push(&mut self, e: syn::Error) {
        match &mut self.errors {
            Some(all) => all.combine(e),
            None => self.errors = Some(e),
        }
    }

    fn error(&mut self, span: Span, msg: impl std::fmt::Display) {
        self.push(syn::Error::new(span, msg));
    }

    fn check(&mut self) -> syn::Result<()> {
        match self.errors.take() {
            Some(e) => Err(e),
            None => Ok(()),
        }
    }
}

/// The spans of the parsed expressions, for errors found after parsing.
#[derive(Default)]
struct Spans {
    constraints: Vec<Span>,
    grid: Vec<Span>,
    block: Vec<Span>,
    shared: Option<Span>,
    bytes: Option<Span>,
    flops: Option<Span>,
    args: Vec<Span>,
    default: Option<Span>,
    space: Option<Span>,
    sizes: Option<Span>,
    /// Each variable named in `sizes(…)`, at its first mention.
    size_names: Vec<(String, Span)>,
}

impl Spans {
    fn span_of(&self, site: &Site) -> Option<Span> {
        match site {
            Site::Constraint(i) => self.constraints.get(*i).copied(),
            Site::Grid(i) => self.grid.get(*i).copied(),
            Site::Block(i) => self.block.get(*i).copied(),
            Site::Shared => self.shared,
            Site::Bytes => self.bytes,
            Site::Flops => self.flops,
            Site::ArgLen(i) | Site::ArgValue(i) => self.args.get(*i).copied(),
            Site::Default => self.default,
            Site::Space => self.space,
            Site::Sizes => self.sizes,
            Site::SizeName(name) => self.size_names.iter().find(|(n, _)| n == name).map(|(_, s)| *s).or(self.sizes),
        }
    }
}

#[derive(Default)]
struct RawSpec {
    kernel: Option<String>,
    entry: Option<String>,
    params: Vec<(String, Vec<Value>)>,
    constraints: Vec<String>,
    default: Option<Vec<(String, Value)>>,
    sizes: Vec<(String, i64)>,
    args: Option<Vec<ArgSpec>>,
    grid: Option<Vec<String>>,
    block: Option<Vec<String>>,
    shared: Option<String>,
    bytes: Option<String>,
    flops: Option<String>,
    saw_bench: bool,
    buckets: Option<Vec<Vec<(String, i64)>>>,
    spans: Spans,
}

/// The valid key closest to `got`, when one is close enough to be a likely typo.
fn closest<'a>(got: &str, valid: &[&'a str]) -> Option<&'a str> {
    fn distance(a: &str, b: &str) -> usize {
        let b: Vec<char> = b.chars().collect();
        let mut prev: Vec<usize> = (0..=b.len()).collect();
        for (i, ca) in a.chars().enumerate() {
            let mut cur = vec![i + 1];
            for (j, cb) in b.iter().enumerate() {
                cur.push((prev[j] + usize::from(ca != *cb)).min(prev[j + 1] + 1).min(cur[j] + 1));
            }
            prev = cur;
        }
        prev[b.len()]
    }
    valid.iter().map(|v| (distance(got, v), *v)).filter(|(d, v)| *d <= 2.max(v.len() / 3)).min().map(|(_, v)| v)
}

fn unknown_key(key: &str, what: &str, valid: &[&str]) -> String {
    let hint = closest(key, valid).map(|c| format!("; did you mean `{c}`?")).unwrap_or_default();
    format!("unknown key `{key}` in {what} (valid keys: {}){hint}", valid.join(", "))
}

/// Skips what follows an unknown key (`= value` or `(…)`) so parsing can go on.
fn skip_value(meta: &syn::meta::ParseNestedMeta) -> syn::Result<()> {
    let input = meta.input;
    if input.peek(Token![=]) {
        input.parse::<Token![=]>()?;
    }
    while !input.is_empty() && !input.peek(Token![,]) {
        input.parse::<proc_macro2::TokenTree>()?;
    }
    Ok(())
}

fn key_of(meta: &syn::meta::ParseNestedMeta) -> syn::Result<syn::Ident> {
    meta.path.get_ident().cloned().ok_or_else(|| meta.error("expected a key such as `kernel` or `space`"))
}

/// A literal value of a parameter: integer (maybe negative), bool or string.
fn parse_value(input: ParseStream) -> syn::Result<Value> {
    if input.peek(Token![-]) {
        input.parse::<Token![-]>()?;
        let lit: syn::LitInt = input.parse()?;
        let v: i64 = lit.base10_parse()?;
        return Ok(Value::Int(-v));
    }
    let lit: syn::Lit = input.parse()?;
    match &lit {
        syn::Lit::Int(i) => Ok(Value::Int(i.base10_parse()?)),
        syn::Lit::Bool(b) => Ok(Value::Bool(b.value)),
        syn::Lit::Str(s) => Ok(Value::Str(s.value())),
        _ => Err(syn::Error::new(lit.span(), "expected an integer, `true`/`false` or a string")),
    }
}

/// An expression given as a string literal, or as `[a, b, c]` of them (grid and block).
fn parse_dims(input: ParseStream) -> syn::Result<Vec<LitStr>> {
    if input.peek(syn::token::Bracket) {
        let content;
        bracketed!(content in input);
        let list = Punctuated::<LitStr, Token![,]>::parse_terminated(&content)?;
        return Ok(list.into_iter().collect());
    }
    Ok(vec![input.parse()?])
}

/// Evaluates a size: an integer expression over literals and earlier sizes, by the one expression
/// evaluator ([`Expr`]) that constraints and launch geometry use too, spanned on the size's tokens.
fn eval_size(e: &syn::Expr, sizes: &[(String, i64)]) -> syn::Result<i64> {
    let text = tokens_text(quote_tokens(e));
    let names: Vec<&str> = sizes.iter().map(|(n, _)| n.as_str()).collect();
    let expr = Expr::parse_with_names(&text, &names).map_err(|err| {
        let message = match &err {
            ExprError::UnknownName { name, .. } => format!(
                "unknown size `{name}` (sizes declared before it: {})",
                if names.is_empty() { "none".into() } else { names.join(", ") }
            ),
            other => format!("a problem size is an integer expression such as `1 << 26` or `4096`: {other}"),
        };
        syn::Error::new(e.span(), message)
    })?;
    let slots: Vec<Value> = sizes.iter().map(|(_, v)| Value::Int(*v)).collect();
    expr.eval_i64(&slots).map_err(|err| match err {
        EvalError::Overflow => syn::Error::new(e.span(), "the size overflows i64"),
        other => syn::Error::new(e.span(), format!("the size cannot be evaluated: {other}")),
    })
}

/// The tokens of a syn expression.
fn quote_tokens(e: &syn::Expr) -> TokenStream {
    let mut tokens = TokenStream::new();
    quote::ToTokens::to_tokens(e, &mut tokens);
    tokens
}

/// One entry of `args = [...]`, with the span of its expression.
struct RawArg {
    arg: ArgSpec,
    span: Span,
}

impl Parse for RawArg {
    fn parse(input: ParseStream) -> syn::Result<Self> {
        let span = input.span();
        let access = if input.peek(Token![in]) {
            input.parse::<Token![in]>()?;
            Some(Access::In)
        } else if input.peek(syn::Ident) && input.peek2(syn::Ident) {
            let fork = input.fork();
            let id: syn::Ident = fork.parse()?;
            match id.to_string().as_str() {
                "out" => Some(Access::Out),
                "inout" => Some(Access::InOut),
                _ => None,
            }
            .map(|a| input.parse::<syn::Ident>().map(|_| a))
            .transpose()?
        } else {
            None
        };
        if let Some(access) = access {
            let ty: syn::Ident = input.parse()?;
            let elem = match ty.to_string().as_str() {
                "f32" => ElemType::F32,
                "f16" => ElemType::F16,
                "bf16" => ElemType::Bf16,
                "i32" => ElemType::I32,
                other => {
                    return Err(syn::Error::new(
                        ty.span(),
                        format!("unknown element type `{other}` (valid: {})", ELEM_TYPES.join(", ")),
                    ))
                }
            };
            let content;
            let bracket = bracketed!(content in input);
            let len = expr_text(&content)?;
            return Ok(RawArg { arg: ArgSpec::Buffer { access, elem, len }, span: bracket.span.join() });
        }
        // A scalar: `expr` (i32) or `ty(expr)`.
        if input.peek(syn::Ident) && input.peek2(syn::token::Paren) {
            let fork = input.fork();
            let id: syn::Ident = fork.parse()?;
            let ty = match id.to_string().as_str() {
                "i32" => Some(ScalarType::I32),
                "u32" => Some(ScalarType::U32),
                "i64" => Some(ScalarType::I64),
                "f32" => Some(ScalarType::F32),
                _ => None,
            };
            if let Some(ty) = ty {
                input.parse::<syn::Ident>()?;
                let content;
                syn::parenthesized!(content in input);
                let value = expr_text(&content)?;
                return Ok(RawArg { arg: ArgSpec::Scalar { ty, value }, span: id.span() });
            }
        }
        let mut tokens = TokenStream::new();
        while !input.is_empty() && !input.peek(Token![,]) {
            tokens.extend([input.parse::<proc_macro2::TokenTree>()?]);
        }
        if tokens.is_empty() {
            return Err(syn::Error::new(
                span,
                format!(
                    "expected an argument: `in|out|inout <{}>[len]` or a scalar expression (`n`, `{}(expr)`)",
                    ELEM_TYPES.join("|"),
                    SCALAR_TYPES.join("|")
                ),
            ));
        }
        let span = tokens.span();
        Ok(RawArg { arg: ArgSpec::Scalar { ty: ScalarType::I32, value: tokens_text(tokens) }, span })
    }
}

/// The rest of `input` as expression text: a string literal's contents, or the tokens themselves.
fn expr_text(input: ParseStream) -> syn::Result<String> {
    if input.peek(LitStr) {
        let s: LitStr = input.parse()?;
        return Ok(s.value());
    }
    let tokens: TokenStream = input.parse()?;
    if tokens.is_empty() {
        return Err(input.error("expected an expression"));
    }
    Ok(tokens_text(tokens))
}

/// Tokens as expression text; `proc_macro2` spaces them out, which the expression lexer accepts.
fn tokens_text(tokens: TokenStream) -> String {
    tokens.to_string()
}

impl RawSpec {
    fn top_level(&mut self, meta: syn::meta::ParseNestedMeta, cx: &mut Ctxt) -> syn::Result<()> {
        let key = key_of(&meta)?;
        match key.to_string().as_str() {
            "kernel" | "entry" => {
                let s: LitStr = meta.value()?.parse()?;
                let slot = if key == "kernel" { &mut self.kernel } else { &mut self.entry };
                if slot.is_some() {
                    cx.error(key.span(), format!("`{key}` is given twice"));
                }
                if s.value().trim().is_empty() {
                    cx.error(s.span(), format!("`{key}` is empty"));
                }
                *slot = Some(s.value());
            }
            "space" => {
                self.spans.space = Some(key.span());
                meta.parse_nested_meta(|p| {
                    let name = key_of(&p)?;
                    let input = p.value()?;
                    let content;
                    bracketed!(content in input);
                    let values = Punctuated::<Value, Token![,]>::parse_terminated_with(&content, parse_value)?;
                    if values.is_empty() {
                        cx.error(name.span(), format!("parameter `{name}` has no values"));
                    }
                    if self.params.iter().any(|(n, _)| *n == name.to_string()) {
                        cx.error(name.span(), format!("parameter `{name}` is declared twice"));
                    }
                    self.params.push((name.to_string(), values.into_iter().collect()));
                    Ok(())
                })?;
            }
            "constraint" => {
                let s: LitStr = meta.value()?.parse()?;
                self.spans.constraints.push(s.span());
                self.constraints.push(s.value());
            }
            "default" => {
                self.spans.default = Some(key.span());
                let mut pairs = Vec::new();
                meta.parse_nested_meta(|p| {
                    let name = key_of(&p)?;
                    let v = parse_value(p.value()?)?;
                    pairs.push((name.to_string(), v));
                    Ok(())
                })?;
                if self.default.is_some() {
                    cx.error(key.span(), "`default` is given twice");
                }
                self.default = Some(pairs);
            }
            "sizes" => {
                self.spans.sizes = Some(key.span());
                let points = parse_buckets(meta.input, cx, &mut self.spans.size_names)?;
                if self.buckets.is_some() {
                    cx.error(key.span(), "`sizes` is given twice");
                }
                if points.is_empty() {
                    cx.error(
                        key.span(),
                        "`sizes(...)` declares no point; give `sizes(n = [1024, 4096])` or leave it out",
                    );
                }
                self.buckets = Some(points);
            }
            "bench" => {
                self.saw_bench = true;
                meta.parse_nested_meta(|p| self.bench_key(p, cx))?;
            }
            other => {
                cx.error(key.span(), unknown_key(other, "#[autotune(...)]", KEYS));
                skip_value(&meta)?;
            }
        }
        Ok(())
    }

    fn bench_key(&mut self, meta: syn::meta::ParseNestedMeta, cx: &mut Ctxt) -> syn::Result<()> {
        let key = key_of(&meta)?;
        let name = key.to_string();
        let twice = |cx: &mut Ctxt| cx.error(key.span(), format!("`{name}` is given twice in bench(...)"));
        match name.as_str() {
            "args" => {
                let input = meta.value()?;
                let content;
                bracketed!(content in input);
                let list = Punctuated::<RawArg, Token![,]>::parse_terminated(&content)?;
                if self.args.is_some() {
                    twice(cx);
                }
                self.spans.args = list.iter().map(|a| a.span).collect();
                self.args = Some(list.into_iter().map(|a| a.arg).collect());
            }
            "grid" | "block" => {
                let dims = parse_dims(meta.value()?)?;
                let spans = dims.iter().map(LitStr::span).collect();
                let values = dims.iter().map(LitStr::value).collect();
                let (slot, span_slot) = if name == "grid" {
                    (&mut self.grid, &mut self.spans.grid)
                } else {
                    (&mut self.block, &mut self.spans.block)
                };
                if slot.is_some() {
                    twice(cx);
                }
                *slot = Some(values);
                *span_slot = spans;
            }
            "shared" | "bytes" | "flops" => {
                let s: LitStr = meta.value()?.parse()?;
                let (slot, span) = match name.as_str() {
                    "shared" => (&mut self.shared, &mut self.spans.shared),
                    "bytes" => (&mut self.bytes, &mut self.spans.bytes),
                    _ => (&mut self.flops, &mut self.spans.flops),
                };
                if slot.is_some() {
                    twice(cx);
                }
                *slot = Some(s.value());
                *span = Some(s.span());
            }
            _ => {
                // Any other key is a problem size; a string value is most likely a misspelt key.
                let value = meta.value()?;
                if value.peek(LitStr) {
                    let s: LitStr = value.parse()?;
                    cx.error(
                        key.span(),
                        format!(
                            "{}; a problem size takes an integer, not a string",
                            unknown_key(&name, "bench(...)", BENCH_KEYS)
                        ),
                    );
                    drop(s);
                    return Ok(());
                }
                let e: syn::Expr = value.parse()?;
                match eval_size(&e, &self.sizes) {
                    Ok(v) => {
                        if self.sizes.iter().any(|(n, _)| *n == name) {
                            twice(cx);
                        }
                        self.sizes.push((name, v));
                    }
                    Err(err) => cx.push(err),
                }
            }
        }
        Ok(())
    }

    fn finish(&self, fn_name: &str, call_site: Span, cx: &mut Ctxt) -> Option<KernelSpec> {
        let mut missing = Vec::new();
        if self.kernel.is_none() {
            missing.push("kernel = \"cuda/<file>.cu\"");
        }
        if self.entry.is_none() {
            missing.push("entry = \"<extern C name>\"");
        }
        if self.params.is_empty() {
            missing.push("space(<param> = [<values>], ...)");
        }
        if !self.saw_bench {
            missing.push("bench(...)");
        } else {
            if self.args.is_none() {
                missing.push("bench(args = [...])");
            }
            if self.grid.is_none() {
                missing.push("bench(grid = \"...\")");
            }
            if self.block.is_none() {
                missing.push("bench(block = \"...\")");
            }
        }
        if !missing.is_empty() {
            cx.error(call_site, format!("#[autotune] on `{fn_name}` is missing {}", missing.join(", ")));
            return None;
        }
        Some(KernelSpec {
            name: fn_name.to_owned(),
            kernel: self.kernel.clone()?,
            entry: self.entry.clone()?,
            params: self.params.clone(),
            constraints: self.constraints.clone(),
            default: self.default.clone(),
            bench: BenchSpec {
                sizes: self.sizes.clone(),
                args: self.args.clone()?,
                grid: self.grid.clone()?,
                block: self.block.clone()?,
                shared: self.shared.clone(),
                bytes: self.bytes.clone(),
                flops: self.flops.clone(),
            },
            buckets: self.buckets.clone().unwrap_or_default(),
        })
    }
}

/// The contents of `sizes(…)`: `name = [v, …], …` (the cross product, first name slowest) or
/// `[name = v, …], …` (points). Values are integer expressions of literals (`1 << 20`); a value that
/// cannot be evaluated is recorded in `cx`, spanned, and left out.
fn parse_buckets(
    input: ParseStream,
    cx: &mut Ctxt,
    spans: &mut Vec<(String, Span)>,
) -> syn::Result<Vec<Vec<(String, i64)>>> {
    parse_bucket_forms(input, cx, spans).map_err(|e| {
        syn::Error::new(
            e.span(),
            format!(
                "{e}; sizes(...) takes a list per size variable, `sizes(m = [1024, 4096], k = [4096])`, or points, \
                 `sizes([m = 1024, n = 1024], [m = 16384, n = 256])`"
            ),
        )
    })
}

fn parse_bucket_forms(
    input: ParseStream,
    cx: &mut Ctxt,
    spans: &mut Vec<(String, Span)>,
) -> syn::Result<Vec<Vec<(String, i64)>>> {
    let mut seen = |name: &syn::Ident| {
        if !spans.iter().any(|(n, _)| name == n) {
            spans.push((name.to_string(), name.span()));
        }
    };
    let content;
    syn::parenthesized!(content in input);
    let value = |e: &syn::Expr, cx: &mut Ctxt| match eval_size(e, &[]) {
        Ok(v) => Some(v),
        Err(err) => {
            cx.error(
                e.span(),
                format!(
                    "a value in sizes(...) is an integer expression of literals, such as `4096` or `1 << 20` ({err})"
                ),
            );
            None
        }
    };
    let mut points = Vec::new();
    if content.peek(syn::token::Bracket) {
        // Points: `[m = 1024, n = 256], [...]`.
        while !content.is_empty() {
            let inner;
            bracketed!(inner in content);
            let mut point: Vec<(String, i64)> = Vec::new();
            while !inner.is_empty() {
                let name: syn::Ident = inner.parse()?;
                seen(&name);
                inner.parse::<Token![=]>()?;
                let e: syn::Expr = inner.parse()?;
                if point.iter().any(|(n, _)| name == n) {
                    cx.error(name.span(), format!("`{name}` is given twice in one point"));
                }
                if let Some(v) = value(&e, cx) {
                    point.push((name.to_string(), v));
                }
                if !inner.is_empty() {
                    inner.parse::<Token![,]>()?;
                }
            }
            if point.is_empty() {
                cx.error(content.span(), "an empty point `[]`; a point names at least one size (`[n = 1024]`)");
            }
            points.push(point);
            if !content.is_empty() {
                content.parse::<Token![,]>()?;
            }
        }
        return Ok(points);
    }
    // Lists per variable: `m = [1024, 4096], k = [4096]`.
    let mut lists: Vec<(String, Vec<i64>)> = Vec::new();
    while !content.is_empty() {
        let name: syn::Ident = content.parse()?;
        seen(&name);
        content.parse::<Token![=]>()?;
        let inner;
        bracketed!(inner in content);
        let exprs = Punctuated::<syn::Expr, Token![,]>::parse_terminated(&inner)?;
        if exprs.is_empty() {
            cx.error(name.span(), format!("size `{name}` lists no value"));
        }
        if lists.iter().any(|(n, _)| name == n) {
            cx.error(name.span(), format!("size `{name}` is given twice in sizes(...)"));
        }
        let values: Vec<i64> = exprs.iter().filter_map(|e| value(e, cx)).collect();
        lists.push((name.to_string(), values));
        if !content.is_empty() {
            content.parse::<Token![,]>()?;
        }
    }
    points.push(Vec::new());
    for (name, values) in &lists {
        points = points
            .into_iter()
            .flat_map(|p| {
                values.iter().map(move |v| {
                    let mut p = p.clone();
                    p.push((name.clone(), *v));
                    p
                })
            })
            .collect();
    }
    Ok(points.into_iter().filter(|p| !p.is_empty()).collect())
}

/// Why a source file's specs could not be found.
#[derive(Debug, thiserror::Error)]
#[error("cannot parse Rust source")]
pub struct FindError(#[from] pub syn::Error);

/// Every `#[autotune(…)]` function in a Rust source file (also inside inline modules), in order, each
/// parsed into a spec or the error that names what is wrong with its attribute. The build script and
/// `cargo autotune record --spec FILE` both use this.
pub fn find_specs(source: &str) -> Result<Vec<Result<KernelSpec, syn::Error>>, FindError> {
    let file = syn::parse_file(source)?;
    let mut out = Vec::new();
    collect(&file.items, &mut out);
    Ok(out)
}

fn collect(items: &[syn::Item], out: &mut Vec<Result<KernelSpec, syn::Error>>) {
    for item in items {
        match item {
            syn::Item::Fn(f) => {
                for attr in &f.attrs {
                    if is_autotune(attr.path()) {
                        let name = f.sig.ident.to_string();
                        out.push(match &attr.meta {
                            syn::Meta::List(list) => KernelSpec::parse(&name, list.tokens.clone()),
                            other => Err(syn::Error::new(other.span(), "expected #[autotune(...)]")),
                        });
                    }
                }
            }
            syn::Item::Mod(m) => {
                if let Some((_, items)) = &m.content {
                    collect(items, out);
                }
            }
            _ => {}
        }
    }
}

/// `autotune`, `tuner_macro::autotune` or `tuner_runtime::autotune`.
pub fn is_autotune(path: &syn::Path) -> bool {
    path.segments.last().is_some_and(|s| s.ident == "autotune")
}

#[cfg(test)]
mod tests {
    use super::*;
    use quote::quote;

    fn vector_add() -> TokenStream {
        quote! {
            kernel = "cuda/vector_add.cu", entry = "vector_add",
            space(block = [64, 128, 256, 512, 1024], items = [1, 2, 4, 8], vec = [1, 2, 4]),
            constraint = "block * items <= 8192",
            constraint = "items % vec == 0",
            bench(n = 1 << 26, args = [in f32[n], in f32[n], out f32[n], n],
                  grid = "ceil_div(n, block * items)", block = "block", bytes = "12 * n"),
        }
    }

    fn err(tokens: TokenStream) -> String {
        let e = KernelSpec::parse("k", tokens).unwrap_err();
        e.into_iter().map(|e| e.to_string()).collect::<Vec<_>>().join("\n")
    }

    #[test]
    fn sizes_lists_take_the_cross_product_and_points_keep_the_bench_values() {
        let grid = KernelSpec::parse(
            "mm",
            quote! {
                kernel = "mm.cu", entry = "mm", space(b = [16]),
                sizes(m = [1024, 1 << 12], k = [256, 512]),
                bench(m = 4096, n = 4096, k = 4096, args = [out f32[m * n]], grid = "m / b", block = "b")
            },
        )
        .unwrap();
        let text: Vec<String> = grid.points().iter().map(|p| point_text(p)).collect();
        assert_eq!(text, ["m=1024 n=4096 k=256", "m=1024 n=4096 k=512", "m=4096 n=4096 k=256", "m=4096 n=4096 k=512"]);
        let points = KernelSpec::parse(
            "mm",
            quote! {
                kernel = "mm.cu", entry = "mm", space(b = [16]),
                sizes([m = 1024, n = 1024, k = 1024], [m = 16384, n = 256]),
                bench(m = 4096, n = 4096, k = 4096, args = [out f32[m * n]], grid = "m / b", block = "b")
            },
        )
        .unwrap();
        let text: Vec<String> = points.points().iter().map(|p| point_text(p)).collect();
        assert_eq!(text, ["m=1024 n=1024 k=1024", "m=16384 n=256 k=4096"]);
        // The spec at a point has that point's sizes and no buckets: it serialises as a spec that never
        // had any, so entries made before buckets existed keep their keys.
        let at = points.at(&points.points()[1]);
        assert_eq!(at.bench.sizes, [("m".into(), 16384), ("n".into(), 256), ("k".into(), 4096)]);
        assert!(at.buckets.is_empty());
        assert!(!serde_json::to_string(&at).unwrap().contains("buckets"));
        assert!(serde_json::to_string(&points).unwrap().contains("\"buckets\""));
        let mut plain = points.at(&points.bench.sizes);
        plain.buckets.clear();
        assert_eq!(plain.bench.sizes, points.bench.sizes);
        // Without sizes(...), the one point is the bench's.
        let one = KernelSpec::parse("vector_add", vector_add()).unwrap();
        assert_eq!(one.points(), vec![one.bench.sizes.clone()]);
    }

    #[test]
    fn bad_sizes_are_spanned_errors_naming_the_problem() {
        let e = err(quote! {
            kernel = "mm.cu", entry = "mm", space(b = [16]), sizes(mm = [1024]),
            bench(m = 4096, args = [out f32[m]], grid = "m / b", block = "b")
        });
        assert!(e.contains("`mm` is not a problem size of bench(...) (sizes: m); did you mean `m`?"), "{e}");
        let e = err(quote! {
            kernel = "mm.cu", entry = "mm", space(b = [16]), sizes(m = [0, 1024, 1024]),
            bench(m = 4096, args = [out f32[m]], grid = "m / b", block = "b")
        });
        assert!(e.contains("`m = 0`: a size is at least 1"), "{e}");
        let e = err(quote! {
            kernel = "mm.cu", entry = "mm", space(b = [16]), sizes(m = [2048, 2048]),
            bench(m = 4096, args = [out f32[m]], grid = "m / b", block = "b")
        });
        assert!(e.contains("the point m=2048 is given twice"), "{e}");
        let e = err(quote! {
            kernel = "mm.cu", entry = "mm", space(b = [16]), sizes([m = x]),
            bench(m = 4096, args = [out f32[m]], grid = "m / b", block = "b")
        });
        assert!(e.contains("a value in sizes(...) is an integer expression of literals"), "{e}");
        let e = err(quote! {
            kernel = "mm.cu", entry = "mm", space(b = [16]), sizes(m = 1024),
            bench(m = 4096, args = [out f32[m]], grid = "m / b", block = "b")
        });
        assert!(e.contains("sizes(...) takes a list per size variable"), "{e}");
        let e = err(quote! {
            kernel = "mm.cu", entry = "mm", space(b = [16]), sizes(),
            bench(m = 4096, args = [out f32[m]], grid = "m / b", block = "b")
        });
        assert!(e.contains("declares no point"), "{e}");
        // The default is every point's reference: it must fit each.
        let e = err(quote! {
            kernel = "mm.cu", entry = "mm", space(b = [16, 64]), constraint = "m % b == 0", default(b = 64),
            sizes(m = [1024, 1040]), bench(m = 4096, args = [out f32[m]], grid = "m / b", block = "b")
        });
        assert!(e.contains("the default does not fit at m=1040"), "{e}");
    }

    #[test]
    fn parses_the_design_example() {
        let s = KernelSpec::parse("vector_add", vector_add()).unwrap();
        assert_eq!(s.name, "vector_add");
        assert_eq!(s.kernel, "cuda/vector_add.cu");
        assert_eq!(s.params[0], ("block".into(), vec![64, 128, 256, 512, 1024].into_iter().map(Value::Int).collect()));
        assert_eq!(s.bench.sizes, vec![("n".into(), 1 << 26)]);
        assert_eq!(
            s.bench.args,
            vec![
                ArgSpec::Buffer { access: Access::In, elem: ElemType::F32, len: "n".into() },
                ArgSpec::Buffer { access: Access::In, elem: ElemType::F32, len: "n".into() },
                ArgSpec::Buffer { access: Access::Out, elem: ElemType::F32, len: "n".into() },
                ArgSpec::Scalar { ty: ScalarType::I32, value: "n".into() },
            ]
        );
        assert_eq!(s.bench.grid, vec!["ceil_div(n, block * items)"]);
        assert_eq!(s.bench.bytes.as_deref(), Some("12 * n"));
        let c = s.check().unwrap();
        // 5 blocks × 4 items × 3 vec, minus items % vec != 0 (items=1: vec 2,4; items=2: vec 4).
        assert_eq!(c.space().valid_count(), Some(5 * (4 * 3 - 3)));
        assert_eq!(c.default_config().to_string(), "{'block': 64, 'items': 1, 'vec': 1}");
        // The spec round-trips through JSON, as cache entries store it.
        let json = serde_json::to_string(&s).unwrap();
        assert_eq!(serde_json::from_str::<KernelSpec>(&json).unwrap(), s);
    }

    #[test]
    fn sizes_scalars_multi_dim_and_default() {
        let s = KernelSpec::parse(
            "sgemm",
            quote! {
                kernel = "cuda/sgemm.cu", entry = "sgemm",
                space(bm = [64, 128], bn = [64, 128], layout = ["row", "col"], pad = [true, false], off = [-1, 0]),
                constraint = "m % bm == 0",
                default(bn = 128, bm = 64, layout = "col", pad = false, off = -1),
                bench(m = 4096, n = m, k = m / 2, args = [in f32[m * k], inout bf16[k * n], m, u32(n), f32(k), i64(bm * 2)],
                      grid = ["ceil_div(n, bn)", "ceil_div(m, bm)"], block = "bm * bn / 64",
                      shared = "4 * (bm + bn) * 8", flops = "2 * m * n * k"),
            },
        )
        .unwrap();
        assert_eq!(s.bench.sizes, vec![("m".into(), 4096), ("n".into(), 4096), ("k".into(), 2048)]);
        assert_eq!(s.bench.grid.len(), 2);
        assert_eq!(
            s.bench.args[1],
            ArgSpec::Buffer { access: Access::InOut, elem: ElemType::Bf16, len: "k * n".into() }
        );
        assert_eq!(s.bench.args[3], ArgSpec::Scalar { ty: ScalarType::U32, value: "n".into() });
        assert_eq!(s.bench.args[4], ArgSpec::Scalar { ty: ScalarType::F32, value: "k".into() });
        assert_eq!(s.bench.args[5], ArgSpec::Scalar { ty: ScalarType::I64, value: "bm * 2".into() });
        let c = s.check().unwrap();
        assert_eq!(c.default_config().to_string(), "{'bm': 64, 'bn': 128, 'layout': 'col', 'pad': False, 'off': -1}");
        // The constraint names the size `m`, bound to 4096 inside the space: it reads the parameter only.
        assert_eq!(c.space().constraints()[0].expr.source(), "m % bm == 0");
        assert_eq!(c.space().constraints()[0].expr.slots(), vec![0]);
    }

    #[test]
    fn unknown_keys_list_the_valid_ones() {
        let e = err(
            quote! { kernal = "a.cu", entry = "e", space(b = [1]), bench(args = [out f32[1]], grid = "1", block = "b") },
        );
        assert!(e.contains("unknown key `kernal`"), "{e}");
        assert!(e.contains("did you mean `kernel`"), "{e}");
        assert!(e.contains("valid keys: kernel, entry, space, constraint, default, sizes, bench"), "{e}");
        let e = err(
            quote! { kernel = "a.cu", entry = "e", space(b = [1]), bench(args = [out f32[1]], gird = "1", block = "b") },
        );
        assert!(e.contains("unknown key `gird` in bench(...)"), "{e}");
        assert!(e.contains("did you mean `grid`"), "{e}");
    }

    #[test]
    fn every_error_is_reported_with_its_span() {
        let tokens = quote! {
            kernel = "a.cu", entry = "e", oops = 3,
            space(block = [64, 128], items = [1, 2]),
            constraint = "block * itms <= 8192",
            bench(n = 1024, args = [in f32[n * block], out f32[n]], grid = "ceil_div(n, blok)", block = "block"),
        };
        let e = KernelSpec::parse("k", tokens).unwrap_err();
        let msgs: Vec<String> = e.into_iter().map(|e| e.to_string()).collect();
        assert_eq!(msgs.len(), 4, "{msgs:#?}");
        assert!(msgs[0].contains("unknown key `oops`"));
        assert!(msgs[1].contains("constraint #1") && msgs[1].contains("unknown name `itms`"), "{msgs:#?}");
        assert!(msgs[2].contains("grid[0]") && msgs[2].contains("`blok`"), "{msgs:#?}");
        // Buffer lengths may only name sizes: a parameter would change the buffers between configs.
        assert!(msgs[3].contains("args[0] length") && msgs[3].contains("`block`"), "{msgs:#?}");
    }

    #[test]
    fn missing_parts_and_bad_values() {
        let e = err(quote! { kernel = "a.cu" });
        assert!(e.contains("missing entry"), "{e}");
        assert!(e.contains("space("), "{e}");
        assert!(e.contains("bench(...)"), "{e}");
        let e = err(
            quote! { kernel = "a.cu", entry = "e", space(b = [1, 1]), bench(args = [out f32[1]], grid = "1", block = "b") },
        );
        assert!(e.contains("lists the value 1 twice"), "{e}");
        let e = err(
            quote! { kernel = "a.cu", entry = "e", space(b = [1, 2]), default(b = 3), bench(args = [out f32[1]], grid = "1", block = "b") },
        );
        assert!(e.contains("default") && e.contains("does not allow 3"), "{e}");
        let e = err(
            quote! { kernel = "a.cu", entry = "e", space(b = [1]), bench(args = [in f64[1]], grid = "1", block = "b") },
        );
        assert!(e.contains("unknown element type `f64`"), "{e}");
        let e = err(
            quote! { kernel = "a.cu", entry = "e", space(b = [1]), bench(args = [in f32[1]], grid = "1", block = "b") },
        );
        assert!(e.contains("nothing to verify"), "{e}");
        let e = err(
            quote! { kernel = "a.cu", entry = "e", space(b = [1]), bench(n = m, args = [out f32[1]], grid = "1", block = "b") },
        );
        assert!(e.contains("unknown size `m`"), "{e}");
        let e = err(
            quote! { kernel = "a.cu", entry = "e", space(b = [1]), bench(n = 1 << 70, args = [out f32[1]], grid = "1", block = "b") },
        );
        assert!(e.contains("overflows"), "{e}");
    }

    #[test]
    fn check_catches_hand_edited_specs() {
        let mut s = KernelSpec::parse("vector_add", vector_add()).unwrap();
        assert!(s.check().is_ok());
        s.bench.grid = vec!["ceil_div(n, blocks)".into()];
        let e = s.check().unwrap_err();
        assert_eq!(*e.site(), Site::Grid(0));
        assert!(crate::error_chain(&e).contains("unknown name `blocks`"), "{}", crate::error_chain(&e));
    }

    #[test]
    fn constraints_bind_sizes_by_name_not_by_text() {
        let sizes = vec![("n".to_owned(), 8), ("m".to_owned(), -2)];
        let params =
            vec![("nb".to_owned(), vec![Value::Int(2), Value::Int(3)]), ("l".to_owned(), vec![Value::from("n")])];
        let space = Space::with_sizes(params, vec!["n % nb == 0 && l == 'n' && m < 0x1".into()], &sizes).unwrap();
        // nb = 2 divides 8, nb = 3 does not; the string 'n' is not the size n.
        assert_eq!(space.valid_count(), Some(1));
    }

    #[test]
    fn sizes_are_evaluated_by_the_expression_language() {
        let s = KernelSpec::parse(
            "k",
            quote! { kernel = "a.cu", entry = "e", space(b = [1]),
            bench(n = 1 << 20, m = (n >> 4) * 3 + 1_000, p = 4u32, args = [out f32[n]], grid = "1", block = "b") },
        )
        .unwrap();
        assert_eq!(s.bench.sizes, vec![("n".into(), 1 << 20), ("m".into(), (1 << 16) * 3 + 1000), ("p".into(), 4)]);
    }

    #[test]
    fn finds_specs_in_a_source_file() {
        let src = r#"
            use tuner_macro::autotune;
            /// Adds.
            #[autotune(kernel = "cuda/v.cu", entry = "v", space(b = [1, 2]),
                       bench(n = 8, args = [out f32[n], n], grid = "n / b", block = "b"))]
            pub fn v() {}
            pub fn plain() {}
            mod inner {
                #[tuner_macro::autotune(kernel = "cuda/w.cu", entry = "w", space(b = [1]))]
                fn w() {}
            }
        "#;
        let specs = find_specs(src).unwrap();
        assert_eq!(specs.len(), 2);
        assert_eq!(specs[0].as_ref().unwrap().name, "v");
        let e = specs[1].as_ref().unwrap_err().to_string();
        assert!(e.contains("`w` is missing bench(...)"), "{e}");
        assert!(find_specs("fn (").is_err());
    }
}
