//! A small price table for cost estimates: USD per million tokens, input and output.
//!
//! List prices of a few current OpenAI models (as published in 2025; they change, so the estimate says
//! "estimate"). A model matches its entry exactly or with a dated suffix (`gpt-4o-mini-2024-07-18`). An
//! unknown model — every local one included — has no price: the run reports tokens only and `cost_usd`
//! is null, rather than a made-up number.

use super::Usage;

/// (model, USD per 1M prompt tokens, USD per 1M completion tokens).
pub const PRICES: &[(&str, f64, f64)] = &[
    ("gpt-4o-mini", 0.15, 0.60),
    ("gpt-4o", 2.50, 10.00),
    ("gpt-4.1-nano", 0.10, 0.40),
    ("gpt-4.1-mini", 0.40, 1.60),
    ("gpt-4.1", 2.00, 8.00),
    ("gpt-5-nano", 0.05, 0.40),
    ("gpt-5-mini", 0.25, 2.00),
    ("gpt-5", 1.25, 10.00),
    ("o4-mini", 1.10, 4.40),
    ("o3-mini", 1.10, 4.40),
];

/// The prices of `model`, when the table knows it.
pub fn price(model: &str) -> Option<(f64, f64)> {
    PRICES
        .iter()
        .find(|(name, _, _)| model == *name || model.strip_prefix(name).is_some_and(is_date_suffix))
        .map(|&(_, input, output)| (input, output))
}

/// `-2024-07-18` (or `-20240718`).
fn is_date_suffix(rest: &str) -> bool {
    let Some(date) = rest.strip_prefix('-') else { return false };
    let digits: String = date.chars().filter(|c| *c != '-').collect();
    digits.len() == 8 && digits.chars().all(|c| c.is_ascii_digit()) && date.starts_with("20")
}

/// The estimated cost of `usage` with `model`, in USD; `None` for a model the table does not list.
pub fn cost_usd(model: &str, usage: Usage) -> Option<f64> {
    price(model).map(|(i, o)| (usage.prompt_tokens as f64 * i + usage.completion_tokens as f64 * o) / 1e6)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prices_match_exactly_or_with_a_date() {
        assert_eq!(price("gpt-4o-mini"), Some((0.15, 0.60)));
        assert_eq!(price("gpt-4o-mini-2024-07-18"), Some((0.15, 0.60)));
        assert_eq!(price("gpt-4o"), Some((2.50, 10.00)), "not gpt-4o-mini's price");
        assert_eq!(price("qwen2.5-coder-0.5b"), None);
        assert_eq!(price("gpt-4o-audio-preview"), None);
        let usage = Usage { prompt_tokens: 1_000_000, completion_tokens: 500_000 };
        assert_eq!(cost_usd("gpt-4o-mini", usage), Some(0.45));
    }
}
