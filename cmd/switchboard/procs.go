package main

// processorsFor is the GOMAXPROCS `serve` runs with: one more than current
// (the runtime's default, one per CPU or the container's CPU limit) when
// archive commits can run at idle CPU priority (idle: configured and
// possible here, store.CheckIdlePriority). Such a commit's thread holds a
// Go processor while the OS lets threads serving connections run before
// it; without the extra processor those threads would have one fewer
// during every commit. An explicit GOMAXPROCS (env, non-empty) is the
// operator's choice and is kept. Setting GOMAXPROCS stops the runtime's
// own updates of it when the container's CPU limit changes.
func processorsFor(idle bool, env string, current int) int {
	if env != "" || !idle {
		return current
	}
	return current + 1
}
