package store

import (
	"crypto/md5"
	"encoding/binary"
	"errors"
	"fmt"
	"net"
	"slices"
	"sort"
	"strings"

	"github.com/bradfitz/gomemcache/memcache"
)

// pointsPerServer is libketama's number of ring points per server of equal
// weight: 40 MD5 digests of four points each.
const pointsPerServer = 160

// Ketama is gomemcache's ServerSelector for consistent hashing (libketama's
// construction): each server owns 160 points on a 32-bit ring, taken from
// the MD5 digests of "host:port-0" to "host:port-39" (four little-endian
// 32-bit points per digest), and a key goes to the server owning the first
// point at or after the first four bytes of the key's MD5. Adding a server
// to n moves about 1/(n+1) of the keys, all of them to the new server;
// removing one moves only its own keys.
//
// The ring depends on the set of server strings alone, not their order
// (points that collide are ordered by server string), so every process
// given the same servers, in any order, places every key on the same
// server. The strings must be the same, though: "localhost:11211" and
// "127.0.0.1:11211" are different servers to the ring.
type Ketama struct {
	points []uint32 // sorted
	owner  []int    // owner[i] is the server of points[i]
	addrs  []net.Addr
	names  []string
}

// NewKetama builds the ring over servers (host:port, or a path containing
// "/" for a unix socket). Addresses are resolved once, here, as gomemcache's
// ServerList does. A server listed twice is an error.
func NewKetama(servers []string) (*Ketama, error) {
	if len(servers) == 0 {
		return nil, errors.New("ketama: no servers")
	}
	names := slices.Clone(servers)
	slices.Sort(names)
	for i := 1; i < len(names); i++ {
		if names[i] == names[i-1] {
			return nil, fmt.Errorf("ketama: server %q listed twice", names[i])
		}
	}
	k := &Ketama{names: names, addrs: make([]net.Addr, len(names))}
	for i, s := range names {
		a, err := resolve(s)
		if err != nil {
			return nil, fmt.Errorf("ketama: %w", err)
		}
		k.addrs[i] = a
	}
	type point struct {
		hash  uint32
		owner int
	}
	ring := make([]point, 0, pointsPerServer*len(names))
	for i, s := range names {
		for j := range pointsPerServer / 4 {
			d := md5.Sum([]byte(fmt.Sprintf("%s-%d", s, j)))
			for h := range 4 {
				ring = append(ring, point{binary.LittleEndian.Uint32(d[4*h:]), i})
			}
		}
	}
	// names is sorted, so ordering equal points by owner index orders them
	// by server string: the ring is the same for any order of servers.
	sort.Slice(ring, func(a, b int) bool {
		if ring[a].hash != ring[b].hash {
			return ring[a].hash < ring[b].hash
		}
		return ring[a].owner < ring[b].owner
	})
	k.points = make([]uint32, len(ring))
	k.owner = make([]int, len(ring))
	for i, p := range ring {
		k.points[i], k.owner[i] = p.hash, p.owner
	}
	return k, nil
}

// resolve turns a server string into a net.Addr whose String() is stable.
func resolve(server string) (net.Addr, error) {
	if strings.Contains(server, "/") {
		a, err := net.ResolveUnixAddr("unix", server)
		if err != nil {
			return nil, err
		}
		return staticAddr{a.Network(), a.String()}, nil
	}
	a, err := net.ResolveTCPAddr("tcp", server)
	if err != nil {
		return nil, err
	}
	return staticAddr{a.Network(), a.String()}, nil
}

type staticAddr struct{ network, str string }

func (a staticAddr) Network() string { return a.network }
func (a staticAddr) String() string  { return a.str }

// Server returns the server string (as given to NewKetama) that key goes to.
func (k *Ketama) Server(key string) string { return k.names[k.index(key)] }

func (k *Ketama) index(key string) int {
	if len(k.names) == 1 {
		return 0
	}
	d := md5.Sum([]byte(key))
	h := binary.LittleEndian.Uint32(d[:4])
	i, _ := slices.BinarySearch(k.points, h)
	if i == len(k.points) {
		i = 0
	}
	return k.owner[i]
}

// PickServer implements memcache.ServerSelector.
func (k *Ketama) PickServer(key string) (net.Addr, error) {
	return k.addrs[k.index(key)], nil
}

// Each implements memcache.ServerSelector: f is called for every server, in
// the order of their strings.
func (k *Ketama) Each(f func(net.Addr) error) error {
	for _, a := range k.addrs {
		if err := f(a); err != nil {
			return err
		}
	}
	return nil
}

var _ memcache.ServerSelector = (*Ketama)(nil)
