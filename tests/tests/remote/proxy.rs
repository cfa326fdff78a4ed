//! A fault-injecting HTTP proxy on loopback, in front of nginx or moto.
//!
//! One request per connection: the proxy reads the request (head and a
//! `Content-Length` body), then either answers it itself (a 500, or nothing for
//! a while: a stall) or forwards it upstream with `Connection: close` and copies
//! the response back with `Connection: close` added, so clients never reuse a
//! connection and every request passes the fault switch. It logs each request
//! line it sees.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::Duration;

/// What to do with upcoming requests.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fault {
    /// Forward.
    Pass,
    /// Answer the next `n` requests with a 500.
    Fail(u32),
    /// Hold the next `n` requests for the duration, then drop the connection.
    Stall(u32, Duration),
    /// Forward requests without a body; answer requests with a body (uploads)
    /// with a 500, after letting the first `n` of them through.
    FailUploadsAfter(u32),
    /// Like `FailUploadsAfter`, but hold the refused uploads (no answer) for the
    /// duration instead of answering 500.
    StallUploadsAfter(u32, Duration),
    /// Forward every request after holding it this long (a far-away store).
    Delay(Duration),
}

#[derive(Debug)]
struct State {
    fault: Fault,
    log: Vec<String>,
}

/// A running proxy (its threads live until the test process ends).
#[derive(Debug, Clone)]
pub struct Proxy {
    /// `http://127.0.0.1:PORT`.
    pub url: String,
    state: Arc<Mutex<State>>,
}

impl Proxy {
    /// Start a proxy in front of `upstream` (`http://host:port`).
    pub fn start(upstream: &str) -> Proxy {
        let upstream = upstream
            .trim_start_matches("http://")
            .trim_end_matches('/')
            .to_string();
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        let state = Arc::new(Mutex::new(State {
            fault: Fault::Pass,
            log: Vec::new(),
        }));
        let shared = Arc::clone(&state);
        thread::spawn(move || {
            for conn in listener.incoming().flatten() {
                let state = Arc::clone(&shared);
                let upstream = upstream.clone();
                thread::spawn(move || {
                    let _ = serve(conn, &upstream, &state);
                });
            }
        });
        Proxy { url, state }
    }

    /// Set the fault for upcoming requests.
    pub fn set(&self, fault: Fault) {
        self.state.lock().unwrap().fault = fault;
    }

    /// Request lines seen so far (`GET /path`), and clear the log.
    pub fn take_log(&self) -> Vec<String> {
        std::mem::take(&mut self.state.lock().unwrap().log)
    }
}

enum Action {
    Forward,
    Delay(Duration),
    Fail,
    Stall(Duration),
}

fn serve(client: TcpStream, upstream: &str, state: &Mutex<State>) -> std::io::Result<()> {
    let mut reader = BufReader::new(client.try_clone()?);
    let mut head = Vec::new();
    let mut content_length = 0usize;
    loop {
        let mut line = String::new();
        if reader.read_line(&mut line)? == 0 {
            return Ok(());
        }
        if line == "\r\n" {
            break;
        }
        let lower = line.to_ascii_lowercase();
        if let Some(v) = lower.strip_prefix("content-length:") {
            content_length = v.trim().parse().unwrap_or(0);
        }
        if lower.starts_with("connection:") {
            continue;
        }
        head.push(line);
    }
    let mut body = vec![0; content_length];
    reader.read_exact(&mut body)?;
    let request_line = head.first().cloned().unwrap_or_default();
    let action = {
        let mut s = state.lock().unwrap();
        let words: Vec<&str> = request_line.split_whitespace().collect();
        s.log.push(format!(
            "{} {}",
            words.first().unwrap_or(&""),
            words.get(1).unwrap_or(&"")
        ));
        match s.fault {
            Fault::Pass => Action::Forward,
            Fault::Fail(n) => {
                s.fault = if n > 1 {
                    Fault::Fail(n - 1)
                } else {
                    Fault::Pass
                };
                Action::Fail
            }
            Fault::Stall(n, d) => {
                s.fault = if n > 1 {
                    Fault::Stall(n - 1, d)
                } else {
                    Fault::Pass
                };
                Action::Stall(d)
            }
            Fault::FailUploadsAfter(n) if content_length > 0 => {
                if n > 0 {
                    s.fault = Fault::FailUploadsAfter(n - 1);
                    Action::Forward
                } else {
                    Action::Fail
                }
            }
            Fault::FailUploadsAfter(_) => Action::Forward,
            Fault::StallUploadsAfter(n, d) if content_length > 0 => {
                if n > 0 {
                    s.fault = Fault::StallUploadsAfter(n - 1, d);
                    Action::Forward
                } else {
                    Action::Stall(d)
                }
            }
            Fault::StallUploadsAfter(..) => Action::Forward,
            Fault::Delay(d) => Action::Delay(d),
        }
    };
    let mut client = client;
    match action {
        Action::Fail => {
            client.write_all(
                b"HTTP/1.1 500 Internal Server Error\r\nContent-Length: 0\r\nConnection: close\r\n\r\n",
            )?;
            return Ok(());
        }
        Action::Stall(d) => {
            thread::sleep(d);
            return Ok(());
        }
        Action::Delay(d) => thread::sleep(d),
        Action::Forward => {}
    }
    let mut up = TcpStream::connect(upstream)?;
    for line in &head {
        up.write_all(line.as_bytes())?;
    }
    up.write_all(b"Connection: close\r\n\r\n")?;
    up.write_all(&body)?;
    // The response: rewrite its head to close the connection, then copy the rest.
    let mut up_reader = BufReader::new(up);
    let mut response_head = Vec::new();
    loop {
        let mut line = String::new();
        if up_reader.read_line(&mut line)? == 0 {
            break;
        }
        if line == "\r\n" {
            break;
        }
        if !line.to_ascii_lowercase().starts_with("connection:") {
            response_head.extend_from_slice(line.as_bytes());
        }
    }
    response_head.extend_from_slice(b"Connection: close\r\n\r\n");
    client.write_all(&response_head)?;
    std::io::copy(&mut up_reader, &mut client)?;
    Ok(())
}
