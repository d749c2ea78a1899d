//! tokio-batch - the batch workloads of crew-bench (bench/batch.h) on Tokio's
//! work-stealing multi-thread runtime: `tokio::spawn` where crew's
//! `--runtime crew` version calls crew_spawn, `.await` on the JoinHandle
//! where it calls crew_join, and `.await` on a boxed recursive future where
//! it calls the task function inline. Same kernels, inputs, cut-offs and
//! checks as crew-bench (kern.rs transcribes bench/batch/kern.h), same
//! command line and JSON line, runtime "tokio":
//!
//!     tokio-batch <workload> [--workers N] [--n N]
//!     {"bench":"nqueens","runtime":"tokio","workers":2,"n":13,"seconds":0.41,"rss_mb":5.1}
//!
//! "seconds" spans what tokio-bench's does: building the runtime
//! (worker_threads = N, default the number of CPUs), the computation (itself a
//! spawned task, so that it runs on a worker like crew's main task) and
//! dropping the runtime; input generation and the check are outside it.
//! matmul and cilksort hand each task raw pointers to its own block of the
//! arrays (tokio::spawn needs 'static futures); the blocks of concurrent
//! tasks are disjoint and every task is awaited before the arrays go away.
//! Exit status: 0 ok, 1 wrong result, 2 usage, 3 unknown workload.

mod kern;

use kern::*;
use std::future::Future;
use std::pin::Pin;
use std::process::exit;
use std::sync::atomic::{AtomicI32, Ordering::Relaxed};
use std::time::Instant;
use tokio::task::JoinHandle;

type BoxFuture<T> = Pin<Box<dyn Future<Output = T> + Send>>;

/// crew_join: the child's result (a child that panicked makes its parent
/// panic too, up to the main task, and the program exits 1).
async fn join<T>(h: JoinHandle<T>) -> T {
    h.await.expect("a child task failed")
}

// ---- the parallel skeletons (one task per crew_spawn) ---------------------

/// fib: spawn fib(n-1), call fib(n-2), join.
fn fib(n: u64) -> BoxFuture<u64> {
    Box::pin(async move {
        if n < 2 {
            return n;
        }
        let child = tokio::spawn(fib(n - 1));
        let b = fib(n - 2).await;
        join(child).await + b
    })
}

/// nqueens: a task per valid placement but the last, which is a call; every
/// child owns a copy of the board.
fn queens(b: Board, n: usize, row: usize) -> BoxFuture<u64> {
    Box::pin(async move {
        if row == n {
            return 1;
        }
        let mut handles = Vec::with_capacity(n);
        let mut last = None;
        for col in 0..n {
            if queens_ok(&b, row, col) {
                let mut kid = b;
                kid[row] = col as u8;
                if let Some(prev) = last.replace(kid) {
                    handles.push(tokio::spawn(queens(prev, n, row + 1)));
                }
            }
        }
        let mut sum = match last {
            Some(kid) => queens(kid, n, row + 1).await,
            None => 0,
        };
        for h in handles {
            sum += join(h).await;
        }
        sum
    })
}

/// uts: a node counts its subtree, a task per child but the last (a call).
fn uts(t: UtsTree, node: UtsNode) -> BoxFuture<u64> {
    Box::pin(async move {
        let k = uts_children(&t, &node);
        if k == 0 {
            return 1;
        }
        let handles: Vec<JoinHandle<u64>> =
            (0..k - 1).map(|i| tokio::spawn(uts(t, uts_child(&node, i)))).collect();
        let mut sum = 1 + uts(t, uts_child(&node, k - 1)).await;
        for h in handles {
            sum += join(h).await;
        }
        sum
    })
}

/// knapsack: branch and bound; "without the item" is spawned, "with" called;
/// the incumbent best is one shared atomic (a stale read only prunes less).
static KS_BEST: AtomicI32 = AtomicI32::new(0);

fn knapsack(e: &'static [Item], c: i32, v: i32) -> BoxFuture<i32> {
    Box::pin(async move {
        if c < 0 {
            return -1;
        }
        if e.is_empty() || c == 0 {
            return v;
        }
        if !knapsack_bound_ok(&e[0], c, v, KS_BEST.load(Relaxed)) {
            return -1;
        }
        let without = tokio::spawn(knapsack(&e[1..], c, v));
        let with = knapsack(&e[1..], c - e[0].weight, v + e[0].value).await;
        let best = with.max(join(without).await);
        let mut b = KS_BEST.load(Relaxed);
        while best > b {
            match KS_BEST.compare_exchange_weak(b, best, Relaxed, Relaxed) {
                Ok(_) => break,
                Err(now) => b = now,
            }
        }
        best
    })
}

