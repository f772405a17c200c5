package pool

import (
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"net"
	"os"
	"syscall"

	"github.com/hfork/hfork/pool/wire"
)

// NotifyEvent is one sd_notify datagram, attributed to the pid the kernel
// says sent it.
type NotifyEvent struct {
	Pid    int
	Notice wire.Notice
}

// NotifyListener is the master's sd_notify socket: an abstract unix datagram
// socket with SO_PASSCRED, so every datagram carries its sender's pid and a
// worker cannot speak for another.
type NotifyListener struct {
	// Addr is the NOTIFY_SOCKET value for children ("@hfork-…").
	Addr string
	conn *net.UnixConn
}

// ListenNotify opens the notify socket and delivers its datagrams to fn
// from its own goroutine until Close.
func ListenNotify(fn func(NotifyEvent)) (*NotifyListener, error) {
	var rnd [6]byte
	rand.Read(rnd[:])
	addr := fmt.Sprintf("@hfork-%d-%s", os.Getpid(), hex.EncodeToString(rnd[:]))
	conn, err := net.ListenUnixgram("unixgram", &net.UnixAddr{Name: addr, Net: "unixgram"})
	if err != nil {
		return nil, fmt.Errorf("notify socket: %w", err)
	}
	rc, err := conn.SyscallConn()
	if err == nil {
		cerr := rc.Control(func(fd uintptr) {
			err = syscall.SetsockoptInt(int(fd), syscall.SOL_SOCKET, syscall.SO_PASSCRED, 1)
			if err == nil {
				// A burst of heartbeats from many workers must not be dropped.
				syscall.SetsockoptInt(int(fd), syscall.SOL_SOCKET, syscall.SO_RCVBUF, 1<<20)
			}
		})
		if err == nil {
			err = cerr
		}
	}
	if err != nil {
		conn.Close()
		return nil, fmt.Errorf("notify socket: SO_PASSCRED: %w", err)
	}
	n := &NotifyListener{Addr: addr, conn: conn}
	go n.read(fn)
	return n, nil
}

func (n *NotifyListener) read(fn func(NotifyEvent)) {
	buf := make([]byte, 64<<10)
	oob := make([]byte, syscall.CmsgSpace(syscall.SizeofUcred))
	for {
		nb, noob, _, _, err := n.conn.ReadMsgUnix(buf, oob)
		if err != nil {
			if errors.Is(err, net.ErrClosed) {
				return
			}
			continue
		}
		pid := senderPid(oob[:noob])
		if pid <= 0 {
			continue
		}
		fn(NotifyEvent{Pid: pid, Notice: wire.ParseNotice(buf[:nb])})
	}
}

func senderPid(oob []byte) int {
	msgs, err := syscall.ParseSocketControlMessage(oob)
	if err != nil {
		return 0
	}
	for _, m := range msgs {
		if cred, err := syscall.ParseUnixCredentials(&m); err == nil {
			return int(cred.Pid)
		}
	}
	return 0
}

// Close stops the socket's reader.
func (n *NotifyListener) Close() error { return n.conn.Close() }
