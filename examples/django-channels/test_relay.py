"""Tests of the relay's logic: what the seed's match server did for Django."""

import unittest

from relay import Relay, ROOM_TTL


def assignment(room, uuid, channel, players, cursor):
    return {"cursor": cursor, "event": "match", "room": room, "uuid": uuid, "channel_name": channel,
            "players": [{"uuid": u, "username": u.upper(), "photo": "https://x.test/%s.png" % u, "score": 1500} for u in players]}


class RelayTest(unittest.TestCase):
    def setUp(self):
        self.calls = []
        self.relay = Relay(
            group_add=lambda g, c: self.calls.append(("group_add", g, c)),
            group_send=lambda g, m: self.calls.append(("group_send", g, m)),
            cache_set=lambda k, v, ttl: self.calls.append(("cache_set", k, v, ttl)),
        )

    def test_a_room_of_three_as_the_seed(self):
        ps = ["u1", "u2", "u3"]
        for i, u in enumerate(ps):
            self.relay.handle(assignment("r1", u, "chan-" + u, ps, i + 1))
        name = "room-u1-u2-u3"
        self.assertEqual(self.calls[:3], [("group_add", name, "chan-u1"), ("group_add", name, "chan-u2"), ("group_add", name, "chan-u3")])
        self.assertEqual(self.calls[3], ("cache_set", name, [
            {"uuid": u, "username": u.upper(), "photo": "https://x.test/%s.png" % u, "hp": 100} for u in ps], ROOM_TTL))
        sends = self.calls[4:]
        self.assertEqual(len(sends), 3)
        for (kind, group, msg), u in zip(sends, ps):
            self.assertEqual((kind, group), ("group_send", name))
            self.assertEqual(msg, {"type": "group_send_event", "event": "create_player", "uuid": u,
                                   "username": u.upper(), "photo": "https://x.test/%s.png" % u})

    def test_nothing_is_sent_before_every_player_arrived(self):
        self.relay.handle(assignment("r1", "u1", "c1", ["u1", "u2", "u3"], 1))
        self.relay.handle(assignment("r1", "u2", "c2", ["u1", "u2", "u3"], 2))
        self.assertEqual([c[0] for c in self.calls], ["group_add", "group_add"])

    def test_a_replayed_assignment_is_not_sent_twice(self):
        ps = ["a", "b"]
        self.relay.handle(assignment("r2", "a", "ca", ps, 1))
        self.relay.handle(assignment("r2", "a", "ca", ps, 1))  # resumed from an older cursor
        self.relay.handle(assignment("r2", "b", "cb", ps, 2))
        self.assertEqual([c[0] for c in self.calls], ["group_add", "group_add", "cache_set", "group_send", "group_send"])

    def test_expiries_and_rooms_interleaved(self):
        self.relay.handle({"cursor": 1, "event": "expired", "uuid": "x", "channel_name": "cx"})
        self.relay.handle(assignment("r1", "a", "ca", ["a", "b"], 2))
        self.relay.handle(assignment("r9", "c", "cc", ["c", "d"], 3))
        self.relay.handle(assignment("r1", "b", "cb", ["a", "b"], 4))
        self.assertEqual([c for c in self.calls if c[0] == "cache_set"][0][1], "room-a-b")
        self.assertFalse(any(c[1] == "room-c-d" for c in self.calls if c[0] != "group_add"))


if __name__ == "__main__":
    unittest.main()
