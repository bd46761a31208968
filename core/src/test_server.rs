//! A scripted HTTP/1.1 server for unit tests that need the SDK to meet a
//! server at an exact moment (a race) or a server that misbehaves (a huge
//! answer). Connections get the replies in the order they arrive, each on
//! its own thread (a held answer does not hold the next), `connection: close`.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpListener;
use std::sync::mpsc;
use std::thread::JoinHandle;

/// One scripted answer.
pub(crate) struct Reply {
    pub status: u16,
    pub body: Vec<u8>,
    /// Told the request line when the request arrived…
    pub arrived: Option<mpsc::Sender<String>>,
    /// … and answered only once this receives (or its sender is dropped).
    pub gate: Option<mpsc::Receiver<()>>,
}

impl Reply {
    pub fn json(status: u16, body: &str) -> Self {
        Reply {
            status,
            body: body.as_bytes().to_vec(),
            arrived: None,
            gate: None,
        }
    }
}

/// Serves `replies` in order on 127.0.0.1; returns the base URL and a
/// handle that yields the request lines seen.
pub(crate) fn serve(replies: Vec<Reply>) -> (String, JoinHandle<Vec<String>>) {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind a test port");
    let url = format!("http://{}", listener.local_addr().expect("local address"));
    let handle = std::thread::spawn(move || {
        let mut threads = Vec::new();
        for reply in replies {
            let Ok((stream, _)) = listener.accept() else {
                break;
            };
            threads.push(std::thread::spawn(move || answer(stream, reply)));
        }
        threads
            .into_iter()
            .filter_map(|t| t.join().ok().flatten())
            .collect()
    });
    (url, handle)
}

/// Reads one request and answers it; the request line, if one came.
fn answer(stream: std::net::TcpStream, reply: Reply) -> Option<String> {
    let mut reader = BufReader::new(stream);
    let mut line = String::new();
    reader.read_line(&mut line).ok()?;
    let mut length = 0usize;
    loop {
        let mut header = String::new();
        if reader.read_line(&mut header).is_err() || header == "\r\n" || header.is_empty() {
            break;
        }
        let lower = header.to_ascii_lowercase();
        if let Some(v) = lower.strip_prefix("content-length:") {
            length = v.trim().parse().unwrap_or(0);
        }
    }
    let mut body = vec![0; length];
    let _ = reader.read_exact(&mut body);
    let line = line.trim_end().to_owned();
    if let Some(arrived) = reply.arrived {
        let _ = arrived.send(line.clone());
    }
    if let Some(gate) = reply.gate {
        let _ = gate.recv();
    }
    let mut stream = reader.into_inner();
    let head = format!(
        "HTTP/1.1 {} X\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n",
        reply.status,
        reply.body.len()
    );
    // The client may hang up early (that is what some tests check).
    let _ = stream.write_all(head.as_bytes());
    let _ = stream.write_all(&reply.body);
    Some(line)
}
