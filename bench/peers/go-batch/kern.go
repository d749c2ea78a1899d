// The serial kernels, inputs and checks of the batch workloads: a Go
// transcription of bench/batch/kern.h (same generators, same constants, same
// cut-offs), so that go-batch computes what crew-bench computes and only the
// parallel skeleton (main.go) differs. Written for crew from kern.h.
package main

import (
	"crypto/sha1"
	"encoding/binary"
	"math"
	"sort"
)

// ---- fib ---------------------------------------------------------------

func fibExpected(n uint64) uint64 {
	var a, b uint64 = 0, 1
	for i := uint64(0); i < n; i++ {
		a, b = b, a+b
	}
	return a
}

// ---- nqueens -----------------------------------------------------------

const qMax = 20

type board [qMax]byte

func queensOK(b *board, row, col int) bool {
	for r := 0; r < row; r++ {
		c := int(b[r])
		if c == col || c-col == row-r || col-c == row-r {
			return false
		}
	}
	return true
}

// Solutions of n-queens (OEIS A000170); 0 when not tabulated.
func queensExpected(n uint64) uint64 {
	t := []uint64{1, 1, 0, 0, 2, 10, 4, 40, 92, 352, 724, 2680, 14200, 73712,
		365596, 2279184, 14772512}
	if n < uint64(len(t)) {
		return t[n]
	}
	return 0
}

// ---- UTS: SHA-1 and the reference trees --------------------------------

// sha1Short is SHA-1 of a message (UTS hashes 20 or 24 bytes). Go's own
// crypto/sha1 (assembly on amd64) rather than a transcription of kern.h's
// portable C: measured here, a T1 count takes 0.64 s with it and 1.1 s with
// a plain Go compression function (C: 0.48 s).
func sha1Short(msg []byte, out *[20]byte) {
	*out = sha1.Sum(msg)
}

type utsNode struct {
	state  [20]byte
	height int
}

// utsTree: T1 geometric (branching b0 = 4 up to depth genMx, seed 19) or T3
// binomial (b0 root children, then m children with probability q, seed 42).
type utsTree struct {
	binomial bool
	b0       float64
	genMx    int
	q        float64
	m        int
	seed     int
}

func utsT1(depth uint64) utsTree { return utsTree{false, 4.0, int(depth), 0, 0, 19} }
func utsT3(root uint64) utsTree  { return utsTree{true, float64(root), 0, 0.124875, 8, 42} }

func utsRoot(t *utsTree) utsNode {
	var seed [20]byte
	binary.BigEndian.PutUint32(seed[16:], uint32(t.seed))
	var r utsNode
	sha1Short(seed[:], &r.state)
	return r
}

func utsChild(parent *utsNode, i int, child *utsNode) {
	var msg [24]byte
	copy(msg[:20], parent.state[:])
	binary.BigEndian.PutUint32(msg[20:], uint32(i))
	sha1Short(msg[:], &child.state)
	child.height = parent.height + 1
}

func utsProb(n *utsNode) float64 {
	b := binary.BigEndian.Uint32(n.state[16:])
	return float64(b&0x7fffffff) / 2147483648.0
}

func utsChildren(t *utsTree, n *utsNode) int {
	var c int
	if t.binomial {
		if n.height == 0 {
			return int(math.Floor(t.b0))
		}
		if utsProb(n) < t.q {
			c = t.m
		}
	} else {
		b := 0.0
		if n.height < t.genMx {
			b = t.b0
		}
		p := 1.0 / (1.0 + b)
		c = int(math.Floor(math.Log(1.0-utsProb(n)) / math.Log(1.0-p)))
	}
	if c > 100 { // the reference's cap, never reached by T1/T3
		c = 100
	}
	return c
}

func utsCount(t *utsTree, n *utsNode) uint64 {
	k := utsChildren(t, n)
	count := uint64(1)
	for i := 0; i < k; i++ {
		var c utsNode
		utsChild(n, i, &c)
		count += utsCount(t, &c)
	}
	return count
}

