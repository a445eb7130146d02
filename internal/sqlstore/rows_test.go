package sqlstore

import (
	"context"
	"fmt"
	"path/filepath"
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

// TestStatementShapes: multi-row statements and IN lists come in few
// lengths, so that the SQLite writer's statements stay prepared; chunks
// still cover every row exactly once and lists hold every value.
func TestStatementShapes(t *testing.T) {
	shapes := map[int]bool{}
	for n := 1; n <= 3*rowsPerStatement; n++ {
		rows := make([]int, n)
		for i := range rows {
			rows[i] = i
		}
		next := 0
		for c := range chunks(sqliteDialect{}, rows) {
			if len(c) == 0 || c[0] != next {
				t.Fatalf("%d rows: a chunk of %d starts at row %v, want %d", n, len(c), c, next)
			}
			shapes[len(c)] = true
			next += len(c)
		}
		if next != n {
			t.Fatalf("%d rows: chunks cover %d", n, next)
		}
		if p := padLen(n); p < n || p >= 2*n || p&(p-1) != 0 {
			t.Fatalf("padLen(%d) = %d, want the next power of two", n, p)
		}
	}
	if len(shapes) > 10 {
		t.Fatalf("%d statement lengths, want at most 10", len(shapes))
	}
	// PostgreSQL: one statement per rowsPerStatement rows (a round trip
	// each), the rest in one.
	var pg []int
	for c := range chunks(postgresDialect{}, make([]int, 2*rowsPerStatement+37)) {
		pg = append(pg, len(c))
	}
	if want := []int{rowsPerStatement, rowsPerStatement, 37}; fmt.Sprint(pg) != fmt.Sprint(want) {
		t.Fatalf("PostgreSQL chunks %v, want %v", pg, want)
	}
	if padLen(0) != 0 || padLen(1) != 1 {
		t.Fatalf("padLen(0), padLen(1) = %d, %d", padLen(0), padLen(1))
	}
}

// TestSQLiteStatementsStayPrepared: a statement write transactions run is
// parsed by the first two only; later ones reuse it. An IN list padded to
// its shape's length matches each row once.
func TestSQLiteStatementsStayPrepared(t *testing.T) {
	ctx := context.Background()
	db, err := Open(ctx, Config{Path: filepath.Join(t.TempDir(), "custos.db")})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	if _, err := db.wr().ExecContext(ctx, `CREATE TABLE t (v TEXT)`); err != nil {
		t.Fatal(err)
	}
	vals := []string{"a", "b", "c", "d", "e"}
	insert := func(tx querier) error {
		rows := make([][]any, len(vals))
		for i, v := range vals {
			rows[i] = []any{v}
		}
		return execRows(ctx, tx, db.dialect, "t", []string{"v"}, rows, "")
	}
	count := func(tx querier) (int, error) {
		cond, args := inSet(db.dialect, "v", 1, "text", []string{"a", "c", "e"})
		var n int
		err := tx.QueryRowContext(ctx, `SELECT count(*) FROM t WHERE `+cond, args...).Scan(&n)
		return n, err
	}
	for round := range 4 {
		before := db.stmts.txPrepares.Load()
		var n int
		err := db.tx(ctx, func(tx querier) error {
			if err := insert(tx); err != nil {
				return err
			}
			var err error
			n, err = count(tx)
			return err
		})
		if err != nil {
			t.Fatal(err)
		}
		if want := 3 * (round + 1); n != want {
			t.Fatalf("round %d: %d rows matched, want %d", round, n, want)
		}
		// Seen twice, a statement is kept: from the third transaction on,
		// nothing is parsed.
		parsed := db.stmts.txPrepares.Load() - before
		switch {
		case round < 2 && parsed == 0:
			t.Fatalf("transaction %d parsed nothing: the counter is not wired", round+1)
		case round >= 2 && parsed != 0:
			t.Fatalf("transaction %d parsed %d statements again", round+1, parsed)
		}
	}
	// A statement that cannot be prepared still fails its transaction.
	err = db.tx(ctx, func(tx querier) error {
		_, err := tx.ExecContext(ctx, `INSERT INTO nowhere VALUES (1)`)
		return err
	})
	if err == nil {
		t.Fatal("a statement on a missing table succeeded")
	}
}
