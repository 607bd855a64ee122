//! An OpenAI-compatible chat-completions client, as the LLM-guided strategy uses it.
//!
//! One request shape: `POST {base}/chat/completions` with the model, the messages, the sampling
//! temperature and seed, a token cap, and — when the server accepts it — a `response_format` of type
//! `json_schema`. Everything else about the reply is treated as untrusted data: the body is parsed into
//! serde structs, the text inside is only ever parsed as JSON ([`json`]), and the caller validates each value
//! against the space. Nothing from a reply is executed or formatted into code.
//!
//! # Configuration
//!
//! By builder, or from the environment with [`LlmConfig::from_env`]: `OPENAI_API_KEY`, `OPENAI_BASE_URL`
//! (default `https://api.openai.com/v1`) and `AUTOTUNE_LLM_MODEL` (or `OPENAI_MODEL`; default
//! `gpt-4o-mini`). With neither a key nor a base URL there is no endpoint, and callers fall back to the
//! built-in search. A base URL without a key is a local server (llama.cpp's `llama-server`, vLLM,
//! Ollama…): no `Authorization` header is sent. The key lives in an [`ApiKey`] whose `Debug` prints `***`;
//! it is sent only as a bearer header and is never logged, put in an error, or written anywhere.
//!
//! # Failures
//!
//! Requests have a timeout (default 120 s: a slow CPU server writing a batch can need tens of seconds).
//! 429, 5xx, timeouts, refused connections and bodies cut off mid-way are retried with exponential
//! backoff, honouring a `Retry-After` header in seconds (an HTTP date or a wait longer than
//! [`LlmConfig::max_wait`] ends the call instead: a build must not sleep for an hour). 401, 403 and 404
//! are not retried: they will not fix themselves, and [`LlmError::is_fatal`] tells the caller to stop
//! using the endpoint. A server that refuses the `json_schema` response format (400/422 naming it, as
//! servers without structured output do) is asked again without it, once, and is not sent it again; the
//! reply is then read by the plain-JSON extraction in [`json`] (code fences, surrounding prose).
//!
//! Usage (`prompt_tokens`, `completion_tokens`) is returned with every reply for the caller to sum; a cost
//! estimate comes from the small price table in [`price`].

pub mod json;
pub mod price;

use std::fmt;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};

/// The default endpoint when only a key is configured.
pub const DEFAULT_BASE_URL: &str = "https://api.openai.com/v1";
/// The default model.
pub const DEFAULT_MODEL: &str = "gpt-4o-mini";
/// The environment variables [`LlmSettings`] reads: an entry point lists them for `rerun-if-env-changed`.
pub const ENV_VARS: [&str; 5] =
    ["OPENAI_API_KEY", "OPENAI_BASE_URL", "AUTOTUNE_LLM_MODEL", "OPENAI_MODEL", "AUTOTUNE_LLM_TRACE"];

/// What the LLM strategies take from an entry point's settings, read once: the endpoint (none when
/// neither `OPENAI_API_KEY` nor `OPENAI_BASE_URL` is set) and `AUTOTUNE_LLM_TRACE`, a file that records
/// what the model is told and answers.
#[derive(Clone, Debug, Default)]
pub struct LlmSettings {
    pub endpoint: Option<LlmConfig>,
    pub trace: Option<std::path::PathBuf>,
}

impl LlmSettings {
    /// Reads [`ENV_VARS`] through `get` (empty counts as unset).
    pub fn from_env_with(get: &dyn Fn(&str) -> Option<String>) -> LlmSettings {
        let var = |name: &str| {
            debug_assert!(ENV_VARS.contains(&name), "{name} is not in tuner_llm::ENV_VARS");
            get(name).map(|v| v.trim().to_owned()).filter(|v| !v.is_empty())
        };
        let key = var("OPENAI_API_KEY");
        let base = var("OPENAI_BASE_URL");
        let endpoint = (key.is_some() || base.is_some()).then(|| {
            let mut cfg = LlmConfig::new(base.unwrap_or_else(|| DEFAULT_BASE_URL.to_owned()));
            cfg.api_key = key.map(ApiKey);
            if let Some(model) = var("AUTOTUNE_LLM_MODEL").or_else(|| var("OPENAI_MODEL")) {
                cfg.model = model;
            }
            cfg
        });
        LlmSettings { endpoint, trace: var("AUTOTUNE_LLM_TRACE").map(Into::into) }
    }

