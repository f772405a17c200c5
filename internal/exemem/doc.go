// Package exemem gives back the pages of a process's own executable that
// its start-up mapped and its work does not use. A Go program's package
// initialisation runs code and reads tables spread over the whole binary,
// and each page fault on a file mapping maps up to 64 KiB of its cached
// neighbours too (the kernel's fault-around): a worker of the hfork
// binary, which links everything the master needs, starts with 11–12 MB
// of the executable in its RSS. Release drops those page table entries
// with madvise(MADV_DONTNEED); what the process touches afterwards faults
// back from the page cache, so its RSS is then what it uses.
//
// Invariant: only private, read-only mappings of the executable's own
// file (by device and inode, so a binary replaced on disk still counts)
// that hold no anonymous (copied-on-write) page are released: for them
// MADV_DONTNEED discards nothing but the mapping of cached file pages.
// The page cache is left alone; the pages stay shared with every process
// that maps the file.
package exemem