/// A block of C += A*B: its first elements in A, B and C, rows ld apart.
#[derive(Clone, Copy)]
struct Mm {
    a: *const f64,
    b: *const f64,
    c: *mut f64,
    m: usize,
    n: usize,
    p: usize,
    ld: usize,
}

// SAFETY: tasks get disjoint blocks of C (or run one after the other on the
// same block), A and B are only read, and every task is awaited before the
// arrays are dropped.
unsafe impl Send for Mm {}

impl Mm {
    /// The block whose first elements are rows down and cols right of ours,
    /// in A, B and C as given by the three (row, col) offsets.
    fn shifted(self, a: (usize, usize), b: (usize, usize), c: (usize, usize)) -> Mm {
        let ld = self.ld;
        Mm {
            a: self.a.wrapping_add(a.0 * ld + a.1),
            b: self.b.wrapping_add(b.0 * ld + b.1),
            c: self.c.wrapping_add(c.0 * ld + c.1),
            ..self
        }
    }
}

/// matmul: split the largest dimension; the halves of m or p are
/// independent (a task and a call), the halves of the inner n add into the
/// same C one after the other.
fn matmul(x: Mm) -> BoxFuture<()> {
    Box::pin(async move {
        let Mm { m, n, p, .. } = x;
        if m <= MM_LEAF && n <= MM_LEAF && p <= MM_LEAF {
            // SAFETY: see Mm; this task owns x's block of C.
            unsafe { mm_leaf(x.a, x.b, x.c, m, n, p, x.ld) };
            return;
        }
        if !(m >= n && m >= p) && n >= p {
            let h = n / 2;
            let first = Mm { n: h, ..x };
            let second = Mm { n: n - h, ..x.shifted((0, h), (h, 0), (0, 0)) };
            matmul(first).await;
            matmul(second).await;
            return;
        }
        let (lo, hi) = if m >= p {
            let h = m / 2;
            (Mm { m: h, ..x }, Mm { m: m - h, ..x.shifted((h, 0), (0, 0), (h, 0)) })
        } else {
            let h = p / 2;
            (Mm { p: h, ..x }, Mm { p: p - h, ..x.shifted((0, 0), (0, h), (0, h)) })
        };
        let t = tokio::spawn(matmul(lo));
        matmul(hi).await;
        join(t).await;
    })
}

/// A run of keys that one task owns (or only reads).
#[derive(Clone, Copy)]
struct Run {
    p: *mut u64,
    len: usize,
}

// SAFETY: concurrent tasks get disjoint runs to write (runs they only read
// are not written meanwhile), and every task is awaited before the arrays
// are dropped.
unsafe impl Send for Run {}

impl Run {
    fn of(v: &mut [u64]) -> Run {
        Run { p: v.as_mut_ptr(), len: v.len() }
    }
    fn sub(self, lo: usize, hi: usize) -> Run {
        assert!(lo <= hi && hi <= self.len);
        Run { p: self.p.wrapping_add(lo), len: hi - lo }
    }
    /// SAFETY: nobody writes the run while the slice lives.
    unsafe fn get<'a>(self) -> &'a [u64] {
        std::slice::from_raw_parts(self.p, self.len)
    }
    /// SAFETY: nobody else accesses the run while the slice lives.
    #[allow(clippy::mut_from_ref)]
    unsafe fn get_mut<'a>(self) -> &'a mut [u64] {
        std::slice::from_raw_parts_mut(self.p, self.len)
    }
}

/// cilksort's merge: a big merge splits at the median of its longer run
/// into two merges (a task and a call).
fn merge(a: Run, b: Run, out: Run) -> BoxFuture<()> {
    Box::pin(async move {
        let (a, b) = if a.len < b.len { (b, a) } else { (a, b) };
        if a.len + b.len <= SORT_MERGE || b.len == 0 {
            // SAFETY: see Run; this task owns out, a and b are stable.
            unsafe { merge_serial(a.get(), b.get(), out.get_mut()) };
            return;
        }
        let ma = a.len / 2;
        // SAFETY: a and b are only read here.
        let mb = unsafe { lower_bound(b.get(), a.get()[ma]) };
        let t = tokio::spawn(merge(a.sub(0, ma), b.sub(0, mb), out.sub(0, ma + mb)));
        merge(a.sub(ma, a.len), b.sub(mb, b.len), out.sub(ma + mb, out.len)).await;
        join(t).await;
    })
}

