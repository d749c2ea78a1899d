// tokio-echo: a TCP echo server on Tokio (a task per connection echoes what
// it reads through a 16 KiB buffer, as crew's echo-server does), the Tokio
// peer of tools/echo-bench.sh. Workers: TOKIO_WORKERS (default 2).
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;

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
        println!("tokio-echo: listening on 127.0.0.1 port {}", listener.local_addr().unwrap().port());
        loop {
            let (mut sock, _) = match listener.accept().await {
                Ok(c) => c,
                Err(_) => continue,
            };
            tokio::spawn(async move {
                let mut buf = vec![0u8; 16384];
                loop {
                    let n = match sock.read(&mut buf).await {
                        Ok(0) | Err(_) => return,
                        Ok(n) => n,
                    };
                    if sock.write_all(&buf[..n]).await.is_err() {
                        return;
                    }
                }
            });
        }
    });
}
