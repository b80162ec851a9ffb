//go:build !race

package ua_test

// liveBudget is 1: live changes must apply within 1 s.
const liveBudget = 1