    /// [`LlmSettings::from_env_with`] over the process environment.
    pub fn from_env() -> LlmSettings {
        LlmSettings::from_env_with(&|k| std::env::var(k).ok())
    }
}

/// An API key. Its `Debug` and `Display` never show it.
#[derive(Clone)]
pub struct ApiKey(String);

impl ApiKey {
    pub fn new(key: impl Into<String>) -> ApiKey {
        ApiKey(key.into())
    }
    fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for ApiKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("ApiKey(***)")
    }
}

/// Why a chat request produced no usable reply.
#[derive(Debug, thiserror::Error)]
pub enum LlmError {
    #[error("the LLM endpoint {url} refused the credentials (HTTP {status}): check OPENAI_API_KEY")]
    Unauthorized { url: String, status: u16 },
    #[error(
        "the LLM endpoint {url} has no such route or model `{model}` (HTTP 404): check OPENAI_BASE_URL and \
         AUTOTUNE_LLM_MODEL"
    )]
    NotFound { url: String, model: String },
    #[error("the LLM endpoint {url} rejected the request (HTTP {status}): {message}")]
    Rejected { url: String, status: u16, message: String },
    #[error("the LLM endpoint {url} is unavailable after {attempts} attempts: {last}")]
    Unavailable { url: String, attempts: u32, last: String },
    #[error("the LLM endpoint {url} asked to retry after {seconds} s, longer than the {max} s this run waits")]
    RetryTooLate { url: String, seconds: f64, max: f64 },
    #[error("the LLM endpoint {url} sent a reply that is not a chat completion: {reason}")]
    Malformed { url: String, reason: String },
    #[error("the LLM endpoint {url} sent no content ({detail})")]
    Empty { url: String, detail: String },
    #[error("invalid LLM base URL `{0}`: it must start with http:// or https://")]
    BaseUrl(String),
    #[error("cannot build the HTTP client")]
    Client(#[source] reqwest::Error),
}

impl LlmError {
    /// Whether the endpoint should not be asked again in this run: bad credentials, a wrong URL or model,
    /// a dead endpoint (retries exhausted), or a configuration error.
    pub fn is_fatal(&self) -> bool {
        matches!(
            self,
            LlmError::Unauthorized { .. }
                | LlmError::NotFound { .. }
                | LlmError::Unavailable { .. }
                | LlmError::BaseUrl(_)
                | LlmError::Client(_)
        )
    }
}

/// How to reach the endpoint and how to sample.
#[derive(Clone, Debug)]
pub struct LlmConfig {
    pub base_url: String,
    pub api_key: Option<ApiKey>,
    pub model: String,
    /// Per-request timeout (connect + reply).
    pub timeout: Duration,
    /// Retries after the first attempt, for 429, 5xx, timeouts and transport errors.
    pub retries: u32,
    /// The first backoff; it doubles per retry (a `Retry-After` header replaces it).
    pub backoff: Duration,
    /// The longest single wait this client accepts (backoff or `Retry-After`).
    pub max_wait: Duration,
    /// The completion token cap per request.
    pub max_tokens: u32,
}

impl LlmConfig {
    /// A config for `base_url` (e.g. `http://127.0.0.1:8089/v1`), no key, the default model.
    pub fn new(base_url: impl Into<String>) -> LlmConfig {
        LlmConfig {
            base_url: base_url.into().trim_end_matches('/').to_owned(),
            api_key: None,
            model: DEFAULT_MODEL.to_owned(),
            timeout: Duration::from_secs(120),
            retries: 3,
            backoff: Duration::from_millis(500),
            max_wait: Duration::from_secs(60),
            max_tokens: 1024,
        }
    }

    /// The endpoint configured in the environment (see the module docs), or `None` when neither
    /// `OPENAI_API_KEY` nor `OPENAI_BASE_URL` is set (empty counts as unset).
    pub fn from_env() -> Option<LlmConfig> {
        LlmSettings::from_env().endpoint
    }

