package fleet

import (
	"context"
	"encoding/json"
	"fmt"
	"time"

	"github.com/arena-game/arena/internal/records"
	"github.com/arena-game/arena/internal/store"
)

// TableEntry is one process as `stat`, /v1/fleet, `arena status` and the
// stored table show it.
type TableEntry struct {
	Kind        string         `json:"kind"`
	Host        string         `json:"host"`
	Advertise   string         `json:"advertise"`
	Port        int            `json:"port"`
	Pid         int            `json:"pid"`
	State       State          `json:"state"`
	Load        int            `json:"load"`
	MaxNum      int            `json:"maxnum"`
	Connections int            `json:"connections"`
	Rooms       int            `json:"rooms,omitempty"`
	RoomIDs     []string       `json:"room_ids,omitempty"`
	Maps        map[string]int `json:"maps,omitempty"`
	UptimeS     int64          `json:"uptime_s"`
}

// HostEntry is one host as the table shows it.
type HostEntry struct {
	Name       string            `json:"name"`
	Advertise  string            `json:"advertise"`
	State      HostState         `json:"state"`
	Local      bool              `json:"local,omitempty"`
	Capacity   map[string]int    `json:"capacity"`  // max processes per kind
	Processes  map[string]int    `json:"processes"` // processes per kind
	Ports      map[string][2]int `json:"ports"`     // port range per kind
	Fixed      []string          `json:"fixed,omitempty"`
	ClockSkewS float64           `json:"clock_skew_s"`
	SinceS     int64             `json:"since_s"`
}

// Table is the JSON process table.
type Table struct {
	MaxNum    int          `json:"maxnum"`
	Hosts     []HostEntry  `json:"hosts"`
	Processes []TableEntry `json:"processes"`
	Updated   time.Time    `json:"updated"`
}

// Table returns the table in its JSON form.
func (f *Fleet) Table() Table {
	return TableOf(f.Snapshot(), f.Hosts(), f.MaxNum())
}

// TableOf builds the JSON form of a snapshot.
func TableOf(procs []Proc, hosts []HostInfo, maxnum int) Table {
	now := time.Now()
	t := Table{MaxNum: maxnum, Processes: make([]TableEntry, 0, len(procs)), Hosts: make([]HostEntry, 0, len(hosts)), Updated: now.UTC()}
	for _, p := range procs {
		e := TableEntry{Kind: p.Kind, Host: p.Host, Advertise: p.Advertise, Port: p.Port, Pid: p.Pid, State: p.State, Load: p.Load,
			MaxNum: p.MaxNum, Connections: p.Conns, Rooms: len(p.Rooms), RoomIDs: p.Rooms, UptimeS: int64(now.Sub(p.Started).Seconds())}
		if len(p.Maps) > 0 {
			e.Maps = p.Maps
		}
		t.Processes = append(t.Processes, e)
	}
	for _, h := range hosts {
		e := HostEntry{Name: h.Name, Advertise: h.Advertise, State: h.State, Local: h.Local, Capacity: map[string]int{},
			Processes: h.Processes, Ports: map[string][2]int{}, ClockSkewS: h.ClockSkew.Seconds(), SinceS: int64(now.Sub(h.Since).Seconds())}
		for k, c := range h.Kinds {
			e.Capacity[k] = c.Max
			e.Ports[k] = [2]int{c.FirstPort, c.LastPort}
			if c.Fixed {
				e.Fixed = append(e.Fixed, k)
			}
		}
		t.Hosts = append(t.Hosts, e)
	}
	return t
}

// StoredTable is the table as a dispatcher keeps it in memcached
// (records.FleetKey): for `arena status --memcache`, for hosts locating
// maps while the dispatcher is away, and for a restarted dispatcher, which
// fails the rooms its predecessor placed that no process hosts any more.
type StoredTable struct {
	Table
	Dispatcher string `json:"dispatcher"`
	HTTP       string `json:"http"`
	Pid        int    `json:"pid"`
}

// WriteStoredTable saves t.
func WriteStoredTable(ctx context.Context, st store.Store, t StoredTable) error {
	b, err := json.Marshal(t)
	if err != nil {
		return fmt.Errorf("write fleet table: %w", err)
	}
	if err := st.Set(ctx, &store.Item{Key: records.FleetKey, Value: b}); err != nil {
		return fmt.Errorf("write fleet table: %w", err)
	}
	return nil
}

// ReadStoredTable reads the table a dispatcher last saved.
func ReadStoredTable(ctx context.Context, st store.Store) (StoredTable, error) {
	var t StoredTable
	if _, err := store.GetJSON(ctx, st, records.FleetKey, &t); err != nil {
		return t, fmt.Errorf("read fleet table: %w", err)
	}
	return t, nil
}