// Published node counts of T1 (depth 10; 9) and T3 (2000 root children; 200).
func utsExpected(binomial bool, n uint64) uint64 {
	switch {
	case !binomial && n == 10:
		return 4130071
	case !binomial && n == 9:
		return 1031269
	case binomial && n == 2000:
		return 4112897
	case binomial && n == 200:
		return 2745281
	}
	return 0
}

// ---- knapsack -----------------------------------------------------------

type item struct{ value, weight int }

func lcg(s *uint64) uint32 {
	*s = *s*6364136223846793005 + 1442695040888963407
	return uint32(*s >> 33)
}

// knapsackInput is kern_knapsack_input: n items of even weight 1000..1998,
// value = weight, sorted by decreasing value/weight (ties by weight), and an
// odd capacity, a third of the total weight.
func knapsackInput(n int) ([]item, int) {
	s := uint64(0x6b6e61707361636b) // "knapsack"
	items := make([]item, n)
	total := 0
	for i := range items {
		items[i].weight = 2 * (500 + int(lcg(&s)%500))
		items[i].value = items[i].weight
		total += items[i].weight
	}
	sort.SliceStable(items, func(i, j int) bool {
		x, y := items[i], items[j]
		l, r := x.value*y.weight, y.value*x.weight
		if l != r {
			return l > r
		}
		return x.weight < y.weight
	})
	return items, (total / 3) | 1
}

func knapsackBoundOK(e *item, c, v, best int) bool {
	return float64(v)+float64(c)*float64(e.value)/float64(e.weight) > float64(best)
}

// knapsackDP is the check: a dynamic programme over the capacity.
func knapsackDP(items []item, cap int) int {
	best := make([]int, cap+1)
	for _, it := range items {
		for c := cap; c >= it.weight; c-- {
			if v := best[c-it.weight] + it.value; v > best[c] {
				best[c] = v
			}
		}
	}
	return best[cap]
}

// ---- matmul -------------------------------------------------------------

const mmLeaf = 32

// mmLeafKernel: C += A*B on an m x n by n x p block, leading dimension ld.
func mmLeafKernel(A, B, C []float64, m, n, p, ld int) {
	for i := 0; i < m; i++ {
		c := C[i*ld : i*ld+p]
		for k := 0; k < n; k++ {
			a := A[i*ld+k]
			b := B[k*ld : k*ld+p]
			for j := range c {
				c[j] += a * b[j]
			}
		}
	}
}

func mmInput(n int) (A, B, C []float64) {
	s := uint64(0x6d61746d756c) // "matmul"
	A, B, C = make([]float64, n*n), make([]float64, n*n), make([]float64, n*n)
	for i := range A {
		A[i] = float64(lcg(&s) % 8)
		B[i] = float64(lcg(&s)%8) - 3.0
	}
	return
}

// mmCheck: C*x == A*(B*x) exactly, for an integer vector x.
func mmCheck(A, B, C []float64, n int) bool {
	x, bx, cx := make([]float64, n), make([]float64, n), make([]float64, n)
	for i := range x {
		x[i] = float64(i%7) - 3.0
	}
	for i := 0; i < n; i++ {
		var b, c float64
		for j := 0; j < n; j++ {
			b += B[i*n+j] * x[j]
			c += C[i*n+j] * x[j]
		}
		bx[i], cx[i] = b, c
	}
	for i := 0; i < n; i++ {
		var a float64
		for j := 0; j < n; j++ {
			a += A[i*n+j] * bx[j]
		}
		if a != cx[i] {
			return false
		}
	}
	return true
}

// ---- cilksort -----------------------------------------------------------

const (
	sortQuick  = 2048 // below: serial sort
	sortMerge  = 2048 // below: serial merge
	sortInsert = 20
)

