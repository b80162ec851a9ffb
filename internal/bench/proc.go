package bench

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"os"
	"strconv"
	"syscall"
	"time"
)

// ProcSample is what /proc says about one process at one moment.
type ProcSample struct {
	// CPU is user plus system time consumed so far.
	CPU time.Duration
	// RSS is the resident set size in bytes (VmRSS).
	RSS int64
}

// SampleProc reads /proc/PID/stat and /proc/PID/status.
func SampleProc(pid int) (ProcSample, error) {
	stat, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return ProcSample{}, fmt.Errorf("sample pid %d: %w", pid, err)
	}
	ticks, err := ParseStatCPU(stat)
	if err != nil {
		return ProcSample{}, fmt.Errorf("sample pid %d: %w", pid, err)
	}
	status, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return ProcSample{}, fmt.Errorf("sample pid %d: %w", pid, err)
	}
	rss, err := ParseStatusRSS(status)
	if err != nil {
		return ProcSample{}, fmt.Errorf("sample pid %d: %w", pid, err)
	}
	return ProcSample{CPU: time.Duration(ticks) * time.Second / time.Duration(clockTicks()), RSS: rss}, nil
}

// ParseStatCPU returns utime+stime, in clock ticks, from the content of
// /proc/PID/stat. The command name (field 2) may hold spaces and
// parentheses, so fields are counted from the last ')'.
func ParseStatCPU(stat []byte) (uint64, error) {
	end := bytes.LastIndexByte(stat, ')')
	if end < 0 {
		return 0, errors.New("stat: no command name")
	}
	// After ") " come field 3 (state) onwards; utime and stime are fields
	// 14 and 15.
	fields := bytes.Fields(stat[end+1:])
	if len(fields) < 13 {
		return 0, fmt.Errorf("stat: %d fields after the name, want at least 13", len(fields))
	}
	utime, err := strconv.ParseUint(string(fields[11]), 10, 64)
	if err != nil {
		return 0, fmt.Errorf("stat: utime: %w", err)
	}
	stime, err := strconv.ParseUint(string(fields[12]), 10, 64)
	if err != nil {
		return 0, fmt.Errorf("stat: stime: %w", err)
	}
	return utime + stime, nil
}

// ParseStatusRSS returns VmRSS in bytes from the content of
// /proc/PID/status.
func ParseStatusRSS(status []byte) (int64, error) {
	for line := range bytes.Lines(status) {
		rest, ok := bytes.CutPrefix(line, []byte("VmRSS:"))
		if !ok {
			continue
		}
		f := bytes.Fields(rest)
		if len(f) != 2 || string(f[1]) != "kB" {
			return 0, fmt.Errorf("status: VmRSS line %q", bytes.TrimSpace(line))
		}
		kb, err := strconv.ParseInt(string(f[0]), 10, 64)
		if err != nil {
			return 0, fmt.Errorf("status: VmRSS: %w", err)
		}
		return kb << 10, nil
	}
	return 0, errors.New("status: no VmRSS (a kernel thread or a zombie)")
}

// atClkTck is the auxiliary vector entry of the kernel's clock tick rate.
const atClkTck = 17

// clockTicks returns the kernel's USER_HZ, the unit of /proc/PID/stat's
// times: from this process's auxiliary vector, 100 when unreadable.
func clockTicks() int64 {
	aux, err := os.ReadFile("/proc/self/auxv")
	if err != nil {
		return 100
	}
	if hz := ParseAuxv(aux, atClkTck); hz > 0 {
		return int64(hz)
	}
	return 100
}

// ParseAuxv returns the value of entry key in a 64-bit little-endian
// auxiliary vector (the content of /proc/self/auxv), 0 when absent.
func ParseAuxv(aux []byte, key uint64) uint64 {
	for i := 0; i+16 <= len(aux); i += 16 {
		k := binary.LittleEndian.Uint64(aux[i:])
		if k == 0 {
			break
		}
		if k == key {
			return binary.LittleEndian.Uint64(aux[i+8:])
		}
	}
	return 0
}

// SelfCPU returns the user plus system CPU time this process has used
// (getrusage).
func SelfCPU() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// RaiseFileLimit raises this process's soft limit of open files to the
// hard limit and returns the new soft limit.
func RaiseFileLimit() (uint64, error) {
	var lim syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &lim); err != nil {
		return 0, fmt.Errorf("getrlimit: %w", err)
	}
	if lim.Cur < lim.Max {
		lim.Cur = lim.Max
		if err := syscall.Setrlimit(syscall.RLIMIT_NOFILE, &lim); err != nil {
			return 0, fmt.Errorf("setrlimit: %w", err)
		}
	}
	return lim.Cur, nil
}

// MachineCPU is the machine's CPU time so far, from the first line of
// /proc/stat: busy (user, nice, system, irq, softirq, steal) and in all.
type MachineCPU struct {
	Busy  time.Duration
	Total time.Duration
}

// SampleMachine reads /proc/stat.
func SampleMachine() (MachineCPU, error) {
	b, err := os.ReadFile("/proc/stat")
	if err != nil {
		return MachineCPU{}, fmt.Errorf("sample machine: %w", err)
	}
	busy, total, err := ParseProcStat(b)
	if err != nil {
		return MachineCPU{}, err
	}
	hz := time.Duration(clockTicks())
	return MachineCPU{Busy: time.Duration(busy) * time.Second / hz, Total: time.Duration(total) * time.Second / hz}, nil
}

// ParseProcStat returns the busy and total clock ticks of all CPUs from
// the content of /proc/stat (its "cpu" line; guest time is already
// counted in user time).
func ParseProcStat(stat []byte) (busy, total uint64, err error) {
	line, _, _ := bytes.Cut(stat, []byte("\n"))
	f := bytes.Fields(line)
	if len(f) < 8 || string(f[0]) != "cpu" {
		return 0, 0, errors.New("stat: no cpu line")
	}
	var v [8]uint64 // user nice system idle iowait irq softirq steal
	for i := range v {
		if i+1 >= len(f) {
			break
		}
		if v[i], err = strconv.ParseUint(string(f[i+1]), 10, 64); err != nil {
			return 0, 0, fmt.Errorf("stat: cpu field %d: %w", i+1, err)
		}
	}
	busy = v[0] + v[1] + v[2] + v[5] + v[6] + v[7]
	return busy, busy + v[3] + v[4], nil
}
