package executor

import (
	"bytes"
	"errors"
	"os"
	"strconv"
	"syscall"
)

// procStat says whether /proc/<pid>/stat can be read (Linux).
var procStat = func() bool {
	_, err := os.Stat("/proc/self/stat")
	return err == nil
}()

// groupAlive reports whether process group pgid has a live (not zombie) member.
//
// kill(-pgid, 0) alone is not enough: it also succeeds while only zombies are left, and
// orphaned grandchildren are reaped by whatever runs as PID 1, which may take seconds (or
// forever, without a reaping init). A zombie holds no resources, files or pipes, so on Linux
// we look at the state of each member in /proc. Elsewhere we trust kill.
func groupAlive(pgid int) bool {
	err := syscall.Kill(-pgid, 0)
	if errors.Is(err, syscall.ESRCH) {
		return false
	}
	if !procStat {
		return true // err == nil, or EPERM: a member exists that we may not signal
	}
	return groupHasLiveMember(pgid)
}

func groupHasLiveMember(pgid int) bool {
	d, err := os.Open("/proc")
	if err != nil {
		return true
	}
	defer d.Close()
	names, err := d.Readdirnames(-1)
	if err != nil {
		return true
	}
	for _, name := range names {
		if name == "" || name[0] < '0' || name[0] > '9' {
			continue
		}
		data, err := os.ReadFile("/proc/" + name + "/stat")
		if err != nil {
			continue // exited meanwhile
		}
		state, pgrp, ok := parseStat(data)
		if ok && pgrp == pgid && state != 'Z' && state != 'X' {
			return true
		}
	}
	return false
}

// parseStat extracts the state and process group from /proc/<pid>/stat:
// "pid (comm) state ppid pgrp ...", where comm may contain spaces and parentheses.
func parseStat(data []byte) (state byte, pgrp int, ok bool) {
	i := bytes.LastIndexByte(data, ')')
	if i < 0 {
		return 0, 0, false
	}
	fields := bytes.Fields(data[i+1:])
	if len(fields) < 3 || len(fields[0]) != 1 {
		return 0, 0, false
	}
	pgrp, err := strconv.Atoi(string(fields[2]))
	if err != nil {
		return 0, 0, false
	}
	return fields[0][0], pgrp, true
}
