package clientkeys

import (
	"strings"
	"testing"
)

func testList(t *testing.T, n int) (List, []string) {
	t.Helper()
	var l List
	var keys []string
	for i := range n {
		key, hash, err := NewKey()
		if err != nil {
			t.Fatal(err)
		}
		id, err := NewClientID()
		if err != nil {
			t.Fatal(err)
		}
		l.Clients = append(l.Clients, Client{ID: id, Name: "client-" + string(rune('a'+i)), Hash: hash, Disabled: i == 1})
		keys = append(keys, key.Reveal())
	}
	return l, keys
}

func TestLookupFindsClient(t *testing.T) {
	l, keys := testList(t, 5)
	ix := NewIndex(l)
	if ix.Len() != 5 {
		t.Fatalf("Len = %d, want 5", ix.Len())
	}
	for i, key := range keys {
		c, ok := ix.Lookup(key)
		if !ok {
			t.Errorf("key %d not found", i)
			continue
		}
		if c.ID != l.Clients[i].ID {
			t.Errorf("key %d found client %s, want %s", i, c.ID, l.Clients[i].ID)
		}
	}
}

func TestLookupReturnsDisabled(t *testing.T) {
	l, keys := testList(t, 3)
	c, ok := NewIndex(l).Lookup(keys[1])
	if !ok {
		t.Fatal("disabled client's key not found")
	}
	if !c.Disabled {
		t.Error("Lookup lost the Disabled flag")
	}
}

func TestLookupRejectsNearMiss(t *testing.T) {
	l, keys := testList(t, 3)
	ix := NewIndex(l)
	key := keys[0]
	last := key[len(key)-1]
	flipped := byte('A')
	if last == 'A' {
		flipped = 'B'
	}
	misses := []string{
		key[:len(key)-1] + string(flipped),
		key[:len(key)-1],
		key + "x",
		" " + key,
		strings.ToUpper(key),
		strings.TrimPrefix(key, Prefix),
		"",
		l.Clients[0].Hash,
	}
	for _, m := range misses {
		if c, ok := ix.Lookup(m); ok {
			t.Errorf("near miss matched client %s", c.ID)
		}
	}
}

func TestLookupEmptyAndNil(t *testing.T) {
	if _, ok := NewIndex(List{}).Lookup("kt-anything"); ok {
		t.Error("empty index matched a key")
	}
	var ix *Index
	if _, ok := ix.Lookup("kt-anything"); ok {
		t.Error("nil index matched a key")
	}
	if ix.Len() != 0 {
		t.Error("nil index has entries")
	}
}

func TestNewIndexSkipsMalformedHash(t *testing.T) {
	l := List{Clients: []Client{{ID: "kc_a", Hash: "sha256:zz"}, {ID: "kc_b", Hash: Hash("kt-b")}}}
	ix := NewIndex(l)
	if ix.Len() != 1 {
		t.Fatalf("Len = %d, want 1", ix.Len())
	}
	if c, ok := ix.Lookup("kt-b"); !ok || c.ID != "kc_b" {
		t.Errorf("Lookup(kt-b) = %v, %v; want kc_b", c.ID, ok)
	}
}

func TestLookupAllocations(t *testing.T) {
	l, keys := testList(t, 50)
	ix := NewIndex(l)
	key := keys[17]
	allocs := testing.AllocsPerRun(100, func() {
		if _, ok := ix.Lookup(key); !ok {
			t.Fatal("key not found")
		}
	})
	if allocs != 0 {
		t.Errorf("Lookup allocates %v times per call, want 0", allocs)
	}
}

func BenchmarkLookup(b *testing.B) {
	var l List
	var key string
	for i := range 1000 {
		k, hash, err := NewKey()
		if err != nil {
			b.Fatal(err)
		}
		l.Clients = append(l.Clients, Client{ID: "kc_" + string(rune('a'+i%26)) + strings.Repeat("x", i/26), Hash: hash})
		key = k.Reveal()
	}
	ix := NewIndex(l)
	b.ReportAllocs()
	for b.Loop() {
		ix.Lookup(key)
	}
}
