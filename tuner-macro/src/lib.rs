//! Implementation detail of `tuner-runtime`: the `#[autotune]` attribute.
use proc_macro::TokenStream;

#[proc_macro_attribute]
pub fn autotune(_args: TokenStream, item: TokenStream) -> TokenStream {
    item
}
