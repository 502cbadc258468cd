package auth

import (
	"bufio"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/nats-io/nkeys"

	"cellos-allinone/event"
)

// MaxPrincipals bounds an auth file: every request compares a token with
// every principal.
const MaxPrincipals = 10_000

// LineError is a line of the auth file that does not parse. It names the
// line and what is wrong, never the line's content: that may hold a secret.
type LineError struct {
	File string
	Line int
	Msg  string
}

func (e *LineError) Error() string {
	return fmt.Sprintf("%s line %d: %s", e.File, e.Line, e.Msg)
}

// ParseFile reads the auth file at path.
func ParseFile(path string) (*Set, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("auth file: %w", err)
	}
	defer f.Close()
	return Parse(f, path)
}

// Parse reads an auth file from r; name is the file's name in errors.
// Every line is checked: the first that does not parse is the error.
func Parse(r io.Reader, name string) (*Set, error) {
	s := &Set{byName: map[string]*Principal{}}
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 0, 4096), 64<<10)
	digests := map[[sha256.Size]byte]int{}
	n := 0
	for sc.Scan() {
		n++
		line := sc.Text()
		if n == 1 {
			line = strings.TrimPrefix(line, "\ufeff") // an editor's byte order mark
		}
		if i := strings.IndexByte(line, '#'); i >= 0 {
			line = line[:i]
		}
		fields := strings.Fields(line)
		if len(fields) == 0 {
			continue
		}
		fail := func(format string, args ...any) error {
			return &LineError{File: name, Line: n, Msg: fmt.Sprintf(format, args...)}
		}
		p, err := parseLine(fields, n)
		if err != nil {
			return nil, fail("%v", err)
		}
		if prev := s.byName[p.Name]; prev != nil {
			return nil, fail("principal %q is already defined on line %d", p.Name, prev.Line)
		}
		if p.kind == secretDigest {
			if prev, ok := digests[p.digest]; ok {
				return nil, fail("the same token or password as line %d: a token must name one principal", prev)
			}
			digests[p.digest] = n
		} else if prev := s.NKey(p.nkey); prev != nil {
			return nil, fail("the same NKey as line %d", prev.Line)
		}
		if len(s.list) == MaxPrincipals {
			return nil, fail("more than %d principals", MaxPrincipals)
		}
		s.list = append(s.list, p)
		s.byName[p.Name] = p
	}
	if err := sc.Err(); err != nil {
		if errors.Is(err, bufio.ErrTooLong) {
			return nil, &LineError{File: name, Line: n + 1, Msg: "longer than 64 KiB"}
		}
		return nil, fmt.Errorf("auth file %s: %w", name, err)
	}
	if len(s.list) == 0 {
		return nil, fmt.Errorf("auth file %s: no principal (one line each: <name> <secret> <role>[,<role>…] [<tenant>])", name)
	}
	return s, nil
}

// parseLine reads the fields of one line. Its errors never quote the
// secret.
func parseLine(fields []string, line int) (*Principal, error) {
	if len(fields) < 3 || len(fields) > 4 {
		return nil, fmt.Errorf("want <name> <secret> <role>[,<role>…] [<tenant>], got %d fields", len(fields))
	}
	p := &Principal{Name: fields[0], Line: line}
	if !validName(p.Name) {
		return nil, fmt.Errorf("name %q: 1–64 letters, digits, '-', '_', '.' or '@', not starting with '_' (reserved)", p.Name)
	}
	if err := p.setSecret(fields[1]); err != nil {
		return nil, err
	}
	for r := range strings.SplitSeq(fields[2], ",") {
		role, ok := roleOf(r)
		if !ok {
			return nil, fmt.Errorf("role %q: want admin, reader or publisher (several separated by commas)", r)
		}
		if p.Roles&role != 0 {
			return nil, fmt.Errorf("role %q given twice", r)
		}
		p.Roles |= role
	}
	if len(fields) == 4 {
		p.Tenant = fields[3]
		if !ValidTenant(p.Tenant) {
			return nil, fmt.Errorf("tenant %q: 1–%d letters, digits, '-' or '_', and not \"formation\" or \"cell\"", p.Tenant, event.MaxIDLen)
		}
		if p.Roles&Admin != 0 {
			return nil, errors.New("an admin sees every tenant and has none; give a tenant's principal reader and/or publisher")
		}
	}
	return p, nil
}

// setSecret reads the secret field.
func (p *Principal) setSecret(s string) error {
	switch {
	case strings.HasPrefix(s, "sha256:"):
		b, err := hex.DecodeString(s[len("sha256:"):])
		if err != nil || len(b) != sha256.Size {
			return errors.New("secret: sha256: must be followed by 64 hexadecimal digits (sha256sum of the token)")
		}
		p.kind = secretDigest
		copy(p.digest[:], b)
	case strings.HasPrefix(s, "nkey:"):
		pub := s[len("nkey:"):]
		if !nkeys.IsValidPublicUserKey(pub) {
			return errors.New("secret: nkey: must be followed by a NATS public user key (starting with U)")
		}
		p.kind, p.nkey = secretNKey, pub
	default:
		p.kind, p.literal = secretDigest, true
		p.digest = sha256.Sum256([]byte(s))
	}
	return nil
}

func roleOf(name string) (Role, bool) {
	for _, rn := range roleNames {
		if rn.name == name {
			return rn.role, true
		}
	}
	return 0, false
}

// validName: a NATS user name and a log field without quoting.
func validName(s string) bool {
	if s == "" || len(s) > 64 || s[0] == '_' {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-' || c == '_' || c == '.' || c == '@') {
			return false
		}
	}
	return true
}

// ValidTenant reports whether t can be a tenant: one subject token of an
// id's characters that is not an entity name (docs/design.md §2).
func ValidTenant(t string) bool {
	return event.ValidID(t) && t != "formation" && t != "cell"
}

// Digest is the sha256: form of a token, as the auth file takes it.
func Digest(token string) string {
	sum := sha256.Sum256([]byte(token))
	return "sha256:" + hex.EncodeToString(sum[:])
}
