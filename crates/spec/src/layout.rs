//! A bench spec made ready to launch: buffers, scalars, grid, block and shared memory for one config.
//!
//! [`Layout::bind`] (through [`KernelSpec::check`], which every [`crate::CheckedSpec`] went through) binds
//! every expression of a [`KernelSpec`]'s bench once (names → slots: the problem
//! sizes first, then the parameters), evaluates the buffer lengths (they depend on sizes only, so one set
//! of buffers serves every config), and [`Layout::launch`] evaluates the rest for a config. The `-D`
//! defines a config is compiled with come from [`defines`]. Nothing here touches a GPU, so CI tests the
//! whole argument layout; the `cuda` module only turns a [`Launch`] into driver calls.

use crate::config::Config;
use crate::dispatch::Geometry;
use crate::expr::{EvalError, Expr};
use crate::spec::{Access, ArgSpec, ElemType, KernelSpec, ScalarType};
use crate::value::Value;

/// Why a spec cannot be laid out, or a config cannot be launched.
#[derive(Debug, thiserror::Error)]
pub enum LayoutError {
    #[error("cannot evaluate {what} `{expr}`")]
    Eval {
        what: String,
        expr: String,
        #[source]
        source: EvalError,
    },
    #[error("{what} `{expr}` is {value}, outside {range}")]
    OutOfRange { what: String, expr: String, value: i64, range: &'static str },
    #[error("the config does not set parameter `{0}`")]
    MissingParam(String),
}

/// One kernel argument after binding.
#[derive(Clone, Debug)]
pub enum BoundArg {
    /// A device buffer of `len` elements.
    Buffer { access: Access, elem: ElemType, len: usize },
    /// A scalar computed per config.
    Scalar { ty: ScalarType, expr: Expr },
}

/// A scalar argument's value, in the type the kernel declares.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum ScalarValue {
    I32(i32),
    U32(u32),
    I64(i64),
    F32(f32),
}

/// Everything one launch of one config needs besides the buffers themselves.
#[derive(Clone, Debug, PartialEq)]
pub struct Launch {
    pub grid: [u32; 3],
    pub block: [u32; 3],
    /// Dynamic shared memory, in bytes.
    pub shared: u32,
    /// One entry per argument: the scalar's value, `None` for buffers.
    pub scalars: Vec<Option<ScalarValue>>,
    /// Bytes moved per launch, when the spec gives a formula.
    pub bytes: Option<f64>,
    /// Floating-point operations per launch, when the spec gives a formula.
    pub flops: Option<f64>,
}

impl Launch {
    pub fn threads_per_block(&self) -> u64 {
        self.block.iter().map(|&b| b as u64).product()
    }

    /// Grid, block and dynamic shared memory: what a launch configuration takes.
    pub fn geometry(&self) -> Geometry {
        Geometry { grid: self.grid, block: self.block, shared: self.shared }
    }
}

/// A spec's bench, bound once and evaluated per config.
#[derive(Clone, Debug)]
pub struct Layout {
    /// Slot values for the sizes; the parameters follow them.
    sizes: Vec<Value>,
    params: Vec<String>,
    grid: Vec<Expr>,
    block: Vec<Expr>,
    shared: Option<Expr>,
    bytes: Option<Expr>,
    flops: Option<Expr>,
    pub args: Vec<BoundArg>,
}

