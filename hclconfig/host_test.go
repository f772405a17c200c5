package hclconfig

import "testing"

func TestNormHostName(t *testing.T) {
	for _, tc := range []struct {
		in, want string
		ok       bool
	}{
		{"Shop.Example.COM", "shop.example.com", true},
		{"shop.example.com.", "shop.example.com", true},
		{"*.Example.com", "*.example.com", true},
		{"127.0.0.1", "127.0.0.1", true},
		{"under_score.test", "under_score.test", true},
		{"localhost", "localhost", true},
		{"*", "", false},
		{"*.", "", false},
		{"a.*.com", "", false},
		{"**.com", "", false},
		{"shop.example.com:80", "", false},
		{"[::1]", "", false},
		{"a..b", "", false},
		{".a", "", false},
		{"", "", false},
		{"caf\u00e9.test", "", false},
	} {
		got, ok := normHostName(tc.in)
		if got != tc.want || ok != tc.ok {
			t.Errorf("normHostName(%q) = %q, %v; want %q, %v", tc.in, got, ok, tc.want, tc.ok)
		}
	}
}