func insertion(a []uint64) {
	for i := 1; i < len(a); i++ {
		v := a[i]
		j := i - 1
		for ; j >= 0 && a[j] > v; j-- {
			a[j+1] = a[j]
		}
		a[j+1] = v
	}
}

func quicksort(a []uint64) {
	for len(a) > sortInsert {
		n := len(a)
		x, y, z := a[0], a[n/2], a[n-1]
		var piv uint64
		if x < y {
			if y < z {
				piv = y
			} else if x < z {
				piv = z
			} else {
				piv = x
			}
		} else if x < z {
			piv = x
		} else if y < z {
			piv = z
		} else {
			piv = y
		}
		i, j := 0, n-1
		for {
			for a[i] < piv {
				i++
			}
			for a[j] > piv {
				j--
			}
			if i >= j {
				break
			}
			a[i], a[j] = a[j], a[i]
			i++
			j--
		}
		// recurse on the smaller side, loop on the larger
		if j+1 < n-j-1 {
			quicksort(a[:j+1])
			a = a[j+1:]
		} else {
			quicksort(a[j+1:])
			a = a[:j+1]
		}
	}
	insertion(a)
}

func mergeSerial(a, b, out []uint64) {
	i, j, k := 0, 0, 0
	for i < len(a) && j < len(b) {
		if b[j] < a[i] {
			out[k] = b[j]
			j++
		} else {
			out[k] = a[i]
			i++
		}
		k++
	}
	k += copy(out[k:], a[i:])
	copy(out[k:], b[j:])
}

// lowerBound: the first index in b whose element is >= v.
func lowerBound(b []uint64, v uint64) int {
	lo, hi := 0, len(b)
	for lo < hi {
		mid := lo + (hi-lo)/2
		if b[mid] < v {
			lo = mid + 1
		} else {
			hi = mid
		}
	}
	return lo
}

func sortInput(n int) (a []uint64, sum, xr uint64) {
	s := uint64(0x736f7274) // "sort"
	a = make([]uint64, n)
	for i := range a {
		hi := uint64(lcg(&s))
		a[i] = hi<<32 | uint64(lcg(&s))
		sum += a[i]
		xr ^= a[i] * 0x9E3779B97F4A7C15
	}
	return
}

func sortCheck(a []uint64, sum, xr uint64) bool {
	var s, x uint64
	for i, v := range a {
		if i > 0 && a[i-1] > v {
			return false
		}
		s += v
		x ^= v * 0x9E3779B97F4A7C15
	}
	return s == sum && x == xr
}

// ---- skew ---------------------------------------------------------------

const skewGrain = 16

func skewCost(i, n uint64) uint64 {
	if n == 0 {
		n = 1
	}
	c := 50 + 500*i/n
	if (i*0x9E3779B97F4A7C15)>>57 == 0 || (i*2654435761)%97 == 0 {
		c *= 50
	}
	return c
}

func skewIter(i, n uint64) uint64 {
	x, rounds := i+1, skewCost(i, n)
	for r := uint64(0); r < rounds; r++ {
		x ^= x >> 31
		x *= 0xBF58476D1CE4E5B9
		x ^= x >> 29
	}
	return x
}

func skewRange(lo, hi, n uint64) uint64 {
	var sum uint64
	for i := lo; i < hi; i++ {
		sum += skewIter(i, n)
	}
	return sum
}

// ---- bpc ----------------------------------------------------------------

const (
	bpcConsumers = 16
	bpcWork      = 400
)

func bpcConsume(k, j uint64) uint64 {
	x := k*1000003 + j + 1
	for r := 0; r < bpcWork; r++ {
		x ^= x >> 33
		x *= 0xFF51AFD7ED558CCD
	}
	return x & 0xffff
}

func bpcSerial(k uint64) uint64 {
	var sum uint64
	for ; k > 0; k-- {
		for j := uint64(0); j < bpcConsumers; j++ {
			sum += bpcConsume(k, j)
		}
	}
	return sum
}
