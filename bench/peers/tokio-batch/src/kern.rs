//! The serial kernels, inputs and checks of the batch workloads: a Rust
//! transcription of bench/batch/kern.h (same generators, same constants, same
//! cut-offs), so that tokio-batch computes what crew-bench computes and only
//! the parallel skeleton (main.rs) differs. Written for crew from kern.h.

// ---- fib ---------------------------------------------------------------

pub fn fib_expected(n: u64) -> u64 {
    let (mut a, mut b) = (0u64, 1u64);
    for _ in 0..n {
        let t = a.wrapping_add(b);
        a = b;
        b = t;
    }
    a
}

// ---- nqueens -----------------------------------------------------------

pub const Q_MAX: usize = 20;
pub type Board = [u8; Q_MAX];

pub fn queens_ok(b: &Board, row: usize, col: usize) -> bool {
    let (row, col) = (row as i32, col as i32);
    for r in 0..row {
        let c = b[r as usize] as i32;
        if c == col || c - col == row - r || col - c == row - r {
            return false;
        }
    }
    true
}

/// Solutions of n-queens (OEIS A000170); 0 when not tabulated.
pub fn queens_expected(n: u64) -> u64 {
    const T: [u64; 17] = [
        1, 1, 0, 0, 2, 10, 4, 40, 92, 352, 724, 2680, 14200, 73712, 365596, 2279184, 14772512,
    ];
    T.get(n as usize).copied().unwrap_or(0)
}

// ---- UTS: SHA-1 and the reference trees --------------------------------

/// SHA-1's compression function on one 64-byte block.
fn sha1_block(h: &mut [u32; 5], p: &[u8; 64]) {
    let mut w = [0u32; 80]; // the whole message schedule, expanded up front
    for i in 0..16 {
        w[i] = u32::from_be_bytes([p[4 * i], p[4 * i + 1], p[4 * i + 2], p[4 * i + 3]]);
    }
    for i in 16..80 {
        w[i] = (w[i - 3] ^ w[i - 8] ^ w[i - 14] ^ w[i - 16]).rotate_left(1);
    }
    let [mut a, mut b, mut c, mut d, mut e] = *h;
    macro_rules! rounds {
        ($range:expr, $f:expr, $k:expr) => {
            for i in $range {
                let t = a
                    .rotate_left(5)
                    .wrapping_add($f(b, c, d))
                    .wrapping_add(e)
                    .wrapping_add($k)
                    .wrapping_add(w[i]);
                e = d;
                d = c;
                c = b.rotate_left(30);
                b = a;
                a = t;
            }
        };
    }
    rounds!(0..20, |b: u32, c: u32, d: u32| ((c ^ d) & b) ^ d, 0x5A827999u32);
    rounds!(20..40, |b: u32, c: u32, d: u32| b ^ c ^ d, 0x6ED9EBA1u32);
    rounds!(40..60, |b: u32, c: u32, d: u32| ((b | c) & d) | (b & c), 0x8F1BBCDCu32);
    rounds!(60..80, |b: u32, c: u32, d: u32| b ^ c ^ d, 0xCA62C1D6u32);
    for (x, v) in h.iter_mut().zip([a, b, c, d, e]) {
        *x = x.wrapping_add(v);
    }
}

/// SHA-1 of a message shorter than 56 bytes (UTS hashes 20 or 24).
fn sha1_short(msg: &[u8], out: &mut [u8; 20]) {
    let mut h = [0x67452301u32, 0xEFCDAB89, 0x98BADCFE, 0x10325476, 0xC3D2E1F0];
    let mut buf = [0u8; 64];
    buf[..msg.len()].copy_from_slice(msg);
    buf[msg.len()] = 0x80;
    buf[56..].copy_from_slice(&(msg.len() as u64 * 8).to_be_bytes());
    sha1_block(&mut h, &buf);
    for i in 0..5 {
        out[4 * i..4 * i + 4].copy_from_slice(&h[i].to_be_bytes());
    }
}

#[derive(Clone, Copy)]
pub struct UtsNode {
    pub state: [u8; 20],
    pub height: i32,
}

/// T1 geometric (branching b0 = 4 up to depth gen_mx, seed 19) or T3
/// binomial (b0 root children, then m children with probability q, seed 42).
#[derive(Clone, Copy)]
pub struct UtsTree {
    pub binomial: bool,
    b0: f64,
    gen_mx: i32,
    q: f64,
    m: i32,
    seed: i32,
}

