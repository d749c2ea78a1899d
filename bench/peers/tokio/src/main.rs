//! The Tokio peer of crew-bench: the same workloads on Tokio's work-stealing
//! multi-thread runtime.
//!
//!     tokio-bench <workload> [--workers N] [--n N]
//!
//! Prints one JSON line like crew-bench, with "runtime":"tokio".
//!
//! "seconds" covers building the runtime (worker_threads = N), running the
//! workload and dropping the runtime (shutdown), like crew-bench times the
//! whole crew_run. The workload's main future is itself spawned so that it
//! runs on a worker, as crew's main task does, not on the block_on thread.
//!
//!   spawn     tokio::spawn n trivial tasks, keep the JoinHandles, await them
//!             in order and check the sum.
//!   fib       a task per call: spawn fib(n-1) (a boxed recursive future),
//!             await fib(n-2) directly, then await the handle.
//!   sleepers  n tasks each tokio::time::sleep(10 ms), awaited in order.
//!   pingpong  n round trips between two tasks; every message is a fresh
//!             oneshot channel (two per round), like crew's fresh futures.
//!   yield     two tasks call tokio::task::yield_now() n/2 times each; run it
//!             with --workers 1.

use std::future::Future;
use std::pin::Pin;
use std::process::exit;
use std::time::{Duration, Instant};
use tokio::sync::oneshot;

type BoxFuture<T> = Pin<Box<dyn Future<Output = T> + Send>>;
type Outcome = Result<(), &'static str>;

struct Workload {
    name: &'static str,
    default_n: u64,
    run: fn(u64) -> BoxFuture<Outcome>,
    per_switch: bool,
}

const WORKLOADS: &[Workload] = &[
    Workload { name: "spawn", default_n: 1_000_000, run: spawn_bench, per_switch: false },
    Workload { name: "fib", default_n: 30, run: fib_bench, per_switch: false },
    Workload { name: "sleepers", default_n: 100_000, run: sleepers_bench, per_switch: false },
    Workload { name: "pingpong", default_n: 1_000_000, run: pingpong_bench, per_switch: false },
    Workload { name: "yield", default_n: 10_000_000, run: yield_bench, per_switch: true },
];

fn spawn_bench(n: u64) -> BoxFuture<Outcome> {
    Box::pin(async move {
        let mut handles = Vec::with_capacity(n as usize);
        for i in 0..n {
            handles.push(tokio::spawn(async move { i }));
        }
        let mut sum = 0u64;
        for h in handles {
            sum += h.await.map_err(|_| "spawn: a task failed")?;
        }
        if n > 0 && sum != n * (n - 1) / 2 {
            return Err("spawn: wrong sum of results");
        }
        Ok(())
    })
}

fn fib(n: u64) -> BoxFuture<u64> {
    Box::pin(async move {
        if n < 2 {
            return n;
        }
        let child = tokio::spawn(fib(n - 1));
        let b = fib(n - 2).await;
        child.await.expect("fib task panicked") + b
    })
}

fn fib_iterative(n: u64) -> u64 {
    let (mut a, mut b) = (0u64, 1u64);
    for _ in 0..n {
        let t = a + b;
        a = b;
        b = t;
    }
    a
}

fn fib_bench(n: u64) -> BoxFuture<Outcome> {
    Box::pin(async move {
        if fib(n).await != fib_iterative(n) {
            return Err("fib: wrong result");
        }
        Ok(())
    })
}

fn sleepers_bench(n: u64) -> BoxFuture<Outcome> {
    Box::pin(async move {
        let mut handles = Vec::with_capacity(n as usize);
        for _ in 0..n {
            handles.push(tokio::spawn(tokio::time::sleep(Duration::from_millis(10))));
        }
        for h in handles {
            h.await.map_err(|_| "sleepers: a task failed")?;
        }
        Ok(())
    })
}

/// A request carries the channel for its answer and the receiving end of the
/// next request, so that every message travels on a channel of its own.
struct Request {
    value: u64,
    reply: oneshot::Sender<u64>,
    next: oneshot::Receiver<Request>,
}