    pub fn api_key(mut self, key: impl Into<String>) -> Self {
        self.api_key = Some(ApiKey(key.into()));
        self
    }
    pub fn model(mut self, model: impl Into<String>) -> Self {
        self.model = model.into();
        self
    }
    pub fn timeout(mut self, t: Duration) -> Self {
        self.timeout = t;
        self
    }
    pub fn retries(mut self, n: u32) -> Self {
        self.retries = n;
        self
    }
    pub fn backoff(mut self, first: Duration) -> Self {
        self.backoff = first;
        self
    }
    pub fn max_wait(mut self, t: Duration) -> Self {
        self.max_wait = t;
        self
    }
    pub fn max_tokens(mut self, n: u32) -> Self {
        self.max_tokens = n;
        self
    }

    /// The base URL without any `user:password@` part, for messages.
    pub fn display_url(&self) -> String {
        match reqwest::Url::parse(&self.base_url) {
            Ok(mut u) => {
                let _ = u.set_username("");
                let _ = u.set_password(None);
                u.to_string().trim_end_matches('/').to_owned()
            }
            Err(_) => self.base_url.clone(),
        }
    }
}

/// A chat message.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct Message {
    pub role: String,
    pub content: String,
}

impl Message {
    pub fn system(content: impl Into<String>) -> Message {
        Message { role: "system".into(), content: content.into() }
    }
    pub fn user(content: impl Into<String>) -> Message {
        Message { role: "user".into(), content: content.into() }
    }
}

/// One request: the messages, sampling, and an optional JSON schema for the reply.
#[derive(Clone, Debug)]
pub struct ChatRequest {
    pub messages: Vec<Message>,
    pub temperature: Option<f64>,
    pub seed: Option<u64>,
    /// Sent as `response_format: {type: json_schema, json_schema: {name, strict, schema}}`.
    pub schema: Option<serde_json::Value>,
}

/// Token counts as the server reports them.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Usage {
    #[serde(default)]
    pub prompt_tokens: u64,
    #[serde(default)]
    pub completion_tokens: u64,
}

impl std::ops::AddAssign for Usage {
    fn add_assign(&mut self, o: Usage) {
        self.prompt_tokens += o.prompt_tokens;
        self.completion_tokens += o.completion_tokens;
    }
}

/// A reply's text and what it cost.
#[derive(Clone, Debug)]
pub struct Reply {
    pub content: String,
    pub usage: Usage,
    /// `stop`, `length` (cut at the token cap), …
    pub finish_reason: Option<String>,
    /// Whether the reply was constrained by the JSON schema.
    pub structured: bool,
    /// HTTP attempts this reply took (1 = no retry).
    pub attempts: u32,
    pub elapsed: Duration,
}

#[derive(Serialize)]
struct WireRequest<'a> {
    model: &'a str,
    messages: &'a [Message],
    #[serde(skip_serializing_if = "Option::is_none")]
    temperature: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    seed: Option<u64>,
    max_tokens: u32,
    #[serde(skip_serializing_if = "Option::is_none")]
    response_format: Option<serde_json::Value>,
}

#[derive(Deserialize)]
struct WireResponse {
    choices: Vec<WireChoice>,
    #[serde(default)]
    usage: Option<Usage>,
}

#[derive(Deserialize)]
struct WireChoice {
    message: WireMessage,
    #[serde(default)]
    finish_reason: Option<String>,
}

#[derive(Deserialize)]
struct WireMessage {
    #[serde(default)]
    content: Option<String>,
    #[serde(default)]
    refusal: Option<String>,
}

/// An OpenAI-compatible client. Cheap to share behind an `Arc`; calls may run on other threads.
#[derive(Debug)]
pub struct LlmClient {
    config: LlmConfig,
    http: reqwest::blocking::Client,
    /// Cleared when the server refuses `response_format: json_schema`; never set again.
    schema_ok: AtomicBool,
}

/// What one HTTP attempt came to.
enum Attempt {
    Done(Reply),
    /// Worth another try, after the server's `Retry-After` when it gave one.
    Retry {
        why: String,
        after: Option<RetryAfter>,
    },
    Fail(LlmError),
    /// A 400/422 that names the response format: try again without the schema.
    SchemaRefused,
}