pub fn uts_t1(depth: u64) -> UtsTree {
    UtsTree { binomial: false, b0: 4.0, gen_mx: depth as i32, q: 0.0, m: 0, seed: 19 }
}

pub fn uts_t3(root: u64) -> UtsTree {
    UtsTree { binomial: true, b0: root as f64, gen_mx: 0, q: 0.124875, m: 8, seed: 42 }
}

pub fn uts_root(t: &UtsTree) -> UtsNode {
    let mut seed = [0u8; 20];
    seed[16..].copy_from_slice(&t.seed.to_be_bytes());
    let mut r = UtsNode { state: [0; 20], height: 0 };
    sha1_short(&seed, &mut r.state);
    r
}

pub fn uts_child(parent: &UtsNode, i: i32) -> UtsNode {
    let mut msg = [0u8; 24];
    msg[..20].copy_from_slice(&parent.state);
    msg[20..].copy_from_slice(&i.to_be_bytes());
    let mut c = UtsNode { state: [0; 20], height: parent.height + 1 };
    sha1_short(&msg, &mut c.state);
    c
}

fn uts_prob(n: &UtsNode) -> f64 {
    let b = u32::from_be_bytes([n.state[16], n.state[17], n.state[18], n.state[19]]);
    (b & 0x7fffffff) as f64 / 2147483648.0
}

pub fn uts_children(t: &UtsTree, n: &UtsNode) -> i32 {
    let c = if t.binomial {
        if n.height == 0 {
            return t.b0.floor() as i32;
        }
        if uts_prob(n) < t.q {
            t.m
        } else {
            0
        }
    } else {
        let b = if n.height < t.gen_mx { t.b0 } else { 0.0 };
        let p = 1.0 / (1.0 + b);
        ((1.0 - uts_prob(n)).ln() / (1.0 - p).ln()).floor() as i32
    };
    c.min(100) // the reference's cap, never reached by T1/T3
}

pub fn uts_count(t: &UtsTree, n: &UtsNode) -> u64 {
    let k = uts_children(t, n);
    let mut count = 1;
    for i in 0..k {
        count += uts_count(t, &uts_child(n, i));
    }
    count
}

/// Published node counts of T1 (depth 10; 9) and T3 (2000 root children; 200).
pub fn uts_expected(binomial: bool, n: u64) -> u64 {
    match (binomial, n) {
        (false, 10) => 4130071,
        (false, 9) => 1031269,
        (true, 2000) => 4112897,
        (true, 200) => 2745281,
        _ => 0,
    }
}

// ---- knapsack -----------------------------------------------------------

#[derive(Clone, Copy)]
pub struct Item {
    pub value: i32,
    pub weight: i32,
}

pub fn lcg(s: &mut u64) -> u32 {
    *s = s.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
    (*s >> 33) as u32
}

/// kern_knapsack_input: n items of even weight 1000..1998, value = weight,
/// sorted by decreasing value/weight (ties by weight), and an odd capacity,
/// a third of the total weight.
pub fn knapsack_input(n: usize) -> (Vec<Item>, i32) {
    let mut s = 0x6b6e61707361636bu64; // "knapsack"
    let mut items = Vec::with_capacity(n);
    let mut total = 0i64;
    for _ in 0..n {
        let weight = 2 * (500 + (lcg(&mut s) % 500) as i32);
        items.push(Item { value: weight, weight });
        total += weight as i64;
    }
    items.sort_by(|x, y| {
        let l = x.value as i64 * y.weight as i64;
        let r = y.value as i64 * x.weight as i64;
        r.cmp(&l).then(x.weight.cmp(&y.weight))
    });
    (items, (total / 3) as i32 | 1)
}

pub fn knapsack_bound_ok(e: &Item, c: i32, v: i32, best: i32) -> bool {
    v as f64 + c as f64 * e.value as f64 / e.weight as f64 > best as f64
}

/// The check: a dynamic programme over the capacity.
pub fn knapsack_dp(items: &[Item], cap: i32) -> i32 {
    let mut best = vec![0i32; cap as usize + 1];
    for it in items {
        let w = it.weight as usize;
        for c in (w..=cap as usize).rev() {
            best[c] = best[c].max(best[c - w] + it.value);
        }
    }
    best[cap as usize]
}

