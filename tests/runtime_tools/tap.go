// Package tap writes Test Anything Protocol (TAP version 13) reports.
//
// The OCI runtime-tools validation programs import "github.com/mndrix/tap-go",
// which no Debian package ships; tests/runtimetools.py puts this file in its
// place when it builds them. It has the methods they call, with the output
// format of TAP 13 (https://testanything.org/tap-version-13-specification.html):
//
//	TAP version 13
//	1..2
//	ok 1 - first check
//	not ok 2 - second check
//	  ---
//	  {"reference": "..."}
//	  ...
package tap

import (
	"encoding/json"
	"fmt"
	"io"
	"os"
	"strings"
)

// T numbers the test points of one report and writes them to Writer (stdout if nil).
type T struct {
	next *int

	// TODO marks the next points as "# TODO" (a failure there is not a failure of the report).
	TODO bool

	Writer io.Writer
}

// New starts a report at test point 1.
func New() *T {
	first := 1
	return &T{next: &first}
}

func (t *T) printf(format string, a ...interface{}) {
	w := t.Writer
	if w == nil {
		w = os.Stdout
	}
	fmt.Fprintf(w, format, a...)
}

// Header writes the version line and, if count > 0, the plan "1..count".
func (t *T) Header(count int) {
	t.printf("TAP version 13\n")
	if count > 0 {
		t.printf("1..%d\n", count)
	}
}

// Ok writes one test point: "ok N - description" or "not ok N - description".
func (t *T) Ok(passed bool, description string) {
	verdict := "ok"
	if !passed {
		verdict = "not ok"
	}
	if t.TODO {
		t.printf("%s %d # TODO %s\n", verdict, *t.next, description)
	} else {
		t.printf("%s %d - %s\n", verdict, *t.next, description)
	}
	*t.next++
}

// Pass writes a passing test point.
func (t *T) Pass(description string) { t.Ok(true, description) }

// Fail writes a failing test point.
func (t *T) Fail(description string) { t.Ok(false, description) }

// Count is the number of test points written so far.
func (t *T) Count() int { return *t.next - 1 }

// AutoPlan writes the plan "1..N" for the points written so far (the plan may come last).
func (t *T) AutoPlan() { t.printf("1..%d\n", t.Count()) }

// Todo returns a copy of t whose points are marked TODO; both share the numbering.
func (t *T) Todo() *T {
	todo := *t
	todo.TODO = true
	return &todo
}

// Skip writes count skipped points.
func (t *T) Skip(count int, description string) {
	for i := 0; i < count; i++ {
		t.printf("ok %d # SKIP %s\n", *t.next, description)
		*t.next++
	}
}

func comment(s string) string {
	return strings.ReplaceAll(strings.TrimRight(s, "\n"), "\n", "\n# ")
}

// Diagnostic writes a message as "# " comment lines.
func (t *T) Diagnostic(message string) { t.printf("# %s\n", comment(message)) }

// Diagnosticf writes a formatted message as "# " comment lines.
func (t *T) Diagnosticf(format string, a ...interface{}) { t.Diagnostic(fmt.Sprintf(format, a...)) }

// YAML writes value as an indented YAML block of the previous point (JSON is YAML 1.2).
func (t *T) YAML(value interface{}) error {
	data, err := json.MarshalIndent(value, "  ", "  ")
	if err != nil {
		return err
	}
	t.printf("  ---\n  %s\n  ...\n", data)
	return nil
}
