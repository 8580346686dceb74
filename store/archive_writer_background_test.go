package store

import (
	"errors"
	"testing"
	"time"
)

func TestKeepsUp(t *testing.T) {
	tests := []struct {
		name      string
		n, queued int
		urgent    bool
		want      bool
	}{
		{"keeping up", 100, 0, false, true},
		{"some queued behind", 100, 255, false, true},
		{"a quarter batch queued behind", 100, 256, false, false},
		{"a quarter batch", 256, 0, false, false},
		{"just under a quarter batch", 255, 0, false, true},
		{"full batch", 1024, 0, false, false},
		{"flush waiting", 100, 0, true, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := keepsUp(tt.n, 1024, tt.queued, tt.urgent); got != tt.want {
				t.Errorf("keepsUp(n=%d, queued=%d, urgent=%v) = %v, want %v", tt.n, tt.queued, tt.urgent, got, tt.want)
			}
		})
	}
}

func TestMayIdle(t *testing.T) {
	// The idle meter answers yes after its first sample (all idle).
	var ticks uint64
	idle := idleMeter{read: func() (cpuTimes, error) {
		ticks += 1000
		return cpuTimes{idle: ticks, total: ticks}, nil
	}}
	idle.hasIdleCPU()
	tests := []struct {
		name        string
		committer   bool
		normalUntil time.Time
		want        bool
	}{
		{"idle machine", true, time.Time{}, true},
		{"no idle-priority committer", false, time.Time{}, false},
		{"starved lately", true, time.Now().Add(time.Hour), false},
		{"starvation over", true, time.Now().Add(-time.Second), true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			w := &ArchiveWriter{normalUntil: tt.normalUntil, idleCPU: idle}
			if tt.committer {
				w.bg = make(chan func() error)
			}
			if got := w.mayIdle(); got != tt.want {
				t.Errorf("mayIdle() = %v, want %v", got, tt.want)
			}
		})
	}
}

func TestParseCPUTimes(t *testing.T) {
	tests := []struct {
		name    string
		stat    string
		want    cpuTimes
		wantErr bool
	}{
		{"linux 6", "cpu  100 5 50 1000 20 3 2 1 7 0\ncpu0 50 2 25 500 10 1 1 0 3 0\n", cpuTimes{idle: 1020, total: 1181}, false},
		{"no guest fields", "cpu 1 2 3 4 5 6 7 8\n", cpuTimes{idle: 9, total: 36}, false},
		{"per-cpu line first", "cpu0 1 2 3 4 5 6 7 8\n", cpuTimes{}, true},
		{"too few fields", "cpu 1 2 3 4 5 6 7\n", cpuTimes{}, true},
		{"not a number", "cpu 1 2 3 x 5 6 7 8\n", cpuTimes{}, true},
		{"empty", "", cpuTimes{}, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := parseCPUTimes(tt.stat)
			if (err != nil) != tt.wantErr || got != tt.want {
				t.Errorf("parseCPUTimes(%q) = %+v, %v; want %+v, error %v", tt.stat, got, err, tt.want, tt.wantErr)
			}
		})
	}
}

func TestIdleMeter(t *testing.T) {
	// Each step: the idle and total ticks since the previous sample (a
	// negative idle makes the read fail), and the answer.
	steps := []struct {
		idle, total int64
		want        bool
	}{
		{0, 0, false},     // first sample: no answer yet
		{50, 100, true},   // half idle
		{20, 100, false},  // a fifth idle
		{25, 100, true},   // a quarter idle
		{0, 5, true},      // too short: the last answer stands...
		{0, 5, false},     // ...until the interval is long enough (0 of 10 idle)
		{-1, 0, false},    // unreadable
		{100, 100, false}, // first sample again
		{100, 100, true},  // all idle
	}
	var now cpuTimes
	var fail bool
	m := idleMeter{read: func() (cpuTimes, error) {
		if fail {
			return cpuTimes{}, errors.New("no /proc")
		}
		return now, nil
	}}
	for i, s := range steps {
		fail = s.idle < 0
		if !fail {
			now.idle += uint64(s.idle)
			now.total += uint64(s.total)
		}
		if got := m.hasIdleCPU(); got != s.want {
			t.Errorf("step %d (+%d idle of +%d): hasIdleCPU() = %v, want %v", i, s.idle, s.total, got, s.want)
		}
	}
}

func TestThreadStarved(t *testing.T) {
	w := &ArchiveWriter{maxWaitShare: maxWaitShare, minShare: minShare}
	t0 := time.Unix(1000, 0)
	at := func(ms int) time.Time { return t0.Add(time.Duration(ms) * time.Millisecond) }
	ms := func(n int) time.Duration { return time.Duration(n) * time.Millisecond }
	tests := []struct {
		name string
		a, b threadSample
		want bool
	}{
		{"ran all the time", threadSample{at: at(0), haveDelay: true}, threadSample{at: at(50), cpu: ms(50), haveDelay: true}, false},
		{"waited for the disk", threadSample{at: at(0), haveDelay: true}, threadSample{at: at(50), cpu: ms(5), runDelay: ms(2), haveDelay: true}, false},
		{"waited for a CPU most of the time", threadSample{at: at(0), runDelay: ms(10), haveDelay: true}, threadSample{at: at(50), cpu: ms(5), runDelay: ms(50), haveDelay: true}, true},
		{"waited half the time", threadSample{at: at(0), haveDelay: true}, threadSample{at: at(50), runDelay: ms(25), haveDelay: true}, false},
		{"no run delay: low CPU share", threadSample{at: at(0)}, threadSample{at: at(50), cpu: ms(10)}, true},
		{"no run delay: high CPU share", threadSample{at: at(0)}, threadSample{at: at(50), cpu: ms(40)}, false},
		{"no time passed", threadSample{at: at(0)}, threadSample{at: at(0)}, false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if got := w.threadStarved(tc.a, tc.b); got != tc.want {
				t.Errorf("threadStarved = %v, want %v", got, tc.want)
			}
		})
	}
}
