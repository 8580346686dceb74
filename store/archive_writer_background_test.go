package store

import (
	"testing"
	"time"
)

func TestInBackground(t *testing.T) {
	now := time.Now()
	tests := []struct {
		name        string
		n, queued   int
		urgent      bool
		normalUntil time.Time
		want        bool
	}{
		{"keeping up", 100, 0, false, time.Time{}, true},
		{"some queued behind", 100, 255, false, time.Time{}, true},
		{"a quarter batch queued behind", 100, 256, false, time.Time{}, false},
		{"full batch", 1024, 0, false, time.Time{}, false},
		{"flush waiting", 100, 0, true, time.Time{}, false},
		{"starved lately", 100, 0, false, now.Add(time.Second), false},
		{"starvation over", 100, 0, false, now, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := inBackground(tt.n, 1024, tt.queued, tt.urgent, now, tt.normalUntil); got != tt.want {
				t.Errorf("inBackground(n=%d, queued=%d, urgent=%v) = %v, want %v", tt.n, tt.queued, tt.urgent, got, tt.want)
			}
		})
	}
}
