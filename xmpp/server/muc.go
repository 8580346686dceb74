package server

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"

	"mellium.im/xmpp/jid"

	"switchboard/muc"
	"switchboard/store"
	"switchboard/xmpp/config"
	"switchboard/xmpp/disco"
	"switchboard/xmpp/mam"
)

// buildMUC creates each host's room and issue services and registers them
// with the router.
func (s *Server) buildMUC(archive *mam.Module) error {
	secret, err := loadOrCreateSecret(s.secretPath())
	if err != nil {
		return err
	}
	s.mucHosts = map[string]mucService{}
	for _, h := range s.cfg.Hosts {
		for _, svc := range []struct {
			domain string
			issues bool
		}{{h.ServiceDomain(h.MUCDomain, "conference"), false}, {h.ServiceDomain(h.IssuesDomain, "issues"), true}} {
			if svc.domain == "" {
				continue
			}
			opts := muc.Options{
				Domain: svc.domain, Host: h.Domain, Issues: svc.issues,
				MayCreate: s.mayCreateRooms(h), InGroup: groupMembership(h),
				LockTimeout: h.RoomLockTimeout.Duration(), Secret: secret, Logger: s.log,
			}
			if !svc.issues {
				opts.CompanyRoom = h.CompanyRoom
			}
			m, err := muc.New(opts, muc.Deps{
				Rooms: s.db.Rooms(), History: s.db.Archive(), Writer: s.archiveWriter, MAM: archive, Router: s.router,
				Inbox: s.inbox,
			})
			if err != nil {
				return fmt.Errorf("server: %w", err)
			}
			if err := s.router.AddComponent(m); err != nil {
				return fmt.Errorf("server: %w", err)
			}
			s.mucs = append(s.mucs, m)
			s.inbox.AddService(m)
			s.mucHosts[svc.domain] = mucService{host: h.Domain, issues: svc.issues}
		}
	}
	return nil
}

// mucService is what the server keeps about a room service: its host,
// and whether it serves issue chats (whose archives are kept for the life
// of the issue, whatever the host's retention).
type mucService struct {
	host   string
	issues bool
}

// serviceItems lists a host's services for disco#items (XEP-0030).
func (s *Server) serviceItems(host string) []disco.Item {
	var out []disco.Item
	for _, m := range s.mucs {
		if svc, ok := s.mucHosts[m.Domain()]; ok && svc.host == host {
			name := "Chat rooms"
			if svc.issues {
				name = "Issue chats"
			}
			out = append(out, disco.Item{JID: m.Domain(), Name: name})
		}
	}
	out = append(out, s.uploadItems(host)...)
	// External components on a subdomain of the host, as Prosody lists
	// them; they answer disco#info about themselves.
	for _, c := range s.cfg.Components {
		if strings.HasSuffix(c.Domain, "."+host) {
			out = append(out, disco.Item{JID: c.Domain})
		}
	}
	return out
}

// mayCreateRooms is a host's room creation ACL.
func (s *Server) mayCreateRooms(h config.Host) func(context.Context, jid.JID) bool {
	inGroup := groupMembership(h)
	return func(_ context.Context, user jid.JID) bool {
		bare := user.Bare().String()
		switch h.RoomCreators {
		case "everyone":
			return true
		case "admins":
			return slices.Contains(h.Admins, bare)
		case "listed":
			for _, e := range h.RoomCreatorList {
				if e == bare || (strings.HasPrefix(e, "group:") && inGroup(user.Bare(), strings.TrimPrefix(e, "group:"))) {
					return true
				}
			}
			return false
		}
		return user.Domainpart() == h.Domain
	}
}

// groupMembership tells whether a user belongs to one of the host's
// configured shared groups.
func groupMembership(h config.Host) func(jid.JID, string) bool {
	return func(user jid.JID, group string) bool {
		for _, g := range h.Groups {
			if g.Name != group {
				continue
			}
			for _, m := range g.Members {
				if !strings.Contains(m, "@") {
					m += "@" + h.Domain
				}
				if m == user.Bare().String() {
					return true
				}
			}
		}
		return false
	}
}

// runningRooms creates and destroys rooms through the running services.
type runningRooms struct{ s *Server }

func (rr runningRooms) service(room jid.JID) (*muc.Service, error) {
	for _, m := range rr.s.mucs {
		if m.Domain() == room.Domainpart() {
			return m, nil
		}
	}
	return nil, badArg("no room service %s", room.Domainpart())
}

func (rr runningRooms) CreateRoom(ctx context.Context, room jid.JID, name string, owner jid.JID) error {
	m, err := rr.service(room)
	if err != nil {
		return err
	}
	return m.CreateRoom(ctx, name, owner)
}

func (rr runningRooms) DestroyRoom(ctx context.Context, room jid.JID, reason string) error {
	m, err := rr.service(room)
	if err != nil {
		return err
	}
	return m.DestroyRoom(ctx, room.Localpart(), reason)
}

// StoredRooms creates and destroys rooms in the store (the server is
// stopped; nobody is in them).
type StoredRooms struct {
	Store  *store.Rooms
	Config config.Config
}

func (sr StoredRooms) kind(room jid.JID) (issues bool, err error) {
	for _, h := range sr.Config.Hosts {
		switch room.Domainpart() {
		case h.ServiceDomain(h.MUCDomain, "conference"):
			return false, nil
		case h.ServiceDomain(h.IssuesDomain, "issues"):
			return true, nil
		}
	}
	return false, badArg("no room service %s", room.Domainpart())
}

// CreateRoom implements RoomAdmin.
func (sr StoredRooms) CreateRoom(ctx context.Context, room jid.JID, name string, owner jid.JID) error {
	issues, err := sr.kind(room)
	if err != nil {
		return err
	}
	if _, err := sr.Store.Get(ctx, room.Bare().String()); err == nil {
		return fmt.Errorf("%w: %s", muc.ErrRoomExists, room.Bare())
	} else if !errors.Is(err, store.ErrNotFound) {
		return err
	}
	return sr.Store.Put(ctx, muc.DefaultRoom(room, name, issues, owner, 0))
}

// DestroyRoom implements RoomAdmin.
func (sr StoredRooms) DestroyRoom(ctx context.Context, room jid.JID, _ string) error {
	if _, err := sr.kind(room); err != nil {
		return err
	}
	if err := sr.Store.Delete(ctx, room.Bare().String()); errors.Is(err, store.ErrNotFound) {
		return fmt.Errorf("%w: %s", muc.ErrRoomNotFound, room.Bare())
	} else if err != nil {
		return err
	}
	return nil
}
