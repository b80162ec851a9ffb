package tenants

import (
	"context"
	"fmt"
	"reflect"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/kaiwa-chat/kaiwa"
)

func TestNGList(t *testing.T) {
	t.Parallel()
	s := newStore(t)
	ctx := context.Background()
	newTenant(t, s, "a")
	newTenant(t, s, "b")

	empty, err := s.NGList(ctx, "a")
	if err != nil || !reflect.DeepEqual(empty, kaiwa.NGList{Policy: kaiwa.NGReject, Words: []string{}, Allow: []string{}}) {
		t.Fatalf("NGList of a new tenant = %#v, %v", empty, err)
	}

	// Entries are kept exactly as given (the matcher normalises), sorted
	// by bytes, each once.
	put := kaiwa.NGList{
		Words: []string{"badword", "BadWord", "badword ", "bad word", "ｂａｄ", "é", "e\u0301", "badword", "'; DROP TABLE ng_words; --", "🐉"},
		Allow: []string{"badwordsmith", "Scunthorpe", "Scunthorpe"},
	}
	got, err := s.PutNGList(ctx, "a", put)
	must(t, err)
	want := kaiwa.NGList{
		Policy: kaiwa.NGReject,
		Words:  []string{"'; DROP TABLE ng_words; --", "BadWord", "bad word", "badword", "badword ", "e\u0301", "é", "ｂａｄ", "🐉"},
		Allow:  []string{"Scunthorpe", "badwordsmith"},
	}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("PutNGList = %#v\nwant %#v", got, want)
	}
	if read, err := s.NGList(ctx, "a"); err != nil || !reflect.DeepEqual(read, want) {
		t.Fatalf("NGList = %#v, %v", read, err)
	}

	// A policy given is stored in the settings; an empty one leaves it.
	got, err = s.AddNGWords(ctx, "a", kaiwa.NGList{Policy: kaiwa.NGMask, Words: []string{"badword", "zzz"}, Allow: []string{"Scunthorpe"}})
	must(t, err)
	want.Policy = kaiwa.NGMask
	want.Words = slices.Insert(want.Words, 6, "zzz") // byte order: between "e\u0301" and "é"
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("AddNGWords = %#v\nwant %#v", got, want)
	}
	if st, err := s.TenantSettings(ctx, "a"); err != nil || st.NGPolicy != kaiwa.NGMask {
		t.Fatalf("settings after a policy change: %+v, %v", st, err)
	}
	got, err = s.PutNGList(ctx, "a", kaiwa.NGList{Words: []string{"only"}})
	must(t, err)
	if !reflect.DeepEqual(got, kaiwa.NGList{Policy: kaiwa.NGMask, Words: []string{"only"}, Allow: []string{}}) {
		t.Fatalf("PutNGList without a policy = %#v", got)
	}
	// Setting the tenant's settings sets the policy too.
	must(t, s.SetTenantSettings(ctx, "a", kaiwa.Settings{NGPolicy: kaiwa.NGReject}))
	if l, err := s.NGList(ctx, "a"); err != nil || l.Policy != kaiwa.NGReject {
		t.Fatalf("NGList after SetTenantSettings = %#v, %v", l, err)
	}

	// Deleting an entry removes it from whichever list holds it.
	_, err = s.AddNGWords(ctx, "a", kaiwa.NGList{Words: []string{"both"}, Allow: []string{"both", "allowed"}})
	must(t, err)
	got, err = s.DeleteNGWord(ctx, "a", "both")
	must(t, err)
	if !reflect.DeepEqual(got, kaiwa.NGList{Policy: kaiwa.NGReject, Words: []string{"only"}, Allow: []string{"allowed"}}) {
		t.Fatalf("DeleteNGWord = %#v", got)
	}
	_, err = s.DeleteNGWord(ctx, "a", "both")
	wantCode(t, err, kaiwa.CodeNotFound)
	_, err = s.DeleteNGWord(ctx, "a", "Only") // entries are case-sensitive
	wantCode(t, err, kaiwa.CodeNotFound)
	_, err = s.DeleteNGWord(ctx, "a", "only ") // and space-sensitive
	wantCode(t, err, kaiwa.CodeNotFound)
	got, err = s.DeleteNGWord(ctx, "a", "allowed")
	must(t, err)
	if len(got.Allow) != 0 || !reflect.DeepEqual(got.Words, []string{"only"}) {
		t.Fatalf("after deleting the last allowed entry: %#v", got)
	}

	// An empty list clears it.
	got, err = s.PutNGList(ctx, "a", kaiwa.NGList{})
	must(t, err)
	if len(got.Words) != 0 || len(got.Allow) != 0 || got.Words == nil || got.Allow == nil {
		t.Fatalf("cleared list = %#v", got)
	}
}

