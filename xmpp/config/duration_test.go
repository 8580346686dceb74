package config

import (
	"testing"
	"time"
)

func TestDurationRoundTrip(t *testing.T) {
	tests := []struct {
		name string
		d    time.Duration
		text string
	}{
		{"zero", 0, "0s"},
		{"milliseconds", 1500 * time.Millisecond, "1.5s"},
		{"seconds", 30 * time.Second, "30s"},
		{"minutes", 10 * time.Minute, "10m"},
		{"minutes and seconds", 90 * time.Second, "1m30s"},
		{"hours", 2 * time.Hour, "2h"},
		{"hours and minutes", 90 * time.Minute, "1h30m"},
		{"hours and seconds", time.Hour + 5*time.Second, "1h0m5s"},
		{"negative", -time.Minute, "-1m"},
		{"nanoseconds", 7, "7ns"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			text, err := Duration(tt.d).MarshalText()
			if err != nil {
				t.Fatalf("MarshalText: %v", err)
			}
			if string(text) != tt.text {
				t.Errorf("MarshalText() = %q, want %q", text, tt.text)
			}
			var back Duration
			if err := back.UnmarshalText(text); err != nil {
				t.Fatalf("UnmarshalText(%q): %v", text, err)
			}
			if back.Duration() != tt.d {
				t.Errorf("round trip of %v gave %v", tt.d, back.Duration())
			}
		})
	}
}

func TestDurationUnmarshalText(t *testing.T) {
	tests := []struct {
		text    string
		want    time.Duration
		wantErr bool
	}{
		{"10m0s", 10 * time.Minute, false},
		{"1h2m3s", time.Hour + 2*time.Minute + 3*time.Second, false},
		{"250ms", 250 * time.Millisecond, false},
		{"0", 0, false},
		{"30", 0, true},
		{"", 0, true},
		{"ten minutes", 0, true},
		{"1d", 0, true},
	}
	for _, tt := range tests {
		t.Run(tt.text, func(t *testing.T) {
			d := Duration(42)
			err := d.UnmarshalText([]byte(tt.text))
			if tt.wantErr {
				if err == nil {
					t.Fatalf("UnmarshalText(%q) = nil error, want one", tt.text)
				}
				if d != 42 {
					t.Errorf("failed UnmarshalText modified the value to %v", d)
				}
				return
			}
			if err != nil || d.Duration() != tt.want {
				t.Fatalf("UnmarshalText(%q) = %v, %v; want %v", tt.text, d.Duration(), err, tt.want)
			}
		})
	}
}
