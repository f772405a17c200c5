package engine

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"os"
	"time"

	"github.com/hfork/hfork/hclconfig"
)

// errNoPrevious answers a rollback before any reload was applied.
var errNoPrevious = errors.New("no previous config to roll back to: none was replaced since the master started")

// liveConfig is a config the master applied, kept with its source so
// that `hfork -s rollback` can apply it again without the file (which by
// then holds the config being rolled back), and so that the log and
// `-s status` can name it.
type liveConfig struct {
	cfg    hclconfig.Config
	src    []byte
	file   string
	hash   string
	loaded time.Time
}

func newLive(cfg hclconfig.Config, src []byte, file string, at time.Time) *liveConfig {
	return &liveConfig{cfg: cfg, src: src, file: file, hash: configHash(src), loaded: at}
}

// configHash names a config by its source: "sha256:" and 12 hex digits,
// enough to tell the versions of one file apart at a glance.
func configHash(src []byte) string {
	if src == nil {
		return ""
	}
	sum := sha256.Sum256(src)
	return "sha256:" + hex.EncodeToString(sum[:6])
}

// ConfigStatus names the live config in `-s status`: its file, the hash
// of its source and when it was applied, and the one a rollback would
// apply, if any.
type ConfigStatus struct {
	File     string        `json:"file"`
	Hash     string        `json:"hash"`
	LoadedAt time.Time     `json:"loaded_at"`
	Rollback bool          `json:"rollback"` // applied by -s rollback
	Previous *ConfigStatus `json:"previous,omitempty"`
}

func (l *liveConfig) status() *ConfigStatus {
	if l == nil {
		return nil
	}
	return &ConfigStatus{File: l.file, Hash: l.hash, LoadedAt: l.loaded}
}

// initLive records the config the master started with; its source is
// read again from the file (hclconfig keeps none), which -t and the
// start have just read.
func (m *Master) initLive() {
	src, err := os.ReadFile(m.opts.ConfigPath)
	if err != nil {
		m.log.Warn("cannot keep the config's source for status", "err", err)
	}
	m.live = newLive(m.cfg, src, m.opts.ConfigPath, time.Now())
	m.logLive(false)
}

// setLive makes next the live config once a reload committed; the one it
// replaces becomes the rollback's.
func (m *Master) setLive(next *liveConfig, rollback bool) {
	m.prev, m.live = m.live, next
	m.rolledBack = rollback
	m.logLive(rollback)
}

func (m *Master) logLive(rollback bool) {
	prev := ""
	if m.prev != nil {
		prev = m.prev.hash
	}
	m.log.Info("config live", "file", m.live.file, "hash", m.live.hash,
		"loaded_at", m.live.loaded.UTC().Format(time.RFC3339), "rollback", rollback, "previous", prev)
}

// configStatus is the view's copy of the live and previous configs.
func (m *Master) configStatus() *ConfigStatus {
	s := m.live.status()
	if s == nil {
		return nil
	}
	s.Rollback = m.rolledBack
	s.Previous = m.prev.status()
	return s
}
