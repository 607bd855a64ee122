//! Code generation: the tuned configs of one kernel as Rust items, written to `$OUT_DIR/autotune/<fn>.rs`.
//!
//! The `#[autotune]` macro `include!`s the file into a module next to the launcher (`<fn>_tuning`). It
//! holds:
//!
//! - `struct Tuned`: one field per declared parameter, typed from the declared values (integers that all
//!   fit are `u32`, others `i64`; booleans `bool`; strings `&'static str`);
//! - `Tuned::DEFAULT` and `Tuned::params()` (name/value pairs for the kernel's `-D` defines);
//! - `CONFIGS`: the distinct configs, the default first; `ENTRIES`: one per fresh cache entry, its device
//!   (name, compute capability), the sizes it was tuned at and its config's index;
//! - `SPEC`: the declared spec as JSON, whose constraints and launch geometry the dispatcher evaluates
//!   at a launch's real sizes; `TABLE`: the dispatcher (`tuner_runtime::__private::Table`), which picks
//!   a config per (device, sizes) once and caches it ([`tuner_spec::dispatch`] has the rules);
//! - `for_device(name, cc)` and `tuned()`: the choice at the bench sizes, for launchers that do not pass
//!   their sizes;
//! - `SOURCES`: the cache files the values came from.
//!
//! # Cache files are data
//!
//! Every value that came from a cache file is first checked against the *declared* space (the one parsed
//! from the attribute in the source, not the one stored in the entry), then emitted with `quote!` as a
//! typed literal (`proc_macro2::Literal::u32_suffixed`, `Literal::string`, …). Nothing read from a file is
//! ever formatted into Rust source text, so a crafted entry can at worst pick another declared value;
//! anything outside the space is a [`CodegenError::Entry`] naming the file. Names of fields come from the
//! declared spec only.

use std::path::{Path, PathBuf};

use proc_macro2::{Ident, Literal, Span, TokenStream};
use quote::quote;

use crate::cache::{Cached, Corruption};
use tuner_spec::config::Config;
use tuner_spec::dispatch::{Dispatch, TunedPoint};
use tuner_spec::space::{Space, SpaceError};
use tuner_spec::spec::{KernelSpec, SpecError};
use tuner_spec::value::{Value, ValueType};
use tuner_spec::CheckedSpec;

/// Why a kernel's code could not be generated.
#[derive(Debug, thiserror::Error)]
pub enum CodegenError {
    #[error("kernel `{kernel}`: parameter `{param}` is not a Rust identifier, so it cannot be a field of `Tuned`")]
    BadName { kernel: String, param: String },
    #[error("kernel `{kernel}`: the declared space is invalid")]
    Space {
        kernel: String,
        #[source]
        source: SpaceError,
    },
    #[error("kernel `{kernel}`: no default config")]
    Default {
        kernel: String,
        #[source]
        source: Box<SpecError>,
    },
    #[error("cache entry {path} does not fit the declared space of kernel `{kernel}`; delete it and run `cargo autotune tune`")]
    Entry {
        path: PathBuf,
        kernel: String,
        #[source]
        source: Box<Corruption>,
    },
    #[error("kernel `{kernel}`: cannot build the dispatch table: {message}")]
    Dispatch { kernel: String, message: String },
    #[error("cannot write generated code {path}")]
    Write {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
}

/// The Rust type a parameter's field gets.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum FieldType {
    U32,
    I64,
    Bool,
    Str,
}

struct Field {
    name: String,
    ident: Ident,
    ty: FieldType,
}

