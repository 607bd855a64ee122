//! Implementation detail of `tuner-runtime`: the `#[autotune]` attribute. A crate with tuned launchers
//! depends on both (`use tuner_macro::autotune;`); the generated code names `::tuner_runtime::__private`,
//! which is not a stable API.
//!
//! The attribute is parsed by `tuner_runtime::spec`, the same parser the build script uses, so the two
//! can never disagree on what an attribute means. That dependency is also why `tuner-runtime` cannot
//! re-export this macro as thiserror re-exports its derive: the two crates would depend on each other.
//! This crate only turns the parsed spec into code (`expand`) and reports mistakes as `compile_error!`s
//! spanned on the offending token.

use proc_macro::TokenStream;

mod expand;

/// Declares a tuned kernel launcher. See `tuner_runtime::spec` for the grammar and DESIGN.md for the flow.
///
/// Inside the function, `TUNED` holds the chosen values as typed fields (`TUNED.block`) and `KERNEL` is
/// the kernel source, compiled with NVRTC and the chosen `-D` values at the first launch.
#[proc_macro_attribute]
pub fn autotune(args: TokenStream, item: TokenStream) -> TokenStream {
    expand::autotune(args.into(), item.into()).into()
}
