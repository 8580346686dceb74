// Command report turns the results of bench/compare.sh into
// docs/performance.md: the medians of the runs per scenario and server,
// checked against the performance targets, with the machine
// they were measured on.
//
//	go run ./bench/report -results DIR -machine FILE [-profiles DIR] -out docs/performance.md
//
// DIR holds SERVER/SCENARIO/runN.json, each one xmppbench --json result
// ({"scenario":…, "params":…, "metrics":{"name": value, …}}), or
// runN.err for a run that failed, and runN.host ("key: number" lines,
// other_cpu_pct and steal_pct) for what else used the machine during the
// run. Only the metrics map is read, and only here: rows (main.go) names
// every metric the table uses. -profiles names a directory of pprof -top
// outputs, SERVER.txt, that the report quotes.
//
// The "Analysis" subsection between its markers in an existing output file
// is kept, so a hand-written analysis survives the next run.
//
// It imports no package of the module; like the commands under cmd/, it
// is in the top tier of the table in docs/architecture.md.
package main
