package wire

import "github.com/hfork/hfork/hclconfig"

// SwapMask is l without what a running built-in worker can take in place
// (Command.Swap) and without its number of workers: the routes, hosts,
// headers, error pages, compression, the access log, max_body_bytes and
// redirect_https (with https_port). Two configs of a listener whose masked
// fingerprints are equal differ only in what a swap applies; the master
// plans a swap on that, and a worker refuses a swap that is not.
func SwapMask(l hclconfig.Listener) hclconfig.Listener {
	l.Workers = 0
	l.Routes, l.Hosts, l.ErrorPages = nil, nil, nil
	l.Headers, l.Compress = hclconfig.Headers{}, hclconfig.Compress{}
	l.AccessLog = hclconfig.AccessLog{}
	l.MaxBodyBytes, l.RedirectHTTPS, l.HTTPSPort = 0, false, 0
	return l
}
