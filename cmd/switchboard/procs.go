package main

import "switchboard/xmpp/config"

// processorsFor is the GOMAXPROCS `serve` runs with: one more than current
// (the runtime's default, one per CPU) when archive commits run at idle
// CPU priority. Such a commit's thread holds a Go processor while the OS
// lets threads serving connections run before it; without the extra
// processor those threads would have one fewer to run on during every
// commit. An explicit GOMAXPROCS (env, non-empty) is the operator's choice
// and is kept.
func processorsFor(priority, env string, current int) int {
	if env != "" || priority != config.PriorityIdle {
		return current
	}
	return current + 1
}
