package testcert

import (
	"crypto/tls"
	"testing"
	"time"
)

func TestWriteLoads(t *testing.T) {
	end := time.Now().Add(48 * time.Hour).Truncate(time.Second)
	cert, key := Write(t, t.TempDir(), "a", Options{Names: []string{"a.test", "127.0.0.1"}, NotAfter: end})
	pair, err := tls.LoadX509KeyPair(cert, key)
	if err != nil {
		t.Fatal(err)
	}
	leaf := pair.Leaf
	if len(leaf.DNSNames) != 1 || leaf.DNSNames[0] != "a.test" || len(leaf.IPAddresses) != 1 {
		t.Errorf("names %v %v", leaf.DNSNames, leaf.IPAddresses)
	}
	if !leaf.NotAfter.Equal(end) {
		t.Errorf("NotAfter %v, want %v", leaf.NotAfter, end)
	}
}
