package warehouse

import (
	"context"
	"errors"
	"fmt"

	"github.com/jackc/pgx/v5/pgconn"

	"github.com/custos-cdp/custos/internal/forward"
)

// classify turns a database failure into a SendError: retryable unless the
// database refused the batch's content. The message names the operation
// and the SQLSTATE, never a value: a PostgreSQL message can quote one.
func classify(op string, err error) *forward.SendError {
	var pgErr *pgconn.PgError
	if errors.As(err, &pgErr) {
		msg := fmt.Sprintf("%s failed: the warehouse answered SQLSTATE %s", op, pgErr.Code)
		if contentFault(pgErr.Code) {
			return forward.Permanent(msg, err)
		}
		return forward.Retry(msg, err)
	}
	class := "connection failed"
	if pgconn.Timeout(err) || errors.Is(err, context.DeadlineExceeded) {
		class = "timeout"
	}
	return forward.Retry(op+" failed: no answer from the warehouse ("+class+")", err)
}

// contentFault reports whether a SQLSTATE says the batch itself is at
// fault, so that sending it again cannot succeed: data exceptions (22),
// integrity violations (23), program limits such as a row too large (54),
// and syntax or access rule violations (42) other than a missing
// privilege, which a grant can fix.
func contentFault(code string) bool {
	if code == "42501" {
		return false
	}
	switch code[:min(2, len(code))] {
	case "22", "23", "42", "54":
		return true
	}
	return false
}
