// Package listeners owns hfork's listening sockets: it opens them, adopts
// the ones a parent passed down (systemd socket activation or an hfork
// binary upgrade), names them by address, and hands them to child processes.
//
// Invariants:
//   - A socket is identified by its canonical address (Key), so an unchanged
//     bind maps to the same socket across reloads and upgrades and the
//     kernel's accept queue is never dropped.
//   - The master never accepts on a socket and never changes its file status
//     flags after opening it; workers share the same open file description.
//   - A unix socket file is removed only by the process that bound it (or
//     adopted it), only when the file is still the inode it bound, and never
//     when the socket is being handed to another master.
//   - A unix socket's configured mode and owner are applied only to the
//     inode this process bound or adopted, through one O_PATH|O_NOFOLLOW
//     descriptor checked to be that socket, never by name again; one
//     with a configured mode is bound under umask 0177, so nobody can
//     connect before chmod.
package listeners
