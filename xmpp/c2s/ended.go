package c2s

import "strconv"

// endedCounts remembers, for the resumable sessions that ended most
// recently, how many stanzas the server handled from the client (its 'h'),
// so that a <resume/> that comes too late gets it in its <failed/>
// (XEP-0198 §5, a MAY): the client then knows which of the stanzas it sent
// arrived, and sends again only the others. At most max are kept, the
// oldest forgotten first; an entry is about 150 bytes. Guarded by
// Server.mu.
type endedCounts struct {
	max  int
	byID map[string]endedCount
	// order is a ring of the ids kept, the oldest at next once full.
	order []string
	next  int
}

// endedCount is an ended session's account and 'h'.
type endedCount struct {
	host, authed string
	h            uint32
}

// add remembers the session named id.
func (e *endedCounts) add(id string, c endedCount) {
	if e.max <= 0 {
		return
	}
	if e.byID == nil {
		e.byID = make(map[string]endedCount)
	}
	if len(e.order) < e.max {
		e.order = append(e.order, id)
	} else {
		delete(e.byID, e.order[e.next])
		e.order[e.next] = id
		e.next = (e.next + 1) % e.max
	}
	e.byID[id] = c
}

// failedResume is the <failed/> for a resumption of previd by c that
// cannot be: item-not-found, with the 'h' of the ended session when it is
// remembered and was c's account's (anyone else learns nothing from the
// answer, as for an unknown SM-ID).
func (s *Server) failedResume(previd string, c *conn) []byte {
	s.mu.Lock()
	e, ok := s.ended.byID[previd]
	s.mu.Unlock()
	if !ok || e.host != c.host || e.authed != c.authed {
		return smFailed("item-not-found")
	}
	return appendFailed(nil, "item-not-found", strconv.FormatUint(uint64(e.h), 10))
}
