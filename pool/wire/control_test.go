package wire

import (
	"bufio"
	"encoding/json"
	"errors"
	"io"
	"os"
	"runtime"
	"strconv"
	"strings"
	"testing"
)

func TestControlPipeFraming(t *testing.T) {
	in := `{"listener":{"name":"web","class":"thread","workers":3},"gen":4,"log_level":"debug","log_format":"text"}
{"log_level":"warn"}
not json
{"log_format":"json"}
`
	br := bufio.NewReader(strings.NewReader(in))
	spec, err := ReadSpec(br)
	if err != nil {
		t.Fatal(err)
	}
	if spec.Listener.Name != "web" || spec.Listener.Workers != 3 || spec.Gen != 4 || spec.LogLevel != "debug" || spec.LogFormat != "text" {
		t.Errorf("spec %+v", spec)
	}
	var got []string
	var goneErr error
	ReadCommands(br, func(c Command, err error) {
		if err != nil {
			got = append(got, "error")
			return
		}
		got = append(got, c.LogLevel+"/"+c.LogFormat)
	}, func(err error) { goneErr = err })
	if strings.Join(got, " ") != "warn/ error /json" {
		t.Errorf("commands %q", got)
	}
	if !errors.Is(goneErr, io.EOF) {
		t.Errorf("gone(%v), want EOF", goneErr)
	}
	if _, err := ReadSpec(bufio.NewReader(strings.NewReader(""))); err == nil {
		t.Error("empty control pipe accepted")
	}
	// A spec without its newline (the master died mid-write) is still
	// either whole JSON or an error, never a panic.
	if _, err := ReadSpec(bufio.NewReader(strings.NewReader(`{"gen":1`))); err == nil {
		t.Error("truncated spec accepted")
	}
}

// The Spec and the Commands sent after it reach the worker in the order
// they were sent, however many there are.
func TestControlKeepsOrder(t *testing.T) {
	r, w, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	c := NewControl(w)
	const n = 2000
	if err := c.Send(Spec{Gen: 7, LogLevel: "info"}); err != nil {
		t.Fatal(err)
	}
	for i := range n {
		c.Send(Command{LogLevel: strconv.Itoa(i)})
	}
	br := bufio.NewReader(r)
	spec, err := ReadSpec(br)
	if err != nil || spec.Gen != 7 {
		t.Fatalf("first line: %+v, %v", spec, err)
	}
	for i := range n {
		line, err := br.ReadBytes('\n')
		if err != nil {
			t.Fatalf("line %d: %v", i, err)
		}
		var cmd Command
		if err := json.Unmarshal(line, &cmd); err != nil || cmd.LogLevel != strconv.Itoa(i) {
			t.Fatalf("line %d is %q", i, line)
		}
	}
	c.Close()
	if _, err := br.ReadByte(); !errors.Is(err, io.EOF) {
		t.Errorf("after Close the worker reads %v, want EOF", err)
	}
}

// A worker that does not read fills the pipe; the master's sends return
// at once all the same, and Close ends the blocked write.
func TestControlNeverBlocksTheSender(t *testing.T) {
	r, w, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	c := NewControl(w)
	big := Command{LogLevel: strings.Repeat("x", 4096)}
	for range 200 { // 800 KiB: far beyond a pipe's 64 KiB
		if err := c.Send(big); err != nil {
			t.Fatal(err)
		}
	}
	c.Close()
	if err := c.Send(big); !errors.Is(err, os.ErrClosed) {
		t.Errorf("Send after Close = %v, want ErrClosed", err)
	}
	c.Close() // a second Close is harmless
}

// Once the worker's end is gone, sends fail instead of queueing forever:
// the loop ends when the writer met the broken pipe (the test's own
// timeout is the bound).
func TestControlAfterTheWorkerLeft(t *testing.T) {
	r, w, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	r.Close()
	c := NewControl(w)
	defer c.Close()
	for err == nil {
		err = c.Send(Command{LogLevel: "info"})
		runtime.Gosched()
	}
	if !errors.Is(err, os.ErrClosed) {
		t.Errorf("Send to a worker that left = %v, want ErrClosed", err)
	}
}

// A worker that never reads cannot make the master hold unbounded memory:
// past MaxControlQueue queued bytes, Send drops the line and says so.
func TestControlBoundsWhatWaits(t *testing.T) {
	r, w, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	c := NewControl(w)
	defer c.Close()
	big := Command{LogLevel: strings.Repeat("x", 64<<10)}
	sent := 0
	for range 2 * MaxControlQueue / (64 << 10) {
		if err = c.Send(big); err != nil {
			break
		}
		sent++
	}
	if !errors.Is(err, ErrControlFull) {
		t.Fatalf("after %d lines of 64 KiB: %v, want ErrControlFull", sent, err)
	}
	if sent < MaxControlQueue/(64<<10)-1 {
		t.Errorf("only %d lines of 64 KiB queued before the bound", sent)
	}
}
