//! A scripted HTTP/1.1 server on 127.0.0.1:0 for the LLM protocol tests (here and in the CLI's): the one
//! place a fake endpoint is right, since a real server cannot produce 429s, truncated bodies or hangs on
//! demand. Not every test uses every helper.
#![allow(dead_code)]

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde_json::{json, Value as Json};

/// What the fake server does with one request.
#[derive(Clone)]
pub enum Step {
    /// A full HTTP response.
    Respond { status: u16, headers: Vec<(String, String)>, body: String },
    /// Declares `declared` bytes of body, sends `body`, closes.
    Truncate { declared: usize, body: String },
    /// Reads the request and says nothing for this long.
    Hang(Duration),
}

pub fn chat_body(content: &str) -> String {
    json!({
        "id": "x", "object": "chat.completion", "model": "fake",
        "choices": [{"index": 0, "finish_reason": "stop", "message": {"role": "assistant", "content": content}}],
        "usage": {"prompt_tokens": 100, "completion_tokens": 20, "total_tokens": 120}
    })
    .to_string()
}

pub fn ok(content: &str) -> Step {
    Step::Respond { status: 200, headers: vec![], body: chat_body(content) }
}

pub fn status(code: u16, body: &str) -> Step {
    Step::Respond { status: code, headers: vec![], body: body.to_owned() }
}

/// A request as the server saw it.
#[derive(Clone, Debug)]
pub struct Seen {
    pub authorization: Option<String>,
    pub body: Json,
}

/// A scripted HTTP/1.1 server: answers the n-th request with the n-th step (the last step repeats).
pub struct FakeServer {
    pub url: String,
    seen: Arc<Mutex<Vec<Seen>>>,
}

impl FakeServer {
    pub fn start(steps: Vec<Step>) -> FakeServer {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let url = format!("http://{}/v1", listener.local_addr().unwrap());
        let seen = Arc::new(Mutex::new(Vec::new()));
        let log = seen.clone();
        std::thread::spawn(move || {
            let mut n = 0usize;
            for stream in listener.incoming() {
                let Ok(stream) = stream else { continue };
                let step = steps[n.min(steps.len() - 1)].clone();
                n += 1;
                let log = log.clone();
                // One thread per connection, so a hung step does not block the next request.
                std::thread::spawn(move || serve(stream, step, &log));
            }
        });
        FakeServer { url, seen }
    }

    pub fn requests(&self) -> Vec<Seen> {
        self.seen.lock().unwrap().clone()
    }
}

fn serve(mut stream: TcpStream, step: Step, log: &Mutex<Vec<Seen>>) {
    let mut reader = BufReader::new(stream.try_clone().unwrap());
    let mut len = 0usize;
    let mut authorization = None;
    loop {
        let mut line = String::new();
        if reader.read_line(&mut line).unwrap_or(0) == 0 {
            return;
        }
        let line = line.trim_end();
        if line.is_empty() {
            break;
        }
        let lower = line.to_ascii_lowercase();
        if let Some(v) = lower.strip_prefix("content-length:") {
            len = v.trim().parse().unwrap();
        }
        if lower.starts_with("authorization:") {
            authorization = Some(line["authorization:".len()..].trim().to_owned());
        }
    }
    let mut body = vec![0u8; len];
    reader.read_exact(&mut body).unwrap();
    log.lock().unwrap().push(Seen { authorization, body: serde_json::from_slice(&body).unwrap_or(Json::Null) });
    let write = |stream: &mut TcpStream, status: u16, headers: &[(String, String)], declared: usize, body: &str| {
        let mut head = format!("HTTP/1.1 {status} X\r\ncontent-type: application/json\r\n");
        head.push_str(&format!("content-length: {declared}\r\nconnection: close\r\n"));
        for (k, v) in headers {
            head.push_str(&format!("{k}: {v}\r\n"));
        }
        head.push_str("\r\n");
        let _ = stream.write_all(head.as_bytes());
        let _ = stream.write_all(body.as_bytes());
        let _ = stream.flush();
    };
    match step {
        Step::Respond { status, headers, body } => write(&mut stream, status, &headers, body.len(), &body),
        Step::Truncate { declared, body } => write(&mut stream, 200, &[], declared, &body),
        Step::Hang(d) => std::thread::sleep(d),
    }
}