/// Generates the items for `spec` (the declared spec) from its fresh cache entries (any number: one per
/// device and size point).
pub fn generate(spec: &CheckedSpec, entries: &[Cached]) -> Result<TokenStream, CodegenError> {
    let kernel = spec.name.clone();
    let space = spec.space();
    let fields = fields(spec, space)?;
    let default = spec.default_config().clone();

    let field_defs = fields.iter().map(|f| {
        let (ident, ty) = (&f.ident, f.ty.tokens());
        let doc = format!("`{}`", f.name);
        quote!(#[doc = #doc] pub #ident: #ty)
    });
    let params = fields.iter().map(|f| {
        let (ident, name) = (&f.ident, Literal::string(&f.name));
        let value = match f.ty {
            FieldType::U32 | FieldType::I64 => quote!(::tuner_runtime::__private::Value::Int(self.#ident as i64)),
            FieldType::Bool => quote!(::tuner_runtime::__private::Value::Bool(self.#ident)),
            FieldType::Str => quote!(::tuner_runtime::__private::Value::Str(::std::string::String::from(self.#ident))),
        };
        quote!((#name, #value))
    });
    let param_names = fields.iter().map(|f| Literal::string(&f.name));
    let size_names = spec.bench.sizes.iter().map(|(n, _)| Literal::string(n));
    let n_params = fields.len();
    let default_lit = literal(&fields, &default);

    let (configs, indices) = configs_of(spec, entries)?;
    let mut entry_lits = Vec::with_capacity(entries.len());
    let mut sources = Vec::with_capacity(entries.len());
    for (cached, index) in entries.iter().zip(indices) {
        let device = Literal::string(&cached.entry.device.name);
        let (major, minor) = cached.entry.device.compute_capability;
        let (major, minor) = (Literal::u32_suffixed(major), Literal::u32_suffixed(minor));
        let sizes = cached.entry.point().iter().map(|(_, v)| Literal::i64_suffixed(*v));
        let index = Literal::usize_suffixed(index);
        entry_lits.push(quote! {
            ::tuner_runtime::__private::DeviceEntry {
                device: #device,
                compute_capability: (#major, #minor),
                sizes: &[#(#sizes),*],
                config: #index,
            }
        });
        sources.push(Literal::string(&display_name(&cached.path)));
    }
    let config_lits = configs.iter().map(|c| literal(&fields, c));
    // The declared spec (from the attribute in the source, never from a cache file) as a string
    // literal: the dispatcher evaluates its constraints and launch geometry at a launch's sizes.
    let spec_json = Literal::string(&serde_json::to_string(spec.spec()).expect("a spec always serialises"));

    let struct_doc = format!("The tuned parameters of `{kernel}`, typed as declared.");
    Ok(quote! {
        #[doc = #struct_doc]
        #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
        pub struct Tuned {
            #(#field_defs,)*
        }

        impl Tuned {
            /// The default config: what runs where no cache entry applies.
            pub const DEFAULT: Tuned = #default_lit;

            /// The parameters as name/value pairs in declaration order, as the kernel's `-D` defines.
            pub fn params(&self) -> [(&'static str, ::tuner_runtime::__private::Value); #n_params] {
                [#(#params,)*]
            }
        }

        fn config_values(config: &Tuned) -> ::std::vec::Vec<::tuner_runtime::__private::Value> {
            config.params().into_iter().map(|(_, v)| v).collect()
        }

        /// The parameter names, in declaration order.
        pub const PARAMS: &[&str] = &[#(#param_names),*];

        /// The problem-size variables, in declaration order: what a launch passes to `KERNEL.plan`.
        pub const SIZES: &[&str] = &[#(#size_names),*];

        /// The distinct configs of the entries, the default first.
        pub const CONFIGS: &[Tuned] = &[#(#config_lits),*];

        /// One per cache entry: a device, the sizes it was tuned at and its best config (an index into
        /// `CONFIGS`).
        pub const ENTRIES: &[::tuner_runtime::__private::DeviceEntry] = &[#(#entry_lits,)*];

        /// The cache files the entries were read from.
        pub const SOURCES: &[&str] = &[#(#sources,)*];

        /// The declared spec, as JSON.
        pub const SPEC: &str = #spec_json;

        /// The dispatch table: picks a config per device and launch sizes, cached.
        pub static TABLE: ::tuner_runtime::__private::Table<Tuned> =
            ::tuner_runtime::__private::Table::new(SPEC, PARAMS, SIZES, CONFIGS, ENTRIES, config_values);

        /// The config for the GPU named `name` with compute capability `compute_capability` at the bench
        /// sizes: the nearest entry (its own, else the nearest device's), else the default.
        pub fn for_device(name: &str, compute_capability: (u32, u32)) -> Tuned {
            *TABLE.at_bench(name, compute_capability)
        }

        /// The config for the GPU this process runs on (device 0) at the bench sizes, chosen once (the
        /// default when no GPU is visible). Launches that pass their sizes to `KERNEL.plan` get the
        /// config chosen for those sizes and their stream's device instead.
        pub fn tuned() -> &'static Tuned {
            TABLE.at_bench_running()
        }
    })
}

/// The distinct configs of `entries` (the default first) and each entry's index among them. Every
/// entry's best config is checked against the declared space *at its point* (a tile that divides its
/// own sizes need not divide the bench's); one that does not belong is an error naming the file.
pub fn configs_of(spec: &CheckedSpec, entries: &[Cached]) -> Result<(Vec<Config>, Vec<usize>), CodegenError> {
    let mut configs: Vec<Config> = vec![spec.default_config().clone()];
    let mut indices = Vec::with_capacity(entries.len());
    for cached in entries {
        let bad = |e| CodegenError::Entry { path: cached.path.clone(), kernel: spec.name.clone(), source: Box::new(e) };
        let at = spec.at(cached.entry.point()).check().map_err(|e| bad(Corruption::Spec(Box::new(e))))?;
        let best = cached.entry.best_config(at.space()).map_err(bad)?;
        indices.push(match configs.iter().position(|c| *c == best) {
            Some(i) => i,
            None => {
                configs.push(best);
                configs.len() - 1
            }
        });
    }
    Ok((configs, indices))
}

/// The dispatcher the generated code builds at run time, built here from the same configs and entries:
/// what `cargo autotune which` and `check --device` ask.
pub fn dispatch_of(spec: &CheckedSpec, entries: &[Cached]) -> Result<Dispatch, CodegenError> {
    let (configs, indices) = configs_of(spec, entries)?;
    let points = entries
        .iter()
        .zip(indices)
        .map(|(c, config)| TunedPoint {
            device: c.entry.device.name.clone(),
            compute_capability: c.entry.device.compute_capability,
            sizes: c.entry.point().iter().map(|(_, v)| *v).collect(),
            config,
        })
        .collect();
    let values = configs.iter().map(|c| c.values().to_vec()).collect();
    Dispatch::new(spec, values, points)
        .map_err(|e| CodegenError::Dispatch { kernel: spec.name.clone(), message: e.to_string() })
}

/// The generated items as file contents.
pub fn render(spec: &CheckedSpec, entries: &[Cached]) -> Result<String, CodegenError> {
    let tokens = generate(spec, entries)?;
    let mut out =
        String::from("// @generated by tuner_runtime::build from the #[autotune] attribute and cache entries.\n");
    // One item per line keeps the file readable in error messages without a formatter dependency.
    for item in syn::parse2::<syn::File>(tokens.clone()).map(|f| f.items).unwrap_or_default() {
        out.push_str(&quote!(#item).to_string());
        out.push('\n');
    }
    if out.lines().count() == 1 {
        out.push_str(&tokens.to_string());
        out.push('\n');
    }
    Ok(out)
}

/// Renders and writes `$OUT_DIR/autotune/<fn>.rs`, leaving an identical file untouched.
pub fn write(out_dir: &Path, spec: &CheckedSpec, entries: &[Cached]) -> Result<PathBuf, CodegenError> {
    let text = render(spec, entries)?;
    let path = tuner_spec::generated_path(out_dir, &spec.name);
    if std::fs::read(&path).ok().as_deref() != Some(text.as_bytes()) {
        tuner_search::fsutil::write_atomic(&path, text.as_bytes())
            .map_err(|source| CodegenError::Write { path: path.clone(), source })?;
    }
    Ok(path)
}

fn display_name(path: &Path) -> String {
    path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_else(|| path.display().to_string())
}

fn fields(spec: &KernelSpec, space: &Space) -> Result<Vec<Field>, CodegenError> {
    space
        .params()
        .iter()
        .map(|p| {
            let ident = syn::parse_str::<Ident>(&p.name)
                .map_err(|_| CodegenError::BadName { kernel: spec.name.clone(), param: p.name.clone() })?;
            let ty = match p.value_type {
                ValueType::Bool => FieldType::Bool,
                ValueType::Str => FieldType::Str,
                ValueType::Int if p.values.iter().all(|v| v.as_i64().is_some_and(|i| u32::try_from(i).is_ok())) => {
                    FieldType::U32
                }
                ValueType::Int => FieldType::I64,
            };
            Ok(Field { name: p.name.clone(), ident: Ident::new(&ident.to_string(), Span::call_site()), ty })
        })
        .collect()
}

impl FieldType {
    fn tokens(self) -> TokenStream {
        match self {
            FieldType::U32 => quote!(u32),
            FieldType::I64 => quote!(i64),
            FieldType::Bool => quote!(bool),
            FieldType::Str => quote!(&'static str),
        }
    }
}

/// `Tuned { a: 1u32, … }` for a config already checked against the declared space.
fn literal(fields: &[Field], config: &Config) -> TokenStream {
    let inits = fields.iter().map(|f| {
        let ident = &f.ident;
        let value = config.get(&f.name).expect("a config of the declared space has every declared parameter");
        let lit = match (f.ty, value) {
            (FieldType::U32, Value::Int(i)) => {
                let v = u32::try_from(*i).expect("u32 fields hold only values that fit");
                quote!(#v)
            }
            (FieldType::I64, Value::Int(i)) => {
                let v = Literal::i64_suffixed(*i);
                quote!(#v)
            }
            (FieldType::Bool, Value::Bool(b)) => quote!(#b),
            (FieldType::Str, Value::Str(s)) => {
                let v = Literal::string(s);
                quote!(#v)
            }
            _ => unreachable!("a space's values all have the parameter's type"),
        };
        quote!(#ident: #lit)
    });
    quote!(Tuned { #(#inits,)* })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cache::{cache_key, config_json, source_hash, Entry, TuningInfo, FORMAT_VERSION};
    use tuner_spec::device::DeviceFingerprint;
    use tuner_spec::spec::{Access, ArgSpec, BenchSpec, ElemType};

    fn spec() -> KernelSpec {
        KernelSpec {
            name: "scale".into(),
            kernel: "cuda/scale.cu".into(),
            entry: "scale".into(),
            params: vec![
                ("block".into(), vec![64.into(), 128.into(), 256.into()]),
                ("offset".into(), vec![(-1).into(), 0.into(), 5_000_000_000i64.into()]),
                ("unroll".into(), vec![false.into(), true.into()]),
                ("layout".into(), vec!["row".into(), "col".into()]),
            ],
            constraints: vec![],
            default: Some(vec![
                ("block".into(), 256.into()),
                ("offset".into(), 0.into()),
                ("unroll".into(), false.into()),
                ("layout".into(), "row".into()),
            ]),
            bench: BenchSpec {
                sizes: vec![("n".into(), 1024)],
                args: vec![ArgSpec::Buffer { access: Access::Out, elem: ElemType::F32, len: "n".into() }],
                grid: vec!["ceil_div(n, block)".into()],
                block: vec!["block".into()],
                shared: None,
                bytes: None,
                flops: None,
            },
            buckets: vec![],
        }
    }

    fn cached(best: &[(&str, Value)], name: &str, cc: (u32, u32)) -> Cached {
        let s = spec();
        let device = DeviceFingerprint { name: name.into(), compute_capability: cc, driver: None, nvrtc: None };
        let source_blake3 = source_hash(b"src");
        let best = best.iter().map(|(n, v)| (n.to_string(), v.to_json())).collect();
        let entry = Entry {
            format_version: FORMAT_VERSION,
            key: cache_key(&source_blake3, &s, &device),
            kernel: s.name.clone(),
            source_blake3,
            spec: s.clone(),
            device,
            best,
            best_score: 1.0,
            best_time_ms: None,
            default: config_json(s.check().unwrap().default_config()),
            default_time_ms: None,
            tuning: TuningInfo {
                strategy: "test".into(),
                objective: "test".into(),
                evaluations: 1,
                valid: 1,
                wall_seconds: 0.0,
                tuned_at: 0,
                tool: "test".into(),
            },
            starts: vec![],
        };
        Cached { path: PathBuf::from(format!("/cache/{}", entry.file_name())), entry }
    }

    fn best() -> Vec<(&'static str, Value)> {
        vec![("block", 128.into()), ("offset", (-1).into()), ("unroll", true.into()), ("layout", "col".into())]
    }

    #[test]
    fn fields_are_typed_from_the_declared_values() {
        let text = generate(&spec().check().unwrap(), &[]).unwrap().to_string();
        for want in ["pub block : u32", "pub offset : i64", "pub unroll : bool", "pub layout : & 'static str"] {
            assert!(text.contains(want), "missing `{want}` in {text}");
        }
        assert!(text.contains("block : 256u32 , offset : 0i64 , unroll : false , layout : \"row\""), "{text}");
        assert!(text.contains("ENTRIES : & [") && text.contains("= & [] ;"), "no entries: {text}");
    }

    #[test]
    fn entries_become_typed_literals_per_device() {
        let c = cached(&best(), "NVIDIA H100 80GB HBM3", (9, 0));
        let text = generate(&spec().check().unwrap(), &[c]).unwrap().to_string();
        assert!(text.contains("device : \"NVIDIA H100 80GB HBM3\" , compute_capability : (9u32 , 0u32)"), "{text}");
        assert!(text.contains("block : 128u32 , offset : - 1i64 , unroll : true , layout : \"col\""), "{text}");
        // The output parses as Rust items.
        let file: syn::File = syn::parse2(generate(&spec().check().unwrap(), &[]).unwrap()).unwrap();
        assert!(file.items.len() >= 5);
    }

    #[test]
    fn values_outside_the_declared_space_are_errors_naming_the_file() {
        let mut bad = best();
        bad[0].1 = 100.into();
        let c = cached(&bad, "GPU", (9, 0));
        let err = generate(&spec().check().unwrap(), &[c]).unwrap_err();
        assert!(err.to_string().contains("/cache/scale-gpu-"), "{err}");
        assert!(matches!(err, CodegenError::Entry { .. }));
    }

    /// A string crafted to close the literal and add code stays one escaped string literal, and is
    /// refused anyway because the declared space does not hold it.
    #[test]
    fn crafted_strings_never_become_code() {
        let payload = "row\" } ; fn evil() { } const X : & str = \"";
        let mut bad = best();
        bad[3].1 = payload.into();
        let err = generate(&spec().check().unwrap(), &[cached(&bad, "GPU", (9, 0))]).unwrap_err();
        assert!(tuner_spec::error_chain(&err).contains("does not allow"), "{err}");
        // Device names are emitted, escaped, as they are.
        let c = cached(&best(), "GPU\"; fn evil() {} //", (9, 0));
        let file: syn::File = syn::parse2(generate(&spec().check().unwrap(), &[c]).unwrap()).unwrap();
        let evil = file.items.iter().any(|i| matches!(i, syn::Item::Fn(f) if f.sig.ident == "evil"));
        assert!(!evil, "a device name became code");
    }

    #[test]
    fn files_are_written_only_when_they_change() {
        let dir = tempfile::tempdir().unwrap();
        let path = write(dir.path(), &spec().check().unwrap(), &[]).unwrap();
        assert_eq!(path, dir.path().join("autotune/scale.rs"));
        let before = std::fs::metadata(&path).unwrap().modified().unwrap();
        std::thread::sleep(std::time::Duration::from_millis(20));
        write(dir.path(), &spec().check().unwrap(), &[]).unwrap();
        assert_eq!(std::fs::metadata(&path).unwrap().modified().unwrap(), before);
        let text = std::fs::read_to_string(&path).unwrap();
        assert!(text.starts_with("// @generated") && text.lines().count() > 3, "{text}");
    }
}