fn pingpong_bench(n: u64) -> BoxFuture<Outcome> {
    Box::pin(async move {
        let (first_tx, first_rx) = oneshot::channel::<Request>();
        let pong = tokio::spawn(async move {
            let mut requests = first_rx;
            for _ in 0..n {
                let req = requests.await.map_err(|_| "pingpong: ping went away")?;
                req.reply.send(req.value).map_err(|_| "pingpong: ping went away")?;
                requests = req.next;
            }
            Ok::<(), &'static str>(())
        });
        let ping = tokio::spawn(async move {
            let mut requests = first_tx;
            for i in 0..n {
                let (reply_tx, reply_rx) = oneshot::channel();
                let (next_tx, next_rx) = oneshot::channel();
                let req = Request { value: i, reply: reply_tx, next: next_rx };
                requests.send(req).map_err(|_| "pingpong: pong went away")?;
                if reply_rx.await.map_err(|_| "pingpong: pong went away")? != i {
                    return Err("pingpong: wrong answer");
                }
                requests = next_tx;
            }
            Ok(())
        });
        ping.await.map_err(|_| "pingpong: ping panicked")??;
        pong.await.map_err(|_| "pingpong: pong panicked")??;
        Ok(())
    })
}

fn yield_bench(n: u64) -> BoxFuture<Outcome> {
    Box::pin(async move {
        let yielder = |count: u64| async move {
            for _ in 0..count {
                tokio::task::yield_now().await;
            }
        };
        let a = tokio::spawn(yielder(n / 2));
        let b = tokio::spawn(yielder(n - n / 2));
        a.await.map_err(|_| "yield: a task failed")?;
        b.await.map_err(|_| "yield: a task failed")?;
        Ok(())
    })
}

fn usage(msg: &str) -> ! {
    if !msg.is_empty() {
        eprintln!("tokio-bench: {}", msg);
    }
    eprint!("usage: tokio-bench <workload> [--workers N] [--n N]\nworkloads:");
    for w in WORKLOADS {
        eprint!(" {} (n={})", w.name, w.default_n);
    }
    eprintln!();
    exit(2);
}

fn parse_count(flag: &str, value: Option<&String>, max: u64) -> u64 {
    let text = value.unwrap_or_else(|| usage(&format!("{} needs a value", flag)));
    match text.parse::<u64>() {
        Ok(v) if v <= max => v,
        _ => usage(&format!("{} needs a number <= {}, got '{}'", flag, max, text)),
    }
}

fn peak_rss_mb() -> f64 {
    // SAFETY: getrusage only writes into the zeroed struct we pass.
    let mut ru: libc::rusage = unsafe { std::mem::zeroed() };
    if unsafe { libc::getrusage(libc::RUSAGE_SELF, &mut ru) } != 0 {
        return 0.0;
    }
    ru.ru_maxrss as f64 / 1024.0 // KiB on Linux
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    if args.len() < 2 {
        usage("");
    }
    let w = WORKLOADS
        .iter()
        .find(|w| w.name == args[1])
        .unwrap_or_else(|| usage(&format!("unknown workload '{}'", args[1])));
    let (mut n, mut workers) = (w.default_n, 0u64);
    let mut i = 2;
    while i < args.len() {
        match args[i].as_str() {
            "--workers" => workers = parse_count("--workers", args.get(i + 1), 1024),
            "--n" => n = parse_count("--n", args.get(i + 1), u64::MAX / 2),
            other => usage(&format!("unknown option '{}'", other)),
        }
        i += 2;
    }
    if w.name == "fib" && n > 60 {
        usage("fib needs --n <= 60");
    }
    let workers = if workers > 0 {
        workers as usize
    } else {
        std::thread::available_parallelism().map_or(1, |p| p.get())
    };

    let start = Instant::now();
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(workers)
        .enable_time()
        .build()
        .unwrap_or_else(|e| {
            eprintln!("tokio-bench: cannot build the runtime: {}", e);
            exit(1);
        });
    let outcome = rt.block_on(async move {
        tokio::spawn((w.run)(n)).await.unwrap_or(Err("the main task panicked"))
    });
    drop(rt);
    let seconds = start.elapsed().as_secs_f64();
    if let Err(msg) = outcome {
        eprintln!("tokio-bench: {}", msg);
        exit(1);
    }

    print!(
        "{{\"bench\":\"{}\",\"runtime\":\"tokio\",\"workers\":{},\"n\":{},\"seconds\":{:.6},\"rss_mb\":{:.1}",
        w.name, workers, n, seconds, peak_rss_mb()
    );
    if w.per_switch {
        let per_switch = if n > 0 { seconds * 1e9 / n as f64 } else { 0.0 };
        print!(",\"ns_per_switch\":{:.2}", per_switch);
    }
    println!("}}");
}