// ---- matmul -------------------------------------------------------------

pub const MM_LEAF: usize = 32;

/// C += A*B on an m x n by n x p block whose first elements are at a, b
/// and c; rows are ld apart.
///
/// # Safety
/// The blocks must lie inside live arrays, and nobody else may access C's
/// block (its m rows of p elements) meanwhile; only those rows are borrowed,
/// so tasks may own disjoint blocks of one matrix.
pub unsafe fn mm_leaf(a: *const f64, b: *const f64, c: *mut f64, m: usize, n: usize, p: usize, ld: usize) {
    for i in 0..m {
        let row = std::slice::from_raw_parts_mut(c.add(i * ld), p);
        for k in 0..n {
            let x = *a.add(i * ld + k);
            let b = std::slice::from_raw_parts(b.add(k * ld), p);
            for (cj, bj) in row.iter_mut().zip(b) {
                *cj += x * bj;
            }
        }
    }
}

pub fn mm_input(n: usize) -> (Vec<f64>, Vec<f64>, Vec<f64>) {
    let mut s = 0x6d61746d756cu64; // "matmul"
    let (mut a, mut b) = (vec![0.0; n * n], vec![0.0; n * n]);
    for i in 0..n * n {
        a[i] = (lcg(&mut s) % 8) as f64;
        b[i] = (lcg(&mut s) % 8) as f64 - 3.0;
    }
    (a, b, vec![0.0; n * n])
}

/// C*x == A*(B*x) exactly, for an integer vector x.
pub fn mm_check(a: &[f64], b: &[f64], c: &[f64], n: usize) -> bool {
    let x: Vec<f64> = (0..n).map(|i| (i % 7) as f64 - 3.0).collect();
    let dot = |row: &[f64], v: &[f64]| row.iter().zip(v).fold(0.0, |s, (r, x)| s + r * x);
    let bx: Vec<f64> = (0..n).map(|i| dot(&b[i * n..(i + 1) * n], &x)).collect();
    (0..n).all(|i| dot(&a[i * n..(i + 1) * n], &bx) == dot(&c[i * n..(i + 1) * n], &x))
}

// ---- cilksort -----------------------------------------------------------

pub const SORT_QUICK: usize = 2048; // below: serial sort
pub const SORT_MERGE: usize = 2048; // below: serial merge
const SORT_INSERT: usize = 20;

fn insertion(a: &mut [u64]) {
    for i in 1..a.len() {
        let v = a[i];
        let mut j = i;
        while j > 0 && a[j - 1] > v {
            a[j] = a[j - 1];
            j -= 1;
        }
        a[j] = v;
    }
}

pub fn quicksort(mut a: &mut [u64]) {
    while a.len() > SORT_INSERT {
        let n = a.len();
        let (x, y, z) = (a[0], a[n / 2], a[n - 1]);
        let piv = if x < y {
            if y < z {
                y
            } else if x < z {
                z
            } else {
                x
            }
        } else if x < z {
            x
        } else if y < z {
            z
        } else {
            y
        };
        let (mut i, mut j) = (0usize, n - 1);
        loop {
            while a[i] < piv {
                i += 1;
            }
            while a[j] > piv {
                j -= 1;
            }
            if i >= j {
                break;
            }
            a.swap(i, j);
            i += 1;
            j -= 1;
        }
        // recurse on the smaller side, loop on the larger
        let (lo, hi) = std::mem::take(&mut a).split_at_mut(j + 1);
        if lo.len() < hi.len() {
            quicksort(lo);
            a = hi;
        } else {
            quicksort(hi);
            a = lo;
        }
    }
    insertion(a);
}

pub fn merge_serial(a: &[u64], b: &[u64], out: &mut [u64]) {
    let (mut i, mut j, mut k) = (0, 0, 0);
    while i < a.len() && j < b.len() {
        if b[j] < a[i] {
            out[k] = b[j];
            j += 1;
        } else {
            out[k] = a[i];
            i += 1;
        }
        k += 1;
    }
    out[k..k + a.len() - i].copy_from_slice(&a[i..]);
    k += a.len() - i;
    out[k..k + b.len() - j].copy_from_slice(&b[j..]);
}

/// The first index in b whose element is >= v.
pub fn lower_bound(b: &[u64], v: u64) -> usize {
    b.partition_point(|&x| x < v)
}

