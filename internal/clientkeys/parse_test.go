package clientkeys

import (
	"encoding/json"
	"errors"
	"strings"
	"testing"
	"time"
)

// Hashes of three keys that tests use; the keys are not secret.
var (
	hashA = Hash("kt-test-a")
	hashB = Hash("kt-test-b")
	hashC = Hash("kt-test-c")
)

func TestParseValid(t *testing.T) {
	data := `{"clients":[
		{"id":"kc_a","name":"ci","hash":"` + hashA + `","rps":2.5,"burst":10,"monthly_quota":1000,"created_at":"2026-12-04T10:00:00Z"},
		{"id":"kc_b","name":"billing","hash":"` + hashB + `","disabled":true}
	]}`
	l, err := Parse([]byte(data))
	if err != nil {
		t.Fatal(err)
	}
	if len(l.Clients) != 2 {
		t.Fatalf("got %d clients, want 2", len(l.Clients))
	}
	a := l.Clients[0]
	if a.ID != "kc_a" || a.Name != "ci" || a.Hash != hashA {
		t.Errorf("client 0 = %+v", a)
	}
	if a.RPS != 2.5 || a.Burst != 10 || a.MonthlyQuota != 1000 || a.Disabled {
		t.Errorf("client 0 limits = %+v", a)
	}
	if want := time.Date(2026, 12, 4, 10, 0, 0, 0, time.UTC); !a.Created.Equal(want) {
		t.Errorf("client 0 created = %v, want %v", a.Created, want)
	}
	if !l.Clients[1].Disabled {
		t.Error("client 1 is not disabled")
	}
}

func TestParseEmptyList(t *testing.T) {
	for _, data := range []string{`{"clients":[]}`, `{"clients":null}`, ` {"clients": [ ] } `} {
		l, err := Parse([]byte(data))
		if err != nil {
			t.Errorf("Parse(%s): %v", data, err)
			continue
		}
		if len(l.Clients) != 0 {
			t.Errorf("Parse(%s) has %d clients, want 0", data, len(l.Clients))
		}
	}
}