enum RetryAfter {
    Seconds(f64),
    Unusable,
}

impl LlmClient {
    pub fn new(config: LlmConfig) -> Result<LlmClient, LlmError> {
        if !(config.base_url.starts_with("http://") || config.base_url.starts_with("https://")) {
            return Err(LlmError::BaseUrl(config.base_url.clone()));
        }
        let http = reqwest::blocking::Client::builder()
            .timeout(config.timeout)
            .connect_timeout(config.timeout.min(Duration::from_secs(10)))
            .build()
            .map_err(LlmError::Client)?;
        Ok(LlmClient { config, http, schema_ok: AtomicBool::new(true) })
    }

    /// The client for the endpoint in the environment, `None` when none is configured.
    pub fn from_env() -> Option<Result<LlmClient, LlmError>> {
        LlmConfig::from_env().map(LlmClient::new)
    }

    pub fn config(&self) -> &LlmConfig {
        &self.config
    }

    /// Whether the server still gets the JSON schema (false once it refused it).
    pub fn structured_output(&self) -> bool {
        self.schema_ok.load(Ordering::Relaxed)
    }

    fn url(&self) -> String {
        format!("{}/chat/completions", self.config.base_url)
    }

    /// Sends `req`, retrying as the module docs describe.
    pub fn chat(&self, req: &ChatRequest) -> Result<Reply, LlmError> {
        let started = Instant::now();
        let mut attempts = 0u32;
        loop {
            let with_schema = req.schema.is_some() && self.structured_output();
            attempts += 1;
            let outcome = self.attempt(req, with_schema);
            let wait = match outcome {
                Attempt::Done(mut reply) => {
                    reply.attempts = attempts;
                    reply.elapsed = started.elapsed();
                    return Ok(reply);
                }
                Attempt::Fail(e) => return Err(e),
                Attempt::SchemaRefused => {
                    // Not a retry of a failure: the same request in the form this server takes.
                    self.schema_ok.store(false, Ordering::Relaxed);
                    attempts -= 1;
                    continue;
                }
                Attempt::Retry { why, after } => {
                    if attempts > self.config.retries {
                        return Err(LlmError::Unavailable { url: self.config.display_url(), attempts, last: why });
                    }
                    match after {
                        Some(RetryAfter::Seconds(s)) => {
                            if s > self.config.max_wait.as_secs_f64() {
                                return Err(LlmError::RetryTooLate {
                                    url: self.config.display_url(),
                                    seconds: s,
                                    max: self.config.max_wait.as_secs_f64(),
                                });
                            }
                            Duration::from_secs_f64(s.max(0.0))
                        }
                        Some(RetryAfter::Unusable) | None => {
                            let factor = 1u32.checked_shl(attempts - 1).unwrap_or(u32::MAX);
                            self.config.backoff.saturating_mul(factor).min(self.config.max_wait)
                        }
                    }
                }
            };
            std::thread::sleep(wait);
        }
    }