impl Layout {
    /// Binds `spec`'s bench; every expression must already parse against its names (the semantic
    /// checks of [`KernelSpec::check`] run first).
    pub(crate) fn bind(spec: &KernelSpec) -> Result<Layout, LayoutError> {
        let params: Vec<String> = spec.params.iter().map(|(n, _)| n.clone()).collect();
        let mut names: Vec<&str> = spec.bench.sizes.iter().map(|(n, _)| n.as_str()).collect();
        let size_names = names.clone();
        names.extend(params.iter().map(String::as_str));
        let sizes: Vec<Value> = spec.bench.sizes.iter().map(|(_, v)| Value::Int(*v)).collect();
        // `check` has parsed every expression against these names already.
        let bind = |src: &str| Expr::parse_with_names(src, &names).expect("checked by KernelSpec::check");
        let mut args = Vec::new();
        for a in &spec.bench.args {
            args.push(match a {
                ArgSpec::Buffer { access, elem, len } => {
                    let e = Expr::parse_with_names(len, &size_names).expect("checked by KernelSpec::check");
                    let n = e.eval_i64(&sizes).map_err(|source| LayoutError::Eval {
                        what: "buffer length".into(),
                        expr: len.clone(),
                        source,
                    })?;
                    let len = usize::try_from(n).ok().filter(|n| *n > 0).ok_or_else(|| LayoutError::OutOfRange {
                        what: "buffer length".into(),
                        expr: len.clone(),
                        value: n,
                        range: "1..",
                    })?;
                    BoundArg::Buffer { access: *access, elem: *elem, len }
                }
                ArgSpec::Scalar { ty, value } => BoundArg::Scalar { ty: *ty, expr: bind(value) },
            });
        }
        Ok(Layout {
            grid: spec.bench.grid.iter().map(|s| bind(s)).collect(),
            block: spec.bench.block.iter().map(|s| bind(s)).collect(),
            shared: spec.bench.shared.as_deref().map(bind),
            bytes: spec.bench.bytes.as_deref().map(bind),
            flops: spec.bench.flops.as_deref().map(bind),
            sizes,
            params,
            args,
        })
    }

    /// The buffers, with their argument index.
    pub fn buffers(&self) -> impl Iterator<Item = (usize, Access, ElemType, usize)> + '_ {
        self.args.iter().enumerate().filter_map(|(i, a)| match a {
            BoundArg::Buffer { access, elem, len } => Some((i, *access, *elem, *len)),
            BoundArg::Scalar { .. } => None,
        })
    }

    /// Bytes of device memory the buffers take.
    pub fn buffer_bytes(&self) -> usize {
        self.buffers().map(|(_, _, e, n)| e.size() * n).sum()
    }

    fn slots(&self, config: &Config) -> Result<Vec<Value>, LayoutError> {
        let mut slots = self.sizes.clone();
        for p in &self.params {
            slots.push(config.get(p).cloned().ok_or_else(|| LayoutError::MissingParam(p.clone()))?);
        }
        Ok(slots)
    }

    /// Evaluates geometry, scalars and throughput formulas for `config`.
    pub fn launch(&self, config: &Config) -> Result<Launch, LayoutError> {
        let slots = self.slots(config)?;
        let eval = |what: &str, e: &Expr| {
            e.eval_i64(&slots).map_err(|source| LayoutError::Eval {
                what: what.to_owned(),
                expr: e.source().to_owned(),
                source,
            })
        };
        let range = |what: &str, e: &Expr, v: i64, lo: i64, hi: i64, desc: &'static str| {
            if v < lo || v > hi {
                Err(LayoutError::OutOfRange {
                    what: what.to_owned(),
                    expr: e.source().to_owned(),
                    value: v,
                    range: desc,
                })
            } else {
                Ok(v)
            }
        };
        let dims = |exprs: &[Expr], what: &str| -> Result<[u32; 3], LayoutError> {
            let mut out = [1u32; 3];
            for (i, e) in exprs.iter().enumerate() {
                let v = eval(what, e)?;
                out[i] = range(what, e, v, 1, u32::MAX as i64, "1..=4294967295")? as u32;
            }
            Ok(out)
        };
        let grid = dims(&self.grid, "grid dimension")?;
        let block = dims(&self.block, "block dimension")?;
        let shared = match &self.shared {
            Some(e) => {
                range("shared memory", e, eval("shared memory", e)?, 0, u32::MAX as i64, "0..=4294967295")? as u32
            }
            None => 0,
        };
        let mut scalars = Vec::with_capacity(self.args.len());
        for a in &self.args {
            scalars.push(match a {
                BoundArg::Buffer { .. } => None,
                BoundArg::Scalar { ty, expr } => {
                    let v = eval("scalar argument", expr)?;
                    Some(match ty {
                        ScalarType::I32 => {
                            ScalarValue::I32(
                                range("scalar argument", expr, v, i32::MIN as i64, i32::MAX as i64, "i32")? as i32,
                            )
                        }
                        ScalarType::U32 => {
                            ScalarValue::U32(range("scalar argument", expr, v, 0, u32::MAX as i64, "u32")? as u32)
                        }
                        ScalarType::I64 => ScalarValue::I64(v),
                        ScalarType::F32 => ScalarValue::F32(v as f32),
                    })
                }
            });
        }
        let bytes = self.bytes.as_ref().map(|e| eval("bytes", e)).transpose()?.map(|v| v as f64);
        let flops = self.flops.as_ref().map(|e| eval("flops", e)).transpose()?.map(|v| v as f64);
        Ok(Launch { grid, block, shared, scalars, bytes, flops })
    }
}

