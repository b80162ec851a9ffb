package bench

import (
	"encoding/binary"
	"os"
	"testing"
	"time"
)

func TestParseStatCPU(t *testing.T) {
	// A command name with spaces and parentheses; utime 1234, stime 56.
	stat := []byte("4242 (kaiwa (ua) x) S 1 4242 4242 0 -1 4194560 12059 0 0 0 1234 56 0 0 20 0 9 0 1234567 1262587904 5041 18446744073709551615 1 1 0 0 0 0 0 0 2143420159 0 0 0 17 1 0 0 0 0 0\n")
	got, err := ParseStatCPU(stat)
	if err != nil || got != 1290 {
		t.Fatalf("ParseStatCPU = %d, %v; want 1290", got, err)
	}
	for _, bad := range []string{"", "1 (x) S 1 2", "1 (x) S 1 2 3 4 5 6 7 8 9 10 abc 5 0"} {
		if _, err := ParseStatCPU([]byte(bad)); err == nil {
			t.Errorf("%q parsed", bad)
		}
	}
}

func TestParseStatusRSS(t *testing.T) {
	status := []byte("Name:\tkaiwa\nVmPeak:\t 1000 kB\nVmRSS:\t   20164 kB\nRssAnon:\t 9000 kB\n")
	got, err := ParseStatusRSS(status)
	if err != nil || got != 20164<<10 {
		t.Fatalf("ParseStatusRSS = %d, %v", got, err)
	}
	for _, bad := range []string{"Name:\tx\n", "VmRSS:\t12 MB\n", "VmRSS:\tx kB\n"} {
		if _, err := ParseStatusRSS([]byte(bad)); err == nil {
			t.Errorf("%q parsed", bad)
		}
	}
}

func TestParseAuxv(t *testing.T) {
	var aux []byte
	for _, kv := range [][2]uint64{{6, 4096}, {17, 250}, {0, 0}, {17, 1}} {
		aux = binary.LittleEndian.AppendUint64(aux, kv[0])
		aux = binary.LittleEndian.AppendUint64(aux, kv[1])
	}
	if got := ParseAuxv(aux, 17); got != 250 {
		t.Fatalf("AT_CLKTCK = %d, want 250", got)
	}
	if got := ParseAuxv(aux, 99); got != 0 {
		t.Fatalf("absent key = %d", got)
	}
}

func TestSampleSelf(t *testing.T) {
	before, err := SampleProc(os.Getpid())
	if err != nil {
		t.Fatal(err)
	}
	if before.RSS <= 0 {
		t.Fatalf("RSS %d", before.RSS)
	}
	// Burn some CPU, then both /proc and getrusage must have moved.
	cpu0 := SelfCPU()
	x := 0
	for time.Duration(SelfCPU()-cpu0) < 50*time.Millisecond {
		for i := range 1000000 {
			x += i
		}
	}
	_ = x
	after, err := SampleProc(os.Getpid())
	if err != nil {
		t.Fatal(err)
	}
	if after.CPU <= before.CPU {
		t.Fatalf("CPU went from %v to %v", before.CPU, after.CPU)
	}
	if _, err := SampleProc(1 << 30); err == nil {
		t.Fatal("sampling a PID that cannot exist succeeded")
	}
}

func TestRaiseFileLimit(t *testing.T) {
	n, err := RaiseFileLimit()
	if err != nil || n == 0 {
		t.Fatalf("RaiseFileLimit = %d, %v", n, err)
	}
}

func TestParseProcStat(t *testing.T) {
	stat := []byte("cpu  100 5 50 1000 20 3 2 1 7 0\ncpu0 50 2 25 500 10 1 1 0 0 0\n")
	busy, total, err := ParseProcStat(stat)
	if err != nil || busy != 161 || total != 1181 {
		t.Fatalf("ParseProcStat = %d, %d, %v; want 161, 1181", busy, total, err)
	}
	if _, _, err := ParseProcStat([]byte("intr 1 2 3\n")); err == nil {
		t.Fatal("a stat without a cpu line parsed")
	}
	m, err := SampleMachine()
	if err != nil || m.Total <= 0 || m.Busy > m.Total {
		t.Fatalf("SampleMachine = %+v, %v", m, err)
	}
}
