package muc

import (
	"context"
	"errors"
	"fmt"

	"mellium.im/xmpp/jid"

	"switchboard/store"
	"switchboard/xmpp/wire"
)

// Errors of the admin operations.
var (
	ErrRoomExists   = errors.New("muc: the room exists")
	ErrRoomNotFound = errors.New("muc: no such room")
	// ErrRoomBusy: the room's queue of work is full; try again.
	ErrRoomBusy = errors.New("muc: the room is busy")
)

// DefaultRoom returns the record of a new persistent room of a service
// (for admin tools that create rooms with the server stopped): an issue
// chat on an issue service, otherwise a public room. name is the room's
// localpart as typed (an issue key keeps its case).
func DefaultRoom(room jid.JID, name string, issues bool, owner jid.JID, history int) store.Room {
	s := &Service{opts: Options{Issues: issues, DefaultHistory: history}}
	if s.opts.DefaultHistory <= 0 {
		s.opts.DefaultHistory = 20
	}
	r := s.newRoomData(room.Bare(), owner)
	r.Persistent = true
	s.nameIssue(&r, room, name)
	return r
}

// nameIssue gives an issue chat the key as typed, when it names the room
// (only case or width differ from the normalised localpart).
func (s *Service) nameIssue(r *store.Room, rj jid.JID, name string) {
	if !s.opts.Issues {
		return
	}
	if j, err := jid.New(name, rj.Domainpart(), ""); err == nil && j.Equal(rj.Bare()) {
		r.IssueKey, r.Name = name, name
	}
}

// do runs fn in the room's goroutine and waits for it.
func (s *Service) do(ctx context.Context, rj jid.JID, fn func(ctx context.Context, r *room) error) error {
	done := make(chan error, 1)
	posted, err := s.deliver(rj, item{fn: func(ctx context.Context, r *room) {
		if r.loadErr != nil {
			// Not taken for a room that does not exist (see load).
			done <- fmt.Errorf("muc: room %s could not be loaded: %w", rj, r.loadErr)
			return
		}
		done <- fn(ctx, r)
	}})
	if err != nil {
		return err
	}
	if !posted {
		return fmt.Errorf("%w: %s", ErrRoomBusy, rj)
	}
	select {
	case err := <-done:
		return err
	case <-ctx.Done():
		return ctx.Err()
	}
}

func (s *Service) roomJID(name string) (jid.JID, error) {
	rj, err := jid.New(name, s.opts.Domain, "")
	if err != nil {
		return jid.JID{}, fmt.Errorf("muc: invalid room name %q: %w", name, err)
	}
	return rj, nil
}

// CreateRoom creates a persistent room (an issue chat on the issue
// service) ahead of its first join, owned by owner (may be empty).
func (s *Service) CreateRoom(ctx context.Context, name string, owner jid.JID) error {
	rj, err := s.roomJID(name)
	if err != nil {
		return err
	}
	return s.do(ctx, rj, func(ctx context.Context, r *room) error {
		if r.exists {
			return fmt.Errorf("%w: %s", ErrRoomExists, rj)
		}
		r.data = s.newRoomData(rj, owner)
		r.data.Persistent = true
		s.nameIssue(&r.data, rj, name)
		r.exists = true
		if err := s.deps.Rooms.Put(ctx, r.data); err != nil {
			r.exists = false
			return fmt.Errorf("muc: create %s: %w", rj, err)
		}
		s.log.Info("room created by an admin", "room", rj.String())
		return nil
	})
}

// DestroyRoom destroys a room: its occupants are told why (XEP-0045
// §10.9) and it is forgotten; its archive stays for exports.
func (s *Service) DestroyRoom(ctx context.Context, name, reason string) error {
	rj, err := s.roomJID(name)
	if err != nil {
		return err
	}
	return s.do(ctx, rj, func(ctx context.Context, r *room) error {
		if !r.exists {
			return fmt.Errorf("%w: %s", ErrRoomNotFound, rj)
		}
		d := wire.New("destroy", NSOwner)
		if reason != "" {
			d.AddChild(wire.New("reason", NSOwner).SetText(reason))
		}
		r.destroy(ctx, d)
		return nil
	})
}
