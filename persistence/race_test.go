//go:build race

package persistence_test

// raceBuild is true when the tests run with -race, which makes the
// helper processes about 30 times slower: the process tests scale down.
const raceBuild = true
