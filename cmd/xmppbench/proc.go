package main

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"os"
	"strconv"
	"syscall"
	"time"
)

// procSample is a reading of a process's CPU time and resident memory.
type procSample struct {
	At  time.Time
	CPU time.Duration // user + system
	RSS int64         // bytes
}

// sampler reads /proc/PID for the server process; a zero pid samples
// nothing (every reading is the zero sample and ok is false).
type sampler struct {
	pid int
	hz  int64 // clock ticks per second of /proc/PID/stat
}

func newSampler(pid int) (*sampler, error) {
	s := &sampler{pid: pid, hz: clockTicks()}
	if pid > 0 {
		if _, err := s.sample(); err != nil {
			return nil, err
		}
	}
	return s, nil
}

// enabled reports whether a server process is sampled.
func (s *sampler) enabled() bool { return s != nil && s.pid > 0 }

// sample reads the process's CPU time and RSS now.
func (s *sampler) sample() (procSample, error) {
	if !s.enabled() {
		return procSample{At: time.Now()}, nil
	}
	dir := "/proc/" + strconv.Itoa(s.pid) + "/"
	stat, err := os.ReadFile(dir + "stat")
	if err != nil {
		return procSample{}, fmt.Errorf("server process %d: %w", s.pid, err)
	}
	cpu, err := parseStatCPU(stat, s.hz)
	if err != nil {
		return procSample{}, fmt.Errorf("server process %d: %w", s.pid, err)
	}
	status, err := os.ReadFile(dir + "status")
	if err != nil {
		return procSample{}, fmt.Errorf("server process %d: %w", s.pid, err)
	}
	rss, err := parseStatusRSS(status)
	if err != nil {
		return procSample{}, fmt.Errorf("server process %d: %w", s.pid, err)
	}
	return procSample{At: time.Now(), CPU: cpu, RSS: rss}, nil
}

// mustSample is sample for a process known to exist; a failed reading
// (the process died) gives the zero sample.
func (s *sampler) mustSample() procSample {
	p, err := s.sample()
	if err != nil {
		return procSample{At: time.Now()}
	}
	return p
}

// parseStatCPU returns utime+stime (fields 14 and 15 of proc(5)
// /proc/PID/stat) in ticks of hz per second. The command name (field 2)
// is in parentheses and may contain spaces and parentheses, so fields are
// counted after the last ')'.
func parseStatCPU(stat []byte, hz int64) (time.Duration, error) {
	i := bytes.LastIndexByte(stat, ')')
	if i < 0 {
		return 0, errors.New("stat: no command name")
	}
	f := bytes.Fields(stat[i+1:]) // f[0] is field 3 (state)
	if len(f) < 13 {
		return 0, errors.New("stat: too few fields")
	}
	utime, err1 := strconv.ParseUint(string(f[11]), 10, 64)
	stime, err2 := strconv.ParseUint(string(f[12]), 10, 64)
	if err1 != nil || err2 != nil {
		return 0, errors.New("stat: bad utime/stime")
	}
	if hz <= 0 {
		hz = 100
	}
	ticks := utime + stime
	return time.Duration(ticks) * time.Second / time.Duration(hz), nil
}

// parseStatusRSS returns VmRSS from /proc/PID/status in bytes.
func parseStatusRSS(status []byte) (int64, error) {
	for line := range bytes.Lines(status) {
		rest, ok := bytes.CutPrefix(line, []byte("VmRSS:"))
		if !ok {
			continue
		}
		f := bytes.Fields(rest)
		if len(f) < 1 {
			break
		}
		kb, err := strconv.ParseInt(string(f[0]), 10, 64)
		if err != nil {
			break
		}
		unit := int64(1024)
		if len(f) > 1 && !bytes.EqualFold(f[1], []byte("kB")) {
			return 0, fmt.Errorf("status: VmRSS unit %q", f[1])
		}
		return kb * unit, nil
	}
	return 0, errors.New("status: no VmRSS")
}

// atClkTck is the auxiliary vector entry holding sysconf(_SC_CLK_TCK).
const atClkTck = 17

// clockTicks returns the kernel's USER_HZ as sysconf(_SC_CLK_TCK) does:
// from the AT_CLKTCK entry of the auxiliary vector, 100 when unreadable.
func clockTicks() int64 {
	b, err := os.ReadFile("/proc/self/auxv")
	if err != nil {
		return 100
	}
	if hz := auxvLookup(b, atClkTck); hz > 0 {
		return int64(hz)
	}
	return 100
}

// auxvLookup finds key in a native-endian 64-bit auxiliary vector.
func auxvLookup(b []byte, key uint64) uint64 {
	for len(b) >= 16 {
		k := binary.NativeEndian.Uint64(b)
		v := binary.NativeEndian.Uint64(b[8:])
		if k == key {
			return v
		}
		if k == 0 {
			break
		}
		b = b[16:]
	}
	return 0
}

// selfCPU is this process's user+system CPU time.
func selfCPU() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// window is the server's and our CPU over an interval.
type window struct {
	start, end   procSample
	self0, self1 time.Duration
}

func (s *sampler) begin() window {
	return window{start: s.mustSample(), self0: selfCPU()}
}

func (w *window) finish(s *sampler) {
	w.end = s.mustSample()
	w.self1 = selfCPU()
}

func (w window) elapsed() time.Duration   { return w.end.At.Sub(w.start.At) }
func (w window) serverCPU() time.Duration { return w.end.CPU - w.start.CPU }

// addCPU appends server and client CPU load in percent of one core, and
// the server's CPU microseconds per unit of work when perUnit is set.
func (w window) addCPU(m *Metrics, s *sampler, perUnit string, units float64) {
	el := w.elapsed()
	if s.enabled() {
		m.Add("server_cpu_pct", 100*w.serverCPU().Seconds()/el.Seconds())
		if perUnit != "" {
			v := 0.0
			if units > 0 {
				v = float64(w.serverCPU().Microseconds()) / units
			}
			m.Add("server_cpu_us_per_"+perUnit, v)
		}
	}
	m.Add("client_cpu_pct", 100*(w.self1-w.self0).Seconds()/el.Seconds())
}
