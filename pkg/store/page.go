package store

import (
	"bytes"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"fmt"
)

// Page sizes.
const (
	DefaultPageSize = 50
	MaxPageSize     = 500
)

// PageRequest asks for one page of a listing. Size 0 means DefaultPageSize; sizes above
// MaxPageSize are capped; negative sizes are rejected. Token is empty for the first page, or
// the NextToken of the previous page of the same query.
type PageRequest struct {
	Size  int
	Token string
}

func (p PageRequest) limit() (int, error) {
	switch {
	case p.Size < 0:
		return 0, invalidf("page size %d is negative", p.Size)
	case p.Size == 0:
		return DefaultPageSize, nil
	case p.Size > MaxPageSize:
		return MaxPageSize, nil
	}
	return p.Size, nil
}

// pageKey is the last key of a page. Tokens are opaque to clients: base64url of the JSON of
// this key followed by a checksum over it. The checksum is not a secret (tokens are not
// authenticated, only integrity-checked): it rejects corrupted or hand-edited tokens, and
// Query binds a token to the listing and filter it came from.
type pageKey struct {
	Query string `json:"q"`           // listing + filter, e.g. "runs|wf=etl|state="
	Micro int64  `json:"t,omitempty"` // created_at in Unix microseconds
	ID    string `json:"id,omitempty"`
	N     int64  `json:"n,omitempty"`
}

const tokenSumLen = 8

func tokenSum(payload []byte) []byte {
	h := sha256.New()
	h.Write([]byte("cairn page token v1\x00"))
	h.Write(payload)
	return h.Sum(nil)[:tokenSumLen]
}

func encodeToken(k pageKey) string {
	payload, err := json.Marshal(k)
	if err != nil { // cannot happen: plain fields
		panic(fmt.Sprintf("encode page token: %v", err))
	}
	return base64.RawURLEncoding.EncodeToString(append(payload, tokenSum(payload)...))
}

// decodeToken returns the key of token, nil for the empty token, or ErrInvalidPageToken.
func decodeToken(token, query string) (*pageKey, error) {
	if token == "" {
		return nil, nil
	}
	raw, err := base64.RawURLEncoding.DecodeString(token)
	if err != nil || len(raw) <= tokenSumLen {
		return nil, fmt.Errorf("%w: not a token of this API", ErrInvalidPageToken)
	}
	payload, sum := raw[:len(raw)-tokenSumLen], raw[len(raw)-tokenSumLen:]
	if !bytes.Equal(sum, tokenSum(payload)) {
		return nil, fmt.Errorf("%w: checksum mismatch (token corrupted or edited)", ErrInvalidPageToken)
	}
	var k pageKey
	dec := json.NewDecoder(bytes.NewReader(payload))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&k); err != nil {
		return nil, fmt.Errorf("%w: %v", ErrInvalidPageToken, err)
	}
	if k.Query != query {
		return nil, fmt.Errorf("%w: token belongs to another listing or filter", ErrInvalidPageToken)
	}
	return &k, nil
}
