//! The JSON a model is asked for, and how a reply is read back.
//!
//! The schema asks for `{"configs": [{param: value, …}, …]}`: an object at the top because OpenAI's strict
//! structured output requires one, an array because one call proposes a batch, and an `enum` of the allowed
//! values per parameter so a server with grammar-constrained decoding (OpenAI, llama.cpp) cannot emit a
//! value outside the space. Constraints between parameters cannot be said in JSON Schema; the caller checks
//! them, with everything else, against the [`Space`].
//!
//! Reading is lenient about the wrapping and strict about the content. [`extract_configs`] accepts the
//! schema's object, a bare array, or objects scattered in prose or code fences — the shapes unconstrained
//! models produce — and salvages the complete objects of a reply cut off at the token cap. It only
//! *parses*: each object comes back as a JSON map, and whether its values belong to the space is decided by
//! the caller. Nothing is evaluated.

use serde::Deserialize;
use serde_json::{Map, Value as Json};

use tuner_spec::space::Space;

/// One proposed config, as the model wrote it (names → JSON values), not yet validated.
pub type RawConfig = Map<String, Json>;

/// The schema's shape, parsed with serde when the reply is well-formed.
#[derive(Deserialize)]
struct Batch {
    configs: Vec<RawConfig>,
}

/// The JSON schema of a batch of up to `n` configs of `space` (at least one).
pub fn batch_schema(space: &Space, n: usize) -> Json {
    let mut props = Map::new();
    for p in space.params() {
        let values: Vec<Json> = p.values.iter().map(|v| v.to_json()).collect();
        props.insert(p.name.clone(), serde_json::json!({ "enum": values }));
    }
    let required: Vec<Json> = space.params().iter().map(|p| Json::String(p.name.clone())).collect();
    serde_json::json!({
        "type": "object",
        "properties": {
            "configs": {
                "type": "array",
                "minItems": 1,
                "maxItems": n.max(1),
                "items": {
                    "type": "object",
                    "properties": props,
                    "required": required,
                    "additionalProperties": false,
                },
            },
        },
        "required": ["configs"],
        "additionalProperties": false,
    })
}

/// Reads the configs out of a reply's text; see the module docs for the shapes accepted. `names` are the
/// space's parameter names: a stray object counts as a config only when it names at least one of them.
/// Returns an empty list when the text holds no config at all.
pub fn extract_configs(text: &str, names: &[String]) -> Vec<RawConfig> {
    let text = text.trim();
    // The schema's shape, or a bare array, as the whole reply.
    if let Ok(b) = serde_json::from_str::<Batch>(text) {
        return b.configs;
    }
    if let Ok(v) = serde_json::from_str::<Json>(text) {
        if let Some(found) = configs_in(&v, names) {
            return found;
        }
    }
    // Fenced blocks first (```json … ```), then the whole text: the first JSON value at each `{` or `[`
    // that holds configs wins; objects found one by one are collected (prose between them, or a reply
    // cut off after a few complete objects).
    for block in fenced_blocks(text).into_iter().chain(std::iter::once(text)) {
        let found = scan(block, names);
        if !found.is_empty() {
            return found;
        }
    }
    Vec::new()
}

/// Configs in a parsed value: `{"configs": [...]}`, `[...]`, or a single config object.
fn configs_in(v: &Json, names: &[String]) -> Option<Vec<RawConfig>> {
    match v {
        Json::Object(m) => {
            if let Some(Json::Array(items)) = m.get("configs") {
                return Some(items.iter().filter_map(|i| i.as_object().cloned()).collect());
            }
            is_config(m, names).then(|| vec![m.clone()])
        }
        Json::Array(items) => {
            let found: Vec<RawConfig> = items.iter().filter_map(|i| i.as_object().cloned()).collect();
            (!found.is_empty()).then_some(found)
        }
        _ => None,
    }
}

fn is_config(m: &RawConfig, names: &[String]) -> bool {
    m.keys().any(|k| names.iter().any(|n| n == k))
}

fn fenced_blocks(text: &str) -> Vec<&str> {
    let mut out = Vec::new();
    let mut rest = text;
    while let Some(start) = rest.find("```") {
        let after = &rest[start + 3..];
        // Skip the info string (`json`) up to the end of the line.
        let body_start = after.find('\n').map_or(after.len(), |i| i + 1);
        let body = &after[body_start..];
        match body.find("```") {
            Some(end) => {
                out.push(&body[..end]);
                rest = &body[end + 3..];
            }
            None => {
                out.push(body); // an unclosed fence: a reply cut off inside it
                break;
            }
        }
    }
    out
}

fn scan(text: &str, names: &[String]) -> Vec<RawConfig> {
    let mut found = Vec::new();
    let mut i = 0;
    while i < text.len() {
        let Some(off) = text[i..].find(['{', '[']) else { break };
        let at = i + off;
        let mut stream = serde_json::Deserializer::from_str(&text[at..]).into_iter::<Json>();
        match stream.next() {
            Some(Ok(v)) => {
                let consumed = stream.byte_offset();
                if let Some(mut c) = configs_in(&v, names) {
                    // A container of configs is the answer as a whole; loose objects accumulate.
                    let container = matches!(&v, Json::Object(m) if m.contains_key("configs")) || v.is_array();
                    if container && found.is_empty() {
                        return c;
                    }
                    found.append(&mut c);
                    i = at + consumed.max(1);
                } else {
                    i = at + 1;
                }
            }
            // Not a complete value here: step inside it, so the complete objects of a cut-off array
            // are still found.
            _ => i = at + 1,
        }
    }
    found
}

#[cfg(test)]
mod tests {
    use super::*;

    fn names() -> Vec<String> {
        vec!["block".into(), "items".into()]
    }

    #[test]
    fn the_schema_shape() {
        let c = extract_configs(r#"{"configs":[{"block":64,"items":2},{"block":128,"items":1}]}"#, &names());
        assert_eq!(c.len(), 2);
        assert_eq!(c[1]["block"], 128);
    }

    #[test]
    fn fences_and_prose() {
        let text =
            "Sure! Here are some configs:\n```json\n[{\"block\": 256, \"items\": 4}]\n```\nThese should be fast.";
        let c = extract_configs(text, &names());
        assert_eq!(c.len(), 1);
        assert_eq!(c[0]["items"], 4);
        let text = "Try {\"block\": 64, \"items\": 1} and also {\"block\": 512, \"items\": 2}.";
        assert_eq!(extract_configs(text, &names()).len(), 2);
    }

    #[test]
    fn cut_off_reply_keeps_complete_objects() {
        let text = r#"{"configs":[{"block":64,"items":2},{"block":128,"items":1},{"block":2"#;
        let c = extract_configs(text, &names());
        assert_eq!(c.len(), 2);
    }

    #[test]
    fn nothing_to_find() {
        assert!(extract_configs("I cannot help with that.", &names()).is_empty());
        assert!(extract_configs(r#"{"other": 1}"#, &names()).is_empty());
    }
}
