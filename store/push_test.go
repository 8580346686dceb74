package store

import (
	"errors"
	"reflect"
	"strings"
	"testing"
	"time"
)

func TestPush(t *testing.T) {
	at := func(s int) time.Time { return codecTime.Add(time.Duration(s) * time.Second) }
	svc := func(jid, node string, s int) PushService {
		return PushService{JID: jid, Node: node, Resource: "phone", Enabled: at(s)}
	}
	withOpts := svc("p.example", "n1", 1)
	withOpts.Options = []byte("<x xmlns='jabber:x:data' type='submit'/>")
	type op struct {
		put    *PushService
		remove []string // jid, node, and "any" for every node
	}
	put := func(s PushService) op { return op{put: &s} }
	tests := []struct {
		name        string
		owner       string
		ops         []op
		most        int // of every Put; 0: 3
		wantErr     error
		wantDropped []PushService // by the last op
		want        []PushService
	}{
		{name: "none", owner: "a@x"},
		{name: "one, with options", owner: "a@x", ops: []op{put(withOpts)}, want: []PushService{withOpts}},
		{name: "no node", owner: "a@x", ops: []op{put(svc("p.example", "", 1))}, want: []PushService{svc("p.example", "", 1)}},
		{name: "oldest first", owner: "a@x",
			ops:  []op{put(svc("p.example", "n2", 2)), put(svc("q.example", "n1", 1))},
			want: []PushService{svc("q.example", "n1", 1), svc("p.example", "n2", 2)}},
		// §5: the same JID and node enabled again replace the first.
		{name: "same pair replaces", owner: "a@x",
			ops:  []op{put(svc("p.example", "n1", 1)), put(svc("p.example", "n2", 2)), put(withOpts)},
			want: []PushService{withOpts, svc("p.example", "n2", 2)}},
		{name: "beyond the bound the oldest goes", owner: "a@x", most: 2,
			ops:         []op{put(svc("p.example", "n1", 1)), put(svc("p.example", "n2", 2)), put(svc("p.example", "n3", 3))},
			wantDropped: []PushService{svc("p.example", "n1", 1)},
			want:        []PushService{svc("p.example", "n2", 2), svc("p.example", "n3", 3)}},
		{name: "remove one node", owner: "a@x",
			ops:         []op{put(svc("p.example", "n1", 1)), put(svc("p.example", "n2", 2)), {remove: []string{"p.example", "n1"}}},
			wantDropped: []PushService{svc("p.example", "n1", 1)},
			want:        []PushService{svc("p.example", "n2", 2)}},
		{name: "remove every node of a JID", owner: "a@x",
			ops: []op{put(svc("p.example", "n1", 1)), put(svc("q.example", "n1", 2)), put(svc("p.example", "n2", 3)),
				{remove: []string{"p.example", "", "any"}}},
			wantDropped: []PushService{svc("p.example", "n1", 1), svc("p.example", "n2", 3)},
			want:        []PushService{svc("q.example", "n1", 2)}},
		{name: "remove what is not there", owner: "a@x",
			ops:  []op{put(svc("p.example", "n1", 1)), {remove: []string{"p.example", "n2"}}},
			want: []PushService{svc("p.example", "n1", 1)}},
		// b@x is never created.
		{name: "not an account", owner: "b@x", ops: []op{put(svc("p.example", "n1", 1))}, wantErr: ErrNotFound},
		{name: "empty JID", owner: "a@x", ops: []op{put(svc("", "n1", 1))}, wantErr: ErrInvalid},
		{name: "node too long", owner: "a@x", ops: []op{put(svc("p.example", strings.Repeat("n", MaxPushNode+1), 1))}, wantErr: ErrInvalid},
		{name: "bad owner", owner: "", ops: []op{put(svc("p.example", "n1", 1))}, wantErr: ErrInvalid},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			ctx := t.Context()
			db := openTest(t)
			createAccounts(t, db, "a@x")
			most := tc.most
			if most == 0 {
				most = 3
			}
			var dropped []PushService
			var err error
			for _, o := range tc.ops {
				if o.put != nil {
					dropped, err = db.Push().Put(ctx, tc.owner, *o.put, most)
				} else {
					dropped, err = db.Push().Remove(ctx, tc.owner, o.remove[0], o.remove[1], len(o.remove) > 2)
				}
			}
			if !errors.Is(err, tc.wantErr) {
				t.Fatalf("last op: %v, want %v", err, tc.wantErr)
			}
			if !reflect.DeepEqual(dropped, tc.wantDropped) {
				t.Errorf("last op dropped %+v, want %+v", dropped, tc.wantDropped)
			}
			if tc.owner == "" {
				return
			}
			got, err := db.Push().List(ctx, tc.owner)
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(got, tc.want) {
				t.Errorf("List = %+v, want %+v", got, tc.want)
			}
		})
	}
}

