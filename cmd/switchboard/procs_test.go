package main

import (
	"testing"

	"switchboard/xmpp/config"
)

func TestProcessorsFor(t *testing.T) {
	tests := []struct {
		name     string
		priority string
		env      string
		current  int
		want     int
	}{
		{"idle commits: one more", config.PriorityIdle, "", 2, 3},
		{"idle commits, one CPU", config.PriorityIdle, "", 1, 2},
		{"normal commits: unchanged", config.PriorityNormal, "", 2, 2},
		{"GOMAXPROCS set: the operator's", config.PriorityIdle, "2", 2, 2},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := processorsFor(tt.priority, tt.env, tt.current); got != tt.want {
				t.Errorf("processorsFor(%q, %q, %d) = %d, want %d", tt.priority, tt.env, tt.current, got, tt.want)
			}
		})
	}
}