func TestParseErrors(t *testing.T) {
	client := func(fields string) string {
		return `{"clients":[{"id":"kc_ok","hash":"` + hashC + `"},{` + fields + `}]}`
	}
	okB := `"id":"kc_b","hash":"` + hashB + `"`
	tests := []struct {
		name string
		data string
		want []string // substrings of the error
	}{
		{"not JSON", `clients`, []string{"not a JSON object", "byte"}},
		{"empty", ``, []string{"not a JSON object"}},
		{"array", `[]`, []string{"not a JSON object", "must start with {"}},
		{"truncated", `{"clients":[`, []string{"ends too early"}},
		{"trailing data", `{"clients":[]} {}`, []string{"after the JSON object"}},
		{"clients missing", `{}`, []string{"field clients is missing"}},
		{"clients not array", `{"clients":{}}`, []string{"field clients must be a JSON array"}},
		{"clients repeated", `{"clients":[],"clients":[]}`, []string{`field "clients" appears more than once`}},
		{"clients case", `{"Clients":[]}`, []string{`field "Clients": write it as clients`}},
		{"client not object", `{"clients":[7]}`, []string{"client 0", "not a JSON object"}},
		{"id missing", client(`"hash":"` + hashB + `"`), []string{"client 1", "field id is missing"}},
		{"id empty", client(`"id":"","hash":"` + hashB + `"`), []string{"client 1", "field id is missing"}},
		{"id not string", client(`"id":5,"hash":"` + hashB + `"`), []string{"client 1", "field id must be a JSON string"}},
		{"id with space", client(`"id":"kc b","hash":"` + hashB + `"`), []string{"client 1", "field id", "visible ASCII"}},
		{"id too long", client(`"id":"` + strings.Repeat("k", 65) + `","hash":"` + hashB + `"`), []string{"client 1", "field id", "65 bytes"}},
		{"id repeated", client(okB + `,"id":"kc_c"`), []string{"client 1", `field "id" appears more than once`}},
		{"id case", client(okB + `,"ID":"kc_c"`), []string{"client 1", `field "ID": write it as id`}},
		{"hash missing", client(`"id":"kc_b"`), []string{"client 1 (id kc_b)", "field hash is missing"}},
		{"hash uppercase", client(`"id":"kc_b","hash":"` + strings.ToUpper(hashB) + `"`), []string{"kc_b", "field hash is not"}},
		{"hash other algorithm", client(`"id":"kc_b","hash":"md5:` + hashB[7:] + `"`), []string{"kc_b", "field hash is not"}},
		{"hash short", client(`"id":"kc_b","hash":"` + hashB[:60] + `"`), []string{"kc_b", "field hash is not"}},
		{"hash not string", client(`"id":"kc_b","hash":true`), []string{"kc_b", "field hash must be a JSON string"}},
		{"rps negative", client(okB + `,"rps":-1`), []string{"kc_b", "field rps is negative (-1)"}},
		{"rps string", client(okB + `,"rps":"5"`), []string{"kc_b", "field rps must be a number"}},
		{"burst negative", client(okB + `,"burst":-2`), []string{"kc_b", "field burst is negative (-2)"}},
		{"burst fraction", client(okB + `,"burst":1.5`), []string{"kc_b", "field burst must be a whole number"}},
		{"quota negative", client(okB + `,"monthly_quota":-3`), []string{"kc_b", "field monthly_quota is negative (-3)"}},
		{"quota too large", client(okB + `,"monthly_quota":1e30`), []string{"kc_b", "field monthly_quota must be a whole number"}},
		{"disabled string", client(okB + `,"disabled":"yes"`), []string{"kc_b", "field disabled must be true or false"}},
		{"created bad", client(okB + `,"created_at":"yesterday"`), []string{"kc_b", "field created_at must be an RFC 3339 time"}},
		{"name control", client(okB + `,"name":"a\u0007b"`), []string{"kc_b", "field name", "non-printable"}},
		{"name spaces", client(okB + `,"name":" ci"`), []string{"kc_b", "field name", "starts or ends with a space"}},
		{"name too long", client(okB + `,"name":"` + strings.Repeat("n", 65) + `"`), []string{"kc_b", "field name", "65 characters"}},
		{"duplicate id", client(`"id":"kc_ok","hash":"` + hashB + `"`), []string{"clients 0 and 1", "same id kc_ok"}},
		{"duplicate hash", client(`"id":"kc_b","hash":"` + hashC + `"`), []string{"clients kc_ok and kc_b", "same hash"}},
		{"duplicate name", `{"clients":[{"id":"kc_a","name":"ci","hash":"` + hashA + `"},{"id":"kc_b","name":"ci","hash":"` + hashB + `"}]}`,
			[]string{"clients kc_a and kc_b", `same name "ci"`}},
		{"name is other id", `{"clients":[{"id":"kc_a","hash":"` + hashA + `"},{"id":"kc_b","name":"kc_a","hash":"` + hashB + `"}]}`,
			[]string{"client kc_b", `name "kc_a"`, "id of client 0"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Parse([]byte(tt.data))
			if err == nil {
				t.Fatal("Parse succeeded, want an error")
			}
			if !errors.Is(err, ErrMalformed) {
				t.Errorf("error %q does not match ErrMalformed", err)
			}
			for _, want := range tt.want {
				if !strings.Contains(err.Error(), want) {
					t.Errorf("error %q does not contain %q", err, want)
				}
			}
			assertNoHash(t, err.Error())
		})
	}
}

// assertNoHash fails if text quotes any hash the tests use.
func assertNoHash(t *testing.T, text string) {
	t.Helper()
	for _, h := range []string{hashA, hashB, hashC} {
		if strings.Contains(strings.ToLower(text), h[len("sha256:"):len("sha256:")+16]) {
			t.Errorf("text quotes a hash: %s", text)
		}
	}
}

func TestEncodeRoundTrip(t *testing.T) {
	created := time.Date(2026, 12, 4, 10, 0, 0, 0, time.UTC)
	l := List{Clients: []Client{
		{ID: "kc_a", Name: "ci", Hash: hashA, RPS: 0.5, Burst: 3, MonthlyQuota: 99, Created: created},
		{ID: "kc_b", Hash: hashB, Disabled: true},
	}}
	data, err := l.Encode()
	if err != nil {
		t.Fatal(err)
	}
	got, err := Parse(data)
	if err != nil {
		t.Fatalf("Parse(Encode()): %v\n%s", err, data)
	}
	if len(got.Clients) != 2 {
		t.Fatalf("got %d clients, want 2", len(got.Clients))
	}
	for i := range l.Clients {
		want, have := l.Clients[i], got.Clients[i]
		if want.ID != have.ID || want.Name != have.Name || want.Hash != have.Hash || want.RPS != have.RPS ||
			want.Burst != have.Burst || want.MonthlyQuota != have.MonthlyQuota || want.Disabled != have.Disabled ||
			!want.Created.Equal(have.Created) {
			t.Errorf("client %d = %+v, want %+v", i, have, want)
		}
	}
}

