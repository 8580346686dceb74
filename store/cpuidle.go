package store

import (
	"fmt"
	"strconv"
	"strings"
)

// minIdleShare is the share of the machine's CPU time that must have been
// idle since the last look for a batch to commit at idle priority: with
// less, an idle-priority commit could wait long for CPU while holding a Go
// processor, which the collector's stop-the-world phases wait for before
// any goroutine can raise it (see storeInBackground).
const minIdleShare = 0.25

// minIdleTicks is the least CPU time (clock ticks, all CPUs) between two
// looks at the machine's idle share; a shorter interval extends the last.
const minIdleTicks = 10

// cpuTimes is the machine's cumulative CPU time, in clock ticks over all
// CPUs: idle (idle and iowait) and the total.
type cpuTimes struct {
	idle, total uint64
}

// parseCPUTimes reads the aggregate "cpu" line of /proc/stat (proc(5)):
// user nice system idle iowait irq softirq steal [guest guest_nice]. Guest
// time is already counted in user and nice.
func parseCPUTimes(stat string) (cpuTimes, error) {
	line, _, _ := strings.Cut(stat, "\n")
	fields := strings.Fields(line)
	if len(fields) < 9 || fields[0] != "cpu" {
		return cpuTimes{}, fmt.Errorf("not an aggregate cpu line: %.60q", line)
	}
	var t cpuTimes
	for i, f := range fields[1:9] {
		v, err := strconv.ParseUint(f, 10, 64)
		if err != nil {
			return cpuTimes{}, fmt.Errorf("cpu line field %d: %w", i+1, err)
		}
		t.total += v
		if i == 3 || i == 4 { // idle, iowait
			t.idle += v
		}
	}
	return t, nil
}

// idleMeter tells whether the machine has had idle CPU lately. It is used
// by one goroutine at a time.
type idleMeter struct {
	read func() (cpuTimes, error)
	last cpuTimes
	have bool // last is a sample
	idle bool // the last answer
}

// hasIdleCPU reports whether at least minIdleShare of the machine's CPU
// time was idle since the last sample. With no earlier sample, or when the
// times cannot be read, it answers no.
func (m *idleMeter) hasIdleCPU() bool {
	now, err := m.read()
	if err != nil {
		m.have, m.idle = false, false
		return false
	}
	if !m.have {
		m.last, m.have = now, true
		return false
	}
	total := now.total - m.last.total
	if now.total < m.last.total || now.idle < m.last.idle {
		m.last = now // counters went back: start over
		return false
	}
	if total < minIdleTicks {
		return m.idle
	}
	m.idle = float64(now.idle-m.last.idle) >= minIdleShare*float64(total)
	m.last = now
	return m.idle
}
