// Package cputime reads the CPU time of the process, for the benchmarks
// of this module and of the bench module that report events per
// CPU-second beside wall time (the build machines are shared).
package cputime
