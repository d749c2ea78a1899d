package main

import (
	"sort"
	"testing"
)

// Values printed by a C program over bench/batch/kern.h (gcc 12, -O2), so
// that the transcription is known to produce the same inputs and answers.
func TestSameAsKernH(t *testing.T) {
	eq := func(what string, got, want uint64) {
		if got != want {
			t.Errorf("%s: got %d, want %d", what, got, want)
		}
	}
	a, _, _ := sortInput(3)
	eq("sort a[0]", a[0], 0x6877d48976223a4c)
	eq("sort a[1]", a[1], 0x5ca374af36b21630)
	items, cap := knapsackInput(30)
	eq("knapsack cap", uint64(cap), 13955)
	eq("knapsack first", uint64(items[0].weight), 1022)
	eq("knapsack last", uint64(items[29].weight), 1948)
	eq("knapsack dp", uint64(knapsackDP(items, cap)), 13954)
	eq("skew 1000", skewRange(0, 1000, 1000), 5697080780411946786)
	eq("skew default", skewRange(0, 400000, 400000)&^(1<<63), 1983628080157490942)
	eq("bpc 100", bpcSerial(100), 50893315)
	eq("bpc default", bpcSerial(40000), 20974501628)
	t3 := utsT3(20)
	r := utsRoot(&t3)
	eq("T3(20)", utsCount(&t3, &r), 6213)
	t1 := utsT1(8)
	r = utsRoot(&t1)
	eq("T1(8)", utsCount(&t1, &r), 257042)
	A, B, _ := mmInput(4)
	for i, want := range []float64{0, 0, 3, 1, -1, -1, 3, 2} {
		got := A[i%4]
		if i >= 4 {
			got = B[i%4]
		}
		if got != want {
			t.Errorf("matmul input %d: got %g, want %g", i, got, want)
		}
	}
	v := make([]uint64, 5000)
	for i := range v {
		v[i] = uint64(i) * 0x9E3779B97F4A7C15 >> 40
	}
	w := append([]uint64(nil), v...)
	quicksort(v)
	sort.Slice(w, func(i, j int) bool { return w[i] < w[j] })
	for i := range v {
		if v[i] != w[i] {
			t.Fatalf("quicksort: wrong at %d", i)
		}
	}
}
