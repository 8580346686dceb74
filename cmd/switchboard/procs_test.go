package main

import "testing"

func TestProcessorsFor(t *testing.T) {
	tests := []struct {
		name    string
		idle    bool
		env     string
		current int
		want    int
	}{
		{"idle commits: one more", true, "", 2, 3},
		{"idle commits, one CPU", true, "", 1, 2},
		{"normal commits: unchanged", false, "", 2, 2},
		{"GOMAXPROCS set: the operator's", true, "2", 2, 2},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := processorsFor(tt.idle, tt.env, tt.current); got != tt.want {
				t.Errorf("processorsFor(%v, %q, %d) = %d, want %d", tt.idle, tt.env, tt.current, got, tt.want)
			}
		})
	}
}
