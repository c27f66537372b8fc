package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"sort"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/urfave/cli/v2"

	"github.com/arena-game/arena/hostctl"
	"github.com/arena-game/arena/internal/store"
)

func statusCommand() *cli.Command {
	return &cli.Command{
		Name:  "status",
		Usage: "print the fleet: from a running dispatcher's HTTP API, or from memcached with --memcache",
		Flags: []cli.Flag{
			stringFlag("url", "http://127.0.0.1:8080", "dispatcher HTTP base URL"),
			memcacheFlag(),
			storePrefixFlag(),
			boolFlag("json", "print the table as JSON"),
		},
		Action: func(c *cli.Context) error {
			t, err := fetchTable(c.Context, c.String("url"), c.String("memcache"), c.String("store-prefix"))
			if err != nil {
				return err
			}
			if c.Bool("json") {
				enc := json.NewEncoder(os.Stdout)
				enc.SetIndent("", "  ")
				return enc.Encode(t)
			}
			printTable(os.Stdout, t)
			return nil
		},
	}
}

func fetchTable(ctx context.Context, url, memcache, prefix string) (hostctl.Table, error) {
	var t hostctl.Table
	if addrs := store.ParseAddrs(memcache); len(addrs) > 0 {
		mc, err := store.NewMemcache(store.MemcacheConfig{Addrs: addrs})
		if err != nil {
			return t, err
		}
		st, err := hostctl.ReadStoredTable(ctx, store.Prefixed(mc, prefix))
		if err != nil {
			return t, fmt.Errorf("arena status: %w (is a dispatcher running with this --memcache and --store-prefix?)", err)
		}
		return st.Table, nil
	}
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, strings.TrimRight(url, "/")+"/v1/fleet", nil)
	if err != nil {
		return t, fmt.Errorf("arena status: %w", err)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return t, fmt.Errorf("arena status: %w (is the dispatcher running? try --url or --memcache)", err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return t, fmt.Errorf("arena status: %s answered %s", url, resp.Status)
	}
	if err := json.NewDecoder(io.LimitReader(resp.Body, 16<<20)).Decode(&t); err != nil {
		return t, fmt.Errorf("arena status: decode: %w", err)
	}
	return t, nil
}

// printTable prints the hosts and the process table aligned.
func printTable(w io.Writer, t hostctl.Table) {
	if len(t.Hosts) > 0 {
		tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
		fmt.Fprintf(tw, "HOST\tADVERTISE\tSTATE\tPROCESSES/CAPACITY\tCLOCK SKEW\n")
		for _, h := range t.Hosts {
			var caps []string
			for k, max := range h.Capacity {
				caps = append(caps, fmt.Sprintf("%s %d/%d", k, h.Processes[k], max))
			}
			sort.Strings(caps)
			name := h.Name
			if h.Local {
				name += " (local)"
			}
			fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%.3fs\n", name, h.Advertise, h.State, strings.Join(caps, ", "), h.ClockSkewS)
		}
		tw.Flush()
		fmt.Fprintln(w)
	}
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintf(tw, "KIND\tHOST\tADDRESS\tPID\tSTATE\tLOAD\tMAXNUM\tCONNS\tROOMS/MAPS\tUPTIME\n")
	for _, p := range t.Processes {
		detail := ""
		if p.Rooms > 0 {
			detail = fmt.Sprint(p.Rooms)
		}
		if len(p.Maps) > 0 {
			var ms []string
			for m, n := range p.Maps {
				ms = append(ms, fmt.Sprintf("%s:%d", m, n))
			}
			sort.Strings(ms)
			detail = strings.Join(ms, ",")
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%d\t%s\t%d\t%d\t%d\t%s\t%s\n", p.Kind, p.Host, net.JoinHostPort(p.Advertise, strconv.Itoa(p.Port)), p.Pid, p.State, p.Load, p.MaxNum,
			p.Connections, detail, (time.Duration(p.UptimeS) * time.Second).String())
	}
	tw.Flush()
	fmt.Fprintf(w, "%d hosts, %d processes, MAXNUM %d\n", len(t.Hosts), len(t.Processes), t.MaxNum)
}
