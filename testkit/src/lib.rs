//! What parallax's tests and benchmarks share. Today: the benchmark results file
//! ([`results`]), which every benchmark merges its figures into and the one table of figures
//! is written from.

pub mod results;
