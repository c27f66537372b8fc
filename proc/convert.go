package proc

import (
	"time"

	"github.com/arena-game/arena/proto/procpb"
)

// Conversions between the Go types and their wire messages. Exported ones
// are used by hosts that relay the messages further (the host-control
// stream carries rooms and events).

func startToPB(r StartRequest) *procpb.StartRequest {
	pb := &procpb.StartRequest{
		Kind: r.Kind, BindHost: r.BindHost, AdvertiseHost: r.AdvertiseHost, Port: int32(r.Port),
		Memcache: r.Memcache, StorePrefix: r.StorePrefix, Secret: r.Secret, DatabaseDsn: r.DatabaseDSN,
		OutboxDir: r.OutboxDir, Maxnum: int32(r.MaxNum), HostName: r.HostName, AllowedOrigins: r.AllowedOrigins,
	}
	switch {
	case r.Fight != nil:
		pb.Options = &procpb.StartRequest_Fight{Fight: r.Fight}
	case r.Map != nil:
		pb.Options = &procpb.StartRequest_Map{Map: r.Map}
	case r.Chat != nil:
		pb.Options = &procpb.StartRequest_Chat{Chat: r.Chat}
	case r.Game != nil:
		pb.Options = &procpb.StartRequest_Game{Game: r.Game}
	}
	return pb
}

func startFromPB(pb *procpb.StartRequest) StartRequest {
	return StartRequest{
		Kind: pb.GetKind(), BindHost: pb.GetBindHost(), AdvertiseHost: pb.GetAdvertiseHost(), Port: int(pb.GetPort()),
		Memcache: pb.GetMemcache(), StorePrefix: pb.GetStorePrefix(), Secret: pb.GetSecret(), DatabaseDSN: pb.GetDatabaseDsn(),
		OutboxDir: pb.GetOutboxDir(), MaxNum: int(pb.GetMaxnum()), HostName: pb.GetHostName(),
		AllowedOrigins: pb.GetAllowedOrigins(),
		Fight:          pb.GetFight(), Map: pb.GetMap(), Chat: pb.GetChat(), Game: pb.GetGame(),
	}
}

// RoomToPB converts a room to its wire message.
func RoomToPB(r Room) *procpb.AssignRoomRequest {
	return &procpb.AssignRoomRequest{Room: r.ID, Game: r.Game, Profile: r.Profile, Mode: r.Mode,
		Players: PlayersToPB(r.Players), ExpiresUnix: unixOrZero(r.Expires)}
}

// RoomFromPB converts a wire room back.
func RoomFromPB(pb *procpb.AssignRoomRequest) Room {
	r := Room{ID: pb.GetRoom(), Game: pb.GetGame(), Profile: pb.GetProfile(), Mode: pb.GetMode(),
		Players: PlayersFromPB(pb.GetPlayers())}
	if s := pb.GetExpiresUnix(); s != 0 {
		r.Expires = time.Unix(s, 0)
	}
	return r
}

func unixOrZero(t time.Time) int64 {
	if t.IsZero() {
		return 0
	}
	return t.Unix()
}

// PlayersToPB converts players to their wire messages.
func PlayersToPB(ps []Player) []*procpb.Player {
	out := make([]*procpb.Player, 0, len(ps))
	for _, p := range ps {
		out = append(out, &procpb.Player{Uuid: p.UUID, Username: p.Username, Photo: p.Photo, Score: int32(p.Score), Bot: p.Bot})
	}
	return out
}

// PlayersFromPB converts wire players back.
func PlayersFromPB(ps []*procpb.Player) []Player {
	out := make([]Player, 0, len(ps))
	for _, p := range ps {
		out = append(out, Player{UUID: p.GetUuid(), Username: p.GetUsername(), Photo: p.GetPhoto(), Score: int(p.GetScore()), Bot: p.GetBot()})
	}
	return out
}

func mapsToPB(m map[string]int) map[string]int32 {
	if len(m) == 0 {
		return nil
	}
	out := make(map[string]int32, len(m))
	for k, v := range m {
		out[k] = int32(v)
	}
	return out
}

func mapsFromPB(m map[string]int32) map[string]int {
	out := make(map[string]int, len(m))
	for k, v := range m {
		out[k] = int(v)
	}
	return out
}

// EventToPB converts an event to its wire message (nil for nil).
func EventToPB(ev Event) *procpb.Event {
	switch e := ev.(type) {
	case RoomEnded:
		return &procpb.Event{Event: &procpb.Event_RoomEnded{RoomEnded: &procpb.RoomEnded{Room: e.Room, Load: int32(e.Load), Reason: e.Reason}}}
	case LoadChanged:
		return &procpb.Event{Event: &procpb.Event_LoadChanged{LoadChanged: &procpb.LoadChanged{Load: int32(e.Load), Maps: mapsToPB(e.Maps), Connections: int32(e.Connections)}}}
	case BackfillWanted:
		return &procpb.Event{Event: &procpb.Event_BackfillWanted{BackfillWanted: &procpb.BackfillWanted{Room: e.Room, Slots: int32(e.Slots)}}}
	}
	return &procpb.Event{}
}

// EventFromPB converts a wire event back; nil for an empty or unknown one.
func EventFromPB(pb *procpb.Event) Event {
	switch e := pb.GetEvent().(type) {
	case *procpb.Event_RoomEnded:
		return RoomEnded{Room: e.RoomEnded.GetRoom(), Load: int(e.RoomEnded.GetLoad()), Reason: e.RoomEnded.GetReason()}
	case *procpb.Event_LoadChanged:
		return LoadChanged{Load: int(e.LoadChanged.GetLoad()), Maps: mapsFromPB(e.LoadChanged.GetMaps()), Connections: int(e.LoadChanged.GetConnections())}
	case *procpb.Event_BackfillWanted:
		return BackfillWanted{Room: e.BackfillWanted.GetRoom(), Slots: int(e.BackfillWanted.GetSlots())}
	}
	return nil
}