/// The compiler defines for a config: each parameter `p` as `-DP=value` (the name upper-cased, booleans as
/// 0/1, strings as they are), which the kernel reads through `#ifndef P / #define P default`.
pub fn defines(config: &Config) -> Vec<String> {
    config.iter().map(|(n, v)| format!("-D{}={}", n.to_uppercase(), v.to_define())).collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use quote::quote;

    fn spec() -> KernelSpec {
        KernelSpec::parse(
            "sgemm",
            quote! {
                kernel = "cuda/sgemm.cu", entry = "sgemm",
                space(bm = [64, 128], tm = [4, 8], vec = [true, false]),
                bench(m = 512, n = 256, k = 1 << 7,
                      args = [in f32[m * k], in f16[k * n], out f32[m * n], m, u32(n), i64(k * bm), f32(k)],
                      grid = ["ceil_div(n, 64)", "ceil_div(m, bm)"], block = "bm / tm * 16",
                      shared = "4 * bm * 8 + vec * 16", bytes = "4 * (m * k + k * n + m * n)", flops = "2 * m * n * k"),
            },
        )
        .unwrap()
    }

    #[test]
    fn buffers_are_sized_once_from_the_problem() {
        let l = spec().check().unwrap().layout().clone();
        let bufs: Vec<_> = l.buffers().collect();
        assert_eq!(
            bufs,
            vec![
                (0, Access::In, ElemType::F32, 512 * 128),
                (1, Access::In, ElemType::F16, 128 * 256),
                (2, Access::Out, ElemType::F32, 512 * 256)
            ]
        );
        assert_eq!(l.buffer_bytes(), 4 * 512 * 128 + 2 * 128 * 256 + 4 * 512 * 256);
    }

    #[test]
    fn launch_geometry_and_scalars_per_config() {
        let s = spec().check().unwrap();
        let space = s.space();
        let l = s.layout();
        let cfg = space.config(
            &space
                .point_of_pairs([
                    ("bm".into(), Value::Int(128)),
                    ("tm".into(), Value::Int(8)),
                    ("vec".into(), Value::Bool(true)),
                ])
                .unwrap(),
        );
        let launch = l.launch(&cfg).unwrap();
        assert_eq!(launch.grid, [4, 4, 1]);
        assert_eq!(launch.block, [256, 1, 1]);
        assert_eq!(launch.threads_per_block(), 256);
        assert_eq!(launch.shared, 4 * 128 * 8 + 16);
        assert_eq!(
            launch.scalars,
            vec![
                None,
                None,
                None,
                Some(ScalarValue::I32(512)),
                Some(ScalarValue::U32(256)),
                Some(ScalarValue::I64(128 * 128)),
                Some(ScalarValue::F32(128.0))
            ]
        );
        assert_eq!(launch.flops, Some(2.0 * 512.0 * 256.0 * 128.0));
        assert_eq!(defines(&cfg), vec!["-DBM=128", "-DTM=8", "-DVEC=1"]);
    }

    #[test]
    fn bad_geometry_is_an_error_not_a_launch() {
        let mut s = spec();
        s.bench.block = vec!["bm - 128".into()];
        let c = s.check().unwrap();
        let space = c.space();
        let cfg = space.config(&space.valid_points().unwrap()[0]);
        let e = c.layout().launch(&cfg).unwrap_err();
        assert!(matches!(e, LayoutError::OutOfRange { value: -64, .. }), "{e}");
        s.bench.block = vec!["bm / (tm - 4)".into()];
        let e = s.check().unwrap().layout().launch(&cfg).unwrap_err();
        assert!(matches!(e, LayoutError::Eval { source: EvalError::DivisionByZero, .. }), "{e}");
    }
}
