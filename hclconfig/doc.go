// Package hclconfig turns the bytes of one hfork config file into either
// diagnostics or a validated Config.
//
// Parse collects every problem in the file at once, each with a source range,
// and WriteDiagnostics prints them with file:line:col and a snippet, for
// hfork -t and for a reload that must be refused. Format prints a Config back
// as HCL with every default filled in, for hfork -T.
//
// Invariants:
//   - A Config is returned only when there is no error diagnostic; it is
//     complete: defaults filled, durations parsed, bind addresses normalized,
//     routes sorted longest prefix first, and every path absolute (relative
//     paths resolve against the config file's directory, not the working
//     directory, so the master and its workers agree).
//   - A Config holds no pointers, only values, slices and maps that Parse
//     never touches again once it returns: callers treat it as read-only and
//     compare two of them by content (Listener.Fingerprint depends on content
//     only).
//   - Format's output parses back to the same Config.
//   - The package reads the file system only to check what the config
//     names: that directories exist, that TLS certificate files parse, match
//     their keys and are not expired (one that expires within 14 days is a
//     warning), and that users and groups exist in the user database. It
//     never touches the network or processes, and Parse never checks
//     privileges (a reload parses as well as hfork -t); binding sockets,
//     switching users and running programs belong to listeners and pool.
//   - CheckAccess, which only hfork -t and -T call, answers from mode bits
//     and ownership whether each identity that will open a file may do it
//     (the master: pidfile, log, unix sockets; the workers' user: access
//     logs, static roots, exec commands). It switches to no one, never
//     opens what it checks for writing, and reads no ACLs.
//   - Certificate files are configuration by path only: a Listener's
//     fingerprint does not change when their contents do, because workers
//     reload certificates themselves.
//   - Expressions see no variables, only functions: env("NAME") (unset is "")
//     and the usual string, collection and number functions of go-cty's
//     stdlib, so a value depends on nothing but the file and the environment.
package hclconfig