// All gives each owner's services once, grouped, and stops when told to;
// an account deletion removes its services, and only its own: "a@x" is a
// prefix of "a@x.y"'s owner string.
func TestPushAllAndAccountDeletion(t *testing.T) {
	ctx := t.Context()
	db := openTest(t)
	owners := []string{"a@x", "a@x.y", "b@x"}
	createAccounts(t, db, owners...)
	for i, o := range owners {
		for j, node := range []string{"n1", "n2"} {
			s := PushService{JID: "p.example", Node: node, Resource: o, Enabled: codecTime.Add(time.Duration(10*i+j) * time.Second)}
			if _, err := db.Push().Put(ctx, o, s, 5); err != nil {
				t.Fatal(err)
			}
		}
	}
	all := func() map[string]int {
		got := map[string]int{}
		err := db.Push().All(ctx, func(owner string, services []PushService) bool {
			if _, dup := got[owner]; dup {
				t.Errorf("All gave %s twice", owner)
			}
			for _, s := range services {
				if s.Resource != owner {
					t.Errorf("All gave %s a service of %s", owner, s.Resource)
				}
			}
			got[owner] = len(services)
			return true
		})
		if err != nil {
			t.Fatal(err)
		}
		return got
	}
	if got, want := all(), map[string]int{"a@x": 2, "a@x.y": 2, "b@x": 2}; !reflect.DeepEqual(got, want) {
		t.Errorf("All = %v, want %v", got, want)
	}
	calls := 0
	if err := db.Push().All(ctx, func(string, []PushService) bool { calls++; return false }); err != nil || calls != 1 {
		t.Errorf("All stopped after %d calls, %v; want 1", calls, err)
	}
	if _, err := db.Users().Delete(ctx, "x", "a"); err != nil {
		t.Fatal(err)
	}
	if got, want := all(), map[string]int{"a@x.y": 2, "b@x": 2}; !reflect.DeepEqual(got, want) {
		t.Errorf("All after deleting a@x = %v, want %v", got, want)
	}
	createAccounts(t, db, "a@x")
	if got, err := db.Push().List(ctx, "a@x"); err != nil || len(got) != 0 {
		t.Errorf("re-created account's List = %+v, %v; want none", got, err)
	}
}

// A value the codec does not know is reported corrupt, not decoded.
func TestPushCorrupt(t *testing.T) {
	for _, v := range [][]byte{nil, {2, 0, 0, 0}, {pushCodecV1}, {pushCodecV1, 0, 0, 0, 7}} {
		if _, err := decodePushService(v); !errors.Is(err, ErrCorrupt) && err == nil {
			t.Errorf("decode %v: no error", v)
		}
	}
	s := PushService{Resource: "r", Options: []byte("<x/>"), Enabled: codecTime}
	got, err := decodePushService(encodePushService(s))
	if err != nil || !reflect.DeepEqual(got, s) {
		t.Errorf("round trip = %+v, %v; want %+v", got, err, s)
	}
}
