package sqlstore

import (
	"fmt"
	"strings"
	"testing"
)

// TestRowsOf: every VALUES list, cached prefix or built whole, numbers its
// placeholders row by row from $1.
func TestRowsOf(t *testing.T) {
	for _, cols := range []int{1, 3, 9} {
		for _, n := range []int{1, 2, 7, rowsPerStatement - 1, rowsPerStatement, rowsPerStatement + 1} {
			var rows []string
			for r := range n {
				var ph []string
				for c := range cols {
					ph = append(ph, fmt.Sprintf("$%d", r*cols+c+1))
				}
				rows = append(rows, "("+strings.Join(ph, ", ")+")")
			}
			want := strings.Join(rows, ", ")
			for range 2 { // built, then cached
				if got := rowsOf(n, cols); got != want {
					t.Fatalf("rowsOf(%d, %d) = %.60q..., want %.60q...", n, cols, got, want)
				}
			}
		}
	}
}
