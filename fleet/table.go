package fleet

import (
	"time"

	"github.com/arena-game/arena/hostctl"
)

// Table returns the table in its JSON form.
func (f *Fleet) Table() hostctl.Table {
	return TableOf(f.Snapshot(), f.Hosts(), f.MaxNum())
}

// TableOf builds the JSON form of a snapshot.
func TableOf(procs []Proc, hosts []HostInfo, maxnum int) hostctl.Table {
	now := time.Now()
	t := hostctl.Table{MaxNum: maxnum, Processes: make([]hostctl.TableEntry, 0, len(procs)), Hosts: make([]hostctl.HostEntry, 0, len(hosts)), Updated: now.UTC()}
	for _, p := range procs {
		e := hostctl.TableEntry{Kind: p.Kind, Host: p.Host, Advertise: p.Advertise, Port: p.Port, Pid: p.Pid, State: p.State, Load: p.Load,
			MaxNum: p.MaxNum, Connections: p.Conns, Rooms: len(p.Rooms), RoomIDs: p.Rooms, UptimeS: int64(now.Sub(p.Started).Seconds())}
		if len(p.Maps) > 0 {
			e.Maps = p.Maps
		}
		t.Processes = append(t.Processes, e)
	}
	for _, h := range hosts {
		e := hostctl.HostEntry{Name: h.Name, Advertise: h.Advertise, State: h.State, Local: h.Local, Capacity: map[string]int{},
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
