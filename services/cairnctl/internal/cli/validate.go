package cli

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"

	"github.com/cairn-io/cairn/pkg/dag"
)

type validationJSON struct {
	File   string      `json:"file"`
	Valid  bool        `json:"valid"`
	Name   string      `json:"name,omitempty"`
	Tasks  int         `json:"tasks,omitempty"`
	Order  []string    `json:"order,omitempty"`
	Errors []errorJSON `json:"errors,omitempty"`
}

type errorJSON struct {
	Line    int    `json:"line,omitempty"`
	Column  int    `json:"column,omitempty"`
	Task    string `json:"task,omitempty"`
	Field   string `json:"field,omitempty"`
	Kind    string `json:"kind"`
	Message string `json:"message"`
	Text    string `json:"text"` // the compiler-style line
}

func cmdValidate(e *env, args []string) int {
	fs := newFlags(e, "validate")
	asJSON := fs.Bool("json", false, "print the result as JSON on stdout")
	files, err := parseFlags(fs, args)
	if err != nil {
		return flagError(err)
	}
	if len(files) == 0 {
		return usageError(e, "validate", "no file given")
	}
	code := ExitOK
	var out []validationJSON
	for _, f := range files {
		wf, err := loadWorkflow(f)
		res := validationJSON{File: f, Valid: err == nil}
		if err != nil {
			code = ExitFail
			res.Errors = errorsOf(f, err)
			if !*asJSON {
				for _, x := range res.Errors {
					fmt.Fprintln(e.stderr, x.Text)
				}
			}
		} else {
			res.Name, res.Tasks = wf.Name, len(wf.Tasks)
			for _, i := range wf.Graph.Order() {
				res.Order = append(res.Order, wf.Tasks[i].ID)
			}
			if !*asJSON {
				fmt.Fprintf(e.stdout, "%s: ok: workflow %q, %d tasks, critical path %d\n", f, wf.Name, len(wf.Tasks), wf.Graph.CriticalPathLength())
			}
		}
		out = append(out, res)
	}
	if *asJSON {
		enc := json.NewEncoder(e.stdout)
		enc.SetIndent("", "  ")
		_ = enc.Encode(map[string]any{"valid": code == ExitOK, "files": out})
	}
	return code
}

// loadWorkflow reads and parses a workflow file with the default limits.
func loadWorkflow(path string) (*dag.Workflow, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	return dag.Parse(path, data, dag.DefaultLimits())
}

func errorsOf(file string, err error) []errorJSON {
	var list dag.ErrorList
	if !errors.As(err, &list) {
		return []errorJSON{{Kind: "io", Message: err.Error(), Text: fmt.Sprintf("%s: %v", file, err)}}
	}
	out := make([]errorJSON, 0, len(list))
	for _, x := range list {
		kind := "invalid"
		switch {
		case errors.Is(x, dag.ErrSyntax):
			kind = "syntax"
		case errors.Is(x, dag.ErrLimit):
			kind = "limit"
		}
		out = append(out, errorJSON{Line: x.Line, Column: x.Column, Task: x.TaskID, Field: x.Field, Kind: kind, Message: x.Msg, Text: x.Error()})
	}
	return out
}
