// Package poll is the event loop's poller: one epoll fd and one eventfd
// that wakes it, behind Add, Mod, Del, Wait and Wake. It knows nothing of
// connections: it reports fds and their events.
//
// epoll_ctl and the non-blocking epoll_wait are raw syscalls (package
// rawsys): they never wait, so the Go scheduler need not hear of them.
// Wait blocks holding the thread's P while the loop is busy, and through
// the scheduler once it is idle; see Wait.
//
// Invariants:
//
//   - Only the goroutine that runs the loop calls Add, Mod, Del, Wait and
//     Close; Wake is the one call other goroutines make, and the caller
//     makes sure it never comes after Close (the fd number may by then
//     name another file).
//   - The wake fd is in the set from New to Close; Wait reports it like
//     any other fd, and IsWake tells it apart.
package poll
