package auth

import (
	"errors"
	"strings"
	"testing"

	"github.com/nats-io/nkeys"
)

func mustParse(t *testing.T, text string) *Set {
	t.Helper()
	s, err := Parse(strings.NewReader(text), "auth")
	if err != nil {
		t.Fatalf("Parse: %v", err)
	}
	return s
}

func TestParseAndLookUp(t *testing.T) {
	kp, err := nkeys.CreateUser()
	if err != nil {
		t.Fatal(err)
	}
	pub, _ := kp.PublicKey()
	s := mustParse(t, "\ufeff# a three-tenant site\n"+
		"ops   "+Digest("ops-token")+"  admin\n"+
		"\n"+
		"acme-ui   acme-read-secret   reader            acme   # the dashboard\n"+
		"acme-sup  "+Digest("acme-pub")+"  publisher,reader  acme\n"+
		"globex-sup nkey:"+pub+" publisher globex\n")
	if got := len(s.Principals()); got != 4 {
		t.Fatalf("principals = %d, want 4", got)
	}
	for _, tc := range []struct {
		token, name string
	}{{"ops-token", "ops"}, {"acme-read-secret", "acme-ui"}, {"acme-pub", "acme-sup"}, {"nope", ""}, {"", ""}, {pub, ""}} {
		p := s.Bearer(tc.token)
		got := ""
		if p != nil {
			got = p.Name
		}
		if got != tc.name {
			t.Errorf("Bearer(%q) = %q, want %q", tc.token, got, tc.name)
		}
	}
	if p := s.Password("acme-sup", "acme-pub"); p == nil || p.Tenant != "acme" || !p.Can(Publisher) || !p.Can(Reader) || p.Can(Admin) {
		t.Errorf("Password(acme-sup) = %+v", p)
	}
	if p := s.Password("acme-ui", "acme-pub"); p != nil {
		t.Errorf("Password(acme-ui, another's token) = %+v, want nil", p)
	}
	if p := s.NKey(pub); p == nil || p.Name != "globex-sup" || p.HasToken() {
		t.Errorf("NKey = %+v", p)
	}
	if p := s.Lookup("ops"); !p.Can(Reader) || !p.Can(Publisher) || !p.Can(Admin) {
		t.Errorf("admin %+v cannot do everything", p)
	}
	if !s.HoldsSecrets() || mustParse(t, "a "+Digest("x")+" reader\n").HoldsSecrets() {
		t.Errorf("HoldsSecrets: a file with a literal token must say so, one of digests must not")
	}
	if got := strings.Join(s.Tenants(), ","); got != "acme,globex" {
		t.Errorf("Tenants = %q", got)
	}
	if got := s.Lookup("acme-sup").Roles.String(); got != "reader,publisher" && got != "publisher,reader" {
		t.Errorf("Roles.String = %q", got)
	}
}

// A bad line is named by number and what is wrong, never by its content.
func TestParseErrorsNameTheLine(t *testing.T) {
	for _, tc := range []struct{ text, want string }{
		{"a s3cret-value\n", "line 1: want <name>"},
		{"a s3cret-value reader t x\n", "line 1: want <name>"},
		{"# c\na s3cret-value owner\n", "line 2: role \"owner\""},
		{"a s3cret-value reader,reader\n", "line 1: role \"reader\" given twice"},
		{"_x s3cret-value reader\n", "line 1: name \"_x\""},
		{"a sha256:abc reader\n", "line 1: secret: sha256:"},
		{"a nkey:NOTAKEY reader\n", "line 1: secret: nkey:"},
		{"a s3cret-value reader cell\n", "line 1: tenant \"cell\""},
		{"a s3cret-value reader a.b\n", "line 1: tenant \"a.b\""},
		{"a s3cret-value admin acme\n", "line 1: an admin"},
		{"a s3cret-value reader\na other-value reader\n", "line 2: principal \"a\" is already defined on line 1"},
		{"a s3cret-value reader\nb s3cret-value reader\n", "line 2: the same token"},
		{"a s3cret-value reader\nb " + Digest("s3cret-value") + " reader\n", "line 2: the same token"},
		{"# only comments\n\n", "no principal"},
	} {
		_, err := Parse(strings.NewReader(tc.text), "auth")
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("Parse(%q) = %v, want an error containing %q", tc.text, err, tc.want)
			continue
		}
		if strings.Contains(err.Error(), "s3cret-value") || strings.Contains(err.Error(), "other-value") {
			t.Errorf("Parse(%q) error %q quotes a secret", tc.text, err)
		}
		var le *LineError
		if !strings.Contains(tc.want, "no principal") && !errors.As(err, &le) {
			t.Errorf("Parse(%q) error %T, want *LineError", tc.text, err)
		}
	}
}

// Changed lists exactly the principals whose connections a reload ends.
func TestChanged(t *testing.T) {
	old := mustParse(t, "a tok-a reader acme\nb tok-b publisher acme\nc tok-c reader globex\nd tok-d admin\n")
	next := mustParse(t, "a tok-a reader acme\nb tok-b2 publisher acme\nc tok-c reader acme\nd tok-d reader\ne tok-e reader\n")
	if got := strings.Join(Changed(old, next), ","); got != "b,c,d" {
		t.Errorf("Changed = %q, want b,c,d", got)
	}
	if got := Changed(old, old); len(got) != 0 {
		t.Errorf("Changed(old, old) = %v", got)
	}
	if got := Changed(nil, next); len(got) != 0 {
		t.Errorf("Changed(nil, next) = %v", got)
	}
}

func FuzzParse(f *testing.F) {
	f.Add("a tok reader acme\nb sha256:" + strings.Repeat("ab", 32) + " admin\n")
	f.Add("x y z w v")
	f.Fuzz(func(t *testing.T, text string) {
		s, err := Parse(strings.NewReader(text), "auth")
		if err != nil {
			return
		}
		for _, p := range s.Principals() {
			if p.Roles == 0 || (p.Tenant != "" && (p.Roles&Admin != 0 || !ValidTenant(p.Tenant))) || s.Lookup(p.Name) != p {
				t.Fatalf("Parse(%q) gave %+v", text, p)
			}
		}
	})
}
