// tokio-http: a minimal HTTP/1.1 keep-alive server on Tokio (a task per
// connection; every request head gets "Hello, World!"), the Tokio peer of
// tools/http-bench.sh. Like crew's http-server, it answers pipelined requests
// that arrived together in one write. Workers: TOKIO_WORKERS (default 2).
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;

const RESPONSE: &[u8] = b"HTTP/1.1 200 OK\r\nServer: tokio\r\nContent-Type: text/plain\r\nContent-Length: 13\r\n\r\nHello, World!";

fn main() {
    let port: u16 = std::env::args()
        .skip_while(|a| a != "--port")
        .nth(1)
        .map(|p| p.parse().expect("--port N"))
        .unwrap_or(0);
    let workers: usize = std::env::var("TOKIO_WORKERS").ok().and_then(|w| w.parse().ok()).unwrap_or(2);
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(workers)
        .enable_io()
        .build()
        .expect("runtime");
    rt.block_on(async move {
        let listener = TcpListener::bind(("127.0.0.1", port)).await.expect("bind");
        println!("tokio-http: listening on 127.0.0.1 port {}", listener.local_addr().unwrap().port());
        loop {
            let (mut sock, _) = match listener.accept().await {
                Ok(c) => c,
                Err(_) => continue,
            };
            tokio::spawn(async move {
                let mut buf = vec![0u8; 8192];
                let mut have = 0usize;
                let mut out = Vec::with_capacity(4096);
                loop {
                    let n = match sock.read(&mut buf[have..]).await {
                        Ok(0) | Err(_) => return,
                        Ok(n) => n,
                    };
                    have += n;
                    let mut start = 0;
                    while let Some(end) = buf[start..have].windows(4).position(|w| w == b"\r\n\r\n") {
                        out.extend_from_slice(RESPONSE);
                        start += end + 4;
                    }
                    buf.copy_within(start..have, 0);
                    have -= start;
                    if have == buf.len() {
                        return; // a head over 8 KiB
                    }
                    if !out.is_empty() {
                        if sock.write_all(&out).await.is_err() {
                            return;
                        }
                        out.clear();
                    }
                }
            });
        }
    });
}
