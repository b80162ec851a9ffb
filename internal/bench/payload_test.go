package bench

import (
	"encoding/json"
	"testing"
)

func TestPayloadRoundTripAndSize(t *testing.T) {
	p := Payload{P: 12, N: 345, T: 1700000000123456789}
	for _, size := range []int{0, 10, minPayload, 100, 1000} {
		b := AppendPayload(nil, p, size)
		if !json.Valid(b) {
			t.Fatalf("size %d: invalid JSON %s", size, b)
		}
		if size >= len(AppendPayload(nil, p, 0))+8 && len(b) != size {
			t.Errorf("size %d: got %d bytes", size, len(b))
		}
		got, err := ParsePayload(b)
		if err != nil || got != p {
			t.Fatalf("size %d: parsed %+v, %v", size, got, err)
		}
	}
}

func TestParsePayloadToleratesOrderAndSpace(t *testing.T) {
	got, err := ParsePayload([]byte(` { "x" : "a\"}b" , "t":-5 ,"n":2,"p" : 1, "z": 7 } `))
	if err != nil || got != (Payload{P: 1, N: 2, T: -5}) {
		t.Fatalf("parsed %+v, %v", got, err)
	}
}

func TestParsePayloadRefusesOthers(t *testing.T) {
	for _, s := range []string{
		``, `{}`, `[]`, `{"p":1,"n":2}`, `{"p":1,"n":2,"t":"3"}`, `{"p":1.5,"n":2,"t":3}`,
		`{"p":1,"n":2,"t":3`, `{"p":1,"n":2,"t":99999999999999999999}`, `{"p":1,"n":2,"t":3,"x":[1]}`,
		`{"p":1 "n":2,"t":3}`,
	} {
		if got, err := ParsePayload([]byte(s)); err == nil {
			t.Errorf("%q parsed as %+v", s, got)
		}
	}
}

func TestParsePayloadDoesNotAllocate(t *testing.T) {
	b := AppendPayload(nil, Payload{P: 1, N: 2, T: 3}, 100)
	if a := testing.AllocsPerRun(100, func() { _, _ = ParsePayload(b) }); a != 0 {
		t.Fatalf("ParsePayload allocates %v times", a)
	}
}

func FuzzParsePayload(f *testing.F) {
	f.Add(AppendPayload(nil, Payload{P: 1, N: 2, T: 3}, 100))
	f.Add([]byte(`{"t":1,"n":2,"p":3}`))
	f.Fuzz(func(t *testing.T, b []byte) {
		p, err := ParsePayload(b)
		if err != nil {
			return
		}
		// Whatever parses must round-trip through the canonical form.
		q, err := ParsePayload(AppendPayload(nil, p, 0))
		if err != nil || q != p {
			t.Fatalf("%q parsed as %+v, canonical form gives %+v, %v", b, p, q, err)
		}
	})
}
