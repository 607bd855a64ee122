//! Implementation detail of `tuner-runtime`: the `#[autotune]` attribute, which `tuner-runtime`
//! re-exports (`use tuner_runtime::autotune;`), as thiserror re-exports its derive. The generated code
//! names `::tuner_runtime::__private`, which is not a stable API.
//!
//! The attribute is parsed by `tuner_spec::spec`, the same parser the build script uses, so the two can
//! never disagree on what an attribute means. This crate depends on `tuner-spec` only (no runtime, so no
//! circle between the facade and its macro); it turns the parsed spec into code (`expand`) and reports
//! mistakes as `compile_error!`s spanned on the offending token.

use proc_macro::TokenStream;

mod expand;

/// Declares a tuned kernel launcher. See `tuner_spec::spec` for the grammar and DESIGN.md for the flow.
///
/// Inside the function, `TUNED` holds the chosen values as typed fields (`TUNED.block`) and `KERNEL` is
/// the kernel source, compiled with NVRTC and the chosen `-D` values at the first launch.
#[proc_macro_attribute]
pub fn autotune(args: TokenStream, item: TokenStream) -> TokenStream {
    expand::autotune(args.into(), item.into()).into()
}
