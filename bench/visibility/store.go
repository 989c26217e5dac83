package main

import (
	"context"
	"sync"
	"time"

	"github.com/keyturn/keyturn/keystore"
)

// promotion is a finishSecret as the store saw it: the version that
// became AWSCURRENT and when the store call that moved the label returned.
type promotion struct {
	versionID string
	at        time.Time
}

// watchStore is the rotation engine's store. It timestamps the UpdateStage
// call of finishSecret that moves AWSCURRENT to a new version, and runs
// onPromote right after it, before the engine goes on.
//
// The timestamp is taken when the call returns, because from then on every
// read of the store finds the new version: the lag counts from the moment
// the router could see the new key.
type watchStore struct {
	keystore.Store

	mu        sync.Mutex
	onPromote func()
	promoted  []promotion
}

func (s *watchStore) UpdateStage(ctx context.Context, in keystore.StageInput) error {
	err := s.Store.UpdateStage(ctx, in)
	if err != nil || in.Stage != keystore.StageCurrent || in.MoveToVersion == "" {
		return err
	}
	at := time.Now()
	s.mu.Lock()
	defer s.mu.Unlock()
	s.promoted = append(s.promoted, promotion{versionID: in.MoveToVersion, at: at})
	if s.onPromote != nil {
		s.onPromote()
	}
	return nil
}

// expect sets what runs at the next promotion, such as revoking the old
// key; nil runs nothing.
func (s *watchStore) expect(onPromote func()) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.onPromote = onPromote
}

// promotionOf returns the promotion of versionID.
func (s *watchStore) promotionOf(versionID string) (promotion, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, p := range s.promoted {
		if p.versionID == versionID {
			return p, true
		}
	}
	return promotion{}, false
}