/// cilksort: quarters sorted in parallel (three tasks and a call), two
/// merges in parallel, then the last merge.
fn cilksort(a: Run, tmp: Run) -> BoxFuture<()> {
    Box::pin(async move {
        let n = a.len;
        if n <= SORT_QUICK {
            // SAFETY: see Run; this task owns a.
            quicksort(unsafe { a.get_mut() });
            return;
        }
        let q = n / 4;
        let quarters = [0, 1, 2].map(|i| {
            tokio::spawn(cilksort(a.sub(i * q, (i + 1) * q), tmp.sub(i * q, (i + 1) * q)))
        });
        cilksort(a.sub(3 * q, n), tmp.sub(3 * q, n)).await;
        for h in quarters {
            join(h).await;
        }
        let t = tokio::spawn(merge(a.sub(0, q), a.sub(q, 2 * q), tmp.sub(0, 2 * q)));
        merge(a.sub(2 * q, 3 * q), a.sub(3 * q, n), tmp.sub(2 * q, n)).await;
        join(t).await;
        merge(tmp.sub(0, 2 * q), tmp.sub(2 * q, n), a).await;
    })
}

/// skew: recursive halving down to SKEW_GRAIN iterations.
fn skew(lo: u64, hi: u64, n: u64) -> BoxFuture<u64> {
    Box::pin(async move {
        if hi - lo <= SKEW_GRAIN {
            return skew_range(lo, hi, n);
        }
        let mid = lo + (hi - lo) / 2;
        let t = tokio::spawn(skew(lo, mid, n));
        let h = skew(mid, hi, n).await;
        h.wrapping_add(join(t).await)
    })
}

/// bpc: producer k spawns producer k-1, then its consumers; joins the
/// consumers, then the next producer.
fn producer(k: u64) -> BoxFuture<u64> {
    Box::pin(async move {
        if k == 0 {
            return 0;
        }
        let next = tokio::spawn(producer(k - 1));
        let consumers: Vec<JoinHandle<u64>> = (0..BPC_CONSUMERS)
            .map(|j| tokio::spawn(async move { bpc_consume(k, j) }))
            .collect();
        let mut sum = 0u64;
        for h in consumers.into_iter().rev() {
            sum = sum.wrapping_add(join(h).await);
        }
        sum.wrapping_add(join(next).await)
    })
}

// ---- the workloads: input, timed run, check --------------------------------

/// Runs fut as the main task of a fresh runtime of `workers` threads: its
/// result and the seconds from building the runtime to dropping it.
fn timed<T: Send + 'static>(workers: usize, fut: BoxFuture<T>) -> Result<(T, f64), String> {
    let start = Instant::now();
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(workers)
        .build()
        .map_err(|e| format!("cannot build the runtime: {}", e))?;
    let r = rt.block_on(async move { tokio::spawn(fut).await });
    drop(rt);
    let seconds = start.elapsed().as_secs_f64();
    r.map(|v| (v, seconds)).map_err(|_| "the main task panicked".to_string())
}

type Outcome = Result<f64, String>;

fn checked(ok: bool, seconds: f64) -> Outcome {
    if ok {
        Ok(seconds)
    } else {
        Err("wrong result".to_string())
    }
}

fn run_fib(n: u64, w: usize) -> Outcome {
    let (r, s) = timed(w, fib(n))?;
    checked(r == fib_expected(n), s)
}

fn run_nqueens(n: u64, w: usize) -> Outcome {
    if n < 4 {
        return Err("nqueens needs 4 <= n <= 16".into());
    }
    let (r, s) = timed(w, queens([0; Q_MAX], n as usize, 0))?;
    checked(r == queens_expected(n), s)
}

fn run_uts(t: UtsTree, n: u64, w: usize) -> Outcome {
    let root = uts_root(&t);
    let (r, s) = timed(w, uts(t, root))?;
    let mut want = uts_expected(t.binomial, n);
    if want == 0 {
        want = uts_count(&t, &root); // no published count: the serial count
    }
    checked(r == want, s)
}

fn run_uts_t1(n: u64, w: usize) -> Outcome {
    run_uts(uts_t1(n), n, w)
}

fn run_uts_t3(n: u64, w: usize) -> Outcome {
    run_uts(uts_t3(n), n, w)
}

