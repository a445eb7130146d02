package sqlstore

import (
	"reflect"
	"testing"
)

func TestSQLiteRebind(t *testing.T) {
	tests := []struct {
		name     string
		q        string
		args     []any
		wantQ    string
		wantArgs []any
	}{
		{"no placeholders", "SELECT 1", nil, "SELECT 1", nil},
		{"in order", "a = $1 AND b = $2", []any{1, 2}, "a = ? AND b = ?", []any{1, 2}},
		{"reused", "(t < $1 OR (t = $1 AND s < $2))", []any{"t", "s"}, "(t < ? OR (t = ? AND s < ?))", []any{"t", "t", "s"}},
		{"out of order", "x = $2, y = $1", []any{1, 2}, "x = ?, y = ?", []any{2, 1}},
		{"multi-digit", "($9, $10, $11)", []any{1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11}, "(?, ?, ?)", []any{9, 10, 11}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			q, args := sqliteDialect{}.rebind(tt.q, tt.args)
			if q != tt.wantQ || !reflect.DeepEqual(args, tt.wantArgs) {
				t.Errorf("got %q %v, want %q %v", q, args, tt.wantQ, tt.wantArgs)
			}
		})
	}
}
