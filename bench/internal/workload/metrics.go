package workload

import (
	"bufio"
	"context"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"
)

// scrape reads the Prometheus text exposition at http://addr/metrics and returns the sum
// of every sample of each requested metric name (all label sets), e.g.
// "cairn_commit_duration_seconds_sum". A name with no sample is absent from the result.
func scrape(ctx context.Context, addr string, names ...string) (map[string]float64, error) {
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+addr+"/metrics", nil)
	if err != nil {
		return nil, err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return nil, fmt.Errorf("scrape %s: %w", addr, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("scrape %s: %s", addr, resp.Status)
	}
	want := make(map[string]bool, len(names))
	for _, n := range names {
		want[n] = true
	}
	out := make(map[string]float64)
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 64*1024), 1024*1024)
	for sc.Scan() {
		line := sc.Text()
		if line == "" || line[0] == '#' {
			continue
		}
		name, rest, _ := strings.Cut(line, " ")
		if i := strings.IndexByte(name, '{'); i >= 0 {
			name = name[:i]
			// labels may contain spaces: the value follows the closing brace
			if j := strings.LastIndexByte(line, '}'); j >= 0 {
				rest = strings.TrimSpace(line[j+1:])
			}
		}
		if !want[name] {
			continue
		}
		fields := strings.Fields(rest)
		if len(fields) == 0 {
			continue
		}
		v, err := strconv.ParseFloat(fields[0], 64)
		if err != nil {
			return nil, fmt.Errorf("scrape %s: %s: %w", addr, name, err)
		}
		out[name] += v
	}
	return out, sc.Err()
}

// commitStats are the leader's group-commit histograms (cairn.commit.*).
type commitStats struct {
	commits, groups, seconds float64
}

func leaderCommits(ctx context.Context, opsAddr string) (commitStats, error) {
	m, err := scrape(ctx, opsAddr, "cairn_commit_batch_groups_count", "cairn_commit_batch_groups_sum",
		"cairn_commit_duration_seconds_sum")
	if err != nil {
		return commitStats{}, err
	}
	return commitStats{commits: m["cairn_commit_batch_groups_count"], groups: m["cairn_commit_batch_groups_sum"],
		seconds: m["cairn_commit_duration_seconds_sum"]}, nil
}

func (a commitStats) minus(b commitStats) commitStats {
	return commitStats{a.commits - b.commits, a.groups - b.groups, a.seconds - b.seconds}
}
