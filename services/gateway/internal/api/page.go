package api

import (
	"bytes"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
)

// Page tokens of the listings the gateway pages itself (workers from etcd, a task's attempts);
// the store's listings use the store's tokens. Same shape as the store's: base64url of a JSON
// key bound to its query, followed by a short checksum, so an edited or foreign token is
// rejected instead of silently restarting the listing.

type gwToken struct {
	Query string `json:"q"`
	After string `json:"a"`
}

const gwTokenSum = 8

func gwSum(payload []byte) []byte {
	h := sha256.Sum256(append([]byte("cairn gateway page token v1\x00"), payload...))
	return h[:gwTokenSum]
}

func encodePageToken(query, after string) string {
	payload, _ := json.Marshal(gwToken{Query: query, After: after})
	return base64.RawURLEncoding.EncodeToString(append(payload, gwSum(payload)...))
}

// decodePageToken returns the key after which the page starts ("" for the first page).
func decodePageToken(token, query string) (string, error) {
	if token == "" {
		return "", nil
	}
	raw, err := base64.RawURLEncoding.DecodeString(token)
	if err != nil || len(raw) <= gwTokenSum {
		return "", fieldError("page_token", "not a page token of this API")
	}
	payload, sum := raw[:len(raw)-gwTokenSum], raw[len(raw)-gwTokenSum:]
	if !bytes.Equal(sum, gwSum(payload)) {
		return "", fieldError("page_token", "checksum mismatch (token corrupted or edited)")
	}
	var k gwToken
	if err := json.Unmarshal(payload, &k); err != nil || k.Query != query {
		return "", fieldError("page_token", "token belongs to another listing or filter")
	}
	return k.After, nil
}

// pageSize validates a request's page_size and applies the default and the cap.
func (s *Server) pageSize(n int32) (int, error) {
	switch {
	case n < 0:
		return 0, fieldError("page_size", "must not be negative, got %d", n)
	case n == 0:
		return min(defaultPageSize, s.maxPage), nil
	case int(n) > s.maxPage:
		return s.maxPage, nil
	}
	return int(n), nil
}

// pageOf cuts items after the token's key: items must be sorted by key.
func pageOf[T any](items []T, key func(T) string, after string, size int, query string) ([]T, string) {
	start := 0
	for start < len(items) && after != "" && key(items[start]) <= after {
		start++
	}
	items = items[start:]
	if len(items) <= size {
		return items, ""
	}
	items = items[:size]
	return items, encodePageToken(query, key(items[size-1]))
}
