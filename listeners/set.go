package listeners

import (
	"errors"
	"fmt"
	"sort"
	"sync"
)

// Set is the master's table of sockets, shared across generations of
// workers. Sockets are reference-counted by the pools that use them; a
// socket is closed only when no pool uses it.
type Set struct {
	mu    sync.Mutex
	socks map[string]*Socket // by Key
	refs  map[string]int
	// spare holds adopted sockets no pool has claimed yet.
	spare map[string]*Socket
}

// NewSet returns a set that will use the inherited sockets, by key, before
// opening new ones.
func NewSet(inherited map[string]*Socket) *Set {
	if inherited == nil {
		inherited = map[string]*Socket{}
	}
	return &Set{socks: map[string]*Socket{}, refs: map[string]int{}, spare: inherited}
}

// Prepare opens every bind that the set does not hold yet, without taking
// references, so a reload can fail on a bind that cannot be opened before
// anything is touched. A unix socket it opens or adopts gets its
// permissions now; one it already held keeps its own until SetPerms, when
// the reload commits. On error nothing new stays open.
func (s *Set) Prepare(binds []Bind) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	var opened []string
	var errs []error
	for _, b := range binds {
		a := b.Addr
		k := Key(a)
		p, err := b.resolve()
		if err != nil {
			errs = append(errs, fmt.Errorf("listen %s: %w", a, err))
			continue
		}
		if s.socks[k] != nil {
			continue
		}
		if sp := s.spare[k]; sp != nil {
			if b.hasPerms() {
				if err := sp.applyPerms(p); err != nil {
					errs = append(errs, fmt.Errorf("listen %s: %w", a, err))
					continue
				}
			}
			delete(s.spare, k)
			sp.Addr = a
			s.socks[k] = sp
			continue
		}
		sock, err := openBind(b, p)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		s.socks[k] = sock
		opened = append(opened, k)
	}
	if len(errs) > 0 {
		for _, k := range opened {
			s.socks[k].Close()
			delete(s.socks, k)
		}
		return errors.Join(errs...)
	}
	return nil
}

// SetPerms applies the permissions of every unix bind the set holds, for a
// reload that changed them on a socket it keeps.
func (s *Set) SetPerms(binds []Bind) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	var errs []error
	for _, b := range binds {
		sock := s.socks[Key(b.Addr)]
		if sock == nil || !b.hasPerms() {
			continue
		}
		p, err := b.resolve()
		if err == nil {
			err = sock.applyPerms(p)
		}
		if err != nil {
			errs = append(errs, fmt.Errorf("socket %s: %w", b.Addr, err))
		}
	}
	return errors.Join(errs...)
}

// Acquire takes a reference on each address (which Prepare opened) and
// returns their sockets in order.
func (s *Set) Acquire(addrs []string) ([]*Socket, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]*Socket, 0, len(addrs))
	for _, a := range addrs {
		sock := s.socks[Key(a)]
		if sock == nil {
			return nil, fmt.Errorf("listen %s: not prepared", a)
		}
		out = append(out, sock)
	}
	for _, a := range addrs {
		s.refs[Key(a)]++
	}
	return out, nil
}

// Release drops a reference on each address and closes the sockets nobody
// uses any more.
func (s *Set) Release(addrs []string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, a := range addrs {
		k := Key(a)
		s.refs[k]--
		if s.refs[k] <= 0 {
			delete(s.refs, k)
			if sock := s.socks[k]; sock != nil {
				sock.Close()
				delete(s.socks, k)
			}
		}
	}
}

// Sweep closes prepared or inherited sockets that no pool references.
func (s *Set) Sweep() {
	s.mu.Lock()
	defer s.mu.Unlock()
	for k, sock := range s.socks {
		if s.refs[k] == 0 {
			sock.Close()
			delete(s.socks, k)
		}
	}
	for k, sock := range s.spare {
		sock.Close()
		delete(s.spare, k)
	}
}

// All returns every open socket, ordered by key, for handing to a new master.
func (s *Set) All() []*Socket {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]*Socket, 0, len(s.socks))
	for _, sock := range s.socks {
		out = append(out, sock)
	}
	sort.Slice(out, func(i, j int) bool { return Key(out[i].Addr) < Key(out[j].Addr) })
	return out
}

// CloseAll closes every socket; with handover true, unix socket files are
// left in place for the next master.
func (s *Set) CloseAll(handover bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for k, sock := range s.socks {
		if handover {
			sock.Release()
		} else {
			sock.Close()
		}
		delete(s.socks, k)
	}
	s.refs = map[string]int{}
}