func TestNGListValidation(t *testing.T) {
	t.Parallel()
	s := newStore(t)
	ctx := context.Background()
	newTenant(t, s, "a")
	before, err := s.PutNGList(ctx, "a", kaiwa.NGList{Words: []string{"keep"}})
	must(t, err)

	tooMany := make([]string, kaiwa.MaxNGWords/2+1)
	for i := range tooMany {
		tooMany[i] = fmt.Sprint("w", i)
	}
	for name, l := range map[string]kaiwa.NGList{
		"policy":        {Policy: "shout"},
		"empty":         {Words: []string{""}},
		"blank":         {Words: []string{" \u3000 "}},
		"long":          {Words: []string{strings.Repeat("語", kaiwa.MaxNGWordLen+1)}},
		"not utf-8":     {Words: []string{"bad\xff"}},
		"newline":       {Words: []string{"two\nlines"}},
		"nul":           {Allow: []string{"nul\x00"}},
		"c1 control":    {Allow: []string{"x\u0085"}},
		"too many":      {Words: tooMany, Allow: tooMany},
		"valid and bad": {Words: []string{"fine", "\t"}},
	} {
		for _, op := range []string{"put", "add"} {
			var err error
			if op == "put" {
				_, err = s.PutNGList(ctx, "a", l)
			} else {
				_, err = s.AddNGWords(ctx, "a", l)
			}
			if kaiwa.ErrorCode(err) != kaiwa.CodeBadRequest {
				t.Errorf("%s %s: %v, want bad_request", op, name, err)
			}
		}
	}
	_, err = s.DeleteNGWord(ctx, "a", "")
	wantCode(t, err, kaiwa.CodeBadRequest)
	if got, err := s.NGList(ctx, "a"); err != nil || !reflect.DeepEqual(got, before) {
		t.Fatalf("refused changes changed the list: %#v, %v", got, err)
	}
	// The longest entry passes.
	if _, err := s.AddNGWords(ctx, "a", kaiwa.NGList{Words: []string{strings.Repeat("語", kaiwa.MaxNGWordLen)}}); err != nil {
		t.Fatalf("an entry of %d characters: %v", kaiwa.MaxNGWordLen, err)
	}

	for _, op := range []func() error{
		func() error { _, err := s.NGList(ctx, "nosuch"); return err },
		func() error { _, err := s.PutNGList(ctx, "nosuch", kaiwa.NGList{Words: []string{"x"}}); return err },
		func() error { _, err := s.AddNGWords(ctx, "nosuch", kaiwa.NGList{Words: []string{"x"}}); return err },
		func() error { _, err := s.DeleteNGWord(ctx, "nosuch", "x"); return err },
	} {
		wantCode(t, op(), kaiwa.CodeNotFound)
	}
	_, err = s.NGList(ctx, "bad id")
	wantCode(t, err, kaiwa.CodeBadRequest)
}

func TestNGListLimit(t *testing.T) {
	t.Parallel()
	s := newStore(t)
	ctx := context.Background()
	newTenant(t, s, "a")
	full := kaiwa.NGList{Words: make([]string, kaiwa.MaxNGWords-10), Allow: make([]string, 10)}
	for i := range full.Words {
		full.Words[i] = fmt.Sprintf("word%06d", i)
	}
	for i := range full.Allow {
		full.Allow[i] = fmt.Sprintf("allow%d", i)
	}
	got, err := s.PutNGList(ctx, "a", full)
	must(t, err)
	if len(got.Words)+len(got.Allow) != kaiwa.MaxNGWords {
		t.Fatalf("stored %d entries", len(got.Words)+len(got.Allow))
	}
	// A new entry is one too many, and changes nothing; adding entries
	// already there is fine.
	_, err = s.AddNGWords(ctx, "a", kaiwa.NGList{Policy: kaiwa.NGMask, Words: []string{"one more"}})
	wantCode(t, err, kaiwa.CodeBadRequest)
	got, err = s.AddNGWords(ctx, "a", kaiwa.NGList{Words: full.Words[:5], Allow: full.Allow[:1]})
	if err != nil || len(got.Words) != len(full.Words) || len(got.Allow) != len(full.Allow) || got.Policy != kaiwa.NGReject {
		t.Fatalf("adding present entries to a full list: %d words, %d allowed, policy %q, %v",
			len(got.Words), len(got.Allow), got.Policy, err)
	}
}