fn run_knapsack(n: u64, w: usize) -> Outcome {
    if n < 1 {
        return Err("knapsack needs 1 <= n <= 64".into());
    }
    let (items, cap) = knapsack_input(n as usize);
    let items: &'static [Item] = Box::leak(items.into_boxed_slice());
    KS_BEST.store(0, Relaxed);
    let (r, s) = timed(w, knapsack(items, cap, 0))?;
    checked(r == knapsack_dp(items, cap), s)
}

fn run_matmul(n: u64, w: usize) -> Outcome {
    if n < 1 {
        return Err("matmul needs 1 <= n <= 16384".into());
    }
    let n = n as usize;
    let (a, b, mut c) = mm_input(n);
    let root = Mm { a: a.as_ptr(), b: b.as_ptr(), c: c.as_mut_ptr(), m: n, n, p: n, ld: n };
    let ((), s) = timed(w, matmul(root))?;
    checked(mm_check(&a, &b, &c, n), s)
}

fn run_cilksort(n: u64, w: usize) -> Outcome {
    if n < 1 {
        return Err("cilksort needs 1 <= n <= 2^32".into());
    }
    let (mut a, sum, xr) = sort_input(n as usize);
    let mut tmp = vec![0u64; n as usize];
    let ((), s) = timed(w, cilksort(Run::of(&mut a), Run::of(&mut tmp)))?;
    checked(sort_check(&a, sum, xr), s)
}

fn run_skew(n: u64, w: usize) -> Outcome {
    let (r, s) = timed(w, skew(0, n, n))?;
    // crew-bench's serial sum of the default n, modulo 2^63
    let want = if n == 400000 { 1983628080157490942 } else { skew_range(0, n, n) };
    let m63 = !(1u64 << 63);
    checked(r & m63 == want & m63, s)
}

fn run_bpc(n: u64, w: usize) -> Outcome {
    let (r, s) = timed(w, producer(n))?;
    let want = if n == 40000 { 20974501628 } else { bpc_serial(n) }; // kern_bpc(40000)
    checked(r == want, s)
}

struct Workload {
    name: &'static str,
    default_n: u64,
    max_n: u64,
    run: fn(u64, usize) -> Outcome,
}

const WORKLOADS: &[Workload] = &[
    Workload { name: "fib", default_n: 30, max_n: 60, run: run_fib },
    Workload { name: "nqueens", default_n: 13, max_n: 16, run: run_nqueens },
    Workload { name: "uts-t1", default_n: 10, max_n: 20, run: run_uts_t1 },
    Workload { name: "uts-t3", default_n: 2000, max_n: 100000, run: run_uts_t3 },
    Workload { name: "knapsack", default_n: 30, max_n: 64, run: run_knapsack },
    Workload { name: "matmul", default_n: 1024, max_n: 16384, run: run_matmul },
    Workload { name: "cilksort", default_n: 10000000, max_n: 1 << 32, run: run_cilksort },
    Workload { name: "skew", default_n: 400000, max_n: 1 << 40, run: run_skew },
    Workload { name: "bpc", default_n: 40000, max_n: 1 << 32, run: run_bpc },
];

// ---- command line -----------------------------------------------------------

fn usage(msg: &str) -> ! {
    if !msg.is_empty() {
        eprintln!("tokio-batch: {}", msg);
    }
    eprint!("usage: tokio-batch <workload> [--workers N] [--n N]\nworkloads:");
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
    let w = WORKLOADS.iter().find(|w| w.name == args[1]).unwrap_or_else(|| {
        eprintln!("tokio-batch: unknown workload '{}'", args[1]);
        exit(3);
    });
    let (mut n, mut workers) = (w.default_n, 0u64);
    let mut i = 2;
    while i < args.len() {
        match args[i].as_str() {
            "--workers" => workers = parse_count("--workers", args.get(i + 1), 1024),
            "--n" => n = parse_count("--n", args.get(i + 1), w.max_n),
            other => usage(&format!("unknown option '{}'", other)),
        }
        i += 2;
    }
    let workers = if workers > 0 {
        workers as usize
    } else {
        std::thread::available_parallelism().map_or(1, |p| p.get())
    };
    match (w.run)(n, workers) {
        Ok(seconds) => println!(
            "{{\"bench\":\"{}\",\"runtime\":\"tokio\",\"workers\":{},\"n\":{},\"seconds\":{:.6},\"rss_mb\":{:.1}}}",
            w.name, workers, n, seconds, peak_rss_mb()
        ),
        Err(msg) => {
            eprintln!("tokio-batch: {} n={}: {}", w.name, n, msg);
            exit(1);
        }
    }
}
