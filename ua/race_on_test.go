//go:build race

package ua_test

// liveBudget scales the 1 s live-change budget under the race detector,
// which slows everything several times.
const liveBudget = 5
