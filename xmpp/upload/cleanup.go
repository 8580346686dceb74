package upload

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	"switchboard/store"
	"switchboard/xmpp"
)

// cleanupBatch bounds the records one store read returns to Cleanup.
const cleanupBatch = 1000

// Cleanup deletes the files and records of uploads past ExpireAfter
// (when set), slots never used within ReservedLifetime, and temporary
// files older than ReservedLifetime that an interrupted upload left. It
// returns how many slots it deleted. A slot being uploaded is left alone.
func (s *Service) Cleanup(ctx context.Context) (int, error) {
	now := s.opts.Now()
	var doneBefore time.Time // zero: uploaded files are kept
	if s.opts.ExpireAfter > 0 {
		doneBefore = now.Add(-s.opts.ExpireAfter)
	}
	reservedBefore := now.Add(-ReservedLifetime)
	deleted := 0
	for {
		batch, err := s.deps.Slots.Expired(ctx, doneBefore, reservedBefore, cleanupBatch)
		if err != nil {
			return deleted, fmt.Errorf("upload: cleanup: %w", err)
		}
		progress := 0
		for _, up := range batch {
			removed, err := s.removeExpired(ctx, up)
			if err != nil {
				return deleted, err
			}
			if removed {
				progress++
			}
		}
		deleted += progress
		if len(batch) < cleanupBatch || progress == 0 {
			break
		}
	}
	// File times are the file system's: compared with the wall clock.
	s.removeStrayTemps(time.Now().Add(-ReservedLifetime))
	return deleted, nil
}

// removeExpired removes the upload up, found expired, unless a PUT holds
// it or it changed since it was found: it claims the slot as a PUT does,
// then reads it again, so that an upload finished meanwhile (a PUT may
// outlast ReservedLifetime while its bytes keep coming) is kept.
func (s *Service) removeExpired(ctx context.Context, up store.Upload) (bool, error) {
	if !s.claim(up.ID) {
		return false, nil
	}
	defer s.release(up.ID)
	now, err := s.deps.Slots.Get(ctx, up.ID)
	switch {
	case errors.Is(err, store.ErrNotFound):
		return false, nil
	case err != nil:
		return false, fmt.Errorf("upload: cleanup: %w", err)
	case now.State != up.State:
		return false, nil
	}
	return true, s.remove(ctx, up.ID)
}

// remove deletes a slot's file, then its record (a record whose file is
// gone is served as absent; a file without a record would stay forever).
func (s *Service) remove(ctx context.Context, id string) error {
	if store.ValidUploadID(id) {
		if err := os.Remove(s.path(id)); err != nil && !errors.Is(err, os.ErrNotExist) {
			return fmt.Errorf("upload: cleanup: %w", err)
		}
	}
	if err := s.deps.Slots.Delete(ctx, id); err != nil && !errors.Is(err, store.ErrNotFound) {
		return fmt.Errorf("upload: cleanup: %w", err)
	}
	return nil
}

// removeStrayTemps deletes temporary upload files last written before t
// (an upload in progress writes its file as data arrives).
func (s *Service) removeStrayTemps(t time.Time) {
	entries, err := os.ReadDir(s.opts.Dir)
	if err != nil {
		s.log.Error("upload: cleanup: read directory", xmpp.LogErr, err)
		return
	}
	for _, e := range entries {
		name := e.Name()
		if !e.Type().IsRegular() || !strings.HasPrefix(name, tempPrefix) || !strings.HasSuffix(name, tempSuffix) {
			continue
		}
		if info, err := e.Info(); err == nil && info.ModTime().Before(t) {
			if err := os.Remove(filepath.Join(s.opts.Dir, name)); err != nil && !errors.Is(err, os.ErrNotExist) {
				s.log.Error("upload: cleanup: remove temporary file", "file", name, xmpp.LogErr, err)
			}
		}
	}
}