    fn attempt(&self, req: &ChatRequest, with_schema: bool) -> Attempt {
        let response_format = match (&req.schema, with_schema) {
            (Some(schema), true) => Some(serde_json::json!({
                "type": "json_schema",
                "json_schema": { "name": "configs", "strict": true, "schema": schema },
            })),
            _ => None,
        };
        let body = WireRequest {
            model: &self.config.model,
            messages: &req.messages,
            temperature: req.temperature,
            seed: req.seed,
            max_tokens: self.config.max_tokens,
            response_format,
        };
        let mut rb = self.http.post(self.url()).json(&body);
        if let Some(key) = &self.config.api_key {
            rb = rb.bearer_auth(key.expose());
        }
        let url = self.config.display_url();
        let resp = match rb.send() {
            Ok(r) => r,
            // `without_url`: the URL is ours to print, once, without credentials.
            Err(e) => return Attempt::Retry { why: transport_reason(e.without_url()), after: None },
        };
        let status = resp.status().as_u16();
        let retry_after = resp.headers().get(reqwest::header::RETRY_AFTER).map(|v| {
            v.to_str().ok().and_then(|s| s.trim().parse::<f64>().ok()).map_or(RetryAfter::Unusable, RetryAfter::Seconds)
        });
        let text = match resp.text() {
            Ok(t) => t,
            Err(e) => return Attempt::Retry { why: transport_reason(e.without_url()), after: retry_after },
        };
        match status {
            200..=299 => {}
            401 | 403 => return Attempt::Fail(LlmError::Unauthorized { url, status }),
            404 => return Attempt::Fail(LlmError::NotFound { url, model: self.config.model.clone() }),
            408 | 429 | 500..=599 => {
                return Attempt::Retry { why: format!("HTTP {status}: {}", snippet(&text)), after: retry_after }
            }
            400 | 422 if with_schema && mentions_response_format(&text) => return Attempt::SchemaRefused,
            _ => return Attempt::Fail(LlmError::Rejected { url, status, message: snippet(&text) }),
        }
        let wire: WireResponse = match serde_json::from_str(&text) {
            Ok(w) => w,
            Err(e) => return Attempt::Fail(LlmError::Malformed { url, reason: format!("{e} in {}", snippet(&text)) }),
        };
        let usage = wire.usage.unwrap_or_default();
        let Some(choice) = wire.choices.into_iter().next() else {
            return Attempt::Fail(LlmError::Empty { url, detail: "no choices".into() });
        };
        let content = match (choice.message.content, choice.message.refusal) {
            (Some(c), _) if !c.trim().is_empty() => c,
            (_, Some(r)) => return Attempt::Fail(LlmError::Empty { url, detail: format!("refusal: {}", snippet(&r)) }),
            _ => return Attempt::Fail(LlmError::Empty { url, detail: "empty message".into() }),
        };
        Attempt::Done(Reply {
            content,
            usage,
            finish_reason: choice.finish_reason,
            structured: with_schema,
            attempts: 0,
            elapsed: Duration::ZERO,
        })
    }
}

fn transport_reason(e: reqwest::Error) -> String {
    let kind = if e.is_timeout() {
        "timed out"
    } else if e.is_connect() {
        "cannot connect"
    } else if e.is_body() || e.is_decode() {
        "reply cut off"
    } else {
        "transport error"
    };
    // The chain, not just the top: reqwest's own message is often "error sending request".
    let mut msg = format!("{kind}: {e}");
    let mut src = std::error::Error::source(&e);
    while let Some(s) = src {
        msg.push_str(&format!(": {s}"));
        src = s.source();
    }
    msg
}

fn mentions_response_format(body: &str) -> bool {
    let b = body.to_ascii_lowercase();
    b.contains("response_format") || b.contains("json_schema") || b.contains("schema")
}

/// The first 200 characters of a body, on one line (server messages go into errors; bodies can be long).
fn snippet(text: &str) -> String {
    let one_line: String = text.split_whitespace().collect::<Vec<_>>().join(" ");
    if one_line.chars().count() > 200 {
        format!("{}…", one_line.chars().take(200).collect::<String>())
    } else {
        one_line
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn key_is_never_printed() {
        let cfg = LlmConfig::new("http://127.0.0.1:1/v1").api_key("sk-secret-123");
        assert!(!format!("{cfg:?}").contains("sk-secret"));
        let client = LlmClient::new(cfg).unwrap();
        assert!(!format!("{client:?}").contains("sk-secret"));
    }

    #[test]
    fn display_url_drops_credentials() {
        let cfg = LlmConfig::new("https://user:pw@example.com/v1/");
        assert_eq!(cfg.display_url(), "https://example.com/v1");
    }

    #[test]
    fn bad_base_url_is_an_error() {
        assert!(matches!(LlmClient::new(LlmConfig::new("localhost:8080")), Err(LlmError::BaseUrl(_))));
    }

    #[test]
    fn fatal_errors() {
        assert!(LlmError::Unauthorized { url: "u".into(), status: 401 }.is_fatal());
        assert!(LlmError::NotFound { url: "u".into(), model: "m".into() }.is_fatal());
        assert!(!LlmError::Malformed { url: "u".into(), reason: "r".into() }.is_fatal());
        assert!(!LlmError::Rejected { url: "u".into(), status: 400, message: "m".into() }.is_fatal());
    }
}