pub fn sort_input(n: usize) -> (Vec<u64>, u64, u64) {
    let mut s = 0x736f7274u64; // "sort"
    let (mut sum, mut xr) = (0u64, 0u64);
    let mut a = Vec::with_capacity(n);
    for _ in 0..n {
        let hi = (lcg(&mut s) as u64) << 32;
        let v = hi | lcg(&mut s) as u64;
        sum = sum.wrapping_add(v);
        xr ^= v.wrapping_mul(0x9E3779B97F4A7C15);
        a.push(v);
    }
    (a, sum, xr)
}

pub fn sort_check(a: &[u64], sum: u64, xr: u64) -> bool {
    let (mut s, mut x) = (0u64, 0u64);
    for (i, &v) in a.iter().enumerate() {
        if i > 0 && a[i - 1] > v {
            return false;
        }
        s = s.wrapping_add(v);
        x ^= v.wrapping_mul(0x9E3779B97F4A7C15);
    }
    s == sum && x == xr
}

// ---- skew ---------------------------------------------------------------

pub const SKEW_GRAIN: u64 = 16;

fn skew_cost(i: u64, n: u64) -> u64 {
    let mut c = 50 + 500 * i / n.max(1);
    if i.wrapping_mul(0x9E3779B97F4A7C15) >> 57 == 0 || i.wrapping_mul(2654435761) % 97 == 0 {
        c *= 50;
    }
    c
}

fn skew_iter(i: u64, n: u64) -> u64 {
    let mut x = i + 1;
    for _ in 0..skew_cost(i, n) {
        x ^= x >> 31;
        x = x.wrapping_mul(0xBF58476D1CE4E5B9);
        x ^= x >> 29;
    }
    x
}

pub fn skew_range(lo: u64, hi: u64, n: u64) -> u64 {
    (lo..hi).fold(0u64, |s, i| s.wrapping_add(skew_iter(i, n)))
}

// ---- bpc ----------------------------------------------------------------

pub const BPC_CONSUMERS: u64 = 16;
const BPC_WORK: u32 = 400;

pub fn bpc_consume(k: u64, j: u64) -> u64 {
    let mut x = k.wrapping_mul(1000003).wrapping_add(j).wrapping_add(1);
    for _ in 0..BPC_WORK {
        x ^= x >> 33;
        x = x.wrapping_mul(0xFF51AFD7ED558CCD);
    }
    x & 0xffff
}

pub fn bpc_serial(n: u64) -> u64 {
    let mut sum = 0u64;
    for k in (1..=n).rev() {
        for j in 0..BPC_CONSUMERS {
            sum = sum.wrapping_add(bpc_consume(k, j));
        }
    }
    sum
}

/// Values printed by a C program over bench/batch/kern.h (gcc 12, -O2), so
/// that the transcription is known to produce the same inputs and answers.
#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn same_as_kern_h() {
        let (a, _, _) = sort_input(3);
        assert_eq!((a[0], a[1]), (0x6877d48976223a4c, 0x5ca374af36b21630));
        let (items, cap) = knapsack_input(30);
        assert_eq!((cap, items[0].weight, items[29].weight), (13955, 1022, 1948));
        assert_eq!(knapsack_dp(&items, cap), 13954);
        assert_eq!(skew_range(0, 1000, 1000), 5697080780411946786);
        assert_eq!(skew_range(0, 400000, 400000) & !(1 << 63), 1983628080157490942);
        assert_eq!(bpc_serial(100), 50893315);
        assert_eq!(bpc_serial(40000), 20974501628);
        let t = uts_t3(20);
        assert_eq!(uts_count(&t, &uts_root(&t)), 6213);
        let t = uts_t1(8);
        assert_eq!(uts_count(&t, &uts_root(&t)), 257042);
        let (a, b, _) = mm_input(4);
        assert_eq!((&a[..4], &b[..4]), (&[0.0, 0.0, 3.0, 1.0][..], &[-1.0, -1.0, 3.0, 2.0][..]));
        let mut v: Vec<u64> = (0..5000u64).map(|i| i.wrapping_mul(0x9E3779B97F4A7C15) >> 40).collect();
        let mut w = v.clone();
        quicksort(&mut v);
        w.sort_unstable();
        assert_eq!(v, w);
    }
}
