// promql-names parses PromQL expressions with Prometheus's own parser (promql/parser, the module
// version pinned in ../go.mod) and reports, for each, the parse error or the series selectors it holds.
//
// Input on stdin: a JSON array of expressions. Output on stdout: a JSON array, one object per input:
// {"error": "..."} or {"selectors": [{"metric": "name", "matchers": ["job=~\"$job\"", ...]}, ...]}
// (the metric name also for a selector spelt {__name__="..."}; its matchers besides __name__).
// Exit 0 unless the input is not JSON. The routectl tests use it to check every dashboard and alert
// expression (tests/monitoring/prom.py).
package main

import (
	"encoding/json"
	"fmt"
	"os"

	"github.com/prometheus/prometheus/model/labels"
	"github.com/prometheus/prometheus/promql/parser"
)

type selector struct {
	Metric   string   `json:"metric"`
	Matchers []string `json:"matchers"`
}

type result struct {
	Error     string     `json:"error,omitempty"`
	Selectors []selector `json:"selectors,omitempty"`
}

func selectors(expr parser.Expr) []selector {
	found := []selector{}
	parser.Inspect(expr, func(node parser.Node, _ []parser.Node) error {
		vs, ok := node.(*parser.VectorSelector)
		if !ok {
			return nil
		}
		s := selector{Metric: vs.Name, Matchers: []string{}}
		for _, m := range vs.LabelMatchers {
			if m.Name == "__name__" {
				if m.Type == labels.MatchEqual {
					s.Metric = m.Value
				}
				continue
			}
			s.Matchers = append(s.Matchers, m.String())
		}
		found = append(found, s)
		return nil
	})
	return found
}

func main() {
	var exprs []string
	if err := json.NewDecoder(os.Stdin).Decode(&exprs); err != nil {
		fmt.Fprintf(os.Stderr, "promql-names: stdin is not a JSON array of strings: %v\n", err)
		os.Exit(2)
	}
	p := parser.NewParser(parser.Options{})
	results := make([]result, 0, len(exprs))
	for _, text := range exprs {
		expr, err := p.ParseExpr(text)
		if err != nil {
			results = append(results, result{Error: err.Error()})
			continue
		}
		results = append(results, result{Selectors: selectors(expr)})
	}
	if err := json.NewEncoder(os.Stdout).Encode(results); err != nil {
		fmt.Fprintf(os.Stderr, "promql-names: %v\n", err)
		os.Exit(1)
	}
}