func TestEncodeEmpty(t *testing.T) {
	data, err := List{}.Encode()
	if err != nil {
		t.Fatal(err)
	}
	if string(data) != `{"clients":[]}` {
		t.Errorf("Encode() = %s, want {\"clients\":[]}", data)
	}
}

func TestEncodeKeepsUnknownFields(t *testing.T) {
	data := `{"version":2,"clients":[{"id":"kc_a","hash":"` + hashA + `","team":{"name":"infra"},"tags":["x"]}],"shared_engine":"redis"}`
	l, err := Parse([]byte(data))
	if err != nil {
		t.Fatal(err)
	}
	l.Clients = append(l.Clients, Client{ID: "kc_b", Name: "new", Hash: hashB})
	out, err := l.Encode()
	if err != nil {
		t.Fatal(err)
	}
	var top map[string]json.RawMessage
	if err := json.Unmarshal(out, &top); err != nil {
		t.Fatal(err)
	}
	if string(top["version"]) != "2" || string(top["shared_engine"]) != `"redis"` {
		t.Errorf("top-level unknown fields lost: %s", out)
	}
	var clients []map[string]json.RawMessage
	if err := json.Unmarshal(top["clients"], &clients); err != nil {
		t.Fatal(err)
	}
	if string(clients[0]["team"]) != `{"name":"infra"}` || string(clients[0]["tags"]) != `["x"]` {
		t.Errorf("client unknown fields lost: %s", out)
	}
	if _, ok := clients[1]["team"]; ok {
		t.Errorf("a new client got another client's unknown field: %s", out)
	}
}

func TestEncodeRejectsInvalid(t *testing.T) {
	tests := []struct {
		name string
		list List
		want string
	}{
		{"no id", List{Clients: []Client{{Hash: hashA}}}, "field id is missing"},
		{"no hash", List{Clients: []Client{{ID: "kc_a"}}}, "field hash is missing"},
		{"negative rps", List{Clients: []Client{{ID: "kc_a", Hash: hashA, RPS: -1}}}, "field rps is negative"},
		{"same name", List{Clients: []Client{{ID: "kc_a", Name: "x", Hash: hashA}, {ID: "kc_b", Name: "x", Hash: hashB}}}, "same name"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := tt.list.Encode()
			if err == nil {
				t.Fatal("Encode succeeded, want an error")
			}
			if !errors.Is(err, ErrMalformed) {
				t.Errorf("error %q does not match ErrMalformed", err)
			}
			if !strings.Contains(err.Error(), tt.want) {
				t.Errorf("error %q does not contain %q", err, tt.want)
			}
		})
	}
}

func TestCheckName(t *testing.T) {
	valid := []string{"ci", "billing service", "équipe-données", strings.Repeat("n", MaxNameLen), "a.b_c/d"}
	for _, name := range valid {
		if err := CheckName(name); err != nil {
			t.Errorf("CheckName(%q): %v", name, err)
		}
	}
	invalid := map[string]string{
		"":                           "is empty",
		"a\tb":                       "non-printable",
		"a\nb":                       "non-printable",
		"x\u200b":                    "non-printable",
		"ci ":                        "starts or ends with a space",
		strings.Repeat("é", 65):      "65 characters",
		string([]byte{0xff, 'a'}):    "not valid UTF-8",
		strings.Repeat("n", 100):     "100 characters",
		"\u00a0nbsp":                 "starts or ends with a space",
		"line\u2028separator inside": "non-printable",
	}
	for name, want := range invalid {
		err := CheckName(name)
		if err == nil {
			t.Errorf("CheckName(%q) = nil, want an error", name)
			continue
		}
		if !strings.Contains(err.Error(), want) {
			t.Errorf("CheckName(%q) = %q, want it to contain %q", name, err, want)
		}
	}
}
