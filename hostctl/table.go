package hostctl

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