func TestNGListsAreIsolatedByTenant(t *testing.T) {
	t.Parallel()
	s := newStore(t)
	ctx := context.Background()
	newTenant(t, s, "a")
	newTenant(t, s, "b")
	aList, err := s.PutNGList(ctx, "a", kaiwa.NGList{Policy: kaiwa.NGMask, Words: []string{"secret", "shared"}, Allow: []string{"secretary"}})
	must(t, err)

	// b sees none of a's list or policy and cannot delete a's entries.
	bList, err := s.NGList(ctx, "b")
	if err != nil || len(bList.Words) != 0 || len(bList.Allow) != 0 || bList.Policy != kaiwa.NGReject {
		t.Fatalf("b's list = %#v, %v", bList, err)
	}
	_, err = s.DeleteNGWord(ctx, "b", "secret")
	wantCode(t, err, kaiwa.CodeNotFound)
	// b's changes stay in b, even with the same entries.
	_, err = s.AddNGWords(ctx, "b", kaiwa.NGList{Words: []string{"shared"}})
	must(t, err)
	_, err = s.DeleteNGWord(ctx, "b", "shared")
	must(t, err)
	_, err = s.PutNGList(ctx, "b", kaiwa.NGList{Policy: kaiwa.NGReject, Words: []string{"b-word"}})
	must(t, err)
	if got, err := s.NGList(ctx, "a"); err != nil || !reflect.DeepEqual(got, aList) {
		t.Fatalf("a's list after b's changes = %#v, %v", got, err)
	}
	if st, err := s.TenantSettings(ctx, "a"); err != nil || st.NGPolicy != kaiwa.NGMask {
		t.Fatalf("a's policy after b's changes: %+v, %v", st, err)
	}
}

func TestConcurrentNGChanges(t *testing.T) {
	t.Parallel()
	s := newStore(t)
	ctx := context.Background()
	newTenant(t, s, "a")
	var wg sync.WaitGroup
	for g := range 6 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range 10 {
				if _, err := s.AddNGWords(ctx, "a", kaiwa.NGList{Words: []string{fmt.Sprintf("g%d-%d", g, i), "common"}}); err != nil {
					t.Error(err)
					return
				}
			}
		}()
	}
	wg.Wait()
	l, err := s.NGList(ctx, "a")
	must(t, err)
	if len(l.Words) != 61 {
		t.Fatalf("%d words after concurrent additions, want 61", len(l.Words))
	}
}

// TestNGListsOfManyTenantsChangeAtOnce changes the lists of several tenants
// at the same time: none of them waits for, or deadlocks with, another.
func TestNGListsOfManyTenantsChangeAtOnce(t *testing.T) {
	t.Parallel()
	s := newStore(t)
	ctx := context.Background()
	var wg sync.WaitGroup
	for i := range 12 {
		id := kaiwa.TenantID(fmt.Sprintf("t%02d", i))
		newTenant(t, s, id)
		wg.Add(1)
		go func() {
			defer wg.Done()
			for j := range 15 {
				if _, err := s.PutNGList(ctx, id, kaiwa.NGList{Words: []string{fmt.Sprintf("w%d", j), "keep"}}); err != nil {
					t.Errorf("%s: replace: %v", id, err)
					return
				}
				if _, err := s.AddNGWords(ctx, id, kaiwa.NGList{Words: []string{"x"}, Policy: kaiwa.NGMask}); err != nil {
					t.Errorf("%s: add: %v", id, err)
					return
				}
				if _, err := s.DeleteNGWord(ctx, id, "x"); err != nil {
					t.Errorf("%s: delete: %v", id, err)
					return
				}
			}
		}()
	}
	wg.Wait()
}
